//! `cargo xtask publish`: a release into a cloud's image project. `gce` exists: upload
//! with the Cloud Storage JSON API, image with Compute Engine's images.insert. AWS and
//! Azure are not written yet; their artifacts (VMDK/raw, VHD) are in every release.
//!
//! The HTTP clients are small and blocking (ureq), the API base URLs configurable so the
//! tests run the whole flow against a local server that checks every request. Requests
//! and responses are typed (`api.rs`); `http.rs` turns them into bytes and back.

mod api;
mod auth;
mod compute;
mod gce;
mod http;
mod storage;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod fake_api;
#[cfg(test)]
mod tests;

use anyhow::Result;

use crate::ui::Ui;
use crate::workspace::Workspace;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub cloud: Cloud,
}

#[derive(Debug, clap::Subcommand)]
pub enum Cloud {
    /// Upload the GCE tar.gz to Cloud Storage and create a Compute Engine image from it.
    Gce(gce::Args),
}

pub fn run(ws: &Workspace, ui: &Ui, args: &Args) -> Result<()> {
    match &args.cloud {
        Cloud::Gce(args) => {
            let opts = gce::Options::from_args(args, ws.path(&args.dir));
            let client = if args.dry_run {
                http::Client::dry_run(Box::new(std::io::stdout()))
            } else {
                http::Client::new(http::Backoff::DEFAULT)
            };
            let creds = match auth::Credentials::discover() {
                Ok(creds) => creds,
                Err(e) if args.dry_run => {
                    ui.say(&format!("(dry run: {e:#}; using gcloud)"));
                    auth::Credentials::Gcloud
                }
                Err(e) => return Err(e),
            };
            let step = ui.step("publish");
            let image = gce::publish(&opts, &client, &creds, &|line| step.message(line), &|n| {
                step.message(&format!("uploaded {} MiB", n >> 20))
            })?;
            step.finish("image created");
            let link = image.self_link.as_deref().unwrap_or(&image.name);
            if args.dry_run {
                ui.say("dry run: nothing was sent");
            } else {
                println!("{link}");
            }
            Ok(())
        }
    }
}
