//! The ENOSYS stub put in front of a restrictive seccomp filter: a syscall the profile
//! cannot know about fails with ENOSYS rather than the profile's default errno, so
//! that libc falls back to an older call (glibc tries clone3, then clone; faccessat2,
//! then faccessat) instead of failing with EPERM.
//!
//! The rule is runc's (libcontainer/seccomp/patchbpf): for each architecture the
//! profile lists, a syscall numbered above the largest number that any rule of the
//! profile names (whatever the rule's action) is "unknown" and gets ENOSYS. The stub is
//! left out when the default action lets syscalls through anyway (ALLOW, LOG, TRACE:
//! a tracer should handle new syscalls itself), and when the default action already
//! answers ENOSYS. A profile without `architectures` gets no stub (runc finds no
//! largest syscall then either). Syscalls in a hole below the largest named one keep
//! the default action: the profile is taken to know them, as runc does.
//!
//! libseccomp cannot express "every number above N" as a rule, so the stub is our own
//! classic BPF, prepended to libseccomp's exported program. Every jump in it is
//! forward: conditional jumps stay inside one architecture's small block (so they
//! never need more than the 8 bits BPF gives them), and the way into the user's filter
//! is an unconditional `ja` with a 32-bit offset. libseccomp's program only uses
//! relative jumps, so it runs unchanged after the stub.

use crate::error::{Error, Result};
use libseccomp::{ScmpArch, ScmpSyscall};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction};

/// seccomp_data: the syscall number at offset 0, the AUDIT_ARCH value at offset 4.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
/// SECCOMP_RET_ERRNO with ENOSYS.
pub(super) const RET_ENOSYS: u32 = 0x0005_0000 | libc::ENOSYS as u32;
/// The x32 ABI marks its syscall numbers with this bit (and reports AUDIT_ARCH_X86_64).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// BPF_MAXINSNS: the kernel refuses longer programs.
pub(super) const MAX_INSNS: usize = 4096;

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// The AUDIT_ARCH value the kernel reports for a libseccomp architecture (x32 shares
/// x86_64's and is told apart by X32_SYSCALL_BIT); None for the native token.
fn audit_arch(a: ScmpArch) -> Option<u32> {
    Some(match a {
        ScmpArch::Native => return None,
        ScmpArch::X86 => 0x4000_0003,
        ScmpArch::X8664 | ScmpArch::X32 => 0xc000_003e,
        ScmpArch::Arm => 0x4000_0028,
        ScmpArch::Aarch64 => 0xc000_00b7,
        ScmpArch::Loongarch64 => 0xc000_0102,
        ScmpArch::M68k => 0x0000_0004,
        ScmpArch::Mips => 0x0000_0008,
        ScmpArch::Mipsel => 0x4000_0008,
        ScmpArch::Mips64 => 0x8000_0008,
        ScmpArch::Mips64N32 => 0xa000_0008,
        ScmpArch::Mipsel64 => 0xc000_0008,
        ScmpArch::Mipsel64N32 => 0xe000_0008,
        ScmpArch::Ppc => 0x0000_0014,
        ScmpArch::Ppc64 => 0x8000_0015,
        ScmpArch::Ppc64Le => 0xc000_0015,
        ScmpArch::S390 => 0x0000_0016,
        ScmpArch::S390X => 0x8000_0016,
        ScmpArch::Parisc => 0x0000_000f,
        ScmpArch::Parisc64 => 0x8000_000f,
        ScmpArch::Riscv64 => 0xc000_00f3,
        ScmpArch::Sheb => 0x0000_002a,
        ScmpArch::Sh => 0x4000_002a,
        // A token added to libseccomp after this table: no stub for it (its syscalls
        // keep the profile's default action).
        _ => return None,
    })
}

/// Whether the profile gets a stub at all.
fn wanted(s: &LinuxSeccomp) -> bool {
    match s.default_action() {
        LinuxSeccompAction::ScmpActAllow
        | LinuxSeccompAction::ScmpActLog
        | LinuxSeccompAction::ScmpActTrace => false,
        // The default errno is ENOSYS already: the stub would change nothing. (runc
        // meant to skip it in this case; its check compares against the whole return
        // value and never matches, which gives the same result.)
        LinuxSeccompAction::ScmpActErrno => s.default_errno_ret() != Some(libc::ENOSYS as u32),
        _ => true,
    }
}

