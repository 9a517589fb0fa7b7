//! The per-pod CNI cache, `cache_dir/<pod-id>.json`, as libcni keeps one: the network
//! config a pod was set up with and the ADD result. DEL needs both — the result as
//! `prevResult`, the config because `/etc/cni/net.d` may have changed since — even after
//! a daemon restart. It is written before the first ADD (without a result) so a crash
//! mid-setup still tears down with the right config.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::pod::{write_file, PodError};

const KIND: &str = "berthCniCacheV1";

/// What the cache holds for one pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    /// Format marker.
    pub kind: String,
    /// The conflist the pod was set up with.
    pub config: Value,
    /// The port mappings passed to ADD, passed again to DEL.
    pub port_mappings: Value,
    /// The final ADD result; `None` while ADD has not completed.
    pub result: Option<Value>,
}

impl Entry {
    /// A new entry for `config`.
    pub fn new(config: Value, port_mappings: Value) -> Self {
        Entry {
            kind: KIND.into(),
            config,
            port_mappings,
            result: None,
        }
    }
}

/// The cache file of a pod.
pub fn path(cache_dir: &Path, pod_id: &str) -> PathBuf {
    cache_dir.join(format!("{pod_id}.json"))
}

/// Writes the entry atomically.
pub fn write(cache_dir: &Path, pod_id: &str, entry: &Entry) -> Result<(), PodError> {
    std::fs::create_dir_all(cache_dir).map_err(|e| PodError::io("create", cache_dir, e))?;
    let file = path(cache_dir, pod_id);
    let data = serde_json::to_vec_pretty(entry).map_err(|e| PodError::Cache {
        path: file.clone(),
        reason: e.to_string(),
    })?;
    write_file(&file, &data)
}

/// Reads a pod's entry; `None` if it has none.
pub fn read(cache_dir: &Path, pod_id: &str) -> Result<Option<Entry>, PodError> {
    let file = path(cache_dir, pod_id);
    let data = match std::fs::read(&file) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(PodError::io("read", &file, e)),
    };
    let bad = |reason: String| PodError::Cache {
        path: file.clone(),
        reason,
    };
    let entry: Entry = serde_json::from_slice(&data).map_err(|e| bad(e.to_string()))?;
    if entry.kind != KIND {
        return Err(bad(format!("unknown kind {:?}", entry.kind)));
    }
    Ok(Some(entry))
}

/// Removes a pod's entry (idempotent).
pub fn remove(cache_dir: &Path, pod_id: &str) -> Result<(), PodError> {
    let file = path(cache_dir, pod_id);
    match std::fs::remove_file(&file) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PodError::io("remove", &file, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cni");
        assert_eq!(read(&cache, "p").unwrap(), None);
        let mut e = Entry::new(json!({"name": "n"}), json!([]));
        write(&cache, "p", &e).unwrap();
        assert_eq!(read(&cache, "p").unwrap().unwrap(), e);
        e.result = Some(json!({"ips": []}));
        write(&cache, "p", &e).unwrap();
        assert_eq!(
            read(&cache, "p").unwrap().unwrap().result,
            Some(json!({"ips": []}))
        );
        remove(&cache, "p").unwrap();
        remove(&cache, "p").unwrap();
        assert_eq!(read(&cache, "p").unwrap(), None);
    }

    #[test]
    fn corrupt_cache_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.json"), "{").unwrap();
        let e = read(dir.path(), "p").unwrap_err().to_string();
        assert!(e.contains("p.json"), "{e}");
    }
}
