//! `image.toml`: what image to build. Parsed strictly (unknown keys are errors) and validated
//! once into [`ImageSpec`], the type the pipeline uses; every error names the file, the line
//! and column, and what was expected.

use std::fmt;
use std::path::{Path, PathBuf};

use berth_layout::cmdline::VerityMode;
use serde::{Deserialize, Deserializer};

/// A size in bytes, written in `image.toml` as `"64MiB"`, `"1GiB"` or a plain integer of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

pub use berth_layout::partition::MIB;

impl Size {
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// Parses `"64MiB"`, `"1GiB"`, `"512KiB"`, `"4096"` (bytes).
    pub fn parse(text: &str) -> Result<Size, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let number: u64 = digits
            .parse()
            .map_err(|_| format!("expected a size like \"64MiB\" or \"1GiB\", found {text:?}"))?;
        let factor = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "TiB" => 1 << 40,
            other => {
                return Err(format!(
                    "unknown size unit {other:?} in {text:?}: expected B, KiB, MiB, GiB or TiB"
                ))
            }
        };
        number
            .checked_mul(factor)
            .map(Size)
            .ok_or_else(|| format!("size {text:?} is too large"))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b >= 1 << 30 && b.is_multiple_of(1 << 30) {
            write!(f, "{}GiB", b >> 30)
        } else if b.is_multiple_of(MIB) {
            write!(f, "{}MiB", b >> 20)
        } else {
            write!(f, "{b}B")
        }
    }
}

/// A size that must be a whole number of MiB, at least `MIN` MiB: partitions are 1 MiB
/// aligned, so any other value would silently be rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionSize<const MIN_MIB: u64>(pub Size);

impl<'de, const MIN_MIB: u64> Deserialize<'de> for PartitionSize<MIN_MIB> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        let size = match Raw::deserialize(d)? {
            Raw::Int(n) => Size(n),
            Raw::Text(t) => Size::parse(&t).map_err(serde::de::Error::custom)?,
        };
        if size.0 % MIB != 0 {
            return Err(serde::de::Error::custom(format!(
                "expected a whole number of MiB (partitions are 1 MiB aligned), found {} bytes",
                size.0
            )));
        }
        if size.0 < MIN_MIB * MIB {
            return Err(serde::de::Error::custom(format!(
                "expected at least {MIN_MIB}MiB, found {size}"
            )));
        }
        Ok(PartitionSize(size))
    }
}

/// The whole file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    pub image: ImageSection,
    pub partitions: PartitionsSection,
    pub packages: PackagesSection,
    pub kernel: KernelSection,
    #[serde(default)]
    pub boot: BootSection,
    #[serde(default)]
    pub rootfs: RootfsSection,
    #[serde(default)]
    pub cni: CniSection,
    #[serde(default)]
    pub units: UnitsSection,
    #[serde(default)]
    pub output: OutputSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSection {
    /// Image name: lower-case letters, digits and `-`; used in file and partition names.
    #[serde(deserialize_with = "image_name")]
    pub name: String,
    pub version: String,
}

/// Partition sizes. FAT32 needs 65525 clusters, hence the ESP's 33 MiB minimum.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionsSection {
    pub esp: PartitionSize<33>,
    /// Each root slot (A and B).
    pub root: PartitionSize<8>,
    /// Each verity slot (A and B).
    pub verity: PartitionSize<1>,
    pub state: PartitionSize<16>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackagesSection {
    #[serde(default = "default_mirror")]
    pub mirror: String,
    #[serde(default = "default_security_mirror")]
    pub security_mirror: String,
    #[serde(default = "default_suite")]
    pub suite: String,
    /// Debian packages in every variant.
    pub include: Vec<String>,
    /// Extra packages of the `debug` variant.
    #[serde(default)]
    pub debug: Vec<String>,
    /// Extra packages of the `test` variant, on top of the debug ones: what VM tests run
    /// that the node itself does not ship (Debian's containerd, to run its own unit).
    #[serde(default)]
    pub test: Vec<String>,
}

/// The kernel: a Debian package pinned in `kernel-config/kernel.lock`, or one of your own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelSection {
    /// A Debian kernel package; a metapackage such as `linux-image-cloud-amd64` is resolved
    /// to the versioned package it depends on by `cargo xtask lock`.
    #[serde(default)]
    pub package: Option<String>,
    /// A kernel of your own instead of a package.
    #[serde(default)]
    pub custom: Option<CustomKernel>,
    /// Extra kernel command-line arguments (after Berth's own).
    #[serde(default)]
    pub cmdline: Vec<String>,
    /// The modules the root keeps, by purpose: module names, or folders of the modules
    /// tree ending in `/`; dependencies follow. Absent: every module of the kernel.
    #[serde(default)]
    pub modules: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

