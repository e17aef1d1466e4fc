//! Build script: records the git commit and the rustc version for `berth --version`,
//! and packs the binary's relative relocations (DT_RELR) when linking for Linux.

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

    // Every start of berth (four per container life, and the CVE-2019-5736
    // re-execution) relocates the binary: about 14,000 relative relocations, 24 bytes
    // each in `.rela.dyn` (336 KB read at every start). DT_RELR packs them into a
    // bitmap of a few KB (glibc >= 2.36, binutils >= 2.38, lld >= 15; Debian 12 has
    // both). ASLR is kept: the binary stays a PIE. docs/performance.md has the figures.
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
