//! Streaming exec: runs a command in a running container through the OCI runtime's
//! `exec`, with the client's streams attached. Without a terminal the process gets
//! pipes; with one, the runtime creates a pty in the container and sends its master over
//! a console socket (`--console-socket`), and resize messages become TIOCSWINSZ on it.
//! The exit code is the runtime's (it waits for the process). When the client goes away
//! the process is killed by its pid file and the runtime with it: nothing is left.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use oci_spec::runtime::Spec;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::remotecommand::{Outcome, SessionIo};
use super::sys;
use crate::container::{ContainerPaths, OciRuntime};

/// How long output may still arrive after the process exited (from children that kept
/// its stdout) before the session ends.
const DRAIN: Duration = Duration::from_secs(5);

/// What an exec URL stands for.
#[derive(Debug, Clone)]
pub struct ExecTarget {
    pub runtime: OciRuntime,
    pub paths: ContainerPaths,
    pub cmd: Vec<String>,
    pub tty: bool,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Files of one exec, removed when it ends.
struct ExecFiles {
    process: PathBuf,
    pid: PathBuf,
    console: Option<PathBuf>,
}

impl Drop for ExecFiles {
    fn drop(&mut self) {
        for path in [Some(&self.process), Some(&self.pid), self.console.as_ref()]
            .into_iter()
            .flatten()
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn prepare(target: &ExecTarget) -> Result<ExecFiles, String> {
    let config = &target.paths.config;
    let bytes = std::fs::read(config).map_err(|e| format!("reading {}: {e}", config.display()))?;
    let spec: Spec =
        serde_json::from_slice(&bytes).map_err(|e| format!("parsing {}: {e}", config.display()))?;
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(target.cmd.clone()));
    process.set_terminal(Some(target.tty));
    process.set_oom_score_adj(None);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let stem = format!("exec-stream-{}-{n}", std::process::id());
    let files = ExecFiles {
        process: target.paths.bundle.join(format!("{stem}.json")),
        pid: target.paths.bundle.join(format!("{stem}.pid")),
        // The bundle path can be too long for a unix socket; the temp folder is short.
        console: target
            .tty
            .then(|| std::env::temp_dir().join(format!("berth-{stem}.sock"))),
    };
    let json = serde_json::to_vec(&process).map_err(|e| format!("encoding the process: {e}"))?;
    std::fs::write(&files.process, json)
        .map_err(|e| format!("writing {}: {e}", files.process.display()))?;
    Ok(files)
}

fn exec_command(target: &ExecTarget, files: &ExecFiles) -> Command {
    let mut cmd = Command::from(target.runtime.command());
    cmd.arg("exec");
    if let Some(console) = &files.console {
        cmd.arg("--tty").arg("--console-socket").arg(console);
    }
    cmd.arg("--process")
        .arg(&files.process)
        .arg("--pid-file")
        .arg(&files.pid)
        .arg(&target.paths.id)
        .kill_on_drop(true);
    cmd
}

/// Kills the exec'd process (by its pid file) and the runtime waiting for it.
async fn kill(child: &mut Child, pid_file: &Path) {
    if let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .filter(|pid| *pid > 0)
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.kill().await;
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Copies a reader to a sender until end of file (or an error, or the receiver's end).
async fn pump_out(mut from: impl AsyncRead + Unpin, to: mpsc::Sender<Bytes>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Runs the exec to its end and says how it ended.
pub async fn run(target: ExecTarget, io: SessionIo) -> Outcome {
    let files = match prepare(&target) {
        Ok(f) => f,
        Err(e) => return Outcome::Failed(e),
    };
    if target.tty {
        run_tty(&target, &files, io).await
    } else {
        run_pipes(&target, &files, io).await
    }
}

async fn run_pipes(target: &ExecTarget, files: &ExecFiles, io: SessionIo) -> Outcome {
    let SessionIo {
        stdin,
        stdout,
        stderr,
        resize: _,
        cancel,
    } = io;
    let piped = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    let mut cmd = exec_command(target, files);
    cmd.stdin(piped(stdin.is_some()))
        .stdout(piped(stdout.is_some()))
        .stderr(piped(stderr.is_some()));
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Outcome::Failed(format!("running {}: {e}", target.runtime.binary.display()))
        }
    };
    let input = match (stdin, child.stdin.take()) {
        (Some(mut rx), Some(mut pipe)) => Some(tokio::spawn(async move {
            while let Some(data) = rx.recv().await {
                if pipe.write_all(&data).await.is_err() {
                    return;
                }
            }
            // The client closed stdin: the process sees end of file.
        })),
        _ => None,
    };
    let mut outputs = Vec::new();
    if let (Some(tx), Some(pipe)) = (stdout, child.stdout.take()) {
        outputs.push(tokio::spawn(pump_out(pipe, tx)));
    }
    if let (Some(tx), Some(pipe)) = (stderr, child.stderr.take()) {
        outputs.push(tokio::spawn(pump_out(pipe, tx)));
    }
    let status = tokio::select! {
        status = child.wait() => status,
        _ = cancel.cancelled() => {
            kill(&mut child, &files.pid).await;
            if let Some(t) = input { t.abort() }
            for t in outputs { t.abort() }
            return Outcome::Failed("the client went away".into());
        }
    };
    if let Some(t) = input {
        t.abort();
    }
    let drain = async {
        for t in &mut outputs {
            let _ = t.await;
        }
    };
    if tokio::time::timeout(DRAIN, drain).await.is_err() {
        for t in outputs {
            t.abort();
        }
    }
    match status {
        Ok(status) => Outcome::Exited(exit_code(status)),
        Err(e) => Outcome::Failed(format!("waiting for the exec: {e}")),
    }
}

async fn run_tty(target: &ExecTarget, files: &ExecFiles, io: SessionIo) -> Outcome {
    let SessionIo {
        stdin,
        stdout,
        stderr: _,
        resize,
        cancel,
    } = io;
    let Some(console) = files.console.as_deref() else {
        return Outcome::Failed("no console socket".into());
    };
    let _ = std::fs::remove_file(console);
    let listener = match tokio::net::UnixListener::bind(console) {
        Ok(l) => l,
        Err(e) => return Outcome::Failed(format!("binding {}: {e}", console.display())),
    };
    let mut cmd = exec_command(target, files);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Outcome::Failed(format!("running {}: {e}", target.runtime.binary.display()))
        }
    };
    // The runtime connects, sends the master and goes on; if it fails first it exits.
    let conn = tokio::select! {
        conn = listener.accept() => conn,
        status = child.wait() => {
            let mut message = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut message).await;
            }
            return Outcome::Failed(format!(
                "{} exec failed ({}): {}",
                target.runtime.binary.display(),
                status.map(exit_code).unwrap_or(-1),
                message.trim()
            ));
        }
        _ = cancel.cancelled() => {
            kill(&mut child, &files.pid).await;
            return Outcome::Failed("the client went away".into());
        }
    };
    drop(listener);
    let master = match conn {
        Ok((stream, _)) => match stream.into_std() {
            Ok(stream) => {
                let _ = stream.set_nonblocking(false);
                match tokio::task::spawn_blocking(move || sys::recv_fd(&stream)).await {
                    Ok(Ok(fd)) => fd,
                    Ok(Err(e)) => return Outcome::Failed(format!("receiving the pty: {e}")),
                    Err(e) => return Outcome::Failed(format!("receiving the pty: {e}")),
                }
            }
            Err(e) => return Outcome::Failed(format!("console socket: {e}")),
        },
        Err(e) => return Outcome::Failed(format!("console socket: {e}")),
    };
    let (reader, writer, sizer) = match (master.try_clone(), master.try_clone()) {
        (Ok(r), Ok(w)) => (r, w, master),
        _ => return Outcome::Failed("duplicating the pty master".into()),
    };
    let mut tasks = Vec::new();
    if let Some(mut rx) = resize {
        tasks.push(tokio::spawn(async move {
            while let Some(size) = rx.recv().await {
                let _ = sys::set_winsize(sizer.as_fd(), size.width, size.height);
            }
        }));
    }
    if let Some(mut rx) = stdin {
        let mut pty = tokio::fs::File::from_std(std::fs::File::from(writer));
        tasks.push(tokio::spawn(async move {
            while let Some(data) = rx.recv().await {
                if pty.write_all(&data).await.is_err() || pty.flush().await.is_err() {
                    return;
                }
            }
        }));
    }
    // Reading the master ends with EIO once every process holding the pty has exited.
    let output = stdout.map(|tx| {
        let pty = tokio::fs::File::from_std(std::fs::File::from(reader));
        tokio::spawn(pump_out(pty, tx))
    });
    let status = tokio::select! {
        status = child.wait() => status,
        _ = cancel.cancelled() => {
            kill(&mut child, &files.pid).await;
            for t in tasks { t.abort() }
            if let Some(t) = output { t.abort() }
            return Outcome::Failed("the client went away".into());
        }
    };
    for t in tasks {
        t.abort();
    }
    if let Some(mut t) = output {
        if tokio::time::timeout(DRAIN, &mut t).await.is_err() {
            t.abort();
        }
    }
    match status {
        Ok(status) => Outcome::Exited(exit_code(status)),
        Err(e) => Outcome::Failed(format!("waiting for the exec: {e}")),
    }
}
