//! `runtime.v1.ImageService` over [`ImageStore`](crate::oci_image::ImageStore). The sandbox
//! image is reported pinned, so the kubelet's image garbage collector keeps it. As with
//! containerd, an image can be removed while containers use it: their layers stay on
//! disk until the last such container is removed.

use std::collections::HashMap;

use tonic::{Request, Response, Status};

use super::{blocking, status, validate, Cri, Daemon};
use crate::oci_image::{Auth, ImageRecord};
use crate::proto::v1::image_service_server::ImageService;
use crate::proto::v1::*;

type Reply<T> = Result<Response<T>, Status>;

impl Daemon {
    /// The CRI view of `record`; `sandbox_id` is the sandbox image's id, reported pinned.
    fn image_message(record: &ImageRecord, sandbox_id: Option<&str>) -> Image {
        let (uid, username) = match record.config.user.split(':').next().unwrap_or("") {
            "" => (Some(Int64Value { value: 0 }), String::new()),
            user => match user.parse::<i64>() {
                Ok(value) => (Some(Int64Value { value }), String::new()),
                Err(_) => (None, user.to_owned()),
            },
        };
        let pinned = record.pinned || sandbox_id == Some(record.id.as_str());
        Image {
            id: record.id.clone(),
            repo_tags: record.repo_tags.clone(),
            repo_digests: record.repo_digests.clone(),
            size: record.size,
            uid,
            username,
            spec: Some(ImageSpec {
                image: record.id.clone(),
                ..Default::default()
            }),
            pinned,
        }
    }

    /// The layers some container's rootfs stacks.
    pub(crate) fn layers_in_use(&self) -> std::collections::HashSet<String> {
        self.containers
            .all()
            .into_iter()
            .flat_map(|(_, c)| c.layers)
            .collect()
    }

    /// The sandbox image's id, if it is in the store (looked up once per request).
    fn sandbox_image_id(&self) -> Option<String> {
        self.images
            .get(&self.config.sandbox_image)
            .ok()
            .flatten()
            .map(|sandbox| sandbox.id)
    }

    /// An error about the named image; a malformed name names the request field.
    fn about_image(err: crate::oci_image::ImageError) -> Status {
        let status = status(err);
        match status.code() {
            tonic::Code::InvalidArgument => {
                Status::invalid_argument(format!("image.image: {}", status.message()))
            }
            _ => status,
        }
    }

    fn image_named(&self, spec: Option<&ImageSpec>, field: &str) -> Result<String, Status> {
        let spec = validate::required(spec, field)?;
        Ok(validate::non_empty(&spec.image, &format!("{field}.image"))?.to_owned())
    }

    pub(super) fn list_images(
        &self,
        request: ListImagesRequest,
    ) -> Result<ListImagesResponse, Status> {
        let wanted = request
            .filter
            .and_then(|f| f.image)
            .map(|spec| spec.image)
            .filter(|name| !name.is_empty());
        let records = match wanted {
            Some(name) => self
                .images
                .get(&name)
                .map_err(status)?
                .into_iter()
                .collect(),
            None => self.images.list().map_err(status)?,
        };
        Ok(ListImagesResponse {
            images: {
                let sandbox = self.sandbox_image_id();
                records
                    .iter()
                    .map(|r| Self::image_message(r, sandbox.as_deref()))
                    .collect()
            },
        })
    }

    pub(super) fn image_status(
        &self,
        request: ImageStatusRequest,
    ) -> Result<ImageStatusResponse, Status> {
        let name = self.image_named(request.image.as_ref(), "image")?;
        // An unknown image is not an error here: the kubelet asks to decide whether to pull.
        let Some(record) = self.images.get(&name).map_err(Self::about_image)? else {
            return Ok(ImageStatusResponse::default());
        };
        let mut info = HashMap::new();
        if request.verbose {
            let config = serde_json::to_string(&record.config)
                .map_err(|e| Status::internal(format!("cannot encode image config: {e}")))?;
            info.insert("info".to_owned(), config);
        }
        Ok(ImageStatusResponse {
            image: Some(Self::image_message(
                &record,
                self.sandbox_image_id().as_deref(),
            )),
            info,
        })
    }

    pub(super) fn pull_image(
        &self,
        request: PullImageRequest,
    ) -> Result<PullImageResponse, Status> {
        let name = self.image_named(request.image.as_ref(), "image")?;
        let auth = request.auth.as_ref().map(Auth::from_cri);
        let record = self
            .images
            .pull(&name, auth.as_ref())
            .map_err(Self::about_image)?;
        Ok(PullImageResponse {
            image_ref: record.id,
        })
    }

    pub(super) fn remove_image(
        &self,
        request: RemoveImageRequest,
    ) -> Result<RemoveImageResponse, Status> {
        let name = self.image_named(request.image.as_ref(), "image")?;
        let Some(record) = self.images.get(&name).map_err(Self::about_image)? else {
            return Ok(RemoveImageResponse {});
        };
        let in_use = self.layers_in_use();
        self.images
            .remove(&record.id, &|layer| in_use.contains(layer))
            .map_err(status)?;
        Ok(RemoveImageResponse {})
    }

    pub(super) fn image_fs_info(
        &self,
        _: ImageFsInfoRequest,
    ) -> Result<ImageFsInfoResponse, Status> {
        let usage = self.images.fs_info().map_err(status)?;
        let filesystem = FilesystemUsage {
            timestamp: super::records::now_nanos(),
            fs_id: Some(FilesystemIdentifier {
                mountpoint: usage.mountpoint.display().to_string(),
            }),
            used_bytes: Some(UInt64Value {
                value: usage.used_bytes,
            }),
            inodes_used: Some(UInt64Value {
                value: usage.inodes_used,
            }),
        };
        Ok(ImageFsInfoResponse {
            image_filesystems: vec![filesystem.clone()],
            container_filesystems: vec![filesystem],
        })
    }
}

#[tonic::async_trait]
impl ImageService for Cri {
    async fn list_images(&self, request: Request<ListImagesRequest>) -> Reply<ListImagesResponse> {
        let daemon = self.0.clone();
        let request = request.into_inner();
        blocking(move || daemon.list_images(request))
            .await
            .map(Response::new)
    }

    async fn image_status(
        &self,
        request: Request<ImageStatusRequest>,
    ) -> Reply<ImageStatusResponse> {
        let daemon = self.0.clone();
        let request = request.into_inner();
        blocking(move || daemon.image_status(request))
            .await
            .map(Response::new)
    }

    async fn pull_image(&self, request: Request<PullImageRequest>) -> Reply<PullImageResponse> {
        let daemon = self.0.clone();
        let request = request.into_inner();
        let image = request
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .unwrap_or_default();
        let reply = blocking(move || daemon.pull_image(request))
            .await
            .map(Response::new);
        super::logged(|| format!("PullImage {image:?}"), reply)
    }

    async fn remove_image(
        &self,
        request: Request<RemoveImageRequest>,
    ) -> Reply<RemoveImageResponse> {
        let daemon = self.0.clone();
        let request = request.into_inner();
        blocking(move || daemon.remove_image(request))
            .await
            .map(Response::new)
    }

    async fn image_fs_info(
        &self,
        request: Request<ImageFsInfoRequest>,
    ) -> Reply<ImageFsInfoResponse> {
        let daemon = self.0.clone();
        let request = request.into_inner();
        blocking(move || daemon.image_fs_info(request))
            .await
            .map(Response::new)
    }
}
