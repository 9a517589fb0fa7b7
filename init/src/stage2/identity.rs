//! Machine identity: `/etc/machine-id` and the host name.
//!
//! The machine-id is made on first boot from the kernel's random UUID and kept on STATE
//! (`berth/machine-id`), so it survives reboots and A/B updates while `/etc` itself is a
//! tmpfs overlay rebuilt every boot; it is written into that overlay for the programs
//! that read `/etc/machine-id`.
//!
//! The host name, first found wins: `berth.hostname=` on the command line; the cloud's,
//! from a NoCloud seed in the SMBIOS serial number (`cloud.rs`; there is no network this
//! early); else `berth-<first 8 of the machine-id>`, stable for the life of the disk. A
//! cloud name that is not a valid host name (RFC 1123) is reported and the default used.
//! The console says which source won.

use std::path::Path;

use super::cloud::{nocloud_hostname, SMBIOS_SERIAL};
use super::engine::{JobResult, Machine, StateBacking};
use berth_layout::cmdline::valid_hostname;
use berth_layout::paths::{MACHINE_ID, MACHINE_ID_ON_STATE, STATE_MOUNT};

/// A machine-id as systemd writes it: 32 lowercase hex digits, not all zero.
pub fn valid_machine_id(text: &str) -> bool {
    text.len() == 32
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && text.bytes().any(|b| b != b'0')
}

/// A machine-id from `/proc/sys/kernel/random/uuid` (`xxxxxxxx-xxxx-...`).
pub fn machine_id_from_uuid(uuid: &str) -> Option<String> {
    let id: String = uuid.trim().chars().filter(|c| *c != '-').collect();
    let id = id.to_ascii_lowercase();
    valid_machine_id(&id).then_some(id)
}

/// The `machine-id` job.
pub fn machine_id(m: &mut Machine) -> JobResult {
    let kept = Path::new(STATE_MOUNT).join(MACHINE_ID_ON_STATE);
    let existing = m
        .sys
        .read_to_string(&kept)
        .ok()
        .map(|t| t.trim().to_owned());
    let (id, how) = match existing {
        Some(id) if valid_machine_id(&id) => (id, "kept on STATE"),
        other => {
            if let Some(bad) = other {
                m.log(&format!("berth: FAILED machine-id: {} holds {bad:?}, not a machine-id; making a new one", kept.display()));
            }
            let uuid = m
                .sys
                .read_to_string(Path::new("/proc/sys/kernel/random/uuid"))?;
            let id = machine_id_from_uuid(&uuid).ok_or("the kernel gave no random UUID")?;
            m.sys
                .write_file(&kept, format!("{id}\n").as_bytes())
                .map_err(|e| format!("cannot keep it in {}: {e}", kept.display()))?;
            m.first_boot = true;
            let how = match m.state {
                StateBacking::Partition(_) => "new, kept on STATE",
                _ => "new, lost at shutdown (STATE is a tmpfs)",
            };
            (id, how)
        }
    };
    m.sys
        .write_file(Path::new(MACHINE_ID), format!("{id}\n").as_bytes())
        .map_err(|e| format!("cannot write {MACHINE_ID}: {e}"))?;
    m.log(&format!("berth: machine-id {id} ({how})"));
    m.machine_id = Some(id);
    Ok(())
}

/// The host name and where it came from, for the console.
fn choose_hostname(m: &Machine) -> (String, &'static str) {
    if let Some(name) = &m.options.hostname {
        return (name.clone(), "from berth.hostname=");
    }
    let serial = m
        .sys
        .read_to_string(Path::new(SMBIOS_SERIAL))
        .unwrap_or_default();
    let default = match &m.machine_id {
        Some(id) => (
            format!("berth-{}", id.get(..8).unwrap_or(id)),
            "default, from the machine-id",
        ),
        None => ("berth".to_owned(), "default, no machine-id"),
    };
    match nocloud_hostname(&serial) {
        Some(name) if valid_hostname(&name) => (name, "from SMBIOS nocloud"),
        Some(name) => {
            m.log(&format!(
                "berth: FAILED hostname: the SMBIOS serial's nocloud host name {name:?} is not a valid host name (RFC 1123: labels of letters, digits and '-', at most 64 characters); using {}",
                default.0
            ));
            default
        }
        None => default,
    }
}

/// The `hostname` job.
pub fn hostname(m: &mut Machine) -> JobResult {
    let (name, from) = choose_hostname(m);
    m.sys
        .write_file(Path::new("/proc/sys/kernel/hostname"), name.as_bytes())
        .map_err(|e| format!("cannot set the host name {name:?}: {e}"))?;
    if let Err(e) = m
        .sys
        .write_file(Path::new("/etc/hostname"), format!("{name}\n").as_bytes())
    {
        m.log(&format!(
            "berth: FAILED hostname: cannot write /etc/hostname: {e}"
        ));
    }
    m.log(&format!("berth: hostname {name} ({from})"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_ids() {
        let id = machine_id_from_uuid("3F2504E0-4F89-11D3-9A0C-0305E82C3301\n").unwrap();
        assert_eq!(id, "3f2504e04f8911d39a0c0305e82c3301");
        assert!(valid_machine_id(&id));
        assert!(!valid_machine_id("00000000000000000000000000000000"));
        assert!(!valid_machine_id("3f2504e04f8911d39a0c0305e82c330"));
        assert!(!valid_machine_id("3F2504E04F8911D39A0C0305E82C3301"));
        assert_eq!(machine_id_from_uuid("garbage"), None);
    }
}
