//! `berth-init`: Berth's PID 1. Stage 1 when run as `/init` from the initramfs, which goes
//! on as stage 2 in the same process once the verified root is `/` (no `execve`: see
//! [`berth_init::stage1`]); stage 2 alone when run otherwise (as `/sbin/init` in the
//! verified root); see [`berth_init::boot_stage`]. Run
//! as `modprobe` (a link), it is the kernel's module loader ([`berth_init::modprobe`]).
//!
//! Thin on purpose: it picks the boot stage and calls the library. As PID 1 it never returns
//! from `main` (returning would panic the kernel): a failure or a panic is printed on the
//! console, the machine is stopped, and if even that fails it idles forever.

use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use berth_init::sys::{Linux, Syscalls};
use berth_init::{boot_stage, stage1, stage2, BootStage};
use berth_layout::cmdline::FailureAction;

fn main() -> ExitCode {
    let argv0 = std::env::args().next().unwrap_or_default();
    // `/usr/sbin/modprobe` links here: the kernel's request_module runs it.
    if std::path::Path::new(&argv0).file_name() == Some("modprobe".as_ref()) {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let code = berth_init::modprobe::run(&Linux::new(), &args, &mut |line| eprintln!("{line}"));
        return ExitCode::from(code);
    }
    if std::env::args().skip(1).any(|arg| arg == "--version") {
        println!("berth-init {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let stage = boot_stage(&argv0);
    let pid = std::process::id();
    if pid != 1 {
        eprintln!(
            "berth-init: this is Berth's PID 1 ({}: stage 1 when run as /init from the \
             initramfs, stage 2 as /sbin/init); it runs as PID {pid}, so it does nothing",
            match stage {
                BootStage::Stage1 => "would be stage 1",
                BootStage::Stage2 => "would be stage 2",
            }
        );
        return ExitCode::from(2);
    }

    panic::set_hook(Box::new(move |info| {
        let sys = Linux::new();
        let message = format!("berth: FAILED internal: {info}").replace('\n', " ");
        sys.log(&message);
        // Stage 2 catches a panicking job and goes on; stage 1 cannot go on.
        if IN_STAGE2.load(Ordering::SeqCst) {
            return;
        }
        let failure = sys
            .read_to_string("/proc/cmdline".as_ref())
            .map(|text| FailureAction::from_cmdline(&text))
            .unwrap_or_default();
        stage1::stop(&sys, failure);
    }));
    let sys = Linux::new();
    // A panic was already reported and acted on by the hook; only idling is left.
    let _ = panic::catch_unwind(AssertUnwindSafe(|| {
        // Stage 1 that switched root goes on as stage 2 in this process (see `stage1`).
        if stage == BootStage::Stage1 && stage1::run(&sys) == stage1::Outcome::Stopped {
            return;
        }
        IN_STAGE2.store(true, Ordering::SeqCst);
        stage2::run(&sys);
    }));
    idle_forever()
}

/// Set once this process runs stage 2: from then on a panic is reported and PID 1 goes
/// on, rather than stopping the machine as in stage 1.
static IN_STAGE2: AtomicBool = AtomicBool::new(false);

/// PID 1 must not exit: reap whatever gets reparented to it and sleep.
fn idle_forever() -> ! {
    loop {
        match nix::sys::wait::wait() {
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_secs(60)),
        }
    }
}