/// A kernel built elsewhere: its image, its modules folder and its config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomKernel {
    /// The bzImage (EFI stub) to boot.
    pub vmlinuz: PathBuf,
    /// `lib/modules/<version>` of that kernel; the folder name is the version.
    pub modules: PathBuf,
    /// Its `.config`, checked against `kernel-config/required.config`.
    pub config: PathBuf,
}

/// The boot loader and A/B policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootSection {
    /// The Debian package that ships `systemd-bootx64.efi`, pinned with the kernel.
    #[serde(default = "default_loader")]
    pub loader_package: String,
    /// Boot counting: tries a slot gets before systemd-boot falls back to the other.
    #[serde(default = "default_tries")]
    pub tries: u32,
    /// What the kernel does when a verified block does not match: `panic` or `restart`
    /// (`berth.verity=` on the command line).
    #[serde(default, deserialize_with = "verity_mode")]
    pub verity_failure: VerityMode,
}

impl Default for BootSection {
    fn default() -> Self {
        BootSection {
            loader_package: default_loader(),
            tries: default_tries(),
            verity_failure: VerityMode::default(),
        }
    }
}

fn verity_mode<'de, D: Deserializer<'de>>(d: D) -> Result<VerityMode, D::Error> {
    String::deserialize(d)?
        .parse()
        .map_err(|_| serde::de::Error::custom("expected \"panic\" or \"restart\""))
}

fn default_loader() -> String {
    "systemd-boot-efi".into()
}
fn default_tries() -> u32 {
    3
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootfsSection {
    /// Folders copied over the root in order, relative to the workspace.
    #[serde(default)]
    pub overlays: Vec<PathBuf>,
}

/// `[units]`: the units enabled in the image, their `[Install]` links baked into the
/// verified `/usr/lib/systemd/system` by the rootfs step (as `systemctl enable` would make
/// them in `/etc`). Names are checked there, against the unit files of the tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct UnitsSection {
    #[serde(default)]
    pub enable: Vec<String>,
}

/// `[cni]`: the CNI plugins the root ships in `/usr/lib/cni` (of the twenty that
/// `containernetworking-plugins` carries) and the network baked for standalone nodes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CniSection {
    /// Plugin binaries kept; the package's others are left out of the root.
    #[serde(default = "default_cni_plugins")]
    pub plugins: Vec<String>,
    /// A bridge + host-local + portmap network written to `/etc/cni/net.d`; none when absent.
    #[serde(default)]
    pub default_network: Option<DefaultNetwork>,
}

impl Default for CniSection {
    fn default() -> Self {
        CniSection {
            plugins: default_cni_plugins(),
            default_network: None,
        }
    }
}

/// `[cni] default_network`: the pods' subnet on the node's bridge.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultNetwork {
    /// An IPv4 network in CIDR form, `"10.88.0.0/16"`.
    #[serde(deserialize_with = "ipv4_subnet")]
    pub subnet: String,
}

fn default_cni_plugins() -> Vec<String> {
    ["bridge", "host-local", "loopback", "portmap"]
        .map(String::from)
        .to_vec()
}

/// An IPv4 network `a.b.c.d/n` with n at most 30 (room for a gateway and a pod) and no
/// host bits set.
fn ipv4_subnet<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    let bad = |why: &str| serde::de::Error::custom(format!("subnet {text:?}: {why}"));
    let (addr, len) = text
        .split_once('/')
        .ok_or_else(|| bad("expected a.b.c.d/n"))?;
    let addr: std::net::Ipv4Addr = addr.parse().map_err(|_| bad("not an IPv4 address"))?;
    let len: u32 = len.parse().map_err(|_| bad("prefix length not a number"))?;
    if len == 0 || len > 30 {
        return Err(bad("prefix length must be 1 to 30"));
    }
    if u32::from(addr) & (u32::MAX >> len) != 0 {
        return Err(bad("host bits are set"));
    }
    Ok(text)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    #[serde(default = "default_formats")]
    pub formats: Vec<OutputFormat>,
}

impl Default for OutputSection {
    fn default() -> Self {
        OutputSection {
            formats: default_formats(),
        }
    }
}

/// Artifact formats. Only `raw` exists so far; the cloud formats come with `xtask release`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Raw,
}

