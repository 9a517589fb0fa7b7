//! The syntax of systemd unit files and drop-ins (systemd.syntax(7), conf-parser.c of
//! systemd 252), before any key is interpreted: sections, `Key=Value` assignments with
//! the file and line each came from, comments, continuation lines.
//!
//! Parsing never fails as a whole: a line systemd would ignore with a warning is ignored
//! here with a [`Diagnostic`] naming the file and line, so that one bad line (or one bad
//! unit) never stops a boot. What a key's value means is decided later, per key.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a line came from: the file and its 1-based line number (the first line of a
/// continued assignment).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    pub file: Arc<Path>,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One `Key=Value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub key: String,
    /// The value with surrounding whitespace removed; continuation lines joined with a
    /// space, as systemd joins them.
    pub value: String,
    pub at: Location,
}

/// All assignments of one section name in one file, in file order. Repeated sections
/// (`[Service]` twice) are merged into one, as systemd reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub assignments: Vec<Assignment>,
}

/// A parsed file: its sections in the order they first appeared.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    pub sections: Vec<Section>,
}

impl Document {
    /// Every assignment of `section`, in order.
    pub fn section<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Assignment> + 'a {
        self.sections
            .iter()
            .filter(move |s| s.name == name)
            .flat_map(|s| s.assignments.iter())
    }

    /// Appends `other`'s assignments after this document's, section by section (how a
    /// drop-in extends its unit).
    pub fn extend(&mut self, other: Document) {
        for section in other.sections {
            match self.sections.iter_mut().find(|s| s.name == section.name) {
                Some(mine) => mine.assignments.extend(section.assignments),
                None => self.sections.push(section),
            }
        }
    }
}

/// A line that was ignored, or a value that was refused, with where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub at: Location,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// Longest logical line systemd accepts (LONG_LINE_MAX, 1 MiB); longer ones are refused
/// rather than grown without bound.
pub const LONG_LINE_MAX: usize = 1024 * 1024;

/// Parses `text`, the contents of `file`. Ignored lines are returned as diagnostics.
pub fn parse(file: &Path, text: &str) -> (Document, Vec<Diagnostic>) {
    let file: Arc<Path> = Arc::from(file);
    let mut doc = Document::default();
    let mut diags = Vec::new();
    let mut current: Option<usize> = None;
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = raw.trim_matches(is_ws);
        let (start, mut logical) = match pending.take() {
            // Comment lines inside a continued line are skipped (systemd ≥ 240).
            Some(p) if trimmed.starts_with(['#', ';']) => {
                pending = Some(p);
                continue;
            }
            Some((start, mut acc)) => {
                acc.push_str(trimmed);
                (start, acc)
            }
            None => {
                if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
                    continue;
                }
                (number, trimmed.to_owned())
            }
        };
        if logical.len() > LONG_LINE_MAX {
            diags.push(Diagnostic {
                at: Location {
                    file: file.clone(),
                    line: start,
                },
                message: format!("line longer than {LONG_LINE_MAX} bytes, ignored"),
            });
            pending = None;
            continue;
        }
        // An odd number of trailing backslashes: the last one is not escaped, and the
        // line continues on the next, the backslash becoming a space.
        let trailing = logical.bytes().rev().take_while(|&b| b == b'\\').count();
        if trailing % 2 == 1 {
            logical.truncate(logical.len() - 1);
            logical.push(' ');
            pending = Some((start, logical));
            continue;
        }
        let at = Location {
            file: file.clone(),
            line: start,
        };
        line(
            &mut doc,
            &mut current,
            &mut diags,
            at,
            logical.trim_matches(is_ws),
        );
    }
    if let Some((start, logical)) = pending {
        let at = Location {
            file: file.clone(),
            line: start,
        };
        line(
            &mut doc,
            &mut current,
            &mut diags,
            at,
            logical.trim_matches(is_ws),
        );
    }
    (doc, diags)
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn line(
    doc: &mut Document,
    current: &mut Option<usize>,
    diags: &mut Vec<Diagnostic>,
    at: Location,
    text: &str,
) {
    if let Some(rest) = text.strip_prefix('[') {
        let Some(name) = rest.strip_suffix(']') else {
            diags.push(Diagnostic {
                at,
                message: format!("invalid section header '{text}'"),
            });
            *current = None;
            return;
        };
        if name.is_empty() || name.contains(['[', ']']) {
            diags.push(Diagnostic {
                at,
                message: format!("invalid section header '{text}'"),
            });
            *current = None;
            return;
        }
        *current = Some(match doc.sections.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                doc.sections.push(Section {
                    name: name.to_owned(),
                    assignments: Vec::new(),
                });
                doc.sections.len() - 1
            }
        });
        return;
    }
    let Some(index) = *current else {
        diags.push(Diagnostic {
            at,
            message: "assignment outside of any section, ignored".into(),
        });
        return;
    };
    let Some((key, value)) = text.split_once('=') else {
        diags.push(Diagnostic {
            at,
            message: format!("missing '=' in '{text}', ignored"),
        });
        return;
    };
    let key = key.trim_matches(is_ws);
    if key.is_empty() {
        diags.push(Diagnostic {
            at,
            message: "missing key before '=', ignored".into(),
        });
        return;
    }
    doc.sections[index].assignments.push(Assignment {
        key: key.to_owned(),
        value: value.trim_matches(is_ws).to_owned(),
        at,
    });
}

