//! Attach clients of the monitor. The daemon's streaming server connects to the
//! monitor's control socket, says `attach`, and from then on both sides exchange frames
//! (`kind`, 32-bit big-endian length, data): the monitor sends the container's output
//! (also still written to the CRI log), the client sends stdin, its end, and terminal
//! sizes. Everything is non-blocking with bounded buffers: a client that stops reading
//! is dropped rather than stalling the container, whose output the monitor must drain.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// Client -> monitor: stdin bytes.
pub const FRAME_STDIN: u8 = 0;
/// Monitor -> client: stdout bytes.
pub const FRAME_STDOUT: u8 = 1;
/// Monitor -> client: stderr bytes.
pub const FRAME_STDERR: u8 = 2;
/// Client -> monitor: terminal size, `cols` and `rows` as big-endian u16.
pub const FRAME_RESIZE: u8 = 4;
/// Client -> monitor: the client's stdin ended.
pub const FRAME_STDIN_CLOSE: u8 = 5;
/// The largest frame accepted and the most bytes kept for one slow reader.
pub const MAX_FRAME: usize = 1 << 20;

/// Encodes one frame.
pub fn encode(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + data.len());
    out.push(kind);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// Splits a byte stream into frames.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// Adds bytes; returns the whole frames, or `Err` for a frame over [`MAX_FRAME`].
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, usize> {
        self.buf.extend_from_slice(data);
        let mut frames = Vec::new();
        let mut at = 0;
        while self.buf.len() - at >= 5 {
            let b = &self.buf[at..];
            let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
            if len > MAX_FRAME {
                return Err(len);
            }
            if b.len() < 5 + len {
                break;
            }
            frames.push((b[0], b[5..5 + len].to_vec()));
            at += 5 + len;
        }
        self.buf.drain(..at);
        Ok(frames)
    }
}

struct Client {
    stream: UnixStream,
    reader: FrameReader,
    pending: Vec<u8>,
    /// Whether this client feeds the container's stdin.
    stdin: bool,
}

/// What an attach client asked of the container.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Requests {
    pub stdin: Vec<u8>,
    /// The container's stdin should close (stdin_once and the client is done with it).
    pub close_stdin: bool,
    pub resize: Option<(u16, u16)>,
}

/// The attached clients.
#[derive(Default)]
pub struct Attachments {
    clients: Vec<Client>,
}

