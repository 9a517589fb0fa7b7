//! `cargo xtask lock`: pins every package of `image.toml` (all variants) to what the Debian
//! archive serves now, with version, size and sha256, in `rootfs/packages.lock`.

use std::path::Path;

use anyhow::{Context, Result};
use berth_image::spec::ImageSpec;
use berth_rootfs::{Apt, DebCache, Lockfile};

use crate::fetch::apt_sources;
use crate::ui::Ui;
use crate::workspace::Workspace;

pub fn run(ws: &Workspace, ui: &Ui, config: &Path) -> Result<()> {
    let spec = ImageSpec::load(&ws.path(config))?;
    let cache = DebCache::new(DebCache::default_dir().context("no cache folder")?);
    let step = ui.step("lock");
    step.message("apt-get update");
    let apt = Apt::new(&cache.dir().join("apt"), &apt_sources(&spec))?;
    apt.update()?;
    step.message("resolving");
    let resolved = apt.resolve(&spec.all_packages())?;
    let path = ws.lock_file();
    let old = Lockfile::load(&path).ok();
    let lock = Lockfile::new(resolved, &path)?;
    lock.save(&path)?;
    step.finish(&format!(
        "{} packages pinned in {}",
        lock.packages().len(),
        path.display()
    ));
    for pkg in lock.packages() {
        let before = old
            .as_ref()
            .and_then(|o| o.get(&pkg.name))
            .map(|p| p.version.clone());
        match before {
            Some(v) if v == pkg.version => {}
            Some(v) => ui.say(&format!("  {} {v} -> {}", pkg.name, pkg.version)),
            None => ui.say(&format!("  {} {} (new)", pkg.name, pkg.version)),
        }
    }
    Ok(())
}
