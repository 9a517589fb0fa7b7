//! Mounting STATE, and what to do when it does not mount: check it, and re-make it only
//! when asked to.
//!
//! 1. Mount (the kernel replays the ext4 journal).
//! 2. If that fails, `e2fsck -f -p` (preen: fixes what is safe to fix without a person);
//!    if it says the filesystem is clean or repaired, mount again.
//! 3. If preen could not repair it or the mount still fails, `e2fsck -f -y` (yes to every
//!    repair); mount again if it repaired it.
//! 4. If STATE still does not mount and `berth.state=reformat` is on the command line,
//!    re-make it with `mke2fs -t ext4 -L STATE` and mount the new, empty one: loudly,
//!    because everything it held is gone. `berth.state=wipe` does this without steps 1-3.
//!
//! When all of that fails the caller puts a tmpfs in STATE's place. Each helper runs as a
//! child that the event loop waits on ([`super::helper`]), with a time limit, so a disk
//! that hangs costs boot time but never the boot, and PID 1 answers signals meanwhile. `-f`
//! because a filesystem the kernel refuses is suspect even when its superblock says it is
//! clean (and then `-p` alone would check nothing).

use std::io;
use std::time::Duration;

use super::engine::Machine;
use super::helper::{self, Running};
use super::mounts::NOSUID_NODEV_NOEXEC;
use super::state::STATE_LABEL;
use crate::sys::{Ended, Mount, Ran};
use berth_layout::cmdline::StateMode;
use berth_layout::paths::STATE_MOUNT;

pub const E2FSCK: &str = "/usr/sbin/e2fsck";
pub const MKE2FS: &str = "/usr/sbin/mke2fs";
/// A full check of a large, damaged filesystem takes minutes; more than this is a hang.
pub const E2FSCK_LIMIT: Duration = Duration::from_secs(20 * 60);
/// `mke2fs` initialises inode tables lazily: seconds even on a large disk.
pub const MKE2FS_LIMIT: Duration = Duration::from_secs(5 * 60);

/// The two e2fsck passes, gentlest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// `-p`: repairs that need no decision.
    Preen,
    /// `-y`: every repair e2fsck can make.
    Yes,
}

impl Pass {
    pub fn flag(self) -> &'static str {
        match self {
            Pass::Preen => "-p",
            Pass::Yes => "-y",
        }
    }
}

/// What an `e2fsck` run means for mounting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fsck {
    /// Exit 0: no errors found.
    Clean,
    /// Exit 1 to 3: errors corrected (2: a reboot suggested, which only matters for a
    /// mounted root).
    Repaired(i32),
    /// Exit 4 and up, a signal, a time-out, or no e2fsck: not fixed; the why.
    NotRepaired(String),
}

/// e2fsck(8)'s exit status, as a [`Fsck`].
pub fn fsck_verdict(ran: &io::Result<Ran>, limit: Duration) -> Fsck {
    match ran {
        Ok(Ran {
            ended: Ended::Exit(0),
            ..
        }) => Fsck::Clean,
        Ok(Ran {
            ended: Ended::Exit(code @ 1..=3),
            ..
        }) => Fsck::Repaired(*code),
        Ok(Ran {
            ended: Ended::Exit(code),
            ..
        }) => Fsck::NotRepaired(format!("exit {code}: {}", fsck_exit_meaning(*code))),
        Ok(ran) => Fsck::NotRepaired(ended_otherwise(ran.ended, limit)),
        Err(e) => Fsck::NotRepaired(format!("cannot run it: {e}")),
    }
}

/// The meaning of e2fsck's exit status (a sum of these bits): the worst bit set.
pub fn fsck_exit_meaning(code: i32) -> &'static str {
    const BITS: [(i32, &str); 8] = [
        (128, "shared-library error"),
        (32, "cancelled"),
        (16, "usage or syntax error"),
        (8, "operational error"),
        (4, "errors left uncorrected"),
        (2, "errors corrected, reboot suggested"),
        (1, "errors corrected"),
        (0, "no errors"),
    ];
    BITS.iter()
        .find(|(bit, _)| *bit == 0 || code & bit != 0)
        .map_or("no errors", |(_, meaning)| meaning)
}

/// A helper's end other than an exit code, in words.
fn ended_otherwise(ended: Ended, limit: Duration) -> String {
    match ended {
        Ended::Exit(code) => format!("exit {code}"),
        Ended::Signal(signal) => format!("killed by signal {signal}"),
        Ended::TimedOut => format!("still running after {} s, killed", limit.as_secs()),
    }
}

/// The line of a helper's output worth a console line: the last one that says something
/// about the device (e2fsck's summary or its error), else the last one.
pub fn summary(output: &str, device: &str) -> Option<String> {
    let lines = || output.lines().map(str::trim).filter(|l| !l.is_empty());
    let bare = format!("{device}:");
    let line = lines()
        .rfind(|l| l.contains(device) && *l != bare)
        .or_else(|| lines().next_back())?;
    let mut line: String = line.chars().take(200).collect();
    line.retain(|c| !c.is_control());
    Some(line)
}

