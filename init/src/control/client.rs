//! The client side: one request to PID 1's control socket and its reply.

use std::os::fd::AsRawFd;
use std::path::Path;

use nix::sys::socket::{
    connect, recv, send, socket, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr,
};

use super::{Reply, Request, MAX_MESSAGE};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the service manager at {path}: {source} (is this a Berth node, and PID 1 running?)")]
    Connect { path: String, source: nix::Error },
    #[error("talking to the service manager at {path}: {source}")]
    Io { path: String, source: nix::Error },
    #[error("the service manager at {path} sent a reply that is not one")]
    Malformed { path: String },
}

/// Sends `request` to the socket at `path` and waits for the reply.
pub fn call(path: &Path, request: &Request) -> Result<Reply, ClientError> {
    let shown = path.display().to_string();
    let io = |source| ClientError::Io {
        path: shown.clone(),
        source,
    };
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io)?;
    let addr = UnixAddr::new(path).map_err(io)?;
    connect(fd.as_raw_fd(), &addr).map_err(|source| ClientError::Connect {
        path: shown.clone(),
        source,
    })?;
    send(fd.as_raw_fd(), &request.encode(), MsgFlags::MSG_NOSIGNAL).map_err(io)?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    let len = loop {
        match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other.map_err(io)?,
        }
    };
    Reply::decode(&buf[..len]).ok_or(ClientError::Malformed { path: shown })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::socket::ControlSocket;
    use std::time::Duration;

    /// A real socket pair in a temp folder: the server answers from a thread the way the
    /// event loop does, the client gets the reply and the server sees the peer's uid.
    #[test]
    fn a_request_is_answered_over_the_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("init.sock");
        let mut server = ControlSocket::bind(&path).expect("bind");
        let client_path = path.clone();
        let client = std::thread::spawn(move || {
            call(&client_path, &Request::new("show", &["a.service".into()]))
        });
        let mut seen = None;
        for _ in 0..500 {
            server.serve(Duration::ZERO, |req, uid| {
                seen = Some((req.clone(), uid));
                Reply::Ok(vec![format!("Id={}", req.args[0])])
            });
            if seen.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let reply = client.join().expect("client thread").expect("reply");
        assert_eq!(reply, Reply::Ok(vec!["Id=a.service".into()]));
        let (req, uid) = seen.expect("request seen");
        assert_eq!(req.verb, "show");
        assert_eq!(uid, nix::unistd::getuid().as_raw());
    }

    #[test]
    fn no_manager_is_said_clearly() {
        let err = call(
            Path::new("/nonexistent/init.sock"),
            &Request::new("list-units", &[]),
        )
        .expect_err("no socket");
        assert!(
            err.to_string().contains("cannot reach the service manager"),
            "{err}"
        );
    }
}
