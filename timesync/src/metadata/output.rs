//! Writing what the metadata service said, each file atomically (a temporary file in
//! the same folder, created with its final mode, synced, renamed over the old one), so a
//! reader sees the old file or the new one, never a part. The user data may hold
//! secrets: it is created 0600 from the start, never readable by others even briefly.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{Metadata, MetadataError};

/// Where the host name goes (read by the network service for the host name precedence).
pub const HOSTNAME_FILE: &str = "/run/berth/metadata/hostname";
/// Where the user data goes (design.md).
pub const USER_DATA_FILE: &str = "/run/berth/user-data";

#[derive(Debug, Clone)]
pub struct Paths {
    pub hostname: PathBuf,
    pub user_data: PathBuf,
}

impl Default for Paths {
    fn default() -> Paths {
        Paths {
            hostname: HOSTNAME_FILE.into(),
            user_data: USER_DATA_FILE.into(),
        }
    }
}

/// Writes the host name (0644) and the user data (0600); without user data, removes a
/// stale file. Returns the files written.
pub fn write(metadata: &Metadata, paths: &Paths) -> Result<Vec<PathBuf>, MetadataError> {
    let mut written = Vec::new();
    write_atomic(
        &paths.hostname,
        format!("{}\n", metadata.hostname).as_bytes(),
        0o644,
    )?;
    written.push(paths.hostname.clone());
    match &metadata.user_data {
        Some(data) => {
            write_atomic(&paths.user_data, data, 0o600)?;
            written.push(paths.user_data.clone());
        }
        None => match fs::remove_file(&paths.user_data) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(MetadataError::Write {
                    path: paths.user_data.clone(),
                    source,
                })
            }
        },
    }
    Ok(written)
}

/// Replaces `path` with `contents`, created with `mode`.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), MetadataError> {
    let error = |source| MetadataError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(error)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_are_replaced_with_their_modes() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            hostname: dir.path().join("metadata/hostname"),
            user_data: dir.path().join("user-data"),
        };
        let meta = Metadata {
            hostname: "node-1".into(),
            user_data: Some(b"#cloud-config\n".to_vec()),
        };
        assert_eq!(write(&meta, &paths).unwrap().len(), 2);
        assert_eq!(fs::read_to_string(&paths.hostname).unwrap(), "node-1\n");
        assert_eq!(fs::read(&paths.user_data).unwrap(), b"#cloud-config\n");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&paths.user_data), 0o600);
        assert_eq!(mode(&paths.hostname), 0o644);

        let none = Metadata {
            user_data: None,
            ..meta
        };
        assert_eq!(write(&none, &paths).unwrap(), vec![paths.hostname.clone()]);
        assert!(!paths.user_data.exists());
        // No temporary file is left behind.
        assert_eq!(
            fs::read_dir(dir.path().join("metadata")).unwrap().count(),
            1
        );
    }
}
