//! The kernel command line of a slot, as the ESP's loader entries carry it (the contract
//! between the image and stage 1). The loader entries and the rest of the ESP's files are
//! boot formats, in `berth_image::boot::loader`.

use berth_image::spec::ImageSpec;

use crate::Variant;

/// The kernel command line of slot A (the contract between the image and stage 1).
pub fn cmdline(spec: &ImageSpec, variant: Variant, root_hash: &str) -> String {
    let mut args = vec![
        "console=ttyS0".to_string(),
        format!("roothash={root_hash}"),
        format!("berth.verity={}", spec.boot.verity_failure.name()),
    ];
    if variant == Variant::Debug {
        args.push("berth.debug".into());
    }
    args.extend(spec.kernel.cmdline.iter().cloned());
    args.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::boot::loader::{entry, EntryInfo, Slot};
    use berth_image::spec::ImageSpec;
    use std::path::Path;

    fn spec() -> ImageSpec {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../image.toml")).unwrap();
        ImageSpec::parse(&text, Path::new("image.toml")).unwrap()
    }

    #[test]
    fn loader_entry_and_cmdline_golden() {
        let spec = spec();
        let hash = "ab".repeat(32);
        let line = cmdline(&spec, Variant::Default, &hash);
        assert_eq!(
            line,
            format!("console=ttyS0 roothash={hash} berth.verity=panic")
        );
        assert!(cmdline(&spec, Variant::Debug, &hash).ends_with(" berth.debug"));
        let info = EntryInfo {
            image_name: &spec.image.name,
            version: &spec.image.version,
            tries: spec.boot.tries,
        };
        let (name, text) = entry(&info, Slot::A, &line);
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
