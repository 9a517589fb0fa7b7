//! The one boundary between init and the kernel.
//!
//! Stage 1 and stage 2 call the kernel only through [`Syscalls`]: [`Linux`] is the real
//! thing, and the unit tests use a recording fake (`fake.rs`) that serves files from a
//! temporary directory and records every mount, module load, device-mapper table and
//! power action, so that the boot plan and its order are checked without root. This
//! module tree is the only place with `unsafe` (the device-mapper ioctls in [`dm`], the
//! partition and ext4 resize ioctls in `blk.rs`, the child set-up of `spawn.rs`).
//! Helpers (`e2fsck`, `mke2fs`) are started through [`Syscalls::start_helper`] and reaped
//! like every child: PID 1 never waits for one (`stage2::helper` holds their time limit).

mod blk;
mod caps;
mod cgroup;
pub mod child_report;
pub mod dm;
mod exec_env;
#[cfg(test)]
pub(crate) mod fake;
pub mod journal_stream;
pub mod kmod;
mod linux;
pub mod listen;
pub mod sandbox;
pub mod seccomp;
pub mod seccomp_bpf;
pub mod service_spawn;
mod spawn;
mod switch_root;
mod syscall_table;
pub mod terminal;

use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

pub use dm::{DmError, DmTarget};
pub use kmod::ModuleChain;
pub use linux::Linux;
pub use switch_root::remove_tree_on_device;

/// A device number, as sysfs writes it (`254:0`) and dm tables take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DevNum {
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for DevNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

impl FromStr for DevNum {
    type Err = String;

    /// Parses `major:minor` with optional surrounding whitespace (sysfs `dev` files).
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{:?} is not a device number (major:minor)", s.trim());
        let (major, minor) = s.trim().split_once(':').ok_or_else(bad)?;
        Ok(DevNum {
            major: major.parse().map_err(|_| bad())?,
            minor: minor.parse().map_err(|_| bad())?,
        })
    }
}

/// One `mount(2)` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub source: String,
    pub target: String,
    pub fstype: String,
    pub flags: MountFlags,
    pub data: String,
}

/// The mount flags init uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MountFlags {
    pub read_only: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

/// What to do with the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    /// `RB_POWER_OFF`.
    PowerOff,
    /// `RB_HALT_SYSTEM`: stop the CPUs, leave the power on.
    Halt,
    /// `RB_AUTOBOOT`.
    Reboot,
}

impl fmt::Display for PowerAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerAction::PowerOff => "power off",
            PowerAction::Halt => "halt",
            PowerAction::Reboot => "reboot",
        })
    }
}

/// What [`Syscalls::reap`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reaped {
    /// PID and how it ended (`exit 0`, `signal 9`), in the order reaped.
    pub exited: Vec<(u32, String)>,
    /// Whether children remain.
    pub children_left: bool,
}

/// How a helper ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this code.
    Exit(i32),
    /// This signal ended it.
    Signal(i32),
    /// It outlived its time limit and was killed.
    TimedOut,
}

/// What a helper printed (standard output and error together, the end of it) and how it
/// ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub ended: Ended,
    pub output: String,
}

/// Every kernel interaction of init. Paths are absolute paths of the running system.
pub trait Syscalls {
    /// `CLOCK_BOOTTIME`: time since boot, including suspend.
    fn now(&self) -> Duration;
    fn sleep(&self, duration: Duration);
    /// Prints one console-contract line (`berth: …`, no newline) on the console (with a
    /// timestamp) and to the kernel log. Never fails: there is nobody to tell.
    fn log(&self, message: &str);

    fn read_to_string(&self, path: &Path) -> io::Result<String>;
    /// Entry names of a directory, sorted.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Whether `path` exists (following symbolic links).
    fn exists(&self, path: &Path) -> bool;
    /// Opens a file or block device read-only.
    fn open(&self, path: &Path) -> io::Result<File>;
    /// Asks the kernel to read the whole file into the page cache in the background
    /// (`posix_fadvise(POSIX_FADV_WILLNEED)`); returns once the reads are queued.
    fn prefetch(&self, path: &Path) -> io::Result<()>;
    /// Creates a directory (mode 0755); an existing one is fine.
    fn mkdir(&self, path: &Path) -> io::Result<()>;
    /// Creates a block device node (mode 0600); an existing one is replaced.
    fn mknod_block(&self, path: &Path, dev: DevNum) -> io::Result<()>;

