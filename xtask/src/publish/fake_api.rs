//! The Cloud Storage and Compute Engine halves of the fake (see `fake.rs`): each handler
//! checks its request against the API reference and records a problem for anything off.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use super::compute::GUEST_OS_FEATURES;
use super::fake::{answer, object, Answer, Req, State};
use super::storage::CHUNK_UNIT;

/// `POST /upload/storage/v1/b/BUCKET/o?uploadType=resumable&name=OBJECT`.
pub fn open_session(st: &mut State, req: &Req, body: &[u8]) -> Answer {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let crc = STANDARD.encode(crc32c::crc32c(&st.expected).to_be_bytes());
    let checks = [
        (
            req.query.get("uploadType").map(String::as_str) == Some("resumable"),
            "uploadType=resumable",
        ),
        (
            req.query.get("name") == Some(&st.object),
            "name= the object",
        ),
        (
            header(req, "x-upload-content-type") == Some("application/gzip"),
            "X-Upload-Content-Type",
        ),
        (
            header(req, "x-upload-content-length") == Some(&st.expected.len().to_string()),
            "X-Upload-Content-Length",
        ),
        (
            header(req, "content-type").is_some_and(|t| t.starts_with("application/json")),
            "Content-Type json",
        ),
        (
            json["name"] == st.object.as_str() && json["contentType"] == "application/gzip",
            "metadata name/contentType",
        ),
        (json["crc32c"] == crc.as_str(), "metadata crc32c"),
    ];
    record(st, "session", &checks);
    if st.fail_openings > 0 {
        st.fail_openings -= 1;
        return answer(503, json!({"error": {"message": "backend unavailable"}}));
    }
    st.sessions += 1;
    st.uploaded.clear();
    let location = format!(
        "{}/upload/storage/v1/b/{}/o?uploadType=resumable&name={}&upload_id=s{}",
        st.url, st.bucket, st.object, st.sessions
    );
    (200, vec![("Location", location)], "{}".into())
}

/// `PUT` to the session URI: a chunk (`bytes A-B/T`) or a status query (`bytes */T`).
pub fn put_chunk(st: &mut State, req: &Req, range: Option<(u64, u64, u64)>, body: &[u8]) -> Answer {
    let total = st.expected.len() as u64;
    if req.query.get("upload_id") != Some(&format!("s{}", st.sessions)) {
        return answer(404, json!({"error": {"message": "no such upload"}}));
    }
    if st
        .expire_at
        .is_some_and(|at| st.uploaded.len() as u64 >= at)
    {
        st.expire_at = None;
        st.sessions += 1; // the client's session id is now unknown
        return answer(410, json!({"error": {"message": "upload session expired"}}));
    }
    let Some((start, end, t)) = range else {
        if header(req, "content-range") != Some(&format!("bytes */{total}")) {
            st.problems.push(format!(
                "bad Content-Range {:?}",
                header(req, "content-range")
            ));
        }
        if !body.is_empty() {
            st.problems.push("status query with a body".into());
        }
        return status(st, total);
    };
    let checks = [
        (
            start == st.uploaded.len() as u64,
            "chunk starts where the server is",
        ),
        (t == total, "Content-Range total"),
        (
            body.len() as u64 == end + 1 - start,
            "body length matches Content-Range",
        ),
        (
            (end + 1 - start) % CHUNK_UNIT == 0 || end + 1 == total,
            "chunks are 256 KiB multiples",
        ),
    ];
    record(st, &format!("chunk {start}-{end}"), &checks);
    if st.fail_chunk_at == Some(start) {
        st.fail_chunk_at = None;
        return answer(503, json!({"error": {"message": "try again"}}));
    }
    if start == st.uploaded.len() as u64 {
        st.uploaded.extend_from_slice(body);
    }
    if end + 1 == total && st.uploaded != st.expected {
        st.problems
            .push("the uploaded bytes are not the artifact's".into());
    }
    status(st, total)
}

fn status(st: &State, total: u64) -> Answer {
    let have = st.uploaded.len() as u64;
    if have == total {
        return answer(200, object(st));
    }
    let mut headers = Vec::new();
    if have > 0 {
        headers.push(("Range", format!("bytes=0-{}", have - 1)));
    }
    (308, headers, String::new())
}

/// `POST /compute/v1/projects/P/global/images?requestId=UUID`.
pub fn insert_image(st: &mut State, req: &Req, body: &[u8]) -> Answer {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let features: Vec<&str> = json["guestOsFeatures"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["type"].as_str()).collect())
        .unwrap_or_default();
    let labels_ok = json["labels"].as_object().is_some_and(|labels| {
        labels.contains_key("berth-version")
            && labels.iter().all(|(k, v)| {
                let ok = |s: &str| {
                    s.len() <= 63
                        && s.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
                        })
                };
                ok(k) && v.as_str().is_some_and(ok)
            })
    });
    let source = format!("https://storage.googleapis.com/{}/{}", st.bucket, st.object);
    let checks = [
        (
            req.query
                .get("requestId")
                .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()),
            "requestId is a UUID",
        ),
        (
            header(req, "content-type").is_some_and(|t| t.starts_with("application/json")),
            "Content-Type json",
        ),
        (json["name"] == st.image.as_str(), "image name"),
        (json["family"].as_str() == st.family.as_deref(), "family"),
        (
            json["rawDisk"]["source"] == source.as_str(),
            "rawDisk.source",
        ),
        (
            json["rawDisk"]["containerType"] == "TAR",
            "rawDisk.containerType",
        ),
        (features == GUEST_OS_FEATURES, "guestOsFeatures"),
        (json["architecture"] == "X86_64", "architecture"),
        (labels_ok, "labels"),
        (
            st.uploaded == st.expected,
            "image created after the upload completed",
        ),
    ];
    record(st, "images.insert", &checks);
    if st.images.contains_key(&st.image) {
        return answer(
            409,
            json!({"error": {"message": "The resource already exists"}}),
        );
    }
    st.images.insert(st.image.clone(), "PENDING");
    answer(
        200,
        json!({"name": format!("insert-{}", st.image), "status": "RUNNING", "operationType": "insert"}),
    )
}

/// `POST /compute/v1/projects/P/global/operations/NAME/wait`.
pub fn wait_operation(st: &mut State, name: &str) -> Answer {
    if let Some(image) = name.strip_prefix("insert-") {
        if st.operation_fails {
            st.images.insert(image.to_string(), "FAILED");
            return answer(
                200,
                json!({"name": name, "status": "DONE", "error": {"errors": [
                    {"code": "INVALID_IMAGE", "message": "disk.raw is not a bootable disk"}
                ]}}),
            );
        }
        st.images.insert(image.to_string(), "READY");
        return answer(200, json!({"name": name, "status": "DONE"}));
    }
    if let Some(image) = name.strip_prefix("delete-") {
        st.images.remove(image);
        return answer(200, json!({"name": name, "status": "DONE"}));
    }
    st.problems
        .push(format!("wait on unknown operation {name}"));
    answer(404, json!({"error": {"message": "no such operation"}}))
}

fn header<'a>(req: &'a Req, name: &str) -> Option<&'a str> {
    req.headers.get(name).map(String::as_str)
}

fn record(st: &mut State, what: &str, checks: &[(bool, &str)]) {
    for (ok, check) in checks {
        if !ok {
            st.problems.push(format!("{what}: {check}"));
        }
    }
}
