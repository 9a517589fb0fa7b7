//! Socket units over the fake: real sockets below the fake's root, handed to the service's
//! main process, traffic starting the service, the trigger limit, a failed bind, the stop.

use std::path::{Path, PathBuf};

use super::tests::{machine, manager, n, pid_of, spawned};
use super::*;
use crate::sys::fake::Call;
use crate::sys::listen;

const JOURNAL_SOCKET: &str = "[Unit]\nDefaultDependencies=no\nBefore=sockets.target\n\
     [Socket]\nListenStream=/run/j/stdout\nListenDatagram=/run/j/socket\n\
     Service=jd.service\nPassCredentials=yes\n";
const DEV_LOG: &str = "[Unit]\nDefaultDependencies=no\n[Socket]\n\
     ListenDatagram=/run/j/dev-log\nSymlinks=/dev/log\nService=jd.service\n";
const JOURNALD: &str = "[Unit]\nDefaultDependencies=no\nRequires=systemd-journald.socket\n\
     [Service]\nType=notify\nExecStart=/usr/bin/jd\nStandardOutput=kmsg\n\
     Sockets=systemd-journald.socket systemd-journald-dev-log.socket\n";

fn listens(fake: &crate::sys::fake::Fake) -> Vec<String> {
    fake.calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Listen(a) => Some(a),
            _ => None,
        })
        .collect()
}

#[test]
fn the_journals_sockets_listen_before_it_runs_and_loggers_do_not_wait_for_it() {
    let fake = machine(&[
        ("systemd-journald.socket", JOURNAL_SOCKET),
        ("systemd-journald-dev-log.socket", DEV_LOG),
        ("jd.service", JOURNALD),
        ("multi-user.target.wants/jd.service", ""),
        (
            "logger.service",
            "[Unit]\nDefaultDependencies=no\n[Service]\nType=notify\nExecStart=/usr/bin/logger\n",
        ),
        ("multi-user.target.wants/logger.service", ""),
    ]);
    let mut m = manager(&fake);
    m.start(&n("multi-user.target"));
    assert_eq!(
        listens(&fake),
        ["/run/j/dev-log", "/run/j/stdout", "/run/j/socket"]
    );
    // Both run at once: the logger is ordered after the socket only, not the journal.
    let started: Vec<String> = spawned(&fake).into_iter().map(|(u, _)| u).collect();
    assert_eq!(started, ["jd.service", "logger.service"]);
    let jd = fake.spawns.borrow()[0].clone();
    let names: Vec<&str> = jd.listen_fds.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "systemd-journald-dev-log.socket",
            "systemd-journald.socket",
            "systemd-journald.socket"
        ]
    );
    assert!(fake.spawns.borrow()[1].listen_fds.is_empty());
    // The sockets are real and listening: a client connects before the journal accepts.
    std::os::unix::net::UnixStream::connect(fake.host("/run/j/stdout")).expect("connects");
    std::os::unix::net::UnixDatagram::unbound()
        .expect("client")
        .send_to(b"<6>hi", fake.host("/dev/log"))
        .expect("the link reaches the socket");
    assert_eq!(
        m.slots[&n("systemd-journald.socket")].active_state(),
        Active::Active
    );
    // While the journal runs, its sockets are its own, not watched by PID 1.
    m.notify(pid_of(&m, "jd.service"), "READY=1");
    assert!(m.watched_sockets().is_empty());
    // As `systemctl show` has them.
    let props = |m: &Manager, unit: &str| -> Vec<(String, String)> {
        m.properties(&n(unit))
            .expect("loaded")
            .into_iter()
            .filter(|(k, _)| ["SubState", "Triggers", "TriggeredBy", "Listen"].contains(k))
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    };
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(
        props(&m, "systemd-journald.socket"),
        [
            pair("SubState", "running"),
            pair("Triggers", "jd.service"),
            pair("Listen", "/run/j/stdout (Stream)"),
            pair("Listen", "/run/j/socket (Datagram)"),
        ]
    );
    assert_eq!(
        props(&m, "jd.service"),
        [
            pair("SubState", "running"),
            pair(
                "TriggeredBy",
                "systemd-journald-dev-log.socket systemd-journald.socket"
            ),
        ]
    );
    m.child_exited(pid_of(&m, "jd.service"), Exit::Code(1));
    assert_eq!(
        props(&m, "systemd-journald.socket")[0],
        pair("SubState", "listening")
    );
}

