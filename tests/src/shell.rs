//! The root shell of the debug variant on a VM's serial console, for VM tests: commands
//! framed by markers that only the shell's output can contain (the typed line holds
//! `$((…))`, the output its value), with generous timeouts that are never asserted on.

use std::path::Path;
use std::time::Duration;

use berth_qemu::{Accel, Qemu, QemuBuilder, Vm};

/// TCG on a busy two-core machine: generous, never asserted on.
pub const BOOT: Duration = Duration::from_secs(600);
pub const COMMAND: Duration = Duration::from_secs(120);

/// The root shell on the console: commands framed by markers that only the shell's output
/// can contain (the typed line holds `$((…))`, the output its value).
pub struct Shell {
    pub vm: Vm,
    next: u64,
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
        let mut shell = Shell { vm, next: 1000 };
        if let Err(err) = shell.vm.wait_for("berth: ready", BOOT) {
            let console = shell.vm.console();
            if shell.vm.accel() == Accel::Kvm && !console.contains("berth:") {
                eprintln!(
                    "warning: the guest hung under KVM before Berth ran ({err}); booting again under TCG"
                );
                drop(shell);
                let vm = builder.accel(Accel::Tcg).spawn().expect("QEMU starts");
                shell = Shell { vm, next: 1000 };
                shell.vm.wait_for("berth: ready", BOOT).unwrap();
            } else {
                panic!("{err}");
            }
        }
        // The shell may set up its terminal after our first keys: knock until it answers.
        for _ in 0..60 {
            shell.vm.send("echo @@R$((6*7))\n").unwrap();
            if shell.vm.wait_for("@@R42", Duration::from_secs(5)).is_ok() {
                return shell;
            }
        }
        panic!("no shell on the console:\n{}", shell.vm.console());
    }

    /// Runs `command` and returns what it printed (carriage returns removed).
    pub fn run(&mut self, command: &str) -> String {
        self.next += 1;
        let n = self.next;
        self.vm
            .send(&format!(
                "echo @@B$(({n}+0)); {command}; echo @@E$(({n}+0))\n"
            ))
            .unwrap();
        let end = format!("@@E{n}");
        self.vm.wait_for(&end, COMMAND).unwrap();
        let console = self.vm.console().replace('\r', "");
        let begin = format!("@@B{n}\n");
        let from = console.rfind(&begin).map(|i| i + begin.len()).unwrap();
        let to = console.rfind(&end).unwrap();
        console[from..to].to_owned()
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