/// Mounts STATE at [`STATE_MOUNT`].
pub fn mount_state(m: &Machine, device: &str) -> io::Result<()> {
    m.sys.mount(&Mount {
        source: device.to_owned(),
        target: STATE_MOUNT.into(),
        fstype: "ext4".into(),
        flags: NOSUID_NODEV_NOEXEC,
        data: String::new(),
    })
}

/// How STATE came to be mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mounted {
    /// As it was.
    AsItWas,
    /// After e2fsck repaired it.
    Repaired,
    /// Re-made, empty.
    Remade,
}

/// Where a repair is: the helper that runs (or was to run) and what its end leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// An e2fsck pass; the error of the last mount.
    Check(Pass, String),
    /// mke2fs, because of this (`berth.state=…`); `why` prefixes its failure.
    Remake {
        because: &'static str,
        why: Option<String>,
    },
}

/// A repair of STATE waiting for its helper.
#[derive(Debug)]
pub struct Repair {
    pub device: String,
    stage: Stage,
    pub helper: Running,
}

/// What mounting STATE came to.
#[derive(Debug)]
pub enum Next {
    /// A helper runs: call [`resume`] with its end.
    Waiting(Repair),
    /// STATE is mounted.
    Mounted(Mounted),
    /// STATE is not mounted: why, for the caller's fallback line.
    Failed(String),
}

/// Mounts STATE, repairing or re-making it as the module says; a repair goes on in
/// [`resume`] once its helper has ended.
pub fn mount_or_repair(m: &mut Machine, device: &str) -> Next {
    if m.options.state == StateMode::Wipe {
        m.log(&format!(
            "berth: state: berth.state=wipe on the command line: re-making STATE on {device}"
        ));
        let stage = Stage::Remake {
            because: "berth.state=wipe",
            why: None,
        };
        return advance(m, device, stage);
    }
    let last = match mount_state(m, device) {
        Ok(()) => return Next::Mounted(Mounted::AsItWas),
        Err(e) => e,
    };
    m.log(&format!(
        "berth: state: cannot mount {device} (ext4): {last}; checking it with e2fsck"
    ));
    advance(m, device, Stage::Check(Pass::Preen, last.to_string()))
}

/// The helper of `repair` ended as `ran`: the repair goes on.
pub fn resume(m: &mut Machine, repair: Repair, ran: io::Result<Ran>) -> Next {
    let took = repair.helper.took(m.sys);
    follow(m, &repair.device, repair.stage, ran, took)
}

/// Starts the helper of `stage`; one that cannot start is followed at once.
fn advance(m: &mut Machine, device: &str, stage: Stage) -> Next {
    let (program, args, limit): (&str, Vec<&str>, Duration) = match &stage {
        Stage::Check(pass, _) => (E2FSCK, vec!["-f", pass.flag(), device], E2FSCK_LIMIT),
        Stage::Remake { .. } => (
            MKE2FS,
            vec![
                "-F",
                "-t",
                "ext4",
                "-L",
                STATE_LABEL,
                "-m",
                "0",
                "-E",
                "nodiscard",
                device,
            ],
            MKE2FS_LIMIT,
        ),
    };
    match helper::start(m.sys, program, &args, limit) {
        Ok(helper) => Next::Waiting(Repair {
            device: device.to_owned(),
            stage,
            helper,
        }),
        Err(e) => follow(m, device, stage, Err(e), Duration::ZERO),
    }
}

/// What follows the helper of `stage` ending as `ran` after `took`.
fn follow(
    m: &mut Machine,
    device: &str,
    stage: Stage,
    ran: io::Result<Ran>,
    took: Duration,
) -> Next {
    match stage {
        Stage::Check(pass, mut last) => {
            if check(m, device, pass, &ran, took) {
                match mount_state(m, device) {
                    Ok(()) => return Next::Mounted(Mounted::Repaired),
                    Err(e) => {
                        m.log(&format!(
                            "berth: state: still cannot mount {device} after e2fsck {}: {e}",
                            pass.flag()
                        ));
                        last = e.to_string();
                    }
                }
            }
            if pass == Pass::Preen {
                return advance(m, device, Stage::Check(Pass::Yes, last));
            }
            let why = format!("cannot mount {device} (ext4): {last}; e2fsck could not repair it");
            if m.options.state != StateMode::Reformat {
                return Next::Failed(format!(
                    "{why} (berth.state=reformat on the command line re-makes it, empty)"
                ));
            }
            m.log(&format!(
                "berth: FAILED state: {why}; berth.state=reformat: re-making STATE on {device}"
            ));
            let stage = Stage::Remake {
                because: "berth.state=reformat",
                why: Some(why),
            };
            advance(m, device, stage)
        }
        Stage::Remake { because, why } => match remade(m, device, because, &ran, took) {
            Ok(mounted) => Next::Mounted(mounted),
            Err(e) => Next::Failed(match why {
                Some(why) => format!("{why}; {e}"),
                None => e,
            }),
        },
    }
}

