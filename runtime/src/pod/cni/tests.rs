//! The setup/teardown call sequence against fake plugins (shell scripts that record their
//! calls), so ordering, chaining, cleanup after failure and idempotency are checked without
//! root or real networking. `/proc/self/ns/net` stands in for the pod netns: the fakes never
//! enter it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::*;

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    cni: Cni,
}

const RESULT_A: &str = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"address":"10.1.2.3/24","interface":0}]}"#;

impl Fixture {
    fn new(list: Value) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        for d in ["conf", "bin", "cache", "calls"] {
            std::fs::create_dir(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join("conf/10-test.conflist"), list.to_string()).unwrap();
        // Every fake logs "COMMAND IFNAME NAME NETNS" and keeps its stdin per call.
        let common = format!(
            "in=$(cat)\nn=$(basename $0)\necho \"$CNI_COMMAND $CNI_IFNAME $n $CNI_NETNS\" >> {calls}/log\n\
             printf '%s' \"$in\" > {calls}/$n-$CNI_COMMAND-$CNI_IFNAME.json\n",
            calls = dir.join("calls").display()
        );
        let fake = |name: &str, add: &str| {
            let p = dir.join("bin").join(name);
            std::fs::write(
                &p,
                format!("#!/bin/sh\n{common}[ \"$CNI_COMMAND\" = ADD ] || exit 0\n{add}\n"),
            )
            .unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        fake(
            "loopback",
            r#"echo '{"cniVersion":"0.3.1","interfaces":[{"name":"lo"}]}'"#,
        );
        fake("a", &format!("echo '{RESULT_A}'"));
        fake("b", &format!("echo '{RESULT_A}'"));
        fake(
            "fail",
            r#"echo '{"cniVersion":"1.0.0","code":11,"msg":"no addresses"}'; exit 1"#,
        );
        let cni = Cni::new(CniConfig {
            conf_dir: dir.join("conf"),
            bin_dirs: vec![dir.join("missing"), dir.join("bin")],
            cache_dir: dir.join("cache"),
        });
        Fixture {
            _tmp: tmp,
            dir,
            cni,
        }
    }

    fn calls(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.join("calls/log")).unwrap_or_default();
        let _ = std::fs::remove_file(self.dir.join("calls/log"));
        let mut calls: Vec<String> = log
            .lines()
            .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
            .collect();
        // `lo` is added side by side with eth0, so its place among the eth0 ADDs varies;
        // it always comes before any DEL. Put it first to compare the rest in order.
        if let Some(at) = calls.iter().position(|c| c == "ADD lo loopback") {
            let lo = calls.remove(at);
            assert!(
                calls[..at].iter().all(|c| c.starts_with("ADD")),
                "{calls:?}"
            );
            calls.insert(0, lo);
        }
        calls
    }

    fn stdin(&self, name: &str) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.join("calls").join(name)).unwrap()).unwrap()
    }
}

fn list(types: &[&str]) -> Value {
    let plugins: Vec<Value> = types
        .iter()
        .map(|t| {
            if *t == "b" {
                json!({"type": t, "capabilities": {"portMappings": true}})
            } else {
                json!({"type": t})
            }
        })
        .collect();
    json!({"cniVersion": "1.0.0", "name": "testnet", "plugins": plugins})
}

fn pod() -> PodIdentity {
    PodIdentity {
        name: "web".into(),
        namespace: "default".into(),
        uid: "u1".into(),
    }
}

fn mapping() -> Vec<HostPort> {
    vec![HostPort {
        protocol: PortProtocol::Tcp,
        container_port: 80,
        host_port: 8080,
        host_ip: None,
    }]
}

fn netns() -> &'static Path {
    Path::new("/proc/self/ns/net")
}

