//! One entry of the config's `mounts`: planned in the parent (flags, data and paths
//! prepared), performed by the init on the destination resolved inside the rootfs.
//!
//! A bind source may come as an fd the parent opened before the init lost its host
//! privileges (see [`super::sources`]); the init then binds `/proc/self/fd/<n>`,
//! which reaches the source without a path lookup the container's root could fail.

use super::buf::StackCStr;
use super::idmap::{IdmapPlan, MountIdMappings};
use super::options::{attr, MountOptions};
use super::resolve::{fs_info, open_in_root, open_or_create, path_in_root, Leaf, ProcFd};
use super::{cstring, rel_path};
use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::ResolveFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, stat, SFlag};
use oci_spec::runtime::Mount;
use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::fmt::Write;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Files under /proc that may be mounted over (what lxcfs emulates), as runc allows.
const PROC_ALLOWED: &[&str] = &[
    "proc/cpuinfo",
    "proc/diskstats",
    "proc/meminfo",
    "proc/stat",
    "proc/swaps",
    "proc/uptime",
    "proc/loadavg",
    "proc/slabinfo",
    "proc/net/dev",
    "proc/sys/kernel/ns_last_pid",
];

/// Flags the kernel locks on mounts inherited into a user namespace (MNT_LOCK_*): a
/// remount must keep them or fail with EPERM.
const LOCKABLE: MsFlags = MsFlags::MS_RDONLY
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NOSUID)
    .union(MsFlags::MS_NOATIME)
    .union(MsFlags::MS_NODIRATIME)
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `bind` type or a `bind`/`rbind` option.
    Bind,
    Tmpfs,
    Proc,
    /// sysfs; falls back to a recursive bind of /sys where it cannot be mounted.
    Sysfs,
    /// `cgroup` on a v1 or hybrid host: the host's /sys/fs/cgroup bound recursively.
    CgroupV1,
    /// `cgroup2` (or `cgroup` on a unified host).
    Cgroup2,
    /// Anything else goes to mount(2) as given (mqueue, devpts, overlay ...).
    Other,
}

/// A mount prepared in the parent.
#[derive(Debug)]
pub(super) struct MountPlan {
    /// Destination relative to the rootfs, lexically cleaned; `.` for the root.
    pub(super) dest: CString,
    /// Destination as the config gives it, for errors.
    pub(super) display: String,
    type_name: String,
    kind: Kind,
    source: CString,
    fstype: Option<CString>,
    /// Flags of the first mount call.
    flags: MsFlags,
    /// For binds with options: the flags of the MS_BIND|MS_REMOUNT call.
    remount: Option<MsFlags>,
    cleared: MsFlags,
    data: Option<CString>,
    data_has_mode: bool,
    propagation: Vec<MsFlags>,
    /// A read-only tmpfs or /dev: mounted read-write so files can be created in
    /// it, remounted read-only by `finalize` (as runc does).
    pub(super) ro_later: bool,
    /// Recursive attributes (`rro` ...) set and cleared over the mounted tree right
    /// after the mount (mount_setattr, AT_RECURSIVE).
    rec_set: u64,
    rec_clr: u64,
    /// `rro` on a tmpfs or /dev: the tree is made read-only by `finalize`, after the
    /// files and mounts inside it exist.
    rec_ro_later: bool,
    /// For a bind: the source opened by the parent (an O_PATH fd), taken by `perform`.
    source_fd: RefCell<Option<OwnedFd>>,
    /// `cgroup` on v1: (destination of the hierarchy's directory, host directory).
    cgroup_binds: Vec<(CString, CString)>,
    /// `cgroup` on v1: (link name, target) inside the destination.
    cgroup_links: Vec<(CString, CString)>,
    /// Data of the tmpfs a v1 `cgroup` mount is built on (`mode=755`, plus the
    /// SELinux context of `linux.mountLabel`).
    cgroup_tmpfs_data: CString,
    /// An idmapped bind: the parent makes the detached tree (see [`super::idmap`]),
    /// handed over as `source_fd`, and `perform` moves it onto the destination.
    pub(super) idmap: Option<IdmapPlan>,
}

/// What a mount's idmapping may come from besides its own fields.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct IdmapContext<'a> {
    /// The mount's `uidMappings`/`gidMappings`.
    pub ids: Option<&'a MountIdMappings>,
    /// uid_map and gid_map text of the container's new user namespace, for `idmap`
    /// or `ridmap` given without mappings of the mount's own.
    pub container_maps: Option<(&'a str, &'a str)>,
}

/// statfs's `f_type`, whatever its width on this architecture.
#[allow(clippy::unnecessary_cast)]
fn magic(s: &nix::sys::statfs::Statfs) -> i64 {
    s.filesystem_type().0 as i64
}

