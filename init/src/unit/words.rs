//! Splitting a value into words as systemd does (`extract_first_word()` of systemd 252):
//! whitespace separates words, single and double quotes group them (a quote may start in
//! the middle of a word: `a"b c"d` is `ab cd`), and C escapes (`\n`, `\x41`, `\u00e9`,
//! `\s` for a space...) are decoded where the key asks for it.
//!
//! Every key that takes a list (`After=`, `Environment=`, `ExecStart=`) goes through this
//! one splitter, so quoting means the same thing everywhere.

use thiserror::Error;

/// How to treat quotes and backslashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Remove quotes (`"a b"` is one word `a b`). Without it, quotes are ordinary characters.
    pub unquote: bool,
    /// Decode C escapes. Without it, `\x` yields `x`, unless `retain_escape`.
    pub cunescape: bool,
    /// Keep backslashes as written (for values that are unescaped later, such as unit names).
    pub retain_escape: bool,
}

impl Mode {
    /// `ExecStart=`, `Environment=`: quotes removed, C escapes decoded.
    pub const EXEC: Mode = Mode {
        unquote: true,
        cunescape: true,
        retain_escape: false,
    };
    /// Lists of names (`After=`, `Wants=`): quotes removed, backslashes kept.
    pub const NAMES: Mode = Mode {
        unquote: true,
        cunescape: false,
        retain_escape: true,
    };
}

/// A value that cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WordError {
    #[error("unterminated quote")]
    UnterminatedQuote,
    #[error("trailing backslash")]
    TrailingBackslash,
    #[error("invalid escape sequence '\\{0}'")]
    BadEscape(String),
}

fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Splits off the first word of `input`: `Ok(None)` when only whitespace is left.
/// Returns the word and the rest after it.
pub fn first_word(input: &str, mode: Mode) -> Result<Option<(String, &str)>, WordError> {
    let s = input.trim_start_matches(is_separator);
    if s.is_empty() {
        return Ok(None);
    }
    let mut word = String::new();
    let mut chars = s.char_indices().peekable();
    let mut quote: Option<char> = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                let rest = &s[i + 1..];
                if rest.is_empty() {
                    return Err(WordError::TrailingBackslash);
                }
                if mode.cunescape {
                    let (decoded, used) = cunescape_one(rest)?;
                    word.push_str(&decoded);
                    for _ in 0..rest[..used].chars().count() {
                        chars.next();
                    }
                } else {
                    let Some((_, next)) = chars.next() else {
                        return Err(WordError::TrailingBackslash);
                    };
                    if mode.retain_escape {
                        word.push('\\');
                    }
                    word.push(next);
                }
            }
            '\'' | '"' if mode.unquote && quote.is_none() => quote = Some(c),
            c if Some(c) == quote => quote = None,
            c if quote.is_none() && is_separator(c) => {
                return Ok(Some((word, &s[i..])));
            }
            c => word.push(c),
        }
    }
    if quote.is_some() {
        return Err(WordError::UnterminatedQuote);
    }
    Ok(Some((word, "")))
}

/// Every word of `input`.
pub fn split(input: &str, mode: Mode) -> Result<Vec<String>, WordError> {
    let mut words = Vec::new();
    let mut rest = input;
    while let Some((word, after)) = first_word(rest, mode)? {
        words.push(word);
        rest = after;
    }
    Ok(words)
}