impl Attachments {
    /// Adds a client on a connected socket; `stdin` when it may write the container's
    /// stdin.
    pub fn add(&mut self, stream: UnixStream, stdin: bool) {
        if stream.set_nonblocking(true).is_ok() {
            self.clients.push(Client {
                stream,
                reader: FrameReader::default(),
                pending: Vec::new(),
                stdin,
            });
        }
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// The sockets to poll, in client order, and whether each has output waiting.
    pub fn fds(&self) -> Vec<(BorrowedFd<'_>, bool)> {
        self.clients
            .iter()
            .map(|c| (c.stream.as_fd(), !c.pending.is_empty()))
            .collect()
    }

    /// Queues container output for every client and sends what the sockets take.
    pub fn broadcast(&mut self, kind: u8, data: &[u8]) {
        let frame = encode(kind, data);
        self.clients.retain_mut(|c| {
            if c.pending.len() + frame.len() > MAX_FRAME {
                return false;
            }
            c.pending.extend_from_slice(&frame);
            flush(c)
        });
    }

    /// Handles readiness of client `i` (in [`Attachments::fds`] order); `stdin_once`
    /// closes the container's stdin when a stdin client leaves or ends its input.
    pub fn ready(&mut self, readable: &[bool], stdin_once: bool) -> Requests {
        let mut requests = Requests::default();
        let mut keep = Vec::with_capacity(self.clients.len());
        for (mut c, readable) in self.clients.drain(..).zip(readable.iter().copied()) {
            let mut alive = flush(&mut c);
            if alive && readable {
                let mut buf = [0u8; 16 * 1024];
                match c.stream.read(&mut buf) {
                    Ok(0) => alive = false,
                    Ok(n) => match c.reader.push(&buf[..n]) {
                        Ok(frames) => {
                            for (kind, data) in frames {
                                match kind {
                                    FRAME_STDIN if c.stdin => {
                                        requests.stdin.extend_from_slice(&data)
                                    }
                                    FRAME_STDIN_CLOSE if c.stdin && stdin_once => {
                                        requests.close_stdin = true
                                    }
                                    FRAME_RESIZE if data.len() == 4 => {
                                        requests.resize = Some((
                                            u16::from_be_bytes([data[0], data[1]]),
                                            u16::from_be_bytes([data[2], data[3]]),
                                        ))
                                    }
                                    _ => {}
                                }
                            }
                        }
                        Err(_) => alive = false,
                    },
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => alive = false,
                }
            }
            if alive {
                keep.push(c);
            } else if c.stdin && stdin_once {
                requests.close_stdin = true;
            }
        }
        self.clients = keep;
        requests
    }

    /// Sends what is left (best effort) and drops every client: the container ended.
    pub fn close_all(&mut self) {
        for mut c in self.clients.drain(..) {
            let _ = c.stream.set_nonblocking(false);
            let _ = c
                .stream
                .set_write_timeout(Some(std::time::Duration::from_secs(1)));
            let _ = c.stream.write_all(&c.pending);
        }
    }
}

/// Writes what the socket takes; false when the client is gone.
fn flush(c: &mut Client) -> bool {
    while !c.pending.is_empty() {
        match c.stream.write(&c.pending) {
            Ok(0) => return false,
            Ok(n) => {
                c.pending.drain(..n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// The container's stdin as the monitor holds it: a pipe's write end or the pty master,
/// non-blocking, with what the container has not read yet (bounded).
pub struct StdinSink {
    fd: Option<OwnedFd>,
    pending: Vec<u8>,
}

impl StdinSink {
    pub fn new(fd: OwnedFd) -> Self {
        let _ = nix::fcntl::fcntl(
            &fd,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        StdinSink {
            fd: Some(fd),
            pending: Vec::new(),
        }
    }

    /// The descriptor to poll for writability while input waits.
    pub fn waiting(&self) -> Option<BorrowedFd<'_>> {
        self.fd
            .as_ref()
            .filter(|_| !self.pending.is_empty())
            .map(|f| f.as_fd())
    }

    /// Queues `data` (dropping it past [`MAX_FRAME`] unread bytes) and writes what fits.
    pub fn write(&mut self, data: &[u8]) {
        if self.pending.len() + data.len() <= MAX_FRAME {
            self.pending.extend_from_slice(data);
        }
        self.flush();
    }

    pub fn flush(&mut self) {
        let Some(fd) = &self.fd else { return };
        while !self.pending.is_empty() {
            match nix::unistd::write(fd, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(_) => {
                    self.pending.clear();
                    self.fd = None;
                    return;
                }
            }
        }
    }

    /// Closes the container's stdin (after writing what is queued, if it can).
    pub fn close(&mut self) {
        self.flush();
        self.pending.clear();
        self.fd = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_across_reads() {
        let mut r = FrameReader::default();
        let mut wire = encode(FRAME_STDIN, b"echo hi\n");
        wire.extend(encode(FRAME_RESIZE, &[0, 80, 0, 24]));
        assert_eq!(r.push(&wire[..3]).unwrap(), vec![]);
        let frames = r.push(&wire[3..]).unwrap();
        assert_eq!(
            frames,
            vec![
                (FRAME_STDIN, b"echo hi\n".to_vec()),
                (FRAME_RESIZE, vec![0, 80, 0, 24])
            ]
        );
        assert!(FrameReader::default()
            .push(&[0, 0xff, 0xff, 0xff, 0xff])
            .is_err());
    }

    #[test]
    fn clients_get_output_and_give_input() {
        let mut a = Attachments::default();
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        a.add(ours, true);
        a.broadcast(FRAME_STDOUT, b"hello\n");
        let mut buf = [0u8; 11];
        theirs.read_exact(&mut buf).unwrap();
        assert_eq!(&buf[..], &encode(FRAME_STDOUT, b"hello\n")[..]);
        theirs.write_all(&encode(FRAME_STDIN, b"x")).unwrap();
        theirs.write_all(&encode(FRAME_STDIN_CLOSE, b"")).unwrap();
        let r = a.ready(&[true], true);
        assert_eq!(r.stdin, b"x");
        assert!(r.close_stdin);
        drop(theirs);
        let r = a.ready(&[true], false);
        assert!(!r.close_stdin);
        assert!(a.is_empty());
    }

    #[test]
    fn a_client_that_never_reads_is_dropped() {
        let mut a = Attachments::default();
        let (ours, _theirs) = UnixStream::pair().unwrap();
        a.add(ours, false);
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..64 {
            a.broadcast(FRAME_STDOUT, &chunk);
        }
        assert!(a.is_empty());
    }

    proptest! {
        #[test]
        fn frame_reader_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut r = FrameReader::default();
            for c in chunks {
                if r.push(&c).is_err() { break }
            }
        }
    }
}
