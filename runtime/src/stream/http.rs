//! The HTTP/1.1 face of the streaming server: `/{exec,attach,portforward}/{token}`, GET
//! or POST, upgraded to SPDY/3.1 (`Upgrade: SPDY/3.1`, protocol chosen from
//! `X-Stream-Protocol-Version`) or to WebSocket (`Upgrade: websocket`, protocol from
//! `Sec-WebSocket-Protocol`). Anything else is refused with the status the kubelet's
//! server gives: 404 for an unknown, used or expired token, 400 for a request that does
//! not upgrade, 403 (with the accepted versions) for no common protocol.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CONNECTION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::remotecommand::{self, Version};
use super::{spdy_session, websocket, Pending, StreamServer};

/// The port-forward protocol over SPDY.
pub const PORT_FORWARD_PROTOCOL: &str = "portforward.k8s.io";
const STREAM_PROTOCOL: &str = "x-stream-protocol-version";

type Reply = Response<Full<Bytes>>;

fn reply(code: StatusCode, text: &str) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *r.status_mut() = code;
    r
}

/// Accepts connections until the listener fails; each is served on its own task.
pub async fn serve(listener: TcpListener, server: Arc<StreamServer>) {
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("berth-runtime: streaming server: accept: {e}");
                // Out of descriptors and the like: wait a little rather than spin.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let server = server.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, std::convert::Infallible>(route(&server, req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(30))
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades()
                .await;
        });
    }
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

fn upgrade_kind(headers: &HeaderMap) -> Option<&'static str> {
    let upgrade = headers.get(UPGRADE)?.to_str().ok()?.to_ascii_lowercase();
    if upgrade.contains("websocket") {
        Some("websocket")
    } else if upgrade.starts_with("spdy/3") {
        Some("spdy")
    } else {
        None
    }
}

fn route(server: &StreamServer, mut req: Request<Incoming>) -> Reply {
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::POST {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "GET or POST only");
    }
    let path = req.uri().path().trim_start_matches('/');
    let Some((kind, token)) = path.split_once('/') else {
        return reply(StatusCode::NOT_FOUND, "no such streaming request");
    };
    let Some(pending) = server.take(kind, token) else {
        return reply(StatusCode::NOT_FOUND, "unknown, used or expired token");
    };
    let Some(transport) = upgrade_kind(req.headers()) else {
        return reply(
            StatusCode::BAD_REQUEST,
            "this endpoint needs an upgrade to SPDY/3.1 or websocket",
        );
    };
    let is_forward = matches!(pending, Pending::PortForward(_));
    if transport == "websocket" {
        return websocket::upgrade(&mut req, pending);
    }
    let supported: &[&'static str] = if is_forward {
        &[PORT_FORWARD_PROTOCOL]
    } else {
        remotecommand::SPDY_PROTOCOLS
    };
    let offered = header_values(req.headers(), STREAM_PROTOCOL);
    let Some(protocol) = remotecommand::negotiate(offered.iter().copied(), supported) else {
        let mut r = reply(
            StatusCode::FORBIDDEN,
            &format!("no common stream protocol: offered {offered:?}, accepted {supported:?}"),
        );
        if let Ok(v) = HeaderValue::from_str(&supported.join(", ")) {
            r.headers_mut()
                .insert("x-accepted-stream-protocol-versions", v);
        }
        return r;
    };
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let io = TokioIo::new(upgraded);
        match pending {
            Pending::PortForward(target) => spdy_session::serve_portforward(io, target).await,
            Pending::Exec { target, wanted } => {
                let version = Version::of(protocol).unwrap_or(Version::V1);
                spdy_session::serve_remotecommand(io, version, wanted, |session| {
                    super::exec::run(*target, session)
                })
                .await
            }
            Pending::Attach { target, wanted } => {
                let version = Version::of(protocol).unwrap_or(Version::V1);
                spdy_session::serve_remotecommand(io, version, wanted, |session| {
                    super::attach::run(target, session)
                })
                .await
            }
        }
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    h.insert(STREAM_PROTOCOL, HeaderValue::from_static(protocol));
    r
}
