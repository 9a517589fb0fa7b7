//! Lines of the `*.d` configuration folders (`modules-load.d`, `sysctl.d`) as PID 1 reads
//! them; the builder checks the image's `modules-load.d` names with the same parser, so a
//! name the boot would fail on fails the build instead.

/// Meaningful lines: (1-based number, trimmed text), without blanks and `#`/`;` comments.
pub fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with(['#', ';']))
}

/// A `modules-load.d` line that is not a module name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not a module name")]
pub struct BadModuleName {
    pub line: usize,
    pub name: String,
}

/// The module names of a `modules-load.d` file, with their line numbers.
pub fn module_names(text: &str) -> Vec<Result<(usize, String), BadModuleName>> {
    lines(text)
        .map(|(line, name)| {
            let ok = name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            let name = name.to_owned();
            if ok {
                Ok((line, name))
            } else {
                Err(BadModuleName { line, name })
            }
        })
        .collect()
}
