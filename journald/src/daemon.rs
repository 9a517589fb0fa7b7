//! The collector daemon: takes the sockets PID 1 passed and binds the others (see
//! [`crate::activation`]), opens the kernel log, says READY=1, starts
//! the writer thread, then runs one single-threaded epoll loop over every source until
//! SIGTERM (or SIGINT), when it reads what is still waiting, reports what it suppressed,
//! lets the writer drain the queue and sync, and returns.
//!
//! Two threads, so that the sink (a disk, maybe slow or full) never stalls the readers:
//! the loop only ever does non-blocking reads and a non-blocking push into the bounded
//! [`Queue`]; the writer thread is the only one that waits on the disk. It also opens the
//! sink, first thing: READY=1 does not wait for a journal file to be created (on a first
//! boot, the slow part of the collector's start), the entries sent meanwhile wait in the
//! queue.
//! When the sink cannot be opened (see [`crate::open`] for the fallbacks tried first),
//! the writer says so and ends; its end wakes the loop, which stops and returns
//! [`DaemonError::SinkOpen`] with the count of entries not written, and the kernel
//! log's saved position goes back to where this run found it, so that the restarted
//! collector reads those records again.

use crate::activation::{ListenFd, Sockets};
use crate::collector::{Collector, Counts};
use crate::config::Config;
use crate::context::{now_usec, Identity, Peer};
use crate::entry::{EntrySink, SinkError};
use crate::pacer::StreamPacer;
use crate::queue::Queue;
use crate::ratelimit::RateLimiter;
use crate::say::error_chain;
use crate::sources::{read_datagrams, Datagram, Kmsg, KmsgMark, Status, StreamConn};
use crate::sys;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use sd_notify::NotifyState;
use std::collections::HashMap;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;

/// Opens the sink; the writer thread calls it first thing, after READY=1.
pub type OpenSink = Box<dyn FnOnce() -> Result<Box<dyn EntrySink>, SinkError> + Send>;

/// Where the sources are; `None` leaves a source out.
#[derive(Debug)]
pub struct Options {
    pub stdout_socket: Option<PathBuf>,
    pub native_socket: Option<PathBuf>,
    pub syslog_socket: Option<PathBuf>,
    /// The sockets PID 1 passed ([`crate::activation::listen_fds`]): each is used for the
    /// source whose path it is bound to, instead of binding one (see [`crate::activation`]).
    pub passed: Vec<ListenFd>,
    pub kmsg: Option<PathBuf>,
    /// Where the last kernel record's sequence number is kept (per boot: on /run).
    pub kmsg_seqnum_file: Option<PathBuf>,
    pub machine_id_file: PathBuf,
    pub config: Config,
    /// The bound of the queue between readers and sink, bytes.
    pub queue_bytes: usize,
    /// How long stdout streams may be left unread while the queue is nearly full, µs
    /// (see [`crate::pacer`]); 0 drops at once.
    pub stream_pause_usec: u64,
}

/// A daemon that could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Socket(#[from] sys::SocketError),
    #[error("opening kernel log {path}")]
    Kmsg {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}")]
    Sys {
        what: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("starting the writer thread")]
    Thread(#[source] std::io::Error),
    #[error("the writer thread panicked")]
    WriterPanicked,
    #[error("the writer thread ended before the collector stopped")]
    WriterEnded,
    #[error("no journal could be opened; {lost} entries queued meanwhile were not written")]
    SinkOpen {
        /// The entries in the queue when the daemon stopped.
        lost: usize,
        #[source]
        source: SinkError,
    },
}

/// What the daemon did, for its exit line.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    pub counts: Counts,
    pub written: u64,
    pub sink_errors: u64,
    /// Stream pauses that ran out with the queue still full (the writer stuck that long).
    pub pauses_ran_out: u64,
}

const SIGNAL: u64 = 0;
const STDOUT: u64 = 1;
const NATIVE: u64 = 2;
const SYSLOG: u64 = 3;
const KMSG: u64 = 4;
/// The writer thread's end of a socket pair: readable (hung up) once the thread has ended.
const WRITER: u64 = 5;
const FIRST_STREAM: u64 = 100;
/// The writer thread's stack. Not Rust's default 2 MiB: under the kernel's transparent huge
/// pages (`always`, as Debian's kernel has it) a 2 MiB stack is backed by one huge page at
/// its first touch, and 2 MiB of resident memory for a few KiB of stack would be half of
/// the daemon's footprint.
const SINK_STACK: usize = 256 << 10;
/// How long the final pass at stop may wait for the writer to make room.
const FINAL_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
/// How often paused streams are reconsidered, ms.
const PAUSE_POLL_MS: u16 = 1;

