//! Socket activation, as systemd-journald has it: PID 1 binds the journal's sockets from
//! socket units (`systemd-journald.socket`: the stdout stream and the native datagram
//! socket; `systemd-journald-dev-log.socket`: `/run/systemd/journal/dev-log`, which
//! `/dev/log` links to) and passes them with the sd_listen_fds(3) protocol: descriptors
//! 3, 4, … with `LISTEN_FDS=N`, `LISTEN_PID=` the collector's pid and `LISTEN_FDNAMES=`.
//! So the sockets exist, and logging works, before the collector runs and while it
//! restarts: what is sent meanwhile waits in them.
//!
//! Each passed socket is matched to a source by its type and the path it is bound to,
//! as journald does (`sd_is_socket_unix(fd, SOCK_STREAM, 1, "/run/systemd/journal/stdout")`
//! and so on, [`source_of`]); one that matches none is said and closed. A source no
//! socket was passed for is bound by the daemon itself, as when it is run by hand. The
//! file of a passed socket is PID 1's: the daemon neither replaces it nor changes its
//! mode, and (as for the sockets it binds) leaves it in place at exit.

use crate::daemon::Options;
use crate::sys::{self, SocketError, SocketInfo};
use nix::sys::socket::{AddressFamily, SockType};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};

/// Where `systemd-journald-dev-log.socket` binds the syslog socket; `/dev/log` links here.
pub const DEV_LOG: &str = "/run/systemd/journal/dev-log";

/// One descriptor PID 1 passed, with its number and its name in `LISTEN_FDNAMES`.
#[derive(Debug)]
pub struct ListenFd {
    pub fd: OwnedFd,
    pub number: RawFd,
    pub name: Option<String>,
}

/// Socket activation's environment that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error("LISTEN_PID={0:?} is not a process id")]
    Pid(String),
    #[error("LISTEN_FDS={0:?} is not a number of descriptors")]
    Count(String),
    #[error(transparent)]
    Take(#[from] sys::ListenFdsError),
}

/// What socket activation's environment passes to the process `own_pid`: how many
/// descriptors, and their names (empty when `LISTEN_FDNAMES` is missing or does not
/// name each one: they only label messages). As sd_listen_fds(3): nothing when
/// `LISTEN_PID` is missing or another process's, and an error for values that are not
/// numbers.
pub fn parse_env(
    pid: Option<&str>,
    fds: Option<&str>,
    names: Option<&str>,
    own_pid: u32,
) -> Result<(usize, Vec<String>), ActivationError> {
    let Some(pid) = pid else {
        return Ok((0, Vec::new()));
    };
    match pid.parse::<u32>() {
        Ok(0) | Err(_) => return Err(ActivationError::Pid(pid.into())),
        Ok(pid) if pid != own_pid => return Ok((0, Vec::new())),
        Ok(_) => {}
    }
    let Some(fds) = fds else {
        return Ok((0, Vec::new()));
    };
    let count = fds
        .parse::<usize>()
        .ok()
        .filter(|n| *n <= (RawFd::MAX - sys::LISTEN_FDS_START) as usize)
        .ok_or_else(|| ActivationError::Count(fds.into()))?;
    let names = names
        .map(|n| n.split(':').map(String::from).collect::<Vec<_>>())
        .filter(|n| n.len() == count)
        .unwrap_or_default();
    Ok((count, names))
}

/// Reads and removes `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES`, and takes the
/// descriptors they pass to this process, close-on-exec again (sd_listen_fds(3) with
/// `unset_environment`). `main` calls it first, before any thread runs: it changes the
/// environment.
pub fn listen_fds() -> Result<Vec<ListenFd>, ActivationError> {
    const VARS: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];
    let [pid, fds, names] =
        VARS.map(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()));
    for name in VARS {
        std::env::remove_var(name);
    }
    let (count, names) = parse_env(
        pid.as_deref(),
        fds.as_deref(),
        names.as_deref(),
        std::process::id(),
    )?;
    let fds = sys::take_listen_fds(count)?;
    Ok(fds
        .into_iter()
        .zip(sys::LISTEN_FDS_START..)
        .enumerate()
        .map(|(i, (fd, number))| ListenFd {
            fd,
            number,
            name: names.get(i).cloned(),
        })
        .collect())
}

