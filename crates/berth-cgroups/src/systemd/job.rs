//! Starting a transient unit and waiting for its job, as runc does: subscribe to the
//! manager's signals and listen for `JobRemoved` before `StartTransientUnit`, then wait
//! (30 s at most) for the removal of the job the start returned. A result other than
//! `done` (failed, timeout, dependency...) is an error naming the unit.
//!
//! The wait runs on the calling thread: the signal stream and a timer race in one
//! `block_on`, and both are gone when it returns. (An earlier version read the
//! blocking signal iterator on a thread of its own, which stayed, with its D-Bus
//! connection, until some later `JobRemoved` arrived: in a long-lived embedder, one
//! idle thread and socket per container start on a quiet systemd.)

use crate::error::{Error, Result};
use futures_lite::StreamExt;
use std::time::Duration;
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
    let proxy = proxy.inner();
    // async_io's block_on drives the future on this thread; it needs no runtime of the
    // caller's (and works from a thread that belongs to one, e.g. tokio's blocking pool).
    async_io::block_on(async {
        // Signals go only to subscribed clients; a second Subscribe is harmless.
        let _: std::result::Result<(), _> = proxy.call("Subscribe", &()).await;
        let mut signals = proxy
            .receive_signal("JobRemoved")
            .await
            .map_err(|e| err("JobRemoved subscription", e))?;
        let aux: Vec<(&str, Vec<(&str, Value)>)> = Vec::new();
        let job: OwnedObjectPath = proxy
            .call("StartTransientUnit", &(unit, "replace", props, aux))
            .await
            .map_err(|e| err("StartTransientUnit", e))?;
        let removed = async {
            while let Some(msg) = signals.next().await {
                let body = msg.body();
                let Ok((_, j, _, result)) =
                    body.deserialize::<(u32, OwnedObjectPath, String, String)>()
                else {
                    continue;
                };
                if j != job {
                    continue;
                }
                return match result.as_str() {
                    "done" => Ok(()),
                    other => Err(Error::Unsupported(format!(
                        "systemd could not start unit {unit}: job {} ended {other:?}",
                        job.as_str()
                    ))),
                };
            }
            Err(Error::Unsupported(format!(
                "systemd: the D-Bus connection closed before the start job of unit {unit} ended"
            )))
        };
        let timeout = async {
            async_io::Timer::after(JOB_TIMEOUT).await;
            Err(Error::Unsupported(format!(
                "systemd did not finish starting unit {unit} within {JOB_TIMEOUT:?}"
            )))
        };
        futures_lite::future::or(removed, timeout).await
    })
}
