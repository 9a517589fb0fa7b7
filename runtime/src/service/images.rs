//! The image calls: look up, list, pull, remove and measure images in the
//! [`ImageStore`](crate::oci_image::ImageStore). As with containerd, an image can be
//! removed while containers use it: the layers a container's rootfs stacks (kept in its
//! record) stay on disk until the last such container is removed.

use std::collections::HashSet;

use super::{Daemon, ServiceError};
use crate::oci_image::{Auth, FsUsage, ImageRecord};

impl Daemon {
    /// The layers some container's rootfs stacks.
    pub(crate) fn layers_in_use(&self) -> HashSet<String> {
        self.containers
            .all()
            .into_iter()
            .flat_map(|(_, c)| c.layers)
            .collect()
    }

    /// The image named `name` (a reference or an id), if it is in the store.
    pub fn image(&self, name: &str) -> Result<Option<ImageRecord>, ServiceError> {
        Ok(self.images.get(name)?)
    }

    /// Every image in the store.
    pub fn images(&self) -> Result<Vec<ImageRecord>, ServiceError> {
        Ok(self.images.list()?)
    }

    /// The sandbox image's id, if it is in the store (reported pinned, so the kubelet's
    /// image garbage collector keeps it).
    pub fn sandbox_image_id(&self) -> Option<String> {
        self.images
            .get(&self.config.sandbox_image)
            .ok()
            .flatten()
            .map(|sandbox| sandbox.id)
    }

    /// Pulls `name` with the request's credentials.
    pub fn pull_image(&self, name: &str, auth: Option<&Auth>) -> Result<ImageRecord, ServiceError> {
        Ok(self.images.pull(name, auth)?)
    }

    /// Removes the image `name` and what no image or container needs any more; an
    /// unknown image is fine (RemoveImage is idempotent).
    pub fn remove_image(&self, name: &str) -> Result<(), ServiceError> {
        let Some(record) = self.images.get(name)? else {
            return Ok(());
        };
        let in_use = self.layers_in_use();
        self.images
            .remove(&record.id, &|layer| in_use.contains(layer))?;
        Ok(())
    }

    /// The image filesystem's usage.
    pub fn image_fs_usage(&self) -> Result<FsUsage, ServiceError> {
        Ok(self.images.fs_info()?)
    }
}
