//! The image store against real registries: Debian's `docker-registry` fed by `skopeo`
//! from OCI layouts built here (gzip and zstd layers, whiteouts, a mirror configured in
//! hosts.toml), and a tiny in-test HTTP registry that lies about blobs or demands basic
//! or bearer-token auth.

mod support;

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread;

use berth_runtime::error::{ErrorKind, Kind};
use berth_runtime::oci_image::{Auth, Digest, ImageError, ImageStore, RegistryConfig};
use sha2::Digest as _;

const NO_CONTAINERS: &dyn Fn(&str) -> bool = &|_| false;

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

fn tool(path: &str) -> bool {
    Path::new(path).exists()
}

// ---------------------------------------------------------------------------------------
// Building images

/// A layer: its uncompressed tar and the blob as pushed.
struct Layer {
    tar: Vec<u8>,
    blob: Vec<u8>,
    media_type: &'static str,
}

fn gzip(tar: Vec<u8>) -> Layer {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&tar).unwrap();
    Layer {
        blob: enc.finish().unwrap(),
        tar,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
    }
}

fn zstd_layer(tar: Vec<u8>) -> Layer {
    Layer {
        blob: zstd::encode_all(&tar[..], 3).unwrap(),
        tar,
        media_type: "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

fn tar_of(entries: &[(&str, TarEntry)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, entry) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_700_000_000);
        match entry {
            TarEntry::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, name, &[][..]).unwrap();
            }
            TarEntry::File(data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, name, &data[..]).unwrap();
            }
            TarEntry::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, name, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

enum TarEntry {
    Dir,
    File(Vec<u8>, u32),
    Symlink(&'static str),
}

/// Config, manifest and their bytes for a set of layers.
struct Image {
    config: Vec<u8>,
    manifest: Vec<u8>,
    layers: Vec<Layer>,
}

impl Image {
    fn new(layers: Vec<Layer>) -> Self {
        let diff_ids: Vec<String> = layers.iter().map(|l| sha256(&l.tar)).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/bin/sh"], "Env": ["PATH=/bin"], "WorkingDir": "/", "Labels": {"test": "yes"}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
            "layers": layers.iter().map(|l| serde_json::json!({
                "mediaType": l.media_type, "digest": sha256(&l.blob), "size": l.blob.len()
            })).collect::<Vec<_>>(),
        }))
        .unwrap();
        Image {
            config,
            manifest,
            layers,
        }
    }

    fn id(&self) -> String {
        sha256(&self.config)
    }

    /// Writes an OCI image layout with this image tagged `tag`.
    fn write_layout(&self, dir: &Path, tag: &str) {
        let blobs = dir.join("blobs/sha256");
        fs::create_dir_all(&blobs).unwrap();
        let put = |data: &[u8]| fs::write(blobs.join(&sha256(data)[7..]), data).unwrap();
        put(&self.config);
        put(&self.manifest);
        for l in &self.layers {
            put(&l.blob);
        }
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha256(&self.manifest),
                "size": self.manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }],
        });
        fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    }
}

fn busybox_image() -> Image {
    let busybox = fs::read("/bin/busybox").unwrap();
    gzip_image(tar_of(&[
        ("bin", TarEntry::Dir),
        ("bin/busybox", TarEntry::File(busybox, 0o755)),
        ("bin/sh", TarEntry::Symlink("busybox")),
        ("bin/ls", TarEntry::Symlink("busybox")),
        ("etc", TarEntry::Dir),
        ("etc/motd", TarEntry::File(b"hello\n".to_vec(), 0o644)),
        ("var", TarEntry::Dir),
        ("var/cache", TarEntry::Dir),
        ("var/cache/old", TarEntry::File(b"stale".to_vec(), 0o644)),
    ]))
}

fn gzip_image(tar: Vec<u8>) -> Image {
    Image::new(vec![gzip(tar)])
}

