//! Running one plugin binary the CNI way: parameters in `CNI_*` environment variables,
//! config on stdin, result or error object on stdout, all under a time limit.
//!
//! The plugin runs in its own process group so a timeout kills it together with the
//! `iptables` or IPAM children it started; [`super::relay`] feeds its stdin and collects
//! its output on the calling thread.

use std::io::ErrorKind;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::relay::Pipes;
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
    let cni_path = std::env::join_paths(inv.bin_dirs)
        .map_err(|e| exec_err(std::io::Error::new(ErrorKind::InvalidInput, e)))?;
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
    let relayed = Pipes::of(&mut child, stdin).and_then(|pipes| pipes.relay(deadline));
    let outcome = match relayed {
        Ok(outcome) => outcome,
        Err(e) => {
            kill(&mut child);
            return Err(exec_err(e));
        }
    };
    let Some((stdout, stderr)) = outcome else {
        kill(&mut child);
        return Err(PodError::PluginTimeout {
            plugin: plugin.into(),
            command: inv.command,
            timeout,
        });
    };
    // Exited (the pidfd said so): this reaps it without blocking.
    let status = child.wait().map_err(exec_err)?;
    finish(status, plugin, inv.command, stdout, &stderr)
}

/// Kills the plugin with its whole process group and reaps it.
fn kill(child: &mut std::process::Child) {
    // The child is not reaped yet, so its pid (= process group id) is still ours.
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.wait();
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

    #[test]
    fn large_stdin_and_stdout_pass_in_full() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().to_path_buf()];
        // More than a pipe holds, both ways: each side must be served while the other
        // waits.
        script(dir.path(), "count", "wc -c; head -c 1048576 /dev/zero");
        let input = vec![b'x'; 1 << 20];
        let out = run(
            &dir.path().join("count"),
            "count",
            &inv(&dirs),
            &input,
            Duration::from_secs(30),
        )
        .unwrap();
        let first_line = out.split(|b| *b == b'\n').next().unwrap();
        assert_eq!(String::from_utf8_lossy(first_line).trim(), "1048576");
        assert_eq!(out.len(), first_line.len() + 1 + (1 << 20));
    }

    #[test]
    fn a_plugin_that_ignores_stdin_does_not_block_the_call() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().to_path_buf()];
        script(dir.path(), "deaf", "echo '{}'");
        let out = run(
            &dir.path().join("deaf"),
            "deaf",
            &inv(&dirs),
            &vec![b'x'; 1 << 20],
            Duration::from_secs(30),
        )
        .unwrap();
        assert_eq!(out, b"{}\n");
    }

    #[test]
    fn stderr_explains_a_failure_without_an_error_object() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().to_path_buf()];
        script(
            dir.path(),
            "oops",
            "echo 'bridge: no such device' >&2; exit 3",
        );
        let e = run(
            &dir.path().join("oops"),
            "oops",
            &inv(&dirs),
            b"{}",
            Duration::from_secs(30),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "CNI plugin oops ADD failed (code 0): bridge: no such device"
        );
    }

    #[test]
    fn a_plugin_that_closes_stdout_and_hangs_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().to_path_buf()];
        script(dir.path(), "mute", "exec >&-; sleep 600");
        let e = run(
            &dir.path().join("mute"),
            "mute",
            &inv(&dirs),
            b"",
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(matches!(e, PodError::PluginTimeout { .. }), "{e}");
    }
}
