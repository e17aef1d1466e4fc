//! The sync protocol between the parent and the container's intermediate and init
//! processes: tagged messages on a SOCK_SEQPACKET socketpair (one message per packet).

use crate::error::{Error, Result};
use nix::sys::socket::{
    recvmsg, send, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType,
};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// One message.
#[derive(Debug, Clone)]
pub(crate) enum Msg {
    /// Parent → intermediate: the cgroup is applied, go on.
    Go,
    /// Intermediate → parent: write the uid/gid maps of my new user namespace.
    NeedMaps,
    /// Parent → intermediate: maps written.
    MapsDone,
    /// Intermediate → parent: the init's pid.
    Pid(i32),
    /// Init → parent: mounts done, run prestart/createRuntime hooks now.
    RuntimeHooks,
    /// Parent → init: hooks ran; the state documents (`creating`, `created`) for the
    /// hooks the init runs itself.
    HooksDone { creating: String, created: String },
    /// Init → parent: ready, about to wait for start.
    Ready,
    /// Either way: setup failed.
    Error(String),
    /// Init → parent: the seccomp notify listener fd (in the control data).
    SeccompListener(Option<std::sync::Arc<OwnedFd>>),
    /// Intermediate → parent: my namespaces are entered; open the bind mount sources
    /// in my mount namespace with your privileges.
    NeedMountSources,
    /// Parent → intermediate: some opened sources as (index in `mounts`, fd), at
    /// most [`MOUNT_SOURCES_PER_MSG`] per message.
    MountSources(Vec<(u32, std::sync::Arc<OwnedFd>)>),
    /// Parent → intermediate: every source that could be opened was sent.
    MountSourcesDone,
}

/// Fds per `MountSources` message (the kernel takes at most 253 per SCM_RIGHTS).
pub(crate) const MOUNT_SOURCES_PER_MSG: usize = 64;

impl PartialEq for Msg {
    fn eq(&self, other: &Self) -> bool {
        use Msg::*;
        match (self, other) {
            (Go, Go)
            | (NeedMaps, NeedMaps)
            | (MapsDone, MapsDone)
            | (RuntimeHooks, RuntimeHooks)
            | (NeedMountSources, NeedMountSources)
            | (MountSourcesDone, MountSourcesDone)
            | (Ready, Ready) => true,
            (MountSources(a), MountSources(b)) => {
                a.iter().map(|(i, _)| i).eq(b.iter().map(|(i, _)| i))
            }
            (Pid(a), Pid(b)) => a == b,
            (
                HooksDone {
                    creating: a,
                    created: b,
                },
                HooksDone {
                    creating: c,
                    created: d,
                },
            ) => a == c && b == d,
            (Error(a), Error(b)) => a == b,
            (SeccompListener(a), SeccompListener(b)) => a.is_some() == b.is_some(),
            _ => false,
        }
    }
}

impl Eq for Msg {}

const MAX: usize = 256 * 1024;

/// One end of the channel.
#[derive(Debug)]
pub(crate) struct Channel {
    fd: OwnedFd,
    /// The child's end sends with plain write(2): the init still reports (ready, or a
    /// failure) after the user's seccomp filter is loaded, and write is in every
    /// profile a process can print under (runc's sync pipe needs it there too), while
    /// send/sendto may be denied. The parent's end uses send with MSG_NOSIGNAL, so a
    /// child gone early is an EPIPE there, never a SIGPIPE for an embedding program.
    plain_write: bool,
}

/// A connected pair (parent end, child end), close-on-exec.
pub(crate) fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::sys("socketpair", "sync channel", e))?;
    Ok((
        Channel {
            fd: a,
            plain_write: false,
        },
        Channel {
            fd: b,
            plain_write: true,
        },
    ))
}

impl Channel {
    pub fn as_raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    pub fn send(&self, msg: &Msg) -> Result<()> {
        let mut buf = Vec::with_capacity(64);
        match msg {
            Msg::Go => buf.push(1),
            Msg::NeedMaps => buf.push(2),
            Msg::MapsDone => buf.push(3),
            Msg::Pid(p) => {
                buf.push(4);
                buf.extend_from_slice(&p.to_le_bytes());
            }
            Msg::RuntimeHooks => buf.push(5),
            Msg::HooksDone { creating, created } => {
                buf.push(6);
                buf.extend_from_slice(&(creating.len() as u32).to_le_bytes());
                buf.extend_from_slice(creating.as_bytes());
                buf.extend_from_slice(created.as_bytes());
            }
            Msg::Ready => buf.push(7),
            Msg::Error(s) => {
                buf.push(8);
                buf.extend_from_slice(&s.as_bytes()[..s.len().min(MAX - 1)]);
            }
            Msg::SeccompListener(fd) => {
                buf.push(9);
                let fds: Vec<i32> = fd.iter().map(|f| f.as_raw_fd()).collect();
                return self.send_fds(&buf, &fds);
            }
            Msg::NeedMountSources => buf.push(10),
            Msg::MountSources(list) => {
                if list.len() > MOUNT_SOURCES_PER_MSG {
                    return Err(Error::Init(format!(
                        "sync channel: {} mount sources in one message",
                        list.len()
                    )));
                }
                buf.push(11);
                for (i, _) in list {
                    buf.extend_from_slice(&i.to_le_bytes());
                }
                let fds: Vec<i32> = list.iter().map(|(_, f)| f.as_raw_fd()).collect();
                return self.send_fds(&buf, &fds);
            }
            Msg::MountSourcesDone => buf.push(12),
        }
        if self.plain_write {
            // One write is one packet on a SOCK_SEQPACKET socket, as one send is.
            nix::unistd::write(&self.fd, &buf)
                .map_err(|e| Error::sys("write", "sync channel", e))?;
        } else {
            send(self.fd.as_raw_fd(), &buf, MsgFlags::MSG_NOSIGNAL)
                .map_err(|e| Error::sys("send", "sync channel", e))?;
        }
        Ok(())
    }

