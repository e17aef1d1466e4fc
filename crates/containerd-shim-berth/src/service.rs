//! containerd's task API (containerd.task.v2.Task) on berth: each request finds its
//! task and process and calls [`crate::task`]; events follow what changed.

use crate::errors::{from_berth, invalid, not_found, other};
use crate::events::{timestamp, Events};
use crate::io::IoPaths;
use crate::process::Phase;
use crate::reaper::Children;
use crate::task::{Origin, Shared, Task};
use containerd_shim::api;
use containerd_shim::protos::events::task::{
    TaskCheckpointed, TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskIO, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::{Message, MessageField};
use containerd_shim::protos::shim::oci::ProcessDetails;
use containerd_shim::protos::topics;
use containerd_shim::protos::types::task::{ProcessInfo, Status as TaskStatus};
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{ExitSignal, TtrpcContext, TtrpcResult};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The task service of one shim process (all the tasks of a pod).
#[derive(Clone)]
pub struct Service {
    shared: Arc<Shared>,
    tasks: Arc<Mutex<HashMap<String, Arc<Task>>>>,
    exit: Arc<ExitSignal>,
}

impl Service {
    /// The service for containerd namespace `namespace`, publishing through
    /// `publisher`; `exit` ends the shim.
    pub fn new(namespace: &str, publisher: RemotePublisher, exit: Arc<ExitSignal>) -> Self {
        let children = Arc::new(Children::default());
        if let Err(e) = children.start_reaper() {
            log::error!("{e}");
        }
        let unified = matches!(
            berth_cgroups::detect(),
            Ok(berth_cgroups::CgroupSetup::Unified)
        );
        Service {
            shared: Arc::new(Shared {
                namespace: namespace.to_string(),
                events: Events::start(publisher, namespace.to_string()),
                children,
                unified,
            }),
            tasks: Arc::new(Mutex::new(HashMap::new())),
            exit,
        }
    }

    fn task(&self, id: &str) -> TtrpcResult<Arc<Task>> {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| not_found(format!("container {id}")))
    }

    fn events(&self) -> &Events {
        &self.shared.events
    }
}

fn io_paths(stdin: &str, stdout: &str, stderr: &str, terminal: bool) -> IoPaths {
    IoPaths {
        stdin: stdin.into(),
        stdout: stdout.into(),
        stderr: stderr.into(),
        terminal,
    }
}

