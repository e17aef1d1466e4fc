//! containerd's generic runtime options, `runtimeoptions.v1.Options`: what the CRI
//! plugin sends for a handler whose `runtime_type` is not runc's (its `options` table
//! holds only `TypeUrl` and `ConfigPath`, and from containerd 1.7 `ConfigBody`), and
//! what `ctr run --runtime-config-path FILE` sends. The shim reads the runc option
//! keys it knows from that TOML file (or body):
//!
//! ```toml
//! SystemdCgroup = true
//! Root = "/run/containerd/berth-k8s"
//! NoPivotRoot = false
//! NoNewKeyring = false
//! CriuWorkPath = "/var/lib/berth/criu"
//! ```
//!
//! A key it does not know is refused with its name (a misspelt `SystemdCgroups` would
//! otherwise leave a kubelet with the systemd driver on cgroupfs, silently).

use containerd_shim::protos::protobuf::rt::WireType;
use containerd_shim::protos::protobuf::CodedInputStream;
use containerd_shim::protos::shim::oci::Options;
use serde::Deserialize;

/// The type URL suffix of containerd's generic options.
pub const TYPE: &str = "runtimeoptions.v1.Options";

/// The keys of the config file: the runc shim's option names. The ones that mean
/// nothing to berth (a runc handler's table copied as it is: containerd 1.7 sends the
/// whole table as the body) are accepted and ignored with a warning; any other key is
/// refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ConfigFile {
    root: Option<String>,
    systemd_cgroup: Option<bool>,
    no_pivot_root: Option<bool>,
    no_new_keyring: Option<bool>,
    criu_work_path: Option<String>,
    criu_image_path: Option<String>,
    binary_name: Option<toml::Value>,
    shim_cgroup: Option<toml::Value>,
    io_uid: Option<toml::Value>,
    io_gid: Option<toml::Value>,
    criu_path: Option<toml::Value>,
    task_api_address: Option<toml::Value>,
    task_api_version: Option<toml::Value>,
    /// The generic options' own keys, when a whole handler table is the body.
    #[serde(rename = "TypeUrl")]
    _type_url: Option<toml::Value>,
    #[serde(rename = "ConfigPath")]
    _config_path: Option<toml::Value>,
}

/// The options in `value` (an encoded `runtimeoptions.v1.Options`): from the file at
/// its `ConfigPath` when set, else from its `ConfigBody` (containerd's order), else
/// the defaults.
pub fn decode(value: &[u8]) -> Result<Options, String> {
    let (path, body) = fields(value)?;
    let (text, source) = if !path.is_empty() {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("runtime options: ConfigPath {path}: {e}"))?;
        (text, format!("ConfigPath {path}"))
    } else if !body.is_empty() {
        (body, "ConfigBody".to_string())
    } else {
        return Ok(Options::default());
    };
    parse(&text).map_err(|e| format!("runtime options: {source}: {e}"))
}

/// The runc options a TOML text sets.
fn parse(text: &str) -> Result<Options, String> {
    let f: ConfigFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let ignored: Vec<&str> = [
        ("BinaryName", f.binary_name.is_some()),
        ("ShimCgroup", f.shim_cgroup.is_some()),
        ("IoUid", f.io_uid.is_some()),
        ("IoGid", f.io_gid.is_some()),
        ("CriuPath", f.criu_path.is_some()),
        ("TaskApiAddress", f.task_api_address.is_some()),
        ("TaskApiVersion", f.task_api_version.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, set)| set.then_some(k))
    .collect();
    if !ignored.is_empty() {
        log::warn!("runtime options: ignored (nothing of berth's uses them): {ignored:?}");
    }
    Ok(Options {
        root: f.root.unwrap_or_default(),
        systemd_cgroup: f.systemd_cgroup.unwrap_or(false),
        no_pivot_root: f.no_pivot_root.unwrap_or(false),
        no_new_keyring: f.no_new_keyring.unwrap_or(false),
        criu_work_path: f.criu_work_path.unwrap_or_default(),
        criu_image_path: f.criu_image_path.unwrap_or_default(),
        ..Default::default()
    })
}

