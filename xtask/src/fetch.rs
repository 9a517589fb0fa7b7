//! The fetch stage: every pinned `.deb` of the variant, from the sha256-keyed cache outside
//! the work tree, fetched with apt (private configuration) only when missing.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use berth_image::spec::ImageSpec;
use berth_rootfs::{Apt, AptSources, DebCache, LockedPackage, Lockfile};

use crate::ui::Ui;
use crate::workspace::Workspace;
use crate::Variant;

/// The private apt state (lists, partial downloads) lives beside the .deb cache.
pub fn apt_sources(spec: &ImageSpec) -> AptSources {
    AptSources {
        mirror: spec.packages.mirror.clone(),
        security_mirror: spec.packages.security_mirror.clone(),
        suite: spec.packages.suite.clone(),
    }
}

/// The packages of `variant`, in lock order, each with the path of its verified `.deb`.
pub fn fetch(
    ws: &Workspace,
    ui: &Ui,
    spec: &ImageSpec,
    variant: Variant,
) -> Result<Vec<(LockedPackage, PathBuf)>> {
    let lock_path = ws.lock_file();
    let lock = Lockfile::load(&lock_path)?;
    let mut wanted: Vec<&String> = spec.packages.include.iter().collect();
    if variant == Variant::Debug {
        wanted.extend(&spec.packages.debug);
    }
    let mut missing = Vec::new();
    let mut packages = Vec::new();
    for name in wanted {
        match lock.get(name) {
            Some(pkg) => packages.push(pkg.clone()),
            None => missing.push(name.as_str()),
        }
    }
    if !missing.is_empty() {
        bail!(
            "{} lists packages that {} does not pin: {}; run `cargo xtask lock`",
            spec_path_hint(),
            lock_path.display(),
            missing.join(", ")
        );
    }
    let subset = Lockfile::new(packages, &lock_path)?;

    let cache = DebCache::new(DebCache::default_dir().context("no cache folder")?);
    let step = ui.step("fetch");
    let sources = apt_sources(spec);
    let apt_dir = cache.dir().join("apt");
    let make_apt = || -> Result<Apt, berth_rootfs::AptError> {
        let apt = Apt::new(&apt_dir, &sources)?;
        apt.update()?;
        Ok(apt)
    };
    let total = subset.packages().len();
    let fetched = cache.ensure_all(&subset, make_apt, &|what: &str| step.message(what))?;
    step.finish(&format!("{total} packages verified"));
    Ok(fetched)
}

fn spec_path_hint() -> &'static str {
    "image.toml"
}