    /// One packet whose control data carries `fds` (SCM_RIGHTS).
    fn send_fds(&self, buf: &[u8], fds: &[RawFd]) -> Result<()> {
        let cmsg = [ControlMessage::ScmRights(fds)];
        let iov = [IoSlice::new(buf)];
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|e| Error::sys("sendmsg", "sync channel", e))?;
        Ok(())
    }

    /// Whether a message (or the end of the stream) is waiting now, without blocking.
    pub fn readable_now(&self) -> Result<bool> {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            // SAFETY: one valid pollfd, zero timeout.
            let n = unsafe { libc::poll(&mut p, 1, 0) };
            if n >= 0 {
                return Ok(n > 0);
            }
            let e = nix::Error::last();
            if e != nix::Error::EINTR {
                return Err(Error::sys("poll", "sync channel", e));
            }
        }
    }

    /// Receives one message; `None` when the other side has closed.
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; MAX];
        let mut received: Vec<OwnedFd> = Vec::new();
        let n = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let mut space = nix::cmsg_space!([RawFd; MOUNT_SOURCES_PER_MSG]);
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(Error::sys("recvmsg", "sync channel", e)),
                Ok(msg) => {
                    for c in msg.cmsgs().into_iter().flatten() {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for fd in fds {
                                // SAFETY: a descriptor just received, owned by nobody else.
                                received.push(unsafe { OwnedFd::from_raw_fd(fd) });
                            }
                        }
                    }
                    break msg.bytes;
                }
            }
        };
        if n == 0 {
            return Ok(None);
        }
        let body = &buf[1..n];
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let msg = match buf[0] {
            1 => Msg::Go,
            2 => Msg::NeedMaps,
            3 => Msg::MapsDone,
            4 if body.len() == 4 => {
                Msg::Pid(i32::from_le_bytes(body.try_into().unwrap_or_default()))
            }
            5 => Msg::RuntimeHooks,
            6 if body.len() >= 4 => {
                let len = u32::from_le_bytes(body[..4].try_into().unwrap_or_default()) as usize;
                let rest = &body[4..];
                let len = len.min(rest.len());
                Msg::HooksDone {
                    creating: text(&rest[..len]),
                    created: text(&rest[len..]),
                }
            }
            7 => Msg::Ready,
            8 => Msg::Error(text(body)),
            9 => Msg::SeccompListener(received.pop().map(std::sync::Arc::new)),
            10 => Msg::NeedMountSources,
            11 if body.len() == 4 * received.len() => Msg::MountSources(
                body.chunks_exact(4)
                    .map(|c| u32::from_le_bytes(c.try_into().unwrap_or_default()))
                    .zip(received.into_iter().map(std::sync::Arc::new))
                    .collect(),
            ),
            12 => Msg::MountSourcesDone,
            t => {
                return Err(Error::Init(format!(
                    "sync channel: unexpected message tag {t}"
                )))
            }
        };
        Ok(Some(msg))
    }

    /// Receives and requires a specific message.
    pub fn expect(&self, want: &Msg, peer: &str) -> Result<()> {
        match self.recv()? {
            Some(m) if &m == want => Ok(()),
            Some(Msg::Error(e)) => Err(Error::from_child(e)),
            Some(m) => Err(Error::Init(format!(
                "sync channel: expected {want:?} from {peer}, got {m:?}"
            ))),
            None => Err(Error::Init(format!(
                "{peer} closed the sync channel unexpectedly"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let (a, b) = pair().unwrap();
        let msgs = [
            Msg::Go,
            Msg::NeedMaps,
            Msg::MapsDone,
            Msg::Pid(4242),
            Msg::RuntimeHooks,
            Msg::HooksDone {
                creating: "{\"a\":1}".into(),
                created: "{\"b\":2}".into(),
            },
            Msg::Ready,
            Msg::Error("mount /x: EPERM".into()),
        ];
        for m in &msgs {
            a.send(m).unwrap();
            assert_eq!(b.recv().unwrap().as_ref(), Some(m));
            // The child's end writes: the same packets arrive.
            b.send(m).unwrap();
            assert_eq!(a.recv().unwrap().as_ref(), Some(m));
        }
        let file = std::fs::File::open("/dev/null").unwrap();
        a.send(&Msg::SeccompListener(Some(std::sync::Arc::new(
            file.into(),
        ))))
        .unwrap();
        match b.recv().unwrap() {
            Some(Msg::SeccompListener(Some(fd))) => assert!(fd.as_raw_fd() > 2),
            other => panic!("{other:?}"),
        }
        let list: Vec<(u32, std::sync::Arc<OwnedFd>)> = (0..MOUNT_SOURCES_PER_MSG as u32)
            .map(|i| {
                let f = std::fs::File::open("/").unwrap();
                (i * 3, std::sync::Arc::new(OwnedFd::from(f)))
            })
            .collect();
        a.send(&Msg::MountSources(list.clone())).unwrap();
        match b.recv().unwrap() {
            Some(Msg::MountSources(got)) => {
                assert_eq!(Msg::MountSources(got.clone()), Msg::MountSources(list));
                assert!(got.iter().all(|(_, fd)| fd.as_raw_fd() > 2));
            }
            other => panic!("{other:?}"),
        }
        a.send(&Msg::MountSourcesDone).unwrap();
        assert_eq!(b.recv().unwrap(), Some(Msg::MountSourcesDone));
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }
}
