//! The help text of the verbs beyond the lifecycle, runc's global flags, and the man
//! pages and shell completions of `berth generate-docs` (the checked-in ones current).

mod support;

use std::path::Path;

use support::{berth_root, stderr, stdout, TempDir};

#[test]
fn help_docs_and_global_flags() {
    let root = TempDir::new("help-root");
    let out = berth_root(&root, &["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for verb in [
        "checkpoint",
        "events",
        "exec",
        "features",
        "pause",
        "ps",
        "restore",
        "resume",
        "update",
    ] {
        assert!(text.contains(verb), "help lacks {verb}: {text}");
    }
    assert!(!text.contains("generate-docs"), "hidden verb shown");
    let out = berth_root(&root, &["--nosuchflag", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("level=error msg=\"flag provided but not defined: -nosuchflag\""),
        "{}",
        stderr(&out)
    );
    for args in [
        &["--systemd-cgroup", "list"][..],
        &["--rootless", "false", "list"],
        &["--criu", "/usr/sbin/criu", "list"],
    ] {
        let out = berth_root(&root, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let dir = TempDir::new("docs");
    let out = berth_root(&root, &["generate-docs", dir.str()]);
    assert!(out.status.success(), "{}", stderr(&out));
    for f in [
        "man/berth.8",
        "man/berth-exec.8",
        "man/berth-update.8",
        "completions/berth.bash",
        "completions/_berth",
        "completions/berth.fish",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
}

#[test]
fn checked_in_man_pages_and_completions_are_current() {
    let root = TempDir::new("docs-root");
    let dir = TempDir::new("docs-current");
    let out = berth_root(&root, &["generate-docs", dir.str()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    for sub in ["man", "completions"] {
        let fresh = dir.path().join(sub);
        for e in std::fs::read_dir(&fresh)
            .expect("read generated docs")
            .flatten()
        {
            let name = e.file_name();
            let checked_in = std::fs::read(docs.join(sub).join(&name)).unwrap_or_default();
            assert!(
                checked_in == std::fs::read(e.path()).expect("read generated file"),
                "docs/{sub}/{} is stale: run `berth generate-docs docs`",
                name.to_string_lossy()
            );
        }
    }
}