#[test]
fn setup_chains_results_and_teardown_reverses() {
    let f = Fixture::new(list(&["a", "b"]));
    f.cni.status().unwrap();
    let r = f.cni.setup("pod1", netns(), &pod(), &mapping()).unwrap();
    assert_eq!(r.ips, vec!["10.1.2.3".parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(f.calls(), ["ADD lo loopback", "ADD eth0 a", "ADD eth0 b"]);

    let a = f.stdin("a-ADD-eth0.json");
    assert_eq!(
        a,
        json!({"type": "a", "name": "testnet", "cniVersion": "1.0.0"})
    );
    let b = f.stdin("b-ADD-eth0.json");
    assert_eq!(
        b["prevResult"],
        serde_json::from_str::<Value>(RESULT_A).unwrap()
    );
    assert_eq!(b["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
    assert!(cache::read(&f.dir.join("cache"), "pod1")
        .unwrap()
        .unwrap()
        .result
        .is_some());

    f.cni
        .teardown("pod1", Some(netns()), &pod(), &mapping())
        .unwrap();
    assert_eq!(f.calls(), ["DEL eth0 b", "DEL eth0 a", "DEL lo loopback"]);
    let b_del = f.stdin("b-DEL-eth0.json");
    assert_eq!(
        b_del["prevResult"],
        serde_json::from_str::<Value>(RESULT_A).unwrap()
    );
    assert_eq!(
        b_del["runtimeConfig"]["portMappings"][0]["containerPort"],
        80
    );
    assert_eq!(cache::read(&f.dir.join("cache"), "pod1").unwrap(), None);

    // Again, without cache and with the netns gone: DEL still reaches the plugins.
    f.cni.teardown("pod1", None, &pod(), &mapping()).unwrap();
    assert_eq!(f.calls(), ["DEL eth0 b", "DEL eth0 a"]);
    assert!(f.stdin("a-DEL-eth0.json").get("prevResult").is_none());
}

#[test]
fn failed_add_deletes_what_was_added() {
    let f = Fixture::new(list(&["a", "fail", "b"]));
    let e = f.cni.setup("pod2", netns(), &pod(), &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "CNI plugin fail ADD failed (code 11): no addresses"
    );
    assert_eq!(
        f.calls(),
        [
            "ADD lo loopback",
            "ADD eth0 a",
            "ADD eth0 fail",
            "DEL eth0 b",
            "DEL eth0 fail",
            "DEL eth0 a",
            "DEL lo loopback"
        ]
    );
    assert_eq!(
        f.stdin("fail-DEL-eth0.json")["prevResult"],
        serde_json::from_str::<Value>(RESULT_A).unwrap()
    );
    assert_eq!(cache::read(&f.dir.join("cache"), "pod2").unwrap(), None);
}

#[test]
fn teardown_uses_the_cached_config_after_the_config_changed() {
    let f = Fixture::new(list(&["a"]));
    f.cni.setup("pod3", netns(), &pod(), &[]).unwrap();
    std::fs::write(
        f.dir.join("conf/10-test.conflist"),
        list(&["b"]).to_string(),
    )
    .unwrap();
    f.calls();
    f.cni.teardown("pod3", None, &pod(), &[]).unwrap();
    assert_eq!(f.calls(), ["DEL eth0 a"]);
}

#[test]
fn teardown_without_config_or_cache_is_a_no_op() {
    let f = Fixture::new(list(&["a"]));
    std::fs::remove_file(f.dir.join("conf/10-test.conflist")).unwrap();
    f.cni.teardown("pod4", None, &pod(), &[]).unwrap();
    assert!(f.calls().is_empty());
}

#[test]
fn status_reasons() {
    let f = Fixture::new(list(&["a", "bridge"]));
    let bins = format!(
        "{}, {}",
        f.dir.join("missing").display(),
        f.dir.join("bin").display()
    );
    assert_eq!(
        f.cni.status().unwrap_err(),
        format!("NetworkPluginNotReady: plugin bridge not found in [{bins}]")
    );
    let e = f.cni.setup("pod5", netns(), &pod(), &[]).unwrap_err();
    assert_eq!(
        crate::error::ErrorKind::kind(&e),
        crate::error::Kind::Unavailable
    );
    std::fs::remove_file(f.dir.join("conf/10-test.conflist")).unwrap();
    assert_eq!(
        f.cni.status().unwrap_err(),
        format!(
            "NetworkPluginNotReady: no network config found in {}",
            f.dir.join("conf").display()
        )
    );
}

#[test]
fn bad_requests_call_no_plugin() {
    let f = Fixture::new(list(&["a"]));
    let mut bad = pod();
    bad.namespace = "x;y".into();
    let e = f.cni.setup("pod6", netns(), &bad, &[]).unwrap_err();
    assert!(
        e.to_string().starts_with("config.metadata.namespace:"),
        "{e}"
    );
    assert!(f.cni.setup("../etc", netns(), &pod(), &[]).is_err());
    let e = f
        .cni
        .setup("pod6", &f.dir.join("conf"), &pod(), &[])
        .unwrap_err();
    assert!(
        matches!(
            e,
            PodError::Io {
                op: "use network namespace",
                ..
            }
        ),
        "{e}"
    );
    assert!(f.calls().is_empty());
}
