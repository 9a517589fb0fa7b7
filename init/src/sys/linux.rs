//! [`Syscalls`] on the running kernel, through `nix` and `std`.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::mount::MsFlags;
use nix::sys::reboot::RebootMode;
use nix::sys::stat::{makedev, Mode, SFlag};
use nix::time::{clock_gettime, ClockId};

use super::kmod::{self, ModuleChain};
use super::Syscalls;
use super::{blk, cgroup, dm, listen, service_spawn, spawn, switch_root};
use super::{DevNum, DmError, DmTarget, Mount, MountFlags, PowerAction, Reaped};
use crate::console;

/// Where cgroup v2 is mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The running kernel. Console and kernel-log descriptors are opened on first use and
/// kept, so logging still works after `/dev` moves into the new root.
#[derive(Default)]
pub struct Linux {
    console: RefCell<Option<File>>,
}

impl Linux {
    pub fn new() -> Linux {
        Linux::default()
    }

    fn write_console(&self, line: &str) {
        let mut console = self.console.borrow_mut();
        if console.is_none() {
            *console = OpenOptions::new()
                .write(true)
                .custom_flags(nix::libc::O_NOCTTY)
                .open("/dev/console")
                .ok();
        }
        match console.as_mut() {
            Some(file) => {
                let _ = file.write_all(line.as_bytes());
                // Wait until a serial console has sent it: a power-off may follow.
                let _ = nix::sys::termios::tcdrain(&*file);
            }
            // Before /dev is mounted: the descriptor the kernel gave us, if any.
            None => {
                let _ = io::stderr().write_all(line.as_bytes());
            }
        }
    }

    /// One record per line, each through a fresh open: the kernel rate-limits writes per
    /// open file (10 records per 5 s unless `printk.devkmsg=on`), and a kept descriptor
    /// lost every line of a busy boot past the tenth to it.
    fn write_kmsg(&self, message: &str) {
        if let Ok(mut kmsg) = OpenOptions::new().write(true).open("/dev/kmsg") {
            let _ = kmsg.write_all(console::kmsg_line(message).as_bytes());
        }
    }
}

impl Syscalls for Linux {
    fn now(&self) -> Duration {
        clock_gettime(ClockId::CLOCK_BOOTTIME).map_or(Duration::ZERO, Duration::from)
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }

    fn log(&self, message: &str) {
        self.write_console(&console::console_line(self.now(), message));
        self.write_kmsg(message);
    }

    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn prefetch(&self, path: &Path) -> io::Result<()> {
        let file = File::open(path)?;
        nix::fcntl::posix_fadvise(
            &file,
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_WILLNEED,
        )?;
        Ok(())
    }

    fn open(&self, path: &Path) -> io::Result<File> {
        File::open(path)
    }

    fn mkdir(&self, path: &Path) -> io::Result<()> {
        match std::fs::create_dir(path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
            other => other,
        }
    }

