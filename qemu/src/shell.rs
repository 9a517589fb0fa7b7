//! A root shell on the guest's serial console, driven from the host: each command is framed
//! by markers that only the shell's output can contain (the typed line holds `$((N+0))`,
//! the output its value), so the echo of what was typed is never taken for the answer.
//! Works with any POSIX shell: busybox `sh` in Berth's debug image, bash behind a getty.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{QemuError, Result, Vm};

/// Numbers for the markers, unique in the process so that no two commands share one.
static NEXT_MARKER: AtomicU64 = AtomicU64::new(1000);

/// How long one knock waits for the shell's answer before knocking again.
const KNOCK: Duration = Duration::from_secs(5);

impl Vm {
    /// Waits until a shell answers on the console: knocks (types a command) until its output
    /// appears, since a shell or getty may set up its terminal after the first keys arrive.
    pub fn wait_for_shell(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let n = NEXT_MARKER.fetch_add(1, Ordering::Relaxed);
            self.send(&format!("echo @@R$(({n}+0))\n"))?;
            match self.wait_for(&format!("@@R{n}"), KNOCK) {
                Ok(_) => return Ok(()),
                Err(QemuError::Timeout { .. }) if Instant::now() < deadline => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// Runs `command` in the console's shell and returns what it printed between the
    /// markers (carriage returns removed).
    pub fn run_in_shell(&mut self, command: &str, timeout: Duration) -> Result<String> {
        let n = NEXT_MARKER.fetch_add(1, Ordering::Relaxed);
        self.send(&format!(
            "echo @@B$(({n}+0)); {command}; echo @@E$(({n}+0))\n"
        ))?;
        let end = format!("@@E{n}");
        self.wait_for(&end, timeout)?;
        Ok(between(&self.console(), &format!("@@B{n}\n"), &end))
    }
}

/// The text between the last `begin` and the last `end` of `console`, without `\r`
/// (empty when `begin` was never printed).
fn between(console: &str, begin: &str, end: &str) -> String {
    let console = console.replace('\r', "");
    let Some(from) = console.rfind(begin).map(|i| i + begin.len()) else {
        return String::new();
    };
    let to = console.rfind(end).unwrap_or(console.len()).max(from);
    console[from..to].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_is_taken_between_the_printed_markers_not_the_typed_ones() {
        let console = "# echo @@B$((7+0)); ls; echo @@E$((7+0))\r\n@@B7\r\na\r\nb\r\n@@E7\r\n# ";
        assert_eq!(between(console, "@@B7\n", "@@E7"), "a\nb\n");
        assert_eq!(between("no markers", "@@B8\n", "@@E8"), "");
    }
}
