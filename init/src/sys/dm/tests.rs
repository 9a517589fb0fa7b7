//! Layout against `linux/dm-ioctl.h` (x86-64) and the bytes of a table-load request.

use super::*;

#[test]
fn layout_matches_the_kernel_header() {
    assert_eq!(size_of::<DmIoctl>(), 312);
    assert_eq!(offset_of!(DmIoctl, data_size), 12);
    assert_eq!(offset_of!(DmIoctl, data_start), 16);
    assert_eq!(offset_of!(DmIoctl, target_count), 20);
    assert_eq!(offset_of!(DmIoctl, open_count), 24);
    assert_eq!(offset_of!(DmIoctl, flags), 28);
    assert_eq!(offset_of!(DmIoctl, event_nr), 32);
    assert_eq!(offset_of!(DmIoctl, dev), 40);
    assert_eq!(offset_of!(DmIoctl, name), 48);
    assert_eq!(offset_of!(DmIoctl, uuid), 176);
    assert_eq!(offset_of!(DmIoctl, data), 305);

    assert_eq!(size_of::<DmTargetSpec>(), 40);
    assert_eq!(offset_of!(DmTargetSpec, length), 8);
    assert_eq!(offset_of!(DmTargetSpec, status), 16);
    assert_eq!(offset_of!(DmTargetSpec, next), 20);
    assert_eq!(offset_of!(DmTargetSpec, target_type), 24);
    assert_eq!(std::mem::align_of::<DmTargetSpec>(), 8);
}

#[test]
fn ioctl_numbers_match_the_kernel_header() {
    // _IOWR(0xfd, nr, struct dm_ioctl): dir 3 << 30 | size 312 << 16 | 0xfd << 8 | nr.
    let code = |nr: u8| nix::request_code_readwrite!(DM_IOCTL, nr, size_of::<DmIoctl>());
    assert_eq!(code(DM_VERSION_CMD), 0xc138_fd00);
    assert_eq!(code(DM_DEV_CREATE_CMD), 0xc138_fd03);
    assert_eq!(code(DM_DEV_REMOVE_CMD), 0xc138_fd04);
    assert_eq!(code(DM_DEV_SUSPEND_CMD), 0xc138_fd06);
    assert_eq!(code(DM_TABLE_LOAD_CMD), 0xc138_fd09);
}

#[test]
fn requests_carry_version_sizes_and_names() {
    let buf = request("root", "CRYPT-VERITY-x-root", 0, 0, HEADER).unwrap();
    assert_eq!(buf.len(), 312);
    assert_eq!(read_u32(&buf, 0), 4);
    assert_eq!(read_u32(&buf, 4), 0);
    assert_eq!(read_u32(&buf, 12), 312);
    assert_eq!(read_u32(&buf, 16), 312);
    assert_eq!(&buf[48..53], b"root\0");
    assert_eq!(&buf[176..196], b"CRYPT-VERITY-x-root\0");
}

#[test]
fn table_load_layout() {
    let target = DmTarget {
        start: 0,
        length: 16,
        target_type: "verity".into(),
        params: "1 7:1 7:2 4096 4096 2 1 sha256 ab - 1 panic_on_corruption".into(),
    };
    assert_eq!(target.params.len(), 57);
    let buf = table_request("root", &target).unwrap();
    // Header, 40-byte spec, 57 bytes of parameters + NUL padded to 64.
    assert_eq!(buf.len(), 312 + 40 + 64);
    assert_eq!(read_u32(&buf, 12), 416, "data_size");
    assert_eq!(read_u32(&buf, 16), 312, "data_start");
    assert_eq!(read_u32(&buf, 20), 1, "target_count");
    assert_eq!(read_u32(&buf, 28), DM_READONLY_FLAG, "flags");
    assert_eq!(read_u64(&buf, 312), 0, "sector_start");
    assert_eq!(read_u64(&buf, 312 + 8), 16, "length");
    assert_eq!(read_u32(&buf, 312 + 20), 104, "next");
    assert_eq!(&buf[312 + 24..312 + 31], b"verity\0");
    assert_eq!(&buf[352..352 + 57], target.params.as_bytes());
    assert!(buf[352 + 57..].iter().all(|&b| b == 0));
    assert_eq!(target.to_string(), format!("0 16 verity {}", target.params));
}

#[test]
fn bad_names_are_refused_before_the_kernel_sees_them() {
    assert!(request(&"x".repeat(128), "", 0, 0, HEADER).is_err());
    assert!(request(&"x".repeat(127), "", 0, 0, HEADER).is_ok());
    assert!(request("a/b", "", 0, 0, HEADER).is_err());
    assert!(request("a\0b", "", 0, 0, HEADER).is_err());
    assert!(request("root", &"u".repeat(129), 0, 0, HEADER).is_err());
    assert!(check_string("target type", "verity", DM_MAX_TYPE_NAME).is_ok());
    assert!(check_string("target type", "sixteen-chars-xx", DM_MAX_TYPE_NAME).is_err());
}

#[test]
fn device_numbers_decode_like_the_kernel_encodes() {
    // new_encode_dev(MKDEV(254, 0)) and MKDEV(259, 0x12345).
    assert_eq!(
        decode_dev(254 << 8),
        DevNum {
            major: 254,
            minor: 0
        }
    );
    let encoded = 0x45 | (259 << 8) | ((0x12345 & !0xff) << 12);
    assert_eq!(
        decode_dev(encoded),
        DevNum {
            major: 259,
            minor: 0x12345
        }
    );
}
