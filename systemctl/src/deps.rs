//! `systemctl list-dependencies [UNIT] [--reverse] [--all] [--plain]`: the tree systemd
//! 252 draws. The root is the unit's name; below it each dependency is one line, a state
//! marker (`●` active, `○` inactive, `×` failed) then the branches (`├─`, `└─`, `│ `).
//! Children are sorted as systemd sorts them (other units before targets, then by name);
//! only targets are expanded unless `--all`. A dependency that is already one of the
//! line's ancestors (a cycle) is not drawn again: systemd puts a `...` line one level
//! below in its place. With `--plain` every line is the name after two spaces, and a
//! unit already expanded anywhere is left out (systemd 252's
//! `systemctl-list-dependencies.c`).

use crate::{Args, Ask, Outcome};

/// One level below `unit`: (name, ActiveState), from PID 1.
pub type Level<'a> = dyn Fn(&str) -> Result<Vec<(String, String)>, Outcome> + 'a;

/// `list-dependencies` over the control socket.
pub fn list(ask: &Ask, args: &Args) -> Outcome {
    let root = args
        .units
        .first()
        .cloned()
        .unwrap_or_else(|| "default.target".into());
    let direction = if args.reverse { "reverse" } else { "forward" };
    let level = |unit: &str| -> Result<Vec<(String, String)>, Outcome> {
        let body = ask("list-dependencies", &[direction.into(), unit.into()])?;
        Ok(body
            .iter()
            .filter_map(|l| l.split_once('\t'))
            .map(|(n, s)| (n.to_owned(), s.to_owned()))
            .collect())
    };
    match tree(&root, &level, args.all, args.plain) {
        Ok(text) => Outcome::ok(text),
        Err(o) => o,
    }
}

/// The whole tree below `root`, as text.
pub fn tree(root: &str, level: &Level, all: bool, plain: bool) -> Result<String, Outcome> {
    let mut out = format!("{root}\n");
    let mut walk = Walk {
        level,
        all,
        plain,
        units: vec![root.to_owned()],
        out: &mut out,
    };
    walk.below(root, 0, 0)?;
    Ok(out)
}

/// systemd's order: non-targets first, then by name (case-insensitive).
fn order(a: &str, b: &str) -> std::cmp::Ordering {
    let target = |n: &str| n.ends_with(".target");
    target(a)
        .cmp(&target(b))
        .then_with(|| a.to_lowercase().cmp(&b.to_lowercase()))
}

struct Walk<'a, 'o> {
    level: &'a Level<'a>,
    all: bool,
    plain: bool,
    /// The line's ancestors; with `--plain`, every unit expanded so far.
    units: Vec<String>,
    out: &'o mut String,
}

impl Walk<'_, '_> {
    /// The lines below `unit`; `branches` has bit `i` set when the ancestor `i` levels up
    /// has siblings below it.
    fn below(&mut self, unit: &str, depth: usize, branches: u64) -> Result<(), Outcome> {
        let mut children = (self.level)(unit)?;
        children.sort_by(|a, b| order(&a.0, &b.0));
        let count = children.len();
        for (i, (name, state)) in children.into_iter().enumerate() {
            let last = i + 1 == count;
            let below = (branches << 1) | u64::from(!last);
            if self.units.contains(&name) {
                if !self.plain {
                    self.out.push_str("  ");
                    self.out.push_str(&branch("...", depth + 1, below, true));
                }
                continue;
            }
            if self.plain {
                self.out.push_str(&format!("  {name}\n"));
            } else {
                self.out.push(glyph(&state));
                self.out.push(' ');
                self.out.push_str(&branch(&name, depth, branches, last));
            }
            // Deeper than 64 levels the branch bits would run out; systemd's terminal
            // width stops it far earlier.
            if (self.all || name.ends_with(".target")) && depth < 63 {
                self.units.push(name.clone());
                self.below(&name, depth + 1, below)?;
                if !self.plain {
                    self.units.pop();
                }
            }
        }
        Ok(())
    }
}

