//! Starting a transient unit and waiting for its job, as runc does: subscribe to the
//! manager's signals and listen for `JobRemoved` before `StartTransientUnit`, then wait
//! (30 s at most) for the removal of the job the start returned. A result other than
//! `done` (failed, timeout, dependency...) is an error naming the unit.

use crate::error::{Error, Result};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use zbus::blocking::Proxy;
use zbus::zvariant::{OwnedObjectPath, Value};

/// How long systemd may take to run the start job.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// `StartTransientUnit(unit, "replace", props, [])` and the wait for its job.
pub(super) fn start_transient(
    proxy: &Proxy<'static>,
    unit: &str,
    props: Vec<(&str, Value<'_>)>,
) -> Result<()> {
    let err = |what: &str, e: zbus::Error| {
        Error::Unsupported(format!("systemd {what} of unit {unit}: {e}"))
    };
    // Signals go only to subscribed clients; a second Subscribe is harmless.
    let _: std::result::Result<(), _> = proxy.call("Subscribe", &());
    let signals = proxy
        .receive_signal("JobRemoved")
        .map_err(|e| err("JobRemoved subscription", e))?;
    let (tx, rx) = mpsc::channel();
    // The iterator blocks: it runs on a thread of its own, which ends at the first
    // JobRemoved after the wait below is over (its send fails) or with the process.
    // A long-lived embedder keeps one idle thread per start until then.
    std::thread::spawn(move || {
        for msg in signals {
            let body = msg.body();
            let Ok((_, job, _, result)) =
                body.deserialize::<(u32, OwnedObjectPath, String, String)>()
            else {
                continue;
            };
            if tx.send((job, result)).is_err() {
                break;
            }
        }
    });
    let aux: Vec<(&str, Vec<(&str, Value)>)> = Vec::new();
    let job: OwnedObjectPath = proxy
        .call("StartTransientUnit", &(unit, "replace", props, aux))
        .map_err(|e| err("StartTransientUnit", e))?;
    let deadline = Instant::now() + JOB_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((j, result)) if j == job => {
                return match result.as_str() {
                    "done" => Ok(()),
                    other => Err(Error::Unsupported(format!(
                        "systemd could not start unit {unit}: job {} ended {other:?}",
                        job.as_str()
                    ))),
                }
            }
            Ok(_) => continue,
            Err(_) => {
                return Err(Error::Unsupported(format!(
                    "systemd did not finish starting unit {unit} within {JOB_TIMEOUT:?}"
                )))
            }
        }
    }
}