/// Whether the host's /sys/fs/cgroup is a cgroup2 mount (a unified host).
pub(super) fn host_is_unified() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| magic(&s) == CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

impl MountPlan {
    /// Prepares one `mounts` entry; `unified` says whether `cgroup` means cgroup2.
    pub(super) fn new(
        m: &Mount,
        unified: bool,
        cgroups: &[super::cgroup_v1::CgroupDir],
        idmap: IdmapContext<'_>,
    ) -> Result<Self> {
        let opts = MountOptions::parse(m.options().iter().flatten().map(String::as_str));
        let typ = m.typ().as_deref().unwrap_or("");
        let (dest, display) = rel_path(m.destination())?;
        let bad = |reason: &str| Error::Config(format!("mount {display}: {reason}"));
        let kind = if typ == "bind" || opts.flags.contains(MsFlags::MS_BIND) {
            Kind::Bind
        } else {
            match typ {
                "tmpfs" => Kind::Tmpfs,
                "proc" => Kind::Proc,
                "sysfs" => Kind::Sysfs,
                "cgroup" if unified => Kind::Cgroup2,
                "cgroup" => Kind::CgroupV1,
                "cgroup2" => Kind::Cgroup2,
                "" => return Err(bad("no type and not a bind mount")),
                _ => Kind::Other,
            }
        };
        let type_name = if kind == Kind::Bind { "bind" } else { typ }.to_string();
        let idmap = idmap_plan(&opts, kind, idmap).map_err(|r| bad(&r))?;
        let source = match (kind, m.source()) {
            (Kind::Bind, None) => return Err(bad("bind mount without a source")),
            (Kind::Bind, Some(src)) if src.is_relative() => {
                // The spec makes relative sources relative to the bundle: resolved
                // against the cwd, which is the bundle when the caller chdirs there
                // as runc does (or made absolute before the plan is built).
                let cwd = std::env::current_dir().map_err(|e| Error::io("getcwd", ".", e))?;
                cstring(&cwd.join(src))?
            }
            (_, Some(src)) => cstring(src)?,
            (Kind::CgroupV1, None) => cstring(Path::new("cgroup"))?,
            (_, None) => cstring(Path::new(typ))?,
        };
        let dest_bytes = dest.as_bytes();
        let proc_allowed =
            kind == Kind::Proc || PROC_ALLOWED.iter().any(|p| p.as_bytes() == dest_bytes);
        if dest_bytes.starts_with(b"proc/") && !proc_allowed {
            return Err(bad("cannot be mounted because it is inside /proc"));
        }
        if dest_bytes == b"proc" && !matches!(kind, Kind::Proc | Kind::Bind) {
            return Err(bad("cannot be mounted because it is not of type proc"));
        }
        let mut flags = opts.flags;
        let mut remount = None;
        let mut ro_later = false;
        let mut rec_set = opts.rec_set;
        let mut rec_ro_later = false;
        if rec_set & attr::RDONLY != 0
            && kind != Kind::Bind
            && (kind == Kind::Tmpfs || dest_bytes == b"dev")
        {
            rec_set &= !attr::RDONLY;
            rec_ro_later = true;
            ro_later = true;
        }
        match kind {
            Kind::Bind => {
                // The first MS_BIND ignores every other flag; a MS_REMOUNT applies
                // them, only when the user asked for some (runc's rule).
                let extra = flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
                if !extra.is_empty() || !opts.cleared.is_empty() {
                    remount = Some(extra | MsFlags::MS_BIND | MsFlags::MS_REMOUNT);
                }
                flags &= MsFlags::MS_BIND | MsFlags::MS_REC;
                flags |= MsFlags::MS_BIND;
            }
            Kind::Tmpfs | Kind::Other | Kind::Proc | Kind::Sysfs | Kind::Cgroup2
                if flags.contains(MsFlags::MS_RDONLY)
                    && (kind == Kind::Tmpfs || dest_bytes == b"dev") =>
            {
                flags.remove(MsFlags::MS_RDONLY);
                ro_later = true;
            }
            _ => {}
        }
        let data_has_mode = opts.data.split(',').any(|o| o.starts_with("mode="));
        let data = if opts.data.is_empty() || kind == Kind::Bind {
            None
        } else {
            Some(CString::new(opts.data).map_err(|_| bad("mount data contains a NUL byte"))?)
        };
        let fstype = match kind {
            Kind::Bind | Kind::CgroupV1 => None,
            Kind::Cgroup2 => Some(c"cgroup2".to_owned()),
            _ => Some(CString::new(typ).map_err(|_| bad("type contains a NUL byte"))?),
        };
        let mut cgroup_binds = Vec::new();
        let mut cgroup_links = Vec::new();
        if kind == Kind::CgroupV1 {
            let c = |s: &[u8]| CString::new(s).map_err(|_| bad("cgroup path contains a NUL byte"));
            for d in cgroups {
                let mut sub = dest.as_bytes().to_vec();
                sub.push(b'/');
                sub.extend_from_slice(d.name.as_bytes());
                cgroup_binds.push((c(&sub)?, c(d.host.as_os_str().as_encoded_bytes())?));
                for alias in &d.aliases {
                    cgroup_links.push((c(alias.as_bytes())?, c(d.name.as_bytes())?));
                }
            }
        }
        Ok(MountPlan {
            idmap,
            cgroup_binds,
            cgroup_links,
            cgroup_tmpfs_data: c"mode=755".to_owned(),
            dest,
            display,
            type_name,
            kind,
            source,
            fstype,
            flags,
            remount,
            cleared: opts.cleared,
            data,
            data_has_mode,
            propagation: opts.propagation,
            ro_later,
            rec_set,
            rec_clr: opts.rec_clr,
            rec_ro_later,
            source_fd: RefCell::new(None),
        })
    }

