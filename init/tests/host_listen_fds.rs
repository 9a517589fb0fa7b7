//! Socket activation through the real fork/exec path (`service_spawn::spawn`): sockets
//! made by `sys::listen` (close-on-exec, as PID 1 holds them) reach the command at fd 3
//! and 4 with `$LISTEN_FDS`, `$LISTEN_FDNAMES` and `$LISTEN_PID` = its own PID, as
//! sd_listen_fds(3) checks them; a command without sockets gets none of the variables.

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_init::sys::listen::{self, Address, ListenKind, ListenSpec};
use berth_init::sys::service_spawn::{self, CommandSpawn, Output};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

fn spec(kind: ListenKind, path: &Path) -> ListenSpec {
    ListenSpec {
        kind,
        address: Address::Path(path.to_path_buf()),
        socket_mode: 0o666,
        directory_mode: 0o755,
        pass_credentials: true,
        pass_security: false,
        receive_buffer: None,
        send_buffer: None,
        backlog: 16,
        writable: false,
        owner: None,
        symlinks: Vec::new(),
    }
}

/// What the command saw: its PID, the variables, and what fds 3, 4 and 5 are.
const REPORT: &str = "echo \"pid=$$ fds=${LISTEN_FDS-unset} names=${LISTEN_FDNAMES-unset} \
     listen_pid=${LISTEN_PID-unset}\"; \
     for fd in 3 4 5; do readlink /proc/$$/fd/$fd || echo none; done";

fn run(listen_fds: Vec<(i32, String)>) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let spec = CommandSpawn {
        stdout: Output::Truncate(out.clone()),
        stderr: Output::Truncate(dir.path().join("err")),
        listen_fds,
        ..CommandSpawn::new(
            "echo.service",
            Path::new("/bin/sh"),
            vec!["sh".into(), "-c".into(), REPORT.into()],
        )
    };
    let pid = service_spawn::spawn(&spec).expect("spawned");
    let status = waitpid(Pid::from_raw(pid as i32), None).expect("waitpid");
    assert_eq!(status, WaitStatus::Exited(Pid::from_raw(pid as i32), 0));
    let text = std::fs::read_to_string(&out).expect("the command's output");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[0] = lines[0].replace(&format!("pid={pid} "), "pid=PID ");
    lines[0] = lines[0].replace(&format!("listen_pid={pid}"), "listen_pid=PID");
    lines
}

#[test]
fn the_sockets_arrive_at_3_and_4_with_the_variables_sd_listen_fds_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stream =
        listen::listen(&spec(ListenKind::Stream, &dir.path().join("stdout"))).expect("stream");
    let dgram =
        listen::listen(&spec(ListenKind::Datagram, &dir.path().join("dgram"))).expect("dgram");
    let inode = |fd: &std::os::fd::OwnedFd| {
        let meta = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("fd");
        format!("socket:[{}]", meta.ino())
    };
    // Handed over in the unit's order, whatever numbers PID 1 holds them at.
    let lines = run(vec![
        (dgram.as_raw_fd(), "dev-log".into()),
        (stream.as_raw_fd(), "journal".into()),
    ]);
    assert_eq!(
        lines,
        [
            "pid=PID fds=2 names=dev-log:journal listen_pid=PID".to_owned(),
            inode(&dgram),
            inode(&stream),
            "none".to_owned(),
        ]
    );
    // Still listening in this process after the hand-over.
    std::os::unix::net::UnixStream::connect(dir.path().join("stdout")).expect("connects");
}

#[test]
fn a_command_without_sockets_gets_no_listen_variables() {
    let lines = run(Vec::new());
    assert_eq!(lines[0], "pid=PID fds=unset names=unset listen_pid=unset");
}