/// The largest syscall number any rule names for `arch`; None when no name resolves
/// to a real (positive) number there. Negative numbers are libseccomp's pseudo
/// syscalls for calls an architecture does not have.
fn largest_named(s: &LinuxSeccomp, arch: ScmpArch) -> Option<u32> {
    s.syscalls()
        .iter()
        .flatten()
        .flat_map(|r| r.names())
        .filter_map(|n| ScmpSyscall::from_name_by_arch(n, arch).ok())
        .map(i32::from)
        .filter(|&nr| nr > 0)
        .max()
        .map(|nr| nr as u32)
}

/// One architecture's block: the AUDIT_ARCH value and the largest known syscall per
/// ABI (x86_64 carries both x86_64's and x32's).
#[derive(Debug, Default, Clone, PartialEq)]
struct Block {
    audit: u32,
    max: Option<u32>,
    x32_max: Option<u32>,
}

fn blocks(s: &LinuxSeccomp, archs: &[ScmpArch]) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    for &a in archs {
        let a = if a == ScmpArch::Native {
            ScmpArch::native()
        } else {
            a
        };
        let Some(audit) = audit_arch(a) else { continue };
        let Some(max) = largest_named(s, a) else {
            tracing::debug!(
                "seccomp: no syscall of the profile is known on {a:?}: no ENOSYS stub for it"
            );
            continue;
        };
        let i = match out.iter().position(|b| b.audit == audit) {
            Some(i) => i,
            None => {
                out.push(Block {
                    audit,
                    ..Block::default()
                });
                out.len() - 1
            }
        };
        if a == ScmpArch::X32 {
            out[i].x32_max = Some(max);
        } else {
            out[i].max = Some(max);
        }
    }
    out
}

/// Where a jump goes: the next instruction, or a label.
#[derive(Clone, Copy)]
enum To {
    Next,
    L(usize),
}

/// A tiny assembler for forward jumps to labels.
#[derive(Default)]
struct Asm {
    insns: Vec<(u16, To, To, u32)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, l: usize) {
        self.labels[l] = Some(self.insns.len());
    }
    fn op(&mut self, code: u16, jt: To, jf: To, k: u32) {
        self.insns.push((code, jt, jf, k));
    }
    fn finish(self) -> Result<Vec<libc::sock_filter>> {
        let bad = |why: &str| Error::Config(format!("seccomp: building the ENOSYS stub: {why}"));
        let target = |at: usize, to: To| -> Result<u32> {
            match to {
                To::Next => Ok(0),
                To::L(l) => {
                    let dest = self.labels[l].ok_or_else(|| bad("unbound label"))?;
                    dest.checked_sub(at + 1)
                        .map(|d| d as u32)
                        .ok_or_else(|| bad("backward jump"))
                }
            }
        };
        let mut out = Vec::with_capacity(self.insns.len());
        for (at, &(code, jt, jf, k)) in self.insns.iter().enumerate() {
            let (jt, jf, k) = if code == JA {
                (0, 0, target(at, jt)?)
            } else {
                let short = |d: u32| u8::try_from(d).map_err(|_| bad("conditional jump too long"));
                (short(target(at, jt)?)?, short(target(at, jf)?)?, k)
            };
            out.push(libc::sock_filter { code, jt, jf, k });
        }
        Ok(out)
    }
}