fn sys_error(what: &'static str) -> impl FnOnce(nix::Error) -> DaemonError {
    move |source| DaemonError::Sys { what, source }
}

/// Runs the daemon until SIGTERM/SIGINT, writing into the sink `open` gives, or until
/// that fails.
pub fn run(mut options: Options, open: OpenSink) -> Result<Summary, DaemonError> {
    // Block the signals before the writer thread starts, so it inherits the mask and
    // they arrive only through the signalfd.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals
        .thread_block()
        .map_err(sys_error("blocking SIGTERM"))?;
    let signal_fd = SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(sys_error("creating the signalfd"))?;

    let passed = std::mem::take(&mut options.passed);
    let Sockets {
        stdout,
        native,
        syslog,
    } = Sockets::open(&options, passed)?;
    let mut kmsg = match &options.kmsg {
        Some(path) => Some(Kmsg::open(path, options.kmsg_seqnum_file.clone()).map_err(
            |source| DaemonError::Kmsg {
                path: path.display().to_string(),
                source,
            },
        )?),
        None => None,
    };

    let kmsg_start = kmsg.as_ref().and_then(Kmsg::mark);

    let queue = Arc::new(Queue::new(options.queue_bytes));
    let (writer_gone, writer_alive) = UnixStream::pair().map_err(DaemonError::Thread)?;
    let own = Peer::from_proc(
        std::process::id(),
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    let limiter = RateLimiter::new(
        options.config.rate_limit_interval_usec,
        options.config.rate_limit_burst,
    );
    let mut collector = Collector::new(
        Identity::load(&options.machine_id_file),
        own,
        limiter,
        queue.clone(),
    );

    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(sys_error("creating epoll"))?;
    let watch = |fd: std::os::fd::BorrowedFd<'_>, token: u64| {
        epoll.add(fd, EpollEvent::new(EpollFlags::EPOLLIN, token))
    };
    watch(signal_fd.as_fd(), SIGNAL).map_err(sys_error("watching the signalfd"))?;
    watch(writer_gone.as_fd(), WRITER).map_err(sys_error("watching the writer thread"))?;
    if let Some(s) = &stdout {
        watch(s.as_fd(), STDOUT).map_err(sys_error("watching the stdout socket"))?;
    }
    if let Some(s) = &native {
        watch(s.as_fd(), NATIVE).map_err(sys_error("watching the native socket"))?;
    }
    if let Some(s) = &syslog {
        watch(s.as_fd(), SYSLOG).map_err(sys_error("watching the syslog socket"))?;
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut dgram_buf = Vec::new();
    let mut kmsg_is_file = false;
    if let Some(k) = &kmsg {
        match watch(k.fd(), KMSG) {
            Ok(()) => {}
            // A regular file cannot be polled: read whole below, once the writer runs.
            Err(nix::Error::EPERM) => kmsg_is_file = true,
            Err(e) => return Err(sys_error("watching the kernel log")(e)),
        }
    }

    if let Err(e) = sd_notify::notify(&[NotifyState::Ready]) {
        crate::say!("berth-journald: sd_notify READY=1: {e}");
    }
    // Only now: on a busy CPU (early boot, PID 1 loading modules), the writer opening
    // the sink would otherwise compete with the steps above for it.
    let writer = {
        let queue = queue.clone();
        std::thread::Builder::new()
            .name("sink".into())
            .stack_size(SINK_STACK)
            .spawn(move || {
                // Dropped when the thread ends, however it ends: the loop wakes.
                let _alive = writer_alive;
                write_loop(&queue, open)
            })
            .map_err(DaemonError::Thread)?
    };
    if kmsg_is_file {
        if let Some(k) = &mut kmsg {
            while k.read(&mut collector, &mut buf) == Status::Busy {}
        }
        kmsg = None;
    }

    let mut streams: HashMap<u64, StreamConn> = HashMap::new();
    let mut pacer = StreamPacer::new(options.stream_pause_usec);
    // One read of a stream becomes entries of about 18 times its size (a 100-byte line
    // carries some 20 fields of 64 bytes' bookkeeping each): a read is kept small beside
    // the queue, whose paced limit (twice its bound) takes the lines of a read made just
    // before the high-water mark, so that pausing at the mark drops nothing.
    let stream_chunk = (options.queue_bytes / 256).clamp(4096, buf.len());
    let mut paused: Vec<u64> = Vec::new();
    let mut next_token = FIRST_STREAM;
    let mut events = vec![EpollEvent::empty(); 64];
    let mut writer_ended = false;
    'run: loop {
        if !paused.is_empty() && pacer.may_read(queue.is_high(), now_usec().1) {
            for token in paused.drain(..) {
                if let Some(conn) = streams.get(&token) {
                    if let Err(e) = watch(conn.socket.as_fd(), token) {
                        crate::say!("berth-journald: resuming a stream: {e}");
                    }
                }
            }
        }
        let timeout = if !paused.is_empty() {
            EpollTimeout::from(PAUSE_POLL_MS)
        } else if collector.has_unreported() {
            EpollTimeout::from(1000u16)
        } else {
            EpollTimeout::NONE
        };
        let n = match epoll.wait(&mut events, timeout) {
            Ok(n) => n,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(sys_error("waiting on epoll")(e)),
        };
        if n == 0 {
            collector.report(now_usec());
        }
        for event in &events[..n] {
            match event.data() {
                SIGNAL => break 'run,
                WRITER => {
                    writer_ended = true;
                    break 'run;
                }
                STDOUT => {
                    if let Some(listener) = &stdout {
                        for conn in accept(listener, options.config.line_max) {
                            if let Err(e) = watch(conn.socket.as_fd(), next_token) {
                                crate::say!("berth-journald: watching a stream: {e}");
                                continue;
                            }
                            streams.insert(next_token, conn);
                            next_token += 1;
                        }
                    }
                }
                NATIVE => {
                    if let Some(s) = &native {
                        read_datagrams(Datagram::Native, s, &mut collector, &mut dgram_buf);
                    }
                }
                SYSLOG => {
                    if let Some(s) = &syslog {
                        read_datagrams(Datagram::Syslog, s, &mut collector, &mut dgram_buf);
                    }
                }
                KMSG => {
                    if let Some(k) = &mut kmsg {
                        if k.read(&mut collector, &mut buf) == Status::Closed {
                            let _ = epoll.delete(k.fd());
                            kmsg = None;
                        }
                    }
                }
                token => {
                    if let Some(conn) = streams.get_mut(&token) {
                        if !pacer.may_read(queue.is_high(), now_usec().1) {
                            // Leave its lines in the socket until the writer catches up
                            // (out of the epoll set: a hang-up would wake it otherwise).
                            let _ = epoll.delete(conn.socket.as_fd());
                            paused.push(token);
                            continue;
                        }
                        let stop_when_high = pacer.stops_when_high();
                        let chunk = &mut buf[..stream_chunk];
                        if conn.read(&mut collector, chunk, stop_when_high) == Status::Closed {
                            let _ = epoll.delete(conn.socket.as_fd());
                            streams.remove(&token);
                        }
                    }
                }
            }
        }
    }

    if writer_ended {
        // Before the queue was closed: the sink could not be opened (or the thread
        // panicked). What the queue holds is lost.
        let result = join_writer(writer, &queue);
        rewind(kmsg_start.as_ref());
        return Err(result.err().unwrap_or(DaemonError::WriterEnded));
    }

    let _ = sd_notify::notify(&[NotifyState::Stopping]);
    collector.start_draining(std::time::Instant::now() + FINAL_WAIT);
    // What was sent before the signal is kept: a last non-blocking pass over every
    // source, until each is drained (bounded, against a client that never pauses).
    const FINAL_ROUNDS: usize = 1024;
    for (kind, socket) in [(Datagram::Native, &native), (Datagram::Syslog, &syslog)] {
        if let Some(s) = socket {
            for _ in 0..FINAL_ROUNDS {
                if !read_datagrams(kind, s, &mut collector, &mut dgram_buf) {
                    break;
                }
            }
        }
    }
    if let Some(k) = &mut kmsg {
        for _ in 0..FINAL_ROUNDS {
            if k.read(&mut collector, &mut buf) != Status::Busy {
                break;
            }
        }
    }
    if let Some(listener) = &stdout {
        for conn in accept(listener, options.config.line_max) {
            streams.insert(next_token, conn);
            next_token += 1;
        }
    }
    for conn in streams.values_mut() {
        let mut status = Status::Busy;
        for _ in 0..FINAL_ROUNDS {
            status = conn.read(&mut collector, &mut buf, false);
            if status != Status::Busy {
                break;
            }
        }
        if status != Status::Closed {
            conn.finish(&mut collector);
        }
    }
    collector.report_all(now_usec());
    queue.close();
    let result = join_writer(writer, &queue);
    if result.is_err() {
        rewind(kmsg_start.as_ref());
    }
    let (written, sink_errors) = result?;
    Ok(Summary {
        counts: collector.counts(),
        written,
        sink_errors,
        pauses_ran_out: pacer.gave_up(),
    })
}

