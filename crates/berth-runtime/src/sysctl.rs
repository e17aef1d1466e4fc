//! `linux.sysctl`: which keys a container may set, and where each is written.
//!
//! A sysctl that is not namespaced is the host's: writing it from the container's
//! /proc/sys changes the host kernel (`kernel.randomize_va_space`). So, as runc's
//! config validator does, a key is accepted only when the container has its own
//! namespace for it: `net.*` with a network namespace that is not the runtime's own,
//! the IPC keys with an IPC namespace, `kernel.domainname` with a UTS namespace.
//! Everything else, `kernel.hostname` included (the `hostname` field sets it), is
//! refused at create, before anything is made.

use crate::error::{Error, Result};
use crate::namespaces::NamespacePlan;
use nix::sched::CloneFlags;
use std::os::fd::AsFd;

/// IPC-namespaced keys besides `fs.mqueue.*` (runc's list).
const IPC_KEYS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Checks every key of `linux.sysctl` against the namespaces and returns the
/// (`/proc/sys/...` path, value) pairs to write, in key order (so the first refused
/// key is the same on every run).
pub(crate) fn plan(
    sysctl: Option<&std::collections::HashMap<String, String>>,
    ns: &NamespacePlan,
) -> Result<Vec<(String, String)>> {
    let mut keys: Vec<(&String, &String)> = sysctl.into_iter().flatten().collect();
    keys.sort();
    let mut host_net = None;
    let mut out = Vec::with_capacity(keys.len());
    for (key, value) in keys {
        let dotted = dotted(key);
        let rel = swap_separators(&dotted);
        if rel.is_empty()
            || rel
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(Error::Config(format!("sysctl key {key:?} is not valid")));
        }
        check(&dotted, ns, &mut host_net)?;
        out.push((format!("/proc/sys/{rel}"), value.clone()));
    }
    Ok(out)
}

/// runc's rule for one key (in dotted form); `host_net` caches whether the network
/// namespace is the runtime's own.
fn check(key: &str, ns: &NamespacePlan, host_net: &mut Option<bool>) -> Result<()> {
    let refuse = |reason: &str| Err(Error::Config(format!("sysctl {key:?} {reason}")));
    if IPC_KEYS.contains(&key) || key.starts_with("fs.mqueue.") {
        if ns.has(CloneFlags::CLONE_NEWIPC) {
            return Ok(());
        }
        return refuse("is not allowed in the host's ipc namespace (linux.namespaces has no ipc)");
    }
    if key.starts_with("net.") {
        let host = match *host_net {
            Some(h) => h,
            None => {
                let h = shares_runtime_net(ns)?;
                *host_net = Some(h);
                h
            }
        };
        if host {
            return refuse("is not allowed in the host's network namespace");
        }
        return Ok(());
    }
    if ns.has(CloneFlags::CLONE_NEWUTS) {
        match key {
            "kernel.domainname" => return Ok(()),
            "kernel.hostname" => {
                return refuse("is not allowed: it conflicts with the hostname field")
            }
            _ => {}
        }
    }
    refuse("is not in a separate kernel namespace: it would change the host's setting")
}

/// True when the container's network namespace is the one this process is in: none of
/// its own, or one joined by a path that is ours ("host" meaning the runtime's, as runc).
fn shares_runtime_net(ns: &NamespacePlan) -> Result<bool> {
    // A path not opened (a check without side effects) cannot be compared: it is
    // taken as another namespace, and `create` itself compares it.
    if ns.new.contains(CloneFlags::CLONE_NEWNET) || ns.unopened.contains(CloneFlags::CLONE_NEWNET) {
        return Ok(false);
    }
    let Some(joined) = ns.join.iter().find(|j| j.flag == CloneFlags::CLONE_NEWNET) else {
        return Ok(true);
    };
    let theirs = nix::sys::stat::fstat(joined.fd.as_fd())
        .map_err(|e| Error::sys("stat", &joined.path, e))?;
    let ours = nix::sys::stat::stat("/proc/self/ns/net")
        .map_err(|e| Error::sys("stat", "/proc/self/ns/net", e))?;
    Ok(theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino)
}

