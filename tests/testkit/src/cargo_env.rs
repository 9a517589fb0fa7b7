//! A cargo started from a program that cargo started (xtask's nested builds, a test that
//! runs `cargo xtask`) must not see what cargo set for that program: build scripts that
//! declare `rerun-if-env-changed` on those variables (ring does, for `CARGO_MANIFEST_DIR`
//! and `CARGO_PKG_*`) rerun and rebuild everything above them. That made the first `cargo
//! xtask build` after `cargo xtask test` recompile xtask and its dependencies.

use std::process::Command;

/// What cargo sets for a package's program (`cargo run`, tests, build scripts), besides
/// the `CARGO_PKG_*` and `CARGO_BIN_EXE_*` families.
const SET_BY_CARGO: [&str; 8] = [
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
];

/// Removes from `cmd`'s environment what cargo set for the program running this.
pub fn clean_cargo_env(cmd: &mut Command) {
    for name in SET_BY_CARGO {
        cmd.env_remove(name);
    }
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("CARGO_PKG_") || text.starts_with("CARGO_BIN_EXE_") {
            cmd.env_remove(&name);
        }
    }
}
