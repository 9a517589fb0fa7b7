//! WebSocket transport (in progress).

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};

use super::Pending;

pub fn upgrade(
    _req: &mut Request<hyper::body::Incoming>,
    _pending: Pending,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(
        b"websocket is not supported yet\n",
    )));
    *r.status_mut() = StatusCode::BAD_REQUEST;
    r
}
