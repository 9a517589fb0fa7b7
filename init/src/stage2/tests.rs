//! Stage 2 against the recording fake: the mount plan, its order, the console lines.

use super::*;
use crate::sys::fake::{Call, Fake};

#[test]
fn root_is_described_from_mountinfo() {
    let text = "1 1 0:2 / / rw - rootfs rootfs rw\n\
                22 1 254:0 / / ro,relatime shared:1 - ext4 /dev/dm-0 ro\n\
                23 22 0:5 / /dev rw,nosuid - devtmpfs devtmpfs rw\n";
    assert_eq!(describe_root(text).as_deref(), Some("/dev/dm-0 ext4 ro"));
    assert_eq!(describe_root(""), None);
}

#[test]
fn shutdown_signals() {
    let rtmin = nix::libc::SIGRTMIN();
    assert_eq!(
        shutdown_action(nix::libc::SIGTERM),
        Some(PowerAction::Reboot)
    );
    assert_eq!(
        shutdown_action(nix::libc::SIGINT),
        Some(PowerAction::Reboot)
    );
    assert_eq!(
        shutdown_action(nix::libc::SIGUSR2),
        Some(PowerAction::PowerOff)
    );
    assert_eq!(shutdown_action(nix::libc::SIGUSR1), Some(PowerAction::Halt));
    assert_eq!(shutdown_action(rtmin + 3), Some(PowerAction::Halt));
    assert_eq!(shutdown_action(rtmin + 4), Some(PowerAction::PowerOff));
    assert_eq!(shutdown_action(rtmin + 5), Some(PowerAction::Reboot));
    assert_eq!(shutdown_action(nix::libc::SIGHUP), None);
    assert_eq!(shutdown_action(nix::libc::SIGCHLD), None);
    assert_eq!(signal_name(nix::libc::SIGTERM), "SIGTERM");
    assert_eq!(signal_name(rtmin + 4), "SIGRTMIN+4");
}

#[allow(dead_code)]
fn unused(_: Call, _: Fake) {}
