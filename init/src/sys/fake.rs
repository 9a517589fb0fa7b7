//! A recording [`Syscalls`] for unit tests: files come from a temporary directory standing
//! in for `/` (a fake `/proc/cmdline`, sysfs tree, `/dev/vda` disk image, modules), time
//! is virtual (sleeping advances it), and every call with an effect is recorded in order.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::kmod::{self, ModuleChain};
use super::{
    DevNum, DmError, DmTarget, Ended, Mount, MountFlags, PowerAction, Ran, Reaped, Syscalls,
};

/// One recorded effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Log(String),
    Mkdir(PathBuf),
    Mknod(PathBuf, DevNum),
    Mount(Mount),
    MoveMount(PathBuf, PathBuf),
    LoadModule(PathBuf),
    DmCreate {
        name: String,
        uuid: String,
        table: String,
    },
    SwitchRoot(PathBuf),
    Write(PathBuf, String),
    Symlink(PathBuf, PathBuf),
    Chmod(PathBuf, u32),
    Chown(PathBuf, u32, u32),
    RemoveContents(PathBuf),
    MakeTempDir(PathBuf),
    RemoveTree(PathBuf),
    Bind(PathBuf, PathBuf, MountFlags),
    RemountReadOnly(PathBuf),
    Unmount(PathBuf),
    ResizePartition(PathBuf, u32, u64, u64),
    ResizeExt4(PathBuf, u64),
    /// A helper run to its end: program, arguments, time limit.
    Run(PathBuf, Vec<String>, Duration),
    Kill(i32, i32),
    /// A step run in a forked child: its PID.
    Fork(u32),
    /// A unit's command: unit, argv, cgroup.
    SpawnCommand(String, Vec<String>, Option<PathBuf>),
    CgroupCreate(PathBuf),
    CgroupRemove(PathBuf),
    CgroupSignal(PathBuf, i32),
    /// A socket unit's socket: its address as the unit says it.
    Listen(String),
    RemoveFile(PathBuf),
    /// A terminal reverted when a run ended: path, reset, hang-up.
    RevertTerminal(PathBuf, bool, bool),
    Prefetch(PathBuf),
    Sync,
    Reboot(PowerAction),
}

/// Something that happens to the fake machine at a point in virtual time.
type Event = (Duration, Box<dyn FnOnce(&Path)>);

pub struct Fake {
    root: tempfile::TempDir,
    now: Cell<Duration>,
    calls: RefCell<Vec<Call>>,
    events: RefCell<Vec<Event>>,
    /// Module paths that report `EEXIST`.
    pub already_loaded: RefCell<BTreeSet<PathBuf>>,
    /// What `dm_create` returns.
    pub dm_dev: DevNum,
    /// `"<fstype> <target>"` of mounts that fail with `EINVAL`.
    pub failing_mounts: RefCell<BTreeSet<String>>,
    /// `"<fstype> <target>"` of mounts that fail with `EINVAL` this many more times.
    pub failing_mounts_times: RefCell<BTreeMap<String, usize>>,
    /// How the helpers `start_helper` starts end, in order (an `Err` is the start
    /// failing); once empty, `ENOENT` (no such program). One that ends
    /// [`Ended::TimedOut`] runs until it is killed.
    pub runs: RefCell<VecDeque<io::Result<Ran>>>,
    /// How long (virtual time) a helper runs before its exit is reapable.
    pub helper_time: Cell<Duration>,
    /// Helpers' exits `reap` returns once virtual time reaches them: (when, PID, how).
    exits: RefCell<Vec<(Duration, u32, String)>>,
    /// Helpers that run until killed.
    hung: RefCell<BTreeSet<u32>>,
    /// `fork_step` fails with `EAGAIN`.
    pub fork_fails: Cell<bool>,
    /// Targets whose `unmount` fails with `EBUSY`.
    pub busy: RefCell<BTreeSet<PathBuf>>,
    /// Calls to reboot that fail before one "succeeds".
    pub reboot_failures: Cell<usize>,
    /// The PID the next `spawn_command` returns (then counts up).
    pub next_pid: Cell<u32>,
    /// Programs whose `spawn_command` fails with `ENOENT`.
    pub missing_programs: RefCell<BTreeSet<PathBuf>>,
    /// Programs whose child fails at a step before `execve`, as the real child reports it.
    pub child_failures: RefCell<BTreeMap<PathBuf, super::child_report::ChildFailure>>,
    /// What `cgroup_signal` reports as the number of processes, per cgroup.
    pub cgroup_members: RefCell<BTreeMap<PathBuf, usize>>,
    /// Every command `spawn_command` was given, whole.
    pub spawns: RefCell<Vec<super::service_spawn::CommandSpawn>>,
    /// Socket addresses whose `listen_socket` fails with `EADDRINUSE`.
    pub listen_failures: RefCell<Vec<super::listen::Address>>,
}

