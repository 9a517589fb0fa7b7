//! A local stand-in for Google's token endpoint, Cloud Storage and Compute Engine, for
//! the publish tests: a std::net server on 127.0.0.1 that checks every request against the
//! documented API (paths, query, headers, JSON bodies, the JWT's signature and claims,
//! Content-Range arithmetic, 256 KiB chunks), records what it got, and injects faults:
//! a 503, a connection dropped in the middle of a chunk, an expired session, a failed
//! image operation.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use serde_json::{json, Value};

use super::auth::{JWT_BEARER, SCOPE};
use super::storage::CHUNK_UNIT;

pub const TOKEN: &str = "tok-123";
pub const EMAIL: &str = "publisher@berth-test.iam.gserviceaccount.com";

/// What the fake knows and how it misbehaves.
#[derive(Default)]
pub struct State {
    pub url: String,
    pub rsa_public: Vec<u8>,
    pub bucket: String,
    pub object: String,
    pub project: String,
    pub image: String,
    pub family: Option<String>,
    /// The artifact's bytes, as the upload must deliver them.
    pub expected: Vec<u8>,
    pub uploaded: Vec<u8>,
    pub sessions: u32,
    /// Fault: 503 to this many session openings.
    pub fail_openings: u32,
    /// Fault: drop the connection inside the chunk holding this offset, having persisted
    /// the bytes before it (rounded down to 256 KiB).
    pub interrupt_at: Option<u64>,
    /// Fault: 503 (once) to the chunk starting here.
    pub fail_chunk_at: Option<u64>,
    /// Fault: forget the session once this many bytes are persisted.
    pub expire_at: Option<u64>,
    /// Fault: the image operation ends in an error.
    pub operation_fails: bool,
    pub images: BTreeMap<String, &'static str>,
    pub deleted: Vec<String>,
    pub log: Vec<String>,
    pub problems: Vec<String>,
}

pub struct Fake {
    pub state: Arc<Mutex<State>>,
    pub url: String,
}

impl Fake {
    pub fn start(state: State) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let state = Arc::new(Mutex::new(State {
            url: url.clone(),
            ..state
        }));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                serve(stream, &shared);
            }
        });
        Fake { state, url }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct Req {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect();
    let req = Req {
        method,
        path: path.to_string(),
        query,
        headers,
    };
    let len: usize = req
        .headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    st.log.push(format!(
        "{} {target} {}",
        req.method,
        req.headers
            .get("content-range")
            .cloned()
            .unwrap_or_default()
    ));
    // The one fault that needs the socket: a chunk cut short.
    if let Some(at) = st.interrupt_at.filter(|_| req.method == "PUT") {
        if let Some((start, end, _)) = content_range(&req) {
            if (start..=end).contains(&at) {
                let keep = (at - start) as usize;
                let mut body = vec![0u8; keep];
                if reader.read_exact(&mut body).is_ok() {
                    st.uploaded.extend_from_slice(&body);
                    let persisted = (st.uploaded.len() as u64 / CHUNK_UNIT * CHUNK_UNIT) as usize;
                    st.uploaded.truncate(persisted);
                }
                st.interrupt_at = None;
                return; // dropped without an answer
            }
        }
    }
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_err() {
        st.problems.push(format!(
            "{} {target}: body shorter than Content-Length {len}",
            req.method
        ));
        return;
    }
    let (status, headers, answer) = route(&mut st, &req, &body);
    drop(st);
    let mut text = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\nContent-Type: application/json\r\n", answer.len());
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    let mut stream = reader.into_inner();
    let _ = stream.write_all(text.as_bytes());
    let _ = stream.write_all(answer.as_bytes());
}

