//! What goes into the EFI system partition: systemd-boot as the removable-media loader
//! (`\EFI\BOOT\BOOTX64.EFI`), its `loader.conf`, one loader entry per filled slot with boot
//! counting (`+TRIES` in the file name), and each slot's kernel and initramfs.

use std::path::Path;

use berth_image::fat::{EspFile, EspSource};
use berth_image::spec::ImageSpec;
use berth_layout::cmdline::{Cmdline, RootHash};

use crate::Variant;

/// The kernel command line of slot A: the console, then the contract PID 1 parses
/// ([`Cmdline`]), then `image.toml`'s own words. The debug variant asks for its root shell
/// and the verbose boot lines.
pub fn cmdline(spec: &ImageSpec, variant: Variant, root_hash: &[u8; 32]) -> String {
    let mut berth = Cmdline::new(RootHash(*root_hash));
    berth.options.verity = spec.boot.verity_failure;
    if variant == Variant::Debug {
        berth.options.verbose = true;
        berth.options.debug_shell = true;
    }
    let mut args = vec!["console=ttyS0".to_string()];
    args.extend(berth.words());
    args.extend(spec.kernel.cmdline.iter().cloned());
    args.join(" ")
}

/// `loader/loader.conf`: boot the newest slot with tries left at once; the menu appears
/// when a key is held, so `cargo xtask run` can still pick a slot.
pub fn loader_conf() -> String {
    "default berth-*\ntimeout 0\neditor no\nconsole-mode keep\n".into()
}

/// The loader entry of a slot: file name (with the boot-counting suffix) and contents.
pub fn entry(spec: &ImageSpec, slot: char, cmdline: &str) -> (String, String) {
    let slot_lower = slot.to_ascii_lowercase();
    let name = format!("loader/entries/berth-{slot_lower}+{}.conf", spec.boot.tries);
    let text = format!(
        "title {name} {version} (slot {slot})\nversion {version}\nsort-key berth\nlinux /berth/{slot_lower}/vmlinuz\ninitrd /berth/{slot_lower}/initrd.img\noptions {cmdline}\n",
        name = title(&spec.image.name),
        version = spec.image.version,
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

/// Every file of the ESP; slot B gets files and an entry when an update fills it.
pub fn files(
    spec: &ImageSpec,
    loader: &Path,
    vmlinuz: &Path,
    initrd: &Path,
    cmdline: &str,
) -> Vec<EspFile> {
    let (entry_name, entry_text) = entry(spec, 'A', cmdline);
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
            path: "berth/a/vmlinuz".into(),
            source: EspSource::Host(vmlinuz.to_path_buf()),
        },
        EspFile {
            path: "berth/a/initrd.img".into(),
            source: EspSource::Host(initrd.to_path_buf()),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::spec::ImageSpec;

    fn spec() -> ImageSpec {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../image.toml")).unwrap();
        ImageSpec::parse(&text, Path::new("image.toml")).unwrap()
    }

    #[test]
    fn loader_entry_and_cmdline_golden() {
        let spec = spec();
        let hash = "ab".repeat(32);
        let line = cmdline(&spec, Variant::Default, &[0xab; 32]);
        assert_eq!(
            line,
            format!("console=ttyS0 roothash={hash} berth.verity=panic")
        );
        let debug = cmdline(&spec, Variant::Debug, &[0xab; 32]);
        assert!(debug.ends_with(" berth.verbose berth.debug"), "{debug}");
        let parsed = Cmdline::parse(&debug).unwrap();
        assert!(parsed.options.debug_shell && parsed.options.verbose);
        let (name, text) = entry(&spec, 'A', &line);
        assert_eq!(name, "loader/entries/berth-a+3.conf");
        assert_eq!(
            text,
            format!(
                "title Berth {v} (slot A)\nversion {v}\nsort-key berth\nlinux /berth/a/vmlinuz\ninitrd /berth/a/initrd.img\noptions {line}\n",
                v = spec.image.version
            )
        );
    }
}
