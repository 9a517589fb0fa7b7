//! Choosing the accelerator: KVM when it really works, TCG otherwise.
//!
//! An openable `/dev/kvm` proves little: nested KVM inside a cloud VM may abort QEMU
//! (`failed to set MSR`) or stop the guest with an "emulation failure" and leave QEMU
//! running forever, which would hang every VM test. So KVM is used only after two timed
//! probes pass, each killed when its time limit runs out:
//!
//! 1. a 64 KiB firmware of our own, run with the exact `-machine q35 -cpu host` a VM gets,
//!    whose first instructions write to QEMU's `isa-debug-exit` port: exit code 1 proves a
//!    vCPU ran guest code;
//! 2. when OVMF is installed, OVMF itself under KVM must print on the serial port (it takes
//!    well under a second under KVM, about four under TCG).
//!
//! The answer is computed once per process. `BERTH_QEMU_ACCEL=kvm|tcg` skips the probes;
//! `auto` (or unset) probes.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{QemuError, Result};
use crate::firmware::Firmware;
use crate::DEFAULT_QEMU;

/// The environment variable that forces an accelerator: `kvm`, `tcg` or `auto`.
pub const ACCEL_ENV: &str = "BERTH_QEMU_ACCEL";

/// Time limit of the tiny-firmware probe: QEMU normally exits in a tenth of a second.
const ROM_PROBE_LIMIT: Duration = Duration::from_secs(5);
/// Time limit for OVMF's first serial byte under KVM (normally well under a second).
const OVMF_PROBE_LIMIT: Duration = Duration::from_secs(10);

/// A QEMU accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation, with `-cpu host`.
    Kvm,
    /// QEMU's emulator, with `-cpu max`: slow but works everywhere.
    Tcg,
}

impl Accel {
    /// The name QEMU uses for it (`-accel <name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    /// The QEMU arguments that select this accelerator and its CPU model.
    pub(crate) fn args(self) -> [&'static str; 4] {
        match self {
            Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
            Accel::Tcg => ["-accel", "tcg", "-cpu", "max"],
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The accelerator this process uses, and why.
#[derive(Debug, Clone)]
pub struct AccelChoice {
    pub accel: Accel,
    pub reason: String,
}

/// The accelerator VMs of this process use (probed once, see the module docs).
pub fn accel() -> Accel {
    accel_choice().accel
}

/// The accelerator with the reason it was chosen, for test logs.
pub fn accel_choice() -> &'static AccelChoice {
    static CHOICE: OnceLock<AccelChoice> = OnceLock::new();
    CHOICE.get_or_init(|| match accel_from_env() {
        Ok(Some(accel)) => AccelChoice {
            accel,
            reason: format!("forced by {ACCEL_ENV}"),
        },
        Ok(None) => probe(Path::new(DEFAULT_QEMU)),
        Err(err) => {
            let mut choice = probe(Path::new(DEFAULT_QEMU));
            choice.reason = format!("{err}, ignored; {}", choice.reason);
            choice
        }
    })
}

/// The accelerator forced through [`ACCEL_ENV`], if any.
pub fn accel_from_env() -> Result<Option<Accel>> {
    match std::env::var(ACCEL_ENV) {
        Ok(value) => parse_accel(&value),
        Err(_) => Ok(None),
    }
}

fn parse_accel(value: &str) -> Result<Option<Accel>> {
    match value.trim().to_ascii_lowercase().as_str() {
        "kvm" => Ok(Some(Accel::Kvm)),
        "tcg" => Ok(Some(Accel::Tcg)),
        "" | "auto" => Ok(None),
        _ => Err(QemuError::InvalidAccel {
            value: value.to_owned(),
        }),
    }
}

/// Runs both probes with `qemu`; any failure, error or time-out means TCG.
fn probe(qemu: &Path) -> AccelChoice {
    let tcg = |reason: String| AccelChoice {
        accel: Accel::Tcg,
        reason,
    };
    if let Err(err) = OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        return tcg(format!("cannot open /dev/kvm: {err}"));
    }
    let dir = match tempfile::Builder::new()
        .prefix("berth-kvm-probe-")
        .tempdir()
    {
        Ok(dir) => dir,
        Err(err) => {
            return tcg(format!(
                "KVM probe: cannot create a temporary directory: {err}"
            ))
        }
    };
    if let Err(reason) = rom_probe(qemu, dir.path()) {
        return tcg(format!("KVM probe with a tiny firmware failed: {reason}"));
    }
    let Ok(firmware) = Firmware::find() else {
        return AccelChoice {
            accel: Accel::Kvm,
            reason: "KVM ran the tiny firmware (OVMF not installed, not tried)".to_owned(),
        };
    };
    match ovmf_probe(qemu, &firmware, dir.path()) {
        Ok(()) => AccelChoice {
            accel: Accel::Kvm,
            reason: "KVM ran the tiny firmware and OVMF".to_owned(),
        },
        Err(reason) => tcg(format!("KVM probe with OVMF failed: {reason}")),
    }
}

/// A 64 KiB legacy BIOS image whose reset vector (its last 16 bytes) runs
/// `cli; fninit; mov al, 0; out 0xf4, al; hlt`: QEMU then exits with status `(0 << 1) | 1`.
fn probe_rom() -> Vec<u8> {
    const CODE: [u8; 8] = [0xfa, 0xdb, 0xe3, 0xb0, 0x00, 0xe6, 0xf4, 0xf4];
    let mut rom = vec![0u8; 64 * 1024];
    let start = rom.len() - 16;
    rom[start..start + CODE.len()].copy_from_slice(&CODE);
    rom
}

fn kvm_command(qemu: &Path) -> Command {
    let mut cmd = Command::new(qemu);
    cmd.args(Accel::Kvm.args())
        .args(["-machine", "q35", "-nodefaults", "-display", "none"])
        .stdin(Stdio::null());
    cmd
}

fn rom_probe(qemu: &Path, dir: &Path) -> Result<(), String> {
    let rom = dir.join("probe.rom");
    fs::write(&rom, probe_rom()).map_err(|err| format!("cannot write {}: {err}", rom.display()))?;
    let stderr_path = dir.join("rom-probe.stderr");
    let stderr = fs::File::create(&stderr_path)
        .map_err(|err| format!("cannot create {}: {err}", stderr_path.display()))?;
    let mut cmd = kvm_command(qemu);
    cmd.args(["-serial", "none", "-bios"])
        .arg(&rom)
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .stdout(Stdio::null())
        .stderr(stderr);
    let first_error_line = || {
        let text = fs::read_to_string(&stderr_path).unwrap_or_default();
        let line = text
            .lines()
            .find(|l| l.contains("error") || l.contains("rror:"));
        line.or(text.lines().last()).unwrap_or("").to_owned()
    };
    match run_limited(cmd, ROM_PROBE_LIMIT) {
        Ok(Some(status)) if status.code() == Some(1) => Ok(()),
        Ok(Some(status)) => Err(format!("QEMU {status}: {}", first_error_line())),
        Ok(None) => Err(format!("no exit within {ROM_PROBE_LIMIT:?}, killed")),
        Err(err) => Err(format!("cannot run {}: {err}", qemu.display())),
    }
}

fn ovmf_probe(qemu: &Path, firmware: &Firmware, dir: &Path) -> Result<(), String> {
    let vars = dir.join("probe-vars.fd");
    firmware
        .private_vars(&vars)
        .map_err(|err| err.to_string())?;
    let mut cmd = kvm_command(qemu);
    cmd.args(["-m", "256", "-serial", "stdio"])
        .args(firmware.pflash_args(&vars))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    match first_output_within(cmd, OVMF_PROBE_LIMIT) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "no serial output within {OVMF_PROBE_LIMIT:?}, killed"
        )),
        Err(err) => Err(format!("cannot run {}: {err}", qemu.display())),
    }
}

