//! Identities inside the image, derived from content so that two builds of the same inputs
//! are byte-identical: the root's ext4 UUID and hash seed come from the image name and the
//! root tree's digest, STATE's from the image name and version, the verity salt and UUID
//! from the root tree's digest, and the ESP's FAT volume id from the ESP partition's UUID.
//!
//! Changing any derivation here changes every image's bytes: the golden values in the tests
//! below are there to make that a deliberate act.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use berth_layout::partition::stable_uuid;

/// The UUID and directory hash seed of an ext4 filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ext4Ids {
    pub uuid: Uuid,
    pub hash_seed: Uuid,
}

/// The read-only root's ext4 identity: from the image name and the root tree's digest.
pub fn root_ext4(image_name: &str, tree_digest: &str) -> Ext4Ids {
    let (name, seed) = (image_name.as_bytes(), tree_digest.as_bytes());
    Ext4Ids {
        uuid: stable_uuid(&[name, seed, b"ext4-uuid"]),
        hash_seed: stable_uuid(&[name, seed, b"ext4-hash-seed"]),
    }
}

/// STATE's ext4 identity: from the image name and version (STATE does not depend on the
/// root, so a root change does not rebuild it).
pub fn state_ext4(image_name: &str, version: &str) -> Ext4Ids {
    let id = format!("{image_name}\n{version}");
    Ext4Ids {
        uuid: stable_uuid(&[id.as_bytes(), b"state-uuid"]),
        hash_seed: stable_uuid(&[id.as_bytes(), b"state-hash-seed"]),
    }
}

/// The dm-verity salt (32 bytes, as `veritysetup format` makes by default): the SHA-256 of
/// a fixed prefix and the root tree's digest.
pub fn verity_salt(tree_digest: &str) -> Vec<u8> {
    Sha256::new()
        .chain_update(b"berth verity salt")
        .chain_update(tree_digest.as_bytes())
        .finalize()
        .to_vec()
}

/// The UUID written into the verity superblock.
pub fn verity_uuid(tree_digest: &str) -> [u8; 16] {
    *stable_uuid(&[tree_digest.as_bytes(), b"verity-uuid"]).as_bytes()
}

/// The FAT volume id (serial number) of the ESP: the first four bytes of its partition
/// UUID, little-endian, so the volume and its partition name each other.
pub fn fat_volume_id(esp_partition: &Uuid) -> u32 {
    let b = esp_partition.as_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn derivations_are_golden() {
        let root = root_ext4("berth", DIGEST);
        assert_eq!(
            root.uuid.to_string(),
            "852bda59-90fa-4270-ae5e-dfc37bcf3589"
        );
        assert_eq!(
            root.hash_seed.to_string(),
            "2b333b9b-8ec1-4f01-9fb1-294aae82e896"
        );
        let state = state_ext4("berth", "0.1.0");
        assert_eq!(
            state.uuid.to_string(),
            "59472c30-0fd7-42c0-b646-6d8a0b06f82c"
        );
        assert_eq!(
            state.hash_seed.to_string(),
            "e3aa24fc-97c0-4209-963b-e906ff9d9f5e"
        );
        assert_eq!(
            hex::encode(verity_salt(DIGEST)),
            "9753f17e303b0cd32c8487ff51e2209afcb65171373001e1bc5da982fcf8f9e6"
        );
        assert_eq!(
            Uuid::from_bytes(verity_uuid(DIGEST)).to_string(),
            "f0408da5-1f56-418f-a671-09a9b1e8029f"
        );
    }

    #[test]
    fn derivations_depend_on_their_inputs() {
        let other = DIGEST.replace('0', "f");
        assert_ne!(root_ext4("berth", DIGEST), root_ext4("berth", &other));
        assert_ne!(root_ext4("berth", DIGEST), root_ext4("other", DIGEST));
        assert_ne!(
            root_ext4("berth", DIGEST).uuid,
            root_ext4("berth", DIGEST).hash_seed
        );
        assert_ne!(state_ext4("berth", "1"), state_ext4("berth", "2"));
        assert_ne!(verity_salt(DIGEST), verity_salt(&other));
        assert_ne!(verity_uuid(DIGEST), verity_uuid(&other));
    }

    #[test]
    fn fat_volume_id_is_the_partition_uuids_first_bytes_little_endian() {
        let uuid = Uuid::parse_str("78563412-0000-4000-8000-000000000000").unwrap();
        assert_eq!(fat_volume_id(&uuid), 0x1234_5678);
    }
}
