//! `cargo xtask lock`: pins every package of `image.toml` (all variants) to what the Debian
//! archive serves now, with version, size and sha256: the root's packages in
//! `rootfs/packages.lock`, the kernel and boot loader in `kernel-config/kernel.lock`.

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
    let mut boot = Vec::new();
    for name in spec.boot_packages() {
        // A kernel metapackage stands for one versioned kernel package: pin that one.
        let real = apt
            .depends(&name)?
            .into_iter()
            .find(|dep| is_versioned_kernel(&name, dep));
        boot.push(real.unwrap_or(name));
    }
    let locks = [
        (ws.lock_file(), spec.all_packages()),
        (ws.kernel_lock_file(), boot),
    ];
    let mut written = Vec::new();
    for (path, names) in locks {
        let resolved = apt.resolve(&names)?;
        let old = Lockfile::load(&path).ok();
        let lock = Lockfile::new(resolved, &path)?;
        lock.save(&path)?;
        written.push((path, old, lock));
    }
    step.finish(&format!("{} lock files written", written.len()));
    for (path, old, lock) in &written {
        ui.say(&format!(
            "{}: {} packages",
            path.display(),
            lock.packages().len()
        ));
        report(ui, old.as_ref(), lock);
    }
    Ok(())
}

/// `linux-image-6.1.0-56-cloud-amd64` for `linux-image-cloud-amd64`.
fn is_versioned_kernel(meta: &str, dep: &str) -> bool {
    meta.starts_with("linux-image-")
        && dep
            .strip_prefix("linux-image-")
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

/// One line per package whose pin changed.
fn report(ui: &Ui, old: Option<&Lockfile>, lock: &Lockfile) {
    for pkg in lock.packages() {
        match old
            .and_then(|o| o.get(&pkg.name))
            .map(|p| p.version.as_str())
        {
            Some(v) if v == pkg.version => {}
            Some(v) => ui.say(&format!("  {} {v} -> {}", pkg.name, pkg.version)),
            None => ui.say(&format!("  {} {} (new)", pkg.name, pkg.version)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_metapackages_resolve_to_versioned_kernels() {
        let meta = "linux-image-cloud-amd64";
        assert!(is_versioned_kernel(
            meta,
            "linux-image-6.1.0-56-cloud-amd64"
        ));
        assert!(!is_versioned_kernel(meta, "linux-base"));
        assert!(!is_versioned_kernel(
            "systemd-boot-efi",
            "linux-image-6.1.0-56-cloud-amd64"
        ));
    }
}
