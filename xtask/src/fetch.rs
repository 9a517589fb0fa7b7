//! The fetch step: every pinned `.deb` a build needs, from the sha256-keyed cache outside
//! the work tree, fetched with apt (private configuration) only when missing.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use berth_image::spec::ImageSpec;
use berth_rootfs::{Apt, AptSources, DebCache, LockedPackage, Lockfile};

use crate::ui::Ui;

/// The private apt state (lists, partial downloads) lives beside the .deb cache.
pub fn apt_sources(spec: &ImageSpec) -> AptSources {
    AptSources {
        mirror: spec.packages.mirror.clone(),
        security_mirror: spec.packages.security_mirror.clone(),
        suite: spec.packages.suite.clone(),
    }
}

/// The pinned packages of `lock_path` named in `names` (by `image.toml`'s names; a
/// metapackage matches the pinned package it was resolved to by a `prefix`), in lock
/// order, each with the path of its verified `.deb`.
pub fn fetch(
    ui: &Ui,
    spec: &ImageSpec,
    lock_path: &Path,
    names: &[String],
) -> Result<Vec<(LockedPackage, PathBuf)>> {
    let lock = Lockfile::load(lock_path)?;
    let mut missing = Vec::new();
    let mut packages = Vec::new();
    for name in names {
        let pinned = lock.get(name).or_else(|| {
            // `linux-image-cloud-amd64` is pinned as `linux-image-6.1.0-N-cloud-amd64`.
            let flavour = name.strip_prefix("linux-image-")?;
            lock.packages().iter().find(|p| {
                p.name.starts_with("linux-image-") && p.name.ends_with(&format!("-{flavour}"))
            })
        });
        match pinned {
            Some(pkg) => packages.push(pkg.clone()),
            None => missing.push(name.as_str()),
        }
    }
    if !missing.is_empty() {
        bail!(
            "image.toml names packages that {} does not pin: {}; run `cargo xtask lock`",
            lock_path.display(),
            missing.join(", ")
        );
    }
    let subset = Lockfile::new(packages, lock_path)?;

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
    let file = lock_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    step.finish(&format!("{total} packages of {file} verified"));
    Ok(fetched)
}
