//! The pod sandbox lifecycle. A pod is recorded NotReady before anything is made, so a
//! daemon killed half-way through a run finds the record at start and the kubelet's
//! stop and remove clean up what exists. That record is made durable while the pod is
//! set up (its fsyncs overlap the CNI plugins); the Ready version that replaces it is
//! not fsynced (see [`Daemon::run_pod`] for why that is enough). A failed run undoes its
//! steps in reverse and leaves no record. Every host step goes through
//! [`Host`](super::Host).

use super::records::{now_nanos, PodRecord, PodState};
use super::{Daemon, PodSpec, ServiceError};
use crate::pod::{self, PodIdentity, PodPaths};

impl PodRecord {
    /// The identity CNI plugins get.
    pub fn identity(&self) -> PodIdentity {
        PodIdentity {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            uid: self.uid.clone(),
        }
    }
}

/// Checks an id given by the client: not empty (a prefix of one is fine).
pub(crate) fn check_id(id: &str, field: &str) -> Result<(), ServiceError> {
    if id.is_empty() {
        return Err(ServiceError::invalid(field, "must not be empty"));
    }
    Ok(())
}

impl Daemon {
    /// The cgroup a pod gets when the kubelet names no parent.
    fn own_cgroup(&self, id: &str) -> String {
        format!("{}/pod-{id}", self.config.cgroup_parent)
    }

    /// The pod's folders under the state folder.
    pub(crate) fn pod_paths(&self, id: &str) -> PodPaths {
        PodPaths::new(&self.config.state, id)
    }

    /// Finds a pod by id or unique id prefix (`pod_sandbox_id`).
    pub(crate) fn find_pod(&self, id: &str) -> Result<Option<PodRecord>, ServiceError> {
        check_id(id, "pod_sandbox_id")?;
        if let Some(pod) = self.pods.get(id) {
            return Ok(Some(pod));
        }
        match self.pods.ids_with_prefix(id).as_slice() {
            [one] => Ok(self.pods.get(one)),
            [] => Ok(None),
            many => Err(ServiceError::invalid(
                "pod_sandbox_id",
                format!("{id:?} is ambiguous: {} pods match", many.len()),
            )),
        }
    }

    /// The pod `id` (or unique prefix), NotFound if there is none.
    pub(crate) fn pod(&self, id: &str) -> Result<PodRecord, ServiceError> {
        self.find_pod(id)?
            .ok_or_else(|| ServiceError::pod_not_found(id))
    }

    /// Runs a pod sandbox: its namespaces, PID init, `/etc` files and network; returns
    /// its id.
    pub fn run_pod(&self, spec: PodSpec) -> Result<String, ServiceError> {
        let (handler, _) = self
            .config
            .runtime_for(&spec.runtime_handler)
            .ok_or_else(|| {
                ServiceError::invalid(
                    "runtime_handler",
                    format!("unknown handler {:?}", spec.runtime_handler),
                )
            })?;
        let handler = handler.to_owned();
        if let Some((id, _)) = self.pods.all().into_iter().find(|(_, p)| {
            p.name == spec.name
                && p.namespace == spec.namespace
                && p.uid == spec.uid
                && p.attempt == spec.attempt
        }) {
            return Err(ServiceError::AlreadyExists(format!(
                "pod name {}_{}_{}_{} is reserved by pod {id}",
                spec.name, spec.namespace, spec.uid, spec.attempt
            )));
        }
        let id = crate::store::new_id()?;
        let _guard = self.locks.lock(&id);
        let cgroup_parent = spec
            .cgroup_parent
            .clone()
            .unwrap_or_else(|| self.own_cgroup(&id));
        let mut record = PodRecord {
            id: id.clone(),
            name: spec.name.clone(),
            namespace: spec.namespace.clone(),
            uid: spec.uid.clone(),
            attempt: spec.attempt,
            state: PodState::NotReady,
            created_at: now_nanos(),
            runtime_handler: handler,
            labels: spec.labels.clone(),
            annotations: spec.annotations.clone(),
            host_network: spec.host_network,
            ips: Vec::new(),
            cgroup_parent,
            port_mappings: spec.port_mappings.clone(),
            config: spec.config.clone(),
        };
        // The NotReady record, first without fsync (it only has to outlive a crash of
        // the daemon, which the page cache does) so it exists before anything is made;
        // then made durable (fsynced, not written again) on a thread while the pod is
        // set up, so that after a power loss the pod is still known and the kubelet's
        // stop and remove free its IP. The pod's lock keeps other writers out until then.
        self.pods.put_provisional(&id, &record)?;
        let (set_up, persisted) = std::thread::scope(|scope| {
            let persisted = scope.spawn(|| self.pods.sync(&id));
            let set_up = self.set_up_pod(&record, &spec);
            // A panic there is passed on as if it had happened here.
            let persisted = persisted
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (set_up, persisted)
        });
        match set_up.and_then(|ips| persisted.map(|()| ips).map_err(ServiceError::from)) {
            Ok(ips) => {
                record.ips = ips;
                record.state = PodState::Ready;
                // Not fsynced: Ready and the IPs describe namespaces in the state folder,
                // which no power loss leaves behind (a reboot empties it, and `reconcile`
                // then turns a Ready record NotReady). The rename replaces the durable
                // NotReady version atomically; after a power loss the file holds one of
                // the two (ext4, the node's filesystem, writes a renamed-over file's data
                // before the rename). The daemon restarting without a reboot reads the
                // Ready version from the page cache.
                self.pods.put_provisional(&id, &record)?;
                Ok(id)
            }
            Err(e) => {
                if let Err(cleanup) = self.tear_down_pod(&record) {
                    eprintln!("berth-runtime: pod {id}: clean-up after a failed run: {cleanup}");
                }
                let _ = self.pods.remove(&id);
                Err(e)
            }
        }
    }

