//! Cloud Storage JSON API resumable upload
//! (<https://cloud.google.com/storage/docs/performing-resumable-uploads>): one POST opens
//! a session, PUTs send the file in chunks with `Content-Range`, the server answers 308
//! with the `Range` it has persisted until the last chunk gets 200/201 and the object.
//!
//! An interrupted or failed chunk is not blindly resent: after a backoff we ask the
//! session what it has (`Content-Range: bytes */TOTAL`) and go on from there, so a broken
//! connection costs at most one chunk. A session the server no longer knows (404/410) is
//! opened again from the start. The object's CRC32C goes in the session metadata, so that
//! Cloud Storage itself refuses an upload whose bytes differ, and the final object's size
//! and CRC32C are checked again here.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;

use super::api::{Object, ObjectMetadata};
use super::http::{encode, retryable, Client, Request, Response};

/// Chunks must be multiples of 256 KiB (all but the last).
pub const CHUNK_UNIT: u64 = 256 << 10;

/// What to upload where.
pub struct Upload<'a> {
    pub storage_url: &'a str,
    pub bucket: &'a str,
    pub object: &'a str,
    pub file: &'a Path,
    pub content_type: &'a str,
    /// Bytes per PUT: a multiple of [`CHUNK_UNIT`].
    pub chunk: u64,
}

/// Uploads the file; returns the object resource.
pub fn upload(client: &Client, token: &str, up: &Upload, progress: &dyn Fn(u64)) -> Result<Object> {
    let file = File::open(up.file).with_context(|| format!("cannot open {}", up.file.display()))?;
    let total = file.metadata()?.len();
    let crc = crc32c_file(&file, total)?;
    if up.chunk == 0 || !up.chunk.is_multiple_of(CHUNK_UNIT) {
        bail!(
            "upload chunk size {} is not a multiple of 256 KiB",
            up.chunk
        );
    }
    let mut session = open_session(client, token, up, total, crc)?;
    let mut offset = 0u64;
    let mut failures = 0u32;
    loop {
        let result = if offset < total || total == 0 {
            send_chunk(client, token, &session, &file, offset, up.chunk, total)
        } else {
            query(client, token, &session, total)
        };
        let outcome = match result {
            Ok(response) => classify(&response, total),
            Err(e) => Outcome::Retry(format!("{e:#}")),
        };
        match outcome {
            Outcome::Done(object) => {
                progress(total);
                return check_object(object, up, total, crc);
            }
            Outcome::Persisted(n) => {
                if n > offset {
                    failures = 0;
                } else {
                    failures += 1;
                    if failures >= client.backoff.attempts {
                        bail!(
                            "uploading {} makes no progress at byte {offset}",
                            up.file.display()
                        );
                    }
                }
                offset = n;
                progress(offset);
            }
            Outcome::Gone => {
                failures += 1;
                session = open_session(client, token, up, total, crc)?;
                offset = 0;
            }
            Outcome::Fatal(why) => bail!("uploading {} failed: {why}", up.file.display()),
            Outcome::Retry(why) => {
                failures += 1;
                if failures >= client.backoff.attempts {
                    bail!(
                        "uploading {} failed {failures} times in a row; last: {why}",
                        up.file.display()
                    );
                }
                std::thread::sleep(client.backoff.delay(failures - 1));
                // Ask the session how far it got before sending anything again.
                match query(client, token, &session, total).map(|r| classify(&r, total)) {
                    Ok(Outcome::Done(object)) => return check_object(object, up, total, crc),
                    Ok(Outcome::Persisted(n)) => offset = n,
                    Ok(Outcome::Gone) => {
                        session = open_session(client, token, up, total, crc)?;
                        offset = 0;
                    }
                    Ok(Outcome::Fatal(why)) => {
                        bail!("uploading {} failed: {why}", up.file.display())
                    }
                    Ok(Outcome::Retry(_)) | Err(_) => {}
                }
            }
        }
    }
}

enum Outcome {
    Done(Object),
    /// The server holds bytes `0..n`.
    Persisted(u64),
    /// The session is unknown or expired.
    Gone,
    Retry(String),
    Fatal(String),
}