/// The stub for this profile and these architectures (the profile's, parsed), or an
/// empty program when none is wanted.
pub(super) fn stub(s: &LinuxSeccomp, archs: &[ScmpArch]) -> Result<Vec<libc::sock_filter>> {
    if !wanted(s) {
        return Ok(Vec::new());
    }
    let blocks = blocks(s, archs);
    if blocks.is_empty() {
        return Ok(Vec::new());
    }
    let mut a = Asm::default();
    let filter = a.label();
    a.op(LD_W_ABS, To::Next, To::Next, DATA_ARCH);
    for b in &blocks {
        let next = a.label();
        let enosys = a.label();
        // Another architecture: try the next block (reloading nothing: A still holds
        // the architecture).
        a.op(JEQ_K, To::Next, To::L(next), b.audit);
        a.op(LD_W_ABS, To::Next, To::Next, DATA_NR);
        // Above the largest known number: ENOSYS; otherwise into the filter.
        let above = |a: &mut Asm, max: Option<u32>| match max {
            Some(max) => {
                a.op(JGT_K, To::L(enosys), To::Next, max);
                a.op(JA, To::L(filter), To::Next, 0);
            }
            None => a.op(JA, To::L(filter), To::Next, 0),
        };
        if b.x32_max.is_some() || b.audit == audit_arch(ScmpArch::X8664).unwrap_or(0) {
            // x86_64 and x32 share the AUDIT_ARCH value; the syscall number tells them
            // apart. An ABI the profile does not list goes to the filter, which
            // answers it with its bad-architecture action.
            let x32 = a.label();
            a.op(JSET_K, To::L(x32), To::Next, X32_SYSCALL_BIT);
            above(&mut a, b.max);
            a.bind(x32);
            above(&mut a, b.x32_max);
        } else {
            if matches!(b.audit, 0x0000_0016 | 0x8000_0016) {
                // s390(x) multiplexes syscalls it does not know onto number 0
                // (setup(2), long gone), which would otherwise get the default errno.
                a.op(JEQ_K, To::L(enosys), To::Next, 0);
            }
            above(&mut a, b.max);
        }
        a.bind(enosys);
        a.op(RET_K, To::Next, To::Next, RET_ENOSYS);
        a.bind(next);
    }
    a.bind(filter);
    a.finish()
}

