//! `berth spec`: write a starter config.json (runc's, or its rootless variant).

use anyhow::Context;
use oci_spec::runtime::{
    LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, Mount, MountBuilder, Spec,
};
use serde_json::Value;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const SPEC_CONFIG: &str = "config.json";

/// `spec [--bundle DIR] [--rootless]`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// path to the root of the bundle directory
    #[arg(short, long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// generate a configuration for a rootless container
    #[arg(long)]
    pub rootless: bool,
}

/// Writes `<bundle>/config.json`, refusing to replace an existing one.
pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = match args.bundle.as_deref() {
        Some(b) if !b.as_os_str().is_empty() => {
            let meta = std::fs::metadata(b).with_context(|| format!("chdir {}", b.display()))?;
            if !meta.is_dir() {
                anyhow::bail!("chdir {}: not a directory", b.display());
            }
            b.to_path_buf()
        }
        _ => PathBuf::from("."),
    };
    let path = dir.join(SPEC_CONFIG);
    if path.symlink_metadata().is_ok() {
        anyhow::bail!("File {SPEC_CONFIG} exists. Remove it first");
    }
    let mut spec = berth_runtime::default_spec();
    if args.rootless {
        to_rootless(&mut spec)?;
    }
    write_spec(&path, &spec)
}

/// The config text, byte for byte as runc writes it (tab indent, no final newline).
pub fn spec_text(spec: &Spec) -> anyhow::Result<String> {
    let mut value = serde_json::to_value(spec).context("serialize spec")?;
    // oci-spec keeps capabilities in hash sets: sort them for a stable file.
    if let Some(caps) = value
        .pointer_mut("/process/capabilities")
        .and_then(Value::as_object_mut)
    {
        for set in caps.values_mut() {
            if let Some(list) = set.as_array_mut() {
                list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    Ok(crate::json_text::to_go_indent(&value))
}

fn write_spec(path: &Path, spec: &Spec) -> anyhow::Result<()> {
    let text = spec_text(spec)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                anyhow::anyhow!("File {SPEC_CONFIG} exists. Remove it first")
            } else {
                anyhow::anyhow!("open {}: {e}", path.display())
            }
        })?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("write {}", path.display()))
}

/// runc's `specconv.ToRootless`: a user namespace mapping root to the caller's euid and
/// egid, no network namespace, /sys bind-mounted from the host, no `uid=`/`gid=` mount
/// options, and no cgroup resources.
pub fn to_rootless(spec: &mut Spec) -> anyhow::Result<()> {
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut namespaces: Vec<_> = linux
        .namespaces()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|ns| {
            !matches!(
                ns.typ(),
                LinuxNamespaceType::Network | LinuxNamespaceType::User
            )
        })
        .collect();
    namespaces.push(
        LinuxNamespaceBuilder::default()
            .typ(LinuxNamespaceType::User)
            .build()?,
    );
    linux.set_namespaces(Some(namespaces));
    let map = |host_id: u32| {
        LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(host_id)
            .size(1u32)
            .build()
    };
    linux.set_uid_mappings(Some(vec![map(nix::unistd::geteuid().as_raw())?]));
    linux.set_gid_mappings(Some(vec![map(nix::unistd::getegid().as_raw())?]));
    linux.set_resources(None);
    spec.set_linux(Some(linux));

    let mounts: Vec<Mount> = spec
        .mounts()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|mount| -> anyhow::Result<Mount> {
            if crate::paths::clean(&Path::new("/").join(mount.destination())) == Path::new("/sys") {
                return Ok(MountBuilder::default()
                    .destination("/sys")
                    .typ("none")
                    .source("/sys")
                    .options(
                        ["rbind", "nosuid", "noexec", "nodev", "ro"]
                            .map(String::from)
                            .to_vec(),
                    )
                    .build()?);
            }
            let mut mount = mount;
            if let Some(options) = mount.options().clone() {
                let kept: Vec<String> = options
                    .into_iter()
                    .filter(|o| !o.starts_with("gid=") && !o.starts_with("uid="))
                    .collect();
                // Go leaves an emptied option list out of the JSON.
                mount.set_options((!kept.is_empty()).then_some(kept));
            }
            Ok(mount)
        })
        .collect::<anyhow::Result<_>>()?;
    spec.set_mounts(Some(mounts));
    Ok(())
}
