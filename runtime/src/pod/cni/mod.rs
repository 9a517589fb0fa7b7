//! A pod's network through the standard CNI plugins (spec 0.3.x–1.0.0), the way
//! containerd's CRI plugin drives them: the first config in `/etc/cni/net.d`, each plugin
//! of the list run in order for `eth0` with the previous result chained in, the loopback
//! plugin for `lo`, DEL in reverse with the cached result, and a DEL after a failed ADD so
//! nothing stays allocated.
//!
//! Parts: [`conf`] finds and validates the config, [`request`] builds `CNI_ARGS` and each
//! plugin's stdin, [`exec`] runs a plugin with a time limit (`relay` moving its I/O),
//! [`result`] reads its output, [`cache`] keeps what DEL needs across daemon restarts.

pub mod cache;
pub mod conf;
pub mod exec;
mod relay;
pub mod request;
pub mod result;

#[cfg(test)]
mod arb;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use self::conf::NetworkList;
use self::exec::Invocation;
use super::{sys, PodError};

pub use self::request::{HostPort, PodIdentity, PortProtocol};
pub use self::result::{Interface, NetworkResult};

/// The CRI `NetworkReady` condition's reason when [`Cni::status`] fails.
pub const NETWORK_NOT_READY_REASON: &str = "NetworkPluginNotReady";

/// The pod side interface name, as the kubelet expects.
const POD_IFNAME: &str = "eth0";

/// Config of the loopback network, the version every loopback plugin since 2017 speaks.
const LOOPBACK_CNI_VERSION: &str = "0.3.1";

/// Where the CNI configuration, plugins and cache are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniConfig {
    /// Network configs (`/etc/cni/net.d`).
    pub conf_dir: PathBuf,
    /// Plugin folders searched in order (Debian: `/usr/lib/cni`; upstream: `/opt/cni/bin`).
    pub bin_dirs: Vec<PathBuf>,
    /// Per-pod ADD results (in the runtime state folder).
    pub cache_dir: PathBuf,
}

/// Runs CNI plugins for pods.
#[derive(Debug, Clone)]
pub struct Cni {
    cfg: CniConfig,
    timeout: Duration,
}

impl Cni {
    /// A CNI driver with the default per-plugin time limit (60 s).
    pub fn new(cfg: CniConfig) -> Self {
        Cni {
            cfg,
            timeout: Duration::from_secs(60),
        }
    }

    /// Sets the time limit of one plugin call.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The configuration this driver uses.
    pub fn config(&self) -> &CniConfig {
        &self.cfg
    }

    /// The CRI `NetworkReady` condition: `Err` carries the text for the status, starting
    /// with [`NETWORK_NOT_READY_REASON`], e.g. `NetworkPluginNotReady: no network config
    /// found in /etc/cni/net.d` or `NetworkPluginNotReady: plugin bridge not found in
    /// [/usr/lib/cni, /opt/cni/bin]`. The config is read afresh each time, so a config
    /// installed after the daemon started is picked up.
    pub fn status(&self) -> Result<(), String> {
        let check = || -> Result<(), PodError> {
            let list = self.load()?;
            self.binaries(&list)?;
            exec::find_plugin("loopback", &self.cfg.bin_dirs)?;
            Ok(())
        };
        check().map_err(|e| format!("{NETWORK_NOT_READY_REASON}: {e}"))
    }

