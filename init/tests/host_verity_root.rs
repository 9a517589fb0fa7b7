//! Stage 1's real code paths on this host, as root: a Berth-layout disk (GPT from
//! `berth_image`, ext4 from `mkfs.ext4 -d`, hash tree from `berth_image::verity`) on a loop
//! device is found through the real sysfs by the UUIDs of its root hash, checked against
//! that root hash, and — where the kernel has device-mapper — opened as a dm-verity device
//! through `berth_init::sys::dm`, mounted read-only and read back, then removed.
//!
//! Skipped, with the reason printed, when not root or when loop devices or the tools are
//! missing; the device-mapper half is skipped (with the reason) on kernels without it.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_image::verity::{self, VerityParams};
use berth_init::discover;
use berth_init::sys::{dm, Linux};
use berth_init::verity::{check, VerityCheckError};
use berth_layout::cmdline::{RootHash, VerityMode};
use berth_layout::gpt;
use berth_layout::partition::{Plan, Role, Sizes};

const MIB: u64 = 1 << 20;
const EXT4_BYTES: u64 = 4 * MIB;
const GREETING: &str = "hello from a verified root\n";

/// Says why, counted by `cargo xtask test` and refused under CI unless allowed.
fn skip(reason: &str) {
    berth_testkit::skip(reason);
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Detaches the loop device however the test ends.
struct Loop(PathBuf);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

/// Writes a Berth disk: ext4 with one file in ROOT-A, its tree in ROOT-A-VERITY.
fn write_disk(dir: &Path) -> (PathBuf, RootHash) {
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::write(tree.join("etc/greeting"), GREETING).unwrap();
    let ext4 = dir.join("root.ext4");
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-b", "4096", "-O", "^has_journal", "-d"])
        .arg(&tree)
        .arg(&ext4)
        .arg(format!("{}k", EXT4_BYTES / 1024)))
    .unwrap();
    let data = std::fs::read(&ext4).unwrap();

    let sizes = Sizes {
        esp: MIB,
        root: 8 * MIB,
        verity: MIB,
        state: MIB,
    };
    let layout = Plan::new(&sizes, "berth-test", &[0; 32]);
    let path = dir.join("disk.raw");
    let mut disk = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    disk.set_len(layout.disk_size).unwrap();
    let root_offset = layout.get(Role::RootA).offset;
    disk.write_all_at(&data, root_offset).unwrap();
    let params = VerityParams {
        salt: b"berth-test-salt".to_vec(),
        uuid: [0x42; 16],
    };
    let verity_offset = layout.get(Role::VerityA).offset;
    let info = verity::format(
        &disk,
        root_offset,
        EXT4_BYTES,
        &disk,
        verity_offset,
        &params,
        &|_| {},
    )
    .unwrap();
    let plan = Plan::new(&sizes, "berth-test", &info.root_hash);
    gpt::write(&mut disk, &path, &plan).unwrap();
    (path, RootHash(info.root_hash))
}