/// A source a passed socket can serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Stdout,
    Native,
    Syslog,
}

/// The paths at which each source takes a passed socket; `None` or empty: the source is
/// left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    pub stdout: Option<PathBuf>,
    pub native: Option<PathBuf>,
    pub syslog: Vec<PathBuf>,
}

impl Wanted {
    /// The options' paths; for syslog also what its path resolves to when it is a
    /// symbolic link (`/dev/log` → [`DEV_LOG`]), and [`DEV_LOG`] itself.
    pub fn new(options: &Options) -> Wanted {
        Wanted {
            stdout: options.stdout_socket.clone(),
            native: options.native_socket.clone(),
            syslog: options
                .syslog_socket
                .as_deref()
                .map(syslog_paths)
                .unwrap_or_default(),
        }
    }
}

/// `path`, its link's target, its resolved path, and [`DEV_LOG`].
fn syslog_paths(path: &Path) -> Vec<PathBuf> {
    let mut paths = vec![path.to_path_buf()];
    if let Ok(target) = std::fs::read_link(path) {
        // A relative target is relative to the link's folder; join keeps an absolute one.
        paths.push(path.parent().unwrap_or(Path::new("/")).join(target));
    }
    if let Ok(resolved) = std::fs::canonicalize(path) {
        paths.push(resolved);
    }
    paths.push(PathBuf::from(DEV_LOG));
    let mut unique = Vec::with_capacity(paths.len());
    for p in paths {
        if !unique.contains(&p) {
            unique.push(p);
        }
    }
    unique
}

/// The source a passed socket serves, as systemd-journald tells them apart: a listening
/// unix stream socket at the stdout path, a unix datagram socket at the native path or
/// at one of syslog's.
pub fn source_of(info: &SocketInfo, wanted: &Wanted) -> Option<Source> {
    if info.family != Some(AddressFamily::Unix) {
        return None;
    }
    let path = info.path.as_deref()?;
    match info.kind? {
        SockType::Stream if info.listening && wanted.stdout.as_deref() == Some(path) => {
            Some(Source::Stdout)
        }
        SockType::Datagram if wanted.native.as_deref() == Some(path) => Some(Source::Native),
        SockType::Datagram if wanted.syslog.iter().any(|p| p == path) => Some(Source::Syslog),
        _ => None,
    }
}

/// The daemon's sockets: those passed to it, and those it bound itself.
#[derive(Debug, Default)]
pub struct Sockets {
    pub stdout: Option<UnixListener>,
    pub native: Option<UnixDatagram>,
    pub syslog: Option<UnixDatagram>,
}

impl Sockets {
    /// Takes the `passed` sockets that serve a source of `options` (non-blocking, with the
    /// options the daemon sets on its own), says and closes the others, and binds the
    /// sources left.
    pub fn open(options: &Options, passed: Vec<ListenFd>) -> Result<Sockets, SocketError> {
        let wanted = Wanted::new(options);
        let mut sockets = Sockets::default();
        for listen in passed {
            let info = sys::socket_info(listen.fd.as_fd());
            let path = info.path.clone().unwrap_or_default();
            let source = source_of(&info, &wanted);
            match source {
                Some(Source::Stdout) if sockets.stdout.is_none() => {
                    sockets.stdout = Some(sys::adopt_stream(listen.fd, &path)?);
                }
                Some(Source::Native) if sockets.native.is_none() => {
                    sockets.native = Some(sys::adopt_datagram(listen.fd, &path)?);
                }
                Some(Source::Syslog) if sockets.syslog.is_none() => {
                    sockets.syslog = Some(sys::adopt_datagram(listen.fd, &path)?);
                }
                Some(source) => say_closed(&listen, &info, &format!("a second {source:?} socket")),
                None => say_closed(&listen, &info, "serves no source"),
            }
        }
        if sockets.stdout.is_none() {
            sockets.stdout = options
                .stdout_socket
                .as_deref()
                .map(sys::bind_stream)
                .transpose()?;
        }
        if sockets.native.is_none() {
            sockets.native = options
                .native_socket
                .as_deref()
                .map(sys::bind_datagram)
                .transpose()?;
        }
        if sockets.syslog.is_none() {
            sockets.syslog = options
                .syslog_socket
                .as_deref()
                .map(sys::bind_datagram)
                .transpose()?;
        }
        Ok(sockets)
    }
}