/// Runs `cmd` for at most `limit`: its exit status, or `None` after killing it.
fn run_limited(mut cmd: Command, limit: Duration) -> io::Result<Option<ExitStatus>> {
    let mut child = cmd.spawn()?;
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            kill_and_reap(&mut child);
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `cmd` (with a piped stdout) writes a byte within `limit`; it is killed either way.
fn first_output_within(mut cmd: Command, limit: Duration) -> io::Result<bool> {
    let mut child = cmd.spawn()?;
    let Some(mut stdout) = child.stdout.take() else {
        kill_and_reap(&mut child);
        return Err(io::Error::other("stdout is not piped"));
    };
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut byte = [0u8; 1];
        let got = matches!(stdout.read(&mut byte), Ok(1));
        // The receiver may have given up already; nothing to do then.
        let _ = tx.send(got);
    });
    let got = rx.recv_timeout(limit).unwrap_or(false);
    kill_and_reap(&mut child);
    // The pipe closed when the child died, so the reader has returned.
    let _ = reader.join();
    Ok(got)
}

fn kill_and_reap(child: &mut Child) {
    // Errors mean the child is already gone, which is what we want.
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_environment_values() {
        assert_eq!(parse_accel("kvm").unwrap(), Some(Accel::Kvm));
        assert_eq!(parse_accel(" TCG ").unwrap(), Some(Accel::Tcg));
        assert_eq!(parse_accel("auto").unwrap(), None);
        assert_eq!(parse_accel("").unwrap(), None);
        let err = parse_accel("hvf").unwrap_err().to_string();
        assert!(err.contains("hvf") && err.contains(ACCEL_ENV), "{err}");
    }

    #[test]
    fn probe_rom_puts_the_code_at_the_reset_vector() {
        let rom = probe_rom();
        assert_eq!(rom.len(), 0x1_0000);
        assert_eq!(
            rom[0xfff0..0xfff8],
            [0xfa, 0xdb, 0xe3, 0xb0, 0x00, 0xe6, 0xf4, 0xf4]
        );
        assert!(rom[..0xfff0].iter().all(|&b| b == 0));
    }

    #[test]
    fn a_hanging_probe_is_killed_at_its_limit() {
        let mut cmd = Command::new("sleep");
        cmd.arg("600");
        assert_eq!(run_limited(cmd, Duration::from_millis(200)).unwrap(), None);

        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 1"]);
        let status = run_limited(cmd, Duration::from_secs(60)).unwrap().unwrap();
        assert_eq!(status.code(), Some(1));
    }

    #[test]
    fn silent_output_counts_as_a_hang() {
        let mut cmd = Command::new("sleep");
        cmd.arg("600").stdout(Stdio::piped());
        assert!(!first_output_within(cmd, Duration::from_millis(200)).unwrap());

        let mut cmd = Command::new("echo");
        cmd.arg("x").stdout(Stdio::piped());
        assert!(first_output_within(cmd, Duration::from_secs(60)).unwrap());
    }

    #[test]
    fn names_and_arguments() {
        assert_eq!(Accel::Kvm.to_string(), "kvm");
        assert_eq!(Accel::Tcg.args(), ["-accel", "tcg", "-cpu", "max"]);
    }
}
