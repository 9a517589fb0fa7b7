//! The monitor's side of its control socket (the protocol and the daemon's client are in
//! [`crate::monitor_protocol`]): it reopens the log file when asked and answers once the
//! new file is in use. An `attach` request instead turns the connection into an attach
//! stream ([`super::attach`]) after the `ok` line.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};

use crate::monitor_protocol::{ATTACH, REOPEN, TIMEOUT};

/// Server: answers one connection pending on `listener`; `reopen` is called for a
/// reopen request and its error, if any, is sent back. An attach request returns the
/// connection (after `ok`) for the caller to keep.
pub fn serve_one(
    listener: &UnixListener,
    reopen: impl FnOnce() -> std::io::Result<()>,
) -> Option<UnixStream> {
    let (stream, _) = listener.accept().ok()?;
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(TIMEOUT));
    let _ = stream.set_write_timeout(Some(TIMEOUT));
    let mut request = String::new();
    let mut writer = stream.try_clone().ok()?;
    // The client waits for the answer before it sends more, so the buffered reader
    // cannot take bytes that belong to the attach stream.
    BufReader::new(stream).read_line(&mut request).ok()?;
    if request.trim_end() == ATTACH {
        writer.write_all(b"ok\n").ok()?;
        return Some(writer);
    }
    let answer = if request.trim_end() == REOPEN {
        match reopen() {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("error reopening the log: {e}"),
        }
    } else {
        format!("error unknown request {:?}", request.trim_end())
    };
    let _ = writer.write_all(format!("{answer}\n").as_bytes());
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor_protocol::request_reopen;

    #[test]
    fn reopen_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("ctl");
        let listener = UnixListener::bind(&socket).unwrap();
        let server = std::thread::spawn(move || {
            assert!(serve_one(&listener, || Ok(())).is_none());
            assert!(serve_one(&listener, || Err(std::io::Error::other("disk full"))).is_none());
        });
        request_reopen(&socket).unwrap();
        let err = request_reopen(&socket).unwrap_err();
        assert!(err.contains("disk full"), "{err}");
        server.join().unwrap();
        assert!(request_reopen(&dir.path().join("missing")).is_err());
    }
}