impl Fake {
    pub fn new() -> Fake {
        Fake {
            root: tempfile::tempdir().expect("tempdir"),
            now: Cell::new(Duration::from_millis(1500)),
            calls: RefCell::default(),
            events: RefCell::default(),
            already_loaded: RefCell::default(),
            dm_dev: DevNum {
                major: 254,
                minor: 0,
            },
            reboot_failures: Cell::new(0),
            next_pid: Cell::new(1000),
            missing_programs: RefCell::default(),
            child_failures: RefCell::default(),
            cgroup_members: RefCell::default(),
            spawns: RefCell::default(),
            listen_failures: RefCell::default(),
            failing_mounts: RefCell::default(),
            failing_mounts_times: RefCell::default(),
            runs: RefCell::default(),
            helper_time: Cell::new(Duration::ZERO),
            exits: RefCell::default(),
            hung: RefCell::default(),
            fork_fails: Cell::new(false),
            busy: RefCell::default(),
        }
    }

    /// Where `path` of the fake machine lives on the host.
    pub fn host(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        self.root
            .path()
            .join(path.strip_prefix("/").unwrap_or(path))
    }

    /// Writes a file of the fake machine, creating its directories.
    pub fn write(&self, path: impl AsRef<Path>, contents: impl AsRef<[u8]>) {
        let host = self.host(path);
        std::fs::create_dir_all(host.parent().expect("parent")).expect("mkdir");
        std::fs::write(host, contents).expect("write");
    }

    /// Runs `event` with the fake root once virtual time reaches `at`.
    pub fn at(&self, at: Duration, event: impl FnOnce(&Path) + 'static) {
        self.events.borrow_mut().push((at, Box::new(event)));
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    /// The file names of the modules loaded, in order.
    pub fn loaded_modules(&self) -> Vec<String> {
        self.calls
            .borrow()
            .iter()
            .filter_map(|c| match c {
                Call::LoadModule(path) => {
                    path.file_name().map(|n| n.to_string_lossy().into_owned())
                }
                _ => None,
            })
            .collect()
    }

    /// Every logged line, in order.
    pub fn logs(&self) -> Vec<String> {
        self.calls
            .borrow()
            .iter()
            .filter_map(|c| match c {
                Call::Log(line) => Some(line.clone()),
                _ => None,
            })
            .collect()
    }

    /// The calls other than logging and directory creation: the boot's effects.
    pub fn effects(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| !matches!(c, Call::Log(_) | Call::Mkdir(_)))
            .collect()
    }

    fn record(&self, call: Call) {
        self.calls.borrow_mut().push(call);
    }
}

impl Syscalls for Fake {
    fn now(&self) -> Duration {
        self.now.get()
    }

    fn sleep(&self, duration: Duration) {
        let now = self.now.get() + duration;
        self.now.set(now);
        let due: Vec<Event> = {
            let mut events = self.events.borrow_mut();
            let (due, later) = events.drain(..).partition(|(at, _)| *at <= now);
            *events = later;
            due
        };
        for (_, event) in due {
            event(self.root.path());
        }
    }

