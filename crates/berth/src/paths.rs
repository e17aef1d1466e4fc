//! Command-line paths made absolute the way runc does (`filepath.Abs`: join with the
//! working directory, then clean lexically).

use anyhow::Context;
use std::path::{Component, Path, PathBuf};

/// Joins a relative `path` onto the working directory and removes `.` and `..`
/// components without touching the filesystem.
pub fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("get working directory")?
            .join(path)
    };
    Ok(clean(&joined))
}

/// Lexical cleaning of an absolute path (Go's `filepath.Clean`).
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The bundle directory: `--bundle` (default: the working directory) resolved to a real
/// absolute path, as runc's chdir + getcwd gives.
pub fn bundle(arg: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = match arg {
        Some(p) if !p.as_os_str().is_empty() => absolute(p)?,
        _ => std::env::current_dir().context("get working directory")?,
    };
    let real = std::fs::canonicalize(&dir).with_context(|| format!("bundle {}", dir.display()))?;
    if !real.is_dir() {
        anyhow::bail!("bundle {}: not a directory", real.display());
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::clean;
    use std::path::Path;

    #[test]
    fn cleans_like_go() {
        assert_eq!(clean(Path::new("/a/./b/../c")), Path::new("/a/c"));
        assert_eq!(clean(Path::new("/../..")), Path::new("/"));
        assert_eq!(clean(Path::new("/a//b/")), Path::new("/a/b"));
    }
}
