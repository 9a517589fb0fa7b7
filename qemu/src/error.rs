//! The one error type of the harness: one variant per operation that can fail, carrying the
//! path, pattern or QEMU output a person needs to see why, so that a failed VM test explains
//! itself without a rerun.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Everything that can go wrong while starting, driving or stopping a VM.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error("QEMU binary {binary} not found: install the Debian package qemu-system-x86")]
    QemuNotFound { binary: PathBuf },

    #[error("cannot start QEMU ({binary})")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("UEFI firmware file {path} not found: install the Debian package ovmf")]
    FirmwareMissing { path: PathBuf },

    #[error("no UEFI firmware found (looked for {searched}): install the Debian package ovmf")]
    NoFirmware { searched: String },

    #[error("cannot copy the UEFI variable store {from} to {to}")]
    CopyVars {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("disk image {path} does not exist or is not a file")]
    DiskMissing { path: PathBuf },

    #[error("no disk given: call QemuBuilder::disk")]
    NoDisk,

    #[error("BERTH_QEMU_ACCEL={value} is not one of kvm, tcg, auto")]
    InvalidAccel { value: String },

    #[error("cannot create the VM's temporary directory")]
    TempDir(#[source] io::Error),

    #[error("cannot create the log file {path}")]
    CreateLog {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("QEMU exited during start-up ({status}); its stderr:\n{stderr}")]
    StartFailed { status: ExitStatus, stderr: String },

    #[error("QEMU's QMP socket {path} did not accept a connection within {timeout:?}")]
    QmpConnect {
        path: PathBuf,
        timeout: Duration,
        #[source]
        source: io::Error,
    },

    #[error("QMP I/O on {path}")]
    QmpIo {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("QMP on {path} closed the connection")]
    QmpClosed { path: PathBuf },

    #[error("QMP sent something that is not a JSON object: {reply}")]
    QmpProtocol { reply: String },

    #[error("QMP command {command} failed: {class}: {desc}")]
    QmpCommand {
        command: String,
        class: String,
        desc: String,
    },

    #[error("none of {patterns:?} appeared on the console within {timeout:?}; last console lines:\n{tail}")]
    Timeout {
        patterns: Vec<String>,
        timeout: Duration,
        tail: String,
    },

    #[error("QEMU exited ({status}) while waiting for {patterns:?}; last console lines:\n{tail}\nQEMU's stderr:\n{stderr}")]
    Exited {
        patterns: Vec<String>,
        status: ExitStatus,
        tail: String,
        stderr: String,
    },

    #[error("QEMU did not exit within {timeout:?}")]
    ExitTimeout { timeout: Duration },

    #[error("cannot wait for QEMU")]
    Wait(#[source] io::Error),

    #[error("cannot write to the serial console")]
    Send(#[source] io::Error),

    #[error("the serial console input is closed (QEMU has exited)")]
    ConsoleClosed,
}

/// The harness's result type.
pub type Result<T, E = QemuError> = std::result::Result<T, E>;