/// The busybox layer (zstd) plus a zstd layer deleting `bin/ls` and emptying `var/cache`.
fn zstd_whiteout_image(base_tar: Vec<u8>) -> Image {
    let top = tar_of(&[
        ("bin", TarEntry::Dir),
        ("bin/.wh.ls", TarEntry::File(Vec::new(), 0o644)),
        ("var", TarEntry::Dir),
        ("var/cache", TarEntry::Dir),
        ("var/cache/.wh..wh..opq", TarEntry::File(Vec::new(), 0o644)),
        ("var/cache/new", TarEntry::File(b"fresh".to_vec(), 0o644)),
    ]);
    Image::new(vec![zstd_layer(base_tar), zstd_layer(top)])
}

// ---------------------------------------------------------------------------------------
// docker-registry + skopeo

use support::Registry;

fn start_registry() -> Registry {
    Registry::start()
}

fn push(image: &Image, registry: &Registry, repo_tag: &str) {
    let layout = tempfile::tempdir().unwrap();
    image.write_layout(layout.path(), "1");
    let out = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--dest-tls-verify=false",
            "--quiet",
        ])
        .arg(format!("oci:{}:1", layout.path().display()))
        .arg(format!("docker://{}/{repo_tag}", registry.host))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn have_registry_tools() -> bool {
    for t in [
        "/usr/bin/docker-registry",
        "/usr/bin/skopeo",
        "/bin/busybox",
    ] {
        if !tool(t) {
            berth_testkit::skip(&format!(
                "{t} is missing (install docker-registry, skopeo and busybox-static)"
            ));
            return false;
        }
    }
    true
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn pull_list_get_remove_from_docker_registry() {
    if !have_registry_tools() {
        return;
    }
    let registry = start_registry();
    let image = busybox_image();
    push(&image, &registry, "test/busybox:1");
    let second = zstd_whiteout_image(image.layers[0].tar.clone());
    push(&second, &registry, "test/layered:1");

    let root = tempfile::tempdir().unwrap();
    let store = ImageStore::open(root.path(), RegistryConfig::empty()).unwrap();
    let name = format!("{}/test/busybox", registry.host);
    let rec = store.pull(&format!("{name}:1"), None).unwrap();

    // What the CRI reports.
    assert_eq!(rec.id, image.id());
    assert_eq!(rec.repo_tags, vec![format!("{name}:1")]);
    let manifest_digest = sha256(&image.manifest);
    assert_eq!(rec.repo_digests, vec![format!("{name}@{manifest_digest}")]);
    assert_eq!(
        rec.size,
        (image.config.len() + image.layers[0].blob.len()) as u64
    );
    assert_eq!(rec.config.entrypoint, ["/bin/sh"]);
    assert_eq!(
        rec.config.labels.get("test").map(String::as_str),
        Some("yes")
    );
    assert_eq!(rec.layers, vec![sha256(&image.layers[0].tar)]);

    // The unpacked layer.
    let dirs = store.layer_dirs(&rec).unwrap();
    assert_eq!(dirs.len(), 1);
    assert_eq!(
        fs::read(dirs[0].join("bin/busybox")).unwrap(),
        fs::read("/bin/busybox").unwrap()
    );
    assert_eq!(
        fs::metadata(dirs[0].join("bin/busybox")).unwrap().mode() & 0o777,
        0o755
    );
    assert_eq!(
        fs::read_link(dirs[0].join("bin/sh")).unwrap(),
        Path::new("busybox")
    );

    // Lookups.
    let id_hex = &rec.id[7..];
    for key in [
        rec.id.clone(),
        id_hex.to_string(),
        id_hex[..12].to_string(),
        format!("{name}:1"),
        format!("{name}@{manifest_digest}"),
    ] {
        assert_eq!(
            store.get(&key).unwrap().as_ref().map(|r| &r.id),
            Some(&rec.id),
            "get({key})"
        );
    }
    assert!(store.get(&format!("{name}:2")).unwrap().is_none());
    assert!(store.get("busybox").unwrap().is_none());
    assert_eq!(store.list().unwrap().len(), 1);

    // A second pull is idempotent.
    assert_eq!(store.pull(&format!("{name}:1"), None).unwrap(), rec);

    // zstd layers and whiteouts; the shared bottom layer is unpacked once.
    let layered = store
        .pull(&format!("{}/test/layered:1", registry.host), None)
        .unwrap();
    assert_eq!(layered.layers[0], rec.layers[0]);
    // The zstd blobs came through as pushed (skopeo did not recompress them).
    for layer in &second.layers {
        assert!(
            layered.blobs.contains(&sha256(&layer.blob)),
            "zstd blob missing from {:?}",
            layered.blobs
        );
    }
    let ldirs = store.layer_dirs(&layered).unwrap();
    assert_eq!(ldirs[0], dirs[0]);
    if nix::unistd::geteuid().is_root() {
        let wh = fs::symlink_metadata(ldirs[1].join("bin/ls")).unwrap();
        assert!(
            wh.file_type().is_char_device() && wh.rdev() == 0,
            "bin/ls should be a whiteout"
        );
        assert!(fs::read(ldirs[1].join("var/cache/new")).is_ok());
        assert!(!ldirs[1].join("var/cache/.wh..wh..opq").exists());
    } else {
        berth_testkit::skip("whiteout checks need root (the rest of the test ran)");
    }
    assert_eq!(store.list().unwrap().len(), 2);

    let usage = store.fs_info().unwrap();
    assert!(usage.used_bytes > 0 && usage.inodes_used > 0);
    assert!(root
        .path()
        .canonicalize()
        .unwrap()
        .starts_with(&usage.mountpoint));

    // Remove the first image: the shared layer stays for the second.
    store.remove(&format!("{name}:1"), NO_CONTAINERS).unwrap();
    assert!(store.get(&rec.id).unwrap().is_none());
    assert!(dirs[0].is_dir());
    store.remove(&format!("{name}:1"), NO_CONTAINERS).unwrap(); // idempotent
                                                                // A layer a container still uses survives its image.
    let kept = layered.layers[1].clone();
    store.remove(&layered.id, &|l: &str| l == kept).unwrap();
    assert!(ldirs[1].is_dir());
    assert!(!dirs[0].exists());
    store.gc(NO_CONTAINERS).unwrap();
    assert!(store.list().unwrap().is_empty());
    assert!(files_under(&root.path().join("content/blobs/sha256")).is_empty());
    assert!(files_under(&root.path().join("layers/sha256")).is_empty());
}

#[test]
fn mirror_from_hosts_toml_serves_an_unreachable_registry() {
    if !have_registry_tools() {
        return;
    }
    let registry = start_registry();
    let image = busybox_image();
    push(&image, &registry, "test/busybox:1");

    let certs = tempfile::tempdir().unwrap();
    fs::create_dir(certs.path().join("example.invalid")).unwrap();
    fs::write(
        certs.path().join("example.invalid/hosts.toml"),
        format!(
            "server = \"https://example.invalid\"\n\n[host.\"http://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            registry.host
        ),
    )
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    let store = ImageStore::open(root.path(), RegistryConfig::load(certs.path()).unwrap()).unwrap();
    let rec = store.pull("example.invalid/test/busybox:1", None).unwrap();
    assert_eq!(rec.repo_tags, ["example.invalid/test/busybox:1"]);
    assert_eq!(rec.id, image.id());

    // A store reading the folder at each pull: the mirror written after it opened serves
    // the next pull, and a broken file fails the pull naming it.
    let later = tempfile::tempdir().unwrap();
    let live_root = tempfile::tempdir().unwrap();
    let live = ImageStore::open(live_root.path(), RegistryConfig::empty())
        .unwrap()
        .reading_registries_from(later.path());
    assert!(live.pull("example.invalid/test/busybox:1", None).is_err());
    fs::create_dir(later.path().join("example.invalid")).unwrap();
    fs::copy(
        certs.path().join("example.invalid/hosts.toml"),
        later.path().join("example.invalid/hosts.toml"),
    )
    .unwrap();
    let rec = live.pull("example.invalid/test/busybox:1", None).unwrap();
    assert_eq!(rec.id, image.id());
    fs::write(
        later.path().join("example.invalid/hosts.toml"),
        "server = [",
    )
    .unwrap();
    let err = live
        .pull("example.invalid/test/busybox:1", None)
        .unwrap_err();
    assert!(err.to_string().contains("hosts.toml"), "{err}");

    // Without the mirror the same name fails, as Unavailable, naming the host.
    let bare =
        ImageStore::open(tempfile::tempdir().unwrap().path(), RegistryConfig::empty()).unwrap();
    let err = bare
        .pull("example.invalid/test/busybox:1", None)
        .unwrap_err();
    assert_eq!(err.kind(), Kind::Unavailable, "{err}");
    assert!(err.to_string().contains("example.invalid"), "{err}");
}

// ---------------------------------------------------------------------------------------
// A tiny registry that lies or wants credentials

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    Honest,
    WrongBlob,
    TruncatedBlob,
    ShortBlob,
    Basic,
    Bearer,
}

