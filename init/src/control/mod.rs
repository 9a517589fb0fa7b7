//! PID 1's control socket, `/run/berth/init.sock`: how `systemctl` talks to the service
//! manager without D-Bus. One `SOCK_SEQPACKET` connection carries one request and one
//! reply, each a single message, so neither side parses a stream:
//!
//! - request: the verb, then one argument per line (`restart\nberth-runtime.service`);
//! - reply: `ok` or `error CODE MESSAGE` (CODE is systemctl's exit status), then the body
//!   lines (`Key=Value` for `show`, tab-separated rows for `list-units`).
//!
//! PID 1 never waits on a client: connections are non-blocking and polled with the rest
//! of its descriptors, and a client that does not send within [`CLIENT_DEADLINE`] is
//! dropped. Changes (start, stop, power) are for root only, by the peer's credentials.

pub mod client;
pub mod handle;
pub mod socket;

use std::time::Duration;

/// Where PID 1 listens.
pub const CONTROL_SOCKET: &str = "/run/berth/init.sock";

/// How long a connected client has to send its request.
pub const CLIENT_DEADLINE: Duration = Duration::from_secs(5);

/// Largest request or reply message.
pub const MAX_MESSAGE: usize = 256 * 1024;

/// A request: a verb and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub verb: String,
    pub args: Vec<String>,
}

impl Request {
    pub fn new(verb: &str, args: &[String]) -> Request {
        Request {
            verb: verb.to_owned(),
            args: args.to_vec(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut text = self.verb.clone();
        for a in &self.args {
            text.push('\n');
            text.push_str(a);
        }
        text.into_bytes()
    }

    /// `None` for an empty or non-UTF-8 message.
    pub fn decode(bytes: &[u8]) -> Option<Request> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.split('\n');
        let verb = lines.next().filter(|v| !v.is_empty())?.to_owned();
        Some(Request {
            verb,
            args: lines.map(str::to_owned).collect(),
        })
    }
}

/// A reply: success with body lines, or systemctl's exit status and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok(Vec<String>),
    Error { code: u8, message: String },
}

impl Reply {
    pub fn error(code: u8, message: impl Into<String>) -> Reply {
        Reply::Error {
            code,
            message: message.into().replace('\n', " "),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let text = match self {
            Reply::Ok(body) => {
                let mut t = String::from("ok");
                for l in body {
                    t.push('\n');
                    t.push_str(l);
                }
                t
            }
            Reply::Error { code, message } => format!("error {code} {message}"),
        };
        text.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<Reply> {
        let text = String::from_utf8_lossy(bytes);
        let mut lines = text.split('\n');
        let head = lines.next()?;
        if head == "ok" {
            return Some(Reply::Ok(lines.map(str::to_owned).collect()));
        }
        let rest = head.strip_prefix("error ")?;
        let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
        Some(Reply::Error {
            code: code.parse().ok()?,
            message: message.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn request_round_trip() {
        let r = Request::new("restart", &["a.service".into(), "b.service".into()]);
        assert_eq!(r.encode(), b"restart\na.service\nb.service");
        assert_eq!(Request::decode(&r.encode()), Some(r));
        assert_eq!(Request::decode(b""), None);
        assert_eq!(Request::decode(b"\xff"), None);
    }

    #[test]
    fn reply_round_trip() {
        let ok = Reply::Ok(vec!["Id=a.service".into(), "MainPID=3".into()]);
        assert_eq!(Reply::decode(&ok.encode()), Some(ok));
        let err = Reply::error(4, "Unit x.service could not be found.\nsecond");
        assert_eq!(
            Reply::decode(&err.encode()),
            Some(Reply::Error {
                code: 4,
                message: "Unit x.service could not be found. second".into()
            })
        );
        assert_eq!(Reply::decode(b"error x y"), None);
    }

    proptest! {
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Request::decode(&bytes);
            let _ = Reply::decode(&bytes);
        }
    }
}
