//! The CNI part of the root, as `image.toml`'s `[cni]` chooses it: which plugin binaries
//! of `containernetworking-plugins` stay in `/usr/lib/cni` (a node needs four of its
//! twenty, 44 MiB in all), and the default network for standalone nodes and tests.
//!
//! The default network is a file in `/etc/cni/net.d` named to sort after the configs
//! that clusters' network add-ons write there at run time (`05-cilium`, `10-calico`,
//! `10-flannel`): the runtime takes the lexically first, as containerd does, so an add-on
//! replaces it without deleting anything.

use std::path::{Path, PathBuf};

use berth_image::spec::{CniSection, DefaultNetwork};
use serde_json::json;

/// Where the plugins live in the root (after the merged-`/usr` mapping).
pub const PLUGIN_DIR: &str = "usr/lib/cni";

/// The default network's file in the root.
pub const DEFAULT_NETWORK_FILE: &str = "etc/cni/net.d/90-berth.conflist";

/// The bridge the default network puts pods on.
pub const BRIDGE: &str = "cni0";

/// A listed plugin that no package provided.
#[derive(Debug, thiserror::Error)]
#[error("[cni] plugins: {name:?} is not in the root ({PLUGIN_DIR}/{name} missing; it comes from containernetworking-plugins, which [packages] include must list)")]
pub struct MissingPlugin {
    pub name: String,
}

/// Whether a package's file at `rel` stays, given the plugins kept (`None`: all).
pub fn keeps(plugins: Option<&[String]>, rel: &Path, is_dir: bool) -> bool {
    let Some(plugins) = plugins else {
        return true;
    };
    if is_dir || rel.parent() != Some(Path::new(PLUGIN_DIR)) {
        return true;
    }
    rel.file_name()
        .is_some_and(|name| plugins.iter().any(|p| name == p.as_str()))
}

/// Every listed plugin is a file in the root at `dest`.
pub fn check_plugins(cni: &CniSection, dest: &Path) -> Result<(), MissingPlugin> {
    for name in &cni.plugins {
        let path: PathBuf = dest.join(PLUGIN_DIR).join(name);
        if !path.is_file() {
            return Err(MissingPlugin { name: name.clone() });
        }
    }
    Ok(())
}

/// The default network's conflist: pods on bridge `cni0` (the gateway, masquerading what
/// leaves the subnet), addresses from host-local, `hostPort`s by portmap.
pub fn default_network_conflist(net: &DefaultNetwork) -> String {
    let conflist = json!({
        "cniVersion": "1.0.0",
        "name": "berth",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": net.subnet }]],
                    "routes": [{ "dst": "0.0.0.0/0" }]
                }
            },
            {
                "type": "portmap",
                "capabilities": { "portMappings": true }
            }
        ]
    });
    format!("{conflist:#}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_plugins_stay() {
        let list = vec!["bridge".to_string(), "portmap".to_string()];
        let keeps = |p: &str, d: bool| keeps(Some(&list), Path::new(p), d);
        assert!(keeps("usr/lib/cni/bridge", false));
        assert!(!keeps("usr/lib/cni/firewall", false));
        assert!(keeps("usr/lib/cni", true));
        assert!(keeps(
            "usr/share/doc/containernetworking-plugins/copyright",
            false
        ));
        assert!(keeps("usr/bin/firewall", false));
        assert!(super::keeps(None, Path::new("usr/lib/cni/firewall"), false));
    }

    #[test]
    fn the_default_network_names_its_subnet_and_only_shipped_plugins() {
        let text = default_network_conflist(&DefaultNetwork {
            subnet: "10.88.0.0/16".into(),
        });
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.88.0.0/16"
        );
        let mut types = vec![
            value["plugins"][0]["type"].as_str().unwrap(),
            value["plugins"][0]["ipam"]["type"].as_str().unwrap(),
            value["plugins"][1]["type"].as_str().unwrap(),
        ];
        types.sort();
        let mut needed = berth_image::spec::DEFAULT_NETWORK_PLUGINS.to_vec();
        needed.sort();
        assert_eq!(types, needed);
    }
}
