//! Events to containerd (TaskCreate, TaskStart, TaskExit ...), forwarded over its ttrpc
//! socket by one thread in the order they were raised: containerd relies on a task's
//! create coming before its start and its start before its exit.

use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::protobuf::MessageDyn;
use containerd_shim::publisher::RemotePublisher;
use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

type Event = (&'static str, Box<dyn MessageDyn>);

/// Raises events; cheap to call from any thread (the send is queued).
pub struct Events {
    tx: Mutex<Sender<Event>>,
}

impl Events {
    /// Starts the forwarding thread on `publisher` for containerd namespace `namespace`.
    pub fn start(publisher: RemotePublisher, namespace: String) -> Self {
        let (tx, rx) = channel::<Event>();
        // Where containerd takes events; a restarted containerd is reached again
        // through it (the old connection is dead).
        let address = std::env::var("TTRPC_ADDRESS").unwrap_or_default();
        let spawned = std::thread::Builder::new()
            .name("events".into())
            .spawn(move || {
                let mut publisher = publisher;
                for (topic, event) in rx {
                    publish(&mut publisher, &address, &namespace, topic, event);
                }
            });
        if let Err(e) = spawned {
            log::error!("spawn the events thread: {e}");
        }
        Events { tx: Mutex::new(tx) }
    }

    /// Queues `event` under `topic` (one of containerd's `/tasks/...` topics).
    pub fn send(&self, topic: &'static str, event: impl MessageDyn) {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        // The thread only ends with the process.
        let _ = tx.send((topic, Box::new(event)));
    }
}

/// Sends one event; on a failure, reconnects (containerd may have restarted) and
/// tries again, a few times over about a second, then drops the event with a warning.
fn publish(
    publisher: &mut RemotePublisher,
    address: &str,
    namespace: &str,
    topic: &str,
    event: Box<dyn MessageDyn>,
) {
    let mut last = String::new();
    for attempt in 0..4u64 {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(100 * attempt));
            match RemotePublisher::new(address) {
                Ok(p) => *publisher = p,
                Err(e) => {
                    last = format!("reconnect to {address}: {e}");
                    continue;
                }
            }
        }
        let ctx = containerd_shim::protos::ttrpc::context::with_timeout(0);
        // publish takes the event by value: send a copy, keep the original for a retry.
        match publisher.publish(ctx, topic, namespace, event.clone_box()) {
            Ok(()) => return,
            Err(e) => last = e.to_string(),
        }
    }
    log::warn!("publish {topic}: {last}");
}

/// A protobuf timestamp of `t`.
pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
        ..Default::default()
    }
}
