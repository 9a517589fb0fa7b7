//! `cargo xtask inspect IMAGE`: the partition table, a full dm-verity check of every root
//! slot in Rust, and the verified root's file list. Any GPT disk works as far as its data
//! allows; anything else gets a one-line error.

use std::path::Path;

use anyhow::Result;
use berth_image::inspect::{self, RootState};
use berth_layout::partition::{
    ESP_TYPE, LINUX_DATA_TYPE, ROOT_VERITY_X86_64_TYPE, ROOT_X86_64_TYPE,
};
use uuid::Uuid;

use crate::ui::Ui;

pub fn run(ui: &Ui, image: &Path, with_files: bool) -> Result<()> {
    let size = std::fs::metadata(image).map(|m| m.len()).unwrap_or(0);
    let step = ui.step_bytes("verify", size);
    let (table, roots) = inspect::inspect(image, &|n| step.set_position(n))?;
    drop(step);
    let sector = table.sector_size;
    println!(
        "{}: GPT, disk GUID {}, {sector}-byte sectors",
        image.display(),
        table.disk_guid
    );
    for warning in &table.warnings {
        println!("warning: {warning}");
    }
    println!(
        "{:>3} {:<16} {:>12} {:>10}  {:<20} {:<36} attrs",
        "#", "label", "start", "size", "type", "uuid"
    );
    for p in &table.partitions {
        println!(
            "{:>3} {:<16} {:>12} {:>10}  {:<20} {:<36} {:#x}",
            p.number,
            p.label,
            p.first_lba,
            human(p.size(sector)),
            type_name(p.type_guid),
            p.uuid,
            p.attributes
        );
    }
    let mut failures = 0;
    for root in &roots {
        match &root.state {
            RootState::Unverified(why) => println!("{}: not verified: {why}", root.root.label),
            RootState::Corrupt(why) => {
                failures += 1;
                println!("{}: VERITY FAILURE: {why}", root.root.label);
            }
            RootState::Verified {
                info,
                uuid_problems,
            } => {
                println!(
                    "{}: verity OK, root hash {}, salt {}, {} data blocks",
                    root.root.label,
                    hex::encode(info.root_hash),
                    hex::encode(&info.salt),
                    info.data_blocks
                );
                for problem in uuid_problems {
                    failures += 1;
                    println!("{}: {problem}", root.root.label);
                }
                if with_files {
                    match inspect::list_files(image, &root.root, sector) {
                        Ok(files) => {
                            println!("{}: {} files", root.root.label, files.len());
                            for f in files {
                                let link = f.link.map(|l| format!(" -> {l}")).unwrap_or_default();
                                println!(
                                    "  {:04o} {:>5}:{:<5} {:>10} {}{link}",
                                    f.mode, f.uid, f.gid, f.size, f.path
                                );
                            }
                        }
                        Err(why) => println!("{}: cannot list files: {why}", root.root.label),
                    }
                }
            }
        }
    }
    if roots.is_empty() {
        println!("no x86-64 root partitions (not a Berth disk)");
    }
    if failures > 0 {
        anyhow::bail!("{}: {failures} verification problem(s)", image.display());
    }
    Ok(())
}

fn type_name(guid: Uuid) -> String {
    match guid {
        ESP_TYPE => "EFI System".into(),
        ROOT_X86_64_TYPE => "root x86-64".into(),
        ROOT_VERITY_X86_64_TYPE => "root verity x86-64".into(),
        LINUX_DATA_TYPE => "Linux data".into(),
        other => other.to_string(),
    }
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{}GiB", b >> 30),
        b if b >= 1 << 20 => format!("{:.0}MiB", b as f64 / (1u64 << 20) as f64),
        b => format!("{}KiB", b >> 10),
    }
}
