//! Finding and validating the CNI network configuration, as libcni and containerd do: the
//! lexically first `*.conflist`, `*.conf` or `*.json` in the config folder wins, and a
//! single-plugin `.conf`/`.json` becomes a one-plugin list.
//!
//! Plugin configurations stay raw JSON objects: plugins own their fields, we only read
//! `type` and `capabilities` and inject `name`, `cniVersion`, `prevResult` and
//! `runtimeConfig` when calling them.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::pod::PodError;

/// CNI spec versions we can pass through to plugins.
const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// A validated network configuration list.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkList {
    /// The network name (`name`).
    pub name: String,
    /// The spec version every plugin is called with (`cniVersion`).
    pub cni_version: String,
    /// The plugins, in ADD order.
    pub plugins: Vec<Plugin>,
}

/// One plugin of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Plugin {
    /// The binary name (`type`).
    pub plugin_type: String,
    /// Whether it declares `"capabilities": {"portMappings": true}`.
    pub port_mappings: bool,
    /// Its configuration object as written.
    pub conf: Map<String, Value>,
}

impl NetworkList {
    /// The list containing only the loopback plugin, run for `lo` in every pod netns.
    pub fn loopback(cni_version: &str) -> Self {
        let mut conf = Map::new();
        conf.insert("type".into(), "loopback".into());
        NetworkList {
            name: "cni-loopback".into(),
            cni_version: cni_version.into(),
            plugins: vec![Plugin {
                plugin_type: "loopback".into(),
                port_mappings: false,
                conf,
            }],
        }
    }

    /// The list as a conflist JSON document (what the CNI cache stores).
    pub fn to_json(&self) -> Value {
        let plugins: Vec<Value> = self
            .plugins
            .iter()
            .map(|p| Value::Object(p.conf.clone()))
            .collect();
        serde_json::json!({ "cniVersion": self.cni_version, "name": self.name, "plugins": plugins })
    }
}

/// The file the runtime would use: the lexically first config file in `dir`, if any.
pub fn select(dir: &Path) -> Result<Option<PathBuf>, PodError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(PodError::io("read CNI config folder", dir, e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| PodError::io("read CNI config folder", dir, e))?;
        let path = entry.path();
        let is_conf = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("conflist" | "conf" | "json")
        );
        if is_conf && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files.into_iter().next())
}

/// Loads the network configuration from `dir`; `None` if there is none.
pub fn load_dir(dir: &Path) -> Result<Option<NetworkList>, PodError> {
    let Some(path) = select(dir)? else {
        return Ok(None);
    };
    let bytes = std::fs::read(&path).map_err(|e| PodError::io("read", &path, e))?;
    parse_file(&path, &bytes).map(Some)
}

/// Parses a config file; `.conflist` files are lists, others single plugin configs.
pub fn parse_file(path: &Path, bytes: &[u8]) -> Result<NetworkList, PodError> {
    let bad = |reason: String| PodError::CniConfig {
        path: path.to_path_buf(),
        reason,
    };
    let value: Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    let Value::Object(obj) = value else {
        return Err(bad("not a JSON object".into()));
    };
    let is_list = path.extension().is_some_and(|e| e == "conflist");
    if is_list {
        parse_list(obj)
    } else {
        parse_single(obj)
    }
    .map_err(bad)
}

/// A conflist object: `name`, `cniVersion`, `plugins`.
pub fn parse_list(mut obj: Map<String, Value>) -> Result<NetworkList, String> {
    let name = string_field(&obj, "name")?;
    let cni_version = version(&obj)?;
    let Some(Value::Array(raw)) = obj.remove("plugins") else {
        return Err("\"plugins\" must be an array".into());
    };
    if raw.is_empty() {
        return Err("\"plugins\" is empty".into());
    }
    let plugins = raw
        .into_iter()
        .enumerate()
        .map(|(i, p)| match p {
            Value::Object(conf) => plugin(conf).map_err(|e| format!("plugins[{i}]: {e}")),
            _ => Err(format!("plugins[{i}]: not a JSON object")),
        })
        .collect::<Result<_, _>>()?;
    Ok(NetworkList {
        name,
        cni_version,
        plugins,
    })
}

/// A single plugin config (`.conf`), wrapped into a list the way libcni does.
pub fn parse_single(obj: Map<String, Value>) -> Result<NetworkList, String> {
    if obj.contains_key("plugins") {
        return Err("has \"plugins\": a list must be named *.conflist".into());
    }
    let name = string_field(&obj, "name")?;
    let cni_version = version(&obj)?;
    let plugin = plugin(obj)?;
    Ok(NetworkList {
        name,
        cni_version,
        plugins: vec![plugin],
    })
}

