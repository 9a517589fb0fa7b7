//! Running one plugin binary the CNI way: parameters in `CNI_*` environment variables,
//! config on stdin, result or error object on stdout, all under a time limit.
//!
//! The plugin runs in its own process group so a timeout kills it together with the
//! `iptables` or IPAM children it started; its stdin is written and its output read on
//! helper threads so a plugin that ignores stdin or floods stdout cannot block us.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;

use super::result::parse_error;
use crate::pod::PodError;

/// PATH for plugins when the daemon has none: they run `iptables` and friends.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The `CNI_*` parameters of one call.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// `ADD` or `DEL`.
    pub command: &'static str,
    /// `CNI_CONTAINERID`: the pod id.
    pub container_id: &'a str,
    /// `CNI_NETNS`; `None` passes it empty (DEL after the netns is gone).
    pub netns: Option<&'a Path>,
    /// `CNI_IFNAME`.
    pub ifname: &'a str,
    /// `CNI_ARGS`.
    pub args: &'a str,
    /// The plugin folders, joined into `CNI_PATH`.
    pub bin_dirs: &'a [PathBuf],
}

/// The first `<dir>/<plugin>` that is a file.
pub fn find_plugin(plugin: &str, dirs: &[PathBuf]) -> Result<PathBuf, PodError> {
    dirs.iter()
        .map(|d| d.join(plugin))
        .find(|p| p.is_file())
        .ok_or_else(|| PodError::PluginNotFound {
            plugin: plugin.to_owned(),
            dirs: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Runs plugin binary `bin` (named `plugin` in errors) and returns its stdout on success.
pub fn run(
    bin: &Path,
    plugin: &str,
    inv: &Invocation<'_>,
    stdin: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, PodError> {
    let exec_err = |source| PodError::PluginExec {
        plugin: plugin.into(),
        command: inv.command,
        source,
    };
    let timed_out = || PodError::PluginTimeout {
        plugin: plugin.into(),
        command: inv.command,
        timeout,
    };
    let cni_path = std::env::join_paths(inv.bin_dirs)
        .map_err(|e| exec_err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    let mut cmd = Command::new(bin);
    cmd.env("CNI_COMMAND", inv.command)
        .env("CNI_CONTAINERID", inv.container_id)
        .env(
            "CNI_NETNS",
            inv.netns.map(Path::as_os_str).unwrap_or_default(),
        )
        .env("CNI_IFNAME", inv.ifname)
        .env("CNI_ARGS", inv.args)
        .env("CNI_PATH", cni_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if std::env::var_os("PATH").is_none() {
        cmd.env("PATH", DEFAULT_PATH);
    }
    let mut child = cmd.spawn().map_err(exec_err)?;
    let deadline = Instant::now() + timeout;

    if let Some(mut pipe) = child.stdin.take() {
        let data = stdin.to_vec();
        // A plugin may exit without reading; the write then fails with EPIPE, harmlessly.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());

    // A plugin's stdout closes when it exits: wait for that, then for the exit itself,
    // and reap it. A plugin that hangs, or leaves a child holding its stdout, is killed
    // with its whole process group when the time is up.
    let kill = |child: &mut std::process::Child| {
        // The child is not reaped yet, so its pid (= process group id) is still ours.
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = child.wait();
    };
    let Ok(out) = stdout.recv_timeout(timeout) else {
        kill(&mut child);
        return Err(timed_out());
    };
    let exited = exited(&child);
    if exited
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .is_err()
    {
        kill(&mut child);
        return Err(timed_out());
    }
    let status = child.wait().map_err(exec_err)?;
    let err = stderr
        .recv_timeout(Duration::from_secs(1))
        .unwrap_or_default();
    finish(status, plugin, inv.command, out, &err)
}

fn finish(
    status: ExitStatus,
    plugin: &str,
    command: &'static str,
    stdout: Vec<u8>,
    stderr: &[u8],
) -> Result<Vec<u8>, PodError> {
    if status.success() {
        return Ok(stdout);
    }
    let e = parse_error(&stdout, stderr);
    Err(PodError::Plugin {
        plugin: plugin.into(),
        command,
        code: e.code,
        msg: e.msg,
        details: e.details,
    })
}

/// Waits on a helper thread for `child` to exit, without reaping it (`WNOWAIT`): its
/// pid stays ours until [`Child::wait`](std::process::Child::wait), so a timeout can
/// still kill its process group. The receiver gets a message at the exit (or if waiting
/// fails, so the caller's `wait` reports the error). Blocking there, rather than polling
/// `try_wait` every millisecond, takes up to a millisecond off each plugin call of a
/// pod's start.
fn exited(child: &std::process::Child) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    let pid = i32::try_from(child.id()).map(Pid::from_raw);
    std::thread::spawn(move || {
        if let Ok(pid) = pid {
            while let Err(Errno::EINTR) =
                waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
            {}
        }
        let _ = tx.send(());
    });
    rx
}

/// Reads a pipe to the end on a helper thread; the receiver gets the bytes.
fn collect(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        let _ = tx.send(buf);
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn inv<'a>(dirs: &'a [PathBuf]) -> Invocation<'a> {
        Invocation {
            command: "ADD",
            container_id: "pod1",
            netns: None,
            ifname: "eth0",
            args: "IgnoreUnknown=1",
            bin_dirs: dirs,
        }
    }

    #[test]
    fn env_stdin_and_stdout() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().join("none"), dir.path().to_path_buf()];
        script(
            dir.path(),
            "echo",
            r#"printf '%s|%s|%s|%s|%s|%s|' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" "$CNI_IFNAME" "$CNI_ARGS" "$CNI_PATH"; cat"#,
        );
        let bin = find_plugin("echo", &dirs).unwrap();
        let out = run(
            &bin,
            "echo",
            &inv(&dirs),
            b"{\"x\":1}",
            Duration::from_secs(30),
        )
        .unwrap();
        let want = format!(
            "ADD|pod1||eth0|IgnoreUnknown=1|{}/none:{}|{{\"x\":1}}",
            dir.path().display(),
            dir.path().display()
        );
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn error_object_becomes_plugin_error() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().to_path_buf()];
        script(
            dir.path(),
            "bad",
            r#"echo '{"code":11,"msg":"no IP addresses available","details":"range 10.0.0.0/30"}'; exit 1"#,
        );
        let e = run(
            &dir.path().join("bad"),
            "bad",
            &inv(&dirs),
            b"",
            Duration::from_secs(30),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "CNI plugin bad ADD failed (code 11): no IP addresses available (range 10.0.0.0/30)"
        );
    }

    #[test]
    fn missing_plugin_lists_folders() {
        let e = find_plugin(
            "bridge",
            &["/nonexistent/a".into(), "/nonexistent/b".into()],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "plugin bridge not found in [/nonexistent/a, /nonexistent/b]"
        );
    }

    #[test]
    fn hanging_plugin_and_its_children_are_killed() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().to_path_buf()];
        // The grandchild holds stdout open; killing only the plugin would leave us waiting.
        script(dir.path(), "hang", "sleep 600 & sleep 600");
        let e = run(
            &dir.path().join("hang"),
            "hang",
            &inv(&dirs),
            b"",
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(matches!(e, PodError::PluginTimeout { .. }), "{e}");
    }
}