    fn log(&self, message: &str) {
        self.record(Call::Log(message.to_owned()));
    }

    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(self.host(path))
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = std::fs::read_dir(self.host(path))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<io::Result<_>>()?;
        names.sort();
        Ok(names)
    }

    fn exists(&self, path: &Path) -> bool {
        self.host(path).exists()
    }

    fn open(&self, path: &Path) -> io::Result<File> {
        File::open(self.host(path))
    }

    fn prefetch(&self, path: &Path) -> io::Result<()> {
        self.record(Call::Prefetch(path.to_path_buf()));
        File::open(self.host(path)).map(drop)
    }

    fn mkdir(&self, path: &Path) -> io::Result<()> {
        self.record(Call::Mkdir(path.to_path_buf()));
        std::fs::create_dir_all(self.host(path))
    }

    fn mknod_block(&self, path: &Path, dev: DevNum) -> io::Result<()> {
        self.record(Call::Mknod(path.to_path_buf(), dev));
        Ok(())
    }

    fn mount(&self, mount: &Mount) -> io::Result<()> {
        self.record(Call::Mount(mount.clone()));
        let key = format!("{} {}", mount.fstype, mount.target);
        if self.failing_mounts.borrow().contains(&key) {
            return Err(io::Error::from_raw_os_error(nix::libc::EINVAL));
        }
        if let Some(left) = self.failing_mounts_times.borrow_mut().get_mut(&key) {
            if *left > 0 {
                *left -= 1;
                return Err(io::Error::from_raw_os_error(nix::libc::EINVAL));
            }
        }
        Ok(())
    }

    fn move_mount(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.record(Call::MoveMount(from.to_path_buf(), to.to_path_buf()));
        if self.host(to).is_dir() {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(nix::libc::ENOENT))
        }
    }

    fn load_module(&self, path: &Path) -> io::Result<()> {
        self.record(Call::LoadModule(path.to_path_buf()));
        if !self.host(path).is_file() {
            return Err(io::Error::from_raw_os_error(nix::libc::ENOENT));
        }
        if self.already_loaded.borrow().contains(path) {
            return Err(io::Error::from_raw_os_error(nix::libc::EEXIST));
        }
        Ok(())
    }

    fn start_module_chain(&self, files: Vec<PathBuf>) -> ModuleChain {
        ModuleChain::done(kmod::load_chain(&files, &|path| self.load_module(path)))
    }

    fn dm_create(&self, name: &str, uuid: &str, target: &DmTarget) -> Result<DevNum, DmError> {
        self.record(Call::DmCreate {
            name: name.to_owned(),
            uuid: uuid.to_owned(),
            table: target.to_string(),
        });
        Ok(self.dm_dev)
    }

    fn switch_root(&self, new_root: &Path) -> io::Result<()> {
        self.record(Call::SwitchRoot(new_root.to_path_buf()));
        Ok(())
    }

    fn write_file(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        self.record(Call::Write(
            path.to_path_buf(),
            String::from_utf8_lossy(contents).into_owned(),
        ));
        std::fs::write(self.host(path), contents)
    }

    fn mkdir_mode(&self, path: &Path, _mode: u32) -> io::Result<()> {
        self.mkdir(path)
    }

    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        self.record(Call::Symlink(target.to_path_buf(), link.to_path_buf()));
        std::os::unix::fs::symlink(target, self.host(link))
    }

    fn chmod(&self, path: &Path, mode: u32) -> io::Result<()> {
        self.record(Call::Chmod(path.to_path_buf(), mode));
        self.host(path).symlink_metadata().map(drop)
    }

    fn chown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        self.record(Call::Chown(path.to_path_buf(), uid, gid));
        self.host(path).symlink_metadata().map(drop)
    }

    fn remove_dir_contents(&self, path: &Path) -> io::Result<()> {
        self.record(Call::RemoveContents(path.to_path_buf()));
        Ok(())
    }

    /// Suffixes count up (`000001`...), so tests know the name.
    fn make_temp_dir(&self, prefix: &Path) -> io::Result<PathBuf> {
        let n = self
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::MakeTempDir(_)))
            .count();
        let mut name = prefix.as_os_str().to_owned();
        name.push(format!("{:06}", n + 1));
        let dir = PathBuf::from(name);
        self.record(Call::MakeTempDir(dir.clone()));
        std::fs::create_dir(self.host(&dir))?;
        Ok(dir)
    }

    fn remove_tree(&self, path: &Path) -> io::Result<()> {
        self.record(Call::RemoveTree(path.to_path_buf()));
        std::fs::remove_dir_all(self.host(path))
    }

    fn open_rw(&self, path: &Path) -> io::Result<File> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.host(path))
    }

    fn bind(&self, source: &Path, target: &Path, flags: MountFlags) -> io::Result<()> {
        self.record(Call::Bind(
            source.to_path_buf(),
            target.to_path_buf(),
            flags,
        ));
        Ok(())
    }

    fn remount_read_only(&self, target: &Path) -> io::Result<()> {
        self.record(Call::RemountReadOnly(target.to_path_buf()));
        Ok(())
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        self.record(Call::Unmount(target.to_path_buf()));
        if self.busy.borrow().contains(target) {
            return Err(io::Error::from_raw_os_error(nix::libc::EBUSY));
        }
        Ok(())
    }

    fn resize_partition(
        &self,
        disk: &Path,
        number: u32,
        start: u64,
        length: u64,
    ) -> io::Result<()> {
        self.record(Call::ResizePartition(
            disk.to_path_buf(),
            number,
            start,
            length,
        ));
        Ok(())
    }

    fn resize_ext4(&self, mount_point: &Path, blocks: u64) -> io::Result<()> {
        self.record(Call::ResizeExt4(mount_point.to_path_buf(), blocks));
        Ok(())
    }

    fn start_helper(
        &self,
        program: &Path,
        args: &[&str],
        output: &Path,
        limit: Duration,
    ) -> io::Result<u32> {
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        self.record(Call::Run(program.to_path_buf(), args, limit));
        let ran = self
            .runs
            .borrow_mut()
            .pop_front()
            .unwrap_or_else(|| Err(io::Error::from_raw_os_error(nix::libc::ENOENT)))?;
        let pid = self.next_pid.get();
        self.next_pid.set(pid + 1);
        self.write(output, &ran.output);
        let at = self.now() + self.helper_time.get();
        match ran.ended {
            Ended::Exit(code) => self
                .exits
                .borrow_mut()
                .push((at, pid, format!("exit {code}"))),
            Ended::Signal(signal) => {
                self.exits
                    .borrow_mut()
                    .push((at, pid, format!("signal {signal}")))
            }
            Ended::TimedOut => {
                self.hung.borrow_mut().insert(pid);
            }
        }
        Ok(pid)
    }

    fn kill(&self, pid: i32, signal: i32) -> io::Result<()> {
        self.record(Call::Kill(pid, signal));
        let target = pid.unsigned_abs();
        if signal == nix::libc::SIGKILL && self.hung.borrow_mut().remove(&target) {
            let now = self.now();
            self.exits
                .borrow_mut()
                .push((now, target, "signal SIGKILL".into()));
        }
        Ok(())
    }

    fn fork_step(&self, step: &mut dyn FnMut() -> i32) -> io::Result<u32> {
        if self.fork_fails.get() {
            return Err(io::Error::from_raw_os_error(nix::libc::EAGAIN));
        }
        let pid = self.next_pid.get();
        self.next_pid.set(pid + 1);
        self.record(Call::Fork(pid));
        let code = step();
        let at = self.now() + self.helper_time.get();
        self.exits
            .borrow_mut()
            .push((at, pid, format!("exit {code}")));
        Ok(pid)
    }

    fn reap(&self) -> Reaped {
        let now = self.now();
        let mut exits = self.exits.borrow_mut();
        let (due, later): (Vec<_>, Vec<_>) = exits.drain(..).partition(|(at, _, _)| *at <= now);
        *exits = later;
        Reaped {
            exited: due.into_iter().map(|(_, pid, how)| (pid, how)).collect(),
            children_left: !exits.is_empty() || !self.hung.borrow().is_empty(),
        }
    }

    fn sync(&self) {
        self.record(Call::Sync);
    }

    fn spawn_command(
        &self,
        spec: &super::service_spawn::CommandSpawn,
    ) -> Result<u32, super::service_spawn::SpawnError> {
        use super::child_report::{ChildFailure, Step, NO_INDEX};
        use super::service_spawn::SpawnError;
        self.record(Call::SpawnCommand(
            spec.unit.clone(),
            spec.argv.clone(),
            spec.cgroup.clone(),
        ));
        self.spawns.borrow_mut().push(spec.clone());
        // As on the machine, a child that fails before execve had a PID of its own.
        let pid = self.next_pid.get();
        self.next_pid.set(pid + 1);
        if let Some(f) = self.child_failures.borrow().get(&spec.program) {
            return Err(SpawnError::child(spec, f, pid));
        }
        if self.missing_programs.borrow().contains(&spec.program) {
            let enoent = io::Error::from_raw_os_error(nix::libc::ENOENT);
            let f = ChildFailure::at(Step::Exec, NO_INDEX, &enoent);
            return Err(SpawnError::child(spec, &f, pid));
        }
        Ok(pid)
    }

    fn cgroup_create(&self, dir: &Path) -> io::Result<()> {
        self.record(Call::CgroupCreate(dir.to_path_buf()));
        Ok(())
    }

    fn cgroup_remove(&self, dir: &Path) -> io::Result<()> {
        self.record(Call::CgroupRemove(dir.to_path_buf()));
        Ok(())
    }

    fn cgroup_signal(&self, dir: &Path, signal: i32) -> io::Result<usize> {
        self.record(Call::CgroupSignal(dir.to_path_buf(), signal));
        Ok(self.cgroup_members.borrow().get(dir).copied().unwrap_or(0))
    }

    /// A real socket, its file and links below the fake's root.
    fn listen_socket(&self, spec: &super::listen::ListenSpec) -> io::Result<std::os::fd::OwnedFd> {
        use super::listen::Address;
        self.record(Call::Listen(spec.address.to_string()));
        if self.listen_failures.borrow().contains(&spec.address) {
            return Err(io::Error::from_raw_os_error(nix::libc::EADDRINUSE));
        }
        let mut host = spec.clone();
        if let Address::Path(p) = &spec.address {
            host.address = Address::Path(self.host(p));
        }
        host.symlinks = spec.symlinks.iter().map(|l| self.host(l)).collect();
        super::listen::listen(&host)
    }

    fn revert_terminal(&self, path: &Path, reset: bool, vhangup: bool) -> io::Result<()> {
        self.record(Call::RevertTerminal(path.to_path_buf(), reset, vhangup));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.record(Call::RemoveFile(path.to_path_buf()));
        std::fs::remove_file(self.host(path))
    }

    fn reboot(&self, action: PowerAction) -> io::Result<()> {
        self.record(Call::Reboot(action));
        match self.reboot_failures.get() {
            0 => Ok(()),
            n => {
                self.reboot_failures.set(n - 1);
                Err(io::Error::from_raw_os_error(nix::libc::EPERM))
            }
        }
    }
}
