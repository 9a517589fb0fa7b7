//! Each source of the real daemon, fed by the host's real tools: a stdout stream opened
//! as PID 1 opens it, `systemd-cat`, `logger` on the syslog and native sockets (with the
//! memfd path of sd_journal_send for a big entry), and kernel records through a FIFO.

mod common;

use berth_testkit::skip_if;
use common::{get, missing_prerequisite, with_message, Daemon};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};

#[test]
fn unit_output_through_a_stream_opened_like_pid1() {
    skip_if!(missing_prerequisite(&["sh"]));
    let mut daemon = Daemon::start("");
    // PID 1 connects, writes the header, and gives the socket to the unit as stdout.
    let mut stream = daemon.stream("demo", "demo.service", 6, true);
    let mut child = Command::new("sh")
        .args([
            "-c",
            "echo '<3>it broke'; echo 'all fine'; printf 'no newline'",
        ])
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(
            stream.try_clone().expect("dup"),
        )))
        .spawn()
        .expect("sh");
    let unit_pid = child.id().to_string();
    assert!(child.wait().expect("wait").success());
    // PID 1 (here: this test) writing to the same stream again, as a forked helper may.
    writeln!(stream, "from the connecting process").expect("write");
    drop(stream);
    let (entries, stderr) = daemon.stop();

    let broke = with_message(&entries, "it broke");
    assert_eq!(broke.len(), 1, "{entries:?}");
    let e = broke[0];
    assert_eq!(get(e, "PRIORITY"), Some("3"));
    assert_eq!(get(e, "_TRANSPORT"), Some("stdout"));
    assert_eq!(get(e, "SYSLOG_IDENTIFIER"), Some("demo"));
    assert_eq!(get(e, "_SYSTEMD_UNIT"), Some("demo.service"));
    // The writer's credentials (SCM_CREDENTIALS), not the connecting process's.
    assert_eq!(get(e, "_PID"), Some(unit_pid.as_str()));
    assert_eq!(get(e, "_UID"), Some("0"));
    assert_eq!(get(e, "_BOOT_ID").map(str::len), Some(32));
    assert!(get(e, "_HOSTNAME").is_some());
    assert!(get(e, "_STREAM_ID").is_some());
    assert_eq!(get(e, "_LINE_BREAK"), None);
    let fine = with_message(&entries, "all fine");
    assert_eq!(get(fine[0], "PRIORITY"), Some("6"));
    // The unit's last, unterminated line ends where another process starts writing.
    let tail = with_message(&entries, "no newline");
    assert_eq!(get(tail[0], "_LINE_BREAK"), Some("pid-change"), "{stderr}");
    assert_eq!(get(tail[0], "_PID"), Some(unit_pid.as_str()));
    // A process still there when its line is read has its /proc fields (the shell may
    // be gone by then, as with journald).
    let own = with_message(&entries, "from the connecting process");
    let exe = std::env::current_exe().expect("exe");
    assert_eq!(get(own[0], "_EXE"), exe.to_str());
    assert!(get(own[0], "_COMM").is_some() && get(own[0], "_CMDLINE").is_some());
    assert_eq!(
        get(own[0], "_PID"),
        Some(std::process::id().to_string().as_str())
    );
}

#[test]
fn systemd_cat_reaches_the_stdout_socket() {
    skip_if!(missing_prerequisite(&["systemd-cat", "unshare", "mount"]));
    let mut daemon = Daemon::start("");
    // The shell stays alive (reading its stdin) until its line was collected, so that
    // its /proc entry can be read: a process gone before the collector reads its line
    // has only _PID/_UID/_GID, with journald too.
    let mut child = daemon.spawn_in_namespace(
        "systemd-cat -t cat-test -p warning sh -c 'echo from-cat; echo \"<2>crit from cat\"; read x || true'",
    );
    daemon.wait_for_export(b"MESSAGE=crit from cat");
    drop(child.stdin.take());
    assert!(child.wait().expect("wait").success());
    let (entries, _) = daemon.stop();
    let e = with_message(&entries, "from-cat");
    assert_eq!(e.len(), 1, "{entries:?}");
    assert_eq!(get(e[0], "SYSLOG_IDENTIFIER"), Some("cat-test"));
    assert_eq!(get(e[0], "PRIORITY"), Some("4"));
    // systemd-cat execs the command on the connected socket: the peer is the shell.
    assert_eq!(get(e[0], "_COMM"), Some("sh"));
    let crit = with_message(&entries, "crit from cat");
    assert_eq!(get(crit[0], "PRIORITY"), Some("2"));
}

