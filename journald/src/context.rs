//! Who and where a message comes from: the machine's identity (`_BOOT_ID`, `_MACHINE_ID`,
//! `_HOSTNAME`, read once) and the sending process's (`_PID`, `_UID`, `_GID` from the
//! socket's credentials, `_COMM`, `_EXE`, `_CMDLINE`, `_SYSTEMD_CGROUP` and, when the
//! cgroup names one, `_SYSTEMD_UNIT`, from `/proc/PID`), plus the clocks.

use crate::entry::{Entry, Id128};
use crate::stream::is_unit_name;
use std::path::Path;

/// The machine's fields, the same on every entry of this boot.
#[derive(Clone, Debug)]
pub struct Identity {
    pub boot_id: Id128,
    pub machine_id: Option<Id128>,
    pub hostname: Option<Vec<u8>>,
}

impl Identity {
    /// Reads the boot id from `/proc/sys/kernel/random/boot_id` (all zero if unreadable),
    /// the machine id from `machine_id_file`, the hostname from uname.
    pub fn load(machine_id_file: &Path) -> Identity {
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .and_then(|t| Id128::parse(&t))
            .unwrap_or_default();
        let machine_id = std::fs::read_to_string(machine_id_file)
            .ok()
            .and_then(|t| Id128::parse(&t));
        let hostname = nix::unistd::gethostname()
            .ok()
            .map(|h| h.as_encoded_bytes().to_vec())
            .filter(|h| !h.is_empty());
        Identity {
            boot_id,
            machine_id,
            hostname,
        }
    }

    /// Appends `_BOOT_ID`, `_MACHINE_ID`, `_HOSTNAME`.
    pub fn stamp(&self, entry: &mut Entry) {
        entry.push("_BOOT_ID", self.boot_id.to_string());
        if let Some(id) = self.machine_id {
            entry.push("_MACHINE_ID", id.to_string());
        }
        if let Some(host) = &self.hostname {
            entry.push("_HOSTNAME", host.clone());
        }
    }
}

/// The sending process, as far as it could be learnt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Peer {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: Option<Vec<u8>>,
    pub exe: Option<Vec<u8>>,
    pub cmdline: Option<Vec<u8>>,
    pub cgroup: Option<String>,
    pub unit: Option<String>,
}

impl Peer {
    /// The peer with credentials from the socket and the rest from `/proc/PID` (a process
    /// already gone leaves those fields out).
    pub fn from_proc(pid: u32, uid: u32, gid: u32) -> Peer {
        Peer::from_proc_root(Path::new("/proc"), pid, uid, gid)
    }

    /// As [`Peer::from_proc`], under another proc root (tests).
    pub fn from_proc_root(proc_root: &Path, pid: u32, uid: u32, gid: u32) -> Peer {
        let dir = proc_root.join(pid.to_string());
        let comm = std::fs::read(dir.join("comm")).ok().map(|mut c| {
            while c.last() == Some(&b'\n') {
                c.pop();
            }
            c
        });
        let exe = std::fs::read_link(dir.join("exe"))
            .ok()
            .map(|p| p.into_os_string().into_encoded_bytes());
        let cmdline = std::fs::read(dir.join("cmdline")).ok().map(|mut c| {
            while c.last() == Some(&0) {
                c.pop();
            }
            c.iter_mut().for_each(|b| {
                if *b == 0 {
                    *b = b' '
                }
            });
            c
        });
        let cgroup = std::fs::read_to_string(dir.join("cgroup"))
            .ok()
            .and_then(|text| cgroup_v2_path(&text));
        let unit = cgroup.as_deref().and_then(unit_of_cgroup);
        Peer {
            pid,
            uid,
            gid,
            comm: comm.filter(|c| !c.is_empty()),
            exe,
            cmdline: cmdline.filter(|c| !c.is_empty()),
            cgroup,
            unit,
        }
    }

    /// Appends the trusted process fields; `unit` (the stream header's, when given)
    /// takes the place of the one from the cgroup.
    pub fn stamp(&self, entry: &mut Entry, unit: Option<&str>) {
        if self.pid != 0 {
            entry.push("_PID", self.pid.to_string());
        }
        entry.push("_UID", self.uid.to_string());
        entry.push("_GID", self.gid.to_string());
        if let Some(v) = &self.comm {
            entry.push("_COMM", v.clone());
        }
        if let Some(v) = &self.exe {
            entry.push("_EXE", v.clone());
        }
        if let Some(v) = &self.cmdline {
            entry.push("_CMDLINE", v.clone());
        }
        if let Some(v) = &self.cgroup {
            entry.push("_SYSTEMD_CGROUP", v.clone());
        }
        if let Some(unit) = unit.or(self.unit.as_deref()) {
            entry.push("_SYSTEMD_UNIT", unit.to_string());
        }
    }
}

/// The unified hierarchy's path from `/proc/PID/cgroup` (`0::/system.slice/x.service`).
pub fn cgroup_v2_path(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_string)
}

/// The innermost unit a cgroup path names (`/system.slice/kubelet.service` →
/// `kubelet.service`), slices aside.
pub fn unit_of_cgroup(path: &str) -> Option<String> {
    path.split('/')
        .rev()
        .find(|part| is_unit_name(part) && !part.ends_with(".slice"))
        .map(str::to_string)
}

/// (realtime, monotonic) now, in µs.
pub fn now_usec() -> (u64, u64) {
    let realtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let monotonic = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|ts| ts.tv_sec() as u64 * 1_000_000 + ts.tv_nsec() as u64 / 1_000)
        .unwrap_or(0);
    (realtime, monotonic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_from_cgroup() {
        let text = "0::/system.slice/kubelet.service\n";
        let path = cgroup_v2_path(text).unwrap();
        assert_eq!(unit_of_cgroup(&path).as_deref(), Some("kubelet.service"));
        assert_eq!(unit_of_cgroup("/system.slice"), None);
        assert_eq!(unit_of_cgroup("/"), None);
        assert_eq!(
            unit_of_cgroup("/kubepods.slice/cri-containerd-1.scope/x").as_deref(),
            Some("cri-containerd-1.scope")
        );
    }

    #[test]
    fn own_process_from_proc() {
        let me = std::process::id();
        let peer = Peer::from_proc(me, 0, 0);
        assert!(peer.comm.is_some());
        assert!(peer.exe.is_some());
        let gone = Peer::from_proc_root(Path::new("/nonexistent"), 1, 2, 3);
        assert_eq!(gone.comm, None);
        let mut e = Entry::default();
        gone.stamp(&mut e, Some("a.service"));
        assert_eq!(e.get("_SYSTEMD_UNIT"), Some(&b"a.service"[..]));
        assert_eq!(e.get("_UID"), Some(&b"2"[..]));
    }
}