    /// A bind mount's source path, for the parent to open (see [`super::sources`]).
    pub(super) fn bind_source(&self) -> Option<&CStr> {
        (self.kind == Kind::Bind).then_some(self.source.as_c_str())
    }

    /// The idmapping of a bind mount that has one, with its source.
    pub(super) fn idmapped(&self) -> Option<(&CStr, &IdmapPlan)> {
        self.idmap.as_ref().map(|p| (self.source.as_c_str(), p))
    }

    /// Hands the init the source the parent opened.
    pub(super) fn set_source_fd(&self, fd: OwnedFd) {
        *self.source_fd.borrow_mut() = Some(fd);
    }

    /// `linux.mountLabel` as runc 1.1.5 applies it: `context="<label>"` appended to
    /// the data of every mount that takes it (tmpfs, the v1 cgroup tmpfs, devpts and
    /// other filesystems), not to proc, sysfs, cgroup2, mqueue (runc labels its
    /// directory instead, which berth does not) nor bind mounts (whose data the kernel
    /// ignores). Without SELinux the kernel refuses the option and the mount fails,
    /// as under runc.
    pub(super) fn set_mount_label(&mut self, label: &str) -> Result<()> {
        let context = format!("context={label:?}");
        let with = |data: Option<&CStr>| -> Result<CString> {
            let joined = match data.map(CStr::to_bytes) {
                Some(d) if !d.is_empty() => [d, b",", context.as_bytes()].concat(),
                _ => context.clone().into_bytes(),
            };
            CString::new(joined)
                .map_err(|_| Error::Config("linux.mountLabel contains a NUL byte".into()))
        };
        match self.kind {
            Kind::Tmpfs => self.data = Some(with(self.data.as_deref())?),
            Kind::Other if self.type_name != "mqueue" => {
                self.data = Some(with(self.data.as_deref())?)
            }
            Kind::CgroupV1 => self.cgroup_tmpfs_data = with(Some(c"mode=755"))?,
            _ => {}
        }
        Ok(())
    }

    /// Whether this is a bind mount onto /dev (then runc leaves /dev alone).
    pub(super) fn is_dev_bind(&self) -> bool {
        self.kind == Kind::Bind && self.dest.as_bytes() == b"dev"
    }

    fn err(&self, call: &'static str, errno: Errno) -> Error {
        Error::sys(
            call,
            format_args!(
                "{} (type {}, source {})",
                self.display,
                self.type_name,
                self.source.to_string_lossy()
            ),
            errno,
        )
    }

