//! [`ImageStore`]: the CRI image service's operations (pull, list, status, remove, fs
//! info) over the content store, the unpacked layers and the image records.
//!
//! Concurrency: pulls run in parallel (blobs and layers are written under unique
//! temporary names and renamed into place, so two pulls of one layer cannot corrupt it);
//! record updates are serialized; garbage collection (on remove) waits for running pulls,
//! so it never deletes a blob or layer a pull has fetched but not yet recorded.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock};

use super::auth::Auth;
use super::client::{Client, Fetched, Session};
use super::content::ContentStore;
use super::digest::Digest;
use super::error::ImageError;
use super::hosts::RegistryConfig;
use super::layers::LayerStore;
use super::manifest::{self, ImageConfigFile, ImageConfigSummary, Index, Kind, Manifest};
use super::records::{ImageRecord, Records};
use super::reference::Reference;
use super::unpack::UnpackOptions;
use super::usage::{self, FsUsage};

/// Configs larger than this are refused.
const MAX_CONFIG: u64 = 64 << 20;
/// Indexes nested deeper than this are refused.
const MAX_INDEX_DEPTH: usize = 4;

/// Images under the daemon's root: `content/`, `layers/`, `images/`.
pub struct ImageStore {
    root: PathBuf,
    content: ContentStore,
    layers: LayerStore,
    records: Records,
    registries: RegistryConfig,
    /// Read again at each pull when set (as containerd's `config_path`), so a registry
    /// configured while the daemon runs serves the next pull without a restart.
    registry_folder: Option<PathBuf>,
    client: Client,
    /// Pulls hold it shared, garbage collection exclusively.
    gc: RwLock<()>,
    /// Serializes record updates.
    write: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ImageStore {
    /// Opens (creating) the store under `root`, unpacking as the current user allows.
    pub fn open(root: &Path, registries: RegistryConfig) -> Result<Self, ImageError> {
        Self::open_with(root, registries, UnpackOptions::for_current_user())
    }

    /// As [`open`](Self::open), with explicit unpack permissions.
    pub fn open_with(
        root: &Path,
        registries: RegistryConfig,
        opts: UnpackOptions,
    ) -> Result<Self, ImageError> {
        Ok(ImageStore {
            root: root.to_path_buf(),
            content: ContentStore::open(&root.join("content"))?,
            layers: LayerStore::open(&root.join("layers"), opts)?,
            records: Records::open(&root.join("images"))?,
            registries,
            registry_folder: None,
            client: Client::new(),
            gc: RwLock::new(()),
            write: Mutex::new(()),
        })
    }

    /// Reads `dir`'s `<registry>/hosts.toml` files at each pull instead of the
    /// configuration given at open; a file that does not parse fails the pull, naming it.
    pub fn reading_registries_from(mut self, dir: &Path) -> Self {
        self.registry_folder = Some(dir.to_owned());
        self
    }

    /// The content store (blobs by digest).
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// Pulls `reference` (normalized: `busybox` is `docker.io/library/busybox:latest`)
    /// with the request's credentials, verifying every manifest, blob and layer.
    pub fn pull(&self, reference: &str, auth: Option<&Auth>) -> Result<ImageRecord, ImageError> {
        let reference = Reference::parse(reference)?;
        let _shared = self.gc.read().unwrap_or_else(|p| p.into_inner());
        let loaded;
        let registries = match &self.registry_folder {
            Some(dir) => {
                loaded = RegistryConfig::load(dir)?;
                &loaded
            }
            None => &self.registries,
        };
        let session = self.client.session(&reference, registries, auth);
        let top = session.resolve(&reference)?;
        let top_digest = top.digest.clone();
        let mut blobs = Vec::new();
        let manifest_doc = self.follow_index(&reference, &session, top, &mut blobs)?;
        let manifest: Manifest =
            serde_json::from_slice(&manifest_doc.body).map_err(|e| ImageError::BadResponse {
                host: reference.registry.clone(),
                what: format!("manifest {}", manifest_doc.digest),
                reason: e.to_string(),
            })?;
        let bad = |what: String, reason: String| ImageError::BadResponse {
            host: reference.registry.clone(),
            what,
            reason,
        };

        let config_digest = manifest.config.digest().ok_or_else(|| {
            bad(
                "manifest".into(),
                format!("config digest {:?} is not sha256", manifest.config.digest),
            )
        })?;
        self.fetch_blob(&session, &config_digest, manifest.config.size())?;
        blobs.push(config_digest.clone());
        let config_bytes = self.content.read(&config_digest, MAX_CONFIG)?;
        let config: ImageConfigFile = serde_json::from_slice(&config_bytes)
            .map_err(|e| bad(format!("config {config_digest}"), e.to_string()))?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(bad(
                format!("config {config_digest}"),
                format!(
                    "{} diff ids for {} layers",
                    config.rootfs.diff_ids.len(),
                    manifest.layers.len()
                ),
            ));
        }

        let mut size = manifest.config.size().unwrap_or(0);
        let mut layers = Vec::new();
        for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
            let blob = layer.digest().ok_or_else(|| {
                bad(
                    "manifest".into(),
                    format!("layer digest {:?} is not sha256", layer.digest),
                )
            })?;
            if !manifest::is_layer(&layer.media_type) {
                return Err(ImageError::UnsupportedMediaType {
                    media_type: layer.media_type.clone(),
                    digest: layer.digest.clone(),
                });
            }
            let diff_id = Digest::parse(diff_id).ok_or_else(|| {
                bad(
                    format!("config {config_digest}"),
                    format!("diff id {diff_id:?} is not sha256"),
                )
            })?;
            self.fetch_blob(&session, &blob, layer.size())?;
            self.layers
                .ensure(&diff_id, &self.content.path(&blob), &blob)?;
            size += layer.size().unwrap_or(0);
            blobs.push(blob);
            layers.push(diff_id.to_string());
        }