/// Waits for the writer thread: (entries written, sink errors), or why nothing was written.
fn join_writer(
    writer: std::thread::JoinHandle<Result<(u64, u64), SinkError>>,
    queue: &Queue,
) -> Result<(u64, u64), DaemonError> {
    writer
        .join()
        .map_err(|_| DaemonError::WriterPanicked)?
        .map_err(|source| DaemonError::SinkOpen {
            lost: queue.len(),
            source,
        })
}

/// The kernel records this run read were not written: the saved position goes back to
/// where this run found it, so that the next run reads them again.
fn rewind(kmsg_start: Option<&KmsgMark>) {
    if let Some(mark) = kmsg_start {
        if let Err(e) = mark.restore() {
            crate::say!("berth-journald: restoring the kernel log position: {e}");
        }
    }
}

/// Accepts the connections waiting on `listener` (at most 64 per turn).
fn accept(listener: &std::os::unix::net::UnixListener, line_max: usize) -> Vec<StreamConn> {
    let mut conns = Vec::new();
    for _ in 0..64 {
        let Ok((socket, _)) = listener.accept() else {
            break;
        };
        match StreamConn::accept(socket, line_max) {
            Ok(conn) => conns.push(conn),
            Err(e) => crate::say!("berth-journald: accepting a stream: {e}"),
        }
    }
    conns
}

