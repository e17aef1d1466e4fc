//! Scheduling knobs of `process`: `scheduler` (sched_setattr), `ioPriority`
//! (ioprio_set) and `execCPUAffinity` (sched_setaffinity, initial and final).
//! Values are checked in the parent; the init and exec'd processes apply them.

use crate::error::{Error, Result};
use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxSchedulerFlag, LinuxSchedulerPolicy, Process, Scheduler,
};

/// `struct sched_attr`, SCHED_ATTR_SIZE_VER0.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct SchedPlan {
    attr: Option<SchedAttr>,
    /// ioprio_set value: class << 13 | level.
    ioprio: Option<i32>,
    initial_cpus: Option<CpuSet>,
    final_cpus: Option<CpuSet>,
}

use nix::sched::CpuSet;

impl SchedPlan {
    pub fn new(p: &Process) -> Result<Self> {
        let affinity = p.exec_cpu_affinity().as_ref();
        Ok(SchedPlan {
            attr: p.scheduler().as_ref().map(sched_attr).transpose()?,
            ioprio: p.io_priority().as_ref().map(ioprio).transpose()?,
            initial_cpus: affinity
                .and_then(|a| a.initial().as_deref())
                .map(|s| cpu_set(s, "process.execCPUAffinity.initial"))
                .transpose()?,
            final_cpus: affinity
                .and_then(|a| a.cpu_affinity_final().as_deref())
                .map(|s| cpu_set(s, "process.execCPUAffinity.final"))
                .transpose()?,
        })
    }

    /// First thing in the process: the initial CPU affinity.
    pub fn apply_initial(&self) -> Result<()> {
        set_affinity(
            self.initial_cpus.as_ref(),
            "process.execCPUAffinity.initial",
        )
    }

    /// Scheduler and I/O priority, while the process still has its capabilities.
    pub fn apply(&self) -> Result<()> {
        if let Some(attr) = &self.attr {
            // SAFETY: a valid sched_attr whose size field matches the struct.
            let r =
                unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *const SchedAttr, 0) };
            if r != 0 {
                return Err(Error::sys(
                    "sched_setattr",
                    format!("process.scheduler policy {}", attr.policy),
                    nix::Error::last(),
                ));
            }
        }
        if let Some(prio) = self.ioprio {
            const IOPRIO_WHO_PROCESS: libc::c_int = 1;
            // SAFETY: ioprio_set on the calling process with plain integers.
            let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) };
            if r != 0 {
                return Err(Error::sys(
                    "ioprio_set",
                    "process.ioPriority",
                    nix::Error::last(),
                ));
            }
        }
        Ok(())
    }

    /// Last, before the seccomp filter goes in: the final CPU affinity.
    pub fn apply_final(&self) -> Result<()> {
        set_affinity(self.final_cpus.as_ref(), "process.execCPUAffinity.final")
    }
}

fn set_affinity(set: Option<&CpuSet>, what: &str) -> Result<()> {
    let Some(set) = set else {
        return Ok(());
    };
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), set)
        .map_err(|e| Error::sys("sched_setaffinity", what, e))
}

/// Parses a CPU list such as `0-3,7` (the kernel's cpulist format).
fn cpu_set(s: &str, what: &str) -> Result<CpuSet> {
    let bad = |why: &str| Error::Config(format!("{what} {s:?}: {why}"));
    let mut set = CpuSet::new();
    let max = CpuSet::count();
    for part in s.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let lo: usize = lo.trim().parse().map_err(|_| bad("not a CPU list"))?;
        let hi: usize = hi.trim().parse().map_err(|_| bad("not a CPU list"))?;
        if lo > hi {
            return Err(bad("range goes backwards"));
        }
        if hi >= max {
            return Err(bad("CPU number too large"));
        }
        for cpu in lo..=hi {
            set.set(cpu).map_err(|_| bad("CPU number too large"))?;
        }
    }
    Ok(set)
}

