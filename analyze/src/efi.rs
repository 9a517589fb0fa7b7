//! The firmware and loader times that systemd-boot leaves in EFI variables
//! (systemd-boot(7), "Boot Loader Interface"): `LoaderTimeInitUSec` (µs from the
//! firmware's start to the loader's) and `LoaderTimeExecUSec` (to the loader starting the
//! kernel), under the loader's vendor GUID. efivarfs(5) shows a variable as a file
//! `NAME-GUID` whose content is the 4-byte attributes word, then the data: here a decimal
//! number as a UTF-16LE string, NUL-terminated.
//!
//! systemd turns the pair into its FIRMWARE and LOADER timestamps (boot-timestamps.c):
//! firmware = exec, loader = exec − init, so `systemd-analyze time` says `init
//! (firmware) + exec−init (loader)`; a pair where exec is 0, below init, or more than an
//! hour after it is ignored, as systemd ignores it.

use std::io;
use std::path::Path;

/// Where efivarfs is mounted.
pub const EFIVARS: &str = "/sys/firmware/efi/efivars";
/// The Boot Loader Interface's vendor GUID (`LoaderInfo`).
pub const LOADER_GUID: &str = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";
const USEC_PER_HOUR: u64 = 3_600_000_000;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EfiVarError {
    #[error("{0} bytes: shorter than the 4-byte attributes")]
    Short(usize),
    #[error("an odd number of UTF-16 bytes ({0})")]
    OddLength(usize),
    #[error("not UTF-16")]
    NotUtf16,
    #[error("{0:?} is not a number of microseconds")]
    NotNumber(String),
}

/// The µs value of one variable's efivarfs content.
pub fn parse_usec(content: &[u8]) -> Result<u64, EfiVarError> {
    let data = content.get(4..).ok_or(EfiVarError::Short(content.len()))?;
    if data.len() % 2 != 0 {
        return Err(EfiVarError::OddLength(data.len()));
    }
    let units: Vec<u16> = data
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|u| *u != 0)
        .collect();
    let text = String::from_utf16(&units).map_err(|_| EfiVarError::NotUtf16)?;
    text.parse()
        .map_err(|_| EfiVarError::NotNumber(text.clone()))
}

/// The firmware and loader durations (µs) from the two variables' contents, `None` when
/// either is missing, unreadable or implausible (as systemd's efi_loader_get_boot_usec).
pub fn firmware_and_loader(init: Option<&[u8]>, exec: Option<&[u8]>) -> Option<(u64, u64)> {
    let x = parse_usec(init?).ok()?;
    let y = parse_usec(exec?).ok()?;
    if y == 0 || y < x || y - x > USEC_PER_HOUR {
        return None;
    }
    Some((x, y - x))
}

/// The content of `NAME-LOADER_GUID` in the efivarfs at `dir`; `None` when absent (no
/// EFI, efivarfs not mounted, or a loader that does not set it).
pub fn read_loader_variable(dir: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(dir.join(format!("{name}-{LOADER_GUID}"))) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// As efivarfs shows a volatile boot-service/runtime variable
    /// (NON_VOLATILE clear: attributes 0x06) holding `text`.
    fn var(text: &str) -> Vec<u8> {
        let mut v = vec![0x06, 0x00, 0x00, 0x00];
        for u in text.encode_utf16().chain([0]) {
            v.extend_from_slice(&u.to_le_bytes());
        }
        v
    }

    #[test]
    fn the_efivarfs_layout_is_attributes_then_utf16le() {
        // "1234567" as systemd-boot writes it, byte for byte.
        let bytes = [
            0x06, 0x00, 0x00, 0x00, b'1', 0, b'2', 0, b'3', 0, b'4', 0, b'5', 0, b'6', 0, b'7', 0,
            0, 0,
        ];
        assert_eq!(var("1234567"), bytes);
        assert_eq!(parse_usec(&bytes), Ok(1_234_567));
        // Without the terminating NUL, too.
        assert_eq!(parse_usec(&bytes[..18]), Ok(1_234_567));
        assert_eq!(parse_usec(&[6, 0, 0]), Err(EfiVarError::Short(3)));
        assert_eq!(parse_usec(&bytes[..17]), Err(EfiVarError::OddLength(13)));
        assert_eq!(
            parse_usec(&var("12a")),
            Err(EfiVarError::NotNumber("12a".into()))
        );
        assert_eq!(
            parse_usec(&[6, 0, 0, 0, 0x00, 0xd8, b'1', 0]),
            Err(EfiVarError::NotUtf16),
            "a lone surrogate"
        );
    }

    #[test]
    fn firmware_is_init_and_loader_the_rest_and_implausible_pairs_are_ignored() {
        let (init, exec) = (var("1500000"), var("2250000"));
        assert_eq!(
            firmware_and_loader(Some(&init), Some(&exec)),
            Some((1_500_000, 750_000))
        );
        assert_eq!(firmware_and_loader(None, Some(&exec)), None);
        assert_eq!(
            firmware_and_loader(Some(&exec), Some(&init)),
            None,
            "exec < init"
        );
        assert_eq!(firmware_and_loader(Some(&init), Some(&var("0"))), None);
        let late = var("3601500001");
        assert_eq!(firmware_and_loader(Some(&init), Some(&late)), None, "> 1 h");
    }

    #[test]
    fn a_missing_variable_is_none_and_a_present_one_is_read() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            read_loader_variable(dir.path(), "LoaderTimeInitUSec").unwrap(),
            None
        );
        let name = format!("LoaderTimeInitUSec-{LOADER_GUID}");
        std::fs::write(dir.path().join(name), var("42")).unwrap();
        let got = read_loader_variable(dir.path(), "LoaderTimeInitUSec").unwrap();
        assert_eq!(got.as_deref().map(parse_usec), Some(Ok(42)));
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_fail_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_usec(&bytes);
        }

        #[test]
        fn every_number_round_trips(n in any::<u64>(), attributes in any::<u32>()) {
            let mut v = var(&n.to_string());
            v[..4].copy_from_slice(&attributes.to_le_bytes());
            prop_assert_eq!(parse_usec(&v), Ok(n));
        }
    }
}
