//! The anchor of `bench boot --against debian`: the node image a user would otherwise build,
//! Debian 12 with systemd 252, containerd 1.6 and runc, made with debootstrap, on the same
//! kernel and systemd-boot `.deb`s that Berth pins, and booted the same way (OVMF,
//! systemd-boot, an initramfs, `console=ttyS0`). It is kept minimal in Debian's own terms
//! (the `minbase` variant plus what a node needs) so that the comparison flatters it, not
//! Berth: systemd-networkd for DHCP, systemd-timesyncd, containerd with runc, no dbus.
//!
//! Built once (as root: debootstrap and chroot need it) and cached under the `.deb` cache,
//! keyed by this file's text, the mirror and the pinned kernel and loader; debootstrap takes
//! the archive's current versions, so the headline versions are checked and printed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use berth_image::fat::{self, EspFile, EspParams, EspSource};
use berth_image::spec::ImageSpec;
use berth_rootfs::{deb, DebCache, Prune};
use sha2::{Digest, Sha256};

use crate::fetch;
use crate::ui::Ui;
use crate::workspace::Workspace;

/// What debootstrap installs on top of `minbase`.
const INCLUDE: &[&str] = &[
    "systemd-sysv",
    "udev",
    "kmod",
    "linux-base",
    "initramfs-tools",
    "zstd",
    "containerd",
    "runc",
    "systemd-timesyncd",
];

/// The packages whose versions the comparison is about, with the version prefix required.
const HEADLINE: &[(&str, &str)] = &[("systemd", "252."), ("containerd", "1.6."), ("runc", "")];

const ROOT_LABEL: &str = "anchor-root";
const ESP_SIZE: u64 = 64 << 20;
/// Free room on the anchor's root beyond its files (it is writable, as such a node's is).
const ROOT_FREE: u64 = 512 << 20;
const MIB: u64 = 1 << 20;
const SECTOR: u64 = 512;
/// The GPT partition types: the ESP and Linux x86-64 root (the Discoverable Partitions one).
const ESP_TYPE: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const ROOT_TYPE: &str = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709";

/// The anchor's disk and what it holds.
pub struct Anchor {
    pub disk: PathBuf,
    /// `name version` of every installed package, as dpkg-query lists them.
    pub packages: Vec<(String, String)>,
}

