//! Berth's node time and cloud metadata, two small synchronous programs for the image.
//!
//! - `berth-timesync`: an SNTP client (RFC 4330, client mode of RFC 5905) that steps the
//!   clock once at boot when it is far off, then keeps it with the kernel's PLL
//!   (`adjtimex`), and tells the service manager (`READY=1`) after the first sync so
//!   that `time-sync.target` means the clock is right. A lying server is outvoted by the
//!   others ([`ntp::select`]); a lone server may not step the clock by more than a limit
//!   once it has been set.
//! - `berth-metadata`: the host name and user data from the cloud's metadata service
//!   (GCE, AWS IMDSv2, Azure IMDS), the cloud found from SMBIOS ([`cloud`]), with short
//!   time limits and no delay at all where there is no cloud (QEMU).
//!
//! No async runtime and few dependencies: both are small static binaries that run once
//! or sleep most of the time. The clock is reached only through [`clock::Clock`], whose
//! recording fake ([`clock::RecordingClock`]) serves the tests and `--dry-run`.

pub mod clock;
pub mod cloud;
pub mod metadata;
pub mod ntp;
pub mod servers;
pub mod sync;
