//! The monitor's control socket: the daemon asks it to reopen the log file and waits for
//! the answer, because CRI's ReopenContainerLog must not return before the new file is
//! in use. One request per connection, one line each way. An `attach` request instead
//! turns the connection into an attach stream ([`super::attach`]) after the `ok` line.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

/// The request line.
const REOPEN: &str = "reopen";
/// The attach request line.
pub const ATTACH: &str = "attach";
/// How long either side waits for the other.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Client: asks the monitor listening on `socket` to reopen its log; `Ok` once it has.
pub fn request_reopen(socket: &Path) -> Result<(), String> {
    let mut stream = crate::sockpath::connect(socket)
        .map_err(|e| format!("connecting to {}: {e}", socket.display()))?;
    let _ = stream.set_read_timeout(Some(TIMEOUT));
    let _ = stream.set_write_timeout(Some(TIMEOUT));
    stream
        .write_all(format!("{REOPEN}\n").as_bytes())
        .map_err(|e| format!("writing to {}: {e}", socket.display()))?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| format!("reading from {}: {e}", socket.display()))?;
    match answer.trim_end() {
        "ok" => Ok(()),
        "" => Err("the monitor closed the connection".to_string()),
        other => Err(other.to_string()),
    }
}

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