/// Says that the passed socket `listen` is not used (its descriptor is closed when it is
/// dropped, right after).
fn say_closed(listen: &ListenFd, info: &SocketInfo, why: &str) {
    let name = listen
        .name
        .as_deref()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    crate::say!(
        "berth-journald: passed fd {}{name}, a {info}, {why}; closed",
        listen.number
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn unix(kind: SockType, listening: bool, path: &str) -> SocketInfo {
        SocketInfo {
            family: Some(AddressFamily::Unix),
            kind: Some(kind),
            listening,
            path: Some(path.into()),
        }
    }

    /// As PID 1 passes them on a node: the options' defaults, /dev/log a link.
    fn node() -> Wanted {
        Wanted {
            stdout: Some("/run/systemd/journal/stdout".into()),
            native: Some("/run/systemd/journal/socket".into()),
            syslog: vec!["/dev/log".into(), DEV_LOG.into()],
        }
    }

    #[test]
    fn the_journal_units_sockets_match_their_sources() {
        let w = node();
        let stdout = unix(SockType::Stream, true, "/run/systemd/journal/stdout");
        let native = unix(SockType::Datagram, false, "/run/systemd/journal/socket");
        let dev_log = unix(SockType::Datagram, false, DEV_LOG);
        let at_dev_log = unix(SockType::Datagram, false, "/dev/log");
        assert_eq!(source_of(&stdout, &w), Some(Source::Stdout));
        assert_eq!(source_of(&native, &w), Some(Source::Native));
        assert_eq!(source_of(&dev_log, &w), Some(Source::Syslog));
        assert_eq!(source_of(&at_dev_log, &w), Some(Source::Syslog));
    }

    #[test]
    fn a_socket_of_the_wrong_type_family_or_state_matches_nothing() {
        let w = node();
        let cases = [
            // Not listening: sd_is_socket_unix(fd, SOCK_STREAM, 1, ...) refuses it.
            unix(SockType::Stream, false, "/run/systemd/journal/stdout"),
            // A stream at a datagram source's path, a datagram at the stream's.
            unix(SockType::Stream, true, "/run/systemd/journal/socket"),
            unix(SockType::Datagram, false, "/run/systemd/journal/stdout"),
            unix(SockType::SeqPacket, true, "/run/systemd/journal/stdout"),
            // Elsewhere: the forward socket, a stranger.
            unix(SockType::Datagram, false, "/run/systemd/journal/syslog"),
            unix(SockType::Datagram, false, "/tmp/other"),
            SocketInfo {
                family: Some(AddressFamily::Inet),
                kind: Some(SockType::Datagram),
                listening: false,
                path: None,
            },
            SocketInfo {
                path: None,
                ..unix(SockType::Datagram, false, "")
            },
            SocketInfo::default(),
        ];
        for info in cases {
            assert_eq!(source_of(&info, &w), None, "{info:?}");
        }
    }

    #[test]
    fn a_source_left_out_takes_no_socket() {
        let w = Wanted::default();
        for info in [
            unix(SockType::Stream, true, "/run/systemd/journal/stdout"),
            unix(SockType::Datagram, false, "/run/systemd/journal/socket"),
            unix(SockType::Datagram, false, DEV_LOG),
        ] {
            assert_eq!(source_of(&info, &w), None, "{info:?}");
        }
    }

    #[test]
    fn syslog_takes_the_socket_its_link_points_at() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("journal/dev-log");
        std::fs::create_dir(dir.path().join("journal")).unwrap();
        let _socket = UnixDatagram::bind(&target).unwrap();
        let link = dir.path().join("log");
        std::os::unix::fs::symlink("journal/dev-log", &link).unwrap();
        let paths = syslog_paths(&link);
        assert_eq!(paths[0], link);
        assert!(paths.contains(&target), "{paths:?}");
        assert_eq!(paths.last(), Some(&PathBuf::from(DEV_LOG)));
        // Not a link: the path itself and DEV_LOG.
        assert_eq!(syslog_paths(&target), [target.clone(), DEV_LOG.into()]);
    }

    #[test]
    fn the_environment_is_read_as_sd_listen_fds_reads_it() {
        let own = 4242;
        let names = Some("stdout:socket:dev-log");
        let parsed = parse_env(Some("4242"), Some("3"), names, own).unwrap();
        assert_eq!(
            parsed,
            (3, vec!["stdout".into(), "socket".into(), "dev-log".into()])
        );
        // Another process's, or none: nothing passed to us.
        assert_eq!(parse_env(Some("1"), Some("3"), names, own).unwrap().0, 0);
        assert_eq!(parse_env(None, Some("3"), names, own).unwrap().0, 0);
        assert_eq!(parse_env(Some("4242"), None, names, own).unwrap().0, 0);
        assert_eq!(parse_env(Some("4242"), Some("0"), None, own).unwrap().0, 0);
        // Names that do not name each descriptor are left out.
        assert_eq!(
            parse_env(Some("4242"), Some("2"), names, own).unwrap(),
            (2, vec![])
        );
        assert_eq!(
            parse_env(Some("4242"), Some("1"), None, own).unwrap(),
            (1, vec![])
        );
        for (pid, fds) in [
            ("x", "3"),
            ("0", "3"),
            ("-1", "3"),
            ("4242", "-1"),
            ("4242", "three"),
        ] {
            assert!(
                parse_env(Some(pid), Some(fds), None, own).is_err(),
                "{pid} {fds}"
            );
        }
        assert!(parse_env(Some("4242"), Some("2147483647"), None, own).is_err());
    }

    #[test]
    fn bound_sockets_are_described_as_the_kernel_has_them() {
        let dir = tempfile::tempdir().unwrap();
        let stream = dir.path().join("stdout");
        let dgram = dir.path().join("socket");
        let listener = UnixListener::bind(&stream).unwrap();
        let datagram = UnixDatagram::bind(&dgram).unwrap();
        let unbound = UnixDatagram::unbound().unwrap();
        let (connected, _peer) = UnixStream::pair().unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(
            sys::socket_info(listener.as_fd()),
            unix(SockType::Stream, true, stream.to_str().unwrap())
        );
        assert_eq!(
            sys::socket_info(datagram.as_fd()),
            unix(SockType::Datagram, false, dgram.to_str().unwrap())
        );
        let info = sys::socket_info(unbound.as_fd());
        assert_eq!((info.kind, info.path), (Some(SockType::Datagram), None));
        let info = sys::socket_info(connected.as_fd());
        assert_eq!((info.kind, info.listening), (Some(SockType::Stream), false));
        assert_eq!(sys::socket_info(file.as_fd()), SocketInfo::default());
        assert_eq!(sys::socket_info(file.as_fd()).to_string(), "not a socket");
        assert_eq!(
            sys::socket_info(datagram.as_fd()).to_string(),
            format!("unix datagram socket at {}", dgram.display())
        );
    }
}
