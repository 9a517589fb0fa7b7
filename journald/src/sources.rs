//! Reading each source until it would block, and handing what it says to the
//! [`Collector`]: stdout stream connections, the native and syslog datagram sockets, and
//! the kernel log. Each `read_*` is called by the poll loop when its descriptor is
//! readable; none of them blocks.

use crate::build;
use crate::collector::Collector;
use crate::context::{now_usec, Peer};
use crate::entry::Field;
use crate::kmsg::{self, RecordSplitter};
use crate::native;
use crate::stream::{StreamHeader, StreamLine, StreamParser};
use crate::sys;
use crate::syslog;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};

/// Reads per wake-up of one descriptor, so that one busy source cannot starve the others
/// (epoll is level-triggered: the rest is read on the next turn).
const READS_PER_WAKEUP: usize = 64;

/// Whether a source stays open after a read.
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    /// Drained for now.
    Open,
    /// The per-wakeup cap was reached: more may be waiting.
    Busy,
    /// At its end (or failed): remove it.
    Closed,
}

/// How often a stream's process details are read again from /proc (the unit may exec,
/// as `systemd-cat` does after sending the header).
const PEER_REFRESH_USEC: u64 = 1_000_000;

/// One accepted stdout stream.
pub struct StreamConn {
    pub socket: UnixStream,
    parser: StreamParser,
    writer: StreamWriter,
    stream_id: String,
}

/// The process writing to a stream now, and the fields its lines share.
struct StreamWriter {
    peer: Peer,
    /// Monotonic µs of the last /proc read; `None`: read at the next line.
    read_at: Option<u64>,
    /// The fields from `peer` and the machine, shared by every line.
    trusted: Vec<Field>,
}

impl StreamWriter {
    fn new(pid: u32, uid: u32, gid: u32) -> StreamWriter {
        StreamWriter {
            peer: Peer {
                pid,
                uid,
                gid,
                ..Peer::default()
            },
            read_at: None,
            trusted: Vec::new(),
        }
    }

    /// Makes `line` an entry and submits it.
    fn emit(
        &mut self,
        collector: &mut Collector,
        stream_id: &str,
        stamp: (u64, u64),
        header: &StreamHeader,
        line: &StreamLine<'_>,
    ) {
        // Read /proc when the first line comes (after any exec following the header),
        // then again at most once per PEER_REFRESH_USEC.
        if self
            .read_at
            .is_none_or(|at| stamp.1.saturating_sub(at) >= PEER_REFRESH_USEC)
        {
            let p = &self.peer;
            self.peer = Peer::from_proc(p.pid, p.uid, p.gid);
            self.read_at = Some(stamp.1);
            self.trusted =
                build::trusted_fields(collector.identity(), &self.peer, header.unit.as_deref());
        }
        let boot_id = collector.identity().boot_id;
        let entry = build::stream_line(stamp, boot_id, stream_id, header, line, &self.trusted);
        let unit = header.unit.as_deref().or(self.peer.unit.as_deref());
        collector.submit(entry, unit, "stdout");
    }
}

impl StreamConn {
    /// A new connection: credentials from SO_PEERCRED (who connected), then from each
    /// read (who wrote: PID 1 connects, the unit writes); the rest from /proc.
    pub fn accept(socket: UnixStream, line_max: usize) -> io::Result<StreamConn> {
        socket.set_nonblocking(true)?;
        sys::pass_credentials(&socket)?;
        let _ = socket.shutdown(std::net::Shutdown::Write);
        let (pid, uid, gid) = sys::peer_credentials(&socket)?;
        let stream_id = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
            .map(|u| u.trim().replace('-', ""))
            .unwrap_or_default();
        Ok(StreamConn {
            socket,
            parser: StreamParser::new(uid == 0, line_max),
            writer: StreamWriter::new(pid, uid, gid),
            stream_id,
        })
    }

    /// Reads what is there; `Closed` at EOF, on an error or a refused header. With
    /// `stop_when_high`, stops (`Busy`) once the queue is above its high-water mark,
    /// leaving the rest in the socket (see [`crate::pacer`]); the lines of a chunk read
    /// before that may then use the queue's paced limit, so none of them is dropped.
    pub fn read(
        &mut self,
        collector: &mut Collector,
        buf: &mut [u8],
        stop_when_high: bool,
    ) -> Status {
        collector.set_paced(stop_when_high);
        let status = self.read_chunks(collector, buf, stop_when_high);
        collector.set_paced(false);
        status
    }