#[test]
fn logger_on_the_syslog_socket() {
    skip_if!(missing_prerequisite(&["logger"]));
    let mut daemon = Daemon::start("");
    let status = Command::new("logger")
        .arg("-u")
        .arg(daemon.path("journal/dev-log"))
        .args([
            "-t",
            "synth",
            "-p",
            "daemon.err",
            "--id=4242",
            "disk on fire",
        ])
        .status()
        .expect("logger");
    assert!(status.success());
    // A datagram in the minimal form, no timestamp or tag.
    let client = UnixDatagram::unbound().expect("socket");
    client
        .send_to(b"<13>bare words here", daemon.path("journal/dev-log"))
        .expect("send");
    let (entries, _) = daemon.stop();
    let e = with_message(&entries, "disk on fire");
    assert_eq!(e.len(), 1, "{entries:?}");
    assert_eq!(get(e[0], "_TRANSPORT"), Some("syslog"));
    assert_eq!(get(e[0], "PRIORITY"), Some("3"));
    assert_eq!(get(e[0], "SYSLOG_FACILITY"), Some("3"));
    assert_eq!(get(e[0], "SYSLOG_IDENTIFIER"), Some("synth"));
    assert_eq!(get(e[0], "SYSLOG_PID"), Some("4242"));
    assert!(get(e[0], "SYSLOG_TIMESTAMP").is_some());
    assert!(get(e[0], "_SOURCE_REALTIME_TIMESTAMP").is_some());
    // The sender's /proc details: logger may be gone when the datagram is read; the
    // raw datagram below comes from this (living) test process.
    assert!(get(e[0], "_PID").is_some());
    let bare = with_message(&entries, "bare words here");
    assert_eq!(get(bare[0], "PRIORITY"), Some("5"));
    assert_eq!(get(bare[0], "SYSLOG_FACILITY"), Some("1"));
    assert_eq!(get(bare[0], "SYSLOG_IDENTIFIER"), None);
    assert_eq!(
        get(bare[0], "_PID"),
        Some(std::process::id().to_string().as_str())
    );
    let exe = std::env::current_exe().expect("exe");
    assert_eq!(get(bare[0], "_EXE"), exe.to_str());
}

#[test]
fn native_protocol_from_logger_and_a_binary_datagram() {
    skip_if!(missing_prerequisite(&["logger", "unshare", "mount"]));
    // A queue that holds the 5 MiB entry and the next ones even while it is written.
    let mut daemon = Daemon::start_with("", &["--queue-bytes", "67108864"]);
    // Larger than a datagram may be (wmem_max is 4 MiB here): sd_journal_send passes it
    // in a sealed memfd, with SCM_RIGHTS.
    let big = "x".repeat(5 << 20);
    std::fs::write(
        daemon.path("fields"),
        "MESSAGE=native hello\nPRIORITY=2\nCUSTOM_FIELD=42\n_PID=666\n",
    )
    .expect("fields");
    std::fs::write(daemon.path("big"), format!("MESSAGE=big one\nBIG={big}\n")).expect("big");
    daemon.run_in_namespace(&format!(
        "logger --journald={} && logger --journald={}",
        daemon.path("fields").display(),
        daemon.path("big").display()
    ));
    let mut datagram = b"MESSAGE=binary\nDATA\n".to_vec();
    datagram.extend_from_slice(&5u64.to_le_bytes());
    datagram.extend_from_slice(b"a\nb\0c\n");
    let client = UnixDatagram::unbound().expect("socket");
    client
        .send_to(&datagram, daemon.path("journal/socket"))
        .expect("send");
    let (entries, stderr) = daemon.stop();

    let e = with_message(&entries, "native hello");
    assert_eq!(e.len(), 1, "{entries:?} {stderr}");
    assert_eq!(get(e[0], "_TRANSPORT"), Some("journal"));
    assert_eq!(get(e[0], "PRIORITY"), Some("2"));
    assert_eq!(get(e[0], "CUSTOM_FIELD"), Some("42"));
    // A client cannot forge trusted fields.
    assert_eq!(e[0]["_PID"].len(), 1);
    assert_ne!(get(e[0], "_PID"), Some("666"));
    let big_entry = with_message(&entries, "big one");
    assert_eq!(big_entry.len(), 1, "the memfd entry arrived: {stderr}");
    assert_eq!(get(big_entry[0], "BIG").map(str::len), Some(big.len()));
    let bin = with_message(&entries, "binary");
    assert_eq!(bin[0]["DATA"], vec![b"a\nb\0c".to_vec()]);
    let exe = std::env::current_exe().expect("exe");
    assert_eq!(get(bin[0], "_EXE"), exe.to_str());
    assert_eq!(get(bin[0], "_UID"), Some("0"));
}

