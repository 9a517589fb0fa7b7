//! The partition plan: labels, type GUIDs, sizes and identities of Berth's six partitions,
//! defined once and used by the image builder (to write the disk), by stage 1 (to find the
//! root from `roothash=` alone) and by stage 2 (to find and grow STATE).
//!
//! Type GUIDs follow the Discoverable Partitions Specification. As systemd does, the root
//! partition's UUID is the first 128 bits of the dm-verity root hash and its verity
//! partition's UUID the last 128 bits. Every other identifier is derived from the image
//! name and the root hash, so the disk is a pure function of its inputs.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// One mebibyte.
pub const MIB: u64 = 1 << 20;
/// Logical sector size of every Berth disk.
pub const SECTOR: u64 = 512;
/// Partition alignment: 1 MiB, what every tool and cloud expects.
pub const ALIGN: u64 = MIB;

/// EFI System Partition.
pub const ESP_TYPE: Uuid = Uuid::from_u128(0xc12a7328_f81f_11d2_ba4b_00a0c93ec93b);
/// Root partition (x86-64).
pub const ROOT_X86_64_TYPE: Uuid = Uuid::from_u128(0x4f68bce3_e8cd_4db1_96e7_fbcaf984b709);
/// Root verity partition (x86-64).
pub const ROOT_VERITY_X86_64_TYPE: Uuid = Uuid::from_u128(0x2c7357ed_ebd2_46d9_aec1_23d437ec2bf5);
/// Generic Linux data.
pub const LINUX_DATA_TYPE: Uuid = Uuid::from_u128(0x0fc63daf_8483_4772_8e79_3d69d8477de4);

/// GPT attribute bit 60: read-only (Discoverable Partitions Specification).
pub const ATTR_READ_ONLY: u64 = 1 << 60;

/// What a partition is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Esp,
    RootA,
    VerityA,
    RootB,
    VerityB,
    State,
}

impl Role {
    /// All roles in partition-number order (number = index + 1).
    pub const ALL: [Role; 6] = [
        Role::Esp,
        Role::RootA,
        Role::VerityA,
        Role::RootB,
        Role::VerityB,
        Role::State,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            Role::Esp => "EFI-SYSTEM",
            Role::RootA => "ROOT-A",
            Role::VerityA => "ROOT-A-VERITY",
            Role::RootB => "ROOT-B",
            Role::VerityB => "ROOT-B-VERITY",
            Role::State => "STATE",
        }
    }

    pub fn type_guid(self) -> Uuid {
        match self {
            Role::Esp => ESP_TYPE,
            Role::RootA | Role::RootB => ROOT_X86_64_TYPE,
            Role::VerityA | Role::VerityB => ROOT_VERITY_X86_64_TYPE,
            Role::State => LINUX_DATA_TYPE,
        }
    }

    pub fn number(self) -> u32 {
        Role::ALL
            .iter()
            .position(|r| *r == self)
            .map_or(0, |i| i as u32 + 1)
    }
}

/// The sizes the plan is made from (from `image.toml`).
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// 64 MiB: systemd-boot, two kernels and two initrds with room to spare.
    pub esp: u64,
    /// Per slot. Sized for the roots of future releases, not the first one: a layout is
    /// frozen once a disk is provisioned (Flatcar, Talos and Bottlerocket all regretted
    /// tight slots).
    pub root: u64,
    /// Per slot: the verity tree of a full root slot is 1/127 of it; leave headroom too.
    pub verity: u64,
    /// Initial STATE; grown to fill the disk on first boot.
    pub state: u64,
}

/// One planned partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub role: Role,
    pub number: u32,
    pub label: &'static str,
    pub type_guid: Uuid,
    pub uuid: Uuid,
    /// Byte offset of the first byte.
    pub offset: u64,
    pub size: u64,
    pub attributes: u64,
}

impl Planned {
    pub fn first_lba(&self) -> u64 {
        self.offset / SECTOR
    }
    pub fn last_lba(&self) -> u64 {
        (self.offset + self.size) / SECTOR - 1
    }
}

/// The whole disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub disk_guid: Uuid,
    pub disk_size: u64,
    pub partitions: Vec<Planned>,
}

