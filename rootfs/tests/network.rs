//! Fetching from Debian's archive with the private apt setup (needs the network).

use berth_rootfs::{Apt, AptError, AptSources, DebCache, Lockfile};
use std::path::Path;

#[test]
#[ignore = "needs Debian's archive"]
fn resolve_download_and_cache_busybox_static() {
    let work = tempfile::tempdir().unwrap();
    let apt = Apt::new(&work.path().join("apt"), &AptSources::default()).unwrap();
    apt.update().unwrap();
    let pins = apt.resolve(&["busybox-static".to_string()]).unwrap();
    assert_eq!(pins.len(), 1);
    let pin = &pins[0];
    assert_eq!(pin.name, "busybox-static");
    assert!(pin.filename.starts_with("pool/main/b/busybox/"), "{pin:?}");

    let err = apt
        .resolve(&["busybox-static".into(), "no-such-package-berth".into()])
        .unwrap_err();
    assert!(
        matches!(&err, AptError::NotInArchive { names } if names == &["no-such-package-berth"]),
        "{err}"
    );

    // Through the cache: download, size and sha256 checked against the pin.
    let lock = Lockfile::new(pins.clone(), Path::new("test")).unwrap();
    let cache = DebCache::new(work.path().join("cache"));
    let got = cache
        .ensure_all(&lock, || Ok(apt.clone()), &|l| eprintln!("{l}"))
        .unwrap();
    let deb = &got[0].1;
    let digest = berth_rootfs::hash::file_digest(deb).unwrap();
    assert_eq!(
        (digest.size, digest.sha256.as_str()),
        (pin.size, pin.sha256.as_str())
    );
    let control = berth_rootfs::deb::control(deb).unwrap();
    assert_eq!(control.version, pin.version);
    // Cached now: no apt needed.
    cache
        .ensure_all(&lock, || Err(AptError::AptMissing), &|_| {})
        .unwrap();

    // A pin the archive does not serve says so.
    let mut gone = pin.clone();
    gone.version = "0.0.1-berth".into();
    let err = apt.download(&gone, work.path()).unwrap_err();
    assert!(matches!(err, AptError::PinNotServed { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("busybox-static=0.0.1-berth is no longer served"),
        "{err}"
    );
    assert!(err.to_string().contains("cargo xtask lock"), "{err}");

    // A lock whose hash does not match what the archive serves is refused, not cached.
    let mut wrong = pin.clone();
    wrong.sha256 = "0".repeat(64);
    let err = cache.fetch(&wrong, &apt).unwrap_err();
    assert!(
        err.to_string().contains(&pin.sha256) && err.to_string().contains("busybox-static"),
        "{err}"
    );
    assert!(cache.get(&wrong).is_none());
}
