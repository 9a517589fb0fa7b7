//! The Kubernetes remote-command protocol versions (k8s.io/client-go/tools/remotecommand
//! and the kubelet's server side), independent of the transport: which versions exist,
//! how one is chosen, what the error stream carries at the end, how terminal sizes
//! arrive, and the [`SessionIo`] a session (exec or attach) reads and writes.
//!
//! * `channel.k8s.io` (v1), `v2.channel.k8s.io`, `v3.channel.k8s.io`: the error stream
//!   carries a text message, and only on failure; v3 adds the resize stream.
//! * `v4.channel.k8s.io`: the error stream carries a `metav1.Status` JSON, success too,
//!   with the exit code as an `ExitCode` cause.
//! * `v5.channel.k8s.io` (WebSocket only, KEP 4006): v4 plus a close signal per stream.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Versions offered over SPDY, newest first.
pub const SPDY_PROTOCOLS: &[&str] = &[
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];

/// Subprotocols offered over WebSocket, newest first.
pub const WEBSOCKET_PROTOCOLS: &[&str] = &[
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
];

/// A negotiated protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V1,
    V2,
    V3,
    V4,
    V5,
}

impl Version {
    /// The version a protocol name stands for (`base64.channel.k8s.io` is v1 in text).
    pub fn of(protocol: &str) -> Option<Version> {
        Some(match protocol {
            "channel.k8s.io" | "base64.channel.k8s.io" => Version::V1,
            "v2.channel.k8s.io" => Version::V2,
            "v3.channel.k8s.io" => Version::V3,
            "v4.channel.k8s.io" => Version::V4,
            "v5.channel.k8s.io" => Version::V5,
            _ => return None,
        })
    }

    /// Whether a resize stream exists.
    pub fn resizes(self) -> bool {
        self >= Version::V3
    }
}

/// The first protocol the client offers (in its order of preference) that we support.
/// Clients list several in one header, comma separated, or repeat the header.
pub fn negotiate<'a>(
    offered: impl IntoIterator<Item = &'a str>,
    supported: &[&'static str],
) -> Option<&'static str> {
    offered
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|p| supported.iter().copied().find(|s| *s == p))
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The process exited with this code (128 + signal when killed).
    Exited(i32),
    /// The session could not run: the message says why.
    Failed(String),
}

#[derive(Serialize)]
struct Status<'a> {
    metadata: Empty,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct Details {
    causes: Vec<Cause>,
}

#[derive(Serialize)]
struct Cause {
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    message: String,
}

/// What the error stream carries for `outcome` in `version`; `None` means nothing
/// (success before v4).
pub fn error_stream_message(version: Version, outcome: &Outcome) -> Option<Vec<u8>> {
    let status = match outcome {
        Outcome::Exited(0) => Status {
            metadata: Empty {},
            status: "Success",
            message: None,
            reason: None,
            details: None,
            code: None,
        },
        Outcome::Exited(code) => Status {
            metadata: Empty {},
            status: "Failure",
            message: Some(format!(
                "command terminated with non-zero exit code: exit status {code}"
            )),
            reason: Some("NonZeroExitCode"),
            details: Some(Details {
                causes: vec![Cause {
                    reason: Some("ExitCode"),
                    message: code.to_string(),
                }],
            }),
            code: None,
        },
        Outcome::Failed(why) => Status {
            metadata: Empty {},
            status: "Failure",
            message: Some(format!("Internal error occurred: {why}")),
            reason: Some("InternalError"),
            details: Some(Details {
                causes: vec![Cause {
                    reason: None,
                    message: why.clone(),
                }],
            }),
            code: Some(500),
        },
    };
    if version >= Version::V4 {
        serde_json::to_vec(&status).ok()
    } else {
        status.message.map(String::into_bytes)
    }
}

/// A terminal size as the resize stream sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermSize {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

/// Splits the resize stream (JSON objects one after another, cut anywhere by the
/// transport) into sizes. A buffer past 4 KiB without a whole object is dropped.
#[derive(Debug, Default)]
pub struct ResizeDecoder {
    pending: Vec<u8>,
}

