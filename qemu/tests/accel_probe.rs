//! The accelerator probe on this host: it must answer (its own time limits kill a hanging
//! KVM), and say why it chose what it chose.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use berth_qemu::Accel;

#[test]
fn the_probe_answers_with_a_reason() {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(berth_qemu::accel_choice().clone()));
    // Far above the probes' own limits (5 s + 10 s): only a hang can reach it.
    let choice = rx
        .recv_timeout(Duration::from_secs(300))
        .expect("the KVM probe hung");
    eprintln!("accelerator: {} ({})", choice.accel, choice.reason);
    assert!(!choice.reason.is_empty());
    assert_eq!(berth_qemu::accel(), choice.accel, "the choice is cached");

    let forced = std::env::var(berth_qemu::ACCEL_ENV).ok();
    let kvm_openable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if forced.is_none() && !kvm_openable {
        assert_eq!(choice.accel, Accel::Tcg);
    }
}
