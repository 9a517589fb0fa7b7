//! The WebSocket transport (k8s.io/apimachinery/pkg/util/httpstream/wsstream): every
//! message starts with a channel byte (`0`–`9` as text, payload base64, for the
//! `base64.channel.k8s.io` protocols). Remote command uses channels 0 stdin, 1 stdout,
//! 2 stderr, 3 error, 4 resize; `v5.channel.k8s.io` adds the close signal `[255, n]`
//! that ends the client's channel n (KEP 4006). Port forwarding uses, per `port` query
//! value i, channel 2i for data and 2i+1 for errors, each opened by the port number as
//! two little-endian bytes.

use std::collections::HashMap;

use base64::Engine;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::header::{HeaderValue, CONNECTION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::portforward::{self, PortForwardTarget};
use super::remotecommand::{self, Outcome, ResizeDecoder, SessionIo, Version};
use super::{Pending, Wanted};

/// v5's close signal: `[CLOSE, channel]`.
pub const CLOSE: u8 = 255;
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;

/// Port-forward subprotocols ("" when the client names none).
pub const PORT_FORWARD_PROTOCOLS: &[&str] = &["v4.channel.k8s.io", "v4.base64.channel.k8s.io"];

fn reply(code: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *r.status_mut() = code;
    r
}

/// How messages are framed on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    pub base64: bool,
    pub close_signal: bool,
}

impl Codec {
    /// Encodes one message for `channel`.
    pub fn encode(self, channel: u8, data: &[u8]) -> Message {
        if self.base64 {
            let mut text = String::with_capacity(1 + data.len() * 4 / 3 + 4);
            text.push(char::from(b'0' + channel));
            base64::engine::general_purpose::STANDARD.encode_string(data, &mut text);
            Message::text(text)
        } else {
            let mut bytes = Vec::with_capacity(1 + data.len());
            bytes.push(channel);
            bytes.extend_from_slice(data);
            Message::binary(bytes)
        }
    }

    /// Decodes one message: `Some((channel, data))`, `Some((CLOSE, [n]))` for a v5 close
    /// signal, `None` for what carries nothing (control frames, empty or bad messages).
    pub fn decode(self, message: &Message) -> Option<(u8, Vec<u8>)> {
        let raw: &[u8] = match message {
            Message::Binary(b) => b,
            Message::Text(t) => t.as_bytes(),
            _ => return None,
        };
        let (&first, rest) = raw.split_first()?;
        if self.close_signal && first == CLOSE {
            return (rest.len() == 1).then(|| (CLOSE, rest.to_vec()));
        }
        if self.base64 {
            let channel = first.checked_sub(b'0').filter(|c| *c <= 9)?;
            let data = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()?;
            Some((channel, data))
        } else {
            Some((first, rest.to_vec()))
        }
    }
}

/// Answers the upgrade request and serves the session on its own task.
pub fn upgrade(
    req: &mut Request<hyper::body::Incoming>,
    pending: Pending,
) -> Response<Full<Bytes>> {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return reply(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    let offered: Vec<String> = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    let forward = matches!(pending, Pending::PortForward(_));
    let supported = if forward {
        PORT_FORWARD_PROTOCOLS
    } else {
        remotecommand::WEBSOCKET_PROTOCOLS
    };
    let protocol = if offered.is_empty() {
        ""
    } else {
        match remotecommand::negotiate(offered.iter().map(String::as_str), supported) {
            Some(p) => p,
            None => {
                return reply(
                    StatusCode::FORBIDDEN,
                    &format!(
                        "requested protocols {offered:?} are not supported; supports {supported:?}"
                    ),
                )
            }
        }
    };
    let ports: Vec<u16> = if forward {
        let query = req.uri().query().unwrap_or("");
        let mut ports = Vec::new();
        for (name, value) in query.split('&').filter_map(|kv| kv.split_once('=')) {
            if name == "port" {
                match value.parse::<u16>() {
                    Ok(p) if p > 0 => ports.push(p),
                    _ => return reply(StatusCode::BAD_REQUEST, &format!("invalid port {value:?}")),
                }
            }
        }
        if ports.is_empty() || ports.len() > 64 {
            return reply(
                StatusCode::BAD_REQUEST,
                "port forwarding over websocket needs 1 to 64 \"port\" query parameters",
            );
        }
        ports
    } else {
        Vec::new()
    };
    let codec = Codec {
        base64: protocol.contains("base64"),
        close_signal: protocol == "v5.channel.k8s.io",
    };
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        match pending {
            Pending::PortForward(target) => serve_portforward(ws, codec, target, ports).await,
            Pending::Exec { target, wanted } => {
                let version = Version::of(protocol).unwrap_or(Version::V1);
                serve_remotecommand(ws, codec, version, wanted, |io| {
                    super::exec::run(*target, io)
                })
                .await
            }
            Pending::Attach { target, wanted } => {
                let version = Version::of(protocol).unwrap_or(Version::V1);
                serve_remotecommand(ws, codec, version, wanted, |io| {
                    super::attach::run(target, io)
                })
                .await
            }
        }
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        h.insert("sec-websocket-accept", accept);
    }
    if !protocol.is_empty() {
        h.insert("sec-websocket-protocol", HeaderValue::from_static(protocol));
    }
    r
}

