//! Exec, Attach and PortForward: check the request against the container or pod, then
//! hand what the streaming server needs to it and answer with its one-time URL.

use tonic::Status;

use super::records::PodState;
use super::{status, validate, Daemon};
use crate::pod::PodPaths;
use crate::proto::v1::*;
use crate::stream::{AttachTarget, ExecTarget, Pending, PortForwardTarget, Wanted};

impl Daemon {
    fn stream_server(&self) -> Result<&crate::stream::StreamServer, Status> {
        self.stream
            .as_deref()
            .ok_or_else(|| Status::unavailable("the streaming server is not running"))
    }

    fn wanted(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Result<Wanted, Status> {
        if tty && stderr {
            return Err(validate::invalid(
                "stderr",
                "tty and stderr cannot both be true (a terminal has one output)",
            )
            .into());
        }
        if !stdin && !stdout && !stderr {
            return Err(
                validate::invalid("stdin", "one of stdin, stdout and stderr must be true").into(),
            );
        }
        Ok(Wanted {
            stdin,
            stdout,
            stderr,
            tty,
        })
    }

    fn running_container(&self, id: &str) -> Result<super::records::ContainerRecord, Status> {
        let record = self.container(id)?;
        let state = self.runtime_state(&record);
        if state.state != crate::container::ContainerState::Running {
            return Err(Status::failed_precondition(format!(
                "container {} is not running",
                record.id
            )));
        }
        Ok(record)
    }

    pub(super) fn exec(&self, request: ExecRequest) -> Result<ExecResponse, Status> {
        if request.cmd.is_empty() {
            return Err(validate::invalid("cmd", "must not be empty").into());
        }
        let wanted = Self::wanted(request.stdin, request.stdout, request.stderr, request.tty)?;
        let record = self.running_container(&request.container_id)?;
        let target = ExecTarget {
            runtime: self.oci_runtime(&record.runtime_handler)?,
            paths: self.paths(&record.id)?,
            cmd: request.cmd,
            tty: request.tty,
        };
        let url = self
            .stream_server()?
            .url_for(Pending::Exec {
                target: Box::new(target),
                wanted,
            })
            .map_err(status)?;
        Ok(ExecResponse { url })
    }

    pub(super) fn attach(&self, request: AttachRequest) -> Result<AttachResponse, Status> {
        let wanted = Self::wanted(request.stdin, request.stdout, request.stderr, request.tty)?;
        let record = self.running_container(&request.container_id)?;
        let paths = self.paths(&record.id)?;
        let target = AttachTarget {
            id: record.id.clone(),
            socket: paths.ctl_socket.clone(),
        };
        let url = self
            .stream_server()?
            .url_for(Pending::Attach { target, wanted })
            .map_err(status)?;
        Ok(AttachResponse { url })
    }

    pub(super) fn port_forward(
        &self,
        request: PortForwardRequest,
    ) -> Result<PortForwardResponse, Status> {
        let pod = self.find_pod(&request.pod_sandbox_id)?.ok_or_else(|| {
            Status::not_found(format!("pod {} not found", request.pod_sandbox_id))
        })?;
        if pod.state != PodState::Ready {
            return Err(Status::failed_precondition(format!(
                "pod {} is not ready",
                pod.id
            )));
        }
        let netns = (!pod.host_network).then(|| PodPaths::new(&self.config.state, &pod.id).netns());
        let url = self
            .stream_server()?
            .url_for(Pending::PortForward(PortForwardTarget { netns }))
            .map_err(status)?;
        Ok(PortForwardResponse { url })
    }
}