struct FakeRegistry {
    port: u16,
}

/// Serves `image` under repositories named after a behaviour: `honest`, `wrong`,
/// `truncated`, `short`, `basic` (user u, password p) and `bearer` (token from /token
/// with u:p).
fn fake_registry(image: Arc<Image>) -> FakeRegistry {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let image = image.clone();
            thread::spawn(move || {
                let _ = serve(stream, &image, port);
            });
        }
    });
    FakeRegistry { port }
}

fn serve(mut stream: TcpStream, image: &Image, port: u16) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let path = path.split('?').next().unwrap_or("").to_string();
    let auth = headers.get("authorization").cloned().unwrap_or_default();
    let respond =
        |stream: &mut TcpStream, status: &str, extra: &str, body: &[u8], announced: usize| {
            let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {announced}\r\nConnection: close\r\n{extra}\r\n"
        );
            stream.write_all(head.as_bytes())?;
            stream.write_all(body)?;
            stream.flush()
        };

    if path == "/token" {
        return match auth.as_str() {
            "Basic dTpw" => respond(
                &mut stream,
                "200 OK",
                "Content-Type: application/json\r\n",
                br#"{"token":"tok123"}"#,
                18,
            ),
            _ => respond(&mut stream, "401 Unauthorized", "", b"", 0),
        };
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return respond(&mut stream, "404 Not Found", "", b"", 0);
    };
    let (repo, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let behaviour = match repo {
        "honest" => Behaviour::Honest,
        "wrong" => Behaviour::WrongBlob,
        "truncated" => Behaviour::TruncatedBlob,
        "short" => Behaviour::ShortBlob,
        "basic" => Behaviour::Basic,
        "bearer" => Behaviour::Bearer,
        _ => return respond(&mut stream, "404 Not Found", "", b"", 0),
    };
    match behaviour {
        Behaviour::Basic if auth != "Basic dTpw" => {
            return respond(
                &mut stream,
                "401 Unauthorized",
                "WWW-Authenticate: Basic realm=\"fake\"\r\n",
                b"",
                0,
            );
        }
        Behaviour::Bearer if auth != "Bearer tok123" => {
            let challenge = format!(
                "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\",scope=\"repository:bearer:pull\"\r\n"
            );
            return respond(&mut stream, "401 Unauthorized", &challenge, b"", 0);
        }
        _ => {}
    }
    let layer = &image.layers[0].blob;
    if tail == "manifests/1" || tail == format!("manifests/{}", sha256(&image.manifest)) {
        let extra = format!(
            "Content-Type: application/vnd.oci.image.manifest.v1+json\r\nDocker-Content-Digest: {}\r\n",
            sha256(&image.manifest)
        );
        return respond(
            &mut stream,
            "200 OK",
            &extra,
            &image.manifest,
            image.manifest.len(),
        );
    }
    if tail == format!("blobs/{}", sha256(&image.config)) {
        return respond(&mut stream, "200 OK", "", &image.config, image.config.len());
    }
    if tail == format!("blobs/{}", sha256(layer)) {
        return match behaviour {
            Behaviour::WrongBlob => {
                let mut lie = layer.clone();
                let last = lie.len() - 1;
                lie[last] ^= 0xff;
                respond(&mut stream, "200 OK", "", &lie, lie.len())
            }
            // Announces the full length, sends half, hangs up.
            Behaviour::TruncatedBlob => respond(
                &mut stream,
                "200 OK",
                "",
                &layer[..layer.len() / 2],
                layer.len(),
            ),
            // A consistent but short response.
            Behaviour::ShortBlob => respond(
                &mut stream,
                "200 OK",
                "",
                &layer[..layer.len() / 2],
                layer.len() / 2,
            ),
            _ => respond(&mut stream, "200 OK", "", layer, layer.len()),
        };
    }
    respond(&mut stream, "404 Not Found", "", b"", 0)
}

