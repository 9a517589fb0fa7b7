//! A SPDY/3.1 session over an upgraded HTTP connection, as Kubernetes uses it
//! (k8s.io/apimachinery/pkg/util/httpstream/spdy on moby/spdystream): the client opens
//! streams with SYN_STREAM, the server answers each with SYN_REPLY, data flows both ways
//! in DATA frames and FIN ends one direction. Like spdystream, no flow-control window is
//! enforced (WINDOW_UPDATE frames are read and ignored); back-pressure comes from the
//! bounded per-stream queues and the socket.
//!
//! One task reads and one writes; header compression lives in each (one zlib stream per
//! direction). The connection ends when the peer closes it, when a frame is malformed,
//! when a write makes no progress for [`WRITE_STALL`] (a client that never reads), or
//! when [`Handle::close`] is called; every stream's queue then closes and
//! [`Handle::closed`] fires, so the session using it can clean up.

pub mod frame;
pub mod headers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::frame::{Frame, FLAG_FIN};
use self::headers::HeaderCodec;

/// A write that makes no progress this long ends the connection.
pub const WRITE_STALL: Duration = Duration::from_secs(60);
/// The largest DATA payload written.
const CHUNK: usize = 32 * 1024;
/// Frames received for one stream and not yet taken.
const STREAM_QUEUE: usize = 16;

/// A stream opened by the peer (or by us, in client mode).
#[derive(Debug)]
pub struct Stream {
    pub id: u32,
    /// The SYN_STREAM headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// Incoming data; ends at the peer's FIN, a reset or the connection's end.
    pub data: mpsc::Receiver<Bytes>,
}

impl Stream {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        headers::get(&self.headers, name)
    }
}

/// The connection ended; nothing more can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the SPDY connection is closed")]
pub struct Closed;

enum Out {
    Frame(Frame),
    Reply(u32),
    Open(u32, Vec<(String, String)>),
    Shutdown,
}

type Senders = Arc<Mutex<HashMap<u32, mpsc::Sender<Bytes>>>>;

fn lock(s: &Senders) -> std::sync::MutexGuard<'_, HashMap<u32, mpsc::Sender<Bytes>>> {
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sends on a session; cheap to clone.
#[derive(Clone)]
pub struct Handle {
    out: mpsc::Sender<Out>,
    closed: CancellationToken,
    senders: Senders,
    next_id: Arc<AtomicU32>,
}

impl Handle {
    async fn send(&self, out: Out) -> Result<(), Closed> {
        if self.closed.is_cancelled() {
            return Err(Closed);
        }
        self.out.send(out).await.map_err(|_| Closed)
    }

    /// Writes `data` on stream `id`.
    pub async fn write(&self, id: u32, data: &[u8]) -> Result<(), Closed> {
        for chunk in data.chunks(CHUNK) {
            self.send(Out::Frame(Frame::Data {
                stream_id: id,
                flags: 0,
                data: Bytes::copy_from_slice(chunk),
            }))
            .await?;
        }
        Ok(())
    }

    /// Ends our half of stream `id`.
    pub async fn finish(&self, id: u32) -> Result<(), Closed> {
        self.send(Out::Frame(Frame::Data {
            stream_id: id,
            flags: FLAG_FIN,
            data: Bytes::new(),
        }))
        .await
    }

    /// Resets stream `id`.
    pub async fn reset(&self, id: u32, status: u32) -> Result<(), Closed> {
        lock(&self.senders).remove(&id);
        self.send(Out::Frame(Frame::RstStream {
            stream_id: id,
            status,
        }))
        .await
    }

    /// Client mode: opens a stream with `headers`; returns its id and incoming data.
    pub async fn open(
        &self,
        headers: Vec<(String, String)>,
    ) -> Result<(u32, mpsc::Receiver<Bytes>), Closed> {
        let id = self.next_id.fetch_add(2, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        lock(&self.senders).insert(id, tx);
        self.send(Out::Open(id, headers)).await?;
        Ok((id, rx))
    }

    /// Says GOAWAY, flushes what is queued and closes the connection.
    pub async fn close(&self) {
        let _ = self
            .send(Out::Frame(Frame::GoAway {
                last_good_stream_id: 0,
                status: 0,
            }))
            .await;
        let _ = self.send(Out::Shutdown).await;
    }

    /// Fires when the connection has ended, for whatever reason.
    pub fn closed(&self) -> CancellationToken {
        self.closed.clone()
    }
}

/// Starts a session on `io`. A server accepts the peer's streams on the returned queue
/// (which must be drained, or the peer's frames wait); a client opens them.
pub fn start<IO>(io: IO, server: bool) -> (Handle, mpsc::Receiver<Stream>)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(io);
    let (out_tx, out_rx) = mpsc::channel(64);
    let (accept_tx, accept_rx) = mpsc::channel(16);
    let closed = CancellationToken::new();
    let senders: Senders = Arc::default();
    let handle = Handle {
        out: out_tx.clone(),
        closed: closed.clone(),
        senders: senders.clone(),
        next_id: Arc::new(AtomicU32::new(if server { 2 } else { 1 })),
    };
    tokio::spawn(write_loop(writer, out_rx, closed.clone()));
    tokio::spawn(read_loop(
        reader, out_tx, accept_tx, senders, closed, server,
    ));
    (handle, accept_rx)
}

