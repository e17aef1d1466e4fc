//! Device cgroup rules: the defaults every container gets (runc's AllowedDevices) and
//! the text form the v1 devices controller takes.

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

fn rule(
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(true);
    r.set_typ(Some(typ));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_string()));
    r
}

/// The rules runc appends after the spec's own `linux.resources.devices`, in runc's
/// order: mknod of any char and block device, /dev/null, random, full, tty, zero,
/// urandom, /dev/pts/* (136:*), /dev/ptmx (5:2). berth adds /dev/console (5:1), which
/// runc bind-mounts over a pty so that the rule only matters for a console device node.
pub fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::C;
    vec![
        rule(C, None, None, "m"),
        rule(LinuxDeviceType::B, None, None, "m"),
        rule(C, Some(1), Some(3), "rwm"),
        rule(C, Some(1), Some(8), "rwm"),
        rule(C, Some(1), Some(7), "rwm"),
        rule(C, Some(5), Some(0), "rwm"),
        rule(C, Some(1), Some(5), "rwm"),
        rule(C, Some(1), Some(9), "rwm"),
        rule(C, Some(136), None, "rwm"),
        rule(C, Some(5), Some(2), "rwm"),
        rule(C, Some(5), Some(1), "rwm"),
    ]
}

/// The spec's rules followed by the defaults: what the devices controller is given.
pub fn effective_device_rules(spec: Option<&[LinuxDeviceCgroup]>) -> Vec<LinuxDeviceCgroup> {
    let mut rules = spec.map(<[_]>::to_vec).unwrap_or_default();
    rules.extend(default_device_rules());
    rules
}

/// The access letters the kernel knows (`r`, `w`, `m`) that `access` names, in that
/// order. Other letters are ignored, as runc's permission sets ignore them (runc's own
/// tests send `rwa`): they name no access the kernel can check.
pub(crate) fn access_letters(access: &str) -> String {
    "rwm".chars().filter(|&c| access.contains(c)).collect()
}

/// A rule in the devices.allow / devices.deny form: `c 1:3 rwm`, `a *:* rwm`; `None`
/// for a rule that names no access the kernel knows (it changes nothing).
pub(crate) fn rule_string(index: usize, r: &LinuxDeviceCgroup) -> Result<Option<String>> {
    let bad = |reason: String| Error::Resource {
        path: "linux.resources.devices".into(),
        reason,
    };
    let typ = match r.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => 'a',
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::C => 'c',
        other => {
            return Err(bad(format!(
                "rule {index}: invalid cgroup device type {:?}",
                other.as_str()
            )))
        }
    };
    let access = r.access().as_deref().unwrap_or("");
    if access.is_empty() {
        return Err(bad(format!(
            "device access at {index} field cannot be empty"
        )));
    }
    let letters = access_letters(access);
    let num = |n: Option<i64>| match n {
        None | Some(-1) => Ok("*".to_string()),
        Some(n) if n >= 0 => Ok(n.to_string()),
        Some(n) => Err(bad(format!("rule {index}: invalid device number {n}"))),
    };
    let line = format!("{typ} {}:{} {letters}", num(r.major())?, num(r.minor())?);
    // A wildcard rule resets the list whatever its letters (see is_wildcard).
    Ok((typ == 'a' || !letters.is_empty()).then_some(line))
}

/// Whether a rule resets the whole list (`a` with any numbers): the kernel treats a
/// write of `a` as "allow all" / "deny all" and drops every exception.
pub(crate) fn is_wildcard(r: &LinuxDeviceCgroup) -> bool {
    r.typ().unwrap_or(LinuxDeviceType::A) == LinuxDeviceType::A
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_runc_and_come_after_spec_rules() {
        let strs: Vec<_> = default_device_rules()
            .iter()
            .enumerate()
            .map(|(i, r)| rule_string(i, r).unwrap().unwrap())
            .collect();
        assert_eq!(
            strs,
            [
                "c *:* m",
                "b *:* m",
                "c 1:3 rwm",
                "c 1:8 rwm",
                "c 1:7 rwm",
                "c 5:0 rwm",
                "c 1:5 rwm",
                "c 1:9 rwm",
                "c 136:* rwm",
                "c 5:2 rwm",
                "c 5:1 rwm"
            ]
        );
        let mut deny = LinuxDeviceCgroup::default();
        deny.set_access(Some("rwm".into()));
        let all = effective_device_rules(Some(&[deny.clone()]));
        assert_eq!(all[0], deny);
        assert_eq!(all.len(), 12);
        assert_eq!(rule_string(0, &deny).unwrap().as_deref(), Some("a *:* rwm"));
        assert!(is_wildcard(&deny));
    }

    #[test]
    fn bad_rules_are_refused() {
        let mut r = LinuxDeviceCgroup::default();
        assert!(rule_string(3, &r)
            .unwrap_err()
            .to_string()
            .contains("device access at 3"));
        r.set_typ(Some(LinuxDeviceType::C));
        r.set_major(Some(1));
        r.set_minor(Some(11));
        // Letters the kernel does not know are ignored, as runc does (`rwa` in its tests).
        r.set_access(Some("rwa".into()));
        assert_eq!(rule_string(0, &r).unwrap().as_deref(), Some("c 1:11 rw"));
        r.set_access(Some("x".into()));
        assert_eq!(rule_string(0, &r).unwrap(), None);
        r.set_access(Some("r".into()));
        r.set_typ(Some(LinuxDeviceType::P));
        assert!(rule_string(0, &r).is_err());
    }
}
