//! The HTTP layer of `publish`: requests as plain data, sent with ureq, retried with
//! exponential backoff on the failures Google's APIs call retryable (connection errors,
//! 408, 429, 5xx); or, with `--dry-run`, printed instead of sent, with a canned answer so
//! that the whole sequence of requests is shown.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::api::ErrorBody;

/// A request body.
pub enum Body {
    Empty,
    Json(Value),
    /// `application/x-www-form-urlencoded` fields.
    Form(Vec<(&'static str, String)>),
    /// Raw bytes, and how to describe them in a dry run.
    Bytes(Vec<u8>, String),
}

pub struct Request {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

impl Request {
    pub fn new(method: &'static str, url: String) -> Request {
        Request {
            method,
            url,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Request {
        self.headers.push((name, value.into()));
        self
    }

    pub fn bearer(self, token: &str) -> Request {
        self.header("Authorization", format!("Bearer {token}"))
    }

    /// A JSON body from a typed request (see `api.rs`).
    pub fn json(mut self, body: &impl Serialize) -> Result<Request> {
        let value = serde_json::to_value(body).context("cannot encode the request body")?;
        self.body = Body::Json(value);
        Ok(self.header("Content-Type", "application/json; charset=UTF-8"))
    }

    pub fn form(mut self, fields: Vec<(&'static str, String)>) -> Request {
        self.body = Body::Form(fields);
        self.header("Content-Type", "application/x-www-form-urlencoded")
    }

    pub fn bytes(mut self, data: Vec<u8>, what: String) -> Request {
        self.body = Body::Bytes(data, what);
        self
    }

    fn body_bytes(&self) -> Vec<u8> {
        match &self.body {
            Body::Empty => Vec::new(),
            Body::Json(v) => v.to_string().into_bytes(),
            Body::Form(fields) => form_encode(fields).into_bytes(),
            Body::Bytes(data, _) => data.clone(),
        }
    }

    /// The request as `--dry-run` prints it (the token is not shown).
    pub fn describe(&self) -> String {
        let mut text = format!("{} {}\n", self.method, self.url);
        for (name, value) in &self.headers {
            let value = if *name == "Authorization" {
                "Bearer <access token>"
            } else {
                value
            };
            let _ = writeln!(text, "  {name}: {value}");
        }
        match &self.body {
            Body::Empty => {}
            Body::Json(v) => {
                let pretty = serde_json::to_string_pretty(v).unwrap_or_default();
                for line in pretty.lines() {
                    let _ = writeln!(text, "  {line}");
                }
            }
            Body::Form(fields) => {
                let shown: Vec<(&str, String)> = fields
                    .iter()
                    .map(|(k, v)| {
                        (
                            *k,
                            if *k == "grant_type" {
                                v.clone()
                            } else {
                                "<redacted>".into()
                            },
                        )
                    })
                    .collect();
                let _ = writeln!(text, "  {}", form_encode(&shown));
            }
            Body::Bytes(data, what) => {
                let _ = writeln!(text, "  <{} bytes: {what}>", data.len());
            }
        }
        text
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a JSON body (a dry run's canned answer, or a test's).
    pub fn new(status: u16, body: &impl Serialize) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: serde_json::to_vec(body).unwrap_or_default(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as the typed response `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "the response is not the JSON expected ({})",
                std::any::type_name::<T>()
            )
        })
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Google's error message from the body, or the body itself.
    pub fn error_text(&self) -> String {
        match serde_json::from_slice::<ErrorBody>(&self.body) {
            Ok(body) if !body.error.message.is_empty() => body.error.message,
            _ => String::from_utf8_lossy(&self.body)
                .chars()
                .take(500)
                .collect(),
        }
    }
}

/// Statuses worth retrying (Google Cloud's guidance for its JSON APIs).
pub fn retryable(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub attempts: u32,
}

impl Backoff {
    pub const DEFAULT: Backoff = Backoff {
        first: Duration::from_millis(500),
        max: Duration::from_secs(32),
        attempts: 8,
    };

    /// The wait before retry number `n` (0-based): first * 2^n, capped.
    pub fn delay(&self, n: u32) -> Duration {
        self.first.saturating_mul(1u32 << n.min(16)).min(self.max)
    }
}

/// Sends requests, or prints them in a dry run.
pub struct Client {
    agent: ureq::Agent,
    pub backoff: Backoff,
    dry_run: Option<Mutex<Box<dyn Write + Send>>>,
}

impl Client {
    pub fn new(backoff: Backoff) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_global(Some(Duration::from_secs(600)))
            .build();
        Client {
            agent: config.into(),
            backoff,
            dry_run: None,
        }
    }

    /// A client that prints every request to `out` and sends none.
    pub fn dry_run(out: Box<dyn Write + Send>) -> Client {
        Client {
            dry_run: Some(Mutex::new(out)),
            ..Client::new(Backoff::DEFAULT)
        }
    }

    pub fn is_dry_run(&self) -> bool {
        self.dry_run.is_some()
    }

    /// In a dry run, prints a note about something done without HTTP.
    pub fn note(&self, text: &str) {
        if let Some(Ok(mut out)) = self.dry_run.as_ref().map(Mutex::lock) {
            let _ = writeln!(out, "# {text}\n");
        }
    }

    /// Sends `request` once; in a dry run prints it and returns `canned()`. Errors are
    /// connection-level only: any HTTP status is a response.
    pub fn send(&self, request: &Request, canned: impl FnOnce() -> Response) -> Result<Response> {
        if let Some(out) = &self.dry_run {
            if let Ok(mut out) = out.lock() {
                let _ = writeln!(out, "{}", request.describe());
            }
            return Ok(canned());
        }
        let mut builder = ureq::http::Request::builder()
            .method(request.method)
            .uri(&request.url);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        let body = request.body_bytes();
        let result = if matches!(request.body, Body::Empty) && request.method == "GET" {
            self.agent.run(builder.body(())?)
        } else {
            self.agent.run(builder.body(body)?)
        };
        let mut response = result.with_context(|| format!("{} {}", request.method, request.url))?;
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_vec()
            .with_context(|| format!("reading the answer to {} {}", request.method, request.url))?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// Sends with retries on connection errors and retryable statuses; returns the first
    /// other response, or fails after the last attempt saying what went wrong.
    pub fn send_retrying(
        &self,
        request: &Request,
        canned: impl Fn() -> Response,
    ) -> Result<Response> {
        let mut last = String::new();
        for attempt in 0..self.backoff.attempts {
            if attempt > 0 {
                std::thread::sleep(self.backoff.delay(attempt - 1));
            }
            match self.send(request, &canned) {
                Ok(r) if !retryable(r.status) => return Ok(r),
                Ok(r) => last = format!("HTTP {}: {}", r.status, r.error_text()),
                Err(e) => last = format!("{e:#}"),
            }
        }
        bail!(
            "{} {} failed {} times; last: {last}",
            request.method,
            request.url,
            self.backoff.attempts
        )
    }
}

/// `application/x-www-form-urlencoded`.
pub fn form_encode(fields: &[(&str, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encoding of everything but RFC 3986's unreserved characters.
pub fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}
