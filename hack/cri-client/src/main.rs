//! berth-cri: a small CRI client that drives containerd's CRI plugin as the kubelet
//! does, for the engine tests (hack/engines/cri.sh). Its verbs follow crictl's:
//!
//! ```text
//! berth-cri --address SOCK runp [--runtime HANDLER] POD.json          # prints the pod id
//! berth-cri --address SOCK create POD_ID CONTAINER.json POD.json      # prints the container id
//! berth-cri --address SOCK start ID
//! berth-cri --address SOCK exec -s [--timeout S] ID CMD [ARG...]      # its output, its exit code
//! berth-cri --address SOCK logs ID | stats ID | inspect ID | inspectp POD_ID
//! berth-cri --address SOCK stop [-t S] ID | rm ID | stopp POD_ID | rmp POD_ID
//! berth-cri --address SOCK ps [-a] [-q] [--pod POD_ID] | pods [-q] | version
//! berth-cri --address SOCK life [--runtime HANDLER] POD.json CONTAINER.json   # one timed pod life
//! ```
//!
//! Configs are JSON with the CRI's proto field names (config.rs). inspect, inspectp
//! and stats print the response as JSON, the runtime's verbose `info` entries parsed.

mod config;
mod life;
mod logs;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use serde_json::Value;
use tonic::transport::{Channel, Endpoint, Uri};

type Client = RuntimeServiceClient<Channel>;

#[derive(Parser)]
#[command(
    name = "berth-cri",
    about = "A small CRI client (crictl's verbs) over a unix socket"
)]
struct Cli {
    /// The CRI server's unix socket (containerd's gRPC address).
    #[arg(long, short = 'r', default_value = "/run/containerd/containerd.sock")]
    address: PathBuf,
    /// Seconds each request may take.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The runtime's name and version.
    Version,
    /// Run a pod sandbox from a PodSandboxConfig in JSON; prints its id.
    Runp {
        /// The runtime handler (a RuntimeClass's handler, a CRI runtime name).
        #[arg(long)]
        runtime: Option<String>,
        config: PathBuf,
    },
    /// Create a container in a pod from a ContainerConfig in JSON; prints its id.
    Create {
        pod: String,
        container_config: PathBuf,
        pod_config: PathBuf,
    },
    /// Start a created container.
    Start { id: String },
    /// Run a command in a running container and wait for it.
    Exec {
        /// Synchronously (ExecSync), the only mode: output and exit code once it exits.
        #[arg(short = 's', long = "sync", required = true)]
        sync: bool,
        /// Seconds the command may run (0: no limit).
        #[arg(long, default_value_t = 30)]
        timeout: i64,
        id: String,
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
    /// A container's output, read from the log file the CRI plugin writes.
    Logs { id: String },
    /// A container's resource usage (ContainerStats), as JSON.
    Stats { id: String },
    /// A container's status with the runtime's verbose info, as JSON.
    Inspect { id: String },
    /// A pod's status with the runtime's verbose info, as JSON.
    Inspectp { id: String },
    /// Stop a container: SIGTERM, then SIGKILL after the timeout.
    Stop {
        #[arg(short = 't', long, default_value_t = 10)]
        timeout: i64,
        id: String,
    },
    /// Change a running container's resources (UpdateContainerResources), as the
    /// kubelet does for an in-place resize.
    Update {
        /// memory.limit_in_bytes, in bytes.
        #[arg(long)]
        memory: Option<i64>,
        /// The CFS quota, in microseconds per period.
        #[arg(long)]
        cpu_quota: Option<i64>,
        id: String,
    },
    /// Remove a container.
    Rm { id: String },
    /// Stop a pod (its containers and sandbox).
    Stopp { id: String },
    /// Remove a pod.
    Rmp { id: String },
    /// List containers: ID POD NAME STATE.
    Ps {
        /// Also exited and created containers, not only running ones.
        #[arg(short = 'a', long)]
        all: bool,
        /// Only ids.
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Only the containers of this pod.
        #[arg(short = 'p', long)]
        pod: Option<String>,
    },
    /// One timed pod life (runp, create, start, wait for exit 0, stopp, rmp); prints
    /// `total=MS runp=MS create=MS start=MS wait=MS stopp=MS rmp=MS`.
    Life {
        #[arg(long)]
        runtime: Option<String>,
        /// Milliseconds between status requests while the container runs.
        #[arg(long, default_value_t = 2)]
        poll_ms: u64,
        pod_config: PathBuf,
        container_config: PathBuf,
    },
    /// List pods: ID NAME STATE.
    Pods {
        #[arg(short = 'q', long)]
        quiet: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth-cri: tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth-cri: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// A channel to the CRI server over the unix socket at `path` (the URI is a
/// placeholder that tonic requires; the connector ignores it).
async fn connect(path: &Path, timeout: Duration) -> Result<Client> {
    let socket = path.to_path_buf();
    let channel = Endpoint::from_static("http://cri.sock")
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(
                    tokio::net::UnixStream::connect(socket).await?,
                ))
            }
        }))
        .await
        .with_context(|| format!("connect to {}", path.display()))?;
    Ok(RuntimeServiceClient::new(channel))
}

