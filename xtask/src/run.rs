//! `cargo xtask run`: builds the image if needed and boots it under QEMU with the serial
//! console on this terminal (quit with Ctrl-A X). The disk is used in snapshot mode unless
//! `--persistent`, so a run never changes the built image.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use berth_layout::gpt;
use berth_layout::partition::{Role, ESP_TYPE, ROOT_VERITY_X86_64_TYPE, ROOT_X86_64_TYPE};
use berth_qemu::Qemu;

use crate::build;
use crate::ui::Ui;
use crate::workspace::Workspace;

pub struct Options {
    pub build: build::Options,
    /// Boot this disk instead of building one.
    pub image: Option<PathBuf>,
    pub persistent: bool,
    pub memory_mib: u32,
    pub cpus: u32,
}

pub fn run(ws: &Workspace, ui: &Ui, opts: &Options) -> Result<()> {
    let disk = match &opts.image {
        Some(image) => ws.path(image),
        None => build::run(ws, ui, &opts.build)?,
    };
    check_berth_disk(&disk)?;
    ui.say(&format!(
        "booting {} under QEMU ({}; {}); quit with Ctrl-A X",
        disk.display(),
        berth_qemu::accel().as_str(),
        if opts.persistent {
            "persistent"
        } else {
            "snapshot: the disk is not changed"
        }
    ));
    let status = Qemu::builder()
        .disk(&disk)
        .snapshot(!opts.persistent)
        .memory_mib(opts.memory_mib)
        .cpus(opts.cpus)
        .interactive()?;
    if !status.success() {
        bail!("QEMU exited with {status}");
    }
    Ok(())
}

/// A Berth disk has Berth's ESP and root slot A with verity, by label and type.
fn check_berth_disk(disk: &Path) -> Result<()> {
    let mut file =
        std::fs::File::open(disk).with_context(|| format!("cannot open {}", disk.display()))?;
    let table = gpt::read(&mut file, disk)?;
    let wanted = [
        (Role::Esp, ESP_TYPE),
        (Role::RootA, ROOT_X86_64_TYPE),
        (Role::VerityA, ROOT_VERITY_X86_64_TYPE),
    ];
    for (role, type_guid) in wanted {
        let found = table
            .by_label(role.label())
            .is_some_and(|p| p.type_guid == type_guid);
        if !found {
            bail!(
                "{} is not a Berth disk: it has no {} partition of type {type_guid}",
                disk.display(),
                role.label()
            );
        }
    }
    Ok(())
}
