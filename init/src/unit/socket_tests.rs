use std::path::PathBuf;

use super::*;
use crate::unit::load::Loader;
use crate::unit::model::Unit;
use crate::unit::specifier::Host;

fn unit(name: &str, text: &str) -> Unit {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("etc/systemd/system");
    std::fs::create_dir_all(&folder).expect("mkdir");
    std::fs::write(folder.join(name), text).expect("write");
    let files = Loader::system(dir.path()).load(name).expect("loads");
    Unit::from_files(files, &Host::default())
}

#[test]
fn journald_sockets_as_debian_ships_them() {
    let u = unit(
        "systemd-journald.socket",
        "[Unit]\nDefaultDependencies=no\nBefore=sockets.target\n[Socket]\n\
         ListenStream=/run/systemd/journal/stdout\nListenDatagram=/run/systemd/journal/socket\n\
         SocketMode=0666\nPassCredentials=yes\nPassSecurity=yes\nReceiveBuffer=8M\n\
         Service=systemd-journald.service\n",
    );
    assert!(u.warnings.is_empty(), "{:?}", u.warnings);
    let s = u.socket.as_ref().expect("a socket");
    assert_eq!(
        s.listen,
        vec![
            Listen {
                kind: ListenKind::Stream,
                address: Address::Path("/run/systemd/journal/stdout".into())
            },
            Listen {
                kind: ListenKind::Datagram,
                address: Address::Path("/run/systemd/journal/socket".into())
            },
        ]
    );
    assert!(s.pass_credentials && s.pass_security);
    assert_eq!(s.receive_buffer, Some(8 << 20));
    let journald = UnitName::parse("systemd-journald.service").unwrap();
    assert_eq!(s.service_of(&u.name), Some(journald.clone()));
    assert_eq!(s.fd_name_of(&u.name), "systemd-journald.socket");
    assert!(
        u.deps.before.contains(&journald),
        "a socket is before its service"
    );
}

#[test]
fn the_service_defaults_to_the_same_name_and_names_and_links_are_kept() {
    let u = unit(
        "dev-log.socket",
        "[Socket]\nListenDatagram=/run/systemd/journal/dev-log\nSymlinks=/dev/log /x/y\n\
         FileDescriptorName=syslog\nRemoveOnStop=yes\nBacklog=16\nDirectoryMode=0700\n",
    );
    let s = u.socket.as_ref().expect("a socket");
    assert_eq!(
        s.service_of(&u.name),
        Some(UnitName::parse("dev-log.service").unwrap())
    );
    assert_eq!(s.fd_name_of(&u.name), "syslog");
    assert_eq!(
        s.symlinks,
        vec![PathBuf::from("/dev/log"), PathBuf::from("/x/y")]
    );
    assert!(s.remove_on_stop);
    assert_eq!(
        (s.backlog, s.directory_mode, s.socket_mode),
        (16, 0o700, 0o666)
    );
}

#[test]
fn addresses_as_systemd_reads_them() {
    assert_eq!(parse_address("@foo"), Ok(Address::Abstract("foo".into())));
    assert_eq!(
        parse_address("8080"),
        Ok(Address::Inet("[::]:8080".parse().unwrap()))
    );
    assert_eq!(
        parse_address("127.0.0.1:53"),
        Ok(Address::Inet("127.0.0.1:53".parse().unwrap()))
    );
    assert_eq!(
        parse_address("[::1]:53"),
        Ok(Address::Inet("[::1]:53".parse().unwrap()))
    );
    for bad in ["", "0", "70000", "relative/path", "@", "1.2.3.4"] {
        assert!(parse_address(bad).is_err(), "{bad:?} accepted");
    }
    assert!(parse_address(&format!("/{}", "a".repeat(107))).is_err());
}

#[test]
fn bad_values_name_the_line_and_keep_the_previous_value() {
    let u = unit(
        "bad.socket",
        "[Socket]\nListenStream=nowhere\nSocketMode=999\nService=a.target\n\
         FileDescriptorName=a:b\nReceiveBuffer=lots\nListenSequentialPacket=80\n\
         Symlinks=rel\nAccept=maybe\nFreeBind=yes\n",
    );
    let s = u.socket.as_ref().expect("a socket");
    assert!(s.listen.is_empty());
    assert_eq!(s.socket_mode, 0o666);
    assert_eq!(s.service, None);
    assert_eq!(s.fd_name, None);
    let lines: Vec<usize> = u.warnings.iter().map(|w| w.at.line).collect();
    assert_eq!(lines, vec![2, 3, 4, 5, 6, 7, 8, 9, 10], "{:?}", u.warnings);
    assert!(u.warnings[8].message.contains("not implemented by Berth"));
    assert!(u.warnings[0].message.contains("ListenStream=nowhere"));
}