    fn read_chunks(
        &mut self,
        collector: &mut Collector,
        buf: &mut [u8],
        stop_when_high: bool,
    ) -> Status {
        let StreamConn {
            socket,
            parser,
            writer,
            stream_id,
        } = self;
        for _ in 0..READS_PER_WAKEUP {
            if stop_when_high && collector.queue_high() {
                return Status::Busy;
            }
            let (n, credentials) = match sys::receive_stream(socket, buf) {
                Ok(read) => read,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Status::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => (0, None),
            };
            let stamp = now_usec();
            if let Some((pid, uid, gid)) = credentials.filter(|c| c.0 != writer.peer.pid) {
                // The last writer's unfinished line is its own; then the new writer's.
                parser.pid_changed(&mut |header: &StreamHeader, line: StreamLine<'_>| {
                    writer.emit(collector, stream_id, stamp, header, &line)
                });
                *writer = StreamWriter::new(pid, uid, gid);
            }
            let mut emit = |header: &StreamHeader, line: StreamLine<'_>| {
                writer.emit(collector, stream_id, stamp, header, &line)
            };
            let result = if n == 0 {
                parser.finish(&mut emit)
            } else {
                parser.feed(&buf[..n], &mut emit)
            };
            if n == 0 || result.is_err() {
                if let Err(e) = result {
                    crate::say!("berth-journald: stream from pid {}: {e}", writer.peer.pid);
                }
                return Status::Closed;
            }
        }
        Status::Busy
    }

    /// At shutdown: what is left of a line is written as the last line.
    pub fn finish(&mut self, collector: &mut Collector) {
        let stamp = now_usec();
        let (writer, stream_id) = (&mut self.writer, &self.stream_id);
        let _ = self
            .parser
            .finish(&mut |header: &StreamHeader, line: StreamLine<'_>| {
                writer.emit(collector, stream_id, stamp, header, &line)
            });
    }
}

/// Which datagram protocol a socket speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Datagram {
    Native,
    Syslog,
}

/// Reads waiting datagrams of `socket`; true when more may be waiting (the per-wakeup
/// cap was reached), false when the socket is drained.
pub fn read_datagrams(
    kind: Datagram,
    socket: &UnixDatagram,
    collector: &mut Collector,
    buf: &mut Vec<u8>,
) -> bool {
    let more = read_some_datagrams(kind, socket, collector, buf);
    // One big datagram must not keep its buffer for the daemon's lifetime.
    if buf.len() > DATAGRAM_BUF_KEEP {
        *buf = Vec::new();
    }
    more
}

/// The receive buffer is kept between datagrams up to this size.
const DATAGRAM_BUF_KEEP: usize = 256 * 1024;

fn read_some_datagrams(
    kind: Datagram,
    socket: &UnixDatagram,
    collector: &mut Collector,
    buf: &mut Vec<u8>,
) -> bool {
    for _ in 0..READS_PER_WAKEUP {
        let received = match sys::receive(socket, buf) {
            Ok(Some(received)) => received,
            Ok(None) => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                crate::say!("berth-journald: receiving on {kind:?} socket: {e}");
                return false;
            }
        };
        let stamp = now_usec();
        let (pid, uid, gid) = received.credentials.unwrap_or((0, 0, 0));
        let peer = Peer::from_proc(pid, uid, gid);
        match kind {
            Datagram::Native => {
                let passed;
                let data: &[u8] = match received.fds.into_iter().next() {
                    Some(fd) if received.len == 0 => {
                        match sys::read_passed_payload(fd, native::VALUE_MAX) {
                            Ok(data) => {
                                passed = data;
                                &passed
                            }
                            Err(e) => {
                                crate::say!("berth-journald: payload passed by pid {pid}: {e}");
                                continue;
                            }
                        }
                    }
                    _ => &buf[..received.len],
                };
                let (entries, error) = native::parse(data);
                if let Some(e) = error {
                    crate::say!("berth-journald: from pid {pid}: {e}");
                }
                for fields in entries {
                    let entry = build::native(stamp, collector.identity(), &peer, &fields);
                    collector.submit(entry, peer.unit.as_deref(), "journal");
                }
            }
            Datagram::Syslog => {
                let message = syslog::parse(&buf[..received.len]);
                let entry = build::syslog(
                    stamp,
                    collector.identity(),
                    &peer,
                    &message,
                    received.realtime_usec,
                );
                collector.submit(entry, peer.unit.as_deref(), "syslog");
            }
        }
    }
    true
}

