//! Reading what plugins print: ADD results (spec 0.3.x/0.4.0 and 1.0.0 shapes, which
//! differ only in the per-IP `version` field we ignore) and error objects. Plugin output
//! is untrusted input: everything is checked and nothing panics.

use std::net::IpAddr;

use serde::Deserialize;
use serde_json::Value;

/// What the runtime keeps of a successful ADD.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkResult {
    /// The pod's addresses on the pod interface, IPv4 first (the first is the pod IP).
    pub ips: Vec<IpAddr>,
    /// Interfaces the plugins reported, host side and pod side.
    pub interfaces: Vec<Interface>,
    /// The result as the last plugin printed it (cached for DEL's `prevResult`).
    pub raw: Value,
}

/// An interface of a CNI result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// MAC address, if reported.
    #[serde(default)]
    pub mac: String,
    /// The netns path for interfaces inside the pod, empty for host interfaces.
    #[serde(default)]
    pub sandbox: String,
}

#[derive(Deserialize)]
struct RawResult {
    #[serde(default)]
    interfaces: Vec<Interface>,
    #[serde(default)]
    ips: Vec<RawIp>,
}

#[derive(Deserialize)]
struct RawIp {
    address: String,
    #[serde(default)]
    interface: Option<usize>,
}

/// Parses a result. The pod IPs are the addresses of the interface named `ifname` inside
/// the sandbox, or those not tied to any interface.
pub fn parse_result(raw: Value, ifname: &str) -> Result<NetworkResult, String> {
    if !raw.is_object() {
        return Err("result is not a JSON object".into());
    }
    let parsed = RawResult::deserialize(&raw).map_err(|e| format!("bad result: {e}"))?;
    let mut ips = Vec::new();
    for (i, ip) in parsed.ips.iter().enumerate() {
        let addr = ip
            .address
            .split_once('/')
            .map_or(ip.address.as_str(), |(a, _)| a);
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("ips[{i}].address {:?} is not an IP/prefix", ip.address))?;
        let on_pod_interface = match ip.interface {
            None => true,
            Some(n) => {
                let iface = parsed
                    .interfaces
                    .get(n)
                    .ok_or_else(|| format!("ips[{i}].interface {n} is out of range"))?;
                iface.name == ifname && !iface.sandbox.is_empty()
            }
        };
        if on_pod_interface && !ips.contains(&addr) {
            ips.push(addr);
        }
    }
    // Stable: keeps the plugin's order within each family.
    ips.sort_by_key(|ip| ip.is_ipv6());
    Ok(NetworkResult {
        ips,
        interfaces: parsed.interfaces,
        raw,
    })
}

/// A plugin's error report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// The CNI error code (0 if the plugin printed no error object).
    pub code: u64,
    /// `msg`, or the plugin's output when it printed no error object.
    pub msg: String,
    /// `details`.
    pub details: String,
}

#[derive(Deserialize)]
struct RawError {
    code: u64,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    details: String,
}

/// Reads the error of a failed plugin from its stdout (the spec's place), falling back to
/// whatever it printed.
pub fn parse_error(stdout: &[u8], stderr: &[u8]) -> PluginError {
    if let Ok(e) = serde_json::from_slice::<RawError>(stdout) {
        return PluginError {
            code: e.code,
            msg: e.msg,
            details: e.details,
        };
    }
    let text = [stdout, stderr]
        .iter()
        .map(|b| String::from_utf8_lossy(b).trim().to_string())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let msg = if text.is_empty() {
        "no output".to_string()
    } else {
        truncate(text, 4096)
    };
    PluginError {
        code: 0,
        msg,
        details: String::new(),
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::cni::arb::json_value;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn result_1_0_0_from_bridge() {
        let raw = json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "cni0", "mac": "aa:aa:aa:aa:aa:aa"},
                {"name": "veth1", "mac": "bb:bb:bb:bb:bb:bb"},
                {"name": "eth0", "mac": "cc:cc:cc:cc:cc:cc", "sandbox": "/run/ns/net"}
            ],
            "ips": [
                {"address": "fd00::5/64", "gateway": "fd00::1", "interface": 2},
                {"address": "10.88.0.5/16", "gateway": "10.88.0.1", "interface": 2},
                {"address": "10.88.0.1/16", "interface": 0}
            ],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dns": {}
        });
        let r = parse_result(raw.clone(), "eth0").unwrap();
        let want: Vec<IpAddr> = vec!["10.88.0.5".parse().unwrap(), "fd00::5".parse().unwrap()];
        assert_eq!(r.ips, want);
        assert_eq!(r.interfaces.len(), 3);
        assert_eq!(r.interfaces[2].sandbox, "/run/ns/net");
        assert_eq!(r.raw, raw);
    }

    #[test]
    fn result_0_4_0_with_versions_and_no_interfaces() {
        let raw = json!({
            "cniVersion": "0.4.0",
            "ips": [{"version": "4", "address": "192.168.1.7/24", "gateway": "192.168.1.1"}]
        });
        let r = parse_result(raw, "eth0").unwrap();
        assert_eq!(r.ips, vec!["192.168.1.7".parse::<IpAddr>().unwrap()]);
        assert!(r.interfaces.is_empty());
    }

    #[test]
    fn bad_results() {
        assert!(parse_result(json!([]), "eth0").is_err());
        assert!(parse_result(json!({"ips": [{"address": "nope"}]}), "eth0").is_err());
        let e = parse_result(
            json!({"ips": [{"address": "1.2.3.4/8", "interface": 3}]}),
            "eth0",
        )
        .unwrap_err();
        assert_eq!(e, "ips[0].interface 3 is out of range");
        assert!(parse_result(json!({"ips": "x"}), "eth0").is_err());
    }

    #[test]
    fn errors() {
        let e = parse_error(
            br#"{"cniVersion":"1.0.0","code":7,"msg":"invalid network config","details":"bridge: x"}"#,
            b"",
        );
        assert_eq!(
            e,
            PluginError {
                code: 7,
                msg: "invalid network config".into(),
                details: "bridge: x".into()
            }
        );
        let e = parse_error(b"", b"panic: oops\n");
        assert_eq!(
            e,
            PluginError {
                code: 0,
                msg: "panic: oops".into(),
                details: String::new()
            }
        );
        assert_eq!(parse_error(b"", b"").msg, "no output");
        assert!(parse_error(&[b'x'; 10000], b"").msg.len() < 4100);
    }

    proptest! {
        #[test]
        fn result_parser_never_panics(v in json_value()) {
            let _ = parse_result(v, "eth0");
        }

        #[test]
        fn error_parser_never_panics(out in prop::collection::vec(any::<u8>(), 0..200), v in json_value()) {
            let _ = parse_error(&out, &out);
            let _ = parse_error(v.to_string().as_bytes(), b"");
        }
    }
}