/// The stub followed by libseccomp's exported program (`bpf`, host-endian
/// `struct sock_filter`s).
pub(super) fn prepend(stub: &[libc::sock_filter], bpf: Vec<u8>) -> Result<Vec<u8>> {
    let total = stub.len() + bpf.len() / std::mem::size_of::<libc::sock_filter>();
    if total > MAX_INSNS {
        return Err(Error::Config(format!(
            "seccomp: the filter needs {total} BPF instructions, more than the kernel's limit of {MAX_INSNS}"
        )));
    }
    if stub.is_empty() {
        return Ok(bpf);
    }
    let mut out = Vec::with_capacity(total * 8);
    for i in stub {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out.extend_from_slice(&bpf);
    Ok(out)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Runs a classic BPF seccomp program (host-endian bytes) on (arch, nr) with zero
    /// arguments, as the kernel would; enough of BPF for libseccomp's programs.
    pub fn eval(bpf: &[u8], arch: u32, nr: u32) -> u32 {
        let insns: Vec<(u16, u8, u8, u32)> = bpf
            .chunks_exact(8)
            .map(|c| {
                (
                    u16::from_ne_bytes([c[0], c[1]]),
                    c[2],
                    c[3],
                    u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
                )
            })
            .collect();
        // seccomp_data: nr, arch, instruction pointer (u64), six u64 arguments.
        let load = |off: u32| match off {
            0 => nr,
            4 => arch,
            _ => 0,
        };
        let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
        let mut pc = 0usize;
        loop {
            let (code, jt, jf, k) = insns[pc];
            pc += 1;
            let class = code & 0x07;
            match class {
                0x00 => match code {
                    0x20 => a = load(k),
                    0x00 => a = k,
                    0x60 => a = mem[k as usize],
                    _ => panic!("ld {code:#x}"),
                },
                0x01 => match code {
                    0x01 => x = k,
                    0x61 => x = mem[k as usize],
                    _ => panic!("ldx {code:#x}"),
                },
                0x02 => mem[k as usize] = a,
                0x03 => mem[k as usize] = x,
                0x04 => {
                    let v = if code & 0x08 != 0 { x } else { k };
                    a = match code & 0xf0 {
                        0x50 => a & v,
                        0x40 => a | v,
                        0x00 => a.wrapping_add(v),
                        0x10 => a.wrapping_sub(v),
                        _ => panic!("alu {code:#x}"),
                    }
                }
                0x05 => {
                    let v = if code & 0x08 != 0 { x } else { k };
                    let taken = match code & 0xf0 {
                        0x00 => {
                            pc += k as usize;
                            continue;
                        }
                        0x10 => a == v,
                        0x20 => a > v,
                        0x30 => a >= v,
                        0x40 => a & v != 0,
                        _ => panic!("jmp {code:#x}"),
                    };
                    pc += if taken { jt } else { jf } as usize;
                }
                0x06 => return if code & 0x18 == 0x10 { a } else { k },
                0x07 => {
                    if code == 0x07 {
                        x = a
                    } else {
                        a = x
                    }
                }
                _ => unreachable!(),
            }
        }
    }

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    const X86_64: u32 = 0xc000_003e;
    const I386: u32 = 0x4000_0003;

    #[test]
    fn largest_per_architecture() {
        let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read", "openat", "no_such_call"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}));
        let b = blocks(&s, &[ScmpArch::X8664, ScmpArch::X86, ScmpArch::X32]);
        assert_eq!(
            b,
            vec![
                Block {
                    audit: X86_64,
                    max: Some(257),
                    x32_max: Some(X32_SYSCALL_BIT | 257)
                },
                Block {
                    audit: I386,
                    max: Some(295),
                    x32_max: None
                },
            ]
        );
    }

    #[test]
    fn not_wanted_for_permissive_or_enosys_defaults() {
        for (action, errno) in [
            ("SCMP_ACT_ALLOW", None),
            ("SCMP_ACT_LOG", None),
            ("SCMP_ACT_TRACE", None),
            ("SCMP_ACT_ERRNO", Some(libc::ENOSYS)),
        ] {
            let mut v = serde_json::json!({"defaultAction": action, "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_KILL"}]});
            if let Some(e) = errno {
                v["defaultErrnoRet"] = e.into();
            }
            assert!(stub(&profile(v), &[ScmpArch::X8664]).unwrap().is_empty());
        }
        for action in ["SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_TRAP"] {
            // (read alone would not do: it is number 0 on x86_64, and a largest
            // number of 0 means "nothing known", as in runc.)
            let v = serde_json::json!({"defaultAction": action,
                "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]});
            assert!(!stub(&profile(v.clone()), &[ScmpArch::X8664])
                .unwrap()
                .is_empty());
            // No architectures listed: no stub, as runc.
            assert!(stub(&profile(v), &[]).unwrap().is_empty());
        }
    }

    #[test]
    fn stub_jumps_into_the_filter_or_answers_enosys() {
        let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read", "openat"], "action": "SCMP_ACT_ALLOW"}]}));
        let prog = stub(&s, &[ScmpArch::X8664, ScmpArch::X86, ScmpArch::X32]).unwrap();
        // A stand-in for the user's filter: "ret 7".
        let filter = [libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: 7,
        }];
        let bpf = prepend(&prog, prepend(&filter, Vec::new()).unwrap()).unwrap();
        for (arch, nr, want) in [
            (X86_64, 0, 7),
            (X86_64, 257, 7),
            (X86_64, 258, RET_ENOSYS),
            (X86_64, 1000, RET_ENOSYS),
            (X86_64, X32_SYSCALL_BIT | 257, 7),
            (X86_64, X32_SYSCALL_BIT | 258, RET_ENOSYS),
            (I386, 295, 7),
            (I386, 296, RET_ENOSYS),
            (0xc000_00b7, 5000, 7),
        ] {
            assert_eq!(eval(&bpf, arch, nr), want, "arch {arch:#x} nr {nr}");
        }
        // x86_64 alone: x32 numbers are the filter's business.
        let prog = stub(&s, &[ScmpArch::X8664]).unwrap();
        let bpf = prepend(&prog, prepend(&filter, Vec::new()).unwrap()).unwrap();
        assert_eq!(eval(&bpf, X86_64, X32_SYSCALL_BIT | 5000), 7);
        assert_eq!(eval(&bpf, X86_64, 5000), RET_ENOSYS);
        // s390x: number 0 is the multiplexer for unknown calls.
        let prog = stub(&s, &[ScmpArch::S390X]).unwrap();
        let bpf = prepend(&prog, prepend(&filter, Vec::new()).unwrap()).unwrap();
        assert_eq!(eval(&bpf, 0x8000_0016, 0), RET_ENOSYS);
        assert_eq!(eval(&bpf, 0x8000_0016, 3), 7);
    }

    #[test]
    fn too_long_is_refused() {
        let filter = vec![0u8; 8 * MAX_INSNS];
        let one = [libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: 0,
        }];
        assert!(prepend(&[], filter.clone()).is_ok());
        let e = prepend(&one, filter).unwrap_err().to_string();
        assert!(e.contains("4097") && e.contains("4096"), "{e}");
    }
}
