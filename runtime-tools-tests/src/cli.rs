//! The driver's command line.

use std::path::PathBuf;

pub struct Args {
    pub runtime: PathBuf,
    pub root: Option<PathBuf>,
    pub checker: Option<PathBuf>,
    pub filter: Option<String>,
    pub list: bool,
    pub keep_going: bool,
    /// `--view v1-only`: run in a private view of /sys/fs/cgroup (see view.rs).
    pub view: Option<String>,
}

pub const USAGE: &str = "usage: berth-conformance --runtime PATH [--root DIR] [--checker PATH] \
[--filter SUBSTRING[,SUBSTRING...]] [--list] [--keep-going] [--view v1-only]";

pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        runtime: PathBuf::new(),
        root: None,
        checker: None,
        filter: None,
        list: false,
        keep_going: false,
        view: None,
    };
    let mut runtime = None;
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--runtime" => runtime = Some(PathBuf::from(value("--runtime")?)),
            "--root" => a.root = Some(PathBuf::from(value("--root")?)),
            "--checker" => a.checker = Some(PathBuf::from(value("--checker")?)),
            "--filter" => a.filter = Some(value("--filter")?),
            "--list" => a.list = true,
            "--keep-going" => a.keep_going = true,
            "--view" => match value("--view")?.as_str() {
                "v1-only" => a.view = Some("v1-only".into()),
                other => return Err(format!("unknown view {other:?} (known: v1-only)\n{USAGE}")),
            },
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    match runtime {
        Some(r) => a.runtime = r,
        None if a.list => {}
        None => return Err(format!("--runtime is required\n{USAGE}")),
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Args, String> {
        parse(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_flags_in_both_forms() {
        let a = p(&[
            "--runtime",
            "/r",
            "--filter=hooks",
            "--keep-going",
            "--root",
            "/x",
        ])
        .expect("parse");
        assert_eq!(a.runtime, PathBuf::from("/r"));
        assert_eq!(a.filter.as_deref(), Some("hooks"));
        assert_eq!(a.root, Some(PathBuf::from("/x")));
        assert!(a.keep_going && !a.list);
    }

    #[test]
    fn runtime_is_required_except_for_list() {
        assert!(p(&[]).is_err());
        assert!(p(&["--list"]).is_ok());
        assert!(p(&["--runtime"]).is_err());
        assert!(p(&["--bogus"]).is_err());
        assert!(p(&["--runtime", "/r", "--view", "v2"]).is_err());
        let a = p(&["--runtime", "/r", "--view=v1-only"]).expect("parse");
        assert_eq!(a.view.as_deref(), Some("v1-only"));
    }
}