pub type Answer = (u16, Vec<(&'static str, String)>, String);

pub fn answer(status: u16, body: Value) -> Answer {
    (status, Vec::new(), body.to_string())
}

fn route(st: &mut State, req: &Req, body: &[u8]) -> Answer {
    if req.method == "POST" && req.path == "/token" {
        return token(st, req, body);
    }
    if req.headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {TOKEN}")) {
        st.problems.push(format!(
            "{} {}: no or wrong bearer token",
            req.method, req.path
        ));
        return answer(401, json!({"error": {"message": "unauthenticated"}}));
    }
    let upload_path = format!("/upload/storage/v1/b/{}/o", st.bucket);
    let images = format!("/compute/v1/projects/{}/global/images", st.project);
    let operations = format!("/compute/v1/projects/{}/global/operations/", st.project);
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", p) if p == upload_path => super::fake_api::open_session(st, req, body),
        ("PUT", p) if p == upload_path => {
            super::fake_api::put_chunk(st, req, content_range(req), body)
        }
        ("POST", p) if p == images => super::fake_api::insert_image(st, req, body),
        ("POST", p) if p.starts_with(&operations) && p.ends_with("/wait") => {
            let name = &p[operations.len()..p.len() - "/wait".len()];
            super::fake_api::wait_operation(st, name)
        }
        ("GET", p) if p.starts_with(&format!("{images}/")) => {
            let name = &p[images.len() + 1..];
            match st.images.get(name) {
                Some(status) => answer(
                    200,
                    json!({"name": name, "status": status, "selfLink": format!("{}{p}", st.url)}),
                ),
                None => answer(404, json!({"error": {"message": "not found"}})),
            }
        }
        ("DELETE", p) if p.starts_with(&format!("{images}/")) => {
            let name = p[images.len() + 1..].to_string();
            st.deleted.push(name.clone());
            answer(
                200,
                json!({"name": format!("delete-{name}"), "status": "RUNNING"}),
            )
        }
        _ => {
            st.problems
                .push(format!("unexpected request {} {}", req.method, req.path));
            answer(404, json!({"error": {"message": "no such API"}}))
        }
    }
}

/// Checks the form and the JWT: RS256 signature by the test key, issuer, audience, scope
/// and an hour's validity.
fn token(st: &mut State, req: &Req, body: &[u8]) -> Answer {
    let form: BTreeMap<String, String> = String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect();
    let mut problems = Vec::new();
    if req.headers.get("content-type").map(String::as_str)
        != Some("application/x-www-form-urlencoded")
    {
        problems.push("token request is not form-encoded".to_string());
    }
    if form.get("grant_type").map(String::as_str) != Some(JWT_BEARER) {
        problems.push(format!("grant_type {:?}", form.get("grant_type")));
    }
    let jwt = form.get("assertion").cloned().unwrap_or_default();
    let parts: Vec<&str> = jwt.split('.').collect();
    let part = |i: usize| -> Value {
        parts
            .get(i)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    };
    let (header, claims) = (part(0), part(1));
    let signature = parts
        .get(2)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .unwrap_or_default();
    let signed = format!(
        "{}.{}",
        parts.first().unwrap_or(&""),
        parts.get(1).unwrap_or(&"")
    );
    if UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &st.rsa_public)
        .verify(signed.as_bytes(), &signature)
        .is_err()
    {
        problems.push("JWT signature does not verify".into());
    }
    let exp_minus_iat = claims["exp"]
        .as_u64()
        .zip(claims["iat"].as_u64())
        .map(|(e, i)| e - i);
    if header["alg"] != "RS256"
        || claims["iss"] != EMAIL
        || claims["scope"] != SCOPE
        || claims["aud"] != format!("{}/token", st.url)
        || exp_minus_iat != Some(3600)
    {
        problems.push(format!("JWT header {header} claims {claims}"));
    }
    if problems.is_empty() {
        answer(
            200,
            json!({"access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"}),
        )
    } else {
        st.problems.extend(problems);
        answer(400, json!({"error": "invalid_grant"}))
    }
}

/// `bytes A-B/T` → (A, B, T).
fn content_range(req: &Req) -> Option<(u64, u64, u64)> {
    let value = req.headers.get("content-range")?.strip_prefix("bytes ")?;
    let (range, total) = value.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?, total.parse().ok()?))
}

/// The object resource Cloud Storage returns at the end of an upload.
pub fn object(st: &State) -> Value {
    json!({
        "kind": "storage#object",
        "name": st.object,
        "bucket": st.bucket,
        "size": st.uploaded.len().to_string(),
        "crc32c": STANDARD.encode(crc32c::crc32c(&st.uploaded).to_be_bytes()),
    })
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
