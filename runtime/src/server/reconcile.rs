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
            if crate::pod::is_namespace_file(&paths.netns()) {
                continue;
            }
            eprintln!("berth-runtime: pod {id}: its network namespace is gone; now NotReady");
            if let Err(e) = self.pods.update(&id, |p| p.state = PodState::NotReady) {
                eprintln!("berth-runtime: pod {id}: {e}");
            }
        }
    }
}
