//! `cargo xtask release`: the built disk into the release artifacts each cloud takes (GCE
//! tar.gz, Azure VHD, VMDK, qcow2, raw, zstd), with `SHA256SUMS`, the SBOM, the extended
//! manifest and, with `--sign`, its signature. The formats live in
//! `berth_image::release`; this task finds the inputs, checks them before writing
//! anything, and shows progress.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use berth_image::release::crates;
use berth_image::release::make::{self, Format, Progress};
use berth_image::release::manifest::ReleaseManifest;
use berth_image::release::qemu_img;
use berth_image::release::sign::SigningKey;
use clap::ValueEnum;

use crate::ui::{Step, Ui};
use crate::workspace::Workspace;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// The raw disk (AWS and others).
    Raw,
    /// `NAME-VERSION.tar.gz`: disk.raw in a GNU sparse tar, whole GiB (Compute Engine).
    Gce,
    /// Fixed VHD, whole MiB (Azure).
    Vhd,
    /// Stream-optimized VMDK (AWS, VMware), via qemu-img.
    Vmdk,
    /// qcow2 (local QEMU), via qemu-img.
    Qcow2,
    /// `NAME.raw.zst` (plain downloads).
    Zst,
}

impl FormatArg {
    fn format(self) -> Format {
        match self {
            FormatArg::Raw => Format::Raw,
            FormatArg::Gce => Format::Gce,
            FormatArg::Vhd => Format::Vhd,
            FormatArg::Vmdk => Format::Vmdk,
            FormatArg::Qcow2 => Format::Qcow2,
            FormatArg::Zst => Format::Zst,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Sign manifest.json with this Ed25519 private key (PKCS#8, from `cargo xtask keygen`).
    #[arg(long, value_name = "KEY")]
    pub sign: Option<PathBuf>,
    /// The built disk.
    #[arg(long, default_value = "out/berth.raw")]
    pub image: PathBuf,
    /// The disk's build manifest [default: the manifest*.json next to it that lists it].
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Where the artifacts go (their own folder: the release's manifest.json is not the
    /// build's).
    #[arg(long, default_value = "out/release")]
    pub out_dir: PathBuf,
    /// Only this format (repeat for more) [default: all]. SHA256SUMS, manifest.json and
    /// the SBOM are always written.
    #[arg(long = "format", value_enum)]
    pub formats: Vec<FormatArg>,
}

pub fn run(ws: &Workspace, ui: &Ui, args: &Args) -> Result<()> {
    let started = Instant::now();
    let image = ws.path(&args.image);
    let out_dir = ws.path(&args.out_dir);
    let mut formats: Vec<Format> = args.formats.iter().map(|f| f.format()).collect();
    if formats.is_empty() {
        formats = Format::ALL.to_vec();
    }
    formats.sort();
    formats.dedup();

    // Everything that can be wrong with the inputs, before anything is written.
    if !image.exists() {
        bail!(
            "{} does not exist: build it first with `cargo xtask build`",
            image.display()
        );
    }
    let manifest_path = match &args.manifest {
        Some(path) => ws.path(path),
        None => find_manifest(&image)?,
    };
    let manifest = ReleaseManifest::read(&manifest_path)?;
    let key = args
        .sign
        .as_ref()
        .map(|path| SigningKey::read(&ws.path(path)))
        .transpose()?;
    let mut tools = Vec::new();
    if formats.contains(&Format::Vmdk) || formats.contains(&Format::Qcow2) {
        tools.push(
            qemu_img::version().context(
                "the vmdk and qcow2 formats need qemu-img (leave them out with --format)",
            )?,
        );
    }
    let lock =
        std::fs::read_to_string(ws.root.join("Cargo.lock")).context("cannot read Cargo.lock")?;
    let mut roots: Vec<&str> = crate::compile::IMAGE_BINARIES.iter().map(|b| b.0).collect();
    roots.dedup();
    let crates = crates::from_lock(&lock, &roots).map_err(anyhow::Error::msg)?;
    let progress = UiProgress::new(ui);
    make::check_disk(&image, &manifest, &progress)?;

    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let tool = format!("berth-xtask-{}", env!("CARGO_PKG_VERSION"));
    let artifacts = make::make(
        &make::Input {
            disk: &image,
            manifest: &manifest,
            out_dir: &out_dir,
            formats: &formats,
            crates: &crates,
            key: key.as_ref(),
            tool: &tool,
            tools: &tools,
            zstd_workers: workers,
        },
        &progress,
    )?;
    drop(progress);

    let raw = manifest.facts.disk.size;
    if ui.quiet() {
        for a in &artifacts {
            println!("{}", out_dir.join(&a.name).display());
        }
    } else {
        println!("{:<28} {:>14} {:>8}", "artifact", "bytes", "of raw");
        for a in &artifacts {
            println!(
                "{:<28} {:>14} {:>7.2}%",
                a.name,
                a.size,
                a.size as f64 * 100.0 / raw as f64
            );
        }
        if key.is_some() {
            println!("{:<28} signed", "manifest.json.sig");
        }
        ui.say(&format!(
            "released {} into {} in {:.1}s",
            image.display(),
            out_dir.display(),
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(())
}

/// `cargo xtask bench release`: a release of `image` into every format, unsigned, into a
/// fresh `target/bench-release`; `run` prints the time of each step and the sizes.
pub fn bench(ws: &Workspace, ui: &Ui, image: PathBuf) -> Result<()> {
    let out_dir = ws.root.join("target/bench-release");
    if out_dir.exists() {
        std::fs::remove_dir_all(&out_dir)
            .with_context(|| format!("cannot empty {}", out_dir.display()))?;
    }
    let args = Args {
        sign: None,
        image,
        manifest: None,
        out_dir,
        formats: Vec::new(),
    };
    run(ws, &Ui::new(false), &args).map(|()| {
        if ui.quiet() {
            println!("{}", args.out_dir.display());
        }
    })
}

/// The `manifest*.json` next to `image` that lists it (`manifest.json` first).
fn find_manifest(image: &Path) -> Result<PathBuf> {
    let dir = image.parent().unwrap_or(Path::new("."));
    let name = image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            n.starts_with("manifest") && n.ends_with(".json")
        })
        .collect();
    candidates.sort_by_key(|p| (p.file_name() != Some("manifest.json".as_ref()), p.clone()));
    for path in candidates {
        if let Ok(m) = ReleaseManifest::read(&path) {
            if m.facts.artifact(&name).is_some() {
                return Ok(path);
            }
        }
    }
    bail!(
        "no build manifest for {name} in {} (a manifest*.json listing it): build with `cargo xtask build`, or pass --manifest",
        dir.display()
    )
}

/// Release progress on xtask's steps: one step at a time.
struct UiProgress<'a> {
    ui: &'a Ui,
    step: Mutex<Option<Step>>,
}

impl<'a> UiProgress<'a> {
    fn new(ui: &'a Ui) -> Self {
        UiProgress {
            ui,
            step: Mutex::new(None),
        }
    }

    fn with(&self, f: impl FnOnce(&mut Option<Step>)) {
        if let Ok(mut step) = self.step.lock() {
            f(&mut step);
        }
    }
}

impl Progress for UiProgress<'_> {
    fn begin(&self, step: &str, total: u64) {
        let new = if total > 0 {
            self.ui.step_bytes(step, total)
        } else {
            self.ui.step(step)
        };
        self.with(|s| *s = Some(new));
    }

    fn advance(&self, done: u64) {
        self.with(|s| {
            if let Some(step) = s {
                step.set_position(done);
            }
        });
    }

    fn end(&self, summary: &str) {
        self.with(|s| {
            if let Some(step) = s.take() {
                step.finish(summary);
            }
        });
    }
}
