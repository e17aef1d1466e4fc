//! Data of the runtime-tools generator's default seccomp profile (amd64), in our own
//! layout: the syscalls it always allows, the personas personality may set, the
//! syscalls each capability unlocks, and the clone flags it refuses.

/// Always allowed (305 names; sorted here, the generator lists them in its own order).
pub const ALLOWED: &str = "
    _llseek _newselect accept accept4 access alarm bind brk capget capset chdir chmod chown
    chown32 clock_getres clock_gettime clock_nanosleep close connect copy_file_range creat
    dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_wait
    epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat fadvise64
    fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat
    fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat
    fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futimesat
    get_robust_list get_thread_area getcpu getcwd getdents getdents64 getegid getegid32
    geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid
    getpgrp getpid getppid getpriority getrandom getresgid getresgid32 getresuid
    getresuid32 getrlimit getrusage getsid getsockname getsockopt gettid gettimeofday
    getuid getuid32 getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
    io_cancel io_destroy io_getevents io_setup io_submit ioctl ioprio_get ioprio_set ipc
    kill lchown lchown32 lgetxattr link linkat listen listxattr llistxattr lremovexattr
    lseek lsetxattr lstat lstat64 madvise memfd_create mincore mkdir mkdirat mknod mknodat
    mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open
    mq_timedreceive mq_timedsend mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock
    munlockall munmap nanosleep newfstatat open openat pause pipe pipe2 poll ppoll prctl
    pread64 preadv prlimit64 pselect6 pwrite64 pwritev read readahead readlink readlinkat
    readv recv recvfrom recvmmsg recvmsg remap_file_pages removexattr rename renameat
    renameat2 restart_syscall rmdir rt_sigaction rt_sigpending rt_sigprocmask
    rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_tgsigqueueinfo
    sched_get_priority_max sched_get_priority_min sched_getaffinity sched_getattr
    sched_getparam sched_getscheduler sched_rr_get_interval sched_setaffinity sched_setattr
    sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop
    semtimedop send sendfile sendfile64 sendmmsg sendmsg sendto set_robust_list
    set_thread_area set_tid_address setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
    setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid
    setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit setsid setsockopt
    setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd
    signalfd4 sigreturn socket socketcall socketpair splice stat stat64 statfs statfs64
    statx symlink symlinkat sync sync_file_range syncfs sysinfo syslog tee tgkill time
    timer_create timer_delete timer_getoverrun timer_gettime timer_settime timerfd_create
    timerfd_gettime timerfd_settime times tkill truncate truncate64 ugetrlimit umask uname
    unlink unlinkat utime utimensat utimes vfork vmsplice wait4 waitid waitpid write writev
";

/// personality(2) is allowed only for these: PER_LINUX, PER_LINUX32, and the query
/// 0xffffffff.
pub const PERSONAS: &[u64] = &[0x0, 0x8, 0xffff_ffff];

/// Syscalls allowed when the process holds the capability in any set.
pub const BY_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "fanotify_init",
            "lookup_dcookie",
            "mount",
            "name_to_handle_at",
            "perf_event_open",
            "setdomainname",
            "sethostname",
            "setns",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &[
            "delete_module",
            "init_module",
            "finit_module",
            "query_module",
        ],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &["kcmp", "process_vm_readv", "process_vm_writev", "ptrace"],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    ("CAP_SYS_TIME", &["settimeofday", "stime", "adjtimex"]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
];

/// Without CAP_SYS_ADMIN, clone is allowed only when none of these flags is set:
/// CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET.
pub const CLONE_NEW_MASK: u64 =
    0x0002_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

/// Added to the mask by later runtime-tools.
pub const CLONE_NEWCGROUP: u64 = 0x0200_0000;
