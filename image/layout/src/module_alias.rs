//! `modules.alias` in depmod's format: the names the kernel asks `modprobe` for through
//! `request_module` (`nft-chain-2-nat`, `net-pf-16-proto-12-family-nftables`,
//! `fs-overlay`, or a device's modalias such as `pci:v00001AF4d00001041sv*`), each mapped
//! to the module whose `.modinfo` declares it (`alias=`). The builder writes it for the
//! modules the root keeps; PID 1's `modprobe` reads it. Patterns are fnmatch(3) globs
//! (`*`, `?`, `[...]`), and names compare with `-` and `_` as one, outside brackets, as
//! kmod does.

/// A malformed line of `modules.alias`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("modules.alias line {line}: expected `alias PATTERN MODULE`, got {text:?}")]
pub struct AliasParseError {
    pub line: usize,
    pub text: String,
}

/// The aliases of a set of modules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleAliases {
    /// (normalized pattern, normalized module name), in file order.
    entries: Vec<(String, String)>,
}

impl ModuleAliases {
    /// Records that `module` answers to `pattern`.
    pub fn insert(&mut self, pattern: &str, module: &str) {
        self.entries.push((
            normalize_alias(pattern),
            crate::module_index::normalize(module),
        ));
    }

    /// Parses `modules.alias`; blank lines and `#` comments are skipped.
    pub fn parse(text: &str) -> Result<Self, AliasParseError> {
        let mut aliases = ModuleAliases::default();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next(), words.next()) {
                (Some("alias"), Some(pattern), Some(module), None) => {
                    aliases.insert(pattern, module)
                }
                _ => {
                    return Err(AliasParseError {
                        line: number + 1,
                        text: line.to_owned(),
                    })
                }
            }
        }
        Ok(aliases)
    }

    /// The file, sorted by module and pattern so that it is a function of the set.
    pub fn render(&self) -> String {
        let mut entries = self.entries.clone();
        entries.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
        entries.dedup();
        let mut text = String::from("# Aliases extracted from modules themselves.\n");
        for (pattern, module) in entries {
            text.push_str(&format!("alias {pattern} {module}\n"));
        }
        text
    }

    /// The aliases of the modules named in `keep` (normalized names) only.
    pub fn only(&self, keep: &std::collections::BTreeSet<String>) -> ModuleAliases {
        ModuleAliases {
            entries: self
                .entries
                .iter()
                .filter(|(_, module)| keep.contains(module))
                .cloned()
                .collect(),
        }
    }

    /// The modules whose patterns match `name`, each once, in file order.
    pub fn lookup(&self, name: &str) -> Vec<&str> {
        let name = normalize_alias(name);
        let mut found: Vec<&str> = Vec::new();
        for (pattern, module) in &self.entries {
            if fnmatch(pattern.as_bytes(), name.as_bytes()) && !found.contains(&module.as_str()) {
                found.push(module);
            }
        }
        found
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `-` as `_`, except inside a `[...]` set, as kmod's `alias_normalize`.
pub fn normalize_alias(alias: &str) -> String {
    let mut in_set = false;
    alias
        .chars()
        .map(|c| match c {
            '[' => {
                in_set = true;
                c
            }
            ']' => {
                in_set = false;
                c
            }
            '-' if !in_set => '_',
            c => c,
        })
        .collect()
}

/// fnmatch(3) without flags: `*` any run, `?` one byte, `[abc]`, `[a-z]`, `[!a]`. One
/// backtrack point for the last `*`, so a hostile pattern costs at most
/// pattern × name steps.
fn fnmatch(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let next = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p + 1, n));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => match set_match(&pattern[p + 1..], name[n]) {
                Some((true, after)) => Some(pattern.len() - after.len()),
                Some((false, _)) => None,
                None => (name[n] == b'[').then_some(p + 1),
            },
            Some(c) => (*c == name[n]).then_some(p + 1),
            None => None,
        };
        match (next, star) {
            (Some(next), _) => {
                p = next;
                n += 1;
            }
            (None, Some((after_star, from))) => {
                p = after_star;
                n = from + 1;
                star = Some((after_star, from + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// Matches `byte` against the set that starts `set` (just after `[`): whether it matched
/// and the pattern after the closing `]`, or `None` when the set is not closed (then `[`
/// is an ordinary character).
fn set_match(set: &[u8], byte: u8) -> Option<(bool, &[u8])> {
    let (negate, mut rest) = match set.first() {
        Some(b'!') => (true, &set[1..]),
        _ => (false, set),
    };
    let mut matched = false;
    let mut first = true;
    loop {
        match rest {
            [] => return None,
            [b']', after @ ..] if !first => return Some((matched != negate, after)),
            [lo, b'-', hi, after @ ..] if *hi != b']' => {
                matched |= (*lo..=*hi).contains(&byte);
                rest = after;
            }
            [c, after @ ..] => {
                matched |= byte == *c;
                rest = after;
            }
        }
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_kernels_requests_find_their_modules() {
        let aliases = ModuleAliases::parse(
            "# Aliases extracted from modules themselves.\n\
             alias nft-chain-2-nat nft_chain_nat\n\
             alias net-pf-16-proto-12-family-nftables nf_tables\n\
             alias pci:v00001AF4d00001041sv*sd*bc*sc*i* virtio_net\n\
             alias vmbus:[a-f0-9]* hv_netvsc\n\
             alias fs-overlay overlay\n",
        )
        .unwrap();
        assert_eq!(aliases.len(), 5);
        assert_eq!(aliases.lookup("nft-chain-2-nat"), ["nft_chain_nat"]);
        assert_eq!(
            aliases.lookup("net-pf-16-proto-12-family-nftables"),
            ["nf_tables"]
        );
        assert_eq!(
            aliases.lookup("pci:v00001AF4d00001041sv00001AF4sd00001100bc02sc00i00"),
            ["virtio_net"]
        );
        assert_eq!(aliases.lookup("vmbus:f8615163df3e46c5"), ["hv_netvsc"]);
        assert!(aliases.lookup("vmbus:Z").is_empty());
        assert!(aliases.lookup("fs-ext9").is_empty());

        let keep = ["virtio_net".to_owned(), "overlay".to_owned()].into();
        let some = aliases.only(&keep);
        assert_eq!(some.len(), 2);
        assert_eq!(some.lookup("fs-overlay"), ["overlay"]);
        assert!(some.lookup("nft-chain-2-nat").is_empty());
    }

    #[test]
    fn render_is_sorted_and_parses_back() {
        let mut aliases = ModuleAliases::default();
        aliases.insert("b-two", "mod-b");
        aliases.insert("a-one", "mod_a");
        aliases.insert("a-one", "mod_a");
        let text = aliases.render();
        assert_eq!(
            text,
            "# Aliases extracted from modules themselves.\nalias a_one mod_a\nalias b_two mod_b\n"
        );
        assert_eq!(ModuleAliases::parse(&text).unwrap().render(), text);
    }

    #[test]
    fn a_bad_line_is_named() {
        let err = ModuleAliases::parse("alias ok mod\nalias only-pattern\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.to_string().contains("only-pattern"), "{err}");
    }

    #[test]
    fn sets_ranges_negation_and_unclosed_brackets() {
        assert!(fnmatch(b"a[0-9]c", b"a5c"));
        assert!(!fnmatch(b"a[0-9]c", b"axc"));
        assert!(fnmatch(b"a[!0-9]c", b"axc"));
        assert!(fnmatch(b"a[]]c", b"a]c"));
        assert!(fnmatch(b"a[-x]c", b"a-c"));
        assert!(fnmatch(b"a[bc", b"a[bc"));
        assert!(!fnmatch(b"a?c", b"ac"));
        assert!(fnmatch(b"*", b""));
        // Many stars against a long name that does not match: linear backtracking.
        let name = vec![b'a'; 4096];
        assert!(!fnmatch(b"*a*a*a*a*a*a*a*a*b", &name));
    }

    proptest! {
        #[test]
        fn a_pattern_without_wildcards_matches_only_itself(a in "[a-z0-9_:]{0,12}", b in "[a-z0-9_:]{0,12}") {
            prop_assert_eq!(fnmatch(a.as_bytes(), b.as_bytes()), a == b);
            let (prefix, whole) = (format!("{a}*"), format!("{a}{b}"));
            prop_assert!(fnmatch(prefix.as_bytes(), whole.as_bytes()));
        }

        #[test]
        fn lookup_never_panics(pattern in "[ -~]{0,16}", name in "[ -~]{0,16}") {
            let mut aliases = ModuleAliases::default();
            aliases.insert(&pattern, "m");
            let _ = aliases.lookup(&name);
        }
    }
}