#[test]
fn traffic_starts_the_service_with_the_sockets_and_the_watch_ends_while_it_runs() {
    let fake = machine(&[
        (
            "echo.socket",
            "[Socket]\nListenStream=/run/echo.sock\nFileDescriptorName=echo\n",
        ),
        ("sockets.target.wants/echo.socket", ""),
        ("sockets.target", "[Unit]\n"),
        ("basic.target.wants/sockets.target", ""),
        ("echo.service", "[Service]\nExecStart=/usr/bin/echod\n"),
    ]);
    let mut m = manager(&fake);
    m.start(&n("multi-user.target"));
    assert!(spawned(&fake).is_empty(), "nothing starts the service yet");
    let watched: Vec<UnitName> = m.watched_sockets().into_iter().map(|(u, _)| u).collect();
    assert_eq!(watched, [n("echo.socket")]);
    m.socket_traffic(&n("echo.socket"));
    assert_eq!(
        spawned(&fake),
        [("echo.service".into(), vec!["/usr/bin/echod".into()])]
    );
    assert_eq!(fake.spawns.borrow()[0].listen_fds.len(), 1);
    assert_eq!(fake.spawns.borrow()[0].listen_fds[0].1, "echo");
    assert!(m.watched_sockets().is_empty());
    // Traffic while it runs starts nothing more.
    m.socket_traffic(&n("echo.socket"));
    assert_eq!(spawned(&fake).len(), 1);
    // It exits; the socket is watched again.
    m.child_exited(pid_of(&m, "echo.service"), Exit::Code(0));
    assert_eq!(m.watched_sockets().len(), 1);
}

#[test]
fn a_service_that_will_not_start_fails_its_socket_at_the_trigger_limit() {
    let fake = machine(&[
        ("gone.socket", "[Socket]\nListenDatagram=/run/gone\n"),
        ("multi-user.target.wants/gone.socket", ""),
        (
            "gone.service",
            "[Service]\nExecStart=/usr/bin/gone\nStartLimitBurst=100\n",
        ),
    ]);
    fake.missing_programs
        .borrow_mut()
        .insert(PathBuf::from("/usr/bin/gone"));
    let mut m = manager(&fake);
    m.start(&n("multi-user.target"));
    for _ in 0..25 {
        m.socket_traffic(&n("gone.socket"));
    }
    assert_eq!(spawned(&fake).len(), 20, "20 activations, then the limit");
    let logs = fake.logs();
    assert!(
        logs.iter()
            .any(|l| l == "berth: gone.socket: Trigger limit hit, refusing further activation."),
        "{logs:?}"
    );
    assert!(logs
        .iter()
        .any(|l| l == "berth: FAILED gone.socket: trigger-limit-hit"));
    assert_eq!(m.slots[&n("gone.socket")].active_state(), Active::Failed);
    assert!(m.watched_sockets().is_empty());
    m.reset_failed(Some(&n("gone.socket"))).expect("reset");
    assert_eq!(m.slots[&n("gone.socket")].active_state(), Active::Inactive);
}

#[test]
fn a_socket_that_cannot_bind_fails_and_so_does_what_requires_it() {
    let fake = machine(&[
        ("busy.socket", "[Socket]\nListenStream=127.0.0.1:8080\n"),
        (
            "busy.service",
            "[Unit]\nRequires=busy.socket\nAfter=busy.socket\n[Service]\nExecStart=/usr/bin/b\n",
        ),
        ("multi-user.target.wants/busy.service", ""),
        (
            "accept.socket",
            "[Socket]\nListenStream=/run/acc\nAccept=yes\n",
        ),
        ("multi-user.target.wants/accept.socket", ""),
        ("accept.service", "[Service]\nExecStart=/usr/bin/a\n"),
        ("none.socket", "[Socket]\nService=none.service\n"),
        ("multi-user.target.wants/none.socket", ""),
        ("orphan.socket", "[Socket]\nListenStream=/run/orphan\n"),
        ("multi-user.target.wants/orphan.socket", ""),
    ]);
    fake.listen_failures
        .borrow_mut()
        .push(listen::Address::Inet(
            "127.0.0.1:8080".parse().expect("addr"),
        ));
    let mut m = manager(&fake);
    m.start(&n("multi-user.target"));
    let logs = fake.logs();
    for line in [
        "berth: FAILED busy.socket: Failed to create listening socket (127.0.0.1:8080): Address already in use",
        "berth: FAILED busy.service: dependency busy.socket failed",
        "berth: FAILED accept.socket: Accept=yes is not implemented by Berth",
        "berth: FAILED none.socket: Unit has no Listen setting (ListenStream=, ListenDatagram=, ...). Refusing.",
        "berth: FAILED orphan.socket: service orphan.service not loaded, refusing",
    ] {
        assert!(logs.iter().any(|l| l == line), "{line} not in {logs:?}");
    }
    assert!(spawned(&fake).is_empty());
    assert_eq!(m.slots[&n("busy.socket")].active_state(), Active::Failed);
    assert!(!fake.host("/run/acc").exists());
}

