//! The client's loop: ask the servers, select, act, tell the service manager, sleep.
//!
//! Before the first sync it retries quickly (2 s, doubling to 64 s); after it, it polls
//! every 64 s, doubling to 1024 s while all goes well (chrony's and ntpd's default
//! `minpoll 6`, `maxpoll 10`). `READY=1` goes out after the first successful sync, so
//! `time-sync.target` (and the units after it that check TLS certificates) waits for a
//! right clock; if no server answers within the ready timeout, `READY=1` goes out anyway
//! with a STATUS saying the clock is not synchronized, since a node without a time
//! server must still boot, and the client keeps trying.

pub mod policy;

use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;

use crate::clock::Clock;
use crate::ntp::query::{sample_server, QueryOptions};
use crate::ntp::select::{select, SelectError, Selection};
use crate::servers::{self, ServerList, ServersError};
pub use policy::{Action, Policy};

#[derive(Debug, Clone)]
pub struct Options {
    pub query: QueryOptions,
    pub policy: Policy,
    pub poll_min_log2: u8,
    pub poll_max_log2: u8,
    /// How long to wait for the first sync before `READY=1` is sent anyway.
    pub ready_timeout: Duration,
    /// One round, then return (`ntpdate`-like).
    pub once: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            query: QueryOptions::default(),
            policy: Policy::default(),
            poll_min_log2: 6,
            poll_max_log2: 10,
            ready_timeout: Duration::from_secs(60),
            once: false,
        }
    }
}

#[derive(Debug, Error)]
pub enum SyncError {
    #[error("no NTP server to ask ({0}): give --server, or a DHCP lease with NTP servers")]
    NoServers(String),
    #[error(transparent)]
    Servers(#[from] ServersError),
    #[error("no server could be used: {}", .0.join("; "))]
    NoneAnswered(Vec<String>),
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error("{action} refused")]
    Refused { action: Action },
    #[error("{action} failed: {source}{}", if source.raw_os_error() == Some(libc::EPERM) { " (setting the clock needs CAP_SYS_TIME)" } else { "" })]
    Apply {
        action: Action,
        source: std::io::Error,
    },
}

/// What one successful round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    pub selection: Selection,
    pub action: Action,
}

/// The client's state between rounds.
pub struct Client<'a> {
    clock: &'a dyn Clock,
    options: Options,
    log: &'a dyn Fn(&str),
    synced: bool,
    poll_log2: u8,
}

impl<'a> Client<'a> {
    pub fn new(clock: &'a dyn Clock, options: Options, log: &'a dyn Fn(&str)) -> Client<'a> {
        let poll_log2 = options.poll_min_log2;
        Client {
            clock,
            options,
            log,
            synced: false,
            poll_log2,
        }
    }

    /// Whether the clock has been set.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// One round against `servers`: sample each, select, decide, act.
    pub fn round(&mut self, servers: &[String]) -> Result<Round, SyncError> {
        let mut samples = Vec::new();
        let mut errors = Vec::new();
        for name in servers {
            let result =
                servers::resolve(name)
                    .map_err(|e| e.to_string())
                    .and_then(|addr: SocketAddr| {
                        sample_server(self.clock, addr, &self.options.query)
                            .map_err(|e| e.to_string())
                    });
            match result {
                Ok(sample) => samples.push(sample),
                Err(e) => {
                    (self.log)(&format!("server {name}: {e}"));
                    errors.push(e);
                }
            }
        }
        if samples.is_empty() {
            return Err(SyncError::NoneAnswered(errors));
        }
        let selection = select(&samples)?;
        for liar in &selection.falsetickers {
            (self.log)(&format!(
                "server {} outvoted: it says {}, {} other server(s) agree on {}",
                liar.server, liar.offset, selection.agreeing, selection.chosen.offset
            ));
        }
        let action = self.options.policy.decide(&selection, self.synced);
        let applied = match &action {
            Action::Step(by) => self.clock.step(*by),
            Action::Slew(by) => {
                self.clock
                    .slew(*by, self.poll_log2, selection.chosen.error_bound())
            }
            Action::Refuse { .. } => return Err(SyncError::Refused { action }),
        };
        applied.map_err(|source| SyncError::Apply {
            action: action.clone(),
            source,
        })?;
        self.synced = true;
        Ok(Round { selection, action })
    }

    /// Runs until `--once` is done or forever; `servers` gives the current server list
    /// (re-read each round: a renewed lease may change it), `notify` reaches the service
    /// manager. Returns only with `--once` or when there is no server at all.
    pub fn run(
        &mut self,
        servers: &dyn Fn() -> Result<ServerList, ServersError>,
        notify: &dyn Fn(&str),
    ) -> Result<Round, SyncError> {
        let started = self.clock.monotonic();
        let mut ready_sent = false;
        let mut retry = Duration::from_secs(2);
        loop {
            let list = servers()?;
            if list.names.is_empty() {
                return Err(SyncError::NoServers(list.source));
            }
            let result = self.round(&list.names);
            let wait = match &result {
                Ok(round) => {
                    (self.log)(&format!(
                        "{}: {} ({} of {} server(s) agree)",
                        round.selection.chosen,
                        round.action,
                        round.selection.agreeing,
                        list.names.len()
                    ));
                    if !ready_sent {
                        notify(&format!(
                            "READY=1\nSTATUS=synchronized to {}",
                            round.selection.chosen.server
                        ));
                        ready_sent = true;
                    }
                    if self.options.once {
                        return result;
                    }
                    let wait = Duration::from_secs(1 << self.poll_log2);
                    self.poll_log2 = (self.poll_log2 + 1).min(self.options.poll_max_log2);
                    wait
                }
                Err(e) => {
                    (self.log)(&format!(
                        "no sync from {} ({}): {e}",
                        list.names.join(", "),
                        list.source
                    ));
                    if self.options.once {
                        return result;
                    }
                    self.ready_anyway(started, &mut ready_sent, notify);
                    if self.synced {
                        self.poll_log2 = self.options.poll_min_log2;
                        Duration::from_secs(1 << self.poll_log2)
                    } else {
                        let wait = retry;
                        retry = (retry * 2).min(Duration::from_secs(64));
                        wait
                    }
                }
            };
            // Before the first sync, wake at the ready deadline rather than back off past
            // it: READY=1 is due within the ready timeout (the unit's TimeoutStartSec
            // counts on it), not one back-off later. With the retries doubling (2, 4, …,
            // 32 s) and each failed round taking its timeouts, the 60 s deadline used to
            // be checked only at about 90 s, when the service manager had already killed
            // the client, so a node whose cloud time source did not answer never reached
            // multi-user.target (`berth: ready`).
            let wait = match ready_sent {
                true => wait,
                false => wait.min(
                    self.options
                        .ready_timeout
                        .saturating_sub(self.clock.monotonic().saturating_sub(started)),
                ),
            };
            self.clock.sleep(wait);
            self.ready_anyway(started, &mut ready_sent, notify);
        }
    }

    /// Before the first sync: `READY=1` anyway, with the clock unsynchronized, once the
    /// ready timeout has passed since `started`.
    fn ready_anyway(&self, started: Duration, ready_sent: &mut bool, notify: &dyn Fn(&str)) {
        if !*ready_sent
            && self.clock.monotonic().saturating_sub(started) >= self.options.ready_timeout
        {
            (self.log)(&format!(
                "not synchronized after {:?}: reaching time-sync.target with the clock unsynchronized; still trying",
                self.options.ready_timeout
            ));
            notify("READY=1\nSTATUS=not synchronized");
            *ready_sent = true;
        }
    }
}
