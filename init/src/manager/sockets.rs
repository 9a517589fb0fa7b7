//! Socket units (systemd.socket(5), `Accept=no`): their start makes the listening
//! sockets in PID 1, so that clients connect and queue before the service runs; the
//! service's main process gets them at 3.. (`$LISTEN_FDS`, sd_listen_fds(3)); traffic on a
//! socket whose service is not running starts it; the stop closes them. A socket that
//! keeps firing while its service will not start (a missing binary, the service's start
//! limit) fails at its trigger limit (`TriggerLimitIntervalSec=`, `TriggerLimitBurst=`:
//! 20 activations in 2 s by default, as systemd's `Accept=no`) instead of spinning PID 1's
//! loop.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use super::*;
use crate::sys::listen::ListenSpec;
use crate::unit::socket::{Address, ListenKind, Socket};

/// A socket unit's open sockets and its recent activations.
#[derive(Default)]
pub(super) struct Listening {
    fds: Vec<OwnedFd>,
    triggers: Vec<Duration>,
}

fn spec(
    socket: &Socket,
    kind: ListenKind,
    address: &Address,
    first: bool,
    owner: Option<(u32, u32)>,
) -> ListenSpec {
    ListenSpec {
        kind,
        address: address.clone(),
        socket_mode: socket.socket_mode,
        directory_mode: socket.directory_mode,
        pass_credentials: socket.pass_credentials,
        pass_security: socket.pass_security,
        receive_buffer: socket.receive_buffer,
        send_buffer: socket.send_buffer,
        backlog: socket.backlog,
        writable: socket.writable,
        owner,
        // systemd links `Symlinks=` to the unit's one file-system socket.
        symlinks: match first {
            true => socket.symlinks.clone(),
            false => Vec::new(),
        },
    }
}

