//! argv, envp and the executable: `args[0]` is looked up in the container's `PATH`
//! (from `process.env`) like execvp, with the candidates prepared in the parent and
//! tried by the init after pivot_root.

use super::cstring;
use crate::error::{Error, Result};
use oci_spec::runtime::Process;
use std::cell::RefCell;
use std::ffi::CString;

/// The PATH used when `process.env` has none (runc's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug)]
pub(crate) struct ExecPlan {
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    /// Paths to try, in order.
    pub candidates: Vec<CString>,
    /// `process.env` has no HOME (or an empty one): the process user's home from the
    /// container's passwd is added, as runc does.
    pub needs_home: bool,
    /// That home, found by [`ExecPlan::find_home`] in the container.
    home: RefCell<Option<CString>>,
}

impl ExecPlan {
    pub fn new(p: &Process) -> Result<Self> {
        let args = p
            .args()
            .as_ref()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| Error::Config("process.args must not be empty".into()))?;
        let env: Vec<String> = p.env().clone().unwrap_or_default();
        let path = env
            .iter()
            .rev()
            .find_map(|kv| kv.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        let arg0 = &args[0];
        let candidates = if arg0.contains('/') {
            vec![cstring(arg0.as_bytes(), "process.args[0]")?]
        } else {
            path.split(':')
                .map(|dir| if dir.is_empty() { "." } else { dir })
                .map(|dir| {
                    cstring(
                        format!("{}/{arg0}", dir.trim_end_matches('/')).as_bytes(),
                        "PATH entry",
                    )
                })
                .collect::<Result<_>>()?
        };
        let needs_home = env
            .iter()
            .rev()
            .find_map(|kv| kv.strip_prefix("HOME="))
            .is_none_or(str::is_empty);
        Ok(ExecPlan {
            needs_home,
            home: RefCell::new(None),
            args: args
                .iter()
                .map(|a| cstring(a.as_bytes(), "process.args"))
                .collect::<Result<_>>()?,
            env: env
                .iter()
                .map(|e| cstring(e.as_bytes(), "process.env"))
                .collect::<Result<_>>()?,
            candidates,
        })
    }

    /// In the init, after pivot_root: the first candidate that is an executable
    /// regular file, as execvp would pick it.
    pub fn resolve(&self) -> Result<usize> {
        for (i, c) in self.candidates.iter().enumerate() {
            if let Ok(st) = nix::sys::stat::stat(c.as_c_str()) {
                let is_file = st.st_mode & libc::S_IFMT == libc::S_IFREG;
                if is_file
                    && nix::unistd::access(c.as_c_str(), nix::unistd::AccessFlags::X_OK).is_ok()
                {
                    return Ok(i);
                }
            }
        }
        let arg0 = self.args[0].to_string_lossy();
        Err(Error::Init(if arg0.contains('/') {
            format!("exec: {arg0:?}: no such executable file")
        } else {
            format!("exec: {arg0:?}: executable file not found in $PATH")
        }))
    }

    /// In the container, after pivot_root and before the user is changed (the passwd
    /// file may be readable by root only): the home of `uid` when HOME is needed.
    pub fn find_home(&self, uid: u32) -> Result<()> {
        if self.needs_home {
            *self.home.borrow_mut() = Some(super::passwd::home_of(uid)?);
        }
        Ok(())
    }

    /// The environment for execve: `process.env`, with `HOME=<home>` in place of an
    /// empty HOME, or at the end when there was none.
    pub(crate) fn envp(&self) -> Vec<CString> {
        let Some(home) = self.home.borrow().clone() else {
            return self.env.clone();
        };
        let mut value = b"HOME=".to_vec();
        value.extend_from_slice(home.as_bytes());
        let mut env: Vec<CString> = self
            .env
            .iter()
            .filter(|e| !e.as_bytes().starts_with(b"HOME="))
            .cloned()
            .collect();
        // Cannot fail: neither part holds a NUL.
        env.extend(CString::new(value).ok());
        env
    }

    /// Replaces the process image; returns only on failure.
    pub fn exec(&self, index: usize) -> Error {
        let path = &self.candidates[index];
        match nix::unistd::execve(path, &self.args, &self.envp()) {
            Err(e) => Error::sys("execve", path.to_string_lossy(), e),
            Ok(never) => match never {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::ProcessBuilder;

    #[test]
    fn path_candidates_from_env() {
        let p = ProcessBuilder::default()
            .args(vec!["sh".to_string()])
            .env(vec!["PATH=/a:/b/".to_string()])
            .build()
            .unwrap();
        let plan = ExecPlan::new(&p).unwrap();
        let c: Vec<_> = plan
            .candidates
            .iter()
            .map(|c| c.to_str().unwrap())
            .collect();
        assert_eq!(c, ["/a/sh", "/b/sh"]);
    }

    #[test]
    fn home_is_added_when_missing_or_empty() {
        let plan = |env: &[&str]| {
            let p = ProcessBuilder::default()
                .args(vec!["sh".to_string()])
                .env(env.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .build()
                .unwrap();
            ExecPlan::new(&p).unwrap()
        };
        assert!(!plan(&["HOME=/x"]).needs_home);
        assert!(!plan(&["HOME=", "HOME=/x"]).needs_home);
        assert!(plan(&["HOME=/x", "HOME="]).needs_home);
        assert!(plan(&["A=1"]).needs_home);
        let p = plan(&["A=1", "HOME=", "B=2"]);
        *p.home.borrow_mut() = Some(c"/home/u".to_owned());
        let env: Vec<_> = p
            .envp()
            .iter()
            .map(|e| e.to_str().unwrap().to_string())
            .collect();
        assert_eq!(env, ["A=1", "B=2", "HOME=/home/u"]);
        assert_eq!(plan(&["A=1"]).envp().len(), 1);
    }

    #[test]
    fn slash_means_no_lookup() {
        let p = ProcessBuilder::default()
            .args(vec!["./x".to_string()])
            .build()
            .unwrap();
        assert_eq!(ExecPlan::new(&p).unwrap().candidates.len(), 1);
    }
}