/// How long a busy queue may go without a sink sync: under a flood, batches follow one
/// another and syncing after each one cost more than the appends.
const SYNC_EVERY_BUSY: std::time::Duration = std::time::Duration::from_millis(100);

/// The writer thread: opens the sink, then takes batches off the queue, appends them, and
/// syncs when the queue has nothing more waiting (so an idle collector has written
/// everything) or at least every [`SYNC_EVERY_BUSY`]; returns (entries written, sink
/// errors). A sink that cannot be opened is said on stderr and returned, the queue
/// closed (the readers' entries are refused from then on, counted as drops). Errors of
/// an open sink are said on stderr (the first, then every power of two), never fatal:
/// the next batch may succeed (a disk freed up).
fn write_loop(queue: &Queue, open: OpenSink) -> Result<(u64, u64), SinkError> {
    let mut sink = match open() {
        Ok(sink) => sink,
        Err(e) => {
            crate::say!("berth-journald: {}; the collector stops", error_chain(&e));
            queue.close();
            return Err(e);
        }
    };
    let (mut written, mut errors) = (0u64, 0u64);
    let complain = |errors: &mut u64, e: &dyn std::error::Error| {
        *errors += 1;
        if errors.is_power_of_two() {
            crate::say!(
                "berth-journald: sink error ({errors} so far): {}",
                error_chain(e)
            );
        }
    };
    let mut batch = Vec::new();
    let mut last_sync = std::time::Instant::now();
    while queue.pop_batch(&mut batch) {
        for entry in batch.drain(..) {
            match sink.append(&entry) {
                Ok(()) => written += 1,
                Err(e) => complain(&mut errors, &e),
            }
        }
        if queue.is_empty() || last_sync.elapsed() >= SYNC_EVERY_BUSY {
            if let Err(e) = sink.sync() {
                complain(&mut errors, &e);
            }
            last_sync = std::time::Instant::now();
        }
    }
    // Closed: the last batch is synced whatever the clock says.
    if let Err(e) = sink.sync() {
        complain(&mut errors, &e);
    }
    Ok((written, errors))
}
