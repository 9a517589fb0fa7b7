//! A minimal QMP client: QEMU's JSON control protocol on the VM's unix socket.
//!
//! QMP greets, waits for `qmp_capabilities`, then answers each command with one
//! `{"return": ...}` or `{"error": ...}` line; asynchronous `{"event": ...}` lines may come
//! in between and are skipped. Reads have a time limit so a wedged QEMU cannot hang a test.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::{QemuError, Result};

/// How long one QMP reply may take.
const REPLY_LIMIT: Duration = Duration::from_secs(60);

pub(crate) struct Qmp {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Reads the greeting on a connected socket and leaves capabilities negotiation mode.
    pub(crate) fn handshake(stream: UnixStream, path: &Path) -> Result<Qmp> {
        let io_err = |source| QemuError::QmpIo {
            path: path.to_owned(),
            source,
        };
        stream.set_read_timeout(Some(REPLY_LIMIT)).map_err(io_err)?;
        let writer = stream.try_clone().map_err(io_err)?;
        let mut qmp = Qmp {
            path: path.to_owned(),
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = qmp.read_message()?;
        if greeting.get("QMP").is_none() {
            return Err(QemuError::QmpProtocol {
                reply: greeting.to_string(),
            });
        }
        qmp.execute(&json!({ "execute": "qmp_capabilities" }))?;
        Ok(qmp)
    }

    /// Sends `command` (`{"execute": ..., "arguments": ...}`) and returns its `return` value.
    pub(crate) fn execute(&mut self, command: &Value) -> Result<Value> {
        let mut line = command.to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .map_err(|source| QemuError::QmpIo {
                path: self.path.clone(),
                source,
            })?;
        loop {
            let mut reply = self.read_message()?;
            if let Some(value) = reply.get_mut("return") {
                return Ok(value.take());
            }
            if let Some(error) = reply.get("error") {
                let field = |name| {
                    error
                        .get(name)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned()
                };
                return Err(QemuError::QmpCommand {
                    command: command.to_string(),
                    class: field("class"),
                    desc: field("desc"),
                });
            }
            // Events (and anything else without "return"/"error") are not replies.
        }
    }

    fn read_message(&mut self) -> Result<Value> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|source| QemuError::QmpIo {
                path: self.path.clone(),
                source,
            })?;
        if n == 0 {
            return Err(QemuError::QmpClosed {
                path: self.path.clone(),
            });
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(value) if value.is_object() => Ok(value),
            _ => Err(QemuError::QmpProtocol {
                reply: line.trim_end().to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    /// A fake QEMU: checks each request line and answers with the scripted lines.
    fn fake(script: Vec<(&'static str, &'static str)>) -> (Qmp, thread::JoinHandle<()>) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let server = thread::spawn(move || {
            let mut reader = BufReader::new(theirs.try_clone().unwrap());
            let mut writer = theirs;
            writer
                .write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n")
                .unwrap();
            for (expect, answer) in script {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                assert!(line.contains(expect), "{line} lacks {expect}");
                writer.write_all(answer.as_bytes()).unwrap();
            }
        });
        let qmp = Qmp::handshake(ours, Path::new("/fake/qmp.sock")).unwrap();
        (qmp, server)
    }

    #[test]
    fn skips_events_and_returns_the_reply() {
        let (mut qmp, server) = fake(vec![
            ("qmp_capabilities", "{\"return\": {}}\n"),
            (
                "query-status",
                "{\"event\": \"RESET\"}\n{\"return\": {\"status\": \"running\"}}\n",
            ),
        ]);
        let reply = qmp.execute(&json!({"execute": "query-status"})).unwrap();
        assert_eq!(reply["status"], "running");
        server.join().unwrap();
    }

    #[test]
    fn errors_carry_class_and_description() {
        let (mut qmp, server) = fake(vec![
            ("qmp_capabilities", "{\"return\": {}}\n"),
            (
                "nonsense",
                "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command nonsense has not been found\"}}\n",
            ),
        ]);
        let err = qmp.execute(&json!({"execute": "nonsense"})).unwrap_err();
        assert!(matches!(&err, QemuError::QmpCommand { class, .. } if class == "CommandNotFound"));
        server.join().unwrap();
        // The fake hung up: the next command reports a closed connection.
        let err = qmp.execute(&json!({"execute": "quit"})).unwrap_err();
        assert!(matches!(
            err,
            QemuError::QmpClosed { .. } | QemuError::QmpIo { .. }
        ));
    }
}
