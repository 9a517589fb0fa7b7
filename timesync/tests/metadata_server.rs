//! `berth-metadata` against a metadata server in the test: GCE's protocol (the request
//! header required, the response header given), AWS IMDSv2's token flow (a GET without
//! the token is refused with 401), Azure IMDS (JSON, base64 user data); a server that
//! hangs, one that answers garbage, one that is not GCE's; and a node with no cloud,
//! which asks nobody.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Flavor {
    /// `impostor`: answers without the `Metadata-Flavor: Google` header.
    Gce {
        impostor: bool,
    },
    Aws,
    Azure,
    /// Accepts, reads the request, never answers.
    Hang,
    /// Answers bytes that are not HTTP.
    Garbage,
}

const GCE_USER_DATA: &str = "#cloud-config\nwrite_files: []\n";
const AWS_TOKEN: &str = "AQAEAFake-Token==";

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(flavor: Flavor) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopping) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let Some(request) = read_request(&stream) else {
                    continue;
                };
                seen.lock().unwrap().push(request.clone());
                match flavor {
                    Flavor::Hang => held.push(stream),
                    Flavor::Garbage => {
                        let _ = stream.write_all(b"\x00\x01\x02 this is not HTTP\r\n\r\n");
                    }
                    _ => {
                        let (status, headers, body) = answer(flavor, &request);
                        respond(&mut stream, status, &headers, &body);
                    }
                }
            }
        });
        Server {
            addr,
            requests,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let request = Request {
        method,
        path,
        headers,
    };
    let length: usize = request
        .header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some(request)
}

fn respond(stream: &mut TcpStream, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

type Answer = (u16, Vec<(&'static str, &'static str)>, Vec<u8>);

fn answer(flavor: Flavor, request: &Request) -> Answer {
    let text = |status, headers, body: &str| (status, headers, body.as_bytes().to_vec());
    match flavor {
        Flavor::Gce { impostor } => {
            let headers = if impostor {
                vec![]
            } else {
                vec![("Metadata-Flavor", "Google")]
            };
            if request.header("Metadata-Flavor") != Some("Google") {
                return text(403, headers, "Missing Metadata-Flavor:Google header.");
            }
            match request.path.as_str() {
                "/computeMetadata/v1/instance/hostname" => {
                    text(200, headers, "node-1.us-central1-a.c.berth-test.internal")
                }
                "/computeMetadata/v1/instance/attributes/user-data" => {
                    text(200, headers, GCE_USER_DATA)
                }
                _ => text(404, headers, "not found"),
            }
        }
        Flavor::Aws => {
            if request.method == "PUT" && request.path == "/latest/api/token" {
                return match request.header("X-aws-ec2-metadata-token-ttl-seconds") {
                    Some(_) => text(200, vec![], AWS_TOKEN),
                    None => text(400, vec![], "missing ttl"),
                };
            }
            if request.header("X-aws-ec2-metadata-token") != Some(AWS_TOKEN) {
                return text(401, vec![], "Unauthorized");
            }
            match request.path.as_str() {
                "/latest/meta-data/local-hostname" => text(200, vec![], "ip-10-1-2-3.ec2.internal"),
                // This instance has no user data.
                _ => text(404, vec![], "Not Found"),
            }
        }
        Flavor::Azure => {
            if request.header("Metadata") != Some("true") {
                return text(
                    400,
                    vec![],
                    "{\"error\":\"Bad request. Required metadata header not specified\"}",
                );
            }
            if request.path == "/metadata/instance?api-version=2021-02-01" {
                text(
                    200,
                    vec![],
                    r#"{"compute":{"name":"vm-name","osProfile":{"computerName":"azure-node"}}}"#,
                )
            } else if request
                .path
                .starts_with("/metadata/instance/compute/userData?")
            {
                let encoded = base64::engine::general_purpose::STANDARD.encode("azure user data");
                (200, vec![], encoded.into_bytes())
            } else {
                text(404, vec![], "")
            }
        }
        Flavor::Hang | Flavor::Garbage => unreachable!("answered elsewhere"),
    }
}

struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new(dmi: &[(&str, &str)]) -> Node {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("dmi")).unwrap();
        for (name, value) in dmi {
            std::fs::write(dir.path().join("dmi").join(name), format!("{value}\n")).unwrap();
        }
        Node { dir }
    }

    fn hostname_file(&self) -> PathBuf {
        self.dir.path().join("run/berth/metadata/hostname")
    }

    fn user_data_file(&self) -> PathBuf {
        self.dir.path().join("run/berth/user-data")
    }

    fn run(&self, base: &str, extra: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_berth-metadata"))
            .arg("--dmi-dir")
            .arg(self.dir.path().join("dmi"))
            .args(["--base-url", base])
            .arg("--hostname-file")
            .arg(self.hostname_file())
            .arg("--user-data-file")
            .arg(self.user_data_file())
            // The host's own name stays; the VM test checks the name is set.
            .arg("--no-set-hostname")
            .args(extra)
            .output()
            .unwrap()
    }

    fn nothing_written(&self) -> bool {
        !self.dir.path().join("run").exists()
    }
}

