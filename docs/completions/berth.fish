# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_berth_global_optspecs
    string join \n debug log= log-format= root= criu= systemd-cgroup rootless= v/version h/help
end

function __fish_berth_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_berth_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_berth_using_subcommand
    set -l cmd (__fish_berth_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c berth -n "__fish_berth_needs_command" -l log -d 'set the log file to write berth logs to (default is \'/dev/stderr\')' -r -F
complete -c berth -n "__fish_berth_needs_command" -l log-format -d 'set the log format (\'text\' (default), or \'json\')' -r -f -a "text\t'logrus\'s text formatter: `time="..." level=error msg="..."`'
json\t'logrus\'s JSON formatter: `{"level":"error","msg":"...","time":"..."}`'"
complete -c berth -n "__fish_berth_needs_command" -l root -d 'root directory for storage of container state (this should be located in tmpfs) [default: /run/berth, or $XDG_RUNTIME_DIR/berth when rootless]' -r -F
complete -c berth -n "__fish_berth_needs_command" -l criu -d 'path to the criu binary used for checkpoint and restore' -r
complete -c berth -n "__fish_berth_needs_command" -l rootless -d 'ignore cgroup permission errors (\'true\', \'false\', or \'auto\')' -r
complete -c berth -n "__fish_berth_needs_command" -l debug -d 'enable debug logging'
complete -c berth -n "__fish_berth_needs_command" -l systemd-cgroup -d 'enable systemd cgroup support, expects cgroupsPath to be of form "slice:prefix:name" for e.g. "system.slice:berth:434234"'
complete -c berth -n "__fish_berth_needs_command" -s v -l version -d 'print the version'
complete -c berth -n "__fish_berth_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c berth -n "__fish_berth_needs_command" -f -a "checkpoint" -d 'checkpoint a running container'
complete -c berth -n "__fish_berth_needs_command" -f -a "create" -d 'create a container'
complete -c berth -n "__fish_berth_needs_command" -f -a "delete" -d 'delete any resources held by the container often used with detached container'
complete -c berth -n "__fish_berth_needs_command" -f -a "events" -d 'display container events such as OOM notifications, cpu, memory, and IO usage statistics'
complete -c berth -n "__fish_berth_needs_command" -f -a "exec" -d 'execute new process inside the container'
complete -c berth -n "__fish_berth_needs_command" -f -a "features" -d 'show the enabled features'
complete -c berth -n "__fish_berth_needs_command" -f -a "kill" -d 'kill sends the specified signal (default: SIGTERM) to the container\'s init process'
complete -c berth -n "__fish_berth_needs_command" -f -a "list" -d 'lists containers started by berth with the given root'
complete -c berth -n "__fish_berth_needs_command" -f -a "pause" -d 'pause suspends all processes inside the container'
complete -c berth -n "__fish_berth_needs_command" -f -a "ps" -d 'ps displays the processes running inside a container'
complete -c berth -n "__fish_berth_needs_command" -f -a "restore" -d 'restore a container from a previous checkpoint'
complete -c berth -n "__fish_berth_needs_command" -f -a "resume" -d 'resumes all processes that have been previously paused'
complete -c berth -n "__fish_berth_needs_command" -f -a "run" -d 'create and run a container'
complete -c berth -n "__fish_berth_needs_command" -f -a "spec" -d 'create a new specification file'
complete -c berth -n "__fish_berth_needs_command" -f -a "start" -d 'executes the user defined process in a created container'
complete -c berth -n "__fish_berth_needs_command" -f -a "state" -d 'output the state of a container'
complete -c berth -n "__fish_berth_needs_command" -f -a "update" -d 'update container resource constraints'
complete -c berth -n "__fish_berth_needs_command" -f -a "generate-docs" -d 'write man pages and shell completions into a directory'
complete -c berth -n "__fish_berth_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c berth -n "__fish_berth_using_subcommand checkpoint" -l image-path -d 'path for the criu image files (default: ./checkpoint)' -r -F
complete -c berth -n "__fish_berth_using_subcommand checkpoint" -l work-path -d 'path for saving work files and logs (default: the image path)' -r -F
complete -c berth -n "__fish_berth_using_subcommand checkpoint" -l manage-cgroups-mode -d 'cgroups mode: \'soft\' (default), \'full\' and \'strict\'' -r
complete -c berth -n "__fish_berth_using_subcommand checkpoint" -l empty-ns -d 'create a namespace, but don\'t restore its properties' -r
complete -c berth -n "__fish_berth_using_subcommand checkpoint" -l parent-path -d 'path for previous criu image files in pre-dump' -r -F
complete -c berth -n "__fish_berth_using_subcommand checkpoint" -l status-fd -d 'criu writes \\0 to this FD once lazy-pages is ready' -r
complete -c berth -n "__fish_berth_using_subcommand checkpoint" -l page-server -d 'ADDRESS:PORT of the page server' -r
complete -c berth -n "__fish_berth_using_subcommand checkpoint" -l tcp-established -d 'allow open tcp connections'
complete -c berth -n "__fish_berth_using_subcommand checkpoint" -l ext-unix-sk -d 'allow external unix sockets'
complete -c berth -n "__fish_berth_using_subcommand checkpoint" -l shell-job -d 'allow shell jobs'
complete -c berth -n "__fish_berth_using_subcommand checkpoint" -l file-locks -d 'handle file locks, for safety'
complete -c berth -n "__fish_berth_using_subcommand checkpoint" -l auto-dedup -d 'enable auto deduplication of memory images'
complete -c berth -n "__fish_berth_using_subcommand checkpoint" -l lazy-pages -d 'use userfaultfd to lazily restore memory pages'
complete -c berth -n "__fish_berth_using_subcommand checkpoint" -l leave-running -d 'leave the process running after checkpointing'
complete -c berth -n "__fish_berth_using_subcommand checkpoint" -l pre-dump -d 'dump container\'s memory information only, leave the container running after this'
complete -c berth -n "__fish_berth_using_subcommand checkpoint" -s h -l help -d 'Print help'
complete -c berth -n "__fish_berth_using_subcommand create" -s b -l bundle -d 'path to the root of the bundle directory, defaults to the current directory' -r -F
complete -c berth -n "__fish_berth_using_subcommand create" -l console-socket -d 'path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console\'s pseudoterminal' -r -F
complete -c berth -n "__fish_berth_using_subcommand create" -l pid-file -d 'specify the file to write the process id to' -r -F
complete -c berth -n "__fish_berth_using_subcommand create" -l preserve-fds -d 'Pass N additional file descriptors to the container (stdio + N in total)' -r
complete -c berth -n "__fish_berth_using_subcommand create" -l no-pivot -d 'do not use pivot root to jail process inside rootfs.  This should be used whenever the rootfs is on top of a ramdisk'
complete -c berth -n "__fish_berth_using_subcommand create" -l no-new-keyring -d 'do not create a new session keyring for the container.  This will cause the container to inherit the calling processes session key'
complete -c berth -n "__fish_berth_using_subcommand create" -s h -l help -d 'Print help'
complete -c berth -n "__fish_berth_using_subcommand delete" -s f -l force -d 'Forcibly deletes the container if it is still running (uses SIGKILL)'
complete -c berth -n "__fish_berth_using_subcommand delete" -s h -l help -d 'Print help'
complete -c berth -n "__fish_berth_using_subcommand events" -l interval -d 'set the stats collection interval' -r
complete -c berth -n "__fish_berth_using_subcommand events" -l stats -d 'display the container\'s stats then exit'
complete -c berth -n "__fish_berth_using_subcommand events" -s h -l help -d 'Print help'
complete -c berth -n "__fish_berth_using_subcommand exec" -l console-socket -d 'path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console\'s pseudoterminal' -r -F
complete -c berth -n "__fish_berth_using_subcommand exec" -l cwd -d 'current working directory in the container' -r
complete -c berth -n "__fish_berth_using_subcommand exec" -s e -l env -d 'set environment variables' -r
complete -c berth -n "__fish_berth_using_subcommand exec" -l console-size -d 'the pseudo-TTY\'s size as WIDTHxHEIGHT, e.g. 80x24 (sets process.consoleSize)' -r
complete -c berth -n "__fish_berth_using_subcommand exec" -s u -l user -d 'UID (format: <uid>[:<gid>])' -r
complete -c berth -n "__fish_berth_using_subcommand exec" -s g -l additional-gids -d 'additional gids' -r
complete -c berth -n "__fish_berth_using_subcommand exec" -s p -l process -d 'path to the process.json' -r -F
complete -c berth -n "__fish_berth_using_subcommand exec" -l pid-file -d 'specify the file to write the process id to' -r -F
complete -c berth -n "__fish_berth_using_subcommand exec" -l process-label -d 'set the asm process label for the process commonly used with selinux' -r
complete -c berth -n "__fish_berth_using_subcommand exec" -l apparmor -d 'set the apparmor profile for the process' -r
complete -c berth -n "__fish_berth_using_subcommand exec" -s c -l cap -d 'add a capability to the bounding set for the process' -r
complete -c berth -n "__fish_berth_using_subcommand exec" -l preserve-fds -d 'Pass N additional file descriptors to the container (stdio + N in total)' -r
complete -c berth -n "__fish_berth_using_subcommand exec" -l cgroup -d 'run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>' -r
complete -c berth -n "__fish_berth_using_subcommand exec" -s t -l tty -d 'allocate a pseudo-TTY'
complete -c berth -n "__fish_berth_using_subcommand exec" -s d -l detach -d 'detach from the container\'s process'
complete -c berth -n "__fish_berth_using_subcommand exec" -l no-new-privs -d 'set the no new privileges value for the process'
complete -c berth -n "__fish_berth_using_subcommand exec" -l ignore-paused -d 'allow exec in a paused container'
complete -c berth -n "__fish_berth_using_subcommand exec" -s h -l help -d 'Print help'
complete -c berth -n "__fish_berth_using_subcommand features" -s h -l help -d 'Print help'
complete -c berth -n "__fish_berth_using_subcommand kill" -s a -l all -d 'send the specified signal to all processes inside the container'
complete -c berth -n "__fish_berth_using_subcommand kill" -s h -l help -d 'Print help'
complete -c berth -n "__fish_berth_using_subcommand list" -s f -l format -d 'select one of: table or json' -r
complete -c berth -n "__fish_berth_using_subcommand list" -s q -l quiet -d 'display only container IDs'
complete -c berth -n "__fish_berth_using_subcommand list" -s h -l help -d 'Print help'
complete -c berth -n "__fish_berth_using_subcommand pause" -s h -l help -d 'Print help'
complete -c berth -n "__fish_berth_using_subcommand ps" -s f -l format -d 'select one of: table or json' -r
complete -c berth -n "__fish_berth_using_subcommand ps" -s h -l help -d 'Print help'
complete -c berth -n "__fish_berth_using_subcommand restore" -l image-path -d 'path for the criu image files (default: ./checkpoint)' -r -F
complete -c berth -n "__fish_berth_using_subcommand restore" -l work-path -d 'path for saving work files and logs (default: the image path)' -r -F
complete -c berth -n "__fish_berth_using_subcommand restore" -l manage-cgroups-mode -d 'cgroups mode: \'soft\' (default), \'full\' and \'strict\'' -r
complete -c berth -n "__fish_berth_using_subcommand restore" -l empty-ns -d 'create a namespace, but don\'t restore its properties' -r
complete -c berth -n "__fish_berth_using_subcommand restore" -l console-socket -d 'path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console\'s pseudoterminal' -r -F
complete -c berth -n "__fish_berth_using_subcommand restore" -s b -l bundle -d 'path to the root of the bundle directory' -r -F
complete -c berth -n "__fish_berth_using_subcommand restore" -l pid-file -d 'specify the file to write the process id to' -r -F
complete -c berth -n "__fish_berth_using_subcommand restore" -l lsm-profile -d 'Specify an LSM profile to be used during restore in the form of TYPE:NAME' -r
complete -c berth -n "__fish_berth_using_subcommand restore" -l lsm-mount-context -d 'Specify an LSM mount context to be used during restore' -r
complete -c berth -n "__fish_berth_using_subcommand restore" -l tcp-established -d 'allow open tcp connections'
complete -c berth -n "__fish_berth_using_subcommand restore" -l ext-unix-sk -d 'allow external unix sockets'
complete -c berth -n "__fish_berth_using_subcommand restore" -l shell-job -d 'allow shell jobs'
complete -c berth -n "__fish_berth_using_subcommand restore" -l file-locks -d 'handle file locks, for safety'
complete -c berth -n "__fish_berth_using_subcommand restore" -l auto-dedup -d 'enable auto deduplication of memory images'
complete -c berth -n "__fish_berth_using_subcommand restore" -l lazy-pages -d 'use userfaultfd to lazily restore memory pages'
complete -c berth -n "__fish_berth_using_subcommand restore" -s d -l detach -d 'detach from the container\'s process'
complete -c berth -n "__fish_berth_using_subcommand restore" -l no-subreaper -d 'disable the use of the subreaper used to reap reparented processes'
complete -c berth -n "__fish_berth_using_subcommand restore" -l no-pivot -d 'do not use pivot root to jail process inside rootfs'
complete -c berth -n "__fish_berth_using_subcommand restore" -s h -l help -d 'Print help'
complete -c berth -n "__fish_berth_using_subcommand resume" -s h -l help -d 'Print help'
complete -c berth -n "__fish_berth_using_subcommand run" -s b -l bundle -d 'path to the root of the bundle directory, defaults to the current directory' -r -F
complete -c berth -n "__fish_berth_using_subcommand run" -l console-socket -d 'path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console\'s pseudoterminal' -r -F
complete -c berth -n "__fish_berth_using_subcommand run" -l pid-file -d 'specify the file to write the process id to' -r -F
complete -c berth -n "__fish_berth_using_subcommand run" -l preserve-fds -d 'Pass N additional file descriptors to the container (stdio + N in total)' -r
complete -c berth -n "__fish_berth_using_subcommand run" -l no-pivot -d 'do not use pivot root to jail process inside rootfs.  This should be used whenever the rootfs is on top of a ramdisk'
complete -c berth -n "__fish_berth_using_subcommand run" -l no-new-keyring -d 'do not create a new session keyring for the container.  This will cause the container to inherit the calling processes session key'
complete -c berth -n "__fish_berth_using_subcommand run" -s d -l detach -d 'detach from the container\'s process'
complete -c berth -n "__fish_berth_using_subcommand run" -l keep -d 'do not delete the container after it exits'
complete -c berth -n "__fish_berth_using_subcommand run" -l no-subreaper -d 'disable the use of the subreaper used to reap reparented processes'
complete -c berth -n "__fish_berth_using_subcommand run" -s h -l help -d 'Print help'
complete -c berth -n "__fish_berth_using_subcommand spec" -s b -l bundle -d 'path to the root of the bundle directory' -r -F
complete -c berth -n "__fish_berth_using_subcommand spec" -l rootless -d 'generate a configuration for a rootless container'
complete -c berth -n "__fish_berth_using_subcommand spec" -s h -l help -d 'Print help'
complete -c berth -n "__fish_berth_using_subcommand start" -s h -l help -d 'Print help'
complete -c berth -n "__fish_berth_using_subcommand state" -s h -l help -d 'Print help'
complete -c berth -n "__fish_berth_using_subcommand update" -s r -l resources -d 'path to the file containing the resources to update or \'-\' to read from the standard input (all other options are then ignored)' -r
complete -c berth -n "__fish_berth_using_subcommand update" -l blkio-weight -d 'Specifies per cgroup weight, range is from 10 to 1000' -r
complete -c berth -n "__fish_berth_using_subcommand update" -l cpu-period -d 'CPU CFS period to be used for hardcapping (in usecs). 0 to use system default' -r
complete -c berth -n "__fish_berth_using_subcommand update" -l cpu-quota -d 'CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period' -r
complete -c berth -n "__fish_berth_using_subcommand update" -l cpu-share -d 'CPU shares (relative weight vs. other containers)' -r
complete -c berth -n "__fish_berth_using_subcommand update" -l cpu-rt-period -d 'CPU realtime period to be used for hardcapping (in usecs). 0 to use system default' -r
complete -c berth -n "__fish_berth_using_subcommand update" -l cpu-rt-runtime -d 'CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period' -r
complete -c berth -n "__fish_berth_using_subcommand update" -l cpuset-cpus -d 'CPU(s) to use' -r
complete -c berth -n "__fish_berth_using_subcommand update" -l cpuset-mems -d 'Memory node(s) to use' -r
complete -c berth -n "__fish_berth_using_subcommand update" -l memory -d 'Memory limit (in bytes; units k, m, g, t, p accepted)' -r
complete -c berth -n "__fish_berth_using_subcommand update" -l memory-reservation -d 'Memory reservation or soft_limit (in bytes)' -r
complete -c berth -n "__fish_berth_using_subcommand update" -l memory-swap -d 'Total memory usage (memory + swap); set \'-1\' to enable unlimited swap' -r
complete -c berth -n "__fish_berth_using_subcommand update" -l kernel-memory -d 'Kernel memory limit (ignored, as by runc 1.1: kernel memory limits are deprecated)' -r
complete -c berth -n "__fish_berth_using_subcommand update" -l kernel-memory-tcp -d 'Kernel TCP memory limit (ignored, as by runc 1.1)' -r
complete -c berth -n "__fish_berth_using_subcommand update" -l pids-limit -d 'Maximum number of pids allowed in the container' -r
complete -c berth -n "__fish_berth_using_subcommand update" -l l3-cache-schema -d 'The string of Intel RDT/CAT L3 cache schema' -r
complete -c berth -n "__fish_berth_using_subcommand update" -l mem-bw-schema -d 'The string of Intel RDT/MBA memory bandwidth schema' -r
complete -c berth -n "__fish_berth_using_subcommand update" -s h -l help -d 'Print help'
complete -c berth -n "__fish_berth_using_subcommand generate-docs" -s h -l help -d 'Print help'
complete -c berth -n "__fish_berth_using_subcommand help; and not __fish_seen_subcommand_from checkpoint create delete events exec features kill list pause ps restore resume run spec start state update generate-docs help" -f -a "checkpoint" -d 'checkpoint a running container'
complete -c berth -n "__fish_berth_using_subcommand help; and not __fish_seen_subcommand_from checkpoint create delete events exec features kill list pause ps restore resume run spec start state update generate-docs help" -f -a "create" -d 'create a container'
complete -c berth -n "__fish_berth_using_subcommand help; and not __fish_seen_subcommand_from checkpoint create delete events exec features kill list pause ps restore resume run spec start state update generate-docs help" -f -a "delete" -d 'delete any resources held by the container often used with detached container'
complete -c berth -n "__fish_berth_using_subcommand help; and not __fish_seen_subcommand_from checkpoint create delete events exec features kill list pause ps restore resume run spec start state update generate-docs help" -f -a "events" -d 'display container events such as OOM notifications, cpu, memory, and IO usage statistics'
complete -c berth -n "__fish_berth_using_subcommand help; and not __fish_seen_subcommand_from checkpoint create delete events exec features kill list pause ps restore resume run spec start state update generate-docs help" -f -a "exec" -d 'execute new process inside the container'
complete -c berth -n "__fish_berth_using_subcommand help; and not __fish_seen_subcommand_from checkpoint create delete events exec features kill list pause ps restore resume run spec start state update generate-docs help" -f -a "features" -d 'show the enabled features'
complete -c berth -n "__fish_berth_using_subcommand help; and not __fish_seen_subcommand_from checkpoint create delete events exec features kill list pause ps restore resume run spec start state update generate-docs help" -f -a "kill" -d 'kill sends the specified signal (default: SIGTERM) to the container\'s init process'
complete -c berth -n "__fish_berth_using_subcommand help; and not __fish_seen_subcommand_from checkpoint create delete events exec features kill list pause ps restore resume run spec start state update generate-docs help" -f -a "list" -d 'lists containers started by berth with the given root'
complete -c berth -n "__fish_berth_using_subcommand help; and not __fish_seen_subcommand_from checkpoint create delete events exec features kill list pause ps restore resume run spec start state update generate-docs help" -f -a "pause" -d 'pause suspends all processes inside the container'
complete -c berth -n "__fish_berth_using_subcommand help; and not __fish_seen_subcommand_from checkpoint create delete events exec features kill list pause ps restore resume run spec start state update generate-docs help" -f -a "ps" -d 'ps displays the processes running inside a container'
complete -c berth -n "__fish_berth_using_subcommand help; and not __fish_seen_subcommand_from checkpoint create delete events exec features kill list pause ps restore resume run spec start state update generate-docs help" -f -a "restore" -d 'restore a container from a previous checkpoint'
complete -c berth -n "__fish_berth_using_subcommand help; and not __fish_seen_subcommand_from checkpoint create delete events exec features kill list pause ps restore resume run spec start state update generate-docs help" -f -a "resume" -d 'resumes all processes that have been previously paused'
complete -c berth -n "__fish_berth_using_subcommand help; and not __fish_seen_subcommand_from checkpoint create delete events exec features kill list pause ps restore resume run spec start state update generate-docs help" -f -a "run" -d 'create and run a container'
complete -c berth -n "__fish_berth_using_subcommand help; and not __fish_seen_subcommand_from checkpoint create delete events exec features kill list pause ps restore resume run spec start state update generate-docs help" -f -a "spec" -d 'create a new specification file'
complete -c berth -n "__fish_berth_using_subcommand help; and not __fish_seen_subcommand_from checkpoint create delete events exec features kill list pause ps restore resume run spec start state update generate-docs help" -f -a "start" -d 'executes the user defined process in a created container'
complete -c berth -n "__fish_berth_using_subcommand help; and not __fish_seen_subcommand_from checkpoint create delete events exec features kill list pause ps restore resume run spec start state update generate-docs help" -f -a "state" -d 'output the state of a container'
complete -c berth -n "__fish_berth_using_subcommand help; and not __fish_seen_subcommand_from checkpoint create delete events exec features kill list pause ps restore resume run spec start state update generate-docs help" -f -a "update" -d 'update container resource constraints'
complete -c berth -n "__fish_berth_using_subcommand help; and not __fish_seen_subcommand_from checkpoint create delete events exec features kill list pause ps restore resume run spec start state update generate-docs help" -f -a "generate-docs" -d 'write man pages and shell completions into a directory'
complete -c berth -n "__fish_berth_using_subcommand help; and not __fish_seen_subcommand_from checkpoint create delete events exec features kill list pause ps restore resume run spec start state update generate-docs help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