/// `config_path` (field 2) and `config_body` (field 3, bytes in containerd 1.7) of the
/// message; `type_url` (1) and unknown fields are skipped.
fn fields(value: &[u8]) -> Result<(String, String), String> {
    let bad = |e: containerd_shim::protos::protobuf::Error| format!("{TYPE}: {e}");
    let mut input = CodedInputStream::from_bytes(value);
    let (mut path, mut body) = (String::new(), String::new());
    while let Some(tag) = input.read_raw_tag_or_eof().map_err(bad)? {
        let wire =
            WireType::new(tag & 7).ok_or_else(|| format!("{TYPE}: bad wire type in tag {tag}"))?;
        match (tag >> 3, wire) {
            (2, WireType::LengthDelimited) => {
                path = utf8(input.read_bytes().map_err(bad)?, "config_path")?
            }
            (3, WireType::LengthDelimited) => {
                body = utf8(input.read_bytes().map_err(bad)?, "config_body")?
            }
            _ => input.skip_field(wire).map_err(bad)?,
        }
    }
    Ok((path, body))
}

fn utf8(bytes: Vec<u8>, field: &str) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|_| format!("{TYPE}: {field} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::protos::protobuf::CodedOutputStream;

    fn encode(type_url: &str, path: &str, body: &str) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut os = CodedOutputStream::vec(&mut out);
            os.write_string(1, type_url).unwrap();
            if !path.is_empty() {
                os.write_string(2, path).unwrap();
            }
            if !body.is_empty() {
                os.write_bytes(3, body.as_bytes()).unwrap();
            }
            os.write_uint32(9, 7).unwrap();
            os.flush().unwrap();
        }
        out
    }

    /// The body without a path; every key known, runc's unused ones accepted; an
    /// unknown field number is skipped.
    #[test]
    fn body_keys() {
        let o = decode(&encode(
            "x",
            "",
            "SystemdCgroup = true\nRoot = \"/r\"\nNoPivotRoot = true\nNoNewKeyring = true\nCriuWorkPath = \"/w\"\nBinaryName = \"runc\"\nIoUid = 0\n",
        ))
        .unwrap();
        assert!(o.systemd_cgroup && o.no_pivot_root && o.no_new_keyring);
        assert_eq!((o.root.as_str(), o.criu_work_path.as_str()), ("/r", "/w"));
    }

    /// The file at ConfigPath; a missing file and an unknown key are errors naming them.
    #[test]
    fn config_path() {
        let dir = std::env::temp_dir().join(format!("berth-rtopts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("shim.toml");
        std::fs::write(&f, "SystemdCgroup = true\n").unwrap();
        let o = decode(&encode("x", f.to_str().unwrap(), "")).unwrap();
        assert!(o.systemd_cgroup && o.root.is_empty());
        // The path wins over a body (containerd's order).
        let o = decode(&encode("x", f.to_str().unwrap(), "Root = \"/b\"\n")).unwrap();
        assert!(o.systemd_cgroup && o.root.is_empty());
        std::fs::write(&f, "SystemdCgroups = true\n").unwrap();
        let e = decode(&encode("x", f.to_str().unwrap(), "")).unwrap_err();
        assert!(
            e.contains("SystemdCgroups") && e.contains("shim.toml"),
            "{e}"
        );
        let e = decode(&encode("x", "/no/such/berth.toml", "")).unwrap_err();
        assert!(e.contains("/no/such/berth.toml"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Neither path nor body: the defaults.
    #[test]
    fn empty_is_default() {
        let o = decode(&encode("x", "", "")).unwrap();
        assert!(!o.systemd_cgroup && o.root.is_empty());
        assert!(decode(b"\xff").is_err());
    }
}
