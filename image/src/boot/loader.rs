//! systemd-boot's configuration on the ESP: `loader/loader.conf`, one loader entry per
//! filled slot with boot counting (`+TRIES` in the file name, as systemd-boot's automatic
//! boot assessment reads it), and the full list of ESP files (systemd-boot as the
//! removable-media loader `\EFI\BOOT\BOOTX64.EFI`, each slot's kernel and initramfs).
//!
//! The kernel command line is rendered by the caller and written into `options` verbatim.

use std::path::Path;

use crate::fat::{EspFile, EspSource};

/// A slot's kernel and initramfs on the ESP: `/berth/<slot>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    /// `a` or `b`: the slot's folder on the ESP and its loader entry's name.
    pub fn lower(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }

    /// `A` or `B`, as titles show it.
    pub fn upper(self) -> &'static str {
        match self {
            Slot::A => "A",
            Slot::B => "B",
        }
    }

    /// The slot's kernel, as a path on the ESP (`/`-separated, no leading `/`).
    pub fn vmlinuz(self) -> String {
        format!("berth/{}/vmlinuz", self.lower())
    }

    /// The slot's initramfs.
    pub fn initrd(self) -> String {
        format!("berth/{}/initrd.img", self.lower())
    }
}

/// What a loader entry names: the image and its version, and boot counting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo<'a> {
    /// The image name (`image.toml`'s `[image] name`), capitalised in the title.
    pub image_name: &'a str,
    pub version: &'a str,
    /// Tries before systemd-boot falls back to the other slot.
    pub tries: u32,
}

/// `loader/loader.conf`: boot the newest slot with tries left at once; the menu appears
/// when a key is held, so `cargo xtask run` can still pick a slot.
pub fn loader_conf() -> String {
    "default berth-*\ntimeout 0\neditor no\nconsole-mode keep\n".into()
}

/// The loader entry of a slot: its path on the ESP (with the boot-counting suffix) and
/// its contents.
pub fn entry(info: &EntryInfo, slot: Slot, cmdline: &str) -> (String, String) {
    let name = format!("loader/entries/berth-{}+{}.conf", slot.lower(), info.tries);
    let text = format!(
        "title {title} {version} (slot {slot})\nversion {version}\nsort-key berth\nlinux /{linux}\ninitrd /{initrd}\noptions {cmdline}\n",
        title = title(info.image_name),
        version = info.version,
        slot = slot.upper(),
        linux = slot.vmlinuz(),
        initrd = slot.initrd(),
    );
    (name, text)
}

fn title(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// Every file of a freshly built ESP: the loader, its configuration, and slot A's entry,
/// kernel and initramfs (slot B gets files and an entry when an update fills it).
pub fn esp_files(
    info: &EntryInfo,
    loader: &Path,
    vmlinuz: &Path,
    initrd: &Path,
    cmdline: &str,
) -> Vec<EspFile> {
    let (entry_name, entry_text) = entry(info, Slot::A, cmdline);
    vec![
        EspFile {
            path: "EFI/BOOT/BOOTX64.EFI".into(),
            source: EspSource::Host(loader.to_path_buf()),
        },
        EspFile {
            path: "loader/loader.conf".into(),
            source: EspSource::Bytes(loader_conf().into_bytes()),
        },
        EspFile {
            path: entry_name,
            source: EspSource::Bytes(entry_text.into_bytes()),
        },
        EspFile {
            path: Slot::A.vmlinuz(),
            source: EspSource::Host(vmlinuz.to_path_buf()),
        },
        EspFile {
            path: Slot::A.initrd(),
            source: EspSource::Host(initrd.to_path_buf()),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: EntryInfo = EntryInfo {
        image_name: "berth",
        version: "0.1.0",
        tries: 3,
    };

    #[test]
    fn loader_entry_golden() {
        let (name, text) = entry(&INFO, Slot::A, "console=ttyS0 roothash=ab");
        assert_eq!(name, "loader/entries/berth-a+3.conf");
        assert_eq!(
            text,
            "title Berth 0.1.0 (slot A)\nversion 0.1.0\nsort-key berth\nlinux /berth/a/vmlinuz\ninitrd /berth/a/initrd.img\noptions console=ttyS0 roothash=ab\n"
        );
        let (name, text) = entry(&INFO, Slot::B, "x");
        assert_eq!(name, "loader/entries/berth-b+3.conf");
        assert!(text.contains("(slot B)\n") && text.contains("linux /berth/b/vmlinuz\n"));
    }

    #[test]
    fn loader_conf_golden() {
        assert_eq!(
            loader_conf(),
            "default berth-*\ntimeout 0\neditor no\nconsole-mode keep\n"
        );
    }

    #[test]
    fn esp_files_name_slot_a_and_the_removable_media_loader() {
        let files = esp_files(
            &INFO,
            Path::new("/l.efi"),
            Path::new("/vmlinuz"),
            Path::new("/initrd"),
            "c",
        );
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "EFI/BOOT/BOOTX64.EFI",
                "loader/loader.conf",
                "loader/entries/berth-a+3.conf",
                "berth/a/vmlinuz",
                "berth/a/initrd.img"
            ]
        );
        assert_eq!(files[0].source, EspSource::Host("/l.efi".into()));
    }

    #[test]
    fn an_empty_name_gives_an_empty_title_word() {
        assert_eq!(title(""), "");
        assert_eq!(title("x"), "X");
    }
}
