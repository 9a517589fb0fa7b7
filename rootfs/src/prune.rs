//! What of a package is left out of the root.
//!
//! The image has no shell users reading manuals and no package manager: documentation,
//! manuals, translations, completion scripts and charset converters only cost space and
//! verity blocks. Each package's `usr/share/doc/<pkg>/copyright` stays, because shipping a
//! binary means shipping its licence.

use std::path::{Component, Path, PathBuf};

/// Pruning rules, applied to paths after the merged-`/usr` mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prune {
    /// Folders dropped with everything under them.
    pub drop_trees: Vec<PathBuf>,
    /// Drop `usr/share/doc/**` except the folders `usr/share/doc/<pkg>` and the files
    /// `usr/share/doc/<pkg>/copyright`.
    pub docs_copyright_only: bool,
    /// The CNI plugin binaries kept in `usr/lib/cni` (`None`: all); see [`crate::cni`].
    pub cni_plugins: Option<Vec<String>>,
}

impl Default for Prune {
    fn default() -> Prune {
        let drop_trees = [
            "usr/share/man",
            "usr/share/info",
            "usr/share/locale",
            "usr/share/lintian",
            "usr/share/bug",
            "usr/share/bash-completion",
            "usr/share/zsh",
            // glibc's iconv converters (7.7 MiB): UTF-8 and ASCII are built into libc,
            // and nothing in the root converts other character sets.
            "usr/lib/x86_64-linux-gnu/gconv",
        ];
        Prune {
            drop_trees: drop_trees.iter().map(PathBuf::from).collect(),
            docs_copyright_only: true,
            cni_plugins: None,
        }
    }
}

impl Prune {
    /// Keeps everything.
    pub fn nothing() -> Prune {
        Prune {
            drop_trees: Vec::new(),
            docs_copyright_only: false,
            cni_plugins: None,
        }
    }

    /// Whether `path` (relative to the root) goes into the tree; `is_dir` is its type.
    pub fn keeps(&self, path: &Path, is_dir: bool) -> bool {
        if self.drop_trees.iter().any(|t| path.starts_with(t)) {
            return false;
        }
        if !crate::cni::keeps(self.cni_plugins.as_deref(), path, is_dir) {
            return false;
        }
        if self.docs_copyright_only {
            if let Ok(rest) = path.strip_prefix("usr/share/doc") {
                let parts: Vec<Component> = rest.components().collect();
                return match parts.as_slice() {
                    [] => true,
                    [_] => is_dir,
                    [_, name] => !is_dir && name.as_os_str() == "copyright",
                    _ => false,
                };
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules() {
        let p = Prune::default();
        let keeps = |s: &str, d: bool| p.keeps(Path::new(s), d);
        assert!(keeps("usr/share/doc", true));
        assert!(keeps("usr/share/doc/busybox", true));
        assert!(keeps("usr/share/doc/busybox/copyright", false));
        assert!(!keeps("usr/share/doc/busybox/changelog.Debian.gz", false));
        assert!(!keeps("usr/share/doc/busybox/examples", true));
        assert!(!keeps("usr/share/doc/busybox/examples/copyright", false));
        assert!(!keeps("usr/share/doc/libfoo", false)); // symlink to another doc folder
        assert!(!keeps("usr/share/man", true));
        assert!(!keeps("usr/share/man/man1/ls.1.gz", false));
        assert!(!keeps("usr/share/locale/de/LC_MESSAGES/x.mo", false));
        assert!(keeps("usr/share/mandoc", true));
        assert!(keeps("usr/bin/ls", false));
        assert!(Prune::nothing().keeps(Path::new("usr/share/man/x"), false));
    }
}