fn small_image() -> Image {
    gzip_image(tar_of(&[(
        "hello.txt",
        TarEntry::File(b"hi there\n".to_vec(), 0o644),
    )]))
}

/// Nothing of `blob` anywhere in the store: no blob, no ingest file, no layer.
fn assert_no_trace(root: &Path, blob: &str) {
    let hex = &blob[7..];
    assert!(
        !root.join("content/blobs/sha256").join(hex).exists(),
        "blob {blob} was stored"
    );
    assert!(
        files_under(&root.join("content/ingest")).is_empty(),
        "ingest not cleaned"
    );
    assert!(
        files_under(&root.join("layers/sha256")).is_empty(),
        "a layer was unpacked"
    );
    assert!(
        files_under(&root.join("layers/tmp")).is_empty(),
        "unpack leftovers"
    );
}

#[test]
fn a_lying_registry_fails_the_pull_naming_the_blob_and_leaves_no_trace() {
    let image = Arc::new(small_image());
    let fake = fake_registry(image.clone());
    let layer_digest = sha256(&image.layers[0].blob);
    for repo in ["wrong", "truncated", "short"] {
        let root = tempfile::tempdir().unwrap();
        let store = ImageStore::open(root.path(), RegistryConfig::empty()).unwrap();
        let err = store
            .pull(&format!("127.0.0.1:{}/{repo}:1", fake.port), None)
            .unwrap_err();
        let message = berth_runtime::error::chain(&err);
        eprintln!("{repo}: {message}");
        assert!(message.contains(&layer_digest), "{repo}: {message}");
        if repo == "wrong" {
            assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
            assert_eq!(err.kind(), Kind::Internal);
        }
        assert_no_trace(root.path(), &layer_digest);
        assert!(store.list().unwrap().is_empty());
    }
    // The honest repository of the same server works, so the failures were the lies.
    let root = tempfile::tempdir().unwrap();
    let store = ImageStore::open(root.path(), RegistryConfig::empty()).unwrap();
    let rec = store
        .pull(&format!("127.0.0.1:{}/honest:1", fake.port), None)
        .unwrap();
    let dir = &store.layer_dirs(&rec).unwrap()[0];
    assert_eq!(fs::read(dir.join("hello.txt")).unwrap(), b"hi there\n");
}

