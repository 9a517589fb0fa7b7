//! `publish gce` end to end against the local fake of Google's APIs (`fake.rs`): token
//! exchange with a service-account key, a resumable upload that is interrupted, refused
//! and resumed, images.insert, and the failure paths that must not leave an image behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::auth::{signed_jwt, Credentials, ServiceAccountKey};
use super::fake::{Fake, State, EMAIL};
use super::gce::{image_name, publish, Options};
use super::http::{Backoff, Client};
use super::storage::crc32c_file;

const ROOT_HASH: &str = "3803832e5641df91830ea84adb91bbe626c671020d6dc169d5ef50b6ec42da19";

struct Setup {
    dir: tempfile::TempDir,
    artifact: Vec<u8>,
    private_key: String,
    rsa_public: Vec<u8>,
}

/// A release folder with a 1.3 MB "tar.gz" and a service-account key made by OpenSSL.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut x = 0x2545_f491_u32;
    let artifact: Vec<u8> = (0..1_300_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    std::fs::write(dir.path().join("berth-0.1.0.tar.gz"), &artifact).unwrap();
    let sha = berth_image::manifest::sha256_file(&dir.path().join("berth-0.1.0.tar.gz")).unwrap();
    let manifest = json!({
        "name": "berth", "version": "0.1.0", "variant": "default",
        "source_date_epoch": 1_700_000_000u64, "root_hash": ROOT_HASH,
        "disk": {"size": 1u64 << 30},
        "artifacts": [{"name": "berth-0.1.0.tar.gz", "size": artifact.len(), "sha256": sha}],
    });
    std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap();

    let pem = dir.path().join("sa.pem");
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&pem)
        .output()
        .expect("openssl (install the Debian package openssl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let private_key = std::fs::read_to_string(&pem).unwrap();
    let der = berth_image::release::sign::pem_decode(private_key.as_bytes(), "PRIVATE KEY")
        .unwrap()
        .unwrap();
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
    let rsa_public = ring::signature::KeyPair::public_key(&pair)
        .as_ref()
        .to_vec();
    Setup {
        dir,
        artifact,
        private_key,
        rsa_public,
    }
}

fn fake(s: &Setup, faults: impl FnOnce(&mut State)) -> Fake {
    let mut state = State {
        rsa_public: s.rsa_public.clone(),
        bucket: "berth-images".into(),
        object: "berth-0-1-0-3803832e.tar.gz".into(),
        project: "berth-test".into(),
        image: "berth-0-1-0-3803832e".into(),
        family: Some("berth-stable".into()),
        expected: s.artifact.clone(),
        ..State::default()
    };
    faults(&mut state);
    Fake::start(state)
}

fn options(dir: &Path, url: &str) -> Options {
    Options {
        project: "berth-test".into(),
        bucket: "berth-images".into(),
        family: Some("berth-stable".into()),
        dir: dir.to_path_buf(),
        image_name: None,
        labels: vec![("team".into(), "nodes".into())],
        storage_url: url.into(),
        compute_url: url.into(),
        chunk: 512 << 10,
        timeout: Duration::from_secs(30),
    }
}

/// A service-account key whose token URI is the fake's.
fn creds_for(s: &Setup, url: &str) -> Credentials {
    Credentials::ServiceAccount {
        file: PathBuf::from("sa.json"),
        key: ServiceAccountKey {
            client_email: EMAIL.into(),
            private_key: s.private_key.clone(),
            private_key_id: "k1".into(),
            token_uri: format!("{url}/token"),
        },
    }
}

fn client() -> Client {
    Client::new(Backoff {
        first: Duration::from_millis(1),
        max: Duration::from_millis(20),
        attempts: 5,
    })
}

#[test]
fn upload_survives_a_503_a_dropped_connection_and_a_refused_chunk() {
    let s = setup();
    let f = fake(&s, |st| {
        st.fail_openings = 1;
        st.interrupt_at = Some(900_000); // inside the second 512 KiB chunk
        st.fail_chunk_at = Some(786_432); // the resumed chunk, once
    });
    let image = publish(
        &options(s.dir.path(), &f.url),
        &client(),
        &creds_for(&s, &f.url),
        &|_| {},
        &|_| {},
    )
    .unwrap();
    assert_eq!(image.status.as_deref(), Some("READY"));
    let st = f.state();
    assert!(st.problems.is_empty(), "{:#?}\n{:#?}", st.problems, st.log);
    assert!(st.uploaded == s.artifact);
    assert_eq!(st.sessions, 1, "one session, resumed: {:#?}", st.log);
    let queries = st
        .log
        .iter()
        .filter(|l| l.ends_with("bytes */1300000"))
        .count();
    assert!(
        queries >= 2,
        "status queried after the drop and the 503: {:#?}",
        st.log
    );
    assert!(
        st.log.iter().any(|l| l.contains("bytes 786432-")),
        "resumed at the persisted offset: {:#?}",
        st.log
    );
    assert!(st.deleted.is_empty());
}