impl Anchor {
    /// The version of an installed package.
    pub fn version(&self, name: &str) -> Option<&str> {
        self.packages
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The anchor disk from the cache, built first if it is not there.
pub fn debian(ws: &Workspace, ui: &Ui, spec: &ImageSpec) -> Result<Anchor> {
    let boot = fetch::fetch(ui, spec, &ws.kernel_lock_file(), &spec.boot_packages())?;
    let kernel_deb = boot
        .iter()
        .find(|(pkg, _)| pkg.name.starts_with("linux-image-"))
        .map(|(_, path)| path.clone())
        .context("the anchor needs image.toml's kernel.package (a Debian kernel .deb), not a custom kernel")?;
    let loader_deb = boot
        .iter()
        .find(|(pkg, _)| pkg.name == spec.boot.loader_package)
        .map(|(_, path)| path.clone())
        .context("the loader package is not among the fetched boot packages")?;

    let mut hash = Sha256::new();
    hash.update(include_str!("anchor.rs"));
    for part in [&spec.packages.mirror, &spec.packages.suite] {
        hash.update(part);
    }
    for (pkg, _) in &boot {
        hash.update(&pkg.sha256);
    }
    let key = hex::encode(hash.finalize());
    let cache = DebCache::default_dir().context("no cache folder")?;
    let dir = cache.join("bench").join(format!("debian-{}", &key[..16]));
    let disk = dir.join("disk.raw");
    let list = dir.join("packages.txt");
    if !disk.is_file() || !list.is_file() {
        let partial = cache
            .join("bench")
            .join(format!(".debian-{}.partial", &key[..16]));
        if partial.exists() {
            fs::remove_dir_all(&partial)
                .with_context(|| format!("cannot remove {}", partial.display()))?;
        }
        fs::create_dir_all(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        build(ui, spec, &partial, &kernel_deb, &loader_deb)?;
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
        }
        fs::rename(&partial, &dir)
            .with_context(|| format!("cannot rename {} to {}", partial.display(), dir.display()))?;
    }
    let text =
        fs::read_to_string(&list).with_context(|| format!("cannot read {}", list.display()))?;
    Ok(Anchor {
        disk,
        packages: parse_packages(&text),
    })
}

fn parse_packages(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(n, v)| (n.to_owned(), v.trim().to_owned()))
        .collect()
}

/// debootstrap, the kernel, the configuration, then the disk; the root tree is removed at the
/// end (only `disk.raw`, `packages.txt` and the logs stay).
fn build(
    ui: &Ui,
    spec: &ImageSpec,
    dir: &Path,
    kernel_deb: &Path,
    loader_deb: &Path,
) -> Result<()> {
    if !is_root()? {
        bail!("building the Debian anchor needs root (debootstrap and chroot); run as root");
    }
    let root = dir.join("root");
    let step = ui.step("debian");
    step.message("debootstrap (minbase, systemd, containerd, runc)");
    run_logged(
        Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--include={}", INCLUDE.join(",")))
            .arg(&spec.packages.suite)
            .arg(&root)
            .arg(&spec.packages.mirror),
        &dir.join("debootstrap.log"),
        "debootstrap (install it with `apt-get install debootstrap`)",
    )?;

    step.message("Berth's pinned kernel, initramfs by initramfs-tools");
    let in_root = root.join("tmp/kernel.deb");
    fs::copy(kernel_deb, &in_root)
        .with_context(|| format!("cannot copy {} into the anchor", kernel_deb.display()))?;
    run_logged(
        Command::new("chroot")
            .arg(&root)
            .args(["dpkg", "-i", "/tmp/kernel.deb"]),
        &dir.join("kernel.log"),
        "dpkg -i of the kernel in the anchor",
    )?;
    fs::remove_file(&in_root)?;

    step.message("configuration");
    configure(&root)?;
    let listed = output(
        Command::new("chroot").arg(&root).args([
            "dpkg-query",
            "-W",
            "-f",
            "${Package} ${Version}\n",
        ]),
        "dpkg-query in the anchor",
    )?;
    let packages = parse_packages(&listed);
    for (name, prefix) in HEADLINE {
        match packages.iter().find(|(n, _)| n == name) {
            Some((_, v)) if v.starts_with(prefix) => {}
            found => bail!(
                "the anchor must have {name} {prefix}*, debootstrap installed {:?}",
                found.map(|(_, v)| v)
            ),
        }
    }
    fs::write(dir.join("packages.txt"), &listed)?;

    step.message("disk: GPT, ESP with systemd-boot, ext4 root");
    let loader = dir.join("loader");
    fs::create_dir_all(&loader)?;
    deb::extract(loader_deb, &loader, &Prune::default())?;
    write_disk(&root, &loader, &dir.join("disk.raw"))?;
    fs::remove_dir_all(&root).with_context(|| format!("cannot remove {}", root.display()))?;
    fs::remove_dir_all(&loader).with_context(|| format!("cannot remove {}", loader.display()))?;
    step.finish("Debian 12 anchor: systemd, containerd, runc on Berth's kernel");
    Ok(())
}

/// What a user sets up on such a node: its root by label, DHCP on every Ethernet link by
/// systemd-networkd, and (for the bench's probes) a root shell on the serial console.
fn configure(root: &Path) -> Result<()> {
    let files = [
        ("etc/fstab", format!("LABEL={ROOT_LABEL} / ext4 defaults 0 1\n")),
        ("etc/hostname", "anchor\n".to_owned()),
        (
            "etc/systemd/network/80-dhcp.network",
            "[Match]\nName=en*\n\n[Network]\nDHCP=yes\n".to_owned(),
        ),
        (
            "etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf",
            "[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200,57600,38400,9600 - $TERM\n"
                .to_owned(),
        ),
    ];
    for (path, text) in files {
        let path = root.join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    // networkd with its wait-online; network-online.target pulled in as a kubelet's unit
    // (or cloud-init) pulls it in, so that both systems boot up to an online network.
    for args in [
        &["enable", "systemd-networkd.service"][..],
        &["add-wants", "multi-user.target", "network-online.target"][..],
    ] {
        run_logged(
            Command::new("chroot").arg(root).arg("systemctl").args(args),
            &root.join("../enable.log"),
            &format!("systemctl {} in the anchor", args.join(" ")),
        )?;
    }
    // Package downloads and lists are not part of a node's root.
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        let dir = root.join(dir);
        for entry in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let path = entry?.path();
            if path.is_file() {
                fs::remove_file(&path)?;
            }
        }
    }
    Ok(())
}

