//! `cargo xtask`: Berth's pipeline. A thin dispatcher, one file per task; the formats live
//! in `berth-image` and the root assembly in `berth-rootfs`, never here.

mod bench;
mod build;
mod compile;
mod esp;
mod fetch;
mod inspect;
mod keygen;
mod lock;
mod publish;
mod release;
mod run;
mod step;
mod test;
mod ui;
mod verify;
mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Build, inspect and test Berth node images"
)]
struct Cli {
    /// Only errors and the final result; no progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// The build time written into the image [default: $SOURCE_DATE_EPOCH, else the last
    /// commit's time]. Tests pass it here rather than in the environment, because build
    /// scripts of xtask's dependencies (ring, zstd-sys through cc) rerun when the
    /// variable changes, so the user's next `cargo xtask` would rebuild xtask.
    #[arg(long, global = true, value_name = "SECONDS")]
    source_date_epoch: Option<u64>,
    #[command(subcommand)]
    task: Task,
}

/// Image variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Variant {
    /// The production image: no shell.
    Default,
    /// Adds the `[packages] debug` set (busybox) for a root shell on the console.
    Debug,
    /// The debug variant plus the `[packages] test` set (Debian's containerd and runc),
    /// for VM tests of what a node's user adds; never released.
    Test,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Default => "default",
            Variant::Debug => "debug",
            Variant::Test => "test",
        }
    }

    /// The packages of `[packages]` this variant adds to `include`.
    pub fn extra_packages(self, packages: &berth_image::spec::PackagesSection) -> Vec<String> {
        let sets: &[&Vec<String>] = match self {
            Variant::Default => &[],
            Variant::Debug => &[&packages.debug],
            Variant::Test => &[&packages.debug, &packages.test],
        };
        sets.iter().flat_map(|set| set.iter().cloned()).collect()
    }

    /// Whether the image has the debug root shell on the console (busybox, `berth.debug`).
    pub fn has_shell(self) -> bool {
        self != Variant::Default
    }

    /// What the variant's disk, manifest and debuginfo names carry after the image name.
    pub fn file_suffix(self) -> &'static str {
        match self {
            Variant::Default => "",
            Variant::Debug => "-debug",
            Variant::Test => "-test",
        }
    }
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Boot the image N times and report the median time of each phase; with `--against
    /// debian`, Berth's debug image and a Debian 12 + systemd + containerd image alternately.
    Boot {
        /// The disk (default: out/berth.raw alone, the debug image built if needed against
        /// an anchor).
        #[arg(long)]
        image: Option<PathBuf>,
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long, value_enum)]
        against: Option<bench::Against>,
    },
    /// dm-verity hashing of a 1 GiB file: ours and `veritysetup format`, side by side.
    Verity,
    /// The CRI runtime next to containerd 1.6: pod start latency (20 pods) and daemon RSS.
    Cri,
    /// `release` of the built image into every format: time per step, sizes next to raw.
    Release {
        #[arg(long, default_value = "out/berth.raw")]
        image: PathBuf,
    },
}

