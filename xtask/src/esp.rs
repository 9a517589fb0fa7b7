//! The kernel command line of a slot, as the ESP's loader entries carry it (the contract
//! between the image and stage 1). The loader entries and the rest of the ESP's files are
//! boot formats, in `berth_image::boot::loader`.

use berth_image::spec::ImageSpec;
use berth_layout::cmdline::{Cmdline, RootHash};

use crate::Variant;

/// The kernel command line of slot A: the console, then the contract PID 1 parses
/// ([`Cmdline`]), then `image.toml`'s own words. The debug and test variants ask for their
/// root shell and the verbose boot lines.
pub fn cmdline(spec: &ImageSpec, variant: Variant, root_hash: &[u8; 32]) -> String {
    let mut berth = Cmdline::new(RootHash(*root_hash));
    berth.options.verity = spec.boot.verity_failure;
    if variant.has_shell() {
        berth.options.verbose = true;
        berth.options.debug_shell = true;
    }
    let mut args = vec!["console=ttyS0".to_string()];
    args.extend(berth.words());
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
        let line = cmdline(&spec, Variant::Default, &[0xab; 32]);
        assert_eq!(
            line,
            format!("console=ttyS0 roothash={hash} berth.verity=panic")
        );
        let debug = cmdline(&spec, Variant::Debug, &[0xab; 32]);
        assert!(debug.ends_with(" berth.verbose berth.debug"), "{debug}");
        assert_eq!(cmdline(&spec, Variant::Test, &[0xab; 32]), debug);
        let parsed = Cmdline::parse(&debug).unwrap();
        assert!(parsed.options.debug_shell && parsed.options.verbose);
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
