//! `systemctl list-dependencies [UNIT] [--reverse] [--all] [--plain]`: the tree systemd
//! 252 draws. The root is the unit's name; below it each dependency is one line, a state
//! marker (`●` active, `○` inactive, `×` failed) then the branches (`├─`, `└─`, `│ `).
//! Children are sorted as systemd sorts them (other units before targets, then by name);
//! only targets are expanded unless `--all`. A dependency that is already one of the
//! line's ancestors (a cycle) is not drawn again: systemd puts a `...` line one level
//! below in its place. With `--plain` every line is the name after two spaces, and a
//! unit already expanded anywhere is left out (systemd 252's
//! `systemctl-list-dependencies.c`).
//!
//! Lines are cut to the terminal's width ([`crate::terminal::columns`]; 80 on a pipe)
//! unless `--full`, as systemd cuts them: the state mark is not counted, a name that does
//! not fit ends in `…`, and a line whose branches alone pass the width minus three ends
//! in `...` where they do.

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
    let width = (!args.full).then(crate::terminal::columns);
    let shape = Shape {
        all: args.all,
        plain: args.plain,
        width,
    };
    match tree(&root, &level, shape) {
        Ok(text) => Outcome::ok(text),
        Err(o) => o,
    }
}

/// How the tree is drawn: `--all`, `--plain`, and the width lines are cut to (`None`:
/// `--full`).
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub all: bool,
    pub plain: bool,
    pub width: Option<usize>,
}

/// The whole tree below `root`, as text.
pub fn tree(root: &str, level: &Level, shape: Shape) -> Result<String, Outcome> {
    let mut out = format!("{root}\n");
    let mut walk = Walk {
        level,
        all: shape.all,
        plain: shape.plain,
        // systemd: MAX(columns(), 20).
        width: shape.width.map(|w| w.max(20)),
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
    width: Option<usize>,
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
                    self.out
                        .push_str(&branch("...", depth + 1, below, true, self.width));
                }
                continue;
            }
            if self.plain {
                let name = match self.width {
                    Some(w) => ellipsize(&name, w),
                    None => name.clone(),
                };
                self.out.push_str(&format!("  {name}\n"));
            } else {
                self.out.push(glyph(&state));
                self.out.push(' ');
                self.out
                    .push_str(&branch(&name, depth, branches, last, self.width));
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

/// systemd 252's unit_active_state_to_glyph: `●` active, activating or deactivating,
/// `↻` reloading, `×` failed, `○` otherwise.
pub(crate) fn glyph(state: &str) -> char {
    match state {
        "active" | "activating" | "deactivating" => '\u{25cf}',
        "reloading" => '\u{21bb}',
        "failed" => '\u{00d7}',
        _ => '\u{25cb}',
    }
}

/// The branches of the ancestors, this line's own, and `name`, cut to `width` columns as
/// systemd's list_dependencies_print cuts them (two columns a level; past `width - 3`
/// the line ends in `...`, with a space first when the width is even).
fn branch(name: &str, depth: usize, branches: u64, last: bool, width: Option<usize>) -> String {
    let mut s = String::new();
    let mut len = 0;
    let cut = |s: &mut String, w: usize| {
        s.push_str(if w % 2 == 1 { "...\n" } else { " ...\n" });
    };
    for i in (0..depth).rev() {
        len += 2;
        if let Some(w) = width.filter(|w| len > w - 3) {
            cut(&mut s, w);
            return s;
        }
        s.push_str(if branches & (1 << i) != 0 {
            "\u{2502} "
        } else {
            "  "
        });
    }
    len += 2;
    if let Some(w) = width.filter(|w| len > w - 3) {
        cut(&mut s, w);
        return s;
    }
    s.push_str(if last {
        "\u{2514}\u{2500}"
    } else {
        "\u{251c}\u{2500}"
    });
    match width {
        Some(w) => s.push_str(&ellipsize(name, w - len)),
        None => s.push_str(name),
    }
    s.push('\n');
    s
}

/// systemd's `ellipsize(name, width, 100)` in a UTF-8 locale: a name longer than
/// `width` columns keeps its first `width - 1` and ends in `…`.
fn ellipsize(name: &str, width: usize) -> String {
    if name.chars().count() <= width {
        return name.to_owned();
    }
    let mut s: String = name.chars().take(width.saturating_sub(1)).collect();
    if width > 0 {
        s.push('\u{2026}');
    }
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

    fn shape(all: bool, plain: bool, width: Option<usize>) -> Shape {
        Shape { all, plain, width }
    }

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
        let text = tree(
            "multi-user.target",
            &level_of(&g),
            shape(false, false, None),
        )
        .expect("tree");
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
        let text =
            tree("multi-user.target", &level_of(&g), shape(true, false, None)).expect("tree");
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
        let plain =
            tree("multi-user.target", &level_of(&g), shape(false, true, None)).expect("tree");
        assert_eq!(
            plain,
            "multi-user.target\n  a.service\n  berth-runtime.service\n  basic.target\n  \
             tmp.mount\n  sysinit.target\n  local-fs.target\n"
        );
    }

    #[test]
    fn lines_are_cut_to_the_width_as_systemd_cuts_them() {
        let g = graph();
        // 20 columns (the least systemd uses): the branches may take 17; a name gets
        // what is left after them, its last kept column an ellipsis.
        let text = tree(
            "multi-user.target",
            &level_of(&g),
            shape(false, false, Some(20)),
        )
        .expect("tree");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "\u{d7} \u{251c}\u{2500}a.service");
        assert_eq!(
            lines[2],
            "\u{25cf} \u{251c}\u{2500}berth-runtime.ser\u{2026}"
        );
        assert_eq!(lines[3], "\u{25cf} \u{2514}\u{2500}basic.target");
        assert_eq!(
            lines[6],
            "\u{25cf}     \u{2514}\u{2500}local-fs.targ\u{2026}"
        );
        // Smaller widths are taken as 20.
        let narrow = tree(
            "multi-user.target",
            &level_of(&g),
            shape(false, false, Some(5)),
        )
        .expect("tree");
        assert_eq!(narrow, text);
        // Each branch level is two columns: at 9 levels (18 > 20 - 3) the line stops in
        // `...`, after a space when the width is even.
        assert_eq!(
            branch("deep.target", 8, 0, true, Some(20)),
            "                 ...\n"
        );
        assert_eq!(
            branch("deep.target", 8, 0, true, Some(21)),
            "                \u{2514}\u{2500}de\u{2026}\n"
        );
        assert_eq!(
            branch("deep.target", 8, 0, true, None),
            "                \u{2514}\u{2500}deep.target\n"
        );
        // --plain: the name alone, cut to the width.
        let plain = tree(
            "multi-user.target",
            &level_of(&g),
            shape(false, true, Some(20)),
        )
        .expect("tree");
        assert!(
            plain.contains("\n  berth-runtime.servi\u{2026}\n"),
            "{plain}"
        );
    }

    #[test]
    fn state_marks_are_systemds() {
        assert_eq!(glyph("active"), '\u{25cf}');
        assert_eq!(glyph("deactivating"), '\u{25cf}');
        assert_eq!(glyph("reloading"), '\u{21bb}');
        assert_eq!(glyph("failed"), '\u{d7}');
        assert_eq!(glyph("inactive"), '\u{25cb}');
    }
}
