//! `SHA256SUMS`: the format `sha256sum` writes and `sha256sum -c` checks, so a user needs
//! no Berth tool to check a download: one line per file, sorted by name, the hex digest,
//! two spaces, the file name.

use super::Artifact;

/// The text of `SHA256SUMS` for `artifacts` (sorted by name).
pub fn render(artifacts: &[Artifact]) -> String {
    let mut lines: Vec<(&str, &str)> = artifacts
        .iter()
        .map(|a| (a.name.as_str(), a.sha256.as_str()))
        .collect();
    lines.sort();
    lines
        .iter()
        .map(|(name, sha)| format!("{sha}  {name}\n"))
        .collect()
}

/// Parses `sha256sum` output (text `"  "` or binary `" *"` mode) into (name, hex digest)
/// pairs; an error names the first bad line.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || format!("line {}: not \"<sha256>  <file>\": {line:?}", i + 1);
        let (sha, rest) = line.split_at_checked(64).ok_or_else(bad)?;
        let name = rest
            .strip_prefix("  ")
            .or_else(|| rest.strip_prefix(" *"))
            .ok_or_else(bad)?;
        if !sha.bytes().all(|b| b.is_ascii_hexdigit()) || name.is_empty() {
            return Err(bad());
        }
        out.push((name.to_string(), sha.to_ascii_lowercase()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn sha256sum_checks_what_we_write_and_we_read_what_it_writes() {
        let dir = tempfile::tempdir().unwrap();
        let mut artifacts = Vec::new();
        for (name, body) in [("b.img", "bee"), ("a.tar.gz", "a")] {
            std::fs::write(dir.path().join(name), body).unwrap();
            artifacts.push(Artifact {
                name: name.into(),
                size: body.len() as u64,
                sha256: crate::manifest::sha256_file(&dir.path().join(name)).unwrap(),
            });
        }
        let text = render(&artifacts);
        assert!(
            text.starts_with(&artifacts[1].sha256),
            "sorted by name: {text}"
        );
        std::fs::write(dir.path().join("SHA256SUMS"), &text).unwrap();
        let out = Command::new("sha256sum")
            .args(["-c", "SHA256SUMS"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );

        let out = Command::new("sha256sum")
            .args(["a.tar.gz", "b.img"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let parsed = parse(&String::from_utf8_lossy(&out.stdout)).unwrap();
        assert_eq!(parsed, parse(&text).unwrap());
        assert!(parse("abc  x\n").unwrap_err().contains("line 1"));
    }
}
