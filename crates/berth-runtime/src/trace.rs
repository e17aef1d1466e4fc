//! Per-phase timing of `create` and `start`, on request (`BERTH_TRACE=1` or `--debug`
//! in the CLI).
//!
//! The caller passes a [`TraceSink`] in [`crate::CreateOptions::trace`] (or to
//! [`crate::Container::start_traced`]) and reads the [`Span`]s back; the library never
//! prints them. Every timestamp is `CLOCK_MONOTONIC`, in the runtime's own process and
//! in the container's intermediate and init processes alike, so the spans of all three
//! lie on one time line. The children run between fork and execve, where they must not
//! take locks or allocate freely: they write their stamps into a small shared anonymous
//! mapping made before fork ([`ChildStamps`]), which the runtime reads once the init
//! reports ready. With no sink nothing is mapped and no clock is read.
//!
//! A limit: a container with `linux.timeOffsets` gets a time namespace whose monotonic
//! offset shifts the init's stamps; its spans are then reported as they were read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One step of the create or start path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// The caller's own start-up (argument parsing in the CLI), recorded by the caller.
    Args,
    /// Reading and parsing config.json and checking the bundle.
    Parse,
    /// Turning the spec into what the children need (namespace fds, mount list,
    /// argv/env, the seccomp program, the exec fifo).
    Plan,
    /// Checking, creating and configuring the container's cgroups.
    Cgroup,
    /// Writing the container's state (state.json, the pid file).
    StateWrite,
    /// fork of the intermediate process, as the runtime sees it.
    Fork,
    /// In the intermediate: stdio, fd cleanup, the go-ahead, joining the cgroups,
    /// joining and creating namespaces.
    Namespaces,
    /// clone3 of the init, from the intermediate's call to the init's first step.
    Clone,
    /// In the init: cgroup namespace, session, hostname, the rootfs bind and `mounts`.
    Mounts,
    /// In the init: device nodes and the /dev symlinks.
    Devices,
    /// Runtime hooks (prestart, createRuntime, run by the runtime while the init waits)
    /// and createContainer hooks; for start, poststart.
    Hooks,
    /// pivot_root (or chroot) into the rootfs.
    Pivot,
    /// Console, cwd, sysctls, propagation, masked and read-only paths.
    Finalize,
    /// rlimits, LSM, scheduling, fds, signals, user and capabilities.
    Process,
    /// Loading the seccomp filter, when it is loaded during create (without
    /// noNewPrivileges, or with NOTIFY rules); otherwise it is part of [`Phase::Exec`].
    Seccomp,
    /// Reading a container's state (start).
    Load,
    /// From start's write to the exec fifo to the init's execve (the deferred seccomp
    /// filter and startContainer hooks included).
    Exec,
}

impl Phase {
    /// A short lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Args => "args",
            Phase::Parse => "parse",
            Phase::Plan => "plan",
            Phase::Cgroup => "cgroup",
            Phase::StateWrite => "state-write",
            Phase::Fork => "fork",
            Phase::Namespaces => "namespaces",
            Phase::Clone => "clone",
            Phase::Mounts => "mounts",
            Phase::Devices => "devices",
            Phase::Hooks => "hooks",
            Phase::Pivot => "pivot",
            Phase::Finalize => "finalize",
            Phase::Process => "process",
            Phase::Seccomp => "seccomp",
            Phase::Load => "load",
            Phase::Exec => "exec",
        }
    }
}

/// Which process a span ran in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The process that called the library (berth create / start).
    Runtime,
    /// The short-lived process that enters the namespaces and clones the init.
    Intermediate,
    /// The container's init, before execve.
    Init,
}

impl Role {
    /// A short lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Runtime => "runtime",
            Role::Intermediate => "intermediate",
            Role::Init => "init",
        }
    }
}

/// One timed step: `CLOCK_MONOTONIC` at its start and end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// What ran.
    pub phase: Phase,
    /// Where it ran.
    pub role: Role,
    /// Monotonic clock at the start.
    pub start: Duration,
    /// Monotonic clock at the end.
    pub end: Duration,
}

impl Span {
    /// How long it took.
    pub fn duration(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }
}

/// Where the library records spans: a cheap handle; clones share one list.
#[derive(Debug, Clone, Default)]
pub struct TraceSink(Arc<Mutex<Vec<Span>>>);

impl TraceSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The spans recorded so far, in the order they started.
    pub fn spans(&self) -> Vec<Span> {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        v.sort_by_key(|s| s.start);
        v
    }

    /// Records one span (also for the caller's own phases, e.g. [`Phase::Args`]).
    pub fn record(&self, span: Span) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(span);
    }

    /// `CLOCK_MONOTONIC` now, the clock every span uses.
    pub fn now() -> Duration {
        monotonic()
    }
}