#[derive(Subcommand)]
enum Task {
    /// Build the disk image: fetch, compile, rootfs, ext4, verity, ESP, disk.
    Build {
        #[arg(long, value_enum, default_value_t = Variant::Default)]
        variant: Variant,
        /// The image description.
        #[arg(long, default_value = "image.toml")]
        config: PathBuf,
        /// Where steps keep their cached outputs.
        #[arg(long, default_value = "target/berth")]
        work_dir: PathBuf,
        /// Where the disk and manifest are written.
        #[arg(long, default_value = "out")]
        out_dir: PathBuf,
        /// cargo's target folder for the image's binaries [default: WORK_DIR/cargo]; builds
        /// with different work folders may share one (cargo locks it).
        #[arg(long)]
        binaries_target_dir: Option<PathBuf>,
    },
    /// Show a disk's partition table, verify its roots' dm-verity trees, list their files.
    Inspect {
        image: PathBuf,
        /// Do not list the root's files.
        #[arg(long)]
        no_files: bool,
    },
    /// Build the image if needed and boot it under QEMU on this terminal's serial console.
    Run {
        #[arg(long, value_enum, default_value_t = Variant::Default)]
        variant: Variant,
        #[arg(long, default_value = "image.toml")]
        config: PathBuf,
        /// Boot this disk instead of building one.
        #[arg(long)]
        image: Option<PathBuf>,
        /// Write to the disk (default: a snapshot, the disk is not changed).
        #[arg(long)]
        persistent: bool,
        #[arg(long, default_value_t = 1024)]
        memory_mib: u32,
        #[arg(long, default_value_t = 2)]
        cpus: u32,
    },
    /// Refresh rootfs/packages.lock to what the Debian archive serves now.
    Lock {
        #[arg(long, default_value = "image.toml")]
        config: PathBuf,
    },
    /// Measure: `boot` (N boots under QEMU, split by phase) or `verity` (vs veritysetup).
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Run every test: formatting, clippy, unit tests and the image-building tests.
    Test,
    /// Turn the built disk into release artifacts (GCE, Azure, VMDK, qcow2, zstd), SHA256SUMS,
    /// SBOM and manifest.json, signed with --sign.
    Release(release::Args),
    /// Make an Ed25519 key pair for signing releases.
    Keygen(keygen::Args),
    /// Check a release folder: signature, checksums, root hash against the disk.
    Verify(verify::Args),
    /// Put a release into a cloud's image project.
    Publish(publish::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ui = ui::Ui::new(cli.quiet);
    let result = workspace::enter().and_then(|mut ws| {
        ws.source_date_epoch = cli.source_date_epoch;
        run_task(ws, &ui, cli.task)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            ui.clear();
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one task in the workspace.
fn run_task(ws: workspace::Workspace, ui: &ui::Ui, task: Task) -> anyhow::Result<()> {
    match task {
        Task::Build {
            variant,
            config,
            work_dir,
            out_dir,
            binaries_target_dir,
        } => build::run(
            &ws,
            ui,
            &build::Options {
                variant,
                config,
                work_dir,
                out_dir,
                binaries_target_dir,
            },
        )
        .map(|_| ()),
        Task::Run {
            variant,
            config,
            image,
            persistent,
            memory_mib,
            cpus,
        } => run::run(
            &ws,
            ui,
            &run::Options {
                build: build::Options {
                    variant,
                    config,
                    work_dir: "target/berth".into(),
                    out_dir: "out".into(),
                    binaries_target_dir: None,
                },
                image,
                persistent,
                memory_mib,
                cpus,
            },
        ),
        Task::Inspect { image, no_files } => inspect::run(ui, &image, !no_files),
        Task::Lock { config } => lock::run(&ws, ui, &config),
        Task::Test => test::run(&ws, ui),
        Task::Bench { what } => match what {
            BenchWhat::Boot {
                image,
                runs,
                against,
            } => bench::boot(&ws, ui, image.as_deref(), runs, against),
            BenchWhat::Verity => bench::verity(),
            BenchWhat::Cri => bench::cri(),
            BenchWhat::Release { image } => release::bench(&ws, ui, image),
        },
        Task::Release(args) => release::run(&ws, ui, &args),
        Task::Keygen(args) => keygen::run(&ws, ui, &args),
        Task::Verify(args) => verify::run(&ws, ui, &args),
        Task::Publish(args) => publish::run(&ws, ui, &args),
    }
}

#[cfg(test)]
mod tests {
    use super::Variant;
    use berth_image::spec::ImageSpec;

    #[test]
    fn the_test_variant_is_the_debug_one_plus_the_test_set() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../image.toml")).unwrap();
        let spec = ImageSpec::parse(&text, std::path::Path::new("image.toml")).unwrap();
        let packages = &spec.packages;
        assert!(Variant::Default.extra_packages(packages).is_empty());
        assert_eq!(Variant::Debug.extra_packages(packages), ["busybox-static"]);
        assert_eq!(
            Variant::Test.extra_packages(packages),
            ["busybox-static", "containerd", "runc"]
        );
        assert!(!Variant::Default.has_shell() && Variant::Test.has_shell());
        assert_eq!(Variant::Test.file_suffix(), "-test");
    }
}
