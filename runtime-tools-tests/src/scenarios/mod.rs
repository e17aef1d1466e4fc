//! The scenario table: every scenario by name, in run order.

mod cgroup_contract;
mod cgroups;
mod checkpoint;
mod checkpoint_shared;
mod config_errors;
mod contract;
mod contract_cgroups;
mod contract_checkpoint;
mod contract_cli;
mod contract_devices;
mod contract_exec;
mod contract_hooks;
mod contract_lifecycle;
mod contract_mask;
mod contract_mounts;
mod contract_seccomp;
mod contract_tty;
mod contract_update;
mod contract_userns;
mod contract_verbs;
mod crash_create;
mod crash_restore;
mod crash_syscalls;
mod crash_verbs;
mod cve;
mod cve_ptrace;
mod engine_flow;
mod errors;
mod events;
mod exec;
mod exec_process;
mod fds;
mod features;
mod generated;
mod home;
mod hook_cwd;
mod hook_env;
mod hook_failures;
mod hooks;
mod idmap;
mod inside;
mod lifecycle;
mod list;
mod lsm;
mod misc;
mod mounts;
mod ns;
mod ns_shared_mounts;
mod pause;
mod races;
mod running;
mod seccomp;
mod seccomp_agent;
mod security;
mod soak;
mod sysctl;
mod terminal;
mod update;

use crate::ctx::Ctx;
use crate::verdict::Res;

pub struct Scenario {
    pub name: &'static str,
    pub run: fn(&mut Ctx) -> Res,
}

macro_rules! table {
    ($($m:ident :: $f:ident),* $(,)?) => {
        &[$(Scenario { name: stringify!($f), run: $m::$f }),*]
    };
}

