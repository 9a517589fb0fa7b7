//! `cargo xtask bench boot --against debian` as a user runs it, once per CI run: the Debian
//! anchor is built (debootstrap; cached afterwards), both systems boot once and are probed,
//! and the side-by-side table comes out whole. Figures are printed, never compared with a
//! threshold: this only proves that the bench works from a fresh clone.

use berth_tests::{run_ok, vm_tests_skipped, xtask_as_typed};

/// The rows of the table, each with Berth's median, Debian's and their ratio.
const ROWS: &[&str] = &[
    "firmware + loader (wall)",
    "kernel to /init",
    "initramfs to PID 1",
    "PID 1 to CRI ready",
    "userspace to CRI ready",
    "kernel to network online",
    "RSS of PID 1",
    "RSS of logging",
    "RSS of the runtime",
    "userspace PSS",
    "root used",
];

#[test]
#[ignore = "builds a Debian image with debootstrap and boots two VMs (root, network to the Debian archive)"]
fn berth_and_debian_boot_side_by_side() {
    if vm_tests_skipped() {
        return;
    }
    let out = run_ok(&mut xtask_as_typed(&[
        "--quiet",
        "bench",
        "boot",
        "--against",
        "debian",
        "--runs",
        "1",
    ]))
    .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    println!("{table}");
    for row in ROWS {
        let line = table
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no row {row:?} in:\n{table}"));
        let numbers: Vec<f64> = line[row.len()..]
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        assert_eq!(numbers.len(), 3, "{line}");
        assert!(
            numbers.iter().all(|n| n.is_finite() && *n > 0.0),
            "a figure is missing or zero: {line}"
        );
    }
    for system in ["berth", "debian"] {
        let line = table
            .lines()
            .find(|l| l.starts_with(&format!("PSS by process, {system}'s")))
            .unwrap_or_else(|| panic!("no PSS list of {system} in:\n{table}"));
        let runtime = if system == "berth" {
            "berth-runtime"
        } else {
            "containerd"
        };
        assert!(line.contains(runtime), "{line}");
    }
}