fn default_formats() -> Vec<OutputFormat> {
    vec![OutputFormat::Raw]
}
fn default_mirror() -> String {
    "http://deb.debian.org/debian".into()
}
fn default_security_mirror() -> String {
    "http://deb.debian.org/debian-security".into()
}
fn default_suite() -> String {
    "bookworm".into()
}

fn image_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(name)
    } else {
        Err(serde::de::Error::custom(format!(
            "expected 1 to 32 characters of a-z, 0-9 and '-', found {name:?}"
        )))
    }
}

/// Errors loading `image.toml`.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The toml error's text carries line, column, the offending snippet and the expectation.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: [packages] include: {message}")]
    Packages { path: PathBuf, message: String },
    #[error("{path}: [kernel]: {message}")]
    Kernel { path: PathBuf, message: String },
    #[error("{path}: [cni] {message}")]
    Cni { path: PathBuf, message: String },
}

/// The plugins the default network's configuration calls.
pub const DEFAULT_NETWORK_PLUGINS: [&str; 3] = ["bridge", "host-local", "portmap"];

impl ImageSpec {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<ImageSpec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses `text`, naming `path` in errors.
    pub fn parse(text: &str, path: &Path) -> Result<ImageSpec, SpecError> {
        let spec: ImageSpec = toml::from_str(text).map_err(|e| SpecError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let mut seen = std::collections::BTreeSet::new();
        for name in spec
            .packages
            .include
            .iter()
            .chain(&spec.packages.debug)
            .chain(&spec.packages.test)
        {
            if !seen.insert(name) {
                return Err(SpecError::Packages {
                    path: path.to_path_buf(),
                    message: format!("package {name:?} is listed twice"),
                });
            }
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            {
                return Err(SpecError::Packages {
                    path: path.to_path_buf(),
                    message: format!("{name:?} is not a Debian package name"),
                });
            }
        }
        let kernel_error = |message: &str| SpecError::Kernel {
            path: path.to_path_buf(),
            message: message.into(),
        };
        match (&spec.kernel.package, &spec.kernel.custom) {
            (Some(_), Some(_)) => return Err(kernel_error("set `package` or `custom`, not both")),
            (None, None) => {
                return Err(kernel_error("set `package` (a Debian kernel) or `custom`"))
            }
            _ => {}
        }
        for name in &spec.cni.plugins {
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return Err(SpecError::Cni {
                    path: path.to_path_buf(),
                    message: format!("plugins: {name:?} is not a plugin file name"),
                });
            }
        }
        if let Some(net) = &spec.cni.default_network {
            for needed in DEFAULT_NETWORK_PLUGINS {
                if !spec.cni.plugins.iter().any(|p| p == needed) {
                    return Err(SpecError::Cni {
                        path: path.to_path_buf(),
                        message: format!(
                            "default_network (subnet {}) needs the {needed:?} plugin, which `plugins` leaves out",
                            net.subnet
                        ),
                    });
                }
            }
        }
        if spec.boot.tries == 0 || spec.boot.tries > 9 {
            return Err(SpecError::Kernel {
                path: path.to_path_buf(),
                message: format!("[boot] tries = {}: expected 1 to 9", spec.boot.tries),
            });
        }
        Ok(spec)
    }

    /// The packages of `kernel-config/kernel.lock` as `image.toml` names them: the kernel
    /// (unless custom) and the boot loader.
    pub fn boot_packages(&self) -> Vec<String> {
        let mut names: Vec<String> = self.kernel.package.iter().cloned().collect();
        names.push(self.boot.loader_package.clone());
        names
    }

