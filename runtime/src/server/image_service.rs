//! `runtime.v1.ImageService`: each call checks the request's image field, calls the
//! service layer ([`crate::service::images`]) and encodes its records as CRI images. The
//! sandbox image is reported pinned, so the kubelet's image garbage collector keeps it.

use std::collections::HashMap;

use tonic::{Request, Response, Status};

use super::{blocking, status, validate, Cri, Daemon};
use crate::oci_image::{Auth, ImageRecord};
use crate::proto::v1::image_service_server::ImageService;
use crate::proto::v1::*;
use crate::service::ServiceError;

type Reply<T> = Result<Response<T>, Status>;

/// The pull's credentials, copied from the CRI `AuthConfig`.
fn auth_of(a: &AuthConfig) -> Auth {
    Auth {
        username: a.username.clone(),
        password: a.password.clone(),
        auth: a.auth.clone(),
        identity_token: a.identity_token.clone(),
        registry_token: a.registry_token.clone(),
        server_address: a.server_address.clone(),
    }
}

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

    /// An error about the named image; a malformed name names the request field.
    fn about_image(err: ServiceError) -> Status {
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
            Some(name) => self.image(&name)?.into_iter().collect(),
            None => self.images()?,
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
        let Some(record) = self.image(&name).map_err(Self::about_image)? else {
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

    pub(super) fn rpc_pull_image(
        &self,
        request: PullImageRequest,
    ) -> Result<PullImageResponse, Status> {
        let name = self.image_named(request.image.as_ref(), "image")?;
        let auth = request.auth.as_ref().map(auth_of);
        let record = self
            .pull_image(&name, auth.as_ref())
            .map_err(Self::about_image)?;
        Ok(PullImageResponse {
            image_ref: record.id,
        })
    }

    pub(super) fn rpc_remove_image(
        &self,
        request: RemoveImageRequest,
    ) -> Result<RemoveImageResponse, Status> {
        let name = self.image_named(request.image.as_ref(), "image")?;
        self.remove_image(&name).map_err(Self::about_image)?;
        Ok(RemoveImageResponse {})
    }

    pub(super) fn image_fs_info(
        &self,
        _: ImageFsInfoRequest,
    ) -> Result<ImageFsInfoResponse, Status> {
        let usage = self.image_fs_usage()?;
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
        let reply = blocking(move || daemon.rpc_pull_image(request))
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
        blocking(move || daemon.rpc_remove_image(request))
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