    fn mount(&self, mount: &Mount) -> io::Result<()>;
    /// `mount(from, to, MS_MOVE)`.
    fn move_mount(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Loads a module file with `finit_module`; an already loaded module is
    /// `ErrorKind::AlreadyExists` (`EEXIST`).
    fn load_module(&self, path: &Path) -> io::Result<()>;
    /// Starts loading `files` in order, as [`Syscalls::load_module`] each, beside this
    /// thread ([`kmod`]); the chain stops at its first failure other than `EEXIST`.
    fn start_module_chain(&self, files: Vec<PathBuf>) -> ModuleChain;

    /// Creates, loads (read-only) and resumes a one-target device-mapper device.
    fn dm_create(&self, name: &str, uuid: &str, target: &DmTarget) -> Result<DevNum, DmError>;

    /// Makes `new_root` (a mount point) the root: deletes the initramfs (only when `/` is
    /// a ramfs or tmpfs), moves `new_root` onto `/`, chroots into it.
    fn switch_root(&self, new_root: &Path) -> io::Result<()>;

    /// Writes `contents` to `path`, creating it (mode 0644) or truncating it.
    fn write_file(&self, path: &Path, contents: &[u8]) -> io::Result<()>;
    /// Creates a directory with `mode`; an existing directory is left as it is.
    fn mkdir_mode(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// Creates the symbolic link `link` pointing at `target`.
    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()>;
    fn chmod(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// `lchown`: the link itself, not what it points to.
    fn chown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()>;
    /// Removes everything inside the directory `path` (not crossing into other mounts).
    fn remove_dir_contents(&self, path: &Path) -> io::Result<()>;
    /// Creates a new directory `<prefix>XXXXXX` (mkdtemp(3): mode 0700, a random suffix,
    /// never one that exists) and returns its path.
    fn make_temp_dir(&self, prefix: &Path) -> io::Result<std::path::PathBuf>;
    /// Removes `path` and everything below it.
    fn remove_tree(&self, path: &Path) -> io::Result<()>;
    /// Opens a file or block device for reading and writing.
    fn open_rw(&self, path: &Path) -> io::Result<File>;

    /// Bind-mounts `source` on `target`, then remounts the bind with `flags` (a bind
    /// first inherits the source mount's flags).
    fn bind(&self, source: &Path, target: &Path, flags: MountFlags) -> io::Result<()>;
    /// Remounts the filesystem at `target` read-only (its superblock, so every bind of it).
    fn remount_read_only(&self, target: &Path) -> io::Result<()>;
    /// `umount2(target, 0)`.
    fn unmount(&self, target: &Path) -> io::Result<()>;

    /// Tells the kernel that partition `number` of `disk` spans `length` bytes from `start`.
    fn resize_partition(&self, disk: &Path, number: u32, start: u64, length: u64)
        -> io::Result<()>;
    /// Grows the mounted ext4 at `mount_point` to `blocks` blocks.
    fn resize_ext4(&self, mount_point: &Path, blocks: u64) -> io::Result<()>;

    /// Starts helper `program args` without waiting: no terminal, standard output and
    /// error to the file `output` (created or truncated), a fixed `PATH`, its own session
    /// (so that killing its process group kills its children too). Returns its PID, reaped
    /// later through [`Syscalls::reap`]. `limit` is how long the caller lets it run (the
    /// caller's timer kills it); the fake records it.
    fn start_helper(
        &self,
        program: &Path,
        args: &[&str],
        output: &Path,
        limit: Duration,
    ) -> io::Result<u32>;
    /// Runs `step` in a forked child of this process (its own session, an empty signal
    /// mask, default dispositions) without waiting; the child exits with what `step`
    /// returns (101 if it panicked). Returns its PID, reaped later through
    /// [`Syscalls::reap`]. For PID 1's own steps that must not hold up its event loop
    /// (loading modules): the child is a copy of PID 1, no program is exec'd. The fake
    /// runs `step` at once and makes its exit reapable after `helper_time`.
    fn fork_step(&self, step: &mut dyn FnMut() -> i32) -> io::Result<u32>;
    /// `kill(pid, signal)`; `pid` -1 is every process but PID 1.
    fn kill(&self, pid: i32, signal: i32) -> io::Result<()>;
    /// Reaps every exited child without waiting.
    fn reap(&self) -> Reaped;

    fn sync(&self);

    /// Hands the allocator's free memory back to the kernel (glibc's `malloc_trim(0)`).
    /// Start-up frees a lot that glibc keeps in the heap: module files expanded for
    /// `init_module`, unit files parsed once, whose buffers also raise glibc's dynamic
    /// mmap threshold so that later large blocks come from the heap too. PID 1 calls it
    /// once boot is done. The fake has nothing to give back.
    fn release_free_memory(&self) {}
    /// Returns only with the reason it could not (or `Ok` from a fake).
    fn reboot(&self, action: PowerAction) -> io::Result<()>;

    /// Starts one command of a unit ([`service_spawn::CommandSpawn`]) without waiting;
    /// returns its PID, reaped later through [`Syscalls::reap`].
    fn spawn_command(
        &self,
        spec: &service_spawn::CommandSpawn,
    ) -> Result<u32, service_spawn::SpawnError>;
    /// Creates a unit's cgroup folder (and its parents) below `/sys/fs/cgroup`.
    fn cgroup_create(&self, dir: &Path) -> io::Result<()>;
    /// Signals every process of a unit's cgroup; returns how many there were.
    fn cgroup_signal(&self, dir: &Path, signal: i32) -> io::Result<usize>;
    /// Removes a unit's cgroup folder and the groups below it; one with processes stays.
    fn cgroup_remove(&self, dir: &Path) -> io::Result<()>;
    /// Makes a socket unit's listening socket ([`listen::ListenSpec`]): bound, listening
    /// (stream and packet sockets), close-on-exec and non-blocking.
    fn listen_socket(&self, spec: &listen::ListenSpec) -> io::Result<std::os::fd::OwnedFd>;
    /// Removes a file, a socket or a symbolic link (not what it points to).
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// A unit's terminal when its run ends: hung up (`vhangup`) and its line settings
    /// reset (`reset`), as asked ([`terminal::revert`]).
    fn revert_terminal(&self, path: &Path, reset: bool, vhangup: bool) -> io::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_read_sysfs() {
        let dev: DevNum = "254:17\n".parse().unwrap();
        assert_eq!(
            dev,
            DevNum {
                major: 254,
                minor: 17
            }
        );
        assert_eq!(dev.to_string(), "254:17");
        assert!("254".parse::<DevNum>().is_err());
        assert!("a:b".parse::<DevNum>().is_err());
    }
}