/// Runs `f` as `phase` of the runtime process when there is a sink; just runs it
/// otherwise.
pub(crate) fn timed<T>(sink: Option<&TraceSink>, phase: Phase, f: impl FnOnce() -> T) -> T {
    match sink {
        None => f(),
        Some(sink) => {
            let start = monotonic();
            let r = f();
            sink.record(Span {
                phase,
                role: Role::Runtime,
                start,
                end: monotonic(),
            });
            r
        }
    }
}

/// The start of a runtime-side span; [`Mark::end`] records it (nothing without a sink).
pub(crate) struct Mark<'a>(Option<(&'a TraceSink, Duration)>);

impl<'a> Mark<'a> {
    pub fn start(sink: Option<&'a TraceSink>) -> Self {
        Mark(sink.map(|s| (s, monotonic())))
    }

    pub fn end(self, phase: Phase) {
        if let Some((sink, start)) = self.0 {
            sink.record(Span {
                phase,
                role: Role::Runtime,
                start,
                end: monotonic(),
            });
        }
    }
}

fn monotonic() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own; it is async-signal-safe and
    // allocates nothing, so the forked children may call it.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The phases the children stamp, each at most once per create: slot `i` holds the
/// start and end of `CHILD_PHASES[i]` in nanoseconds (0: not run).
const CHILD_PHASES: [(Phase, Role); 9] = [
    (Phase::Namespaces, Role::Intermediate),
    (Phase::Clone, Role::Intermediate),
    (Phase::Mounts, Role::Init),
    (Phase::Devices, Role::Init),
    (Phase::Hooks, Role::Init),
    (Phase::Pivot, Role::Init),
    (Phase::Finalize, Role::Init),
    (Phase::Process, Role::Init),
    (Phase::Seccomp, Role::Init),
];

const SLOTS: usize = 2 * CHILD_PHASES.len();

/// A page of memory shared by the runtime and the children it forks and clones
/// (MAP_SHARED survives fork and clone without CLONE_VM; execve drops it). The
/// children store into it with atomic stores only: no lock, no allocation.
#[derive(Debug)]
pub(crate) struct ChildStamps {
    ptr: *mut AtomicU64,
}

impl ChildStamps {
    /// Maps the shared page; `None` when the kernel refuses (tracing is then
    /// parent-only, never a failed create).
    pub fn new() -> Option<Self> {
        let len = SLOTS * std::mem::size_of::<AtomicU64>();
        // SAFETY: a fresh anonymous shared mapping; the kernel zero-fills it, and zero
        // is a valid AtomicU64. We own it until Drop unmaps it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        (p != libc::MAP_FAILED).then(|| ChildStamps { ptr: p.cast() })
    }

    fn slot(&self, i: usize) -> &AtomicU64 {
        debug_assert!(i < SLOTS);
        // SAFETY: `i < SLOTS` (indices come from CHILD_PHASES positions), the mapping
        // holds SLOTS aligned AtomicU64s for as long as `self` lives, and atomics may be
        // shared between processes.
        unsafe { &*self.ptr.add(i) }
    }

    fn index(phase: Phase) -> Option<usize> {
        CHILD_PHASES.iter().position(|(p, _)| *p == phase)
    }

    /// In a child: stamps the start of `phase`.
    pub fn begin(&self, phase: Phase) {
        if let Some(i) = Self::index(phase) {
            self.slot(2 * i)
                .store(monotonic().as_nanos() as u64, Ordering::Relaxed);
        }
    }

    /// In a child: stamps the end of `phase`.
    pub fn end(&self, phase: Phase) {
        if let Some(i) = Self::index(phase) {
            self.slot(2 * i + 1)
                .store(monotonic().as_nanos() as u64, Ordering::Relaxed);
        }
    }

    /// In the runtime, once the init reported ready (the channel message orders the
    /// children's stores before this read): every completed child phase into `sink`.
    pub fn collect(&self, sink: &TraceSink) {
        for (i, (phase, role)) in CHILD_PHASES.iter().enumerate() {
            let start = self.slot(2 * i).load(Ordering::Acquire);
            let end = self.slot(2 * i + 1).load(Ordering::Acquire);
            if start != 0 && end >= start {
                sink.record(Span {
                    phase: *phase,
                    role: *role,
                    start: Duration::from_nanos(start),
                    end: Duration::from_nanos(end),
                });
            }
        }
    }
}

impl Drop for ChildStamps {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `new` made; no reference into it outlives
        // `self` (slot borrows `self`).
        unsafe { libc::munmap(self.ptr.cast(), SLOTS * std::mem::size_of::<AtomicU64>()) };
    }
}

/// Stamps `phase` around `f` in a child when tracing is on.
pub(crate) fn child<T>(stamps: Option<&ChildStamps>, phase: Phase, f: impl FnOnce() -> T) -> T {
    if let Some(s) = stamps {
        s.begin(phase);
    }
    let r = f();
    if let Some(s) = stamps {
        s.end(phase);
    }
    r
}
