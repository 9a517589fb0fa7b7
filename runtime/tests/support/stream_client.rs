//! A client of the streaming server speaking the real protocols, as client-go does:
//! an HTTP/1.1 upgrade to SPDY/3.1 with `X-Stream-Protocol-Version`, streams opened by
//! `streamType`, and WebSocket with the channel subprotocols. It uses the runtime's own
//! SPDY session in client mode; the WebSocket side is tokio-tungstenite's client.

use std::time::Duration;

use berth_runtime::stream::spdy::{self, Handle};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// How long a test waits for any one thing from the server.
pub const WAIT: Duration = Duration::from_secs(60);

/// Sends the upgrade request for `url` and returns the status line's code, the response
/// headers (lowercase names) and the connection.
pub async fn upgrade(
    url: &str,
    upgrade: &str,
    protocols: &[&str],
) -> (u16, Vec<(String, String)>, TcpStream) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').expect("path");
    let mut tcp = TcpStream::connect(host).await.expect("connect");
    let mut request = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: {upgrade}\r\nContent-Length: 0\r\n"
    );
    for p in protocols {
        request.push_str(&format!("X-Stream-Protocol-Version: {p}\r\n"));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes()).await.expect("request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut byte))
            .await
            .expect("response in time")
            .expect("read response");
        if n == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let code = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (code, headers, tcp)
}

/// Reads a stream to its end.
pub async fn read_all(rx: &mut mpsc::Receiver<Bytes>) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("stream data in time")
    {
        out.extend_from_slice(&b);
    }
    out
}

/// Reads a stream until its data contains `needle`.
pub async fn read_until(rx: &mut mpsc::Receiver<Bytes>, needle: &str) -> String {
    let mut out = Vec::new();
    while !String::from_utf8_lossy(&out).contains(needle) {
        match tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("data in time")
        {
            Some(b) => out.extend_from_slice(&b),
            None => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A SPDY remote-command session as client-go's v4 streamer opens it.
pub struct SpdyCommand {
    pub handle: Handle,
    pub error: mpsc::Receiver<Bytes>,
    pub stdin: Option<u32>,
    pub stdout: Option<mpsc::Receiver<Bytes>>,
    pub stderr: Option<mpsc::Receiver<Bytes>>,
    pub resize: Option<u32>,
}

fn header(kind: &str) -> Vec<(String, String)> {
    vec![("streamType".to_owned(), kind.to_owned())]
}

impl SpdyCommand {
    /// Upgrades `url` with `v4.channel.k8s.io` and opens the streams.
    pub async fn open(url: &str, stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Self {
        let (code, headers, tcp) = upgrade(url, "SPDY/3.1", &["v4.channel.k8s.io"]).await;
        assert_eq!(code, 101, "{headers:?}");
        assert!(headers
            .iter()
            .any(|(n, v)| n == "x-stream-protocol-version" && v == "v4.channel.k8s.io"));
        let (handle, _incoming) = spdy::start(tcp, false);
        let (_, error) = handle.open(header("error")).await.expect("error stream");
        let resize = if tty {
            Some(handle.open(header("resize")).await.expect("resize").0)
        } else {
            None
        };
        let stdin = if stdin {
            Some(handle.open(header("stdin")).await.expect("stdin").0)
        } else {
            None
        };
        let stdout = if stdout {
            Some(handle.open(header("stdout")).await.expect("stdout").1)
        } else {
            None
        };
        let stderr = if stderr {
            Some(handle.open(header("stderr")).await.expect("stderr").1)
        } else {
            None
        };
        SpdyCommand {
            handle,
            error,
            stdin,
            stdout,
            stderr,
            resize,
        }
    }

    pub async fn send(&self, data: &[u8]) {
        let id = self.stdin.expect("stdin stream");
        self.handle.write(id, data).await.expect("write stdin");
    }

    pub async fn close_stdin(&self) {
        let id = self.stdin.expect("stdin stream");
        self.handle.finish(id).await.expect("close stdin");
    }

    pub async fn resize(&self, width: u16, height: u16) {
        let id = self.resize.expect("resize stream");
        let json = format!(r#"{{"Width":{width},"Height":{height}}}"#);
        self.handle
            .write(id, json.as_bytes())
            .await
            .expect("resize");
    }

    /// The status on the error stream, parsed.
    pub async fn status(&mut self) -> serde_json::Value {
        let raw = read_all(&mut self.error).await;
        serde_json::from_slice(&raw)
            .unwrap_or_else(|e| panic!("status {:?}: {e}", String::from_utf8_lossy(&raw)))
    }
}

/// The exit code a v4 status says (0 for Success).
pub fn exit_code(status: &serde_json::Value) -> i64 {
    if status["status"] == "Success" {
        return 0;
    }
    status["details"]["causes"][0]["message"]
        .as_str()
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("no exit code in {status}"))
}

/// Port forwarding over SPDY: one request (error + data stream pair) to `port`.
pub async fn spdy_port_forward(url: &str, port: u16, request: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (code, headers, tcp) = upgrade(url, "SPDY/3.1", &["portforward.k8s.io"]).await;
    assert_eq!(code, 101, "{headers:?}");
    let (handle, _incoming) = spdy::start(tcp, false);
    let pair = |kind: &str| {
        vec![
            ("streamType".to_owned(), kind.to_owned()),
            ("port".to_owned(), port.to_string()),
            ("requestID".to_owned(), "0".to_owned()),
        ]
    };
    let (_, mut error) = handle.open(pair("error")).await.expect("error stream");
    let (data_id, mut data) = handle.open(pair("data")).await.expect("data stream");
    handle.write(data_id, request).await.expect("write");
    let response = read_all(&mut data).await;
    // As client-go does when its local connection ends: the pair ends, and the error
    // stream with it.
    handle.finish(data_id).await.expect("close data");
    let error = read_all(&mut error).await;
    handle.close().await;
    (response, error)
}

/// A WebSocket remote-command session.
pub struct WsCommand {
    pub ws: tokio_tungstenite::WebSocketStream<TcpStream>,
    pub protocol: String,
}

impl WsCommand {
    pub async fn open(url: &str, protocols: &str) -> Result<Self, String> {
        let ws_url = url.replacen("http://", "ws://", 1);
        let mut request = ws_url.into_client_request().map_err(|e| e.to_string())?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            protocols.parse().map_err(|_| "header".to_string())?,
        );
        let host = url
            .strip_prefix("http://")
            .and_then(|r| r.split('/').next())
            .ok_or("host")?;
        let tcp = TcpStream::connect(host).await.map_err(|e| e.to_string())?;
        let (ws, response) = tokio_tungstenite::client_async(request, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let protocol = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        Ok(WsCommand { ws, protocol })
    }

    pub async fn send(&mut self, channel: u8, data: &[u8]) {
        let mut message = vec![channel];
        message.extend_from_slice(data);
        self.ws.send(Message::binary(message)).await.expect("send");
    }

    /// Everything received until the server closes: bytes per channel.
    pub async fn collect(&mut self) -> std::collections::BTreeMap<u8, Vec<u8>> {
        let mut out = std::collections::BTreeMap::<u8, Vec<u8>>::new();
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("message in time");
            match next {
                Some(Ok(Message::Binary(b))) if !b.is_empty() => {
                    out.entry(b[0]).or_default().extend_from_slice(&b[1..]);
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return out,
                Some(Ok(_)) => {}
            }
        }
    }
}
