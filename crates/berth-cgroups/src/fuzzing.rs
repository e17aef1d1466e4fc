//! Entry points for the fuzz targets of `fuzz/` (`cgroup_resources`): the pure parts of
//! the drivers that turn a config's `linux.cgroupsPath` and `linux.resources` into what
//! berth hands the kernel and systemd, with nothing written. Not an API: hidden from
//! the documentation and free to change with the fuzz targets.

use crate::error::Result;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};
use std::path::{Path, PathBuf};

/// One instruction of the v2 device filter: opcode, destination and source
/// registers, jump offset, immediate.
pub type Insn = (u8, u8, u8, i16, i32);

/// The eBPF program the v2 driver attaches for `rules` (the spec's rules followed by
/// the defaults, as the driver passes them), not loaded.
pub fn device_program(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>> {
    Ok(crate::v2::devices_bpf::program(rules)?
        .iter()
        .map(|i| i.parts())
        .collect())
}

/// The devices.allow/devices.deny lines the v1 driver writes for `rules`.
pub fn v1_device_lines(rules: &[LinuxDeviceCgroup]) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        lines.extend(crate::devices::rule_string(i, r)?);
    }
    Ok(lines)
}

/// The cgroupfs directory of `linux.cgroupsPath` for container `id`, in a hierarchy
/// mounted at `/sys/fs/cgroup/x` whose caller's cgroup is `/own/cg`.
pub fn cgroupfs_dir(cgroups_path: Option<&str>, id: &str) -> Result<PathBuf> {
    crate::path::CgroupsPath::new(cgroups_path, id)?.resolve(
        Path::new("/sys/fs/cgroup/x"),
        "/",
        Some("/own/cg"),
    )
}

/// The systemd driver's slice and unit for `linux.cgroupsPath` of container `id`, and
/// the unit's directory under `/sys/fs/cgroup`.
pub fn systemd_unit(cgroups_path: Option<&str>, id: &str) -> Result<(String, String, PathBuf)> {
    let (slice, unit) = crate::systemd::parse_path(cgroups_path, id, "system.slice")?;
    let dir = crate::systemd::unit_dir(Path::new("/sys/fs/cgroup"), &slice, &unit);
    Ok((slice, unit, dir))
}

/// The names of the unit properties the systemd driver sets for `r`, for a systemd of
/// version `version`.
pub fn systemd_props(r: &LinuxResources, version: u32) -> Result<Vec<&'static str>> {
    Ok(crate::systemd::props::resource_props(r, || version)?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}
