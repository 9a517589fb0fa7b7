//! journalctl's output formats (`-o`), rendered as systemd 252 renders them: `short`,
//! `short-iso`, `short-precise`, `short-monotonic`, `cat`, `json`, `json-pretty`,
//! `export` and `verbose`. Times are UTC (a Berth node has no other zone).

use std::fmt::Write;

use crate::entry::Entry;
use crate::time;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Short,
    ShortIso,
    ShortPrecise,
    ShortMonotonic,
    Cat,
    Json,
    JsonPretty,
    Export,
    Verbose,
}

impl Format {
    pub fn parse(name: &str) -> Option<Format> {
        Some(match name {
            "short" => Format::Short,
            "short-iso" => Format::ShortIso,
            "short-precise" => Format::ShortPrecise,
            "short-monotonic" => Format::ShortMonotonic,
            "cat" => Format::Cat,
            "json" => Format::Json,
            "json-pretty" => Format::JsonPretty,
            "export" => Format::Export,
            "verbose" => Format::Verbose,
            _ => return None,
        })
    }
}

/// Whether journalctl prints `-- Boot ID --` between boots in `format` (the formats for
/// people, not cat or the machine formats).
pub fn separates_boots(format: Format) -> bool {
    matches!(
        format,
        Format::Short
            | Format::ShortIso
            | Format::ShortPrecise
            | Format::ShortMonotonic
            | Format::Verbose
    )
}

/// `e` in `format`, ending with a newline (export: with its blank line).
pub fn render(e: &Entry, format: Format) -> Vec<u8> {
    match format {
        Format::Short | Format::ShortIso | Format::ShortPrecise | Format::ShortMonotonic => {
            short(e, format).into_bytes()
        }
        Format::Cat => {
            let mut out = e.field("MESSAGE").unwrap_or_default().to_vec();
            out.push(b'\n');
            out
        }
        Format::Json => json(e, false).into_bytes(),
        Format::JsonPretty => json(e, true).into_bytes(),
        Format::Export => export(e),
        Format::Verbose => verbose(e).into_bytes(),
    }
}

/// Printable text, as systemd's `utf8_is_printable` decides (newlines and tabs allowed).
fn printable(v: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(v).ok()?;
    s.chars()
        .all(|c| c == '\n' || c == '\t' || !c.is_control())
        .then_some(s)
}

fn blob(v: &[u8]) -> String {
    format!("[{} blob data]", bytes(v.len() as u64))
}

/// systemd's `format_bytes`: `64B`, `1.5K`, `12.0M`.
fn bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 6] = [
        ("E", 1 << 60),
        ("P", 1 << 50),
        ("T", 1 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ];
    for (suffix, factor) in UNITS {
        if n >= factor {
            let tenths = n * 10 / factor;
            return format!("{}.{}{suffix}", tenths / 10, tenths % 10);
        }
    }
    format!("{n}B")
}

fn short(e: &Entry, format: Format) -> String {
    let stamp = match format {
        Format::ShortIso => time::iso(e.realtime),
        Format::ShortPrecise => time::short(e.realtime, true),
        Format::ShortMonotonic => format!(
            "[{:5}.{:06}]",
            e.monotonic / 1_000_000,
            e.monotonic % 1_000_000
        ),
        _ => time::short(e.realtime, false),
    };
    let host = e.text("_HOSTNAME");
    let ident = e.text("SYSLOG_IDENTIFIER").or_else(|| e.text("_COMM"));
    let pid = e.text("SYSLOG_PID").or_else(|| e.text("_PID"));
    let mut prefix = stamp;
    if let Some(h) = host {
        prefix.push(' ');
        prefix.push_str(&h);
    }
    prefix.push(' ');
    prefix.push_str(ident.as_deref().unwrap_or("unknown"));
    if let (Some(p), false) = (pid, e.field("_TRANSPORT") == Some(b"kernel")) {
        let _ = write!(prefix, "[{p}]");
    }
    prefix.push_str(": ");
    let message = e.field("MESSAGE").unwrap_or_default();
    let text = match printable(message) {
        Some(t) => t.trim_end_matches('\n').to_owned(),
        None => blob(message),
    };
    let indent = " ".repeat(prefix.chars().count());
    let mut out = prefix;
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(&indent);
        }
        out.push_str(line);
    }
    out.push('\n');
    out
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_value(v: &[u8], out: &mut String) {
    match std::str::from_utf8(v)
        .ok()
        .filter(|s| !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t'))
    {
        Some(s) => json_string(s, out),
        None => {
            out.push('[');
            for (i, b) in v.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{b}");
            }
            out.push(']');
        }
    }
}