/// The file of a [`Location`] as an owned path (for error types that own their paths).
pub fn file_of(at: &Location) -> PathBuf {
    at.file.to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn doc(text: &str) -> (Document, Vec<Diagnostic>) {
        parse(Path::new("/u/a.service"), text)
    }

    fn pairs(d: &Document, section: &str) -> Vec<(String, String, usize)> {
        d.section(section)
            .map(|a| (a.key.clone(), a.value.clone(), a.at.line))
            .collect()
    }

    #[test]
    fn sections_keys_comments_and_whitespace() {
        let (d, diags) = doc(
            "# comment\n; also\n[Unit]\nDescription = A thing \n\n[Service]\nExecStart=/bin/true\r\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(
            pairs(&d, "Unit"),
            [("Description".into(), "A thing".into(), 4)]
        );
        assert_eq!(
            pairs(&d, "Service"),
            [("ExecStart".into(), "/bin/true".into(), 7)]
        );
    }

    #[test]
    fn repeated_sections_merge_in_order() {
        let (d, _) = doc("[Service]\nA=1\n[Unit]\nB=2\n[Service]\nA=3\n");
        assert_eq!(d.sections.len(), 2);
        let values: Vec<_> = pairs(&d, "Service").into_iter().map(|p| p.1).collect();
        assert_eq!(values, ["1", "3"]);
    }

    #[test]
    fn continuation_joins_with_a_space_and_skips_comments() {
        let (d, diags) = doc("[Service]\nExecStart=/bin/echo a \\\n  # not part\n  b\\\n c\nX=y\n");
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(
            pairs(&d, "Service"),
            [
                ("ExecStart".into(), "/bin/echo a  b c".into(), 2),
                ("X".into(), "y".into(), 6)
            ]
        );
    }

    #[test]
    fn a_double_backslash_at_the_end_is_not_a_continuation() {
        let (d, _) = doc("[S]\nA=x\\\\\nB=y\n");
        assert_eq!(pairs(&d, "S")[0].1, "x\\\\");
        assert_eq!(pairs(&d, "S")[1].1, "y");
    }

    #[test]
    fn continuation_at_end_of_file_is_kept() {
        let (d, _) = doc("[S]\nA=x \\");
        assert_eq!(pairs(&d, "S")[0].1, "x");
    }

    #[test]
    fn bad_lines_are_diagnostics_with_file_and_line() {
        let (d, diags) = doc("A=outside\n[Unit\n[Unit]\nnoequals\n=v\nGood=1\n");
        let lines: Vec<_> = diags.iter().map(|d| d.at.line).collect();
        assert_eq!(lines, [1, 2, 4, 5]);
        assert!(diags[2]
            .to_string()
            .starts_with("/u/a.service:4: missing '='"));
        assert_eq!(pairs(&d, "Unit"), [("Good".into(), "1".into(), 6)]);
    }

    #[test]
    fn empty_value_is_kept_as_empty() {
        let (d, _) = doc("[Service]\nExecStart=\n");
        assert_eq!(pairs(&d, "Service")[0].1, "");
    }

    proptest! {
        #[test]
        fn never_panics_and_lines_are_in_range(text in "(?s).{0,400}") {
            let (d, diags) = doc(&text);
            let count = text.split('\n').count();
            for a in d.sections.iter().flat_map(|s| s.assignments.iter()) {
                prop_assert!(a.at.line >= 1 && a.at.line <= count);
                prop_assert!(!a.key.is_empty());
            }
            for g in diags {
                prop_assert!(g.at.line >= 1 && g.at.line <= count);
            }
        }

        #[test]
        fn written_assignments_read_back(
            entries in proptest::collection::vec(("[A-Z][A-Za-z]{0,12}", "[a-z0-9/ =.-]{0,20}"), 0..10)
        ) {
            let mut text = String::from("[Service]\n");
            for (k, v) in &entries {
                text.push_str(&format!("{k}={v}\n"));
            }
            let (d, diags) = doc(&text);
            prop_assert!(diags.is_empty());
            let got: Vec<_> = d.section("Service").map(|a| (a.key.clone(), a.value.clone())).collect();
            let want: Vec<_> = entries.iter().map(|(k, v)| (k.clone(), v.trim().to_owned())).collect();
            prop_assert_eq!(got, want);
        }
    }
}
