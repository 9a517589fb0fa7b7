//! `cargo xtask publish gce`: the release's GCE tar.gz into a Cloud Storage bucket, then a
//! Compute Engine image made from it, in the image family if one is given, labelled with
//! the Berth version, variant and root hash.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::api::Image;
use super::auth::Credentials;
use super::compute::{self, NewImage};
use super::http::Client;
use super::storage::{self, Upload};
use anyhow::{bail, Context, Result};
use berth_image::manifest::sha256_file;
use berth_image::release::manifest::ReleaseManifest;

pub const STORAGE_URL: &str = "https://storage.googleapis.com";
pub const COMPUTE_URL: &str = "https://compute.googleapis.com";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Google Cloud project that gets the image.
    #[arg(long)]
    pub project: String,
    /// The Cloud Storage bucket the tar.gz is uploaded to.
    #[arg(long)]
    pub bucket: String,
    /// The image family (so `--image-family F` finds the newest).
    #[arg(long)]
    pub family: Option<String>,
    /// The release folder (from `cargo xtask release`).
    #[arg(long, default_value = "out")]
    pub dir: PathBuf,
    /// The image name [default: NAME-VERSION-ROOTHASH8, e.g. berth-0-1-0-3803832e].
    #[arg(long)]
    pub image_name: Option<String>,
    /// An extra label KEY=VALUE (repeat for more).
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Print every request instead of sending it.
    #[arg(long)]
    pub dry_run: bool,
    /// Cloud Storage API base URL [env BERTH_STORAGE_URL; default https://storage.googleapis.com].
    #[arg(long)]
    pub storage_url: Option<String>,
    /// Compute Engine API base URL [env BERTH_COMPUTE_URL; default https://compute.googleapis.com].
    #[arg(long)]
    pub compute_url: Option<String>,
    /// Upload chunk size in MiB (whole MiB; Cloud Storage wants multiples of 256 KiB).
    #[arg(long, default_value_t = 16)]
    pub chunk_mib: u64,
    /// How long to wait for the image to be created, in seconds.
    #[arg(long, default_value_t = 1800)]
    pub timeout: u64,
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    let (k, v) = text.split_once('=').ok_or("expected KEY=VALUE")?;
    Ok((k.to_string(), v.to_string()))
}

/// Everything `publish` needs, resolved.
pub struct Options {
    pub project: String,
    pub bucket: String,
    pub family: Option<String>,
    pub dir: PathBuf,
    pub image_name: Option<String>,
    pub labels: Vec<(String, String)>,
    pub storage_url: String,
    pub compute_url: String,
    pub chunk: u64,
    pub timeout: Duration,
}

impl Options {
    pub fn from_args(args: &Args, dir: PathBuf) -> Options {
        let url = |flag: &Option<String>, env: &str, default: &str| {
            flag.clone()
                .or_else(|| std::env::var(env).ok())
                .unwrap_or_else(|| default.to_string())
                .trim_end_matches('/')
                .to_string()
        };
        Options {
            project: args.project.clone(),
            bucket: args.bucket.clone(),
            family: args.family.clone(),
            dir,
            image_name: args.image_name.clone(),
            labels: args.labels.clone(),
            storage_url: url(&args.storage_url, "BERTH_STORAGE_URL", STORAGE_URL),
            compute_url: url(&args.compute_url, "BERTH_COMPUTE_URL", COMPUTE_URL),
            chunk: args.chunk_mib.max(1) << 20,
            timeout: Duration::from_secs(args.timeout),
        }
    }
}

/// Uploads and creates the image; returns the image resource.
pub fn publish(
    opts: &Options,
    client: &Client,
    creds: &Credentials,
    say: &dyn Fn(&str),
    progress: &dyn Fn(u64),
) -> Result<Image> {
    let manifest = ReleaseManifest::read(&opts.dir.join("manifest.json"))
        .context("publish needs a release folder: run `cargo xtask release` first")?;
    let facts = &manifest.facts;
    let artifact = facts
        .artifacts
        .iter()
        .find(|a| a.name.ends_with(".tar.gz"))
        .with_context(|| format!("{}: the release has no GCE tar.gz", opts.dir.display()))?;
    let file = opts.dir.join(&artifact.name);
    check_artifact(&file, &artifact.sha256)?;
    let name = match &opts.image_name {
        Some(name) => name.clone(),
        None => image_name(&facts.name, &facts.version, &facts.root_hash),
    };
    check_name(&name)?;
    let object = format!("{name}.tar.gz");

    let mut labels = BTreeMap::new();
    labels.insert("berth-version".to_string(), label_value(&facts.version));
    labels.insert("berth-variant".to_string(), label_value(&facts.variant));
    labels.insert(
        "berth-root-hash".to_string(),
        facts.root_hash.chars().take(32).collect(),
    );
    labels.extend(opts.labels.iter().cloned());

    say(&format!("token from {}", creds.describe()));
    let token = creds.token(client)?;
    say(&format!(
        "uploading {} to gs://{}/{object}",
        artifact.name, opts.bucket
    ));
    storage::upload(
        client,
        &token,
        &Upload {
            storage_url: &opts.storage_url,
            bucket: &opts.bucket,
            object: &object,
            file: &file,
            content_type: "application/gzip",
            chunk: opts.chunk,
        },
        progress,
    )?;
    let image = NewImage {
        compute_url: &opts.compute_url,
        project: &opts.project,
        name: &name,
        family: opts.family.as_deref(),
        description: format!(
            "Berth {} ({}), dm-verity root hash {}",
            facts.version, facts.variant, facts.root_hash
        ),
        labels,
        source: format!("{STORAGE_URL}/{}/{object}", opts.bucket),
        request_id: request_id()?,
        timeout: opts.timeout,
    };
    compute::create_image(client, &token, &image, say)
}

/// The artifact must be what the manifest says before it goes anywhere.
fn check_artifact(file: &Path, sha256: &str) -> Result<()> {
    let got = sha256_file(file)?;
    if got != sha256 {
        bail!(
            "{}: sha256 is {got}, the release manifest says {sha256}; run `cargo xtask release` again",
            file.display()
        );
    }
    Ok(())
}

/// `berth-0-1-0-3803832e`: a valid image name from the release's identity.
pub fn image_name(name: &str, version: &str, root_hash: &str) -> String {
    let raw = format!(
        "{name}-{version}-{}",
        root_hash.get(..8).unwrap_or(root_hash)
    );
    let mut out: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.insert_str(0, "berth-");
    }
    out.truncate(63);
    out.trim_end_matches('-').to_string()
}

/// Compute Engine's rule: `[a-z]([-a-z0-9]{0,61}[a-z0-9])?`.
fn check_name(name: &str) -> Result<()> {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        bail!("{name:?} is not a valid image name (lowercase letters, digits and '-', 1 to 63, starting with a letter)");
    }
    Ok(())
}

/// Label values: lowercase letters, digits, '-' and '_', at most 63.
fn label_value(text: &str) -> String {
    text.to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect()
}

/// A random UUID for the insert's idempotency key.
fn request_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow::anyhow!("no randomness for a request id"))?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string())
}
