//! Capture of a byte stream (QEMU's serial console, or its stderr): a thread copies it into
//! memory and into a log file as it arrives, so a test can wait for text live while the log
//! on disk is complete when the VM is gone.
//!
//! Waits search raw bytes (the console is not guaranteed UTF-8 and carries terminal escapes)
//! from a cursor: the first wait starts at the beginning of the output, each later wait just
//! after the previous match. A match may lie in an unfinished line (a shell prompt).

use std::fs::File;
use std::io::{Read, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How many console lines an error shows.
pub(crate) const TAIL_LINES: usize = 50;

#[derive(Default)]
struct State {
    bytes: Vec<u8>,
    eof: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    grew: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The reader never panics holding the lock; a poisoned lock still holds good bytes.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a wait ended without a match.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    TimedOut,
    /// The stream ended (QEMU exited).
    Closed,
}

/// A captured stream.
pub(crate) struct Capture {
    shared: Arc<Shared>,
    cursor: usize,
    reader: Option<JoinHandle<()>>,
}

impl Capture {
    /// Starts copying `source` into memory and into `log`.
    pub(crate) fn start(mut source: impl Read + Send + 'static, mut log: File) -> Capture {
        let shared = Arc::new(Shared::default());
        let writer = Arc::clone(&shared);
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut log_ok = true;
            loop {
                let n = match source.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                // The log is a copy for people; a full disk must not stop the capture.
                log_ok = log_ok && log.write_all(&buf[..n]).is_ok();
                writer.lock().bytes.extend_from_slice(&buf[..n]);
                writer.grew.notify_all();
            }
            writer.lock().eof = true;
            writer.grew.notify_all();
        });
        Capture {
            shared,
            cursor: 0,
            reader: Some(reader),
        }
    }

    /// Everything captured so far, lossily decoded.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.shared.lock().bytes).into_owned()
    }

    /// The last `n` lines captured so far.
    pub(crate) fn tail(&self, n: usize) -> String {
        tail(&self.text(), n)
    }

    /// Waits until one of `patterns` appears after the cursor; returns its index and the
    /// line holding the earliest match, and moves the cursor just past that match.
    pub(crate) fn wait_for_any(
        &mut self,
        patterns: &[&str],
        timeout: Duration,
    ) -> Result<(usize, String), Stop> {
        let deadline = Instant::now() + timeout;
        let longest = patterns.iter().map(|p| p.len()).max().unwrap_or(0);
        let mut from = self.cursor;
        let mut state = self.shared.lock();
        loop {
            if let Some((index, start)) = earliest(&state.bytes[from..], patterns) {
                let start = from + start;
                let end = start + patterns[index].len();
                self.cursor = end;
                return Ok((index, line_around(&state.bytes, start, end)));
            }
            // Nothing up to here; a later match can begin at most `longest - 1` bytes back.
            from = state
                .bytes
                .len()
                .saturating_sub(longest.saturating_sub(1))
                .max(from);
            if state.eof {
                return Err(Stop::Closed);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Stop::TimedOut);
            }
            state = self
                .shared
                .grew
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits for the end of the stream (after the process died) so the log is complete.
    pub(crate) fn finish(&mut self) {
        if let Some(reader) = self.reader.take() {
            // The reader thread does not panic; if it did, its bytes are still in memory.
            let _ = reader.join();
        }
    }
}

/// The pattern that matches first in `hay` (its index and position).
fn earliest(hay: &[u8], patterns: &[&str]) -> Option<(usize, usize)> {
    patterns
        .iter()
        .enumerate()
        .filter_map(|(i, p)| find(hay, p.as_bytes()).map(|pos| (i, pos)))
        .min_by_key(|&(i, pos)| (pos, i))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The line holding `bytes[start..end]`, readable: see [`readable`].
fn line_around(bytes: &[u8], start: usize, end: usize) -> String {
    let begin = bytes[..start]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let stop = bytes[end..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| end + i);
    readable(&String::from_utf8_lossy(&bytes[begin..stop]))
}

/// The last `n` lines of `text`, readable: see [`readable`].
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| readable(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `line` without carriage returns and terminal escape sequences (firmware and shells
/// colour and position their output), so it reads well in an error and compares simply.
fn readable(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {}
            '\x1b' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte in '@'..='~'.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // Other escapes are two characters (ESC c, ESC 7, ...); `ESC ( B` is three.
                Some('(' | ')') => {
                    chars.next();
                }
                _ => {}
            },
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn capture() -> (Capture, UnixStream, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let log = File::create(dir.path().join("log")).unwrap();
        let (ours, theirs) = UnixStream::pair().unwrap();
        (Capture::start(theirs, log), ours, dir)
    }

    const SHORT: Duration = Duration::from_millis(100);
    const LONG: Duration = Duration::from_secs(60);

    #[test]
    fn waits_move_a_cursor_past_each_match() {
        let (mut cap, mut input, _dir) = capture();
        input
            .write_all(b"boot\r\nberth: ready one\r\nberth: ready two\nShell> ")
            .unwrap();
        let (i, line) = cap.wait_for_any(&["ready"], LONG).unwrap();
        assert_eq!((i, line.as_str()), (0, "berth: ready one"));
        let (_, line) = cap.wait_for_any(&["ready"], LONG).unwrap();
        assert_eq!(line, "berth: ready two");
        assert_eq!(cap.wait_for_any(&["ready"], SHORT), Err(Stop::TimedOut));
        // An unfinished line (a prompt) matches too.
        assert_eq!(cap.wait_for_any(&["Shell>"], LONG).unwrap().1, "Shell> ");
    }

    #[test]
    fn earliest_match_wins_and_split_writes_match() {
        let (mut cap, mut input, _dir) = capture();
        input.write_all(b"x berth: FAIL").unwrap();
        assert_eq!(
            cap.wait_for_any(&["berth: ready", "berth: FAILED"], SHORT),
            Err(Stop::TimedOut)
        );
        input.write_all(b"ED root\nberth: ready\n").unwrap();
        let (i, line) = cap
            .wait_for_any(&["berth: ready", "berth: FAILED"], LONG)
            .unwrap();
        assert_eq!((i, line.as_str()), (1, "x berth: FAILED root"));
    }

    #[test]
    fn end_of_stream_stops_the_wait_and_the_log_is_complete() {
        let (mut cap, mut input, dir) = capture();
        input.write_all(b"last words\n").unwrap();
        drop(input);
        assert_eq!(cap.wait_for_any(&["never"], LONG), Err(Stop::Closed));
        cap.finish();
        assert_eq!(
            std::fs::read(dir.path().join("log")).unwrap(),
            b"last words\n"
        );
        assert_eq!(cap.text(), "last words\n");
    }

    #[test]
    fn escapes_are_removed_from_lines() {
        let raw = "\x1b[08;01H\x1b[1m\x1b[33m\x1b[40mShell> \x1b[0m\x1b[=3h\x1b(Bok\x1bc\r";
        assert_eq!(readable(raw), "Shell> ok");
        assert_eq!(readable("plain"), "plain");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let text: String = (0..100).map(|i| format!("line {i}\r\n")).collect();
        let t = tail(&text, 3);
        assert_eq!(t, "line 97\nline 98\nline 99");
        assert_eq!(tail("", 3), "");
    }
}