#[test]
fn kernel_records_from_a_fifo() {
    skip_if!(missing_prerequisite(&[]));
    let mut daemon = Daemon::start("");
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(daemon.path("kmsg"))
        .expect("open fifo");
    fifo.write_all(
        b"3,10,5000000,-;e1000e: eth0 NIC Link is Down\\x21\n SUBSYSTEM=net\n DEVICE=n2\n\
          14,11,6000000,-;berth: ready\n\
          6,9,1,-;an old record seen again\n",
    )
    .expect("write");
    drop(fifo);
    let (entries, _) = daemon.stop();
    let link = with_message(&entries, "e1000e: eth0 NIC Link is Down!");
    assert_eq!(link.len(), 1, "{entries:?}");
    let e = link[0];
    assert_eq!(get(e, "_TRANSPORT"), Some("kernel"));
    assert_eq!(get(e, "PRIORITY"), Some("3"));
    assert_eq!(get(e, "SYSLOG_FACILITY"), Some("0"));
    assert_eq!(get(e, "SYSLOG_IDENTIFIER"), Some("kernel"));
    assert_eq!(get(e, "_KERNEL_SUBSYSTEM"), Some("net"));
    assert_eq!(get(e, "_KERNEL_DEVICE"), Some("n2"));
    assert_eq!(get(e, "_SOURCE_MONOTONIC_TIMESTAMP"), Some("5000000"));
    let berth = with_message(&entries, "ready");
    assert_eq!(get(berth[0], "SYSLOG_IDENTIFIER"), Some("berth"));
    assert!(with_message(&entries, "an old record seen again").is_empty());
}

#[test]
fn a_restarted_collector_skips_kernel_records_it_already_wrote() {
    skip_if!(missing_prerequisite(&[]));
    let feed = |daemon: &Daemon, records: &[u8]| {
        let mut fifo = std::fs::OpenOptions::new()
            .write(true)
            .open(daemon.path("kmsg"))
            .expect("open fifo");
        fifo.write_all(records).expect("write");
    };
    let mut first = Daemon::start("");
    feed(
        &first,
        b"6,1,10,-;first boot record\n6,2,20,-;second record\n",
    );
    let (entries, _) = first.stop();
    assert_eq!(entries.len(), 2, "{entries:?}");
    let seqnum = std::fs::read_to_string(first.path("kernel-seqnum")).expect("seqnum file");
    assert_eq!(seqnum.trim(), "2");

    // The ring buffer still holds the old records when the collector comes back.
    let mut second = Daemon::start_in(first.take_dir(), "", &[]);
    feed(
        &second,
        b"6,1,10,-;first boot record\n6,2,20,-;second record\n6,3,30,-;new one\n",
    );
    let (entries, _) = second.stop();
    let messages: Vec<_> = entries.iter().filter_map(|e| get(e, "MESSAGE")).collect();
    assert_eq!(messages, ["first boot record", "second record", "new one"]);
}