/// A GPT disk: the ESP (systemd-boot, one loader entry, the kernel and Debian's initramfs)
/// and the root, written by mke2fs from the tree in place at its offset.
fn write_disk(root: &Path, loader: &Path, disk: &Path) -> Result<()> {
    let tree = output(
        Command::new("du").args(["-s", "-B1", "-x"]).arg(root),
        "du of the anchor's root",
    )?;
    let tree: u64 = tree
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("du printed {tree:?}"))?;
    let root_size = (tree + tree / 4 + ROOT_FREE).div_ceil(MIB) * MIB;
    let esp_start = MIB;
    let root_start = esp_start + ESP_SIZE;
    let size = root_start + root_size + MIB;
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(disk)
        .with_context(|| format!("cannot create {}", disk.display()))?;
    file.set_len(size)?;
    let table = format!(
        "label: gpt\nunit: sectors\n\
         start={}, size={}, type={ESP_TYPE}, name=\"EFI-SYSTEM\"\n\
         start={}, size={}, type={ROOT_TYPE}, name=\"{ROOT_LABEL}\"\n",
        esp_start / SECTOR,
        ESP_SIZE / SECTOR,
        root_start / SECTOR,
        root_size / SECTOR
    );
    run_with_input(
        Command::new("sfdisk").arg("--quiet").arg(disk),
        &table,
        "sfdisk",
    )?;

    let kernel = single(root, "boot", "vmlinuz-")?;
    let initrd = single(root, "boot", "initrd.img-")?;
    let entry = format!(
        "title Debian 12 (bench anchor)\nlinux /vmlinuz\ninitrd /initrd.img\noptions console=ttyS0 root=LABEL={ROOT_LABEL} ro\n"
    );
    let files = vec![
        EspFile {
            path: "EFI/BOOT/BOOTX64.EFI".into(),
            source: EspSource::Host(loader.join("usr/lib/systemd/boot/efi/systemd-bootx64.efi")),
        },
        EspFile {
            path: "loader/loader.conf".into(),
            source: EspSource::Bytes(
                b"default anchor*\ntimeout 0\neditor no\nconsole-mode keep\n".to_vec(),
            ),
        },
        EspFile {
            path: "loader/entries/anchor.conf".into(),
            source: EspSource::Bytes(entry.into_bytes()),
        },
        EspFile {
            path: "vmlinuz".into(),
            source: EspSource::Host(kernel),
        },
        EspFile {
            path: "initrd.img".into(),
            source: EspSource::Host(initrd),
        },
    ];
    let params = EspParams {
        size_bytes: ESP_SIZE,
        volume_id: 0x4245_4e43,
        label: "EFI-SYSTEM".into(),
        epoch: 0,
    };
    fat::write_esp(&file, esp_start, &params, &files)?;
    drop(file);
    run_logged(
        Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-L", ROOT_LABEL, "-d"])
            .arg(root)
            .arg("-E")
            .arg(format!("offset={root_start}"))
            .arg(disk)
            .arg(format!("{}k", root_size / 1024)),
        &root.join("../mke2fs.log"),
        "mke2fs of the anchor's root",
    )
}

/// The one file in `root/folder` whose name starts with `prefix`.
fn single(root: &Path, folder: &str, prefix: &str) -> Result<PathBuf> {
    let dir = root.join(folder);
    let found: Vec<PathBuf> = fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!(
            "expected one {prefix}* in {}, found {}",
            dir.display(),
            found.len()
        ),
    }
}

fn is_root() -> Result<bool> {
    let status =
        fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    Ok(status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0"))
}

/// Runs `command` with its output in `log`; on failure, the error carries the log's tail.
fn run_logged(command: &mut Command, log: &Path, what: &str) -> Result<()> {
    let out = command
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    let mut text = out.stdout;
    text.extend_from_slice(&out.stderr);
    fs::write(log, &text).with_context(|| format!("cannot write {}", log.display()))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&text);
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "{what} failed ({}); the end of {}:\n{}",
            out.status,
            log.display(),
            tail.join("\n")
        );
    }
    Ok(())
}

fn output(command: &mut Command, what: &str) -> Result<String> {
    let out = command
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("{what} printed non-UTF-8"))
}

fn run_with_input(command: &mut Command, input: &str, what: &str) -> Result<()> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {what}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_query_lines_become_names_and_versions() {
        let packages =
            parse_packages("systemd 252.39-1~deb12u2\ncontainerd 1.6.20~ds1-1+deb12u3\n\n");
        assert_eq!(packages.len(), 2);
        let anchor = Anchor {
            disk: PathBuf::new(),
            packages,
        };
        assert_eq!(anchor.version("containerd"), Some("1.6.20~ds1-1+deb12u3"));
        assert_eq!(anchor.version("runc"), None);
    }
}
