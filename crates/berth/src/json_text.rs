//! JSON text as runc writes config.json: Go's `json.MarshalIndent` with a tab, object
//! keys in the order of the runtime-spec Go structs rather than alphabetical.

use serde_json::Value;
use std::fmt::Write;

/// Keys of the runtime-spec Go structs, in struct-field order. One list serves every
/// object because the orders never conflict (`type` sits after `destination` for
/// mounts and before `hard` for rlimits). Unlisted keys follow, alphabetically.
const KEY_ORDER: &[&str] = &[
    "ociVersion",
    "process",
    "terminal",
    "consoleSize",
    "height",
    "width",
    "user",
    "uid",
    "gid",
    "umask",
    "additionalGids",
    "username",
    "args",
    "commandLine",
    "env",
    "cwd",
    "capabilities",
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
    "rlimits",
    "noNewPrivileges",
    "apparmorProfile",
    "oomScoreAdj",
    "selinuxLabel",
    "root",
    "path",
    "readonly",
    "hostname",
    "domainname",
    "mounts",
    "destination",
    "type",
    "source",
    "options",
    "hard",
    "soft",
    "hooks",
    "annotations",
    "linux",
    "uidMappings",
    "gidMappings",
    "containerID",
    "hostID",
    "size",
    "sysctl",
    "resources",
    "devices",
    "allow",
    "major",
    "minor",
    "access",
    "cgroupsPath",
    "namespaces",
    "maskedPaths",
    "readonlyPaths",
    "mountLabel",
];

fn rank(key: &str) -> usize {
    KEY_ORDER
        .iter()
        .position(|k| *k == key)
        .unwrap_or(KEY_ORDER.len())
}

/// Formats `value` with tab indentation and runc's key order, without a final newline
/// (runc writes none).
pub fn to_go_indent(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, 0);
    out
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push('\t');
    }
}

fn write_value(out: &mut String, value: &Value, depth: usize) {
    match value {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_value(out, item, depth + 1);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                let _ = write!(out, "{}: ", Value::String((*key).clone()));
                write_value(out, &map[key.as_str()], depth + 1);
            }
            newline(out, depth);
            out.push('}');
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::to_go_indent;
    use serde_json::json;

    #[test]
    fn go_layout_and_order() {
        let v = json!({"type": "tmpfs", "destination": "/dev", "options": [], "zzz": {}});
        assert_eq!(
            to_go_indent(&v),
            "{\n\t\"destination\": \"/dev\",\n\t\"type\": \"tmpfs\",\n\t\"options\": [],\n\t\"zzz\": {}\n}"
        );
    }
}