    /// Namespaces, /etc files and network; returns the pod's IPs.
    fn set_up_pod(&self, record: &PodRecord, spec: &PodSpec) -> Result<Vec<String>, ServiceError> {
        let paths = self.pod_paths(&record.id);
        let hostname = match &spec.hostname {
            Some(name) if !spec.host_network => name.clone(),
            _ => self.host.node_hostname(),
        };
        let namespaces = self.host.create_namespaces(
            &paths,
            &hostname,
            spec.host_network,
            spec.host_ipc,
            &spec.sysctls,
        )?;
        if spec.share_pid {
            self.host.start_pid_namespace(&self.monitor, &paths)?;
        }
        pod::write_pod_files(&paths, &hostname, spec.dns.as_ref(), spec.host_network)?;
        let Some(netns) = namespaces.net else {
            return Ok(Vec::new());
        };
        let ips =
            self.host
                .network_setup(&record.id, &netns, &record.identity(), &spec.port_mappings)?;
        if let Some(ip) = ips.first() {
            pod::add_pod_ip_to_hosts(&paths, *ip, &hostname)?;
        }
        Ok(ips.iter().map(|ip| ip.to_string()).collect())
    }

    /// Network, namespaces, then files; each step is idempotent.
    fn tear_down_pod(&self, record: &PodRecord) -> Result<(), ServiceError> {
        let paths = self.pod_paths(&record.id);
        if !record.host_network {
            let netns = paths.netns();
            let netns = netns.exists().then_some(netns.as_path());
            self.host.network_teardown(
                &record.id,
                netns,
                &record.identity(),
                &record.port_mappings,
            )?;
        }
        self.host.remove_namespaces(&paths)?;
        Ok(())
    }

    /// Stops the pod's containers, then its network and namespaces; an unknown pod is
    /// fine (the kubelet retries).
    pub fn stop_pod(&self, id: &str) -> Result<(), ServiceError> {
        let Some(pod) = self.find_pod(id)? else {
            return Ok(());
        };
        let _guard = self.locks.lock(&pod.id);
        for (id, container) in self.containers.all() {
            if container.pod_id == pod.id {
                self.stop_container_now(&id, 0)?;
            }
        }
        self.tear_down_pod(&pod)?;
        self.pods
            .update(&pod.id, |p| p.state = PodState::NotReady)?;
        Ok(())
    }

    /// Removes the pod's containers, what is left of its sandbox, its files, its own
    /// cgroup and its record; an unknown pod is fine.
    pub fn remove_pod(&self, id: &str) -> Result<(), ServiceError> {
        let Some(pod) = self.find_pod(id)? else {
            return Ok(());
        };
        let _guard = self.locks.lock(&pod.id);
        for (id, container) in self.containers.all() {
            if container.pod_id == pod.id {
                self.remove_container_now(&id)?;
            }
        }
        self.tear_down_pod(&pod)?;
        self.host.remove_pod_files(&self.pod_paths(&pod.id))?;
        if pod.cgroup_parent == self.own_cgroup(&pod.id) {
            self.host.remove_cgroup(&pod.cgroup_parent)?;
        }
        self.pods.remove(&pod.id)?;
        Ok(())
    }
}
