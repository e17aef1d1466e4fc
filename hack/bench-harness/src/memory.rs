//! The runtime's own memory charge: each runtime command runs in a v1 memory cgroup
//! of its own (`/berth-bench-<pid>-rt/<runtime>`, memory hierarchy only), away from
//! the container's cgroup (`/berth-bench-<pid>/<runtime>`), which the runtime's
//! children join before they exec the container's process.
//!
//! What is counted: everything the kernel charges to that cgroup while the runtime's
//! processes are in it (anonymous memory, kernel stacks, page tables, slab such as
//! dentries, namespaces and mounts made before the container's cgroup is joined, and
//! page cache first touched there, e.g. the state files written to tmpfs). The runtime
//! binaries are in the page cache before the measured lives (warm-up lives), so their
//! text is not counted: the figure is the cost of one more life on a warm machine.
//! Charges do not move with a task (v1 without move_charge_at_immigrate), so what the
//! runtime's child allocated before it moved to the container's cgroup stays here.

use std::ffi::CString;
use std::fs;
use std::path::{Path, PathBuf};

const HIERARCHY: &str = "/sys/fs/cgroup/memory";

/// One memory cgroup the harness made.
pub struct MemCg {
    dir: PathBuf,
    tasks: CString,
}

impl MemCg {
    /// Makes `<hierarchy>/<parent>/<name>` (and the parent).
    pub fn new(parent: &str, name: &str) -> Result<Self, String> {
        let dir = Path::new(HIERARCHY)
            .join(parent.trim_start_matches('/'))
            .join(name);
        fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let tasks = CString::new(dir.join("tasks").into_os_string().into_encoded_bytes())
            .map_err(|_| format!("{}: NUL in path", dir.display()))?;
        Ok(MemCg { dir, tasks })
    }

    /// Is there a v1 memory hierarchy with max_usage_in_bytes?
    pub fn available() -> bool {
        Path::new(HIERARCHY)
            .join("memory.max_usage_in_bytes")
            .exists()
    }

    /// The `tasks` file, for the child to join before exec.
    pub fn tasks(&self) -> &CString {
        &self.tasks
    }

    fn read(&self, file: &str) -> Result<u64, String> {
        let p = self.dir.join(file);
        let text = fs::read_to_string(&p).map_err(|e| format!("read {}: {e}", p.display()))?;
        text.trim()
            .parse()
            .map_err(|_| format!("{}: not a number: {:?}", p.display(), text.trim()))
    }

    fn write(&self, file: &str, value: &str) -> Result<(), String> {
        let p = self.dir.join(file);
        fs::write(&p, value).map_err(|e| format!("write {value} to {}: {e}", p.display()))
    }

    /// Starts a measurement: the peak is reset to the present usage, which is returned.
    pub fn reset(&self) -> Result<u64, String> {
        self.write("memory.max_usage_in_bytes", "0")?;
        self.read("memory.usage_in_bytes")
    }

    /// The peak since [`MemCg::reset`].
    pub fn peak(&self) -> Result<u64, String> {
        self.read("memory.max_usage_in_bytes")
    }

    pub fn set_limit(&self, bytes: u64) -> Result<(), String> {
        self.write("memory.limit_in_bytes", &bytes.to_string())
    }

    /// rmdir (the cgroup must be empty of tasks: a task killed by the OOM killer may
    /// take a moment to leave, so a busy cgroup is retried for up to a second).
    pub fn remove(&self) {
        for _ in 0..20 {
            match fs::remove_dir(&self.dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                Err(e) => {
                    eprintln!("berth-bench: warning: rmdir {}: {e}", self.dir.display());
                    return;
                }
                Ok(()) => return,
            }
        }
        eprintln!(
            "berth-bench: warning: rmdir {}: still busy",
            self.dir.display()
        );
    }
}

/// Joins `tasks` (a child between fork and exec: open and write only).
pub fn join(tasks: &CString) -> std::io::Result<()> {
    // SAFETY: a valid C string; open/write/close are async-signal-safe and allocate
    // nothing, as a pre_exec hook requires.
    unsafe {
        let fd = libc::open(tasks.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let r = libc::write(fd, b"0".as_ptr().cast(), 1);
        let e = std::io::Error::last_os_error();
        libc::close(fd);
        if r != 1 {
            return Err(e);
        }
    }
    Ok(())
}

/// Removes `<hierarchy>/<parent>` after its children.
pub fn remove_parent(parent: &str) {
    let dir = Path::new(HIERARCHY).join(parent.trim_start_matches('/'));
    if let Ok(entries) = fs::read_dir(&dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                let _ = fs::remove_dir(e.path());
            }
        }
    }
    if dir.exists() {
        if let Err(e) = fs::remove_dir(&dir) {
            eprintln!("berth-bench: warning: rmdir {}: {e}", dir.display());
        }
    }
}