impl containerd_shim::Task for Service {
    fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        if self.task(&req.id).is_ok() {
            return Err(from_berth(berth_runtime::Error::AlreadyExists(
                req.id.clone(),
            )));
        }
        let options = crate::options::from_any(req.options.as_ref()).map_err(invalid)?;
        let bundle = PathBuf::from(&req.bundle);
        if let Err(e) = crate::options::save(&bundle, &options) {
            log::warn!("{e}");
        }
        let runtime =
            berth_runtime::Runtime::new(crate::options::root(&options, &self.shared.namespace))
                .map_err(from_berth)?
                .with_systemd_cgroup(options.systemd_cgroup);
        let rootfs = crate::mounts::mount_rootfs(&bundle, &req.rootfs).map_err(other)?;
        let io = io_paths(&req.stdin, &req.stdout, &req.stderr, req.terminal);
        // A checkpoint (containerd's restore of a task) makes the init by CRIU; the
        // parent checkpoint, if any, is linked from the image directory itself.
        let origin = if req.checkpoint.is_empty() {
            Origin::Create(berth_runtime::CreateOptions {
                no_pivot: options.no_pivot_root,
                no_new_keyring: options.no_new_keyring,
                ..Default::default()
            })
        } else {
            Origin::Restore(crate::options::restore(&req.checkpoint, &options))
        };
        let task = match Task::create(
            &self.shared,
            &runtime,
            &req.id,
            bundle,
            rootfs.clone(),
            io,
            origin,
        ) {
            Ok(t) => t,
            Err(e) => {
                if let Some(r) = &rootfs {
                    crate::mounts::unmount_rootfs(r);
                }
                return Err(e);
            }
        };
        let pid = task.init.lock().pid;
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(req.id.clone(), task);
        self.events().send(
            topics::TASK_CREATE_EVENT_TOPIC,
            TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle.clone(),
                checkpoint: req.checkpoint.clone(),
                io: MessageField::some(TaskIO {
                    stdin: req.stdin.clone(),
                    stdout: req.stdout.clone(),
                    stderr: req.stderr.clone(),
                    terminal: req.terminal,
                    ..Default::default()
                }),
                pid: pid as u32,
                ..Default::default()
            },
        );
        Ok(api::CreateTaskResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        let task = self.task(&req.id)?;
        let pid = task.start(&self.shared, &req.exec_id)?;
        if req.exec_id.is_empty() {
            self.events().send(
                topics::TASK_START_EVENT_TOPIC,
                TaskStart {
                    container_id: req.id.clone(),
                    pid: pid as u32,
                    ..Default::default()
                },
            );
        } else {
            self.events().send(
                topics::TASK_EXEC_STARTED_EVENT_TOPIC,
                TaskExecStarted {
                    container_id: req.id.clone(),
                    exec_id: req.exec_id.clone(),
                    pid: pid as u32,
                    ..Default::default()
                },
            );
        }
        Ok(api::StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        let task = self.task(&req.id)?;
        if !req.exec_id.is_empty() {
            let p = task.remove_exec(&req.exec_id)?;
            let st = p.lock();
            return Ok(api::DeleteResponse {
                pid: st.pid as u32,
                exit_status: st.exit.map_or(0, |e| e.code),
                exited_at: st.exit.map(|e| timestamp(e.at)).into(),
                ..Default::default()
            });
        }
        let (pid, exit) = task.delete(&self.shared)?;
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&req.id);
        self.events().send(
            topics::TASK_DELETE_EVENT_TOPIC,
            TaskDelete {
                container_id: req.id.clone(),
                pid: pid as u32,
                exit_status: exit.code,
                exited_at: Some(timestamp(exit.at)).into(),
                id: req.id.clone(),
                ..Default::default()
            },
        );
        Ok(api::DeleteResponse {
            pid: pid as u32,
            exit_status: exit.code,
            exited_at: Some(timestamp(exit.at)).into(),
            ..Default::default()
        })
    }

    fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        let task = self.task(&req.id)?;
        let p = task.process(&req.exec_id)?;
        let st = p.lock();
        let status = match st.phase {
            Phase::Stopped => TaskStatus::STOPPED,
            Phase::Created => TaskStatus::CREATED,
            Phase::Running if req.exec_id.is_empty() => {
                match task.container().as_ref().map(|c| c.status()) {
                    Some(berth_runtime::Status::Paused) => TaskStatus::PAUSED,
                    Some(berth_runtime::Status::Stopped) | None => TaskStatus::STOPPED,
                    _ => TaskStatus::RUNNING,
                }
            }
            Phase::Running => TaskStatus::RUNNING,
        };
        Ok(api::StateResponse {
            id: req.id.clone(),
            bundle: task.bundle.to_string_lossy().into_owned(),
            pid: st.pid as u32,
            status: status.into(),
            stdin: p.io.stdin.clone(),
            stdout: p.io.stdout.clone(),
            stderr: p.io.stderr.clone(),
            terminal: p.io.terminal,
            exit_status: st.exit.map_or(0, |e| e.code),
            exited_at: st.exit.map(|e| timestamp(e.at)).into(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        })
    }

    fn pids(&self, _ctx: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        let task = self.task(&req.id)?;
        let pids = task.with_container(|c| c.processes())?;
        let execs: HashMap<i32, String> = task
            .execs()
            .iter()
            .map(|p| (p.lock().pid, p.exec_id.clone()))
            .collect();
        let mut processes = Vec::with_capacity(pids.len());
        for pid in pids {
            let mut info = ProcessInfo {
                pid: pid as u32,
                ..Default::default()
            };
            if let Some(exec_id) = execs.get(&pid) {
                let details = ProcessDetails {
                    exec_id: exec_id.clone(),
                    ..Default::default()
                };
                info.info = MessageField::some(Any {
                    type_url: "containerd.runc.v1.ProcessDetails".into(),
                    value: details.write_to_bytes().map_err(other)?,
                    ..Default::default()
                });
            }
            processes.push(info);
        }
        Ok(api::PidsResponse {
            processes,
            ..Default::default()
        })
    }

    fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        let task = self.task(&req.id)?;
        task.with_container(|c| c.pause())?;
        self.events().send(
            topics::TASK_PAUSED_EVENT_TOPIC,
            TaskPaused {
                container_id: req.id.clone(),
                ..Default::default()
            },
        );
        Ok(api::Empty::new())
    }

    fn resume(&self, _ctx: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<api::Empty> {
        let task = self.task(&req.id)?;
        task.with_container(|c| c.resume())?;
        self.events().send(
            topics::TASK_RESUMED_EVENT_TOPIC,
            TaskResumed {
                container_id: req.id.clone(),
                ..Default::default()
            },
        );
        Ok(api::Empty::new())
    }

    fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        req: api::CheckpointTaskRequest,
    ) -> TtrpcResult<api::Empty> {
        let task = self.task(&req.id)?;
        let saved = crate::options::load(&task.bundle);
        let options =
            crate::options::checkpoint(req.options.as_ref(), &req.path, &saved, &task.bundle)
                .map_err(invalid)?;
        let result = task.checkpoint(&self.shared, &options);
        // Our own work directory goes (the dump's log is quoted in an error already).
        let ours = task.bundle.join(crate::options::CRIU_WORK);
        if options.criu.work_dir.as_deref() == Some(ours.as_path()) {
            let _ = std::fs::remove_dir_all(&ours);
        }
        result?;
        self.events().send(
            topics::TASK_CHECKPOINTED_EVENT_TOPIC,
            TaskCheckpointed {
                container_id: req.id.clone(),
                ..Default::default()
            },
        );
        Ok(api::Empty::new())
    }

    fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        let task = self.task(&req.id)?;
        task.kill(&req.exec_id, req.signal, req.all)?;
        Ok(api::Empty::new())
    }

    fn exec(&self, _ctx: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<api::Empty> {
        let task = self.task(&req.id)?;
        let spec = req
            .spec
            .as_ref()
            .ok_or_else(|| invalid(format!("exec {}: no process spec", req.exec_id)))?;
        let process = berth_runtime::process_from_json(&spec.value).map_err(from_berth)?;
        task.add_exec(
            &req.exec_id,
            io_paths(&req.stdin, &req.stdout, &req.stderr, req.terminal),
            process,
        )?;
        self.events().send(
            topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            TaskExecAdded {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            },
        );
        Ok(api::Empty::new())
    }

    fn resize_pty(
        &self,
        _ctx: &TtrpcContext,
        req: api::ResizePtyRequest,
    ) -> TtrpcResult<api::Empty> {
        let task = self.task(&req.id)?;
        let p = task.process(&req.exec_id)?;
        let console = p.lock().console.clone();
        match console {
            Some(m) => crate::io::resize(&m, req.width, req.height).map_err(other)?,
            None => {
                return Err(crate::errors::status(
                    containerd_shim::protos::ttrpc::Code::FAILED_PRECONDITION,
                    format!(
                        "process {:?} of container {} has no terminal",
                        req.exec_id, req.id
                    ),
                ))
            }
        }
        Ok(api::Empty::new())
    }

    fn close_io(&self, _ctx: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<api::Empty> {
        let task = self.task(&req.id)?;
        let p = task.process(&req.exec_id)?;
        if req.stdin {
            if let Some(s) = p.lock().stdin.take() {
                s.close();
            }
        }
        Ok(api::Empty::new())
    }

    fn update(&self, _ctx: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<api::Empty> {
        let task = self.task(&req.id)?;
        let any = req
            .resources
            .as_ref()
            .ok_or_else(|| invalid(format!("update {}: no resources", req.id)))?;
        let resources: oci_spec::runtime::LinuxResources = serde_json::from_slice(&any.value)
            .map_err(|e| invalid(format!("update {}: resources: {e}", req.id)))?;
        task.with_container(|c| c.update(&resources))?;
        Ok(api::Empty::new())
    }

    fn wait(&self, _ctx: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        let task = self.task(&req.id)?;
        let p = task.process(&req.exec_id)?;
        let exit = p.wait();
        Ok(api::WaitResponse {
            exit_status: exit.code,
            exited_at: Some(timestamp(exit.at)).into(),
            ..Default::default()
        })
    }

    fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        let task = self.task(&req.id)?;
        let stats = task.with_container(|c| c.stats())?;
        let any = crate::metrics::to_any(&stats, self.shared.unified).map_err(other)?;
        Ok(api::StatsResponse {
            stats: MessageField::some(any),
            ..Default::default()
        })
    }

    fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let task_pid = self.task(&req.id).map(|t| t.init.lock().pid).unwrap_or(0);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: task_pid as u32,
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _ctx: &TtrpcContext, _req: api::ShutdownRequest) -> TtrpcResult<api::Empty> {
        // One shim serves a whole pod: it stays while any of its tasks does.
        if self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
        {
            self.exit.signal();
        }
        Ok(api::Empty::new())
    }
}