/// The address fields first, then every field; a field that occurs more than once is an
/// array of its values (as systemd prints it).
fn json(e: &Entry, pretty: bool) -> String {
    let mut names: Vec<&str> = Vec::new();
    for (n, _) in &e.fields {
        if n != "_BOOT_ID" && !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut push = |k: &str, v: String| pairs.push((k.to_owned(), v));
    let mut s = String::new();
    json_string(&e.cursor, &mut s);
    push("__CURSOR", std::mem::take(&mut s));
    json_string(&e.realtime.to_string(), &mut s);
    push("__REALTIME_TIMESTAMP", std::mem::take(&mut s));
    json_string(&e.monotonic.to_string(), &mut s);
    push("__MONOTONIC_TIMESTAMP", std::mem::take(&mut s));
    json_string(&e.boot_id, &mut s);
    push("_BOOT_ID", std::mem::take(&mut s));
    for name in names {
        let values: Vec<&[u8]> = e
            .fields
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect();
        let mut v = String::new();
        if values.len() == 1 {
            json_value(values[0], &mut v);
        } else {
            v.push('[');
            for (i, one) in values.iter().enumerate() {
                if i > 0 {
                    v.push(',');
                }
                json_value(one, &mut v);
            }
            v.push(']');
        }
        push(name, v);
    }
    let mut out = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        let mut key = String::new();
        json_string(k, &mut key);
        if pretty {
            out.push_str(if i == 0 { "\n\t" } else { ",\n\t" });
            let _ = write!(out, "{key} : {v}");
        } else {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}:{v}");
        }
    }
    out.push_str(if pretty { "\n}\n" } else { "}\n" });
    out
}

/// Journal Export Format: printable one-line fields as `NAME=value`, others
/// length-prefixed.
fn export(e: &Entry) -> Vec<u8> {
    let mut out = format!(
        "__CURSOR={}\n__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID={}\n",
        e.cursor, e.realtime, e.monotonic, e.boot_id
    )
    .into_bytes();
    for (name, value) in e.fields.iter().filter(|(n, _)| n != "_BOOT_ID") {
        out.extend_from_slice(name.as_bytes());
        if value.contains(&b'\n') || printable(value).is_none() {
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        } else {
            out.push(b'=');
        }
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

fn verbose(e: &Entry) -> String {
    let mut out = format!("{} [{}]\n", time::long(e.realtime, true), e.cursor);
    for (name, value) in &e.fields {
        match printable(value) {
            Some(t) => {
                // Later lines line up under the value, as systemd prints them.
                let indent = " ".repeat(4 + name.len() + 1);
                let t = t
                    .trim_end_matches('\n')
                    .replace('\n', &format!("\n{indent}"));
                let _ = writeln!(out, "    {name}={t}");
            }
            None => {
                let _ = writeln!(out, "    {name}={}", blob(value));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Entry {
        Entry {
            realtime: 1_796_444_358_000_005,
            monotonic: 5_123_456,
            boot_id: "0123456789abcdef0123456789abcdef".into(),
            cursor: "s=1;i=2;b=0123456789abcdef0123456789abcdef;m=4e2e80;t=5;x=6".into(),
            seqnum: 2,
            fields: vec![
                ("_HOSTNAME".into(), b"node".to_vec()),
                ("SYSLOG_IDENTIFIER".into(), b"kubelet".to_vec()),
                ("_PID".into(), b"42".to_vec()),
                ("PRIORITY".into(), b"6".to_vec()),
                ("MESSAGE".into(), b"two\nlines".to_vec()),
                ("TAG".into(), b"a".to_vec()),
                ("TAG".into(), vec![0, 1]),
            ],
        }
    }

    #[test]
    fn short_formats() {
        let e = sample();
        let s = String::from_utf8(render(&e, Format::Short)).expect("utf-8");
        let indent = " ".repeat("Dec 05 04:19:18 node kubelet[42]: ".len());
        assert_eq!(
            s,
            format!("Dec 05 04:19:18 node kubelet[42]: two\n{indent}lines\n")
        );
        let m = String::from_utf8(render(&e, Format::ShortMonotonic)).expect("utf-8");
        assert!(m.starts_with("[    5.123456] node kubelet[42]: two"), "{m}");
        let iso = String::from_utf8(render(&e, Format::ShortIso)).expect("utf-8");
        assert!(iso.starts_with("2026-12-05T04:19:18+0000 node"), "{iso}");
        assert_eq!(render(&e, Format::Cat), b"two\nlines\n");
    }

    #[test]
    fn json_repeats_and_binary() {
        let j = String::from_utf8(render(&sample(), Format::Json)).expect("utf-8");
        assert!(j.starts_with("{\"__CURSOR\":\"s=1;"), "{j}");
        assert!(j.contains("\"MESSAGE\":\"two\\nlines\""), "{j}");
        assert!(j.contains("\"TAG\":[\"a\",[0,1]]"), "{j}");
        assert!(j.ends_with("}\n"));
    }

    #[test]
    fn export_length_prefixes_what_is_not_one_line_of_text() {
        let x = render(&sample(), Format::Export);
        let want = b"MESSAGE\n\x09\x00\x00\x00\x00\x00\x00\x00two\nlines\n";
        assert!(x.windows(want.len()).any(|w| w == want));
        assert!(x.ends_with(b"TAG\n\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\n\n"));
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes(64), "64B");
        assert_eq!(bytes(1536), "1.5K");
        assert_eq!(bytes(12 << 20), "12.0M");
    }
}