/// A key in dotted form: sysctl(8) accepts `/` as the separator, and then a `.` is part
/// of a name (`net/ipv4/conf/eth0.100/rp_filter` is `net.ipv4.conf.eth0/100.rp_filter`).
fn dotted(key: &str) -> String {
    match key.find(['.', '/']) {
        Some(i) if key.as_bytes()[i] == b'/' => swap_separators(key),
        _ => key.to_string(),
    }
}

fn swap_separators(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '.' => '/',
            '/' => '.',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns_plan(new: CloneFlags) -> NamespacePlan {
        NamespacePlan {
            new,
            join: Vec::new(),
            uid_map: String::new(),
            gid_map: String::new(),
            time_offsets: String::new(),
            unopened: CloneFlags::empty(),
        }
    }

    fn one(key: &str, ns: &NamespacePlan) -> Result<Vec<(String, String)>> {
        let map = [(key.to_string(), "1".to_string())].into_iter().collect();
        plan(Some(&map), ns)
    }

    #[test]
    fn separators() {
        assert_eq!(dotted("net.ipv4.ip_forward"), "net.ipv4.ip_forward");
        assert_eq!(
            dotted("net/ipv4/conf/eth0.100/rp_filter"),
            "net.ipv4.conf.eth0/100.rp_filter"
        );
        let all = ns_plan(CloneFlags::CLONE_NEWNET);
        assert_eq!(
            one("net/ipv4/conf/eth0.100/rp_filter", &all).unwrap()[0].0,
            "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"
        );
        assert_eq!(
            one("net.ipv4.ip_forward", &all).unwrap()[0].0,
            "/proc/sys/net/ipv4/ip_forward"
        );
        for bad in ["net..x", "net.ipv4.", "net/../../x", ""] {
            assert!(one(bad, &all).is_err(), "{bad}");
        }
    }

    #[test]
    fn namespaced_keys_need_their_namespace() {
        let none = ns_plan(CloneFlags::empty());
        let all =
            ns_plan(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS);
        for key in [
            "net.ipv4.ip_forward",
            "kernel.shmmax",
            "kernel.sem",
            "fs.mqueue.msg_max",
            "kernel.domainname",
        ] {
            assert!(one(key, &all).is_ok(), "{key} with its namespace");
            let e = one(key, &none).unwrap_err().to_string();
            assert!(e.contains(&format!("{key:?}")), "{e}");
        }
        for key in [
            "kernel.randomize_va_space",
            "kernel.hostname",
            "vm.overcommit_memory",
        ] {
            let e = one(key, &all).unwrap_err().to_string();
            assert!(e.contains(&format!("sysctl {key:?}")), "{e}");
        }
        assert!(one("kernel.hostname", &all)
            .unwrap_err()
            .to_string()
            .contains("hostname field"));
        assert!(one("kernel.randomize_va_space", &all)
            .unwrap_err()
            .to_string()
            .contains("not in a separate kernel namespace"));
    }

    #[test]
    fn joining_the_runtime_network_namespace_is_the_host_one() {
        let join = |path: &str| crate::namespaces::Join {
            flag: CloneFlags::CLONE_NEWNET,
            fd: nix::fcntl::open(
                path,
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .unwrap(),
            path: path.to_string(),
        };
        let mut ns = ns_plan(CloneFlags::empty());
        ns.join.push(join("/proc/self/ns/net"));
        let e = one("net.ipv4.ip_forward", &ns).unwrap_err().to_string();
        assert!(e.contains("host's network namespace"), "{e}");
    }

    #[test]
    fn the_first_refused_key_in_order_is_named() {
        let none = ns_plan(CloneFlags::empty());
        let map = [("vm.b", "1"), ("kernel.a", "1"), ("net.c", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let e = plan(Some(&map), &none).unwrap_err().to_string();
        assert!(e.contains("\"kernel.a\""), "{e}");
    }
}
