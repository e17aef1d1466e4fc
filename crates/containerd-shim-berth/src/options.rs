//! The runtime options containerd passes at create (the runc shim's
//! `containerd.runc.v1.Options`, when a client sets them; containerd 1.6's CRI plugin
//! and `ctr` build that type for `io.containerd.runc.*` runtimes only, and for others
//! the generic `runtimeoptions.v1.Options`, whose config file the shim reads:
//! `runtime_options.rs`, docs/integration.md), and where the shim keeps them
//! for its `delete` action, which runs in a new process after a crash: `options.json`
//! in the bundle, as the runc shim does.

use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::shim::oci::{CheckpointOptions, Options};
use std::path::{Path, PathBuf};

/// Where container state goes without a `Root` option: berth's own directory beside
/// the runc shim's /run/containerd/runc, one subdirectory per containerd namespace.
pub const DEFAULT_ROOT: &str = "/run/containerd/berth";

/// Decodes the options of a create request: runc's type, or containerd's generic
/// type with a config file; none, or another type (with a warning), gives the defaults.
pub fn from_any(any: Option<&Any>) -> Result<Options, String> {
    match any {
        Some(a) if a.type_url.ends_with("containerd.runc.v1.Options") => {
            Options::parse_from_bytes(&a.value)
                .map_err(|e| format!("runtime options {}: {e}", a.type_url))
        }
        Some(a) if a.type_url.ends_with(crate::runtime_options::TYPE) => {
            crate::runtime_options::decode(&a.value)
        }
        Some(a) if !a.type_url.is_empty() => {
            // Kept lenient, as before: an engine may send a type of its own.
            log::warn!(
                "runtime options of type {}: not understood, the defaults apply (berth reads \
                 containerd.runc.v1.Options and {})",
                a.type_url,
                crate::runtime_options::TYPE
            );
            Ok(Options::default())
        }
        _ => Ok(Options::default()),
    }
}

/// The state root for namespace `ns` under `options`.
pub fn root(options: &Options, ns: &str) -> PathBuf {
    let base = if options.root.is_empty() {
        DEFAULT_ROOT
    } else {
        &options.root
    };
    Path::new(base).join(ns)
}

/// Saves `options` in `bundle` for the `delete` action.
pub fn save(bundle: &Path, options: &Options) -> Result<(), String> {
    let b = bundle.to_str().ok_or("bundle path is not UTF-8")?;
    containerd_shim::synchronous::util::write_options(b, options)
        .map_err(|e| format!("write options.json in {}: {e}", bundle.display()))
}

/// The options saved in `bundle`; the defaults if none were saved.
pub fn load(bundle: &Path) -> Options {
    containerd_shim::synchronous::util::read_options(bundle).unwrap_or_default()
}

/// The criu binary: looked up as the CLI's `--criu` default is (PATH, /usr/sbin,
/// /sbin); the bare name when it is nowhere, for CRIU's own "not found" error.
fn criu() -> PathBuf {
    berth_runtime::criu::find("criu").unwrap_or_else(|| PathBuf::from("criu"))
}

/// CRIU's work directory under the bundle when the options name none (runc's shim
/// uses the same name).
pub const CRIU_WORK: &str = "criu-work";

/// berth's dump options for containerd's checkpoint of a task into `path`, from the
/// request's `containerd.runc.v1.CheckpointOptions` (none: the defaults, the task
/// left running; `exit` stops it, as `ctr task checkpoint --exit` asks) and the options
/// saved at create (`criu_work_path`). The image path of the request's options, when
/// set, wins over `path`, as in runc's shim. Without a work path CRIU's work files go
/// to `<bundle>/criu-work` (the caller removes it), not into the image containerd
/// commits.
pub fn checkpoint(
    any: Option<&Any>,
    path: &str,
    saved: &Options,
    bundle: &Path,
) -> Result<berth_runtime::criu::CheckpointOptions, String> {
    let o = match any {
        // containerd's Go client sends the older `containerd.linux.runc` type for a
        // runtime that is not runc's (WithCheckpointImagePath and friends): the same
        // fields under the same numbers.
        Some(a)
            if a.type_url.ends_with("containerd.runc.v1.CheckpointOptions")
                || a.type_url
                    .ends_with("containerd.linux.runc.CheckpointOptions") =>
        {
            CheckpointOptions::parse_from_bytes(&a.value)
                .map_err(|e| format!("checkpoint options {}: {e}", a.type_url))?
        }
        Some(a) => {
            return Err(format!(
                "checkpoint options of type {}: not understood",
                a.type_url
            ))
        }
        None => CheckpointOptions::default(),
    };
    let image = if o.image_path.is_empty() {
        path
    } else {
        &o.image_path
    };
    if image.is_empty() {
        return Err("checkpoint: no image path in the request or its options".into());
    }
    let work = if o.work_path.is_empty() {
        &saved.criu_work_path
    } else {
        &o.work_path
    };
    let cgroups_mode = if o.cgroups_mode.is_empty() {
        Default::default()
    } else {
        o.cgroups_mode
            .parse()
            .map_err(|e: berth_runtime::Error| e.to_string())?
    };
    if o.empty_namespaces.iter().any(|n| n != "network") {
        return Err(format!(
            "checkpoint: empty namespaces {:?}: only \"network\" is supported",
            o.empty_namespaces
        ));
    }
    Ok(berth_runtime::criu::CheckpointOptions {
        criu: berth_runtime::criu::CriuOptions {
            criu: criu(),
            image_dir: PathBuf::from(image),
            work_dir: Some(if work.is_empty() {
                bundle.join(CRIU_WORK)
            } else {
                PathBuf::from(work)
            }),
            tcp_established: o.open_tcp,
            ext_unix_sk: o.external_unix_sockets,
            shell_job: o.terminal,
            file_locks: o.file_locks,
            cgroups_mode,
            empty_net_ns: !o.empty_namespaces.is_empty(),
            ..Default::default()
        },
        leave_running: !o.exit,
        ..Default::default()
    })
}