/// A failed call, as `VERB: CODE: MESSAGE` (the server's message as it sent it).
fn status(verb: &str, s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{verb}: {:?}: {}", s.code(), s.message())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    config::from_value(value).with_context(|| format!("{}", path.display()))
}

/// `value` as JSON, each string in its `info` map parsed when it is JSON itself.
fn print_with_info<T: serde::Serialize>(value: &T) -> Result<()> {
    let mut v = serde_json::to_value(value)?;
    if let Some(info) = v.get_mut("info").and_then(Value::as_object_mut) {
        for x in info.values_mut() {
            if let Some(parsed) = x
                .as_str()
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
            {
                *x = parsed;
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

const STATES: [&str; 4] = ["CREATED", "RUNNING", "EXITED", "UNKNOWN"];
const POD_STATES: [&str; 2] = ["READY", "NOTREADY"];

fn state_name(names: &[&'static str], state: i32) -> &'static str {
    usize::try_from(state)
        .ok()
        .and_then(|i| names.get(i))
        .copied()
        .unwrap_or("?")
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let mut c = connect(&cli.address, Duration::from_secs(cli.timeout)).await?;
    match cli.cmd {
        Cmd::Version => {
            let v = c
                .version(cri::VersionRequest::default())
                .await
                .map_err(|s| status("Version", s))?
                .into_inner();
            println!(
                "{} {} (CRI {})",
                v.runtime_name, v.runtime_version, v.runtime_api_version
            );
        }
        Cmd::Runp { runtime, config } => {
            let req = cri::RunPodSandboxRequest {
                config: Some(read_json(&config)?),
                runtime_handler: runtime.unwrap_or_default(),
            };
            let r = c
                .run_pod_sandbox(req)
                .await
                .map_err(|s| status("RunPodSandbox", s))?;
            println!("{}", r.into_inner().pod_sandbox_id);
        }
        Cmd::Create {
            pod,
            container_config,
            pod_config,
        } => {
            let req = cri::CreateContainerRequest {
                pod_sandbox_id: pod,
                config: Some(read_json(&container_config)?),
                sandbox_config: Some(read_json(&pod_config)?),
            };
            let r = c
                .create_container(req)
                .await
                .map_err(|s| status("CreateContainer", s))?;
            println!("{}", r.into_inner().container_id);
        }
        Cmd::Start { id } => {
            let req = cri::StartContainerRequest { container_id: id };
            c.start_container(req)
                .await
                .map_err(|s| status("StartContainer", s))?;
        }
        Cmd::Exec {
            sync: _,
            timeout,
            id,
            cmd,
        } => return exec_sync(&mut c, id, cmd, timeout).await,
        Cmd::Logs { id } => logs(&mut c, id).await?,
        Cmd::Stats { id } => {
            let req = cri::ContainerStatsRequest { container_id: id };
            let r = c
                .container_stats(req)
                .await
                .map_err(|s| status("ContainerStats", s))?;
            print_with_info(&r.into_inner())?;
        }
        Cmd::Inspect { id } => {
            let req = cri::ContainerStatusRequest {
                container_id: id,
                verbose: true,
            };
            let r = c
                .container_status(req)
                .await
                .map_err(|s| status("ContainerStatus", s))?;
            print_with_info(&r.into_inner())?;
        }
        Cmd::Inspectp { id } => {
            let req = cri::PodSandboxStatusRequest {
                pod_sandbox_id: id,
                verbose: true,
            };
            let r = c
                .pod_sandbox_status(req)
                .await
                .map_err(|s| status("PodSandboxStatus", s))?;
            print_with_info(&r.into_inner())?;
        }
        Cmd::Stop { timeout, id } => {
            let req = cri::StopContainerRequest {
                container_id: id,
                timeout,
            };
            c.stop_container(req)
                .await
                .map_err(|s| status("StopContainer", s))?;
        }
        Cmd::Update {
            memory,
            cpu_quota,
            id,
        } => {
            let req = cri::UpdateContainerResourcesRequest {
                container_id: id,
                linux: Some(cri::LinuxContainerResources {
                    memory_limit_in_bytes: memory.unwrap_or(0),
                    cpu_quota: cpu_quota.unwrap_or(0),
                    ..Default::default()
                }),
                ..Default::default()
            };
            c.update_container_resources(req)
                .await
                .map_err(|s| status("UpdateContainerResources", s))?;
        }
        Cmd::Rm { id } => {
            let req = cri::RemoveContainerRequest { container_id: id };
            c.remove_container(req)
                .await
                .map_err(|s| status("RemoveContainer", s))?;
        }
        Cmd::Stopp { id } => {
            let req = cri::StopPodSandboxRequest { pod_sandbox_id: id };
            c.stop_pod_sandbox(req)
                .await
                .map_err(|s| status("StopPodSandbox", s))?;
        }
        Cmd::Rmp { id } => {
            let req = cri::RemovePodSandboxRequest { pod_sandbox_id: id };
            c.remove_pod_sandbox(req)
                .await
                .map_err(|s| status("RemovePodSandbox", s))?;
        }
        Cmd::Ps { all, quiet, pod } => {
            let filter = cri::ContainerFilter {
                pod_sandbox_id: pod.unwrap_or_default(),
                state: (!all).then_some(cri::ContainerStateValue {
                    state: cri::ContainerState::ContainerRunning as i32,
                }),
                ..Default::default()
            };
            let req = cri::ListContainersRequest {
                filter: Some(filter),
            };
            let r = c
                .list_containers(req)
                .await
                .map_err(|s| status("ListContainers", s))?;
            for ct in r.into_inner().containers {
                if quiet {
                    println!("{}", ct.id);
                } else {
                    let name = ct.metadata.map(|m| m.name).unwrap_or_default();
                    println!(
                        "{} {} {} {}",
                        ct.id,
                        ct.pod_sandbox_id,
                        name,
                        state_name(&STATES, ct.state)
                    );
                }
            }
        }
        Cmd::Life {
            runtime,
            poll_ms,
            pod_config,
            container_config,
        } => {
            let t = life::life(
                &mut c,
                runtime.unwrap_or_default(),
                read_json(&pod_config)?,
                read_json(&container_config)?,
                Duration::from_millis(poll_ms),
                Duration::from_secs(cli.timeout),
            )
            .await?;
            println!("{}", t.line());
        }
        Cmd::Pods { quiet } => {
            let req = cri::ListPodSandboxRequest { filter: None };
            let r = c
                .list_pod_sandbox(req)
                .await
                .map_err(|s| status("ListPodSandbox", s))?;
            for p in r.into_inner().items {
                if quiet {
                    println!("{}", p.id);
                } else {
                    let name = p.metadata.map(|m| m.name).unwrap_or_default();
                    println!("{} {} {}", p.id, name, state_name(&POD_STATES, p.state));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// ExecSync: the command's stdout and stderr on ours, its exit code as ours (a code
/// outside 0-255, which no process exit gives, as 255).
async fn exec_sync(c: &mut Client, id: String, cmd: Vec<String>, timeout: i64) -> Result<ExitCode> {
    let req = cri::ExecSyncRequest {
        container_id: id,
        cmd,
        timeout,
    };
    let r = c
        .exec_sync(req)
        .await
        .map_err(|s| status("ExecSync", s))?
        .into_inner();
    std::io::stdout().write_all(&r.stdout)?;
    std::io::stderr().write_all(&r.stderr)?;
    std::io::stdout().flush()?;
    Ok(ExitCode::from(u8::try_from(r.exit_code).unwrap_or(255)))
}

/// The container's log file (its path from ContainerStatus), each entry on the stream
/// it came from.
async fn logs(c: &mut Client, id: String) -> Result<()> {
    let req = cri::ContainerStatusRequest {
        container_id: id.clone(),
        verbose: false,
    };
    let r = c
        .container_status(req)
        .await
        .map_err(|s| status("ContainerStatus", s))?;
    let path = r
        .into_inner()
        .status
        .map(|s| s.log_path)
        .unwrap_or_default();
    if path.is_empty() {
        bail!("container {id} has no log path (the pod config sets log_directory, the container log_path)");
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    for (stream, line) in logs::parse(&text).map_err(|e| anyhow::anyhow!("{path}: {e}"))? {
        match stream {
            logs::Stream::Stdout => out.write_all(line.as_bytes())?,
            logs::Stream::Stderr => err.write_all(line.as_bytes())?,
        }
    }
    Ok(())
}
