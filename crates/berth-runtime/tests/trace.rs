//! The per-phase timing of create and start (as root, real namespaces and cgroups):
//! with a sink every phase is recorded once, in the order the path runs them, on one
//! monotonic time line shared by the runtime, the intermediate and the init.

use berth_runtime::{CreateOptions, Phase, Role, Span, TraceSink};
use std::time::Duration;

mod support;
use support::Fixture;

/// A container running `true` whose config reaches every phase during create: a
/// seccomp filter without noNewPrivileges is loaded before `ready`.
fn config(f: &Fixture) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.2.0",
        "process": {"args": ["true"], "cwd": "/", "env": ["PATH=/bin"],
                    "user": {"uid": 0, "gid": 0}, "noNewPrivileges": false},
        "root": {"path": "rootfs"},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {
            "cgroupsPath": f.cgroup(),
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
                           {"type": "uts"}, {"type": "network"}],
            "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "architectures": [],
                        "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO"}]}
        }
    })
}

#[test]
fn trace_lists_every_phase_in_order_on_one_clock() {
    let f = Fixture::new("trace", &["true"]);
    f.write_config(&config(&f));
    let sink = TraceSink::new();
    let before = TraceSink::now();
    let mut c = f
        .create_with(&CreateOptions {
            trace: Some(sink.clone()),
            ..Default::default()
        })
        .expect("create");
    let exit = c.wait_handle().expect("wait handle");
    c.start_traced(Some(&sink)).expect("start");
    exit.wait().expect("wait");
    let after = TraceSink::now();
    c.delete(false).expect("delete");

    let spans = sink.spans();
    let got: Vec<(Phase, Role)> = spans.iter().map(|s| (s.phase, s.role)).collect();
    use Phase::*;
    use Role::*;
    let want = vec![
        (Parse, Runtime),
        (Cgroup, Runtime),
        (StateWrite, Runtime),
        (Plan, Runtime),
        (StateWrite, Runtime),
        (Cgroup, Runtime),
        (StateWrite, Runtime),
        (Fork, Runtime),
        (Namespaces, Intermediate),
        (Clone, Intermediate),
        (Mounts, Init),
        (Devices, Init),
        (Hooks, Init),
        (Pivot, Init),
        (Finalize, Init),
        (Process, Init),
        (Seccomp, Init),
        (StateWrite, Runtime),
        (Load, Runtime),
        (Exec, Runtime),
        (Hooks, Runtime),
    ];
    assert_eq!(got, want, "spans: {spans:#?}");
    for s in &spans {
        assert!(
            s.start >= before && s.end <= after,
            "outside the test: {s:?}"
        );
        assert!(s.end >= s.start, "ends before it starts: {s:?}");
    }
    // One after the other: each starts once the one before has ended, except where
    // the two run at once by design (the intermediate starts while fork returns in
    // the runtime; the filter is loaded inside the process phase).
    let overlap_ok =
        |a: &Span, b: &Span| matches!((a.phase, b.phase), (Fork, Namespaces) | (Process, Seccomp));
    for w in spans.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        assert!(b.start >= a.start, "not in start order: {a:?} then {b:?}");
        if !overlap_ok(a, b) {
            assert!(
                b.start >= a.end,
                "overlaps the one before: {a:?} then {b:?}"
            );
        }
    }
    let seccomp = spans.iter().find(|s| s.phase == Seccomp).unwrap();
    let process = spans.iter().find(|s| s.phase == Process).unwrap();
    assert!(seccomp.start >= process.start && seccomp.end <= process.end);
    // The children's stamps are real readings, not zeros.
    assert!(spans.iter().all(|s| s.start > Duration::ZERO));
}