#[test]
fn basic_and_bearer_auth_from_the_request() {
    let image = Arc::new(small_image());
    let fake = fake_registry(image.clone());
    let creds = Auth {
        username: "u".into(),
        password: "p".into(),
        ..Auth::default()
    };
    let encoded = Auth {
        auth: "dTpw".into(),
        ..Auth::default()
    };
    let wrong = Auth {
        username: "u".into(),
        password: "nope".into(),
        ..Auth::default()
    };
    for repo in ["basic", "bearer"] {
        let reference = format!("127.0.0.1:{}/{repo}:1", fake.port);
        let root = tempfile::tempdir().unwrap();
        let store = ImageStore::open(root.path(), RegistryConfig::empty()).unwrap();
        for (auth, label) in [(None, "anonymous"), (Some(&wrong), "wrong password")] {
            let err = store.pull(&reference, auth).unwrap_err();
            assert_eq!(err.kind(), Kind::Unavailable, "{repo} {label}: {err}");
            let text = err.to_string();
            assert!(
                text.contains("401") && text.contains("127.0.0.1"),
                "{repo} {label}: {text}"
            );
        }
        for auth in [&creds, &encoded] {
            let rec = store.pull(&reference, Some(auth)).unwrap();
            assert_eq!(rec.id, image.id());
        }
    }
    // A registry token is sent as is.
    let token = Auth {
        registry_token: "tok123".into(),
        ..Auth::default()
    };
    let root = tempfile::tempdir().unwrap();
    let store = ImageStore::open(root.path(), RegistryConfig::empty()).unwrap();
    store
        .pull(&format!("127.0.0.1:{}/bearer:1", fake.port), Some(&token))
        .unwrap();
    // Credentials from hosts.toml (Berth extension) work for a mirror.
    let certs = tempfile::tempdir().unwrap();
    fs::create_dir(certs.path().join("mirrored.invalid")).unwrap();
    fs::write(
        certs.path().join("mirrored.invalid/hosts.toml"),
        format!(
            "[host.\"http://127.0.0.1:{}\"]\ncapabilities = [\"pull\", \"resolve\"]\n[host.\"http://127.0.0.1:{}\".auth]\nusername = \"u\"\npassword = \"p\"\n",
            fake.port, fake.port
        ),
    )
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    let store = ImageStore::open(root.path(), RegistryConfig::load(certs.path()).unwrap()).unwrap();
    let rec = store.pull("mirrored.invalid/basic:1", None).unwrap();
    assert_eq!(rec.repo_tags, ["mirrored.invalid/basic:1"]);
}