    /// Performs the mount in the init, inside `root` (the rootfs fd).
    pub(super) fn perform(&self, root: BorrowedFd<'_>, new_user_ns: bool) -> Result<()> {
        // Taken, so the fd is closed once this mount is done.
        let source_fd = self.source_fd.borrow_mut().take();
        let (leaf, extra) = match self.kind {
            Kind::Bind => {
                let st = match &source_fd {
                    Some(src) => fstat(src),
                    None => stat(self.source.as_c_str()),
                }
                .map_err(|e| self.err("stat", e))?;
                let is_dir =
                    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
                (
                    if is_dir { Leaf::Dir } else { Leaf::File },
                    ResolveFlag::empty(),
                )
            }
            // proc and sysfs must land on a plain directory, never through a symlink.
            Kind::Proc | Kind::Sysfs => (Leaf::Dir, ResolveFlag::RESOLVE_NO_SYMLINKS),
            _ => (Leaf::Dir, ResolveFlag::empty()),
        };
        let (fd, created) = match open_or_create(root, &self.dest, leaf, extra) {
            Err(Errno::ELOOP) if !extra.is_empty() => return Err(self.not_ordinary_dir()),
            other => other.map_err(|e| self.err("open", e))?,
        };
        if !extra.is_empty() {
            let st = fstat(&fd).map_err(|e| self.err("fstat", e))?;
            if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
                return Err(self.not_ordinary_dir());
            }
        }
        self.check_proc(root, &fd, source_fd.as_ref())?;
        self.mount_kind(root, &fd, created, new_user_ns, source_fd.as_ref())?;
        self.set_recursive_attrs(root)
    }

    /// proc and sysfs refuse a destination that is (or goes through) a symlink, or is
    /// not a directory, with runc's words.
    fn not_ordinary_dir(&self) -> Error {
        Error::Config(format!(
            "mount {}: filesystem {:?} must be mounted on ordinary directory, not on a \
             symlink or a file",
            self.display, self.type_name
        ))
    }

    fn mount_kind(
        &self,
        root: BorrowedFd<'_>,
        fd: &OwnedFd,
        created: bool,
        new_user_ns: bool,
        source_fd: Option<&OwnedFd>,
    ) -> Result<()> {
        match self.kind {
            Kind::Bind => self.bind(root, fd, source_fd),
            Kind::CgroupV1 => self.mount_cgroup_v1(root, fd),
            Kind::Sysfs | Kind::Cgroup2 => match self.mount_fs(fd, self.data.as_deref()) {
                Err(Errno::EPERM | Errno::EBUSY) if new_user_ns || self.kind == Kind::Cgroup2 => {
                    // In a user namespace without its own network (sysfs) or cgroup
                    // (cgroup2) namespace the kernel refuses a new instance: bind the
                    // host's, as runc does.
                    let host = if self.kind == Kind::Sysfs {
                        c"/sys"
                    } else if host_is_unified() {
                        c"/sys/fs/cgroup"
                    } else {
                        c"/sys/fs/cgroup/unified"
                    };
                    self.bind_tree(root, fd, host)
                }
                Err(e) => Err(self.err("mount", e)),
                Ok(()) => self.apply_propagation(root),
            },
            Kind::Tmpfs if !created && !self.data_has_mode => {
                // Keep the mode of the directory the tmpfs covers (runc does).
                let mode = fstat(fd).map_err(|e| self.err("fstat", e))?.st_mode & 0o7777;
                let mut data = StackCStr::<4096>::new();
                let _ = write!(data, "mode={mode:o}");
                if let Some(d) = &self.data {
                    data.push_bytes(b",");
                    data.push_bytes(d.as_bytes());
                }
                let data = data.as_cstr().or(self.data.as_deref());
                self.mount_fs(fd, data).map_err(|e| self.err("mount", e))?;
                self.apply_propagation(root)
            }
            _ => {
                self.mount_fs(fd, self.data.as_deref())
                    .map_err(|e| self.err("mount", e))?;
                self.apply_propagation(root)
            }
        }
    }

    /// runc's checkProcMount on where the destination really is: only proc (or a
    /// bind of a procfs) on /proc itself, and nothing inside /proc but the few files
    /// lxcfs emulates. The destination's path inside the rootfs is read back from the
    /// resolved fd, so a symlink in the rootfs (`/evil -> /proc`) is judged by its
    /// target; a procfs found anywhere else (proc mounted at another place) counts as
    /// inside /proc too.
    fn check_proc(
        &self,
        root: BorrowedFd<'_>,
        fd: &OwnedFd,
        source_fd: Option<&OwnedFd>,
    ) -> Result<()> {
        let mut resolved = StackCStr::<4096>::new();
        let inside = path_in_root(root, fd, &mut resolved).map_err(|e| self.err("readlink", e))?;
        let path = if inside {
            resolved.as_bytes()
        } else {
            self.dest.as_bytes()
        };
        let (fs_type, _) = fs_info(fd).map_err(|e| self.err("fstatfs", e))?;
        let at_proc = path == b"proc";
        let in_proc = path.starts_with(b"proc/") || (!at_proc && fs_type == PROC_SUPER_MAGIC);
        let allowed = if at_proc {
            match self.kind {
                Kind::Proc => true,
                Kind::Bind => {
                    let src = match source_fd {
                        Some(src) => nix::sys::statfs::fstatfs(src),
                        None => nix::sys::statfs::statfs(self.source.as_c_str()),
                    }
                    .map_err(|e| self.err("statfs", e))?;
                    magic(&src) == PROC_SUPER_MAGIC
                }
                _ => false,
            }
        } else if in_proc {
            self.kind == Kind::Proc || PROC_ALLOWED.iter().any(|p| p.as_bytes() == path)
        } else {
            true
        };
        if allowed {
            return Ok(());
        }
        let through_symlink = path != self.dest.as_bytes();
        let shown = String::from_utf8_lossy(path);
        Err(Error::Config(match (through_symlink, at_proc) {
            (true, true) => format!(
                "mount {}: destination is a symlink to /proc; it must be an ordinary directory",
                self.display
            ),
            (true, false) => format!(
                "mount {}: destination resolves inside /proc (/{shown}) through a symlink; \
                 it must be an ordinary directory",
                self.display
            ),
            (false, true) => format!(
                "mount {}: cannot be mounted because it is not of type proc",
                self.display
            ),
            (false, false) => format!("mount {}: destination is inside /proc", self.display),
        }))
    }

    /// The recursive attributes (`rro` ...) over the whole tree now mounted at the
    /// destination, as runc's setRecAttr.
    fn set_recursive_attrs(&self, root: BorrowedFd<'_>) -> Result<()> {
        if self.rec_set == 0 && self.rec_clr == 0 {
            return Ok(());
        }
        let fd = self.reopen(root)?;
        setattr_recursive(&fd, self.rec_set, self.rec_clr).map_err(|e| self.rec_err(e))
    }

    fn rec_err(&self, e: Errno) -> Error {
        if e == Errno::ENOSYS {
            // mount_setattr came with Linux 5.12.
            return Error::Config(format!(
                "mount {}: recursive mount options (rro ...) need mount_setattr (Linux 5.12)",
                self.display
            ));
        }
        self.err("mount_setattr", e)
    }

    fn mount_fs(&self, fd: &OwnedFd, data: Option<&CStr>) -> nix::Result<()> {
        mount(
            Some(self.source.as_c_str()),
            ProcFd::new(fd).as_cstr(),
            self.fstype.as_deref(),
            self.flags,
            data,
        )
    }

    fn bind(&self, root: BorrowedFd<'_>, fd: &OwnedFd, source_fd: Option<&OwnedFd>) -> Result<()> {
        if self.idmap.is_some() {
            let tree = source_fd.ok_or_else(|| {
                Error::Init(format!(
                    "mount {}: the idmapped tree was not received from the parent",
                    self.display
                ))
            })?;
            super::idmap::attach(tree, fd).map_err(|e| self.err("move_mount", e))?;
            return self.after_bind(root);
        }
        let via_fd = source_fd.map(ProcFd::new);
        let source = match &via_fd {
            Some(p) => p.as_cstr(),
            None => self.source.as_c_str(),
        };
        mount(
            Some(source),
            ProcFd::new(fd).as_cstr(),
            None::<&CStr>,
            self.flags,
            None::<&CStr>,
        )
        .map_err(|e| self.err("mount", e))?;
        self.after_bind(root)
    }

    /// The bind's remount with its options, and its propagation.
    fn after_bind(&self, root: BorrowedFd<'_>) -> Result<()> {
        if let Some(flags) = self.remount {
            // Reopen: the old fd names the covered directory, not the new mount.
            let fd = self.reopen(root)?;
            remount_keeping_locked(&fd, ProcFd::new(&fd).as_cstr(), flags, self.cleared)
                .map_err(|e| self.err("remount", e))?;
        }
        self.apply_propagation(root)
    }

    /// See [`super::cgroup_v1`]: a tmpfs, each hierarchy's container directory bound
    /// into it (with the mount's ro/nosuid/nodev/noexec), aliases as symlinks, and
    /// the tmpfs itself made read-only last when asked.
    fn mount_cgroup_v1(&self, root: BorrowedFd<'_>, fd: &OwnedFd) -> Result<()> {
        let attrs = self.flags
            & (MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
        let tmpfs_flags = attrs - MsFlags::MS_RDONLY;
        mount(
            Some(c"tmpfs"),
            ProcFd::new(fd).as_cstr(),
            Some(c"tmpfs"),
            tmpfs_flags,
            Some(self.cgroup_tmpfs_data.as_c_str()),
        )
        .map_err(|e| self.err("mount", e))?;
        for (dest, host) in &self.cgroup_binds {
            let (sub, _) = open_or_create(root, dest, Leaf::Dir, ResolveFlag::empty())
                .map_err(|e| self.err("open", e))?;
            mount(
                Some(host.as_c_str()),
                ProcFd::new(&sub).as_cstr(),
                None::<&CStr>,
                MsFlags::MS_BIND,
                None::<&CStr>,
            )
            .map_err(|e| self.err("mount", e))?;
            if !attrs.is_empty() {
                // Reopen: the old fd names the covered directory, not the new mount.
                let sub = open_in_root(root, dest, ResolveFlag::empty())
                    .map_err(|e| self.err("open", e))?;
                let flags = attrs | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
                remount_keeping_locked(&sub, ProcFd::new(&sub).as_cstr(), flags, MsFlags::empty())
                    .map_err(|e| self.err("remount", e))?;
            }
        }
        let top = self.reopen(root)?;
        for (link, target) in &self.cgroup_links {
            nix::unistd::symlinkat(target.as_c_str(), &top, link.as_c_str())
                .map_err(|e| self.err("symlink", e))?;
        }
        if attrs.contains(MsFlags::MS_RDONLY) {
            let flags = attrs | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
            remount_keeping_locked(&top, ProcFd::new(&top).as_cstr(), flags, MsFlags::empty())
                .map_err(|e| self.err("remount", e))?;
        }
        self.apply_propagation(root)
    }

    /// Binds `host` recursively and applies ro/nosuid/nodev/noexec to every mount
    /// in the tree (mount_setattr), so a read-only /sys or cgroup tree stays
    /// read-only below its top.
    fn bind_tree(&self, root: BorrowedFd<'_>, fd: &OwnedFd, host: &CStr) -> Result<()> {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
        mount(
            Some(host),
            ProcFd::new(fd).as_cstr(),
            None::<&CStr>,
            flags,
            None::<&CStr>,
        )
        .map_err(|e| self.err("mount", e))?;
        let fd = self.reopen(root)?;
        let attrs = self.flags
            & (MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
        if !attrs.is_empty() {
            match setattr_recursive(&fd, ms_to_attr(attrs), 0) {
                Err(Errno::ENOSYS) => {
                    // Kernels before 5.12: only the top mount can be changed.
                    let flags = attrs | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
                    remount_keeping_locked(&fd, ProcFd::new(&fd).as_cstr(), flags, MsFlags::empty())
                        .map_err(|e| self.err("remount", e))?
                }
                other => other.map_err(|e| self.err("mount_setattr", e))?,
            }
        }
        self.apply_propagation(root)
    }

    fn reopen(&self, root: BorrowedFd<'_>) -> Result<OwnedFd> {
        open_in_root(root, &self.dest, ResolveFlag::empty()).map_err(|e| self.err("open", e))
    }

    fn apply_propagation(&self, root: BorrowedFd<'_>) -> Result<()> {
        if self.propagation.is_empty() {
            return Ok(());
        }
        let fd = self.reopen(root)?;
        for &p in &self.propagation {
            mount(
                None::<&CStr>,
                ProcFd::new(&fd).as_cstr(),
                None::<&CStr>,
                p,
                None::<&CStr>,
            )
            .map_err(|e| self.err("mount propagation", e))?;
        }
        Ok(())
    }

    /// `finalize`'s read-only remount of a tmpfs or /dev, after pivot (`root` is
    /// the new `/`).
    pub(super) fn remount_ro(&self, root: BorrowedFd<'_>, use_fd: bool) -> Result<()> {
        let fd = self.reopen(root)?;
        let flags = (self.flags - MsFlags::MS_REC)
            | MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY;
        let target = ProcFd::or_path(&fd, &self.dest, use_fd);
        remount_keeping_locked(&fd, target.as_cstr(), flags, MsFlags::empty())
            .map_err(|e| self.err("remount", e))?;
        if self.rec_ro_later {
            // `rro`: the mounts inside (/dev/pts, /dev/shm ...) too.
            setattr_recursive(&fd, attr::RDONLY, 0).map_err(|e| self.rec_err(e))?;
        }
        Ok(())
    }
}

/// The idmapping a mount asks for, checked: only a bind mount can have one; its
/// mappings are its own (both uid and gid) or, with `idmap`/`ridmap` alone, those of
/// the container's new user namespace (the spec lets a runtime use them).
fn idmap_plan(
    opts: &MountOptions,
    kind: Kind,
    ctx: IdmapContext<'_>,
) -> std::result::Result<Option<IdmapPlan>, String> {
    if opts.idmap.is_none() && ctx.ids.is_none() {
        return Ok(None);
    }
    if kind != Kind::Bind {
        return Err(
            "uidMappings/gidMappings and the idmap/ridmap options need a bind mount".into(),
        );
    }
    let (uid_map, gid_map) = match ctx.ids {
        Some(ids) if ids.uid.is_empty() || ids.gid.is_empty() => {
            return Err("uidMappings and gidMappings must be given together".into())
        }
        Some(ids) => (
            crate::namespaces::map_text(Some(&ids.uid)),
            crate::namespaces::map_text(Some(&ids.gid)),
        ),
        None => match ctx.container_maps {
            Some((u, g)) => (u.to_string(), g.to_string()),
            None => {
                return Err(
                    "idmap/ridmap without uidMappings and gidMappings needs a new user \
                            namespace with mappings"
                        .into(),
                )
            }
        },
    };
    Ok(Some(IdmapPlan {
        uid_map,
        gid_map,
        clone_recursive: opts.flags.contains(MsFlags::MS_REC),
        map_recursive: opts.idmap == Some(true),
    }))
}

/// The mount flags (`MS_*`) a mount has now, from statfs's `ST_*` flags.
pub(super) fn current_flags(fd: &OwnedFd) -> nix::Result<MsFlags> {
    let (_, st) = fs_info(fd)?;
    let map = [
        (libc::ST_RDONLY, MsFlags::MS_RDONLY),
        (libc::ST_NOSUID, MsFlags::MS_NOSUID),
        (libc::ST_NODEV, MsFlags::MS_NODEV),
        (libc::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (libc::ST_NOATIME, MsFlags::MS_NOATIME),
        (libc::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (libc::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    let mut flags = MsFlags::empty();
    for (st_flag, ms) in map {
        #[allow(clippy::unnecessary_cast)]
        if st & (st_flag as u64) != 0 {
            flags |= ms;
        }
    }
    // MS_STRICTATIME is not stored: a mount with no other atime flag has it.
    if !flags.intersects(MsFlags::MS_NOATIME | MsFlags::MS_RELATIME) {
        flags |= MsFlags::MS_STRICTATIME;
    }
    Ok(flags)
}

/// A MS_BIND|MS_REMOUNT of the mount at `fd` (named `target` for mount(2)). If the kernel refuses (flags locked
/// in a user namespace), retries with the mount's current lockable flags added,
/// unless the caller explicitly cleared one of them. Read-only is the exception, as
/// in runc (its fix for a `rw` bind of a read-only FUSE mount): a `rw` bind of a
/// source that is read-only for good becomes read-only instead of failing.
pub(super) fn remount_keeping_locked(
    fd: &OwnedFd,
    target: &CStr,
    flags: MsFlags,
    cleared: MsFlags,
) -> nix::Result<()> {
    let first = mount(None::<&CStr>, target, None::<&CStr>, flags, None::<&CStr>);
    let Err(errno) = first else { return Ok(()) };
    if errno != Errno::EPERM {
        return Err(errno);
    }
    let current = current_flags(fd)? & LOCKABLE;
    if current.intersects(cleared - MsFlags::MS_RDONLY) {
        return Err(errno);
    }
    let atime = MsFlags::MS_NOATIME | MsFlags::MS_RELATIME | MsFlags::MS_STRICTATIME;
    let mut retry = flags | (current - atime);
    if !flags.intersects(atime) {
        retry |= current & atime;
    }
    mount(None::<&CStr>, target, None::<&CStr>, retry, None::<&CStr>)
}

/// `MOUNT_ATTR_*` for the ro/nosuid/nodev/noexec mount flags.
fn ms_to_attr(flags: MsFlags) -> u64 {
    [
        (MsFlags::MS_RDONLY, attr::RDONLY),
        (MsFlags::MS_NOSUID, attr::NOSUID),
        (MsFlags::MS_NODEV, attr::NODEV),
        (MsFlags::MS_NOEXEC, attr::NOEXEC),
    ]
    .into_iter()
    .filter(|(ms, _)| flags.contains(*ms))
    .fold(0, |acc, (_, a)| acc | a)
}

/// Sets and clears mount attributes (`MOUNT_ATTR_*`) on the whole mount tree at
/// `fd` (mount_setattr with AT_RECURSIVE).
fn setattr_recursive(fd: &OwnedFd, set: u64, clear: u64) -> nix::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr reads `size` bytes of `attr`, a live repr(C) struct
    // matching the kernel's struct mount_attr; the path is a static empty C string.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(rc).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::MountBuilder;

    fn plan(dest: &str, typ: &str, src: &str, opts: &[&str]) -> Result<MountPlan> {
        let m = MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .source(src)
            .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap();
        MountPlan::new(&m, false, &[], IdmapContext::default())
    }

    #[test]
    fn bind_ro_gets_a_remount() {
        let p = plan("/data", "none", "/srv", &["rbind", "ro", "nosuid"]).unwrap();
        assert_eq!(p.kind, Kind::Bind);
        assert_eq!(p.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(
            p.remount,
            Some(MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID)
        );
        assert!(p.data.is_none());
    }

    /// linux.mountLabel goes where runc puts it: tmpfs, devpts, the v1 cgroup tmpfs;
    /// not proc, sysfs, mqueue or binds.
    #[test]
    fn mount_label_context() {
        let label = "system_u:object_r:container_file_t:s0:c1,c2";
        let ctx = format!("context=\"{label}\"");
        let data = |dest, typ, opts: &[&str]| {
            let mut p = plan(dest, typ, typ, opts).unwrap();
            p.set_mount_label(label).unwrap();
            p.data.map(|d| d.into_string().unwrap())
        };
        assert_eq!(
            data("/dev", "tmpfs", &["mode=755"]),
            Some(format!("mode=755,{ctx}"))
        );
        assert_eq!(data("/dev/pts", "devpts", &[]), Some(ctx.clone()));
        assert_eq!(data("/proc", "proc", &[]), None);
        assert_eq!(data("/sys", "sysfs", &[]), None);
        assert_eq!(data("/dev/mqueue", "mqueue", &[]), None);
        assert_eq!(data("/data", "bind", &["rbind"]), None);
    }

    #[test]
    fn ro_tmpfs_is_remounted_later() {
        let p = plan("/run/", "tmpfs", "tmpfs", &["ro", "mode=755"]).unwrap();
        assert!(p.ro_later);
        assert!(!p.flags.contains(MsFlags::MS_RDONLY));
        assert_eq!(p.dest.as_bytes(), b"run");
        assert!(p.data_has_mode);
    }

    #[test]
    fn idmap_rules() {
        let m = |typ: &str, opts: &[&str]| {
            MountBuilder::default()
                .destination("/data")
                .typ(typ)
                .source("/srv")
                .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .build()
                .unwrap()
        };
        let map = |c: u32, h: u32| {
            oci_spec::runtime::LinuxIdMappingBuilder::default()
                .container_id(c)
                .host_id(h)
                .size(1u32)
                .build()
                .unwrap()
        };
        let ids = MountIdMappings {
            uid: vec![map(5, 0)],
            gid: vec![map(6, 0)],
        };
        let own = IdmapContext {
            ids: Some(&ids),
            container_maps: None,
        };
        // Mappings alone idmap a bind, not recursively; `ridmap` maps the whole tree.
        let p = MountPlan::new(&m("bind", &["rbind"]), false, &[], own).unwrap();
        let i = p.idmap.unwrap();
        assert_eq!(
            (i.uid_map.as_str(), i.gid_map.as_str()),
            ("5 0 1\n", "6 0 1\n")
        );
        assert!(i.clone_recursive && !i.map_recursive);
        let p = MountPlan::new(&m("bind", &["rbind", "ridmap"]), false, &[], own).unwrap();
        assert!(p.idmap.unwrap().map_recursive);
        assert!(p.data.is_none());
        // Only binds; both kinds of mapping; `idmap` alone needs the container's.
        let e = MountPlan::new(&m("tmpfs", &["idmap"]), false, &[], own).unwrap_err();
        assert!(e.to_string().contains("need a bind mount"), "{e}");
        let half = MountIdMappings {
            uid: vec![map(5, 0)],
            gid: vec![],
        };
        let ctx = IdmapContext {
            ids: Some(&half),
            container_maps: None,
        };
        let e = MountPlan::new(&m("bind", &["bind"]), false, &[], ctx).unwrap_err();
        assert!(e.to_string().contains("given together"), "{e}");
        let none = IdmapContext::default();
        let e = MountPlan::new(&m("bind", &["bind", "idmap"]), false, &[], none).unwrap_err();
        assert!(e.to_string().contains("needs a new user namespace"), "{e}");
        let userns = IdmapContext {
            ids: None,
            container_maps: Some(("0 100000 65536\n", "0 100000 65536\n")),
        };
        let p = MountPlan::new(&m("bind", &["bind", "idmap"]), false, &[], userns).unwrap();
        assert_eq!(p.idmap.unwrap().uid_map, "0 100000 65536\n");
        assert!(MountPlan::new(&m("bind", &["bind"]), false, &[], none)
            .unwrap()
            .idmap
            .is_none());
    }

    #[test]
    fn mounts_inside_proc_are_refused() {
        assert!(plan("/proc/sys", "tmpfs", "tmpfs", &[]).is_err());
        assert!(plan("/proc/../proc/kcore", "bind", "/dev/null", &["bind"]).is_err());
        assert!(plan("/proc/cpuinfo", "bind", "/tmp/x", &["bind"]).is_ok());
        assert!(plan("/proc", "tmpfs", "tmpfs", &[]).is_err());
    }
}
