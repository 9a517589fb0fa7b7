//! The root shell of the debug variant on a VM's serial console, for VM tests: a boot that
//! waits for `berth: ready`, commands run through `berth_qemu`'s console shell, and
//! generous timeouts that are never asserted on.

use std::path::Path;
use std::time::Duration;

use berth_qemu::{Accel, Qemu, QemuBuilder, Vm};

/// TCG on a busy two-core machine: generous, never asserted on.
pub const BOOT: Duration = Duration::from_secs(600);
pub const COMMAND: Duration = Duration::from_secs(120);
/// How long the shell may take to answer once `berth: ready` is on the console.
const KNOCKING: Duration = Duration::from_secs(300);

/// The root shell on the console of a booted debug image.
pub struct Shell {
    pub vm: Vm,
}

impl Shell {
    pub fn boot(name: &str, disk: &Path, snapshot: bool) -> Shell {
        Shell::start(vm_builder(name, disk, snapshot))
    }

    /// Boots what `builder` describes and waits for the shell.
    ///
    /// KVM inside this kind of VM sometimes stops a guest for good (seen once in a CI run
    /// here: the kernel silent at 1.05 s, before any of Berth had run). Only when the
    /// console has no `berth:` line at all, so the hang was in firmware or the kernel, is
    /// the boot tried once more, under TCG, and said on stderr; any hang after Berth's
    /// first line fails the test as before.
    pub fn start(builder: QemuBuilder) -> Shell {
        let vm = builder.clone().spawn().expect("QEMU starts");
        let mut shell = Shell { vm };
        if let Err(err) = shell.vm.wait_for("berth: ready", BOOT) {
            let console = shell.vm.console();
            if shell.vm.accel() == Accel::Kvm && !console.contains("berth:") {
                eprintln!(
                    "warning: the guest hung under KVM before Berth ran ({err}); booting again under TCG"
                );
                drop(shell);
                let vm = builder.accel(Accel::Tcg).spawn().expect("QEMU starts");
                shell = Shell { vm };
                shell.vm.wait_for("berth: ready", BOOT).unwrap();
            } else {
                panic!("{err}");
            }
        }
        shell.vm.wait_for_shell(KNOCKING).unwrap();
        // The kernel's own console lines (a NIC's "link becomes ready", printed after the
        // shell is up) would land in the middle of a command's output; CI once failed a
        // count that read "[4.81] IPv6: ADDRCONF(...)\n1" for "1". PID 1's lines go to
        // /dev/console itself and stay.
        shell.run("busybox dmesg -n 1");
        shell
    }

    /// Runs `command` and returns what it printed (carriage returns removed).
    pub fn run(&mut self, command: &str) -> String {
        self.vm.run_in_shell(command, COMMAND).unwrap()
    }

    /// PID 1's lines of this boot as the kernel log holds them (`berth: ` records).
    ///
    /// PID 1 writes each line to the serial console and to `/dev/kmsg`. The kernel log is
    /// read inside the guest, one whole record per line, so a check of PID 1's lines does
    /// not depend on the serial capture. (A CI run once missed one of PID 1's lines in the
    /// captured console, cause unknown: a kernel line landing inside it was suspected, but
    /// 300 console lines written against 300 kernel lines from the other CPU, alternating
    /// about 150 times, came out whole.)
    pub fn berth_log(&mut self) -> String {
        self.run("busybox dmesg | busybox grep -F 'berth: '")
    }

    /// `poweroff`, then QEMU must end by itself.
    pub fn power_off(mut self) -> String {
        self.vm.send("busybox poweroff\n").unwrap();
        self.vm.wait_for("berth: shutdown power off", BOOT).unwrap();
        self.vm.wait_exit(BOOT).unwrap();
        self.vm.console()
    }
}

/// The VM the tests boot: `disk` under `name`, no reboots.
pub fn vm_builder(name: &str, disk: &Path, snapshot: bool) -> QemuBuilder {
    Qemu::builder()
        .name(name)
        .disk(disk)
        .snapshot(snapshot)
        .no_reboot(true)
}