impl Manager<'_> {
    /// The start job of a socket unit: every `Listen*=` socket made, or none.
    pub(super) fn start_socket(&mut self, name: &UnitName) -> Result<(), String> {
        if self.listening.contains_key(name) {
            return Ok(());
        }
        let slot = self.slots.get(name).ok_or("not loaded")?;
        let socket = slot.unit.socket.as_ref().ok_or("not a socket unit")?;
        if socket.accept {
            return Err("Accept=yes is not implemented by Berth".into());
        }
        if socket.listen.is_empty() {
            return Err(
                "Unit has no Listen setting (ListenStream=, ListenDatagram=, ...). Refusing."
                    .into(),
            );
        }
        let service = socket.service_of(name).ok_or("no service to activate")?;
        if !self.slots.contains_key(&service) && self.loader.load(service.as_str()).is_err() {
            return Err(format!("service {service} not loaded, refusing"));
        }
        let owner = self.socket_owner(socket)?;
        // `Symlinks=` point at the first file-system socket.
        let linked = socket
            .listen
            .iter()
            .position(|l| matches!(l.address, Address::Path(_)));
        let mut fds = Vec::new();
        for (i, l) in socket.listen.iter().enumerate() {
            let first = linked == Some(i);
            let fd = self
                .sys
                .listen_socket(&spec(socket, l.kind, &l.address, first, owner))
                .map_err(|e| {
                    let why = crate::sys::service_spawn::errno_words(&e);
                    format!("Failed to create listening socket ({}): {why}", l.address)
                })?;
            fds.push(fd);
        }
        self.listening.insert(
            name.clone(),
            Listening {
                fds,
                ..Listening::default()
            },
        );
        Ok(())
    }

    /// `SocketUser=`/`SocketGroup=` as IDs (the user's group when only the user is set);
    /// `None` leaves the files root's.
    fn socket_owner(&self, socket: &Socket) -> Result<Option<(u32, u32)>, String> {
        use super::environment;
        let user = match &socket.socket_user {
            Some(name) => Some(environment::user(self.sys, name).map_err(|e| e.to_string())?),
            None => None,
        };
        let gid = match &socket.socket_group {
            Some(name) => Some(environment::group(self.sys, name).map_err(|e| e.to_string())?),
            None => user.as_ref().map(|u| u.gid),
        };
        Ok(match (user, gid) {
            (None, None) => None,
            (user, gid) => Some((user.map_or(0, |u| u.uid), gid.unwrap_or(0))),
        })
    }

    /// The stop of a socket unit: its sockets closed, and with `RemoveOnStop=` their files
    /// and links removed.
    pub(super) fn stop_socket(&mut self, name: &UnitName) {
        self.listening.remove(name);
        let Some(socket) = self.slots.get(name).and_then(|s| s.unit.socket.as_ref()) else {
            return;
        };
        if !socket.remove_on_stop {
            return;
        }
        let paths = socket.listen.iter().filter_map(|l| match &l.address {
            Address::Path(p) => Some(p),
            _ => None,
        });
        for path in paths.chain(&socket.symlinks) {
            if let Err(e) = self.sys.remove_file(path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    self.log(&format!(
                        "berth: {name}: cannot remove {}: {e}",
                        path.display()
                    ));
                }
            }
        }
    }

    /// Whether the service of a listening socket runs (systemd's `running` sub-state).
    pub(super) fn socket_service_running(&self, socket: &UnitName) -> bool {
        self.listening.contains_key(socket) && self.service_idle(socket).is_none()
    }

    /// systemd's `Triggers=` and `Listen=` (one per socket, `PATH (Stream)`) of a socket
    /// unit, and `TriggeredBy=` of a service (the loaded sockets that activate it).
    pub(super) fn socket_properties(
        &self,
        name: &UnitName,
        unit: &crate::unit::model::Unit,
    ) -> Vec<(&'static str, String)> {
        let mut props = Vec::new();
        if let Some(socket) = &unit.socket {
            if let Some(service) = socket.service_of(name) {
                props.push(("Triggers", service.to_string()));
            }
            for l in &socket.listen {
                props.push(("Listen", format!("{} ({})", l.address, l.kind.name())));
            }
        }
        if unit.service.is_some() {
            let by: Vec<String> = self
                .slots
                .keys()
                .filter(|socket| self.hands_over(socket, name))
                .map(|socket| socket.to_string())
                .collect();
            if !by.is_empty() {
                props.push(("TriggeredBy", by.join(" ")));
            }
        }
        props
    }

    /// Closes every socket unit's sockets (shutdown's unmounts come next, and a bound
    /// socket keeps its file system busy).
    pub fn close_sockets(&mut self) {
        self.listening.clear();
    }

    /// Whether `socket` hands its sockets to `service` (systemd's TriggeredBy=): it
    /// activates the service (`Service=` or the same name), or the service names it in
    /// `Sockets=`.
    fn hands_over(&self, socket: &UnitName, service: &UnitName) -> bool {
        let named = self
            .slots
            .get(service)
            .and_then(|s| s.unit.service.as_ref())
            .is_some_and(|s| s.sockets.contains(socket));
        named
            || self
                .slots
                .get(socket)
                .and_then(|s| s.unit.socket.as_ref()?.service_of(socket))
                .as_ref()
                == Some(service)
    }

    /// The listening socket units that hand their sockets to `service`.
    fn sockets_of(&self, service: &UnitName) -> Vec<&UnitName> {
        self.listening
            .keys()
            .filter(|socket| self.hands_over(socket, service))
            .collect()
    }

    /// The descriptors and names for `service`'s main process, in the order of the socket
    /// units' names and their `Listen*=` lines.
    pub(super) fn socket_fds_for(&self, service: &UnitName) -> Vec<(RawFd, String)> {
        let mut out = Vec::new();
        for socket in self.sockets_of(service) {
            let name = self
                .slots
                .get(socket)
                .and_then(|s| s.unit.socket.as_ref())
                .map(|s| s.fd_name_of(socket))
                .unwrap_or_else(|| socket.to_string());
            if let Some(l) = self.listening.get(socket) {
                out.extend(l.fds.iter().map(|fd| (fd.as_raw_fd(), name.clone())));
            }
        }
        out
    }

    /// Whether traffic on `socket` should start its service: it is not running, has no
    /// job, and the machine is not shutting down.
    fn service_idle(&self, socket: &UnitName) -> Option<UnitName> {
        if self.stopping_all {
            return None;
        }
        let service = self
            .slots
            .get(socket)?
            .unit
            .socket
            .as_ref()?
            .service_of(socket)?;
        if self.pending.contains_key(&service) || self.running.contains_key(&service) {
            return None;
        }
        match self.slots.get(&service).map(Slot::active_state) {
            None | Some(Active::Inactive) | Some(Active::Failed) => Some(service),
            Some(_) => None,
        }
    }

    /// The sockets the event loop watches for traffic: those whose service is idle.
    pub fn watched_sockets(&self) -> Vec<(UnitName, BorrowedFd<'_>)> {
        self.listening
            .iter()
            .filter(|(name, _)| self.service_idle(name).is_some())
            .flat_map(|(name, l)| l.fds.iter().map(move |fd| (name.clone(), fd.as_fd())))
            .collect()
    }

    /// Traffic on `socket`: its service is started (systemd's `socket_enter_running`),
    /// unless the trigger limit is hit, which fails the socket.
    pub fn socket_traffic(&mut self, socket: &UnitName) {
        let Some(service) = self.service_idle(socket) else {
            return;
        };
        let now = self.sys.now();
        let (interval, burst) = self
            .slots
            .get(socket)
            .and_then(|s| s.unit.socket.as_ref())
            .map_or((Duration::ZERO, 0), |s| {
                (s.trigger_limit_interval, s.trigger_limit_burst)
            });
        let hit = match self.listening.get_mut(socket) {
            // A zero interval or burst turns the limit off.
            Some(_) if interval.is_zero() || burst == 0 => false,
            Some(l) => {
                l.triggers.retain(|t| now.saturating_sub(*t) < interval);
                l.triggers.push(now);
                l.triggers.len() > burst as usize
            }
            None => return,
        };
        if hit {
            self.log(&format!(
                "berth: {socket}: Trigger limit hit, refusing further activation."
            ));
            self.listening.remove(socket);
            if let Some(slot) = self.slots.get_mut(socket) {
                slot.active = false;
                slot.failed = true;
            }
            self.log(&format!("berth: FAILED {socket}: trigger-limit-hit"));
            return;
        }
        self.enqueue_start(&service);
        self.fail_unmet_and_dispatch();
    }
}
