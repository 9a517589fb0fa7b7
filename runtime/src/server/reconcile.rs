//! Start-up reconciliation: the records say what the daemon made, the host says what still
//! exists. Containers need nothing here, since their state is always read from their
//! monitor's files and the OCI runtime (a container whose monitor vanished, e.g. after a
//! reboot, reports Exited or Unknown). Pods whose namespaces vanished (a reboot cleared
//! /run) are no longer Ready; the kubelet then stops and removes them.

use super::records::PodState;
use super::Daemon;
use crate::pod::PodPaths;

impl Daemon {
    /// Brings the pod records in line with the host.
    pub(super) fn reconcile(&self) {
        for (id, pod) in self.pods.all() {
            if pod.state != PodState::Ready || pod.host_network {
                continue;
            }
            let paths = PodPaths::new(&self.config.state, &id);
            if is_namespace_mount(&paths.netns()) {
                continue;
            }
            eprintln!("berth-runtime: pod {id}: its network namespace is gone; now NotReady");
            if let Err(e) = self.pods.update(&id, |p| p.state = PodState::NotReady) {
                eprintln!("berth-runtime: pod {id}: {e}");
            }
        }
    }
}

/// True if `path` is a bind mount of a namespace (nsfs), not a plain file left behind.
fn is_namespace_mount(path: &std::path::Path) -> bool {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let target = path.display().to_string();
    mountinfo.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let fstype = fields
            .iter()
            .position(|f| *f == "-")
            .and_then(|dash| fields.get(dash + 1));
        fields.get(4) == Some(&target.as_str()) && fstype == Some(&"nsfs")
    })
}
