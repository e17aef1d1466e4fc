//! Build script: records the git commit and the rustc version for `berth --version`.

use std::path::Path;
use std::process::Command;

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    println!("cargo:rerun-if-env-changed=BERTH_COMMIT");

    let commit = std::env::var("BERTH_COMMIT")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| output(Command::new("git").args(["-C", &manifest_dir, "rev-parse", "HEAD"])));
    if let Some(git_dir) =
        output(Command::new("git").args(["-C", &manifest_dir, "rev-parse", "--absolute-git-dir"]))
    {
        // Rebuild the version string when HEAD moves (checkout or commit).
        for f in ["HEAD", "logs/HEAD"] {
            let p = Path::new(&git_dir).join(f);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    println!(
        "cargo:rustc-env=BERTH_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = output(Command::new(rustc).arg("--version"))
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BERTH_RUSTC_VERSION={version}");
}