        let summary = config
            .config
            .map(ImageConfigSummary::from)
            .unwrap_or_default();
        let record = ImageRecord {
            id: config_digest.to_string(),
            repo_tags: reference
                .tag
                .iter()
                .map(|t| format!("{}:{t}", reference.name()))
                .collect(),
            repo_digests: vec![format!("{}@{top_digest}", reference.name())],
            size,
            config: summary,
            layers,
            pinned: false,
            blobs: blobs.iter().map(|d| d.to_string()).collect(),
        };
        self.commit(record)
    }

    /// Stores `doc` and follows indexes down to the linux/amd64 manifest.
    fn follow_index(
        &self,
        reference: &Reference,
        session: &Session,
        mut doc: Fetched,
        blobs: &mut Vec<Digest>,
    ) -> Result<Fetched, ImageError> {
        for _ in 0..MAX_INDEX_DEPTH {
            self.content.put(&doc.digest, &doc.body)?;
            blobs.push(doc.digest.clone());
            match manifest::kind_of(&doc.media_type) {
                Some(Kind::Manifest) => return Ok(doc),
                Some(Kind::Index) => {
                    let index: Index =
                        serde_json::from_slice(&doc.body).map_err(|e| ImageError::BadResponse {
                            host: reference.registry.clone(),
                            what: format!("index {}", doc.digest),
                            reason: e.to_string(),
                        })?;
                    let entry =
                        index
                            .linux_amd64()
                            .ok_or_else(|| ImageError::NoMatchingPlatform {
                                reference: reference.to_string(),
                                digest: doc.digest.to_string(),
                            })?;
                    let child = entry.digest().ok_or_else(|| ImageError::BadResponse {
                        host: reference.registry.clone(),
                        what: format!("index {}", doc.digest),
                        reason: format!("manifest digest {:?} is not sha256", entry.digest),
                    })?;
                    doc = session.manifest(&child)?;
                }
                None => {
                    return Err(ImageError::UnsupportedMediaType {
                        media_type: doc.media_type.clone(),
                        digest: doc.digest.to_string(),
                    })
                }
            }
        }
        Err(ImageError::BadResponse {
            host: reference.registry.clone(),
            what: format!("index {}", doc.digest),
            reason: format!("indexes nested deeper than {MAX_INDEX_DEPTH}"),
        })
    }

    fn fetch_blob(
        &self,
        session: &Session,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<(), ImageError> {
        if self.content.has(digest) {
            return Ok(());
        }
        session.blob(digest, &mut |reader| {
            self.content.ingest(digest, size, reader)
        })
    }

    /// Writes the pulled image's record, merged with an existing one for the same id;
    /// its tag moves off any other image.
    fn commit(&self, pulled: ImageRecord) -> Result<ImageRecord, ImageError> {
        let _w = lock(&self.write);
        for mut other in self.records.load_all()? {
            if other.id != pulled.id && other.repo_tags.iter().any(|t| pulled.repo_tags.contains(t))
            {
                other.repo_tags.retain(|t| !pulled.repo_tags.contains(t));
                self.records.write(&other)?;
            }
        }
        let id = Digest::parse(&pulled.id).ok_or_else(|| ImageError::NotFound {
            name: pulled.id.clone(),
        })?;
        // A record damaged by a power loss is replaced by what was just pulled.
        let record = match self.records.get(&id).unwrap_or(None) {
            None => pulled,
            Some(mut existing) => {
                merge(&mut existing.repo_tags, pulled.repo_tags);
                merge(&mut existing.repo_digests, pulled.repo_digests);
                merge(&mut existing.blobs, pulled.blobs);
                existing
            }
        };
        self.records.write(&record)?;
        Ok(record)
    }

    /// Every image.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageError> {
        self.records.load_all()
    }

    /// Finds an image by id (`sha256:<hex>`, `<hex>`, or a unique prefix of at least 12
    /// hex digits), by `repo:tag` or by `repo@digest` (names normalized as for pull).
    pub fn get(&self, name_or_id: &str) -> Result<Option<ImageRecord>, ImageError> {
        let all = self.records.load_all()?;
        if let Some(id) = Digest::parse(name_or_id).or_else(|| Digest::from_hex(name_or_id)) {
            if let Some(r) = all.iter().find(|r| r.id == id.as_str()) {
                return Ok(Some(r.clone()));
            }
        }
        if let Ok(reference) = Reference::parse(name_or_id) {
            let found = match (&reference.digest, &reference.tag) {
                (Some(d), _) => {
                    let wanted = format!("{}@{d}", reference.name());
                    all.iter().find(|r| r.repo_digests.contains(&wanted))
                }
                (None, Some(_)) => {
                    let wanted = reference.to_string();
                    all.iter().find(|r| r.repo_tags.contains(&wanted))
                }
                (None, None) => None,
            };
            if let Some(r) = found {
                return Ok(Some(r.clone()));
            }
        }
        let hex = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
        let is_prefix = (12..64).contains(&hex.len())
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if is_prefix {
            let matches: Vec<_> = all
                .iter()
                .filter(|r| r.id["sha256:".len()..].starts_with(hex))
                .collect();
            match matches.len() {
                0 => {}
                1 => return Ok(Some(matches[0].clone())),
                count => {
                    return Err(ImageError::AmbiguousId {
                        prefix: name_or_id.to_string(),
                        count,
                    })
                }
            }
        }
        Ok(None)
    }

    /// Removes an image (all its names) and then everything no image needs any more.
    /// Unknown images are fine (CRI RemoveImage is idempotent).
    ///
    /// `layer_in_use(diff_id)` must say whether a container still uses a layer (the
    /// caller keeps each container's [`ImageRecord::layers`] from its creation): those
    /// stay on disk even when no image lists them, until a later remove or [`gc`](Self::gc).
    pub fn remove(
        &self,
        name_or_id: &str,
        layer_in_use: &dyn Fn(&str) -> bool,
    ) -> Result<(), ImageError> {
        let Some(record) = self.get(name_or_id)? else {
            return Ok(());
        };
        let _exclusive = self.gc.write().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = Digest::parse(&record.id) {
            let _w = lock(&self.write);
            self.records.delete(&id)?;
        }
        self.collect(layer_in_use)
    }

    /// Deletes blobs and layers that no image references and no container uses.
    pub fn gc(&self, layer_in_use: &dyn Fn(&str) -> bool) -> Result<(), ImageError> {
        let _exclusive = self.gc.write().unwrap_or_else(|p| p.into_inner());
        self.collect(layer_in_use)
    }

    fn collect(&self, layer_in_use: &dyn Fn(&str) -> bool) -> Result<(), ImageError> {
        let records = self.records.load_all()?;
        let blobs: HashSet<&str> = records
            .iter()
            .flat_map(|r| r.blobs.iter().map(String::as_str))
            .collect();
        let layers: HashSet<&str> = records
            .iter()
            .flat_map(|r| r.layers.iter().map(String::as_str))
            .collect();
        for blob in self.content.list()? {
            if !blobs.contains(blob.as_str()) {
                self.content.remove(&blob)?;
            }
        }
        for layer in self.layers.list()? {
            if !layers.contains(layer.as_str()) && !layer_in_use(layer.as_str()) {
                self.layers.remove(&layer)?;
            }
        }
        Ok(())
    }

    /// Marks an image pinned (kept by kubelet's image GC), e.g. the sandbox image.
    pub fn set_pinned(&self, name_or_id: &str, pinned: bool) -> Result<ImageRecord, ImageError> {
        let _w = lock(&self.write);
        let mut record = self.get(name_or_id)?.ok_or_else(|| ImageError::NotFound {
            name: name_or_id.to_string(),
        })?;
        record.pinned = pinned;
        self.records.write(&record)?;
        Ok(record)
    }

    /// The mountpoint of the filesystem holding the store (no walk of its contents).
    pub fn mountpoint(&self) -> Result<PathBuf, ImageError> {
        usage::mountpoint(&self.root)
    }

    /// Usage of `content/` and `layers/`, and the mount point of `root`.
    pub fn fs_info(&self) -> Result<FsUsage, ImageError> {
        let (used_bytes, inodes_used) =
            usage::walk(&[self.root.join("content"), self.root.join("layers")])?;
        Ok(FsUsage {
            mountpoint: self.mountpoint()?,
            used_bytes,
            inodes_used,
        })
    }

    /// The image's unpacked layer folders, bottom first (overlayfs wants the reverse).
    pub fn layer_dirs(&self, image: &ImageRecord) -> Result<Vec<PathBuf>, ImageError> {
        image
            .layers
            .iter()
            .map(|l| {
                let diff_id = Digest::parse(l).ok_or_else(|| ImageError::Record {
                    path: self.root.join("images"),
                    reason: format!("image {}: bad layer id {l:?}", image.id),
                })?;
                let dir = self.layers.dir(&diff_id);
                match dir.is_dir() {
                    true => Ok(dir),
                    false => Err(ImageError::io(
                        "find unpacked layer",
                        dir,
                        std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            format!("layer {l} of image {} is missing; pull it again", image.id),
                        ),
                    )),
                }
            })
            .collect()
    }
}

/// Appends the items of `more` that `list` lacks.
fn merge(list: &mut Vec<String>, more: Vec<String>) {
    for item in more {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}