fn sched_attr(s: &Scheduler) -> Result<SchedAttr> {
    let bad = |why: String| Error::Config(format!("process.scheduler: {why}"));
    use LinuxSchedulerPolicy::*;
    let policy = match s.policy() {
        SchedOther => libc::SCHED_OTHER,
        SchedFifo => libc::SCHED_FIFO,
        SchedRr => libc::SCHED_RR,
        SchedBatch => libc::SCHED_BATCH,
        SchedIdle => libc::SCHED_IDLE,
        SchedDeadline => 6,
        SchedIso => return Err(bad("policy SCHED_ISO is not implemented by Linux".into())),
    } as u32;
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(bad(format!("nice {nice} is outside -20..19")));
    }
    let priority = s.priority().unwrap_or(0);
    let realtime = matches!(s.policy(), SchedFifo | SchedRr);
    if realtime && !(1..=99).contains(&priority) {
        return Err(bad(format!(
            "priority {priority} is outside 1..99 for {:?}",
            s.policy()
        )));
    }
    if !realtime && priority != 0 {
        return Err(bad(format!(
            "priority {priority} must be 0 for {:?}",
            s.policy()
        )));
    }
    let (runtime, deadline, period) = (
        s.runtime().unwrap_or(0),
        s.deadline().unwrap_or(0),
        s.period().unwrap_or(0),
    );
    if *s.policy() == SchedDeadline {
        if runtime == 0 {
            return Err(bad("SCHED_DEADLINE needs a runtime".into()));
        }
        if deadline != 0 && runtime > deadline {
            return Err(bad(format!(
                "runtime {runtime} is above deadline {deadline}"
            )));
        }
        if period != 0 && deadline > period {
            return Err(bad(format!("deadline {deadline} is above period {period}")));
        }
    } else if runtime != 0 || deadline != 0 || period != 0 {
        return Err(bad(
            "runtime, deadline and period are for SCHED_DEADLINE only".into(),
        ));
    }
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        use LinuxSchedulerFlag::*;
        flags |= match f {
            SchedResetOnFork => 0x01,
            SchedFlagReclaim => 0x02,
            SchedFlagDLOverrun => 0x04,
            SchedFlagKeepPolicy => 0x08,
            SchedFlagKeepParams => 0x10,
            SchedFlagUtilClampMin => 0x20,
            SchedFlagUtilClampMax => 0x40,
        };
    }
    Ok(SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice,
        priority: priority as u32,
        runtime,
        deadline,
        period,
    })
}

fn ioprio(p: &LinuxIOPriority) -> Result<i32> {
    let class = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let level = p.priority();
    if !(0..=7).contains(&level) {
        return Err(Error::Config(format!(
            "process.ioPriority.priority {level} is outside 0..7"
        )));
    }
    Ok(class << 13 | level as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: serde_json::Value) -> Result<SchedPlan> {
        let mut p = serde_json::json!({"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}});
        p.as_object_mut()
            .unwrap()
            .extend(json.as_object().unwrap().clone());
        SchedPlan::new(&serde_json::from_value(p).unwrap())
    }

    #[test]
    fn good_values() {
        let p = plan(serde_json::json!({
            "scheduler": {"policy": "SCHED_FIFO", "priority": 10, "flags": ["SCHED_RESET_ON_FORK"]},
            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
            "execCPUAffinity": {"initial": "0", "final": "0-1"}
        }))
        .unwrap();
        let a = p.attr.unwrap();
        assert_eq!((a.policy, a.priority, a.flags, a.size), (1, 10, 1, 48));
        assert_eq!(p.ioprio, Some(2 << 13 | 4));
        let f = p.final_cpus.unwrap();
        assert!(f.is_set(1).unwrap() && !f.is_set(2).unwrap());
    }

    #[test]
    fn bad_values_name_the_field() {
        for (json, needle) in [
            (
                serde_json::json!({"scheduler": {"policy": "SCHED_OTHER", "nice": 40}}),
                "process.scheduler: nice 40",
            ),
            (
                serde_json::json!({"scheduler": {"policy": "SCHED_RR"}}),
                "priority 0 is outside",
            ),
            (
                serde_json::json!({"scheduler": {"policy": "SCHED_DEADLINE", "runtime": 10, "deadline": 5}}),
                "runtime 10 is above deadline 5",
            ),
            (
                serde_json::json!({"ioPriority": {"class": "IOPRIO_CLASS_RT", "priority": 9}}),
                "process.ioPriority.priority 9",
            ),
            (
                serde_json::json!({"execCPUAffinity": {"initial": "5-2"}}),
                "process.execCPUAffinity.initial",
            ),
        ] {
            let e = plan(json).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }
}
