//! Configs as others write them: the runtime-tools generator's default (built here)
//! and engines' configs (captured, then replayed from our bundles).

pub mod replay;
pub mod runtime_tools;
mod runtime_tools_seccomp;