#[test]
fn an_expired_session_starts_over() {
    let s = setup();
    let f = fake(&s, |st| st.expire_at = Some(500_000));
    publish(
        &options(s.dir.path(), &f.url),
        &client(),
        &creds_for(&s, &f.url),
        &|_| {},
        &|_| {},
    )
    .unwrap();
    let st = f.state();
    assert!(st.problems.is_empty(), "{:#?}", st.problems);
    assert!(st.uploaded == s.artifact);
    assert_eq!(
        st.sessions, 3,
        "opened, expired, opened again: {:#?}",
        st.log
    );
}

#[test]
fn a_failed_image_is_deleted_and_the_error_says_so() {
    let s = setup();
    let f = fake(&s, |st| st.operation_fails = true);
    let err = publish(
        &options(s.dir.path(), &f.url),
        &client(),
        &creds_for(&s, &f.url),
        &|_| {},
        &|_| {},
    )
    .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("INVALID_IMAGE: disk.raw is not a bootable disk"),
        "{text}"
    );
    assert!(text.contains("the incomplete image was deleted"), "{text}");
    let st = f.state();
    assert_eq!(st.deleted, ["berth-0-1-0-3803832e"]);
    assert!(st.images.is_empty());
    assert!(st.problems.is_empty(), "{:#?}", st.problems);
}

#[test]
fn an_existing_image_is_left_alone() {
    let s = setup();
    let f = fake(&s, |st| {
        st.images.insert("berth-0-1-0-3803832e".into(), "READY");
    });
    let err = publish(
        &options(s.dir.path(), &f.url),
        &client(),
        &creds_for(&s, &f.url),
        &|_| {},
        &|_| {},
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("already exists in project berth-test"),
        "{err:#}"
    );
    let st = f.state();
    assert!(st.deleted.is_empty());
    assert_eq!(st.images.get("berth-0-1-0-3803832e"), Some(&"READY"));
}

#[test]
fn a_changed_artifact_is_not_uploaded() {
    let s = setup();
    let f = fake(&s, |_| {});
    std::fs::write(s.dir.path().join("berth-0.1.0.tar.gz"), b"something else").unwrap();
    let err = publish(
        &options(s.dir.path(), &f.url),
        &client(),
        &creds_for(&s, &f.url),
        &|_| {},
        &|_| {},
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("the release manifest says"),
        "{err:#}"
    );
    assert!(f.state().log.is_empty(), "nothing was sent");
}

/// Collects what a dry run prints.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_dry_run_prints_every_request_and_sends_none() {
    let s = setup();
    let captured = Captured::default();
    let client = Client::dry_run(Box::new(captured.clone()));
    // Nothing listens here: any real request would fail.
    let url = "http://127.0.0.1:9";
    publish(
        &options(s.dir.path(), url),
        &client,
        &creds_for(&s, url),
        &|_| {},
        &|_| {},
    )
    .unwrap();
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for needle in [
        "POST http://127.0.0.1:9/token",
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=%3Credacted%3E",
        "POST http://127.0.0.1:9/upload/storage/v1/b/berth-images/o?uploadType=resumable&name=berth-0-1-0-3803832e.tar.gz",
        "Content-Range: bytes 0-524287/1300000",
        "Content-Range: bytes 1048576-1299999/1300000",
        "POST http://127.0.0.1:9/compute/v1/projects/berth-test/global/images?requestId=",
        "\"family\": \"berth-stable\"",
        "POST http://127.0.0.1:9/compute/v1/projects/berth-test/global/operations/operation-dry-run/wait",
        "GET http://127.0.0.1:9/compute/v1/projects/berth-test/global/images/berth-0-1-0-3803832e",
        "Authorization: Bearer <access token>",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn jwt_claims_and_signature() {
    let s = setup();
    let Credentials::ServiceAccount { key, .. } = creds_for(&s, "https://oauth2.example") else {
        unreachable!()
    };
    let jwt = signed_jwt(&key, 1_700_000_000).unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    use base64::Engine;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["exp"], 1_700_003_600u64);
    assert_eq!(claims["aud"], "https://oauth2.example/token");
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[2])
        .unwrap();
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &s.rsa_public,
    )
    .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
    .unwrap();
}

#[test]
fn small_pieces() {
    // The check value of CRC-32C, over a file read in pieces.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("check");
    std::fs::write(&path, b"123456789").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    assert_eq!(crc32c_file(&file, 9).unwrap(), 0xe306_9283);
    assert_eq!(crc32c_file(&file, 4).unwrap(), crc32c::crc32c(b"1234"));
    assert_eq!(
        image_name("berth", "0.1.0", ROOT_HASH),
        "berth-0-1-0-3803832e"
    );
    assert_eq!(
        image_name("9lives", "1.0_rc1", "ab"),
        "berth-9lives-1-0-rc1-ab"
    );
    let b = Backoff::DEFAULT;
    assert_eq!(b.delay(0), Duration::from_millis(500));
    assert_eq!(b.delay(2), Duration::from_secs(2));
    assert_eq!(b.delay(30), Duration::from_secs(32));
}
