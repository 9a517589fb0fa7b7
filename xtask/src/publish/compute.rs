//! Compute Engine `images.insert` from an uploaded disk
//! (<https://cloud.google.com/compute/docs/reference/rest/v1/images/insert>), then the
//! operation followed to its end with `globalOperations.wait`.
//!
//! Never a half-created image: the insert carries a `requestId`, so retrying it cannot make
//! two; an image whose operation fails, or that is not READY when it ends, or whose
//! operation cannot be followed to the end, is deleted (and the deletion followed too),
//! and the error says what happened to it. An image that existed before (409) is left
//! alone.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use super::api::{GuestOsFeature, Image, ImageInsert, Operation, RawDisk};
use super::http::{encode, Client, Request, Response};

/// Features Berth images support: UEFI boot (systemd-boot), multiqueue virtio-scsi and the
/// gVNIC network device (the cloud kernel has the drivers).
pub const GUEST_OS_FEATURES: [&str; 3] = ["UEFI_COMPATIBLE", "VIRTIO_SCSI_MULTIQUEUE", "GVNIC"];

/// The image to create.
pub struct NewImage<'a> {
    pub compute_url: &'a str,
    pub project: &'a str,
    pub name: &'a str,
    pub family: Option<&'a str>,
    pub description: String,
    pub labels: BTreeMap<String, String>,
    /// `https://storage.googleapis.com/BUCKET/OBJECT`, the form rawDisk.source takes.
    pub source: String,
    /// Idempotency key of the insert.
    pub request_id: String,
    /// How long to follow the operation.
    pub timeout: Duration,
}

impl NewImage<'_> {
    /// The `Image` resource sent to images.insert.
    pub fn body(&self) -> ImageInsert<'_> {
        ImageInsert {
            name: self.name,
            description: &self.description,
            labels: &self.labels,
            raw_disk: RawDisk {
                source: self.source.clone(),
                container_type: "TAR",
            },
            guest_os_features: GUEST_OS_FEATURES
                .iter()
                .map(|kind| GuestOsFeature { kind })
                .collect(),
            architecture: "X86_64",
            family: self.family,
        }
    }

    fn global(&self, rest: &str) -> String {
        format!(
            "{}/compute/v1/projects/{}/global/{rest}",
            self.compute_url,
            encode(self.project)
        )
    }
}

/// Creates the image; returns the image resource once READY.
pub fn create_image(
    client: &Client,
    token: &str,
    image: &NewImage,
    say: &dyn Fn(&str),
) -> Result<Image> {
    let url = image.global(&format!("images?requestId={}", encode(&image.request_id)));
    let request = Request::new("POST", url)
        .bearer(token)
        .json(&image.body())?;
    let response = client.send_retrying(&request, || {
        Response::new(200, &operation("operation-dry-run", "RUNNING"))
    })?;
    if response.status == 409 {
        bail!(
            "image {} already exists in project {}; choose another name with --image-name",
            image.name,
            image.project
        );
    }
    if !response.is_success() {
        bail!(
            "images.insert of {} was refused (HTTP {}): {}",
            image.name,
            response.status,
            response.error_text()
        );
    }
    let started: Operation = response.json()?;
    say(&format!(
        "creating image {} (operation {})",
        image.name, started.name
    ));
    let result = wait(client, token, image, started).and_then(|done| {
        if let Some(errors) = done.errors() {
            return Err(anyhow!("the operation failed: {errors}"));
        }
        let found = get_image(client, token, image)?
            .ok_or_else(|| anyhow!("the operation ended but the image does not exist"))?;
        match found.status.as_deref() {
            Some("READY") => Ok(found),
            other => Err(anyhow!(
                "the operation ended with the image {}",
                other.unwrap_or("in no state")
            )),
        }
    });
    match result {
        Ok(found) => Ok(found),
        Err(e) => {
            let cleanup = match delete_if_exists(client, token, image) {
                Ok(true) => "the incomplete image was deleted".to_string(),
                Ok(false) => "no image was left behind".to_string(),
                Err(d) => format!(
                    "deleting the incomplete image failed too ({d:#}): delete {} by hand",
                    image.name
                ),
            };
            Err(e.context(format!("creating image {} failed; {cleanup}", image.name)))
        }
    }
}

/// A canned operation for dry runs.
fn operation(name: &str, status: &str) -> Operation {
    Operation {
        name: name.into(),
        status: status.into(),
        error: None,
    }
}

/// Follows an operation to DONE with `operations/NAME/wait`.
fn wait(
    client: &Client,
    token: &str,
    image: &NewImage,
    mut operation: Operation,
) -> Result<Operation> {
    let deadline = Instant::now() + image.timeout;
    while !operation.is_done() {
        if Instant::now() > deadline {
            bail!(
                "the operation is not done after {}s",
                image.timeout.as_secs()
            );
        }
        if operation.name.is_empty() {
            bail!("an operation without a name");
        }
        let name = operation.name.clone();
        let request = Request::new(
            "POST",
            image.global(&format!("operations/{}/wait", encode(&name))),
        )
        .bearer(token)
        .bytes(Vec::new(), "no body".into());
        let response = client
            .send_retrying(&request, || {
                Response::new(200, &self::operation(&name, "DONE"))
            })
            .with_context(|| format!("lost track of operation {name}"))?;
        if !response.is_success() {
            bail!(
                "following operation {name} failed (HTTP {}): {}",
                response.status,
                response.error_text()
            );
        }
        operation = response.json()?;
    }
    Ok(operation)
}

fn get_image(client: &Client, token: &str, image: &NewImage) -> Result<Option<Image>> {
    let request = Request::new(
        "GET",
        image.global(&format!("images/{}", encode(image.name))),
    )
    .bearer(token);
    let response = client.send_retrying(&request, || {
        let ready = Image {
            name: image.name.into(),
            status: Some("READY".into()),
            self_link: None,
        };
        Response::new(200, &ready)
    })?;
    match response.status {
        404 => Ok(None),
        s if (200..300).contains(&s) => Ok(Some(response.json()?)),
        s => bail!(
            "images.get of {} failed (HTTP {s}): {}",
            image.name,
            response.error_text()
        ),
    }
}

/// Deletes the image if it exists (following the delete to its end); true if it did.
fn delete_if_exists(client: &Client, token: &str, image: &NewImage) -> Result<bool> {
    if get_image(client, token, image)?.is_none() {
        return Ok(false);
    }
    let request = Request::new(
        "DELETE",
        image.global(&format!("images/{}", encode(image.name))),
    )
    .bearer(token);
    let response = client.send_retrying(&request, || {
        Response::new(200, &operation("operation-dry-run-delete", "DONE"))
    })?;
    if response.status == 404 {
        return Ok(false);
    }
    if !response.is_success() {
        bail!(
            "images.delete refused (HTTP {}): {}",
            response.status,
            response.error_text()
        );
    }
    let done = wait(client, token, image, response.json()?)?;
    if let Some(errors) = done.errors() {
        bail!("images.delete failed: {errors}");
    }
    Ok(true)
}
