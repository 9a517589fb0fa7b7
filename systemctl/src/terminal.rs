//! The width systemctl lays its lines out to, as systemd's `columns()`: `$COLUMNS` when it
//! is a positive number, else the width of the terminal on standard output, else 80 (a
//! pipe, a file).

/// Columns when nothing says otherwise.
pub const DEFAULT_COLUMNS: usize = 80;

/// systemd's `columns()`.
pub fn columns() -> usize {
    from_env(std::env::var("COLUMNS").ok().as_deref())
        .or_else(stdout_width)
        .unwrap_or(DEFAULT_COLUMNS)
}

/// `$COLUMNS` as systemd takes it: a number from 1 to 65535.
fn from_env(value: Option<&str>) -> Option<usize> {
    let n: usize = value?.trim().parse().ok()?;
    (1..=usize::from(u16::MAX)).contains(&n).then_some(n)
}

/// The terminal's width, when standard output is one (`TIOCGWINSZ`, through rustix's
/// safe wrapper; a pipe or file answers ENOTTY).
fn stdout_width() -> Option<usize> {
    let size = rustix::termios::tcgetwinsize(std::io::stdout()).ok()?;
    (size.ws_col > 0).then_some(usize::from(size.ws_col))
}

#[cfg(test)]
mod tests {
    use super::from_env;

    #[test]
    fn columns_from_the_environment_as_systemd_takes_them() {
        assert_eq!(from_env(Some("132")), Some(132));
        assert_eq!(from_env(Some("0")), None);
        assert_eq!(from_env(Some("-5")), None);
        assert_eq!(from_env(Some("65536")), None);
        assert_eq!(from_env(Some("wide")), None);
        assert_eq!(from_env(None), None);
    }
}