async fn write_loop<W: AsyncWrite>(
    writer: W,
    mut out: mpsc::Receiver<Out>,
    closed: CancellationToken,
) {
    let mut writer = std::pin::pin!(writer);
    let Ok(mut codec) = HeaderCodec::new() else {
        closed.cancel();
        return;
    };
    let mut buf = BytesMut::new();
    loop {
        let next = tokio::select! {
            biased;
            next = out.recv() => next,
            _ = closed.cancelled() => None,
        };
        let Some(next) = next else { break };
        let frame = match next {
            Out::Frame(f) => f,
            Out::Reply(stream_id) => match codec.encode(&[]) {
                Ok(h) => Frame::SynReply {
                    stream_id,
                    flags: 0,
                    headers: h.into(),
                },
                Err(_) => break,
            },
            Out::Open(stream_id, headers) => match codec.encode(&headers) {
                Ok(h) => Frame::SynStream {
                    stream_id,
                    associated_to: 0,
                    priority: 0,
                    flags: 0,
                    headers: h.into(),
                },
                Err(_) => break,
            },
            Out::Shutdown => {
                let _ = tokio::time::timeout(WRITE_STALL, writer.shutdown()).await;
                break;
            }
        };
        buf.clear();
        frame::encode(&frame, &mut buf);
        match tokio::time::timeout(WRITE_STALL, writer.write_all(&buf)).await {
            Ok(Ok(())) => {}
            _ => break,
        }
    }
    closed.cancel();
}

async fn read_loop<R: AsyncRead>(
    reader: R,
    out: mpsc::Sender<Out>,
    accept: mpsc::Sender<Stream>,
    senders: Senders,
    closed: CancellationToken,
    server: bool,
) {
    let mut reader = std::pin::pin!(reader);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let Ok(mut codec) = HeaderCodec::new() else {
        closed.cancel();
        return;
    };
    'conn: loop {
        loop {
            let frame = match frame::decode(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => break 'conn,
            };
            match frame {
                Frame::SynStream {
                    stream_id,
                    flags,
                    headers,
                    ..
                } => {
                    let Ok(headers) = codec.decode(&headers) else {
                        break 'conn;
                    };
                    // The peer's streams have the other parity than ours.
                    let peer_odd = server;
                    if (stream_id % 2 == 1) != peer_odd || lock(&senders).contains_key(&stream_id) {
                        let _ = out
                            .send(Out::Frame(Frame::RstStream {
                                stream_id,
                                status: frame::RST_PROTOCOL_ERROR,
                            }))
                            .await;
                        continue;
                    }
                    let (tx, rx) = mpsc::channel(STREAM_QUEUE);
                    if flags & FLAG_FIN == 0 {
                        lock(&senders).insert(stream_id, tx);
                    }
                    let stream = Stream {
                        id: stream_id,
                        headers,
                        data: rx,
                    };
                    if out.send(Out::Reply(stream_id)).await.is_err() {
                        break 'conn;
                    }
                    if accept.send(stream).await.is_err() {
                        lock(&senders).remove(&stream_id);
                        let _ = out
                            .send(Out::Frame(Frame::RstStream {
                                stream_id,
                                status: frame::RST_REFUSED_STREAM,
                            }))
                            .await;
                    }
                }
                Frame::Data {
                    stream_id,
                    flags,
                    data,
                } => {
                    let sender = lock(&senders).get(&stream_id).cloned();
                    if let Some(sender) = sender {
                        if !data.is_empty() {
                            tokio::select! {
                                _ = sender.send(data) => {}
                                _ = closed.cancelled() => break 'conn,
                            }
                        }
                    }
                    if flags & FLAG_FIN != 0 {
                        lock(&senders).remove(&stream_id);
                    }
                }
                Frame::RstStream { stream_id, .. } => {
                    lock(&senders).remove(&stream_id);
                }
                Frame::Ping { id } => {
                    // Our pings are even as a server, odd as a client: echo the peer's.
                    if (id % 2 == 1) == server {
                        let _ = out.send(Out::Frame(Frame::Ping { id })).await;
                    }
                }
                Frame::GoAway { .. } => break 'conn,
                Frame::SynReply { headers, .. } | Frame::Headers { headers, .. } => {
                    // Keep the zlib stream in step even though the content is unused.
                    if codec.decode(&headers).is_err() {
                        break 'conn;
                    }
                }
                Frame::Settings { .. } | Frame::WindowUpdate { .. } | Frame::Unknown { .. } => {}
            }
        }
        let read = tokio::select! {
            r = reader.read_buf(&mut buf) => r,
            _ = closed.cancelled() => break,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    lock(&senders).clear();
    closed.cancel();
}
