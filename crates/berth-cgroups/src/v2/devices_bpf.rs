//! cgroup v2 device filtering: the device rules become an eBPF program of type
//! BPF_PROG_TYPE_CGROUP_DEVICE attached to the container's cgroup, as runc and crun
//! do (cgroup v2 has no devices controller).
//!
//! The program reads the request (type, access, major, minor) and checks the rules
//! from the last to the first: the first that matches decides, which is the v1
//! controller's "the last rule written wins". An allow rule matches when every
//! requested access is allowed by it, a deny rule when any requested access is denied
//! by it. A request no rule matches is denied.

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    /// Opcode, destination and source registers, offset, immediate.
    pub(crate) fn parts(&self) -> (u8, u8, u8, i16, i32) {
        (
            self.code,
            self.regs & 0xf,
            self.regs >> 4,
            self.off,
            self.imm,
        )
    }
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

// Opcodes (linux/bpf.h, linux/bpf_common.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const ALU32_MOV_K: u8 = 0xb4;
const ALU32_RSH_K: u8 = 0x74;
const ALU32_AND_K: u8 = 0x54;
const JMP_JNE_K: u8 = 0x55;
const JMP_JEQ_K: u8 = 0x15;
const EXIT: u8 = 0x95;

// struct bpf_cgroup_dev_ctx { u32 access_type (type | access << 16); u32 major; u32 minor; }
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
const ACC_ALL: i32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

fn bad(reason: String) -> Error {
    Error::Resource {
        path: "linux.resources.devices".into(),
        reason,
    }
}

fn access_bits(access: &str) -> i32 {
    crate::devices::access_letters(access)
        .chars()
        .fold(0, |acc, c| match c {
            'r' => acc | ACC_READ,
            'w' => acc | ACC_WRITE,
            _ => acc | ACC_MKNOD,
        })
}

