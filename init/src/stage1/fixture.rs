//! A fake machine for the stage-1 tests: a real Berth-layout GPT disk image at `/dev/vda`
//! (written with `berth_image`, the builder's own code) whose ROOT-A holds 200 blocks of
//! data and ROOT-A-VERITY their hash tree, the sysfs entries the kernel would show for it,
//! a modules directory and a command line.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use berth_image::verity::{self, VerityParams};
use berth_layout::gpt;
use berth_layout::partition::{Plan, Role, Sizes};

use crate::sys::fake::Fake;
use berth_layout::cmdline::RootHash;

pub const RELEASE: &str = "6.1.0-28-cloud-amd64";
pub const MODULES: &str = "/lib/modules/6.1.0-28-cloud-amd64";
pub const DATA_BLOCKS: u64 = 200;
pub const SALT: [u8; 4] = [0xde, 0xad, 0xbe, 0xef];
const MIB: u64 = 1 << 20;

/// `modules.dep` as the builder generates it (depmod's format).
pub const MODULES_DEP: &str = "\
kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-bufio.ko kernel/lib/reed_solomon/reed_solomon.ko kernel/drivers/md/dm-mod.ko
kernel/drivers/md/dm-bufio.ko:
kernel/drivers/md/dm-mod.ko:
kernel/lib/reed_solomon/reed_solomon.ko:
kernel/drivers/block/virtio_blk.ko:
kernel/drivers/scsi/virtio_scsi.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/sd_mod.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/scsi_common.ko:
";

/// Built in: the rest of `STAGE1_MODULES`.
pub const MODULES_BUILTIN: &str = "\
kernel/drivers/virtio/virtio_pci.ko
kernel/drivers/nvme/host/nvme.ko
kernel/crypto/crc32c_generic.ko
kernel/fs/ext4/ext4.ko
kernel/crypto/sha256_generic.ko
";

pub struct Fixture {
    pub fake: Fake,
    pub root_hash: RootHash,
    pub plan: Plan,
}

impl Fixture {
    /// The whole machine, with its disk already attached.
    pub fn new() -> Fixture {
        let machine = Fixture::without_disk();
        machine.attach_disk();
        machine
    }

    /// Everything but `/sys/block/vda` (the disk "appears" with [`Fixture::attach_disk`]).
    pub fn without_disk() -> Fixture {
        let fake = Fake::new();
        let (plan, root_hash) = write_disk(&fake);
        let machine = Fixture {
            fake,
            root_hash,
            plan,
        };
        machine.cmdline(&format!("console=ttyS0 roothash={root_hash}"));
        let f = &machine.fake;
        f.write("/proc/sys/kernel/osrelease", format!("{RELEASE}\n"));
        f.write(format!("{MODULES}/modules.dep"), MODULES_DEP);
        f.write(format!("{MODULES}/modules.builtin"), MODULES_BUILTIN);
        for line in MODULES_DEP.lines() {
            let (path, _) = line.split_once(':').expect("dep line");
            f.write(format!("{MODULES}/{path}"), b"\x7fELF");
        }
        f.write("/sys/block/sr0/size", "0\n");
        f.write("/sysroot/sbin/init", b"\x7fELF");
        for dir in ["dev", "proc", "sys"] {
            std::fs::create_dir_all(f.host("/sysroot").join(dir)).expect("mkdir");
        }
        machine
    }

    pub fn cmdline(&self, text: &str) {
        self.fake.write("/proc/cmdline", format!("{text}\n"));
    }

    pub fn attach_disk(&self) {
        attach(&self.plan, &self.fake.host("/"));
    }

    /// Attaches the disk once virtual time reaches `at`.
    pub fn attach_disk_at(&self, at: Duration) {
        let plan = self.plan.clone();
        self.fake.at(at, move |root| attach(&plan, root));
    }

    /// Overwrites bytes of `/dev/vda` at `offset` from the start of partition `role`.
    pub fn corrupt(&self, role: Role, offset: u64, bytes: &[u8]) {
        let disk = OpenOptions::new()
            .write(true)
            .open(self.fake.host("/dev/vda"))
            .expect("open disk");
        disk.write_all_at(bytes, self.plan.get(role).offset + offset)
            .expect("corrupt");
    }
}

/// Writes `/dev/vda`: data and tree first (the offsets do not depend on the root hash),
/// then the GPT whose partition UUIDs come from it. Returns the plan and root hash.
fn write_disk(fake: &Fake) -> (Plan, RootHash) {
    let sizes = Sizes {
        esp: MIB,
        root: MIB,
        verity: MIB,
        state: MIB,
    };
    let layout = Plan::new(&sizes, "berth", &[0; 32]);
    let path = fake.host("/dev/vda");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let mut disk = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("create disk");
    disk.set_len(layout.disk_size).expect("size disk");
    let data: Vec<u8> = (0..DATA_BLOCKS * verity::BLOCK_SIZE)
        .map(|i| (i % 251) as u8)
        .collect();
    let root_offset = layout.get(Role::RootA).offset;
    disk.write_all_at(&data, root_offset).expect("write data");
    let params = VerityParams {
        salt: SALT.to_vec(),
        uuid: [0x11; 16],
    };
    let info = verity::format(
        &disk,
        root_offset,
        data.len() as u64,
        &disk,
        layout.get(Role::VerityA).offset,
        &params,
        &|_| {},
    )
    .expect("verity format");
    let plan = Plan::new(&sizes, "berth", &info.root_hash);
    gpt::write(&mut disk, &path, &plan).expect("write gpt");
    (plan, RootHash(info.root_hash))
}

/// The sysfs entries of `vda` and its partitions (major 252, as virtio_blk gets).
fn attach(plan: &Plan, root: &std::path::Path) {
    let block = root.join("sys/block/vda");
    let write = |rel: &str, text: String| {
        let path = block.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write("size", format!("{}\n", plan.disk_size / 512));
    write("dev", "252:0\n".into());
    for p in &plan.partitions {
        write(
            &format!("vda{}/partition", p.number),
            format!("{}\n", p.number),
        );
        write(
            &format!("vda{}/dev", p.number),
            format!("252:{}\n", p.number),
        );
    }
    write("queue/rotational", "0\n".into());
}