fn seconds(took: Duration) -> String {
    format!("{}.{:01} s", took.as_secs(), took.subsec_millis() / 100)
}

/// Says what one e2fsck pass did; true when a mount is worth trying again.
fn check(m: &mut Machine, device: &str, pass: Pass, ran: &io::Result<Ran>, took: Duration) -> bool {
    let flag = pass.flag();
    let said = ran
        .as_ref()
        .ok()
        .and_then(|r| summary(&r.output, device))
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    let took = seconds(took);
    match fsck_verdict(ran, E2FSCK_LIMIT) {
        Fsck::Clean => {
            m.log(&format!(
                "berth: state: e2fsck {flag} found nothing to repair on {device} (exit 0, {took}){said}"
            ));
            true
        }
        Fsck::Repaired(code) => {
            m.log(&format!(
                "berth: state: e2fsck {flag} repaired {device} (exit {code}, {took}){said}"
            ));
            true
        }
        Fsck::NotRepaired(why) if pass == Pass::Preen => {
            m.log(&format!(
                "berth: state: e2fsck {flag} could not repair {device} ({why}, {took}){said}; trying e2fsck -y"
            ));
            false
        }
        Fsck::NotRepaired(why) => {
            m.log(&format!(
                "berth: FAILED state repair: e2fsck {flag} {device}: {why} ({took}){said}"
            ));
            false
        }
    }
}

/// After mke2fs made a new, empty ext4 labelled STATE on `device` (or failed to), mounts it.
fn remade(
    m: &mut Machine,
    device: &str,
    because: &str,
    ran: &io::Result<Ran>,
    took: Duration,
) -> Result<Mounted, String> {
    let failed = match ran {
        Ok(Ran {
            ended: Ended::Exit(0),
            ..
        }) => None,
        Ok(r) => Some(format!(
            "{}{}",
            ended_otherwise(r.ended, MKE2FS_LIMIT),
            summary(&r.output, device)
                .map(|s| format!(": {s}"))
                .unwrap_or_default()
        )),
        Err(e) => Some(format!("cannot run it: {e}")),
    };
    if let Some(why) = failed {
        return Err(format!("mke2fs {device} failed: {why}"));
    }
    m.log(&format!(
        "berth: state: re-made STATE on {device} ({because}, mke2fs {}): a new empty ext4, everything it held is gone",
        seconds(took)
    ));
    mount_state(m, device)
        .map(|()| Mounted::Remade)
        .map_err(|e| format!("cannot mount the re-made {device}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: i32, output: &str) -> io::Result<Ran> {
        Ok(Ran {
            ended: Ended::Exit(code),
            output: output.into(),
        })
    }

    #[test]
    fn e2fsck_exit_codes() {
        let limit = Duration::from_secs(60);
        assert_eq!(fsck_verdict(&exit(0, ""), limit), Fsck::Clean);
        assert_eq!(fsck_verdict(&exit(1, ""), limit), Fsck::Repaired(1));
        assert_eq!(fsck_verdict(&exit(2, ""), limit), Fsck::Repaired(2));
        assert_eq!(
            fsck_verdict(&exit(4, ""), limit),
            Fsck::NotRepaired("exit 4: errors left uncorrected".into())
        );
        assert_eq!(
            fsck_verdict(&exit(12, ""), limit),
            Fsck::NotRepaired("exit 12: operational error".into())
        );
        let timed_out = Ok(Ran {
            ended: Ended::TimedOut,
            output: String::new(),
        });
        assert_eq!(
            fsck_verdict(&timed_out, limit),
            Fsck::NotRepaired("still running after 60 s, killed".into())
        );
        let missing = Err(io::Error::from_raw_os_error(nix::libc::ENOENT));
        assert!(
            matches!(fsck_verdict(&missing, limit), Fsck::NotRepaired(w) if w.starts_with("cannot run it"))
        );
        assert_eq!(fsck_exit_meaning(128 + 4), "shared-library error");
        assert_eq!(fsck_exit_meaning(3), "errors corrected, reboot suggested");
    }

    #[test]
    fn summaries_pick_the_line_about_the_device() {
        let out = "e2fsck 1.47.0 (5-Feb-2023)\n/dev/vda6: recovering journal\n\
                   /dev/vda6: 11/65536 files (0.0% non-contiguous), 8859/262144 blocks\n\n";
        assert_eq!(
            summary(out, "/dev/vda6").as_deref(),
            Some("/dev/vda6: 11/65536 files (0.0% non-contiguous), 8859/262144 blocks")
        );
        assert_eq!(summary("a\nlast\t\n", "/dev/vda6").as_deref(), Some("last"));
        let bad_magic = "e2fsck: Bad magic number in super-block while trying to open /dev/vda6\n\
                         /dev/vda6: \nThe superblock could not be read\n    e2fsck -b 32768 <device>\n";
        assert_eq!(
            summary(bad_magic, "/dev/vda6").as_deref(),
            Some("e2fsck: Bad magic number in super-block while trying to open /dev/vda6")
        );
        assert_eq!(summary("\n \n", "/dev/vda6"), None);
    }
}