impl ResizeDecoder {
    pub fn push(&mut self, data: &[u8]) -> Vec<TermSize> {
        self.pending.extend_from_slice(data);
        let mut sizes = Vec::new();
        let mut used = 0;
        let mut iter = serde_json::Deserializer::from_slice(&self.pending).into_iter::<TermSize>();
        loop {
            match iter.next() {
                Some(Ok(size)) => {
                    sizes.push(size);
                    used = iter.byte_offset();
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(_)) => {
                    // Not a size: skip what was read so far and resynchronise.
                    used = self.pending.len();
                    break;
                }
                None => {
                    used = self.pending.len();
                    break;
                }
            }
        }
        self.pending.drain(..used);
        if self.pending.len() > 4096 {
            self.pending.clear();
        }
        sizes
    }
}

/// What a session (exec or attach) reads and writes, whatever the transport.
pub struct SessionIo {
    /// The client's input; `None` without stdin, ends when the client closes it.
    pub stdin: Option<mpsc::Receiver<Bytes>>,
    pub stdout: Option<mpsc::Sender<Bytes>>,
    pub stderr: Option<mpsc::Sender<Bytes>>,
    pub resize: Option<mpsc::Receiver<TermSize>>,
    /// Fires when the client is gone: the session stops and cleans up.
    pub cancel: CancellationToken,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn negotiation_follows_the_client() {
        assert_eq!(
            negotiate(["v4.channel.k8s.io", "v3.channel.k8s.io"], SPDY_PROTOCOLS),
            Some("v4.channel.k8s.io")
        );
        assert_eq!(
            negotiate(["v9.channel.k8s.io, v2.channel.k8s.io"], SPDY_PROTOCOLS),
            Some("v2.channel.k8s.io")
        );
        assert_eq!(negotiate(["v5.channel.k8s.io"], SPDY_PROTOCOLS), None);
        assert_eq!(negotiate(["nope"], WEBSOCKET_PROTOCOLS), None);
        assert_eq!(Version::of("base64.channel.k8s.io"), Some(Version::V1));
        assert!(Version::V3.resizes() && !Version::V2.resizes());
    }

    #[test]
    fn status_as_the_kubelet_writes_it() {
        let ok = error_stream_message(Version::V4, &Outcome::Exited(0)).unwrap();
        assert_eq!(ok, br#"{"metadata":{},"status":"Success"}"#);
        let bad = error_stream_message(Version::V4, &Outcome::Exited(3)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bad).unwrap();
        assert_eq!(v["reason"], "NonZeroExitCode");
        assert_eq!(v["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(v["details"]["causes"][0]["message"], "3");
        let failed = error_stream_message(Version::V4, &Outcome::Failed("boom".into())).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&failed).unwrap();
        assert_eq!(v["code"], 500);
        assert_eq!(error_stream_message(Version::V2, &Outcome::Exited(0)), None);
        assert!(error_stream_message(Version::V1, &Outcome::Exited(1)).is_some());
    }

    #[test]
    fn resize_objects_across_cuts() {
        let mut d = ResizeDecoder::default();
        assert_eq!(d.push(br#"{"Width":80,"#), vec![]);
        assert_eq!(
            d.push(br#""Height":24}{"Width":1,"Height":2}"#),
            vec![
                TermSize {
                    width: 80,
                    height: 24
                },
                TermSize {
                    width: 1,
                    height: 2
                }
            ]
        );
        assert_eq!(d.push(b"garbage"), vec![]);
        assert_eq!(
            d.push(br#"{"Width":5,"Height":6}"#),
            vec![TermSize {
                width: 5,
                height: 6
            }]
        );
    }

    proptest! {
        #[test]
        fn resize_decoder_never_panics_and_stays_bounded(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 0..20)
        ) {
            let mut d = ResizeDecoder::default();
            for c in chunks {
                let _ = d.push(&c);
                prop_assert!(d.pending.len() <= 4096);
            }
        }
    }
}