/// A demultiplexed connection: incoming channels, one outgoing queue, and a token that
/// fires when the client is gone.
struct Channels {
    inputs: HashMap<u8, mpsc::Receiver<Bytes>>,
    out: mpsc::Sender<(u8, Option<Bytes>)>,
    cancel: CancellationToken,
    writer: tokio::task::JoinHandle<()>,
}

/// Splits `ws` into the `readable` channels and a writer; `None` data on the writer
/// queue means "close the connection".
fn channels<S>(ws: WebSocketStream<S>, codec: Codec, readable: &[u8]) -> Channels
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let cancel = CancellationToken::new();
    let mut senders = HashMap::new();
    let mut inputs = HashMap::new();
    for &c in readable {
        let (tx, rx) = mpsc::channel(16);
        senders.insert(c, tx);
        inputs.insert(c, rx);
    }
    let (out, mut out_rx) = mpsc::channel::<(u8, Option<Bytes>)>(16);
    let writer_cancel = cancel.clone();
    let writer = tokio::spawn(async move {
        while let Some((channel, data)) = out_rx.recv().await {
            let sent = match data {
                Some(data) => {
                    tokio::time::timeout(
                        super::spdy::WRITE_STALL,
                        sink.send(codec.encode(channel, &data)),
                    )
                    .await
                }
                None => {
                    let _ = tokio::time::timeout(super::spdy::WRITE_STALL, sink.close()).await;
                    break;
                }
            };
            if !matches!(sent, Ok(Ok(()))) {
                break;
            }
        }
        writer_cancel.cancel();
    });
    let reader_cancel = cancel.clone();
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                m = stream.next() => m,
                _ = reader_cancel.cancelled() => None,
            };
            let Some(Ok(message)) = next else { break };
            if message.is_close() {
                break;
            }
            let Some((channel, data)) = codec.decode(&message) else {
                continue;
            };
            if channel == CLOSE {
                senders.remove(&data[0]);
                continue;
            }
            if let Some(tx) = senders.get(&channel) {
                if tx.send(Bytes::from(data)).await.is_err() {
                    senders.remove(&channel);
                }
            }
        }
        reader_cancel.cancel();
    });
    Channels {
        inputs,
        out,
        cancel,
        writer,
    }
}

/// A sender whose messages go out on `channel`; the task ends when it is dropped.
fn forward(
    out: &mpsc::Sender<(u8, Option<Bytes>)>,
    channel: u8,
) -> (mpsc::Sender<Bytes>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Bytes>(8);
    let out = out.clone();
    let task = tokio::spawn(async move {
        while let Some(data) = rx.recv().await {
            if out.send((channel, Some(data))).await.is_err() {
                return;
            }
        }
    });
    (tx, task)
}

