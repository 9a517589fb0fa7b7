//! `GetContainerEvents`: the stream of container lifecycle events the kubelet's evented
//! PLEG subscribes to. Each subscriber gets its own bounded queue; one that falls behind
//! by a whole queue is dropped (its stream ends), so the kubelet notices it missed events
//! and relists, and a client that never reads cannot make the daemon buffer without bound.
//!
//! Events are sent when the daemon itself creates, starts, stops or removes a container.
//! A container whose process exits on its own is reported by its status (the kubelet's
//! relist), not by an event here.

use std::sync::Mutex;

use tokio::sync::mpsc;

use super::records::{now_nanos, ContainerRecord};
use super::Daemon;
use crate::proto::v1::{ContainerEventResponse, ContainerEventType};
use crate::service::{ContainerEvent, ContainerEvents};

/// Events queued per subscriber before it is dropped.
const QUEUE: usize = 256;

/// What a subscriber receives.
pub type EventItem = Result<ContainerEventResponse, tonic::Status>;

/// The live subscribers.
#[derive(Debug, Default)]
pub struct Subscribers {
    senders: Mutex<Vec<mpsc::Sender<EventItem>>>,
}

impl Subscribers {
    /// A new subscriber's receiving end.
    pub fn subscribe(&self) -> mpsc::Receiver<EventItem> {
        let (tx, rx) = mpsc::channel(QUEUE);
        self.lock().push(tx);
        rx
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<mpsc::Sender<EventItem>>> {
        // A panic while holding the lock cannot leave the list half-changed.
        self.senders.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether anyone listens (so events are only built when they will be read).
    pub fn any(&self) -> bool {
        let mut senders = self.lock();
        senders.retain(|tx| !tx.is_closed());
        !senders.is_empty()
    }

    /// Sends `event` to every subscriber; closed and full ones are dropped.
    pub fn send(&self, event: &ContainerEventResponse) {
        self.lock()
            .retain(|tx| tx.try_send(Ok(event.clone())).is_ok());
    }
}

/// The CRI's name for a lifecycle step.
fn cri_event_type(kind: ContainerEvent) -> ContainerEventType {
    match kind {
        ContainerEvent::Created => ContainerEventType::ContainerCreatedEvent,
        ContainerEvent::Started => ContainerEventType::ContainerStartedEvent,
        ContainerEvent::Stopped => ContainerEventType::ContainerStoppedEvent,
        ContainerEvent::Deleted => ContainerEventType::ContainerDeletedEvent,
    }
}

impl ContainerEvents for Subscribers {
    /// Sends a lifecycle event for `record` with the pod's status and the statuses of
    /// the pod's remaining containers.
    fn container_event(&self, daemon: &Daemon, record: &ContainerRecord, kind: ContainerEvent) {
        if !self.any() {
            return;
        }
        let pod_status = daemon
            .pods
            .get(&record.pod_id)
            .map(|pod| daemon.pod_sandbox_status(&pod));
        let containers_statuses = daemon
            .containers
            .all()
            .into_iter()
            .filter(|(_, c)| c.pod_id == record.pod_id)
            .map(|(_, c)| daemon.status_of(&c))
            .collect();
        self.send(&ContainerEventResponse {
            container_id: record.id.clone(),
            container_event_type: cri_event_type(kind) as i32,
            created_at: now_nanos(),
            pod_sandbox_status: pod_status,
            containers_statuses,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> ContainerEventResponse {
        ContainerEventResponse {
            container_id: id.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn a_subscriber_gets_the_event_with_the_pod_and_its_containers() {
        use crate::service::tests::{container, pod, Harness};
        let mut h = Harness::new();
        let subs = std::sync::Arc::new(Subscribers::default());
        h.daemon.events = Some(subs.clone());
        let mut rx = subs.subscribe();
        let pod_id = h.daemon.run_pod(pod("web")).unwrap();
        let id = h
            .daemon
            .create_container(container(&pod_id, "app"))
            .unwrap();
        let event = rx.try_recv().unwrap().unwrap();
        assert_eq!(event.container_id, id);
        assert_eq!(
            event.container_event_type,
            ContainerEventType::ContainerCreatedEvent as i32
        );
        assert_eq!(event.pod_sandbox_status.unwrap().id, pod_id);
        assert_eq!(event.containers_statuses.len(), 1);
        assert_eq!(event.containers_statuses[0].id, id);
    }

    #[test]
    fn each_service_event_has_its_cri_type() {
        assert_eq!(
            [
                ContainerEvent::Created,
                ContainerEvent::Started,
                ContainerEvent::Stopped,
                ContainerEvent::Deleted
            ]
            .map(cri_event_type),
            [
                ContainerEventType::ContainerCreatedEvent,
                ContainerEventType::ContainerStartedEvent,
                ContainerEventType::ContainerStoppedEvent,
                ContainerEventType::ContainerDeletedEvent
            ]
        );
    }

    #[test]
    fn subscribers_get_events_and_slow_ones_are_dropped() {
        let subs = Subscribers::default();
        assert!(!subs.any());
        let mut fast = subs.subscribe();
        let slow = subs.subscribe();
        assert!(subs.any());
        for n in 0..QUEUE {
            subs.send(&event(&n.to_string()));
            let got = fast.try_recv().unwrap().unwrap();
            assert_eq!(got.container_id, n.to_string());
        }
        // `slow` never read: its queue is full now, the next event drops it.
        subs.send(&event("one too many"));
        assert_eq!(subs.lock().len(), 1);
        drop(slow);
        assert_eq!(
            fast.try_recv().unwrap().unwrap().container_id,
            "one too many"
        );
        drop(fast);
        assert!(!subs.any());
    }
}