impl Plan {
    /// Lays out the six partitions from 1 MiB on, each 1 MiB aligned, with 1 MiB at the end
    /// for the backup GPT.
    pub fn new(sizes: &Sizes, image_name: &str, root_hash: &[u8; 32]) -> Plan {
        let (root_uuid, verity_uuid) = uuids_from_root_hash(root_hash);
        let mut offset = ALIGN;
        let mut partitions = Vec::new();
        for role in Role::ALL {
            let size = match role {
                Role::Esp => sizes.esp,
                Role::RootA | Role::RootB => sizes.root,
                Role::VerityA | Role::VerityB => sizes.verity,
                Role::State => sizes.state,
            };
            let size = size.div_ceil(ALIGN) * ALIGN;
            let uuid = match role {
                Role::RootA => root_uuid,
                Role::VerityA => verity_uuid,
                other => derived_uuid(image_name, root_hash, other.label()),
            };
            let attributes = match role {
                Role::RootA | Role::VerityA => ATTR_READ_ONLY,
                _ => 0,
            };
            partitions.push(Planned {
                role,
                number: role.number(),
                label: role.label(),
                type_guid: role.type_guid(),
                uuid,
                offset,
                size,
                attributes,
            });
            offset += size;
        }
        Plan {
            disk_guid: derived_uuid(image_name, root_hash, "disk"),
            disk_size: offset + ALIGN,
            partitions,
        }
    }

    pub fn get(&self, role: Role) -> &Planned {
        // `new` creates one partition per role, in `Role::ALL` order.
        &self.partitions[role.number() as usize - 1]
    }
}

/// systemd's convention: root UUID = first 128 bits of the root hash, verity UUID = last.
pub fn uuids_from_root_hash(root_hash: &[u8; 32]) -> (Uuid, Uuid) {
    let mut first = [0u8; 16];
    let mut last = [0u8; 16];
    first.copy_from_slice(&root_hash[..16]);
    last.copy_from_slice(&root_hash[16..]);
    (Uuid::from_bytes(first), Uuid::from_bytes(last))
}

/// A stable version-4-shaped UUID from the build's identity and a purpose string.
pub fn derived_uuid(image_name: &str, root_hash: &[u8; 32], purpose: &str) -> Uuid {
    stable_uuid(&[image_name.as_bytes(), root_hash, purpose.as_bytes()])
}

/// A version-4-shaped UUID that is a hash of `parts` (as systemd's `id128_make_v4_uuid`).
pub fn stable_uuid(parts: &[&[u8]]) -> Uuid {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_aligned_and_ordered() {
        let sizes = Sizes {
            esp: 64 * MIB,
            root: 1024 * MIB,
            verity: 16 * MIB,
            state: 256 * MIB,
        };
        let hash = [0xab; 32];
        let plan = Plan::new(&sizes, "berth", &hash);
        let labels: Vec<_> = plan.partitions.iter().map(|p| p.label).collect();
        assert_eq!(
            labels,
            [
                "EFI-SYSTEM",
                "ROOT-A",
                "ROOT-A-VERITY",
                "ROOT-B",
                "ROOT-B-VERITY",
                "STATE"
            ]
        );
        assert_eq!(plan.partitions[0].first_lba(), 2048);
        for pair in plan.partitions.windows(2) {
            assert_eq!(pair[0].offset + pair[0].size, pair[1].offset);
            assert_eq!(pair[1].offset % ALIGN, 0);
        }
        assert_eq!(
            plan.disk_size,
            (1 + 64 + 1024 + 16 + 1024 + 16 + 256 + 1) * MIB
        );
        assert_eq!(plan.get(Role::State).number, 6);
    }

    #[test]
    fn root_uuids_are_the_root_hash_halves() {
        let mut hash = [0u8; 32];
        for (i, b) in hash.iter_mut().enumerate() {
            *b = i as u8;
        }
        let (root, verity) = uuids_from_root_hash(&hash);
        assert_eq!(root.to_string(), "00010203-0405-0607-0809-0a0b0c0d0e0f");
        assert_eq!(verity.to_string(), "10111213-1415-1617-1819-1a1b1c1d1e1f");
        let plan = Plan::new(
            &Sizes {
                esp: 64 * MIB,
                root: 64 * MIB,
                verity: MIB,
                state: 32 * MIB,
            },
            "berth",
            &hash,
        );
        assert_eq!(plan.get(Role::RootA).uuid, root);
        assert_eq!(plan.get(Role::VerityA).uuid, verity);
        assert_ne!(plan.get(Role::RootB).uuid, plan.get(Role::State).uuid);
    }

    #[test]
    fn derived_uuids_are_stable_v4() {
        let a = derived_uuid("berth", &[1; 32], "disk");
        assert_eq!(a, derived_uuid("berth", &[1; 32], "disk"));
        assert_ne!(a, derived_uuid("berth", &[2; 32], "disk"));
        assert_eq!(a.get_version_num(), 4);
        assert_eq!(
            ROOT_X86_64_TYPE.to_string(),
            "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"
        );
    }
}
