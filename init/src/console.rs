//! The console contract: one line per boot milestone, so that people and the VM tests can
//! follow a boot without a shell.
//!
//! On `/dev/console` each line carries a `CLOCK_BOOTTIME` timestamp in the kernel's own
//! format (`[    2.345678] berth: stage1 started`), so it sorts with the kernel's lines in a
//! serial log. The same line, without the timestamp (the kernel adds its own), goes to
//! `/dev/kmsg` at priority 7 (debug): below the default console log level, so the kernel
//! does not echo it a second time, yet it is in `dmesg` and later the journal.
//!
//! Every line starts with [`PREFIX`]; failures are `berth: FAILED <what>: <why>`.

use std::time::Duration;

/// What every line starts with.
pub const PREFIX: &str = "berth: ";

/// The `/dev/kmsg` priority prefix: `LOG_DEBUG` (the kernel files it under `LOG_USER`).
pub const KMSG_PRIORITY: &str = "<7>";

/// `[    2.345678] <message>\n`: seconds right-aligned in five columns, microseconds.
pub fn console_line(since_boot: Duration, message: &str) -> String {
    format!(
        "[{:5}.{:06}] {message}\n",
        since_boot.as_secs(),
        since_boot.subsec_micros()
    )
}

/// `<7><message>\n` for `/dev/kmsg`; one record per write.
pub fn kmsg_line(message: &str) -> String {
    // A newline inside would end the record early; the rest would be lost.
    let one_line: String = message
        .chars()
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect();
    format!("{KMSG_PRIORITY}{one_line}\n")
}

/// `berth: FAILED <what>: <why>` with the whole error chain after `why`.
pub fn failure_line(what: &str, error: &dyn std::error::Error) -> String {
    format!("{PREFIX}FAILED {what}: {}", chain(error))
}

/// An error and its sources, joined with `: `.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        line.push_str(": ");
        line.push_str(&e.to_string());
        source = e.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_look_like_the_kernel_s() {
        assert_eq!(
            console_line(Duration::from_micros(2_345_678), "berth: stage1 started"),
            "[    2.345678] berth: stage1 started\n"
        );
        assert_eq!(
            console_line(Duration::from_secs(123_456), "x"),
            "[123456.000000] x\n"
        );
        assert_eq!(console_line(Duration::ZERO, "x"), "[    0.000000] x\n");
    }

    #[test]
    fn kmsg_records_are_one_line() {
        assert_eq!(kmsg_line("berth: a\nb"), "<7>berth: a b\n");
    }

    #[test]
    fn failure_lines_carry_the_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read /dev/vda")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(
            failure_line("root", &e),
            "berth: FAILED root: cannot read /dev/vda: disk on fire"
        );
    }
}