async fn serve_remotecommand<S, F, Fut>(
    ws: WebSocketStream<S>,
    codec: Codec,
    version: Version,
    wanted: Wanted,
    run: F,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: FnOnce(SessionIo) -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    let mut ch = channels(ws, codec, &[STDIN, RESIZE]);
    // Tell the client the streams are ready: an empty message on the lowest writable one.
    let first = if wanted.stdout {
        STDOUT
    } else if wanted.stderr {
        STDERR
    } else {
        ERROR
    };
    let _ = ch.out.send((first, Some(Bytes::new()))).await;
    let mut writers = Vec::new();
    let mut out = |on: bool, channel: u8| {
        on.then(|| {
            let (tx, task) = forward(&ch.out, channel);
            writers.push(task);
            tx
        })
    };
    let stdout = out(wanted.stdout, STDOUT);
    let stderr = out(wanted.stderr && !wanted.tty, STDERR);
    let resize = match (wanted.tty, ch.inputs.remove(&RESIZE)) {
        (true, Some(mut input)) => {
            let (tx, rx) = mpsc::channel(4);
            tokio::spawn(async move {
                let mut decoder = ResizeDecoder::default();
                while let Some(data) = input.recv().await {
                    for size in decoder.push(&data) {
                        if tx.send(size).await.is_err() {
                            return;
                        }
                    }
                }
            });
            Some(rx)
        }
        _ => None,
    };
    let session = SessionIo {
        stdin: if wanted.stdin {
            ch.inputs.remove(&STDIN)
        } else {
            None
        },
        stdout,
        stderr,
        resize,
        cancel: ch.cancel.clone(),
    };
    let outcome = run(session).await;
    for w in writers {
        let _ = w.await;
    }
    if let Some(message) = remotecommand::error_stream_message(version, &outcome) {
        let _ = ch.out.send((ERROR, Some(Bytes::from(message)))).await;
    }
    let _ = ch.out.send((ERROR, None)).await;
    let _ = ch.writer.await;
    ch.cancel.cancel();
}

async fn serve_portforward<S>(
    ws: WebSocketStream<S>,
    codec: Codec,
    target: PortForwardTarget,
    ports: Vec<u16>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let data_channels: Vec<u8> = (0..ports.len()).map(|i| (2 * i) as u8).collect();
    let mut ch = channels(ws, codec, &data_channels);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, port) in ports.into_iter().enumerate() {
        let (data, error) = ((2 * i) as u8, (2 * i + 1) as u8);
        for c in [data, error] {
            let _ = ch
                .out
                .send((c, Some(Bytes::copy_from_slice(&port.to_le_bytes()))))
                .await;
        }
        let Some(input) = ch.inputs.remove(&data) else {
            continue;
        };
        let out = ch.out.clone();
        let target = target.clone();
        let cancel = ch.cancel.clone();
        tasks.spawn(async move {
            let (tx, task) = forward(&out, data);
            let result = portforward::forward(&target, port, input, tx, cancel).await;
            let _ = task.await;
            if let Err(e) = result {
                let _ = out.send((error, Some(Bytes::from(e)))).await;
            }
        });
    }
    tokio::select! {
        _ = async { while tasks.join_next().await.is_some() {} } => {}
        _ = ch.cancel.cancelled() => tasks.abort_all(),
    }
    let _ = ch.out.send((0, None)).await;
    let _ = ch.writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BINARY: Codec = Codec {
        base64: false,
        close_signal: true,
    };
    const TEXT: Codec = Codec {
        base64: true,
        close_signal: false,
    };

    #[test]
    fn channel_bytes_and_base64() {
        assert_eq!(
            BINARY.encode(1, b"hi"),
            Message::binary(vec![1, b'h', b'i'])
        );
        assert_eq!(TEXT.encode(2, b"hi"), Message::text("2aGk="));
        assert_eq!(
            TEXT.decode(&Message::text("0aGk=")),
            Some((0, b"hi".to_vec()))
        );
        assert_eq!(
            BINARY.decode(&Message::binary(vec![255, 0])),
            Some((CLOSE, vec![0]))
        );
        assert_eq!(BINARY.decode(&Message::binary(vec![255, 0, 1])), None);
        assert_eq!(TEXT.decode(&Message::text("x!!")), None);
        assert_eq!(BINARY.decode(&Message::binary(Vec::<u8>::new())), None);
        assert_eq!(BINARY.decode(&Message::Ping(Bytes::new())), None);
    }

    proptest! {
        #[test]
        fn round_trip(channel in 0u8..10, data in proptest::collection::vec(any::<u8>(), 0..300)) {
            for codec in [BINARY, TEXT] {
                prop_assert_eq!(codec.decode(&codec.encode(channel, &data)), Some((channel, data.clone())));
            }
        }

        #[test]
        fn arbitrary_messages_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            for codec in [BINARY, TEXT] {
                let _ = codec.decode(&Message::binary(raw.clone()));
                let _ = codec.decode(&Message::text(String::from_utf8_lossy(&raw).into_owned()));
            }
        }
    }
}
