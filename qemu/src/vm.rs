//! A running VM: its QEMU process, captured console, QMP connection and temp dir.
//!
//! Dropping a [`Vm`] kills QEMU and reaps it, so no VM outlives its test even when the test
//! panics; QEMU also gets `SIGKILL` if the thread that started it dies without unwinding
//! (`PR_SET_PDEATHSIG`), so start and drop a VM on the same thread. A named VM leaves its
//! serial log, QEMU's stderr and command line under `target/test-artifacts/<name>/`.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::accel::Accel;
use crate::builder::{temp_dir, QemuBuilder};
use crate::cmdline::{Plan, Wiring};
use crate::console::{Capture, Stop, TAIL_LINES};
use crate::error::{QemuError, Result};
use crate::qmp::Qmp;

/// How long QEMU may take to open its QMP socket.
const QMP_CONNECT_LIMIT: Duration = Duration::from_secs(60);
/// How long QEMU may take to exit after `quit`, or after its console closed.
const EXIT_LIMIT: Duration = Duration::from_secs(30);

/// A VM started by [`QemuBuilder::spawn`].
pub struct Vm {
    child: Child,
    status: Option<ExitStatus>,
    stdin: Option<ChildStdin>,
    console: Capture,
    stderr: Capture,
    qmp: Option<Qmp>,
    accel: Accel,
    serial_log: PathBuf,
    stderr_log: PathBuf,
    vars: PathBuf,
    command_line: String,
    artifacts: Option<PathBuf>,
    // Last, so it is removed after everything above is closed.
    dir: tempfile::TempDir,
}