    fn mknod_block(&self, path: &Path, dev: DevNum) -> io::Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let dev = makedev(dev.major.into(), dev.minor.into());
        Ok(nix::sys::stat::mknod(
            path,
            SFlag::S_IFBLK,
            Mode::S_IRUSR | Mode::S_IWUSR,
            dev,
        )?)
    }

    fn mount(&self, mount: &Mount) -> io::Result<()> {
        let data = (!mount.data.is_empty()).then_some(mount.data.as_str());
        Ok(nix::mount::mount(
            Some(mount.source.as_str()),
            mount.target.as_str(),
            Some(mount.fstype.as_str()),
            ms_flags(mount.flags),
            data,
        )?)
    }

    fn move_mount(&self, from: &Path, to: &Path) -> io::Result<()> {
        Ok(nix::mount::mount(
            Some(from),
            to,
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )?)
    }

    fn load_module(&self, path: &Path) -> io::Result<()> {
        kmod::load_file(path)
    }

    fn start_module_chain(&self, files: Vec<PathBuf>) -> ModuleChain {
        ModuleChain::spawn(files)
    }

    fn dm_create(&self, name: &str, uuid: &str, target: &DmTarget) -> Result<DevNum, DmError> {
        dm::create(name, uuid, target)
    }

    fn switch_root(&self, new_root: &Path) -> io::Result<()> {
        switch_root::switch_root(new_root)
    }

    fn write_file(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        std::fs::write(path, contents)
    }

    fn mkdir_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new().mode(mode).create(path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
            other => other,
        }
    }

    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        std::os::unix::fs::symlink(target, link)
    }

    fn chmod(&self, path: &Path, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }

    fn chown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
    }

    fn make_temp_dir(&self, prefix: &Path) -> io::Result<PathBuf> {
        let mut template = prefix.as_os_str().to_owned();
        template.push("XXXXXX");
        Ok(nix::unistd::mkdtemp(Path::new(&template))?)
    }

    fn remove_tree(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }

    fn remove_dir_contents(&self, path: &Path) -> io::Result<()> {
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }

    fn open_rw(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).open(path)
    }

    fn bind(&self, source: &Path, target: &Path, flags: MountFlags) -> io::Result<()> {
        let none = None::<&str>;
        nix::mount::mount(Some(source), target, none, MsFlags::MS_BIND, none)?;
        let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | ms_flags(flags);
        Ok(nix::mount::mount(none, target, none, remount, none)?)
    }

    fn remount_read_only(&self, target: &Path) -> io::Result<()> {
        let none = None::<&str>;
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        Ok(nix::mount::mount(none, target, none, flags, none)?)
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        Ok(nix::mount::umount2(target, nix::mount::MntFlags::empty())?)
    }

    fn resize_partition(
        &self,
        disk: &Path,
        number: u32,
        start: u64,
        length: u64,
    ) -> io::Result<()> {
        blk::resize_partition(disk, number, start, length)
    }

    fn resize_ext4(&self, mount_point: &Path, blocks: u64) -> io::Result<()> {
        blk::resize_ext4(mount_point, blocks)
    }

    fn start_helper(
        &self,
        program: &Path,
        args: &[&str],
        output: &Path,
        _limit: Duration,
    ) -> io::Result<u32> {
        spawn::start_helper(program, args, output)
    }

    fn fork_step(&self, step: &mut dyn FnMut() -> i32) -> io::Result<u32> {
        spawn::fork_step(step)
    }

    fn spawn_command(
        &self,
        spec: &service_spawn::CommandSpawn,
    ) -> Result<u32, service_spawn::SpawnError> {
        service_spawn::spawn(spec)
    }

    fn cgroup_create(&self, dir: &Path) -> io::Result<()> {
        cgroup::create_cgroup(Path::new(CGROUP_ROOT), dir)
    }

    fn cgroup_signal(&self, dir: &Path, signal: i32) -> io::Result<usize> {
        cgroup::signal_cgroup(dir, signal)
    }

    fn cgroup_remove(&self, dir: &Path) -> io::Result<()> {
        cgroup::remove_cgroup(dir)
    }

    fn listen_socket(&self, spec: &listen::ListenSpec) -> io::Result<std::os::fd::OwnedFd> {
        listen::listen(spec)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn revert_terminal(&self, path: &Path, reset: bool, vhangup: bool) -> io::Result<()> {
        super::terminal::revert(path, reset, vhangup)
    }

    fn kill(&self, pid: i32, signal: i32) -> io::Result<()> {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours; a raw call
        // because nix's `Signal` cannot name the real-time signals.
        let rc = unsafe { nix::libc::kill(pid, signal) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn reap(&self) -> Reaped {
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        let mut reaped = Reaped::default();
        loop {
            let status = waitpid(nix::unistd::Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG));
            let (pid, how) = match status {
                Ok(WaitStatus::StillAlive) => {
                    reaped.children_left = true;
                    return reaped;
                }
                Ok(WaitStatus::Exited(pid, code)) => (pid, format!("exit {code}")),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, format!("signal {sig}")),
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return reaped,
            };
            reaped.exited.push((pid.as_raw().unsigned_abs(), how));
        }
    }

    fn sync(&self) {
        nix::unistd::sync();
    }

    fn release_free_memory(&self) {
        // SAFETY: malloc_trim takes no pointers; it only returns free heap pages to the
        // kernel (MADV_DONTNEED) under the allocator's own lock.
        unsafe { nix::libc::malloc_trim(0) };
    }

    fn reboot(&self, action: PowerAction) -> io::Result<()> {
        let mode = match action {
            PowerAction::PowerOff => RebootMode::RB_POWER_OFF,
            PowerAction::Halt => RebootMode::RB_HALT_SYSTEM,
            PowerAction::Reboot => RebootMode::RB_AUTOBOOT,
        };
        match nix::sys::reboot::reboot(mode) {
            Err(errno) => Err(errno.into()),
            Ok(never) => match never {},
        }
    }
}

fn ms_flags(flags: MountFlags) -> MsFlags {
    let mut ms = MsFlags::empty();
    for (set, flag) in [
        (flags.read_only, MsFlags::MS_RDONLY),
        (flags.nosuid, MsFlags::MS_NOSUID),
        (flags.nodev, MsFlags::MS_NODEV),
        (flags.noexec, MsFlags::MS_NOEXEC),
    ] {
        if set {
            ms |= flag;
        }
    }
    ms
}