/// The kernel log: `/dev/kmsg` gives one record per read; a FIFO or file in the same
/// format is cut into records. The last sequence number read is kept in a file (on
/// `/run`, so per boot, as journald's `kernel-seqnum`): a restarted collector does not
/// write the whole ring buffer again.
pub struct Kmsg {
    file: File,
    splitter: Option<RecordSplitter>,
    last_seqnum: Option<u64>,
    seqnum_file: Option<PathBuf>,
}

/// The saved position of the kernel log as a run found it (see [`Kmsg::mark`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsgMark {
    file: PathBuf,
    seqnum: Option<u64>,
}

impl KmsgMark {
    /// Puts the saved position back (no file: none was saved).
    pub fn restore(&self) -> io::Result<()> {
        match self.seqnum {
            Some(seqnum) => save_seqnum(&self.file, seqnum),
            None => match std::fs::remove_file(&self.file) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        }
    }
}

impl Kmsg {
    /// Opens `path` non-blocking; records up to the number in `seqnum_file` are skipped.
    pub fn open(path: &Path, seqnum_file: Option<PathBuf>) -> io::Result<Kmsg> {
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(path)?;
        let is_device = file.metadata()?.file_type().is_char_device();
        Ok(Kmsg {
            file,
            splitter: (!is_device).then(RecordSplitter::default),
            last_seqnum: seqnum_file
                .as_deref()
                .and_then(|f| std::fs::read_to_string(f).ok())
                .and_then(|text| text.trim().parse().ok()),
            seqnum_file,
        })
    }

    /// Reads what is there (see [`Kmsg::read_records`]) and keeps the last sequence
    /// number read.
    pub fn read(&mut self, collector: &mut Collector, buf: &mut [u8]) -> Status {
        let before = self.last_seqnum;
        let status = self.read_records(collector, buf);
        if let (Some(file), Some(seqnum)) = (&self.seqnum_file, self.last_seqnum) {
            if before != Some(seqnum) {
                if let Err(e) = save_seqnum(file, seqnum) {
                    crate::say!("berth-journald: saving {}: {e}", file.display());
                }
            }
        }
        status
    }

    /// The saved position now (before any read: as this run found it), when one is kept.
    pub fn mark(&self) -> Option<KmsgMark> {
        self.seqnum_file.as_ref().map(|file| KmsgMark {
            file: file.clone(),
            seqnum: self.last_seqnum,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Reads what is there; `Closed` at the end of a FIFO or file.
    fn read_records(&mut self, collector: &mut Collector, buf: &mut [u8]) -> Status {
        for _ in 0..READS_PER_WAKEUP {
            let n = match self.file.read(buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Status::Open,
                // EPIPE: the ring buffer overwrote records we had not read; go on.
                Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    crate::say!("berth-journald: reading kernel log: {e}");
                    return Status::Closed;
                }
            };
            match &mut self.splitter {
                None if n == 0 => return Status::Open,
                None => {
                    let record = buf[..n].to_vec();
                    self.record(&record, collector);
                }
                Some(splitter) if n == 0 => {
                    if let Some(record) = splitter.finish() {
                        self.record(&record, collector);
                    }
                    return Status::Closed;
                }
                Some(splitter) => {
                    for record in splitter.feed(&buf[..n]) {
                        self.record(&record, collector);
                    }
                }
            }
        }
        Status::Busy
    }

    fn record(&mut self, record: &[u8], collector: &mut Collector) {
        let Some(parsed) = kmsg::parse(record) else {
            return;
        };
        // Records come in sequence; one already seen (after a reopen) is skipped.
        if self.last_seqnum.is_some_and(|last| parsed.seqnum <= last) {
            return;
        }
        self.last_seqnum = Some(parsed.seqnum);
        let entry = build::kernel(now_usec(), collector.identity(), &parsed);
        collector.submit(entry, None, "kernel");
    }
}

/// Writes `seqnum` to `file` through a temporary file and a rename, so that a crash
/// leaves the old number or the new one.
fn save_seqnum(file: &Path, seqnum: u64) -> io::Result<()> {
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let temp = file.with_extension("tmp");
    std::fs::write(&temp, format!("{seqnum}\n"))?;
    std::fs::rename(&temp, file)
}
