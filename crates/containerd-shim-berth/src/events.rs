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
        std::thread::Builder::new()
            .name("events".into())
            .spawn(move || {
                for (topic, event) in rx {
                    let ctx = containerd_shim::protos::ttrpc::context::with_timeout(0);
                    if let Err(e) = publisher.publish(ctx, topic, &namespace, event) {
                        log::warn!("publish {topic}: {e}");
                    }
                }
            })
            .expect("spawn the events thread");
        Events { tx: Mutex::new(tx) }
    }

    /// Queues `event` under `topic` (one of containerd's `/tasks/...` topics).
    pub fn send(&self, topic: &'static str, event: impl MessageDyn) {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        // The thread only ends with the process.
        let _ = tx.send((topic, Box::new(event)));
    }
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