/// The program for `rules` (in spec order).
pub(crate) fn program(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),        // r2 = access_type
        insn(ALU32_MOV_X, 3, 2, 0, 0),      // w3 = w2
        insn(ALU32_RSH_K, 3, 0, 0, 16),     // w3 = access
        insn(ALU32_AND_K, 2, 0, 0, 0xffff), // w2 = type
        insn(LDX_MEM_W, 4, 1, 4, 0),        // r4 = major
        insn(LDX_MEM_W, 5, 1, 8, 0),        // r5 = minor
    ];
    for r in rules.iter().rev() {
        let typ = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => None,
            LinuxDeviceType::B => Some(DEV_BLOCK),
            LinuxDeviceType::C | LinuxDeviceType::U => Some(DEV_CHAR),
            // A FIFO is not a device: no cgroup rule applies to it.
            LinuxDeviceType::P => continue,
        };
        let access = access_bits(r.access().as_deref().unwrap_or("rwm"));
        if access == 0 {
            continue;
        }
        let wildcard = |v: Option<i64>| v.is_none_or(|v| v < 0);
        let num = |v: Option<i64>, what: &str| -> Result<i32> {
            let v = v.unwrap_or(-1);
            i32::try_from(v).map_err(|_| bad(format!("{what} {v} is out of range")))
        };
        // Conditions, each a jump over the rest of this rule's block when it fails.
        let mut conds: Vec<(u8, u8, i32, Option<Insn>)> = Vec::new();
        if let Some(t) = typ {
            conds.push((JMP_JNE_K, 2, t, None));
        }
        if r.allow() && access != ACC_ALL {
            // Allowed only if the request has no bit outside `access`.
            conds.push((
                JMP_JNE_K,
                6,
                0,
                Some(insn(ALU32_AND_K, 6, 0, 0, !access & ACC_ALL)),
            ));
        } else if !r.allow() && access != ACC_ALL {
            // Denied if the request has any bit of `access`.
            conds.push((JMP_JEQ_K, 6, 0, Some(insn(ALU32_AND_K, 6, 0, 0, access))));
        }
        if !wildcard(r.major()) {
            conds.push((JMP_JNE_K, 4, num(r.major(), "major")?, None));
        }
        if !wildcard(r.minor()) {
            conds.push((JMP_JNE_K, 5, num(r.minor(), "minor")?, None));
        }
        let unconditional = conds.is_empty();
        // Block: per condition [mov w6=w3; and w6,..]? jmp; then mov w0, allow; exit.
        let block_len: usize = conds
            .iter()
            .map(|c| if c.3.is_some() { 3 } else { 1 })
            .sum::<usize>()
            + 2;
        let mut at = 0usize;
        for (op, reg, imm, pre) in conds {
            if let Some(and) = pre {
                p.push(insn(ALU32_MOV_X, 6, 3, 0, 0));
                p.push(and);
                at += 2;
            }
            at += 1;
            p.push(insn(op, reg, 0, (block_len - at) as i16, imm));
        }
        p.push(insn(ALU32_MOV_K, 0, 0, 0, r.allow() as i32));
        p.push(insn(EXIT, 0, 0, 0, 0));
        if unconditional {
            // Nothing after an unconditional rule can run (and the verifier refuses
            // unreachable instructions).
            return Ok(p);
        }
    }
    p.push(insn(ALU32_MOV_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    Ok(p)
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// `union bpf_attr`, as the raw words each command reads.
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Self {
        Attr([0; 128])
    }
    fn u32(mut self, at: usize, v: u32) -> Self {
        self.0[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(mut self, at: usize, v: u64) -> Self {
        self.0[at..at + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
}

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> nix::Result<i32> {
    // SAFETY: bpf(2) with a zero-padded attr union of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut Attr,
            std::mem::size_of::<Attr>(),
        )
    };
    if r < 0 {
        Err(nix::Error::last())
    } else {
        Ok(r as i32)
    }
}

/// Loads the program for `rules` and makes it the only device program attached to
/// the cgroup directory `dir` (a new one is attached before the old ones go, so
/// there is no moment without a filter).
pub(crate) fn apply(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let insns = program(rules)?;
    let io = |op: &'static str, e: nix::Error| Error::Io {
        op,
        path: dir.to_path_buf(),
        source: e.into(),
    };
    let prog = load(&insns).map_err(|reason| Error::Resource {
        path: dir.to_path_buf(),
        reason: format!("load the device filter (eBPF): {reason}"),
    })?;
    let cg = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| io("open", e))?;
    let old = attached(&cg).map_err(|e| io("query device filters of", e))?;
    let mut attach = Attr::new()
        .u32(0, cg.as_raw_fd() as u32)
        .u32(4, prog.as_raw_fd() as u32)
        .u32(8, BPF_CGROUP_DEVICE)
        .u32(12, BPF_F_ALLOW_MULTI);
    bpf(BPF_PROG_ATTACH, &mut attach).map_err(|e| io("attach the device filter to", e))?;
    for id in old {
        let mut get = Attr::new().u32(0, id);
        let Ok(fd) = bpf(BPF_PROG_GET_FD_BY_ID, &mut get) else {
            continue;
        };
        // SAFETY: a new fd from the kernel, owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut detach = Attr::new()
            .u32(0, cg.as_raw_fd() as u32)
            .u32(4, fd.as_raw_fd() as u32)
            .u32(8, BPF_CGROUP_DEVICE);
        bpf(BPF_PROG_DETACH, &mut detach)
            .map_err(|e| io("detach the old device filter from", e))?;
    }
    Ok(())
}

/// Loads the program without a verifier log: with a log, a program whose log outgrows
/// the buffer fails to load (ENOSPC) though it is valid, as many device rules do. Only
/// when the load fails is it repeated with a large log, for the verifier's reason.
fn load(insns: &[Insn]) -> std::result::Result<OwnedFd, String> {
    let license = c"Apache";
    let attr = |log: &mut Vec<u8>| {
        let level = u32::from(!log.is_empty());
        Attr::new()
            .u32(0, BPF_PROG_TYPE_CGROUP_DEVICE)
            .u32(4, insns.len() as u32)
            .u64(8, insns.as_ptr() as u64)
            .u64(16, license.as_ptr() as u64)
            .u32(24, level)
            .u32(28, log.len() as u32)
            .u64(
                32,
                if log.is_empty() {
                    0
                } else {
                    log.as_mut_ptr() as u64
                },
            )
    };
    let mut none = Vec::new();
    let first = match bpf(BPF_PROG_LOAD, &mut attr(&mut none)) {
        // SAFETY: a new fd from the kernel, owned by nobody else.
        Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
        Err(e) => e,
    };
    let mut log = vec![0u8; 1 << 20];
    if let Ok(fd) = bpf(BPF_PROG_LOAD, &mut attr(&mut log)) {
        // SAFETY: as above.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let text = String::from_utf8_lossy(&log);
    let text = text.trim_end_matches('\0').trim();
    let tail: Vec<&str> = text.lines().rev().take(3).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!("{first}: {}", tail.join(" | ")))
}

/// Ids of the device programs attached directly to the cgroup `cg`.
fn attached(cg: &OwnedFd) -> nix::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut q = Attr::new()
        .u32(0, cg.as_raw_fd() as u32)
        .u32(4, BPF_CGROUP_DEVICE)
        .u64(16, ids.as_mut_ptr() as u64)
        .u32(24, ids.len() as u32);
    bpf(BPF_PROG_QUERY, &mut q)?;
    let count = u32::from_ne_bytes(q.0[24..28].try_into().unwrap_or_default()) as usize;
    ids.truncate(count.min(64));
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(v: serde_json::Value) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn deny_all_then_allows() {
        let p = program(&rules(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rw"}
        ])))
        .unwrap();
        // Ends with the unconditional deny-all (first rule), no unreachable default.
        assert_eq!(p[p.len() - 2], insn(ALU32_MOV_K, 0, 0, 0, 0));
        assert_eq!(p.last().unwrap().code, EXIT);
        // Every jump lands inside the program.
        for (i, ins) in p.iter().enumerate() {
            if ins.code == JMP_JNE_K || ins.code == JMP_JEQ_K {
                assert!(
                    i + 1 + (ins.off as usize) < p.len(),
                    "jump at {i} leaves the program"
                );
            }
        }
    }

    /// Many rules (Docker's and Kubernetes' defaults are about twenty) load: a verifier
    /// log sized for a few rules once made such a load fail with ENOSPC.
    #[test]
    fn many_rules_load() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: loading an eBPF program needs root");
            return;
        }
        let mut v = vec![serde_json::json!({"allow": false, "access": "rwm"})];
        for minor in 0..40 {
            v.push(serde_json::json!({"allow": true, "type": "c", "major": 240, "minor": minor, "access": "rw"}));
        }
        let p = program(&rules(serde_json::Value::Array(v))).unwrap();
        match load(&p) {
            Ok(_) => {}
            // Where bpf(2) is not permitted at all, nothing is said about the program.
            Err(e) if e.starts_with("EPERM") || e.starts_with("ENOSYS") => {
                eprintln!("skipped: bpf(2) unavailable here: {e}")
            }
            Err(e) => panic!("40 rules did not load: {e}"),
        }
    }

    #[test]
    fn unknown_access_letters_are_ignored_as_runc_does() {
        let known = program(&rules(serde_json::json!([{"allow": true, "access": "r"}]))).unwrap();
        let extra = program(&rules(serde_json::json!([{"allow": true, "access": "rx"}]))).unwrap();
        assert_eq!(known, extra);
    }
}