pub static ALL: &[Scenario] = table![
    lifecycle::create,
    lifecycle::start,
    lifecycle::state,
    lifecycle::kill,
    lifecycle::killsig,
    lifecycle::kill_signal_forms,
    lifecycle::kill_no_effect,
    lifecycle::delete,
    lifecycle::delete_resources,
    lifecycle::delete_only_create_resources,
    lifecycle::pidfile,
    lifecycle::state_zombie_is_stopped,
    crash_create::crash_create_kill_then_delete,
    crash_syscalls::crash_create_syscall_kill_then_delete,
    races::race_delete_delete,
    races::race_start_delete,
    races::race_kill_delete,
    races::race_exec_delete,
    races::race_delete_hung_poststart,
    crash_verbs::crash_exec_kill_then_delete,
    crash_verbs::crash_delete_kill_then_delete,
    crash_syscalls::crash_exec_syscall_kill_then_delete,
    crash_syscalls::crash_delete_syscall_kill_then_delete,
    crash_verbs::crash_hooks_kill_then_delete,
    cve::cve_2019_5736_runtime_exe_unreachable,
    cve::cve_2016_9962_exec_not_ptraceable,
    cve_ptrace::cve_2019_5736_ptrace_created_init_exe,
    cve_ptrace::cve_2019_5736_ptrace_held_exec_exe,
    cve_ptrace::cve_2019_5736_protected_only_when_needed,
    cve_ptrace::cve_2019_5736_proc_self_exe_overwrite,
    cve_ptrace::cve_2019_5736_proc_self_exe_overwrite_exec,
    cve::cve_2021_30465_mount_destination_swap,
    cve::cve_2019_16884_volume_over_proc,
    cve::cve_2025_52881_sysctl_write_redirected,
    cve::host_dev_null_unchanged,
    soak::soak_lives,
    errors::bad_missing_config,
    errors::bad_malformed_config,
    errors::bad_missing_rootfs,
    errors::bad_unknown_id,
    errors::bad_duplicate_id,
    errors::bad_signal,
    errors::bad_invalid_id,
    errors::bad_empty_args,
    errors::bad_relative_cwd,
    errors::bad_namespace_type,
    errors::bad_duplicate_namespace,
    errors::bad_hook_path,
    errors::bad_unmapped_process_user,
    config_errors::config_errors_name_the_field,
    config_errors::hooks_timeout_not_positive,
    inside::default,
    inside::hostname,
    inside::process,
    inside::process_cwd_created,
    inside::process_user,
    home::process_home_from_passwd,
    terminal::process_terminal,
    terminal::console_not_bound_over_a_mount_point,
    terminal::terminal_owner_is_process_user,
    terminal::terminal_console_size,
    contract_tty::contract_tty_run,
    contract_tty::contract_tty_exec,
    contract_tty::contract_terminal_false,
    inside::process_oom_score_adj,
    inside::process_rlimits,
    inside::process_rlimits_raise,
    inside::process_capabilities,
    inside::process_capabilities_unknown,
    inside::process_rlimits_fail,
    inside::linux_seccomp,
    inside::linux_process_apparmor_profile,
    inside::linux_mount_label,
    inside::mounts,
    mounts::mounts_recursive_read_only,
    mounts::mounts_proc_symlink_refused,
    mounts::userns_inaccessible_bind_sources,
    inside::root_readonly_true,
    inside::linux_rootfs_propagation_shared,
    inside::linux_rootfs_propagation_slave,
    inside::linux_rootfs_propagation_private,
    inside::linux_rootfs_propagation_unbindable,
    inside::linux_devices,
    inside::linux_masked_paths,
    inside::linux_readonly_paths,
    contract_mask::contract_mask_paths,
    contract_mask::contract_mask_prohibit_symlink,
    contract_mask::contract_no_pivot_bare_proc,
    contract_mask::contract_bind_rw_of_ro_source,
    inside::linux_sysctl,
    sysctl::linux_sysctl_refused,
    sysctl::linux_sysctl_namespaced,
    inside::linux_uid_mappings,
    cgroups::linux_cgroups_pids,
    cgroups::linux_cgroups_memory,
    cgroups::linux_cgroups_cpus,
    cgroups::linux_cgroups_cpu_idle,
    cgroups::linux_cgroups_devices,
    cgroups::linux_cgroups_blkio,
    cgroups::linux_cgroups_hugetlb,
    cgroups::linux_cgroups_network,
    cgroups::linux_cgroups_relative_pids,
    cgroups::linux_cgroups_mount_own_limits,
    cgroup_contract::cgroup_cri_paths,
    cgroup_contract::cgroup_preexisting_frozen_refused,
    cgroup_contract::cgroup_shared_warns_and_is_kept,
    cgroup_contract::cgroup_cpuset_empty_parent_filled,
    cgroup_contract::exec_sub_cgroup_errors,
    cgroup_contract::update_memory_swap_order,
    cgroup_contract::update_resources_key_case,
    cgroup_contract::update_keeps_devices_usable,
    cgroup_contract::kill_probe_and_all_on_stopped,
    ns::linux_ns_nopath,
    ns::linux_ns_time,
    ns::linux_ns_itype,
    ns_shared_mounts::linux_ns_itype_generator_mounts,
    ns_shared_mounts::linux_ns_itype_cleanup,
    ns::linux_ns_path,
    ns::linux_ns_path_type,
    hooks::hooks,
    hooks::prestart,
    hooks::poststart,
    hooks::poststop,
    hooks::hooks_stdin,
    hooks::hooks_env_args,
    hooks::hooks_namespaces,
    hook_cwd::hooks_cwd_prestart,
    hook_cwd::hooks_cwd_create_runtime,
    hook_cwd::hooks_cwd_create_container,
    hook_cwd::hooks_cwd_start_container,
    hook_cwd::hooks_cwd_poststart,
    hook_cwd::hooks_cwd_poststop,
    hook_cwd::hooks_cwd_poststop_run,
    hook_env::hooks_env_inherit,
    hook_env::hooks_env_given,
    hook_failures::hooks_timeout,
    hook_failures::prestart_fail,
    hook_failures::poststart_fail,
    hook_failures::poststop_fail,
    misc::config_updates_without_affect,
    misc::misc_props,
    misc::misc_props_invalid_version,
    security::security_capabilities_sets,
    security::security_ambient_nonroot,
    security::security_capabilities_ungrantable,
    security::security_capabilities_unknown_warns,
    security::security_rlimits_all,
    security::security_rlimits_raise_fails,
    security::security_no_new_privileges_off,
    security::security_seccomp_actions,
    security::security_seccomp_arguments,
    security::security_seccomp_notify,
    security::security_seccomp_default_profile,
    seccomp::seccomp_deny_default_run,
    seccomp::seccomp_deny_default_exec,
    seccomp::seccomp_enosys_unknown_syscalls,
    seccomp::seccomp_notify_write_refused,
    seccomp::seccomp_notify_no_agent,
    seccomp::seccomp_start_container_hook_filtered,
    contract_seccomp::contract_seccomp_errno_kill_actions,
    contract_seccomp::contract_seccomp_syscall_rules,
    contract_seccomp::contract_seccomp_notify_run,
    contract_seccomp::contract_seccomp_notify_exec,
    contract_seccomp::contract_seccomp_notify_important_syscalls,
    contract_seccomp::contract_seccomp_notify_listener_paths,
    contract_seccomp::contract_seccomp_notify_agent_killed,
    contract_seccomp::contract_seccomp_notify_agent_errno,
    contract_seccomp::contract_seccomp_notify_start_container_hook,
    security::security_scheduling,
    security::security_memory_policy,
    security::security_personality,
    security::security_lsm_disabled,
    lsm::lsm_apparmor_off_fails_in_init,
    lsm::lsm_mount_label_without_selinux,
    security::security_bad_inputs,
    exec::exec_overrides,
    exec::exec_exit_codes,
    exec::exec_refused,
    exec::exec_tty_console_socket,
    terminal::exec_tty_console_size_flag,
    exec::exec_sub_cgroup,
    exec_process::exec_process_json_defaults,
    exec_process::exec_cap_unknown_warns,
    home::exec_home_from_passwd,
    pause::pause_resume,
    pause::ps_formats,
    update::update_resources,
    events::events_stats,
    list::list_many,
    features::features_document,
    idmap::idmap_features_enabled,
    idmap::idmap_mount_owner_no_userns,
    idmap::idmap_mount_userns_container_mappings,
    idmap::idmap_mount_ridmap_nested,
    idmap::idmap_mount_unsupported_fs,
    checkpoint::checkpoint_restore,
    contract_checkpoint::contract_checkpoint_parent_path_refused,
    contract_checkpoint::contract_checkpoint_restore_cycles,
    contract_checkpoint::contract_checkpoint_pre_dump_pipes,
    contract_checkpoint::contract_checkpoint_criu_config,
    contract_checkpoint::contract_checkpoint_lazy_pages,
    crash_restore::checkpoint_restore_killed_midway,
    checkpoint_shared::checkpoint_restore_bidirectional_mount,
    fds::preserve_fds,
    fds::no_runtime_fds_leak,
    fds::concurrent_start_and_delete,
    fds::masked_fake_dev_null_refused,
    generated::generated_runc_spec,
    generated::generated_runc_spec_rootless,
    generated::generated_berth_spec,
    generated::generated_berth_spec_rootless,
    generated::generated_runtime_tools_default,
    generated::generated_runtime_tools_nnp,
    generated::generated_runtime_tools_sh,
    generated::generated_runtime_tools_later,
    generated::generated_docker_default,
    generated::generated_podman_default,
    generated::generated_containerd_cri_default,
    // runc 1.1.5's integration suite, ported: docs/runc-contract.md maps each test.
    contract_lifecycle::contract_create_exec_start,
    contract_lifecycle::contract_pid_file_in_callers_cwd,
    contract_lifecycle::contract_run_detached,
    contract_lifecycle::contract_run_foreground,
    contract_lifecycle::contract_run_rootfs_is_dot,
    contract_lifecycle::contract_run_keep,
    contract_lifecycle::contract_run_host_pid_namespace,
    contract_lifecycle::contract_run_redundant_seccomp_rule,
    contract_lifecycle::contract_state_transitions,
    contract_lifecycle::contract_kill_all_after_stop,
    contract_lifecycle::contract_delete,
    contract_cli::contract_list_formats,
    contract_cli::contract_global_root,
    contract_cli::contract_spec_then_run,
    contract_cli::contract_log_json,
    contract_exec::contract_exec_options,
    contract_exec::contract_exec_exit_codes,
    contract_exec::contract_exec_user_keeps_host_dev_null,
    contract_exec::contract_exec_paused,
    contract_exec::contract_cwd_access,
    contract_exec::contract_process_umask,
    contract_verbs::contract_ps,
    contract_verbs::contract_events,
    contract_verbs::contract_events_oom,
    contract_devices::contract_devices_redundant_defaults,
    contract_devices::contract_cgroup_devices_kmsg_denied,
    contract_devices::contract_cgroup_devices_kmsg_allowed,
    contract_devices::contract_cgroup_devices_block_mknod,
    contract_cgroups::contract_cgroup_limits_and_exec,
    contract_cgroups::contract_cgroup_v1_unified_refused,
    contract_cgroups::contract_cgroup_exec_joins_init_cgroup,
    contract_cgroups::contract_cgroups_delete_force_with_sub_cgroups,
    contract_cgroups::contract_cgroups_v2_exec_in_non_root_cgroup,
    contract_cgroups::contract_cgroups_v2_blkio_weight,
    contract_cgroups::contract_cgroups_v2_unified_only,
    contract_cgroups::contract_cgroups_v2_unified_override,
    contract_cgroups::contract_cgroups_v2_mount_has_no_extra_cgroups,
    contract_cgroups::contract_cgroup_bfq_device_weight,
    contract_cgroups::contract_cgroups_v2_exec_sub_cgroup,
    contract_update::contract_cgroup_update_cpu_limits,
    contract_update::contract_cgroup_cpu_period_or_quota_alone,
    contract_update::contract_cgroup_update_cpu_without_previous,
    contract_update::contract_cgroup_update_cpu_in_pod,
    contract_update::contract_cgroup_update_rt,
    contract_update::contract_cgroup_update_paused,
    contract_update::contract_cgroup_update_common_limits,
    contract_update::contract_cgroup_update_cpuset_key_case,
    contract_update::contract_cgroups_v2_update_unified,
    contract_update::contract_cgroup_update_devices_transition,
    contract_mounts::contract_mounts_bind_bundle_relative,
    contract_mounts::contract_mounts_ro_tmpfs_and_dev,
    contract_mounts::contract_mounts_tmpfs_under_absolute_symlink,
    contract_mounts::contract_mounts_cgroup_read_only,
    contract_userns::contract_userns_simple_bind,
    contract_userns::contract_userns_bind_before_cgroupfs,
    contract_hooks::contract_hooks_bind_files_into_container,
    contract_hooks::contract_hooks_cwd,
];
