//! `StandardInput=tty*` through the real fork/exec path (`service_spawn::spawn`) on a
//! pseudo-terminal of this host: the command's standard streams and controlling terminal
//! are the terminal (`/dev/tty` opens), and a second command with `tty-fail` is refused,
//! with the step named, while the first one holds it. `TTYVHangup=` is best effort (it
//! needs CAP_SYS_TTY_CONFIG), as on systemd.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use berth_init::sys::service_spawn::{self, CommandSpawn, Output, SpawnError};
use berth_init::sys::terminal::{TerminalMode, TerminalSpawn};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

/// `sh -c script` on the terminal `path`.
fn on_terminal(script: &str, path: PathBuf, mode: TerminalMode, vhangup: bool) -> CommandSpawn {
    CommandSpawn {
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        stdin: Some(TerminalSpawn {
            path,
            mode,
            reset: true,
            vhangup,
        }),
        stdout: Output::Stdin,
        stderr: Output::Stdin,
        ..CommandSpawn::new(
            "shell.service",
            Path::new("/bin/sh"),
            vec!["sh".into(), "-c".into(), script.into()],
        )
    }
}

#[test]
fn a_command_runs_on_its_terminal_and_tty_fail_is_refused_while_it_is_taken() {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))
        .expect("the terminal's name");
    // Only the command keeps the terminal open: its end makes the reads below stop.
    drop(pty.slave);
    let first = on_terminal(
        "tty; echo controlling > /dev/tty && echo on-stdout; read line; echo got:$line",
        slave.clone(),
        TerminalMode::Force,
        true,
    );
    let pid = service_spawn::spawn(&first).expect("spawned");
    // While it waits for its line, the terminal is its session's: tty-fail is refused.
    // (Without the hang-up: after one, the terminal would be free, as on systemd.)
    let second = on_terminal("true", slave.clone(), TerminalMode::Fail, false);
    let mut master = std::fs::File::from(pty.master);
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("on-stdout") {
        match master.read(&mut buf) {
            Ok(n) if n > 0 => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            other => panic!("terminal ended early ({other:?}): {seen}"),
        }
    }
    match service_spawn::spawn(&second) {
        Err(e @ SpawnError::Child { .. }) => {
            let text = e.to_string();
            assert!(
                text.starts_with(&format!(
                    "TTYPath={}: make it the controlling terminal (TIOCSCTTY): ",
                    slave.display()
                )),
                "{text}"
            );
            assert_eq!(e.exited_child().map(|(_, status)| status), Some(208));
        }
        other => panic!("tty-fail on a taken terminal: {other:?}"),
    }
    std::io::Write::write_all(&mut master, b"hello\n").expect("type a line");
    let status = waitpid(Pid::from_raw(pid as i32), None).expect("waitpid");
    assert_eq!(status, WaitStatus::Exited(Pid::from_raw(pid as i32), 0));
    // The rest of the output; EIO once no one has the terminal open.
    while let Ok(n @ 1..) = master.read(&mut buf) {
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let lines: Vec<&str> = seen.lines().map(|l| l.trim_end_matches('\r')).collect();
    let name = slave.display().to_string();
    assert_eq!(
        lines,
        [
            name.as_str(),
            "controlling",
            "on-stdout",
            "hello",
            "got:hello"
        ],
        "the terminal echoes the typed line (TTYReset= leaves ECHO on)"
    );
}

/// The end of a run (`terminal::revert`): the line settings a program left (no echo, raw)
/// are reset, and as root the hang-up ends an earlier user's hold (its reads see the
/// hang-up: end of file or EIO).
#[test]
fn a_runs_end_resets_the_line_and_hangs_up_its_users() {
    use nix::sys::termios::{self, LocalFlags, SetArg};
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))
        .expect("the terminal's name");
    let mut t = termios::tcgetattr(&pty.slave).expect("tcgetattr");
    t.local_flags.remove(LocalFlags::ECHO | LocalFlags::ICANON);
    termios::tcsetattr(&pty.slave, SetArg::TCSANOW, &t).expect("tcsetattr");
    berth_init::sys::terminal::revert(&slave, true, false).expect("reverted");
    let t = termios::tcgetattr(&pty.slave).expect("tcgetattr");
    assert!(
        t.local_flags
            .contains(LocalFlags::ECHO | LocalFlags::ICANON),
        "reset: {:?}",
        t.local_flags
    );
    if !nix::unistd::Uid::effective().is_root() {
        // TIOCVHANGUP needs CAP_SYS_TTY_CONFIG (best effort, as on systemd).
        berth_testkit::skip("not root: cannot hang up a terminal");
        return;
    }
    berth_init::sys::terminal::revert(&slave, false, true).expect("hung up");
    let mut held = std::fs::File::from(pty.slave);
    let mut buf = [0u8; 8];
    match held.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("read {n} bytes from a hung-up terminal"),
        Err(e) => assert_eq!(e.raw_os_error(), Some(nix::libc::EIO), "{e}"),
    }
}