/// Attaches read-only with partition scanning; adds the partitions from user space
/// (`partx -a`, BLKPG) when the kernel has no GPT support of its own.
fn attach(disk: &Path) -> Result<Loop, String> {
    let device = run(Command::new("losetup")
        .args(["--find", "--show", "--read-only", "--partscan"])
        .arg(disk))?;
    let device = Loop(PathBuf::from(device));
    let name = device.0.file_name().unwrap().to_string_lossy().into_owned();
    let first = PathBuf::from(format!("/sys/block/{name}/{name}p1"));
    for attempt in 0..40 {
        if first.exists() {
            return Ok(device);
        }
        if attempt == 10 {
            eprintln!("the kernel did not scan the GPT of {name}; adding partitions with partx");
            run(Command::new("partx").arg("-a").arg(&device.0))?;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{} has no partitions in sysfs", device.0.display()))
}

#[test]
fn verity_root_on_a_loop_device() {
    if !nix::unistd::geteuid().is_root() {
        return skip("needs root (loop devices, device-mapper, mount)");
    }
    if !Path::new("/dev/loop-control").exists() {
        return skip("no /dev/loop-control in this sandbox");
    }
    if let Some(tool) = ["mkfs.ext4", "losetup", "partx"]
        .into_iter()
        .find(|t| !have(t))
    {
        return skip(&format!("{tool} is not installed (e2fsprogs, util-linux)"));
    }
    let dir = tempfile::tempdir().unwrap();
    let (disk_path, root_hash) = write_disk(dir.path());
    let device = match attach(&disk_path) {
        Ok(device) => device,
        Err(e) => return skip(&format!("cannot attach a loop device: {e}")),
    };

    // Discovery through the real sysfs and /dev, as stage 1 does it.
    let sys = Linux::new();
    let found = discover::wait_for_root(
        &sys,
        &root_hash,
        Duration::from_secs(5),
        Duration::from_secs(5),
        false,
    )
    .unwrap();
    let name = device.0.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(found.disk, name);
    assert_eq!(found.root.name, format!("{name}p2"));
    assert_eq!(found.verity.name, format!("{name}p3"));
    assert_eq!(found.root.label, "ROOT-A");

    let disk = File::open(&device.0).unwrap();
    let checked = check(&disk, &found, &root_hash, VerityMode::Panic).unwrap();
    assert_eq!(
        checked.target.to_string(),
        format!(
            "0 8192 verity 1 {} {} 4096 4096 1024 1 sha256 {root_hash} {} 1 panic_on_corruption",
            found.root.dev,
            found.verity.dev,
            hex::encode(b"berth-test-salt")
        )
    );
    let wrong = RootHash([0x5a; 32]);
    assert!(matches!(
        check(&disk, &found, &wrong, VerityMode::Panic),
        Err(VerityCheckError::RootHashMismatch { .. })
    ));

    if let Err(reason) = device_mapper_available() {
        return skip(&format!(
            "device-mapper half: {reason}; discovery and the root hash check ran"
        ));
    }
    let dm_name = format!("berth-test-{}", std::process::id());
    let dev = dm::create(&dm_name, "", &checked.target).unwrap();
    let result = mount_and_read(dir.path(), dev);
    let removed = dm::Control::open().and_then(|c| c.remove(&dm_name));
    assert_eq!(result.unwrap(), GREETING);
    removed.unwrap();
}

fn device_mapper_available() -> Result<(), String> {
    let _ = Command::new("modprobe").arg("dm-verity").status();
    if !Path::new(dm::CONTROL).exists() {
        let misc = std::fs::read_to_string("/proc/misc").unwrap_or_default();
        return Err(format!(
            "{} is missing and /proc/misc {} device-mapper (this kernel has no dm-mod)",
            dm::CONTROL,
            if misc.contains("device-mapper") {
                "lists"
            } else {
                "does not list"
            }
        ));
    }
    Ok(())
}

/// Whether `tool` is on the PATH or in an sbin directory (not always on a user's PATH).
fn have(tool: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/sbin", "/usr/sbin"])
        .any(|dir| Path::new(dir).join(tool).is_file());
    found
}

fn mount_and_read(dir: &Path, dev: berth_init::sys::DevNum) -> Result<String, String> {
    let node = dir.join("verity-root");
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).map_err(|e| e.to_string())?;
    let devt = nix::sys::stat::makedev(dev.major.into(), dev.minor.into());
    nix::sys::stat::mknod(
        &node,
        nix::sys::stat::SFlag::S_IFBLK,
        nix::sys::stat::Mode::S_IRUSR,
        devt,
    )
    .map_err(|e| e.to_string())?;
    nix::mount::mount(
        Some(&node),
        &mnt,
        Some("ext4"),
        nix::mount::MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(|e| format!("mount: {e}"))?;
    let read = std::fs::read_to_string(mnt.join("etc/greeting")).map_err(|e| e.to_string());
    let _ = nix::mount::umount(&mnt);
    read
}