/// Decodes one C escape at the start of `s` (after the backslash): the text it stands for
/// and how many bytes of `s` it used.
fn cunescape_one(s: &str) -> Result<(String, usize), WordError> {
    let bad = |n: usize| WordError::BadEscape(s.chars().take(n).collect());
    let Some(c) = s.chars().next() else {
        return Err(WordError::TrailingBackslash);
    };
    let simple = match c {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        's' => Some(' '),
        '\\' | '"' | '\'' => Some(c),
        _ => None,
    };
    if let Some(out) = simple {
        return Ok((out.to_string(), c.len_utf8()));
    }
    let hex = |digits: usize| -> Result<u32, WordError> {
        let part = s.get(1..1 + digits).ok_or_else(|| bad(1 + digits))?;
        if part.len() != digits || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(1 + digits));
        }
        u32::from_str_radix(part, 16).map_err(|_| bad(1 + digits))
    };
    let code = match c {
        'x' => (hex(2)?, 3),
        'u' => (hex(4)?, 5),
        'U' => (hex(8)?, 9),
        '0'..='7' => {
            let part = s.get(..3).ok_or_else(|| bad(3))?;
            if !part.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return Err(bad(3));
            }
            (u32::from_str_radix(part, 8).map_err(|_| bad(3))?, 3)
        }
        _ => return Err(bad(1)),
    };
    // systemd refuses NUL in a value: it would end the C string.
    match char::from_u32(code.0) {
        Some(ch) if ch != '\0' => Ok((ch.to_string(), code.1)),
        _ => Err(bad(code.1)),
    }
}

/// Decodes every C escape in `s` (quotes are ordinary characters).
pub fn cunescape(s: &str) -> Result<String, WordError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let (decoded, used) = cunescape_one(&rest[i + 1..])?;
        out.push_str(&decoded);
        rest = &rest[i + 1 + used..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn words(s: &str) -> Vec<String> {
        split(s, Mode::EXEC).expect("splits")
    }

    #[test]
    fn whitespace_quotes_and_quotes_inside_words() {
        assert_eq!(words("  a  b\tc "), ["a", "b", "c"]);
        assert_eq!(words(r#""a b" 'c d' e"f g"h"#), ["a b", "c d", "ef gh"]);
        assert_eq!(words(r#""" x"#), ["", "x"]);
    }

    #[test]
    fn c_escapes() {
        assert_eq!(words(r"a\sb \x41\u00e9 \101 \n"), ["a b", "Aé", "A", "\n"]);
        assert_eq!(words(r#""say \"hi\"""#), [r#"say "hi""#]);
    }

    #[test]
    fn errors_are_named() {
        assert_eq!(
            split("\"abc", Mode::EXEC),
            Err(WordError::UnterminatedQuote)
        );
        assert_eq!(
            split("abc\\", Mode::EXEC),
            Err(WordError::TrailingBackslash)
        );
        assert_eq!(
            split(r"\q", Mode::EXEC),
            Err(WordError::BadEscape("q".into()))
        );
        assert_eq!(
            split(r"\x4", Mode::EXEC),
            Err(WordError::BadEscape("x4".into()))
        );
        assert_eq!(
            split(r"\x00", Mode::EXEC),
            Err(WordError::BadEscape("x00".into()))
        );
    }

    #[test]
    fn names_keep_their_escapes() {
        assert_eq!(
            split(r#"a\x2db.service "c d.target""#, Mode::NAMES).expect("splits"),
            [r"a\x2db.service", "c d.target"]
        );
    }

    #[test]
    fn first_word_returns_the_rest() {
        let (w, rest) = first_word("  -/bin/x a b", Mode::EXEC)
            .expect("ok")
            .expect("word");
        assert_eq!((w.as_str(), rest), ("-/bin/x", " a b"));
        assert_eq!(first_word("   ", Mode::EXEC), Ok(None));
    }

    proptest! {
        #[test]
        fn never_panics(s in "(?s).{0,200}") {
            let _ = split(&s, Mode::EXEC);
            let _ = split(&s, Mode::NAMES);
            let _ = cunescape(&s);
        }

        #[test]
        fn quoted_words_round_trip(ws in proptest::collection::vec("[^\"\\\\]{0,12}", 0..6)) {
            let line: Vec<String> = ws.iter().map(|w| format!("\"{w}\"")).collect();
            prop_assert_eq!(split(&line.join(" "), Mode::EXEC).expect("splits"), ws);
        }
    }
}