fn plugin(conf: Map<String, Value>) -> Result<Plugin, String> {
    let plugin_type = string_field(&conf, "type")?;
    let safe = plugin_type
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !safe || plugin_type.starts_with('.') {
        return Err(format!("type {plugin_type:?} is not a plugin binary name"));
    }
    let port_mappings = conf
        .get("capabilities")
        .and_then(|c| c.get("portMappings"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Plugin {
        plugin_type,
        port_mappings,
        conf,
    })
}

fn string_field(obj: &Map<String, Value>, key: &str) -> Result<String, String> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(format!("\"{key}\" is empty")),
        Some(_) => Err(format!("\"{key}\" must be a string")),
        None => Err(format!("\"{key}\" is missing")),
    }
}

fn version(obj: &Map<String, Value>) -> Result<String, String> {
    let v = string_field(obj, "cniVersion")?;
    if SUPPORTED_VERSIONS.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err(format!(
            "cniVersion {v:?} is not one of {}",
            SUPPORTED_VERSIONS.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"{
  "cniVersion": "1.0.0",
  "name": "berth",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}"#;

    #[test]
    fn conflist() {
        let list = parse_file(Path::new("10-berth.conflist"), LIST.as_bytes()).unwrap();
        assert_eq!(list.name, "berth");
        assert_eq!(list.cni_version, "1.0.0");
        let types: Vec<_> = list
            .plugins
            .iter()
            .map(|p| p.plugin_type.as_str())
            .collect();
        assert_eq!(types, ["bridge", "portmap"]);
        assert!(!list.plugins[0].port_mappings);
        assert!(list.plugins[1].port_mappings);
        assert_eq!(list.plugins[0].conf["bridge"], "cni0");
    }

    #[test]
    fn single_conf_becomes_a_list() {
        let conf = r#"{"cniVersion": "0.4.0", "name": "n", "type": "bridge"}"#;
        let list = parse_file(Path::new("10.conf"), conf.as_bytes()).unwrap();
        assert_eq!(list.plugins.len(), 1);
        assert_eq!(list.cni_version, "0.4.0");
        assert_eq!(list.to_json()["plugins"][0]["type"], "bridge");
    }

    #[test]
    fn bad_json_names_file_line_and_column() {
        let text = "{\n  \"name\": \"x\",\n  \"plugins\": [,]\n}";
        let e = parse_file(Path::new("/etc/cni/net.d/10-x.conflist"), text.as_bytes()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("invalid CNI config /etc/cni/net.d/10-x.conflist: "),
            "{msg}"
        );
        assert!(msg.contains("line 3 column 15"), "{msg}");
        assert_eq!(
            crate::error::ErrorKind::kind(&e),
            crate::error::Kind::Unavailable
        );
    }

    #[test]
    fn invalid_lists() {
        let cases = [
            (r#"[]"#, "not a JSON object"),
            (
                r#"{"cniVersion":"1.0.0","plugins":[{"type":"a"}]}"#,
                "\"name\" is missing",
            ),
            (
                r#"{"cniVersion":"9.9.9","name":"n","plugins":[{"type":"a"}]}"#,
                "cniVersion \"9.9.9\"",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[]}"#,
                "\"plugins\" is empty",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":{}}"#,
                "must be an array",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../../bin/sh"}]}"#,
                "plugins[0]: type",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a"}, 3]}"#,
                "plugins[1]: not a JSON object",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"bridge":"x"}]}"#,
                "plugins[0]: \"type\" is missing",
            ),
        ];
        for (text, want) in cases {
            let e = parse_file(Path::new("x.conflist"), text.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn selection_is_lexical_and_ignores_other_files() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_dir(&dir.path().join("missing")).unwrap(), None);
        assert_eq!(select(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join("00-readme.txt"), "x").unwrap();
        std::fs::write(
            dir.path().join("20-b.conf"),
            r#"{"cniVersion":"1.0.0","name":"b","type":"bridge"}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("10-a.conflist"), LIST).unwrap();
        std::fs::create_dir(dir.path().join("05-dir.conf")).unwrap();
        assert_eq!(
            select(dir.path()).unwrap().unwrap(),
            dir.path().join("10-a.conflist")
        );
        assert_eq!(load_dir(dir.path()).unwrap().unwrap().name, "berth");
        std::fs::write(dir.path().join("01-bad.json"), "{").unwrap();
        let e = load_dir(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("01-bad.json") && e.contains("line 1 column 1"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::pod::cni::arb::json_value;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn config_parser_never_panics(v in json_value(), bytes in prop::collection::vec(any::<u8>(), 0..100)) {
            let text = v.to_string();
            let _ = parse_file(Path::new("a.conflist"), text.as_bytes());
            let _ = parse_file(Path::new("a.conf"), text.as_bytes());
            let _ = parse_file(Path::new("a.conflist"), &bytes);
        }
    }
}