/// `●` active, `×` failed, `○` otherwise (unit_active_state_to_glyph).
fn glyph(state: &str) -> char {
    match state {
        "active" | "reloading" | "activating" | "deactivating" => '\u{25cf}',
        "failed" => '\u{00d7}',
        _ => '\u{25cb}',
    }
}

/// The branches of the ancestors, this line's own, and `name`.
fn branch(name: &str, depth: usize, branches: u64, last: bool) -> String {
    let mut s = String::new();
    for i in (0..depth).rev() {
        s.push_str(if branches & (1 << i) != 0 {
            "\u{2502} "
        } else {
            "  "
        });
    }
    s.push_str(if last {
        "\u{2514}\u{2500}"
    } else {
        "\u{251c}\u{2500}"
    });
    s.push_str(name);
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn graph() -> Graph {
        BTreeMap::from([
            (
                "multi-user.target",
                vec![
                    ("basic.target", "active"),
                    ("berth-runtime.service", "active"),
                    ("a.service", "failed"),
                ],
            ),
            (
                "basic.target",
                vec![("sysinit.target", "active"), ("tmp.mount", "inactive")],
            ),
            ("sysinit.target", vec![("local-fs.target", "active")]),
            (
                "berth-runtime.service",
                vec![("sysinit.target", "active"), ("system.slice", "active")],
            ),
            ("local-fs.target", vec![("multi-user.target", "active")]),
        ])
    }

    type Graph = BTreeMap<&'static str, Vec<(&'static str, &'static str)>>;

    fn level_of(g: &Graph) -> impl Fn(&str) -> Result<Vec<(String, String)>, Outcome> + use<'_> {
        |u: &str| {
            Ok(g.get(u)
                .map(|v| {
                    v.iter()
                        .map(|(n, s)| (n.to_string(), s.to_string()))
                        .collect()
                })
                .unwrap_or_default())
        }
    }

    #[test]
    fn the_tree_is_drawn_as_systemd_draws_it_with_dots_for_a_cycle() {
        let g = graph();
        let text = tree("multi-user.target", &level_of(&g), false, false).expect("tree");
        assert_eq!(
            text,
            "multi-user.target\n\
             \u{d7} \u{251c}\u{2500}a.service\n\
             \u{25cf} \u{251c}\u{2500}berth-runtime.service\n\
             \u{25cf} \u{2514}\u{2500}basic.target\n\
             \u{25cb}   \u{251c}\u{2500}tmp.mount\n\
             \u{25cf}   \u{2514}\u{2500}sysinit.target\n\
             \u{25cf}     \u{2514}\u{2500}local-fs.target\n\
             \x20         \u{2514}\u{2500}...\n"
        );
    }

    #[test]
    fn all_expands_services_again_where_they_recur_and_keeps_the_vertical_bars() {
        let g = graph();
        let text = tree("multi-user.target", &level_of(&g), true, false).expect("tree");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], "\u{25cf} \u{251c}\u{2500}berth-runtime.service");
        assert_eq!(lines[3], "\u{25cf} \u{2502} \u{251c}\u{2500}system.slice");
        assert_eq!(lines[4], "\u{25cf} \u{2502} \u{2514}\u{2500}sysinit.target");
        assert_eq!(
            lines[5],
            "\u{25cf} \u{2502}   \u{2514}\u{2500}local-fs.target"
        );
        // multi-user.target is an ancestor here: `...` one level below, under the bar
        // of berth-runtime.service's siblings.
        assert_eq!(lines[6], "  \u{2502}       \u{2514}\u{2500}...");
        // Not an ancestor under basic.target: drawn and expanded again, as systemd does.
        assert_eq!(text.matches("local-fs.target").count(), 2, "{text}");
        assert_eq!(text.matches("...").count(), 2, "{text}");
    }

    #[test]
    fn plain_lists_each_expanded_unit_once_without_dots() {
        let g = graph();
        let plain = tree("multi-user.target", &level_of(&g), false, true).expect("tree");
        assert_eq!(
            plain,
            "multi-user.target\n  a.service\n  berth-runtime.service\n  basic.target\n  \
             tmp.mount\n  sysinit.target\n  local-fs.target\n"
        );
    }
}
