//! Exec, Attach and PortForward: check the request's streams, have the service layer
//! check the container or pod and say what the streaming server needs
//! ([`crate::service::container_ops`]), hand that to the streaming server and answer
//! with its one-time URL.

use tonic::Status;

use super::{status, validate, Daemon};
use crate::proto::v1::*;
use crate::stream::{Pending, Wanted};

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

    pub(super) fn rpc_exec(&self, request: ExecRequest) -> Result<ExecResponse, Status> {
        if request.cmd.is_empty() {
            return Err(validate::invalid("cmd", "must not be empty").into());
        }
        let wanted = Self::wanted(request.stdin, request.stdout, request.stderr, request.tty)?;
        let target = self.exec_target(&request.container_id, request.cmd, request.tty)?;
        let url = self
            .stream_server()?
            .url_for(Pending::Exec {
                target: Box::new(target),
                wanted,
            })
            .map_err(status)?;
        Ok(ExecResponse { url })
    }

    pub(super) fn rpc_attach(&self, request: AttachRequest) -> Result<AttachResponse, Status> {
        let wanted = Self::wanted(request.stdin, request.stdout, request.stderr, request.tty)?;
        let target = self.attach_target(&request.container_id)?;
        let url = self
            .stream_server()?
            .url_for(Pending::Attach { target, wanted })
            .map_err(status)?;
        Ok(AttachResponse { url })
    }

    pub(super) fn rpc_port_forward(
        &self,
        request: PortForwardRequest,
    ) -> Result<PortForwardResponse, Status> {
        let target = self.port_forward_target(&request.pod_sandbox_id)?;
        let url = self
            .stream_server()?
            .url_for(Pending::PortForward(target))
            .map_err(status)?;
        Ok(PortForwardResponse { url })
    }
}