fn classify(r: &Response, total: u64) -> Outcome {
    match r.status {
        200 | 201 => match r.json() {
            Ok(object) => Outcome::Done(object),
            Err(e) => Outcome::Fatal(format!("{e:#}")),
        },
        308 => match r.header("Range").map(parse_range) {
            None => Outcome::Persisted(0),
            Some(Some(n)) if n <= total => Outcome::Persisted(n),
            Some(_) => Outcome::Fatal(format!("unexpected Range {:?}", r.header("Range"))),
        },
        404 | 410 => Outcome::Gone,
        s if retryable(s) => Outcome::Retry(format!("HTTP {s}: {}", r.error_text())),
        s => Outcome::Fatal(format!("HTTP {s}: {}", r.error_text())),
    }
}

/// `bytes=0-N` → N + 1 bytes persisted.
fn parse_range(value: &str) -> Option<u64> {
    let last = value.strip_prefix("bytes=0-")?.trim().parse::<u64>().ok()?;
    last.checked_add(1)
}

fn open_session(client: &Client, token: &str, up: &Upload, total: u64, crc: u32) -> Result<String> {
    let url = format!(
        "{}/upload/storage/v1/b/{}/o?uploadType=resumable&name={}",
        up.storage_url,
        encode(up.bucket),
        encode(up.object)
    );
    let request = Request::new("POST", url.clone())
        .bearer(token)
        .header("X-Upload-Content-Type", up.content_type)
        .header("X-Upload-Content-Length", total.to_string())
        .json(&ObjectMetadata {
            name: up.object,
            content_type: up.content_type,
            crc32c: STANDARD.encode(crc.to_be_bytes()),
        })?;
    let canned = || {
        Response::new(200, &json!({})).with_header("Location", &format!("{url}&upload_id=DRY-RUN"))
    };
    let response = client.send_retrying(&request, canned)?;
    if !response.is_success() {
        bail!(
            "Cloud Storage refused to start the upload to gs://{}/{} (HTTP {}): {}",
            up.bucket,
            up.object,
            response.status,
            response.error_text()
        );
    }
    response
        .header("Location")
        .map(str::to_string)
        .context("Cloud Storage answered the upload request without a session URI (Location)")
}

fn send_chunk(
    client: &Client,
    token: &str,
    session: &str,
    file: &File,
    offset: u64,
    chunk: u64,
    total: u64,
) -> Result<Response> {
    let len = chunk.min(total - offset);
    let mut data = vec![0u8; len as usize];
    file.read_exact_at(&mut data, offset)?;
    let range = if total == 0 {
        "bytes */0".to_string()
    } else {
        format!("bytes {offset}-{}/{total}", offset + len - 1)
    };
    let request = Request::new("PUT", session.to_string())
        .bearer(token)
        .header("Content-Range", range)
        .bytes(data, format!("bytes {offset}.. of the file"));
    let end = offset + len;
    client.send(&request, || {
        if end == total {
            Response::new(200, &dry_run_object(total))
        } else {
            Response::new(308, &json!({})).with_header("Range", &format!("bytes=0-{}", end - 1))
        }
    })
}

/// Asks the session how much it has.
fn query(client: &Client, token: &str, session: &str, total: u64) -> Result<Response> {
    let request = Request::new("PUT", session.to_string())
        .bearer(token)
        .header("Content-Range", format!("bytes */{total}"))
        .bytes(Vec::new(), "status query".into());
    client.send(&request, || Response::new(200, &dry_run_object(total)))
}

fn dry_run_object(total: u64) -> Object {
    Object {
        name: "DRY-RUN".into(),
        size: Some(total.to_string()),
        crc32c: None,
    }
}

fn check_object(object: Object, up: &Upload, total: u64, crc: u32) -> Result<Object> {
    let size = object.size.as_deref().and_then(|s| s.parse::<u64>().ok());
    if size.is_some_and(|s| s != total) {
        bail!(
            "gs://{}/{} has {size:?} bytes, the file {total}",
            up.bucket,
            up.object
        );
    }
    let want = STANDARD.encode(crc.to_be_bytes());
    if let Some(got) = object.crc32c.as_deref() {
        if got != want {
            bail!(
                "gs://{}/{} has CRC32C {got}, the file {want}",
                up.bucket,
                up.object
            );
        }
    }
    Ok(object)
}

/// CRC32C (Castagnoli), the checksum Cloud Storage keeps for every object, of the file's
/// first `total` bytes, read a MiB at a time.
pub fn crc32c_file(file: &File, total: u64) -> Result<u32> {
    let mut crc = 0;
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0;
    while offset < total {
        let n = (total - offset).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], offset)?;
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        offset += n as u64;
    }
    Ok(crc)
}