const GCE: &[(&str, &str)] = &[
    ("sys_vendor", "Google"),
    ("product_name", "Google Compute Engine"),
];

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn gce_host_name_and_user_data_arrive() {
    let server = Server::start(Flavor::Gce { impostor: false });
    let node = Node::new(GCE);
    let output = node.run(&server.url(), &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(node.hostname_file()).unwrap(),
        "node-1\n"
    );
    assert_eq!(
        std::fs::read_to_string(node.user_data_file()).unwrap(),
        GCE_USER_DATA
    );
    assert_eq!(mode(&node.user_data_file()), 0o600);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests
        .iter()
        .all(|r| r.method == "GET" && r.header("Metadata-Flavor") == Some("Google")));
}

#[test]
fn a_server_that_is_not_gces_is_not_believed() {
    let server = Server::start(Flavor::Gce { impostor: true });
    let node = Node::new(GCE);
    let output = node.run(&server.url(), &[]);
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(
        err.contains("lacks the header Metadata-Flavor: Google"),
        "{err}"
    );
    assert!(
        err.contains("/computeMetadata/v1/instance/hostname"),
        "{err}"
    );
    assert!(node.nothing_written());
}

#[test]
fn aws_imdsv2_token_first_then_host_name() {
    let server = Server::start(Flavor::Aws);
    let node = Node::new(&[("sys_vendor", "Amazon EC2"), ("bios_vendor", "Amazon EC2")]);
    // A stale user-data file from an earlier run goes: this instance has none.
    std::fs::create_dir_all(node.user_data_file().parent().unwrap()).unwrap();
    std::fs::write(node.user_data_file(), "stale").unwrap();
    let output = node.run(&server.url(), &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(node.hostname_file()).unwrap(),
        "ip-10-1-2-3\n"
    );
    assert!(!node.user_data_file().exists());
    let requests = server.requests();
    assert_eq!(requests[0].method, "PUT");
    assert_eq!(requests[0].path, "/latest/api/token");
    assert!(requests[0]
        .header("X-aws-ec2-metadata-token-ttl-seconds")
        .is_some());
    assert!(requests[1..]
        .iter()
        .all(|r| r.header("X-aws-ec2-metadata-token") == Some(AWS_TOKEN)));
    assert_eq!(requests.len(), 3);
}

#[test]
fn aws_refuses_a_get_without_the_token() {
    // The server side of the flow: what IMDSv1 would do is refused, so the client's
    // success above proves it used the token.
    let server = Server::start(Flavor::Aws);
    let http = berth_timesync::metadata::Http::new(Default::default());
    let reply = http
        .get(
            &format!("{}/latest/meta-data/local-hostname", server.url()),
            &[],
        )
        .unwrap();
    assert_eq!(reply.status, 401);
}

#[test]
fn azure_host_name_and_base64_user_data_arrive() {
    let server = Server::start(Flavor::Azure);
    let node = Node::new(&[
        ("sys_vendor", "Microsoft Corporation"),
        ("chassis_asset_tag", "7783-7084-3265-9085-8269-3286-77"),
    ]);
    let output = node.run(&server.url(), &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(node.hostname_file()).unwrap(),
        "azure-node\n"
    );
    assert_eq!(
        std::fs::read_to_string(node.user_data_file()).unwrap(),
        "azure user data"
    );
    assert!(server
        .requests()
        .iter()
        .all(|r| r.header("Metadata") == Some("true")));
}

#[test]
fn a_hanging_server_times_out_and_nothing_is_written() {
    let server = Server::start(Flavor::Hang);
    let node = Node::new(GCE);
    let output = node.run(&server.url(), &["--timeout", "0.5", "--tries", "2"]);
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "FAILED GCE metadata: GET {}/computeMetadata/v1/instance/hostname",
            server.url()
        )),
        "{err}"
    );
    assert!(err.contains("(after 2 tries)"), "{err}");
    assert!(err.to_lowercase().contains("timeout"), "{err}");
    assert!(node.nothing_written());
    // Both tries reached the server; nothing more was asked after the first request failed.
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn garbage_is_an_error_and_nothing_is_written() {
    let server = Server::start(Flavor::Garbage);
    let node = Node::new(GCE);
    let output = node.run(&server.url(), &["--tries", "1"]);
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(err.contains("FAILED GCE metadata: GET"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(node.nothing_written());
}

#[test]
fn no_cloud_asks_nobody() {
    let server = Server::start(Flavor::Gce { impostor: false });
    let node = Node::new(&[
        ("sys_vendor", "QEMU"),
        ("product_name", "Standard PC (Q35 + ICH9, 2009)"),
    ]);
    let output = node.run(&server.url(), &[]);
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(
        err.contains("no cloud in SMBIOS (sys_vendor \"QEMU\""),
        "{err}"
    );
    assert!(server.requests().is_empty());
    assert!(node.nothing_written());
}