#[test]
fn the_stop_closes_the_sockets_and_remove_on_stop_removes_their_files() {
    let fake = machine(&[
        ("keep.socket", "[Socket]\nListenStream=/run/keep.sock\n"),
        (
            "gone.socket",
            "[Socket]\nListenStream=/run/gone.sock\nSymlinks=/run/gone.link\nRemoveOnStop=yes\n",
        ),
        ("multi-user.target.wants/keep.socket", ""),
        ("multi-user.target.wants/gone.socket", ""),
        ("keep.service", "[Service]\nExecStart=/usr/bin/k\n"),
        ("gone.service", "[Service]\nExecStart=/usr/bin/g\n"),
    ]);
    let mut m = manager(&fake);
    m.start(&n("multi-user.target"));
    assert!(fake.host("/run/gone.link").exists());
    m.stop_all();
    assert_eq!(m.slots[&n("gone.socket")].active_state(), Active::Inactive);
    assert!(m.watched_sockets().is_empty());
    let gone = |p: &str| std::fs::symlink_metadata(fake.host(p)).is_err();
    assert!(gone("/run/gone.sock") && gone("/run/gone.link"));
    assert!(!gone("/run/keep.sock"), "kept without RemoveOnStop=");
    // Closed: nothing listens on the kept file any more.
    let refused = std::os::unix::net::UnixStream::connect(fake.host("/run/keep.sock"));
    assert!(refused.is_err());
    assert!(fake
        .calls()
        .contains(&Call::RemoveFile(Path::new("/run/gone.sock").into())));
}

#[test]
fn a_fifo_with_its_owner_and_a_socket_without_a_trigger_limit() {
    let (uid, gid) = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    let fake = machine(&[
        (
            "ctl.socket",
            "[Socket]\nListenFIFO=/run/ctl\nSocketMode=0600\nSocketUser=me\n\
             TriggerLimitBurst=0\n",
        ),
        ("multi-user.target.wants/ctl.socket", ""),
        (
            "ctl.service",
            "[Service]\nExecStart=/usr/bin/gone\nStartLimitBurst=100\n",
        ),
        (
            "nobody.socket",
            "[Socket]\nListenFIFO=/run/nobody\nSocketUser=nobody-here\n",
        ),
        ("multi-user.target.wants/nobody.socket", ""),
        ("nobody.service", "[Service]\nExecStart=/usr/bin/n\n"),
    ]);
    fake.write("/etc/passwd", format!("me:x:{uid}:{gid}::/:/bin/sh\n"));
    fake.missing_programs
        .borrow_mut()
        .insert(PathBuf::from("/usr/bin/gone"));
    let mut m = manager(&fake);
    m.start(&n("multi-user.target"));
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(fake.host("/run/ctl")).expect("made");
    assert!(meta.file_type().is_fifo());
    assert_eq!((meta.uid(), meta.gid()), (uid, gid));
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    for _ in 0..30 {
        m.socket_traffic(&n("ctl.socket"));
    }
    assert_eq!(spawned(&fake).len(), 30, "TriggerLimitBurst=0: no limit");
    assert_eq!(m.slots[&n("ctl.socket")].active_state(), Active::Active);
    let logs = fake.logs();
    assert!(
        logs.iter()
            .any(|l| l.starts_with("berth: FAILED nobody.socket: ") && l.contains("nobody-here")),
        "{logs:?}"
    );
}