    /// Sets up the network of pod `pod_id` in `netns`: loopback for `lo`, then the
    /// configured list for `eth0` with `port_mappings` for plugins that take them. On
    /// failure, what was added is deleted again and the plugin's error returned.
    pub fn setup(
        &self,
        pod_id: &str,
        netns: &Path,
        pod: &PodIdentity,
        port_mappings: &[HostPort],
    ) -> Result<NetworkResult, PodError> {
        check_pod_id(pod_id)?;
        let args = request::cni_args(pod_id, pod)?;
        let mappings = request::port_mappings(port_mappings);
        if !sys::is_namespace_file(netns) {
            return Err(PodError::io(
                "use network namespace",
                netns,
                std::io::Error::new(std::io::ErrorKind::NotFound, "not a namespace file"),
            ));
        }
        let list = self.load()?;
        let bins = self.binaries(&list)?;
        let lo = NetworkList::loopback(LOOPBACK_CNI_VERSION);
        let lo_bins = self.binaries(&lo)?;

        let mut entry = cache::Entry::new(list.to_json(), mappings.clone());
        cache::write(&self.cfg.cache_dir, pod_id, &entry)?;
        let call = Call {
            pod_id,
            netns: Some(netns),
            args: &args,
            mappings: &mappings,
        };

        // The last good result of the main list: DEL's prevResult if a later step fails.
        let mut prev = None;
        // `lo` and the pod's interface are independent: bring them up side by side, which
        // takes the loopback plugin off the pod start path.
        let (lo_added, main_added) = std::thread::scope(|scope| {
            let lo_thread = scope.spawn(|| self.add_list(&call, &lo, &lo_bins, "lo", &mut None));
            let main_added = self.add_list(&call, &list, &bins, POD_IFNAME, &mut prev);
            let lo_added = lo_thread.join().unwrap_or_else(|_| {
                Err(PodError::PluginOutput {
                    plugin: "loopback".into(),
                    command: "ADD",
                    reason: "the thread running it panicked".into(),
                })
            });
            (lo_added, main_added)
        });
        let added = lo_added.and(main_added).and_then(|()| {
            let plugin = || {
                list.plugins
                    .last()
                    .map(|p| p.plugin_type.clone())
                    .unwrap_or_default()
            };
            let raw = prev.clone().ok_or_else(|| PodError::PluginOutput {
                plugin: plugin(),
                command: "ADD",
                reason: "no result".into(),
            })?;
            result::parse_result(raw, POD_IFNAME).map_err(|reason| PodError::PluginOutput {
                plugin: plugin(),
                command: "ADD",
                reason,
            })
        });
        let network = match added {
            Ok(network) => network,
            Err(e) => return Err(self.undo(&call, &list, &bins, &lo, &lo_bins, prev.as_ref(), e)),
        };
        entry.result = Some(network.raw.clone());
        if let Err(e) = cache::write(&self.cfg.cache_dir, pod_id, &entry) {
            return Err(self.undo(&call, &list, &bins, &lo, &lo_bins, Some(&network.raw), e));
        }
        Ok(network)
    }

    /// Tears down pod `pod_id`'s network. Idempotent: run it again, after a daemon
    /// restart, without a cache, or with the netns gone (`None` or no longer a namespace
    /// file: plugins then only release their allocations).
    pub fn teardown(
        &self,
        pod_id: &str,
        netns: Option<&Path>,
        pod: &PodIdentity,
        port_mappings: &[HostPort],
    ) -> Result<(), PodError> {
        check_pod_id(pod_id)?;
        let args = request::cni_args(pod_id, pod)?;
        // A corrupt cache cannot tell us more than the current config: fall back to it.
        let entry = cache::read(&self.cfg.cache_dir, pod_id).unwrap_or(None);
        let (list, prev, mappings) = match entry {
            Some(e) => {
                let list = match e.config {
                    Value::Object(obj) => {
                        conf::parse_list(obj).map_err(|reason| PodError::Cache {
                            path: cache::path(&self.cfg.cache_dir, pod_id),
                            reason,
                        })?
                    }
                    _ => self.load()?,
                };
                (list, e.result, e.port_mappings)
            }
            None => match conf::load_dir(&self.cfg.conf_dir)? {
                Some(list) => (list, None, request::port_mappings(port_mappings)),
                None => return cache::remove(&self.cfg.cache_dir, pod_id),
            },
        };
        let netns = netns.filter(|p| sys::is_namespace_file(p));
        let call = Call {
            pod_id,
            netns,
            args: &args,
            mappings: &mappings,
        };
        let bins = self.binaries(&list)?;
        self.del_list(
            &call,
            &list,
            &bins,
            POD_IFNAME,
            prev.as_ref(),
            list.plugins.len(),
        )?;
        if netns.is_some() {
            let lo = NetworkList::loopback(LOOPBACK_CNI_VERSION);
            let lo_bins = self.binaries(&lo)?;
            self.del_list(&call, &lo, &lo_bins, "lo", None, 1)?;
        }
        cache::remove(&self.cfg.cache_dir, pod_id)
    }

