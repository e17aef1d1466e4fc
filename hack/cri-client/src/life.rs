//! `life`: one pod and container life, timed from inside the client, for
//! hack/bench-containerd. RunPodSandbox, CreateContainer, StartContainer, wait for
//! the container to exit, StopPodSandbox, RemovePodSandbox: what the kubelet asks of
//! the runtime for a pod whose single container runs to completion. The client's own
//! start (process, tokio, the connection) is outside the timed span.

use crate::{status, Client};
use anyhow::{bail, Result};
use k8s_cri::v1 as cri;
use std::time::{Duration, Instant};

/// What one life took, each step in milliseconds.
pub struct Timings {
    pub steps: Vec<(&'static str, f64)>,
}

impl Timings {
    fn total(&self) -> f64 {
        self.steps.iter().map(|(_, ms)| ms).sum()
    }

    /// `total=… runp=… create=… …` on one line.
    pub fn line(&self) -> String {
        let mut s = format!("total={:.2}", self.total());
        for (name, ms) in &self.steps {
            s.push_str(&format!(" {name}={ms:.2}"));
        }
        s
    }
}

/// Runs the life; fails if any step fails, if the container does not exit within
/// `limit`, or if it exits with a status other than 0. `poll` is how often the
/// container's status is asked for while it runs (the kubelet's PLEG relists; a
/// timed loop has to ask too, and the same interval serves every runtime).
pub async fn life(
    c: &mut Client,
    handler: String,
    pod: cri::PodSandboxConfig,
    container: cri::ContainerConfig,
    poll: Duration,
    limit: Duration,
) -> Result<Timings> {
    let mut steps = Vec::new();
    let mut t = Instant::now();
    let mut lap = |name: &'static str, steps: &mut Vec<(&'static str, f64)>| {
        let now = Instant::now();
        steps.push((name, (now - t).as_secs_f64() * 1000.0));
        t = now;
    };
    let pod_id = c
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: handler,
        })
        .await
        .map_err(|s| status("RunPodSandbox", s))?
        .into_inner()
        .pod_sandbox_id;
    lap("runp", &mut steps);
    // From here on, a failure still removes the pod.
    let result = container_life(
        c, &pod_id, pod, container, poll, limit, &mut lap, &mut steps,
    )
    .await;
    let stop = c
        .stop_pod_sandbox(cri::StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .map_err(|s| status("StopPodSandbox", s));
    lap("stopp", &mut steps);
    let rm = c
        .remove_pod_sandbox(cri::RemovePodSandboxRequest {
            pod_sandbox_id: pod_id,
        })
        .await
        .map_err(|s| status("RemovePodSandbox", s));
    lap("rmp", &mut steps);
    result?;
    stop?;
    rm?;
    Ok(Timings { steps })
}

#[allow(clippy::too_many_arguments)]
async fn container_life(
    c: &mut Client,
    pod_id: &str,
    pod: cri::PodSandboxConfig,
    container: cri::ContainerConfig,
    poll: Duration,
    limit: Duration,
    lap: &mut impl FnMut(&'static str, &mut Vec<(&'static str, f64)>),
    steps: &mut Vec<(&'static str, f64)>,
) -> Result<()> {
    let id = c
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod_id.to_string(),
            config: Some(container),
            sandbox_config: Some(pod),
        })
        .await
        .map_err(|s| status("CreateContainer", s))?
        .into_inner()
        .container_id;
    lap("create", steps);
    c.start_container(cri::StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .map_err(|s| status("StartContainer", s))?;
    lap("start", steps);
    let deadline = Instant::now() + limit;
    loop {
        let st = c
            .container_status(cri::ContainerStatusRequest {
                container_id: id.clone(),
                verbose: false,
            })
            .await
            .map_err(|s| status("ContainerStatus", s))?
            .into_inner()
            .status
            .unwrap_or_default();
        if st.state == cri::ContainerState::ContainerExited as i32 {
            if st.exit_code != 0 {
                bail!(
                    "container {id} exited with {} ({})",
                    st.exit_code,
                    st.reason
                );
            }
            break;
        }
        if Instant::now() > deadline {
            bail!("container {id} did not exit within {limit:?}");
        }
        tokio::time::sleep(poll).await;
    }
    lap("wait", steps);
    Ok(())
}
