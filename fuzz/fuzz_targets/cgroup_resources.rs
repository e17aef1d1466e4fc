//! A config's `linux` object (cgroupsPath and resources) through the pure parts of the
//! cgroup drivers, with oracles rather than only "no panic":
//! - the cgroupfs and systemd directories stay under their hierarchy (no `..`);
//! - the v2 device filter (eBPF), run by a small interpreter here on requests made
//!   from the rules' own numbers, decides every request as the rules say: the last
//!   rule that matches decides, an allow rule matching when it allows every requested
//!   access, a deny rule when it denies any; no rule matching is a denial;
//! - the v1 device lines and the systemd unit properties are made without a panic.
#![no_main]

use berth_cgroups::fuzzing::{self, Insn};
use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::{Linux, LinuxDeviceCgroup, LinuxDeviceType};
use std::path::{Component, Path};

const BLOCK: u32 = 1;
const CHAR: u32 = 2;
const ALL: u32 = 7; // mknod 1 | read 2 | write 4

fuzz_target!(|data: &[u8]| {
    let Ok(linux) = serde_json::from_slice::<Linux>(data) else {
        return;
    };
    let path = linux.cgroups_path().as_ref().and_then(|p| p.to_str());
    if let Ok(dir) = fuzzing::cgroupfs_dir(path, "fuzz-id") {
        assert_beneath(&dir, "/sys/fs/cgroup/x");
    }
    if let Ok((slice, unit, dir)) = fuzzing::systemd_unit(path, "fuzz-id") {
        assert!(
            !unit.contains('/') && !slice.contains('/'),
            "{slice:?} {unit:?}"
        );
        assert_beneath(&dir, "/sys/fs/cgroup");
    }
    let resources = linux.resources().clone().unwrap_or_default();
    for version in [230, 252] {
        let _ = fuzzing::systemd_props(&resources, version);
    }
    let rules = berth_cgroups::effective_device_rules(resources.devices().as_deref());
    let _ = fuzzing::v1_device_lines(&rules);
    if let Ok(prog) = fuzzing::device_program(&rules) {
        check_program(&prog, &rules);
    }
});

fn assert_beneath(dir: &Path, root: &str) {
    assert!(
        dir.starts_with(root) && dir != Path::new(root),
        "{} is not beneath {root}",
        dir.display()
    );
    assert!(
        dir.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_))),
        "{} has a component other than a name",
        dir.display()
    );
}

fn check_program(prog: &[Insn], rules: &[LinuxDeviceCgroup]) {
    // The spec's rules come first (the defaults follow them): their numbers, and the
    // next ones, then a few of the defaults' and the extremes.
    let mut numbers: Vec<u32> = Vec::new();
    for r in rules {
        for n in [r.major(), r.minor()].into_iter().flatten() {
            if let Ok(n) = u32::try_from(n) {
                for v in [n, n.wrapping_add(1)] {
                    if numbers.len() < 12 && !numbers.contains(&v) {
                        numbers.push(v);
                    }
                }
            }
        }
    }
    numbers.extend([0, 1, 3, 5, 136, u32::MAX]);
    numbers.sort_unstable();
    numbers.dedup();
    for typ in [BLOCK, CHAR] {
        for access in 1..=ALL {
            for &major in &numbers {
                for &minor in &numbers {
                    let want = reference(rules, typ, access, major, minor);
                    let got = run(prog, [typ | access << 16, major, minor]);
                    assert_eq!(
                        got, want,
                        "type {typ} access {access} {major}:{minor}: the program says {got}, the rules {want}"
                    );
                }
            }
        }
    }
}

/// What the rules decide, read as the driver's documentation says.
fn reference(rules: &[LinuxDeviceCgroup], typ: u32, access: u32, major: u32, minor: u32) -> bool {
    for r in rules.iter().rev() {
        let rtyp = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => None,
            LinuxDeviceType::B => Some(BLOCK),
            LinuxDeviceType::C | LinuxDeviceType::U => Some(CHAR),
            LinuxDeviceType::P => continue,
        };
        let letters = r.access().clone().unwrap_or_else(|| "rwm".into());
        let allowed = [('m', 1), ('r', 2), ('w', 4)]
            .iter()
            .filter(|(c, _)| letters.contains(*c))
            .fold(0, |acc, (_, bit)| acc | bit);
        if allowed == 0 {
            continue;
        }
        let num_ok = |rule: Option<i64>, req: u32| match rule {
            None => true,
            Some(n) if n < 0 => true,
            Some(n) => n == i64::from(req),
        };
        let access_ok = if r.allow() {
            access & !allowed == 0
        } else {
            access & allowed != 0
        };
        if rtyp.is_none_or(|t| t == typ)
            && num_ok(r.major(), major)
            && num_ok(r.minor(), minor)
            && access_ok
        {
            return r.allow();
        }
    }
    false
}

/// Runs the program on a `struct bpf_cgroup_dev_ctx`, with the opcodes the driver
/// emits; anything else, a jump out of the program or falling off its end fails.
fn run(prog: &[Insn], ctx: [u32; 3]) -> bool {
    let mut reg = [0u64; 11];
    let mut pc = 0usize;
    for _ in 0..=prog.len() {
        let Some(&(code, dst, src, off, imm)) = prog.get(pc) else {
            panic!("the program runs off its end at {pc} (of {})", prog.len());
        };
        let (d, s) = (usize::from(dst), usize::from(src));
        let imm64 = i64::from(imm) as u64;
        let mut next = pc + 1;
        match code {
            0x61 => {
                assert_eq!(s, 1, "load from r{s}, not the context");
                let at = usize::try_from(off).expect("negative context offset") / 4;
                reg[d] = u64::from(ctx[at]);
            }
            0xbc => reg[d] = u64::from(reg[s] as u32),
            0xb4 => reg[d] = u64::from(imm as u32),
            0x74 => reg[d] = u64::from((reg[d] as u32) >> imm),
            0x54 => reg[d] = u64::from(reg[d] as u32 & imm as u32),
            0x55 | 0x15 => {
                let taken = (reg[d] == imm64) == (code == 0x15);
                if taken {
                    let off = usize::try_from(off).expect("a backward jump");
                    next = pc + 1 + off;
                }
            }
            0x95 => return reg[0] != 0,
            other => panic!("opcode {other:#x} at {pc}"),
        }
        assert!(next <= prog.len(), "a jump from {pc} lands past the end");
        pc = next;
    }
    panic!("the program did not exit in {} steps", prog.len() + 1)
}