/// berth's restore options for containerd's create of a task from the checkpoint
/// images in `image` (the request's `checkpoint`), with the work path saved in the
/// create's options. Stdio is the shim's to fill in.
pub fn restore(image: &str, options: &Options) -> berth_runtime::criu::RestoreOptions {
    berth_runtime::criu::RestoreOptions {
        criu: berth_runtime::criu::CriuOptions {
            criu: criu(),
            image_dir: PathBuf::from(image),
            work_dir: (!options.criu_work_path.is_empty())
                .then(|| PathBuf::from(&options.criu_work_path)),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(o: &CheckpointOptions) -> Any {
        Any {
            type_url: "type.googleapis.com/containerd.runc.v1.CheckpointOptions".into(),
            value: o.write_to_bytes().unwrap(),
            ..Default::default()
        }
    }

    /// containerd's container checkpoint sends `exit: false`: the task runs on, and
    /// the image goes to the request's path.
    #[test]
    fn checkpoint_defaults_leave_running_at_path() {
        let o = checkpoint(
            Some(&any(&CheckpointOptions::default())),
            "/tmp/x",
            &Options::default(),
            Path::new("/b"),
        )
        .unwrap();
        assert!(o.leave_running);
        assert_eq!(o.criu.image_dir, PathBuf::from("/tmp/x"));
        assert_eq!(o.criu.work_dir, Some(PathBuf::from("/b/criu-work")));
        assert!(o.criu.criu.ends_with("criu"), "{}", o.criu.criu.display());
    }

    /// `exit`, the options' own image path (it wins), the saved work path, flags.
    #[test]
    fn checkpoint_options_mapped() {
        let req = CheckpointOptions {
            exit: true,
            open_tcp: true,
            file_locks: true,
            image_path: "/img".into(),
            cgroups_mode: "strict".into(),
            empty_namespaces: vec!["network".into()],
            ..Default::default()
        };
        let saved = Options {
            criu_work_path: "/work".into(),
            ..Default::default()
        };
        let o = checkpoint(Some(&any(&req)), "/tmp/x", &saved, Path::new("/b")).unwrap();
        assert!(!o.leave_running);
        assert_eq!(o.criu.image_dir, PathBuf::from("/img"));
        assert_eq!(o.criu.work_dir, Some(PathBuf::from("/work")));
        assert!(o.criu.tcp_established && o.criu.file_locks && o.criu.empty_net_ns);
        assert_eq!(
            o.criu.cgroups_mode,
            berth_runtime::criu::CgroupsMode::Strict
        );
    }

    /// What berth cannot do is refused with the field named, not ignored.
    #[test]
    fn checkpoint_refusals() {
        let bad_mode = CheckpointOptions {
            cgroups_mode: "loose".into(),
            ..Default::default()
        };
        let e = checkpoint(
            Some(&any(&bad_mode)),
            "/p",
            &Options::default(),
            Path::new("/b"),
        )
        .unwrap_err();
        assert!(e.contains("loose"), "{e}");
        let pid_ns = CheckpointOptions {
            empty_namespaces: vec!["pid".into()],
            ..Default::default()
        };
        let e = checkpoint(
            Some(&any(&pid_ns)),
            "/p",
            &Options::default(),
            Path::new("/b"),
        )
        .unwrap_err();
        assert!(e.contains("empty namespaces"), "{e}");
        let e = checkpoint(None, "", &Options::default(), Path::new("/b")).unwrap_err();
        assert!(e.contains("no image path"), "{e}");
        let other = Any {
            type_url: "example.com/Other".into(),
            ..Default::default()
        };
        assert!(checkpoint(Some(&other), "/p", &Options::default(), Path::new("/b")).is_err());
        // The older containerd.linux.runc type: the same fields.
        let mut linux = any(&CheckpointOptions {
            exit: true,
            ..Default::default()
        });
        linux.type_url = "type.googleapis.com/containerd.linux.runc.CheckpointOptions".into();
        let o = checkpoint(Some(&linux), "/p", &Options::default(), Path::new("/b")).unwrap();
        assert!(!o.leave_running);
    }

    /// Restore: the request's checkpoint directory and the saved work path.
    #[test]
    fn restore_options() {
        let saved = Options {
            criu_work_path: "/w".into(),
            ..Default::default()
        };
        let r = restore("/ckpt", &saved);
        assert_eq!(r.criu.image_dir, PathBuf::from("/ckpt"));
        assert_eq!(r.criu.work_dir, Some(PathBuf::from("/w")));
    }
}
