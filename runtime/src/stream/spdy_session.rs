//! Remote command and port forwarding over a SPDY session: which streams the client must
//! open (by their `streamtype` header), how they map onto a [`SessionIo`], and how the
//! session ends (output streams finished, the status on the error stream, GOAWAY).

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use super::portforward::{self, PortForwardTarget};
use super::remotecommand::{self, Outcome, ResizeDecoder, SessionIo, Version};
use super::spdy::{self, frame, Handle, Stream};

/// How long the client has to open the streams it asked for (the kubelet's default).
pub const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Which streams a remote command session has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl Wanted {
    fn names(&self, version: Version) -> Vec<&'static str> {
        let mut names = vec!["error"];
        for (on, name) in [
            (self.stdin, "stdin"),
            (self.stdout, "stdout"),
            (self.stderr && !self.tty, "stderr"),
            (self.tty && version.resizes(), "resize"),
        ] {
            if on {
                names.push(name);
            }
        }
        names
    }
}

/// Sends what arrives on the returned sender to stream `id`, then FIN.
fn forward(handle: &Handle, id: u32) -> (mpsc::Sender<Bytes>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Bytes>(8);
    let handle = handle.clone();
    let task = tokio::spawn(async move {
        while let Some(data) = rx.recv().await {
            if handle.write(id, &data).await.is_err() {
                return;
            }
        }
        let _ = handle.finish(id).await;
    });
    (tx, task)
}

/// Serves one remote command (exec or attach) on an upgraded connection.
pub async fn serve_remotecommand<IO, F, Fut>(io: IO, version: Version, wanted: Wanted, run: F)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
    F: FnOnce(SessionIo) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let (handle, mut incoming) = spdy::start(io, true);
    let names = wanted.names(version);
    let mut streams: HashMap<&'static str, Stream> = HashMap::new();
    let collect = async {
        while streams.len() < names.len() {
            let Some(stream) = incoming.recv().await else {
                return false;
            };
            let kind = stream.header("streamtype").unwrap_or("").to_owned();
            match names.iter().find(|n| **n == kind) {
                Some(name) if !streams.contains_key(name) => {
                    streams.insert(name, stream);
                }
                _ => {
                    let _ = handle.reset(stream.id, frame::RST_PROTOCOL_ERROR).await;
                }
            }
        }
        true
    };
    let complete = matches!(
        tokio::time::timeout(STREAM_CREATION_TIMEOUT, collect).await,
        Ok(true)
    );
    let Some(error) = streams.remove("error").filter(|_| complete) else {
        handle.close().await;
        return;
    };
    // Streams opened later are refused.
    let refuse = {
        let handle = handle.clone();
        tokio::spawn(async move {
            while let Some(s) = incoming.recv().await {
                let _ = handle.reset(s.id, frame::RST_REFUSED_STREAM).await;
            }
        })
    };
    let mut writers = Vec::new();
    let mut out = |name: &str| {
        streams.get(name).map(|s| {
            let (tx, task) = forward(&handle, s.id);
            writers.push(task);
            tx
        })
    };
    let stdout = out("stdout");
    let stderr = out("stderr");
    let resize = streams.remove("resize").map(|mut s| {
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut decoder = ResizeDecoder::default();
            while let Some(data) = s.data.recv().await {
                for size in decoder.push(&data) {
                    if tx.send(size).await.is_err() {
                        return;
                    }
                }
            }
        });
        rx
    });
    let session = SessionIo {
        stdin: streams.remove("stdin").map(|s| s.data),
        stdout,
        stderr,
        resize,
        cancel: handle.closed(),
    };
    let outcome = run(session).await;
    for w in writers {
        let _ = w.await;
    }
    if let Some(message) = remotecommand::error_stream_message(version, &outcome) {
        let _ = handle.write(error.id, &message).await;
    }
    let _ = handle.finish(error.id).await;
    refuse.abort();
    handle.close().await;
}

/// Serves port forwarding: each request is a pair of streams (`error` and `data`) with
/// the same `requestID` and a `port`; the data stream is connected to that port in the
/// pod's network namespace, and a failure is written on the error stream.
pub async fn serve_portforward<IO>(io: IO, target: PortForwardTarget)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (handle, mut incoming) = spdy::start(io, true);
    let closed = handle.closed();
    // requestID -> the half of the pair seen first
    let mut pairs: HashMap<String, Stream> = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            s = incoming.recv() => s,
            _ = closed.cancelled() => None,
        };
        let Some(stream) = stream else { break };
        let kind = stream.header("streamtype").unwrap_or("").to_owned();
        let request = stream.header("requestid").unwrap_or("").to_owned();
        if kind != "error" && kind != "data" {
            let _ = handle.reset(stream.id, frame::RST_PROTOCOL_ERROR).await;
            continue;
        }
        let Some(other) = pairs.remove(&request) else {
            if pairs.len() >= 1024 {
                let _ = handle.reset(stream.id, frame::RST_REFUSED_STREAM).await;
            } else {
                pairs.insert(request, stream);
            }
            continue;
        };
        let (error, data) = if kind == "error" {
            (stream, other)
        } else {
            (other, stream)
        };
        if error.header("streamtype") != Some("error") || data.header("streamtype") != Some("data")
        {
            let _ = handle.reset(error.id, frame::RST_PROTOCOL_ERROR).await;
            let _ = handle.reset(data.id, frame::RST_PROTOCOL_ERROR).await;
            continue;
        }
        let handle = handle.clone();
        let target = target.clone();
        tasks.spawn(async move {
            let port = data.header("port").and_then(|p| p.parse::<u16>().ok());
            let result = match port {
                Some(port) if port > 0 => {
                    let (tx, task) = forward(&handle, data.id);
                    let r =
                        portforward::forward(&target, port, data.data, tx, handle.closed()).await;
                    let _ = task.await;
                    r
                }
                _ => Err(format!(
                    "invalid port {:?}",
                    data.header("port").unwrap_or("")
                )),
            };
            if let Err(e) = result {
                let _ = handle.write(error.id, e.as_bytes()).await;
                let _ = handle.finish(data.id).await;
            }
            let _ = handle.finish(error.id).await;
        });
    }
    tasks.abort_all();
    handle.close().await;
}