#[test]
fn fifos_special_files_netlink_owners_and_trigger_limits() {
    let u = unit(
        "k.socket",
        "[Socket]\nListenFIFO=/run/initctl\nListenSpecial=/proc/kmsg\n\
         ListenNetlink=kobject-uevent 1\nListenNetlink=audit\nListenNetlink=bogus 1\n\
         ListenFIFO=rel\nListenNetlink=route x\nWritable=yes\nSocketUser=nobody\n\
         SocketGroup=adm\nTriggerLimitIntervalSec=0\nTriggerLimitBurst=5\n",
    );
    let s = u.socket.as_ref().expect("a socket");
    let shown: Vec<String> = s
        .listen
        .iter()
        .map(|l| format!("{} ({})", l.address, l.kind.name()))
        .collect();
    assert_eq!(
        shown,
        [
            "/run/initctl (FIFO)",
            "/proc/kmsg (Special)",
            "kobject-uevent 1 (Netlink)",
            "audit 0 (Netlink)"
        ]
    );
    let lines: Vec<usize> = u.warnings.iter().map(|w| w.at.line).collect();
    assert_eq!(lines, [6, 7, 8], "{:?}", u.warnings);
    assert!(s.writable);
    assert_eq!(s.socket_user.as_deref(), Some("nobody"));
    assert_eq!(s.socket_group.as_deref(), Some("adm"));
    assert_eq!(s.trigger_limit_interval, std::time::Duration::ZERO);
    assert_eq!(s.trigger_limit_burst, 5);
    assert_eq!(
        parse_netlink("15 2"),
        Ok(Address::Netlink {
            protocol: 15,
            group: 2
        })
    );
}

#[test]
fn an_empty_listen_line_resets_the_list() {
    let u = unit(
        "r.socket",
        "[Socket]\nListenStream=/run/a\nListenDatagram=\nListenStream=/run/b\n",
    );
    let s = u.socket.as_ref().expect("a socket");
    assert_eq!(s.listen.len(), 1);
    assert_eq!(s.listen[0].address, Address::Path("/run/b".into()));
}

#[test]
fn services_want_their_sockets_and_logging_services_start_after_the_journals() {
    let u = unit(
        "d.service",
        "[Service]\nExecStart=/bin/d\nSockets=d-extra.socket\nSockets=x.service\n",
    );
    let extra = UnitName::parse("d-extra.socket").unwrap();
    let journal = UnitName::parse(crate::unit::model::JOURNAL_SOCKET).unwrap();
    assert!(u.deps.wants.contains(&extra) && u.deps.after.contains(&extra));
    assert!(u.deps.after.contains(&journal));
    assert_eq!(u.warnings.len(), 1, "{:?}", u.warnings);
    let quiet = unit(
        "q.service",
        "[Service]\nExecStart=/bin/q\nStandardOutput=null\nStandardError=null\n",
    );
    assert!(!quiet.deps.after.contains(&journal));
}

const KEYS: [&str; 23] = [
    "ListenFIFO",
    "ListenSpecial",
    "ListenNetlink",
    "Writable",
    "SocketUser",
    "TriggerLimitIntervalSec",
    "TriggerLimitBurst",
    "ListenStream",
    "ListenDatagram",
    "ListenSequentialPacket",
    "Accept",
    "SocketMode",
    "DirectoryMode",
    "Service",
    "FileDescriptorName",
    "PassCredentials",
    "PassSecurity",
    "ReceiveBuffer",
    "SendBuffer",
    "Symlinks",
    "RemoveOnStop",
    "Backlog",
    "Bogus",
];

proptest::proptest! {
    /// Any value of any key: the unit loads, each bad line is a warning, and what is kept
    /// is well formed.
    #[test]
    fn any_socket_section_loads(
        lines in proptest::collection::vec((0..KEYS.len(), "[ -~]{0,40}"), 0..12)
    ) {
        let mut text = String::from("[Socket]\n");
        for (k, v) in &lines {
            text.push_str(&format!("{}={}\n", KEYS[*k], v.replace('\\', "")));
        }
        let u = unit("p.socket", &text);
        let s = u.socket.as_ref().expect("a socket");
        for l in &s.listen {
            let again = match l.kind {
                ListenKind::Netlink => parse_netlink(&l.address.to_string()),
                _ => parse_address(&l.address.to_string()),
            };
            proptest::prop_assert_eq!(again, Ok(l.address.clone()));
        }
        proptest::prop_assert!(s.symlinks.iter().all(|p| p.is_absolute()));
        proptest::prop_assert!(s.fd_name.as_deref().is_none_or(|n| !n.contains(':')));
    }

    /// An address that parses prints as something that parses to it again.
    #[test]
    fn addresses_round_trip(text in "[@/0-9a-f:.\\[\\]a-z]{0,30}") {
        if let Ok(a) = parse_address(&text) {
            proptest::prop_assert_eq!(parse_address(&a.to_string()), Ok(a));
        }
    }
}
