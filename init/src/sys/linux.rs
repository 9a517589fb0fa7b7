//! [`Syscalls`] on the running kernel, through `nix` and `std`.

use std::cell::RefCell;
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use nix::kmod::{finit_module, ModuleInitFlags};
use nix::mount::MsFlags;
use nix::sys::reboot::RebootMode;
use nix::sys::stat::{makedev, Mode, SFlag};
use nix::time::{clock_gettime, ClockId};

use super::Syscalls;
use super::{dm, switch_root, DevNum, DmError, DmTarget, Mount, MountFlags, PowerAction};
use crate::console;

/// `MODULE_INIT_COMPRESSED_FILE` (Linux 5.17): the kernel decompresses the module.
const MODULE_INIT_COMPRESSED_FILE: u32 = 4;

/// The running kernel. Console and kernel-log descriptors are opened on first use and
/// kept, so logging still works after `/dev` moves into the new root.
#[derive(Default)]
pub struct Linux {
    console: RefCell<Option<File>>,
    kmsg: RefCell<Option<File>>,
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

    fn write_kmsg(&self, message: &str) {
        let mut kmsg = self.kmsg.borrow_mut();
        if kmsg.is_none() {
            *kmsg = OpenOptions::new().write(true).open("/dev/kmsg").ok();
        }
        if let Some(file) = kmsg.as_mut() {
            let _ = file.write_all(console::kmsg_line(message).as_bytes());
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
        let file = File::open(path)?;
        let compressed = [".xz", ".zst", ".gz"]
            .iter()
            .any(|s| path.as_os_str().as_bytes().ends_with(s.as_bytes()));
        let flags = if compressed {
            ModuleInitFlags::from_bits_retain(MODULE_INIT_COMPRESSED_FILE)
        } else {
            ModuleInitFlags::empty()
        };
        Ok(finit_module(&file, c"", flags)?)
    }

    fn dm_create(&self, name: &str, uuid: &str, target: &DmTarget) -> Result<DevNum, DmError> {
        dm::create(name, uuid, target)
    }

    fn switch_root(&self, new_root: &Path) -> io::Result<()> {
        switch_root::switch_root(new_root)
    }

    fn exec(&self, path: &Path) -> io::Result<()> {
        let program = CString::new(path.as_os_str().as_bytes())?;
        let argv = [program.clone()];
        match nix::unistd::execv(&program, &argv) {
            Err(errno) => Err(errno.into()),
            Ok(never) => match never {},
        }
    }

    fn sync(&self) {
        nix::unistd::sync();
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