    /// Every package of the lock file: the base set, the debug and the test extras.
    pub fn all_packages(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .packages
            .include
            .iter()
            .chain(&self.packages.debug)
            .chain(&self.packages.test)
            .cloned()
            .collect();
        all.sort();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[image]
name = "berth"
version = "0.1.0"

[partitions]
esp = "64MiB"
root = "1GiB"
verity = "16MiB"
state = 268435456

[packages]
include = ["libc6", "crun"]
debug = ["busybox-static"]
test = ["containerd"]

[kernel]
package = "linux-image-cloud-amd64"

[rootfs]
overlays = ["rootfs/overlay"]
"#;

    fn parse(text: &str) -> Result<ImageSpec, SpecError> {
        ImageSpec::parse(text, Path::new("image.toml"))
    }

    #[test]
    fn good_file_parses() {
        let spec = parse(GOOD).unwrap();
        assert_eq!(spec.partitions.esp.0, Size(64 * MIB));
        assert_eq!(spec.partitions.root.0, Size(1 << 30));
        assert_eq!(spec.partitions.state.0, Size(256 * MIB));
        assert_eq!(spec.packages.suite, "bookworm");
        assert_eq!(spec.output.formats, vec![OutputFormat::Raw]);
        assert_eq!(
            spec.all_packages(),
            ["busybox-static", "containerd", "crun", "libc6"]
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_column() {
        let text = GOOD.replace("version = \"0.1.0\"", "version = \"0.1.0\"\nflavour = 1");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.starts_with("image.toml: "), "{err}");
        assert!(err.contains("line 5, column 1"), "{err}");
        assert!(err.contains("unknown field `flavour`"), "{err}");
        assert!(err.contains("expected `name` or `version`"), "{err}");
    }

    #[test]
    fn bad_values_are_explained_with_position() {
        let cases = [
            (
                "esp = \"64MiB\"",
                "esp = \"64 parsecs\"",
                "line 7",
                "unknown size unit",
            ),
            (
                "root = \"1GiB\"",
                "root = \"1000KiB\"",
                "line 8",
                "whole number of MiB",
            ),
            (
                "esp = \"64MiB\"",
                "esp = \"16MiB\"",
                "line 7",
                "at least 33MiB",
            ),
            (
                "name = \"berth\"",
                "name = \"Berth OS\"",
                "line 3",
                "a-z, 0-9",
            ),
        ];
        for (from, to, line, why) in cases {
            let err = parse(&GOOD.replace(from, to)).unwrap_err().to_string();
            assert!(err.contains(line) && err.contains(why), "{to}: {err}");
        }
        let err = parse(&GOOD.replace("[\"libc6\"", "[\"libc6\", \"libc6\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("listed twice"), "{err}");
        let err = parse(&GOOD.replace("test = [\"containerd\"]", "test = [\"crun\"]"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("package \"crun\" is listed twice"), "{err}");
        let err = parse(&GOOD.replace("state = 268435456", ""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `state`"), "{err}");
    }

    #[test]
    fn units_to_enable_default_to_none_and_unknown_keys_are_refused() {
        assert!(parse(GOOD).unwrap().units.enable.is_empty());
        let spec = parse(&format!("{GOOD}\n[units]\nenable = [\"a.service\"]\n")).unwrap();
        assert_eq!(spec.units.enable, ["a.service"]);
        let err = parse(&format!("{GOOD}\n[units]\ndisable = []\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `disable`"), "{err}");
    }

    #[test]
    fn cni_plugins_default_and_the_network_is_checked() {
        let spec = parse(GOOD).unwrap();
        assert_eq!(spec.cni, CniSection::default());
        assert_eq!(spec.cni.plugins.len(), 4);
        let with = |cni: &str| parse(&format!("{GOOD}\n[cni]\n{cni}\n"));
        let net = with("default_network = { subnet = \"10.88.0.0/16\" }").unwrap();
        assert_eq!(net.cni.default_network.unwrap().subnet, "10.88.0.0/16");
        let cases = [
            ("default_network = { subnet = \"10.88.0.1/16\" }", "host bits are set"),
            ("default_network = { subnet = \"10.88.0.0\" }", "expected a.b.c.d/n"),
            ("default_network = { subnet = \"10.88.0.0/31\" }", "1 to 30"),
            ("default_network = { subnet = \"fd00::/64\" }", "not an IPv4 address"),
            ("plugins = [\"../bin/sh\"]", "not a plugin file name"),
            (
                "plugins = [\"bridge\", \"host-local\"]\ndefault_network = { subnet = \"10.88.0.0/16\" }",
                "needs the \"portmap\" plugin",
            ),
        ];
        for (cni, why) in cases {
            let err = with(cni).unwrap_err().to_string();
            assert!(err.contains(why), "{cni}: {err}");
        }
        let err = with("default_network = { subnet = \"10.88.0.0\" }").unwrap_err();
        assert!(err.to_string().contains("line "), "{err}");
    }

    #[test]
    fn size_parse_and_display() {
        assert_eq!(Size::parse("4096").unwrap(), Size(4096));
        assert_eq!(Size::parse("2GiB").unwrap().to_string(), "2GiB");
        assert_eq!(Size(3 * MIB).to_string(), "3MiB");
        assert!(Size::parse("99999999999TiB").is_err());
        assert!(Size::parse("").is_err());
    }
}