#[test]
fn bad_references_and_unknown_images() {
    let root = tempfile::tempdir().unwrap();
    let store = ImageStore::open(root.path(), RegistryConfig::empty()).unwrap();
    let err = store.pull("Not A Reference", None).unwrap_err();
    assert_eq!(err.kind(), Kind::InvalidArgument);
    assert!(err.to_string().contains("Not A Reference"));
    assert!(store.get("sha256:0123456789ab").unwrap().is_none());
    store.remove("nothing:here", NO_CONTAINERS).unwrap();
}

#[test]
fn concurrent_pulls_of_the_same_image_agree() {
    let image = Arc::new(small_image());
    let fake = fake_registry(image.clone());
    let root = tempfile::tempdir().unwrap();
    let store = Arc::new(ImageStore::open(root.path(), RegistryConfig::empty()).unwrap());
    let reference = format!("127.0.0.1:{}/honest:1", fake.port);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            let reference = reference.clone();
            thread::spawn(move || store.pull(&reference, None).map(|r| r.id))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), image.id());
    }
    let rec = store.get(&reference).unwrap().unwrap();
    let dir = &store.layer_dirs(&rec).unwrap()[0];
    assert_eq!(fs::read(dir.join("hello.txt")).unwrap(), b"hi there\n");
    assert_eq!(store.list().unwrap().len(), 1);
    let mut sink = Vec::new();
    fs::File::open(
        store
            .content()
            .path(&Digest::parse(&sha256(&image.layers[0].blob)).unwrap()),
    )
    .unwrap()
    .read_to_end(&mut sink)
    .unwrap();
    assert_eq!(sink, image.layers[0].blob);
}