impl Vm {
    pub(crate) fn start(builder: QemuBuilder) -> Result<Vm> {
        let (disk, firmware) = builder.checked_inputs()?;
        let accel = builder.chosen_accel()?;
        let dir = temp_dir()?;
        let vars = builder.vars_path(&firmware, dir.path())?;
        let qmp_path = dir.path().join("qmp.sock");
        let serial_log = builder
            .serial_log
            .clone()
            .unwrap_or_else(|| dir.path().join("serial.log"));
        let stderr_log = dir.path().join("qemu.stderr");
        let plan = Plan {
            accel,
            firmware: &firmware,
            vars: &vars,
            disk: &disk,
            wiring: Wiring::Captured { qmp: &qmp_path },
        };
        let args = builder.args(&plan);
        let command_line = shell_line(&builder.qemu, &args);

        let create = |path: &Path| {
            fs::File::create(path).map_err(|source| QemuError::CreateLog {
                path: path.to_owned(),
                source,
            })
        };
        let (serial_file, stderr_file) = (create(&serial_log)?, create(&stderr_log)?);

        let mut cmd = Command::new(&builder.qemu);
        cmd.args(&args)
            // `snapshot=on` puts its overlay in $TMPDIR: keep it in the VM's own dir.
            .env("TMPDIR", dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let parent = nix::unistd::getpid();
        // SAFETY: the closure runs in the forked child before exec and only makes two
        // async-signal-safe system calls (prctl, getppid); it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
                if nix::unistd::getppid() != parent {
                    // The parent died before prctl took effect.
                    return Err(std::io::ErrorKind::BrokenPipe.into());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|err| builder.spawn_error(err))?;
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (Some(stdout), Some(stderr)) = (stdout, stderr) else {
            // Cannot happen with piped stdio; do not leave QEMU running if it does.
            let _ = child.kill();
            let _ = child.wait();
            return Err(QemuError::Spawn {
                binary: builder.qemu,
                source: std::io::Error::other("QEMU's stdout or stderr is not a pipe"),
            });
        };
        let artifacts = builder.name.as_deref().map(|name| {
            builder
                .artifacts_dir
                .clone()
                .unwrap_or_else(|| crate::artifacts_root().join(name))
        });

        let mut vm = Vm {
            child,
            status: None,
            stdin,
            console: Capture::start(stdout, serial_file),
            stderr: Capture::start(stderr, stderr_file),
            qmp: None,
            accel,
            serial_log,
            stderr_log,
            vars,
            command_line,
            artifacts,
            dir,
        };
        // On failure `vm` is dropped here, which kills QEMU and keeps its artifacts.
        vm.connect_qmp(&qmp_path)?;
        Ok(vm)
    }

    fn connect_qmp(&mut self, path: &Path) -> Result<()> {
        let deadline = Instant::now() + QMP_CONNECT_LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().map_err(QemuError::Wait)? {
                self.status = Some(status);
                self.stderr.finish();
                return Err(QemuError::StartFailed {
                    status,
                    stderr: self.stderr.text(),
                });
            }
            match UnixStream::connect(path) {
                Ok(stream) => {
                    self.qmp = Some(Qmp::handshake(stream, path)?);
                    return Ok(());
                }
                Err(source) if Instant::now() >= deadline => {
                    return Err(QemuError::QmpConnect {
                        path: path.to_owned(),
                        timeout: QMP_CONNECT_LIMIT,
                        source,
                    });
                }
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Waits until `pattern` appears on the console and returns the line holding it (without
    /// carriage returns and terminal escapes; the search itself is on the raw bytes).
    ///
    /// The first wait searches from the start of the output, each later wait from just
    /// after the previous match, so successive waits follow the boot in order. On time-out
    /// the error shows the last 50 console lines; if QEMU exits first, its status and stderr.
    pub fn wait_for(&mut self, pattern: &str, timeout: Duration) -> Result<String> {
        self.wait_for_any(&[pattern], timeout).map(|(_, line)| line)
    }

    /// Like [`Vm::wait_for`] for several patterns (e.g. `["berth: ready", "berth: FAILED"]`):
    /// returns the index of the pattern that appeared first, and its line.
    pub fn wait_for_any(
        &mut self,
        patterns: &[&str],
        timeout: Duration,
    ) -> Result<(usize, String)> {
        let owned = || patterns.iter().map(|p| (*p).to_owned()).collect();
        match self.console.wait_for_any(patterns, timeout) {
            Ok(found) => Ok(found),
            Err(Stop::TimedOut) => Err(QemuError::Timeout {
                patterns: owned(),
                timeout,
                tail: self.console.tail(TAIL_LINES),
            }),
            Err(Stop::Closed) => {
                let status = self.wait_exit(EXIT_LIMIT)?;
                Err(QemuError::Exited {
                    patterns: owned(),
                    status,
                    tail: self.console.tail(TAIL_LINES),
                    stderr: self.stderr.text(),
                })
            }
        }
    }

    /// Everything the serial console printed so far.
    pub fn console(&self) -> String {
        self.console.text()
    }

    /// What QEMU printed on its stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Types `text` on the serial console as it is (end a command with `"\r"` or `"\n"`).
    pub fn send(&mut self, text: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().ok_or(QemuError::ConsoleClosed)?;
        stdin
            .write_all(text.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(QemuError::Send)
    }

    /// Runs a QMP command, e.g. `json!({"execute": "query-status"})`; returns its `return`.
    pub fn qmp(&mut self, command: &Value) -> Result<Value> {
        match self.qmp.as_mut() {
            Some(qmp) => qmp.execute(command),
            None => Err(QemuError::QmpClosed {
                path: self.dir.path().join("qmp.sock"),
            }),
        }
    }

    /// Presses the ACPI power button; the guest decides what to do (see [`Vm::wait_exit`]).
    pub fn powerdown(&mut self) -> Result<()> {
        self.qmp(&json!({ "execute": "system_powerdown" }))
            .map(drop)
    }

    /// Resets the machine, as the reset button does.
    pub fn reset(&mut self) -> Result<()> {
        self.qmp(&json!({ "execute": "system_reset" })).map(drop)
    }

    /// Ends QEMU at once (QMP `quit`) and returns its exit status.
    pub fn quit(&mut self) -> Result<ExitStatus> {
        if self.status.is_none() {
            match self.qmp(&json!({ "execute": "quit" })) {
                // QEMU may close the socket before its reply arrives.
                Ok(_) | Err(QemuError::QmpClosed { .. } | QemuError::QmpIo { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        self.wait_exit(EXIT_LIMIT)
    }

    /// Waits for QEMU to exit on its own (after a guest shutdown, or `-no-reboot` and a reboot).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.status {
                return Ok(status);
            }
            if let Some(status) = self.child.try_wait().map_err(QemuError::Wait)? {
                self.status = Some(status);
                self.qmp = None;
                continue;
            }
            if Instant::now() >= deadline {
                return Err(QemuError::ExitTimeout { timeout });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The accelerator this VM runs with.
    pub fn accel(&self) -> Accel {
        self.accel
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The file the serial console is written to.
    pub fn serial_log(&self) -> &Path {
        &self.serial_log
    }

    /// The UEFI variable store this VM writes (a private copy unless `vars_file` was set).
    pub fn vars_path(&self) -> &Path {
        &self.vars
    }

    /// The VM's temp dir (removed on drop).
    pub fn temp_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The QEMU command line, quoted for a shell.
    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    fn keep_artifacts(&self, dir: &Path) -> std::io::Result<()> {
        fs::create_dir_all(dir)?;
        fs::copy(&self.serial_log, dir.join("serial.log"))?;
        fs::copy(&self.stderr_log, dir.join("qemu.stderr"))?;
        fs::write(dir.join("qemu.cmdline"), format!("{}\n", self.command_line))
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.qmp = None;
        if self.status.is_none() {
            // Errors mean QEMU is already gone; `wait` reaps it either way.
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
        self.stdin = None;
        self.console.finish();
        self.stderr.finish();
        if let Some(dir) = &self.artifacts {
            if let Err(err) = self.keep_artifacts(dir) {
                eprintln!(
                    "berth-qemu: cannot keep VM artifacts in {}: {err}",
                    dir.display()
                );
            }
        }
    }
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm")
            .field("pid", &self.child.id())
            .field("accel", &self.accel)
            .field("status", &self.status)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// `program args...` with single quotes where a shell needs them.
fn shell_line(program: &Path, args: &[OsString]) -> String {
    std::iter::once(program.as_os_str())
        .chain(args.iter().map(OsString::as_os_str))
        .map(|arg| {
            let arg = arg.to_string_lossy();
            let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@+".contains(c);
            if !arg.is_empty() && arg.chars().all(plain) {
                arg.into_owned()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_quoted_for_a_shell() {
        let args: Vec<OsString> = ["-m", "512", "file=/a b", "it's", ""]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(
            shell_line(Path::new("qemu-system-x86_64"), &args),
            r"qemu-system-x86_64 -m 512 'file=/a b' 'it'\''s' ''"
        );
    }
}