    fn load(&self) -> Result<NetworkList, PodError> {
        conf::load_dir(&self.cfg.conf_dir)?.ok_or_else(|| {
            PodError::NetworkNotReady(format!(
                "no network config found in {}",
                self.cfg.conf_dir.display()
            ))
        })
    }

    fn binaries(&self, list: &NetworkList) -> Result<Vec<PathBuf>, PodError> {
        list.plugins
            .iter()
            .map(|p| exec::find_plugin(&p.plugin_type, &self.cfg.bin_dirs))
            .collect()
    }

    /// ADD through the list, leaving the last good result in `prev` (the final result on
    /// success, what DEL needs as `prevResult` on failure).
    fn add_list(
        &self,
        call: &Call<'_>,
        list: &NetworkList,
        bins: &[PathBuf],
        ifname: &str,
        prev: &mut Option<Value>,
    ) -> Result<(), PodError> {
        for (plugin, bin) in list.plugins.iter().zip(bins) {
            let stdin = request::plugin_stdin(list, plugin, prev.as_ref(), call.mappings);
            let out = self.invoke(call, "ADD", ifname, bin, &plugin.plugin_type, &stdin)?;
            let value =
                serde_json::from_slice::<Value>(&out).map_err(|e| PodError::PluginOutput {
                    plugin: plugin.plugin_type.clone(),
                    command: "ADD",
                    reason: format!("result is not JSON: {e}"),
                })?;
            *prev = Some(value);
        }
        Ok(())
    }

    /// DEL through the first `upto` plugins in reverse. Every plugin is called even if
    /// one fails, so each releases what it can; the first error is returned.
    fn del_list(
        &self,
        call: &Call<'_>,
        list: &NetworkList,
        bins: &[PathBuf],
        ifname: &str,
        prev: Option<&Value>,
        upto: usize,
    ) -> Result<(), PodError> {
        let mut first_err = None;
        for (plugin, bin) in list.plugins.iter().zip(bins).take(upto).rev() {
            let stdin = request::plugin_stdin(list, plugin, prev, call.mappings);
            if let Err(e) = self.invoke(call, "DEL", ifname, bin, &plugin.plugin_type, &stdin) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// After a failed setup: DEL everything (plugins ignore what they never added), drop
    /// the cache if that worked, and return the setup error.
    #[allow(clippy::too_many_arguments)]
    fn undo(
        &self,
        call: &Call<'_>,
        list: &NetworkList,
        bins: &[PathBuf],
        lo: &NetworkList,
        lo_bins: &[PathBuf],
        prev: Option<&Value>,
        err: PodError,
    ) -> PodError {
        let main = self.del_list(call, list, bins, POD_IFNAME, prev, list.plugins.len());
        let lo = self.del_list(call, lo, lo_bins, "lo", None, 1);
        if main.is_ok() && lo.is_ok() {
            // Best effort: a stale cache only makes a later teardown run DEL again.
            let _ = cache::remove(&self.cfg.cache_dir, call.pod_id);
        }
        err
    }

    fn invoke(
        &self,
        call: &Call<'_>,
        command: &'static str,
        ifname: &str,
        bin: &Path,
        plugin: &str,
        stdin: &Value,
    ) -> Result<Vec<u8>, PodError> {
        let inv = Invocation {
            command,
            container_id: call.pod_id,
            netns: call.netns,
            ifname,
            args: call.args,
            bin_dirs: &self.cfg.bin_dirs,
        };
        let data = serde_json::to_vec(stdin).map_err(|e| PodError::PluginOutput {
            plugin: plugin.into(),
            command,
            reason: format!("encode config: {e}"),
        })?;
        exec::run(bin, plugin, &inv, &data, self.timeout)
    }
}

/// The per-pod parameters shared by every plugin call.
struct Call<'a> {
    pod_id: &'a str,
    netns: Option<&'a Path>,
    args: &'a str,
    mappings: &'a Value,
}

/// The pod id names the cache file and goes into `CNI_CONTAINERID`.
fn check_pod_id(pod_id: &str) -> Result<(), PodError> {
    let ok = !pod_id.is_empty()
        && !pod_id.starts_with('.')
        && pod_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(PodError::field(
            "pod_sandbox_id",
            format!("{pod_id:?} is not a valid pod id"),
        ))
    }
}
