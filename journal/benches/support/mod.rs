//! What the journal benches share: the peak RSS of a process and the fields a collector
//! writes for each line of a busy node (a bench target includes this with `mod`/`#[path]`).

/// Peak resident set of a process (`VmHWM`, KiB). Not getrusage: `ru_maxrss` carries the
/// peak of the image a process was exec'd from (cargo's, or the forking bench's).
pub fn vm_hwm_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

pub fn fields(i: usize) -> Vec<(&'static str, String)> {
    vec![
        (
            "MESSAGE",
            format!(
                "request {i} served in {} ms from 10.0.{}.{}",
                i % 977,
                i % 256,
                i % 200
            ),
        ),
        ("PRIORITY", format!("{}", 3 + i % 4)),
        ("_SYSTEMD_UNIT", format!("svc{}.service", i % 8)),
        ("_PID", format!("{}", 300 + i % 8)),
        ("_COMM", format!("svc{}", i % 8)),
        ("SYSLOG_IDENTIFIER", format!("svc{}", i % 8)),
        ("_TRANSPORT", "stdout".to_string()),
        ("_HOSTNAME", "berth-node".to_string()),
        (
            "_MACHINE_ID",
            "3d1219c7c4c5404aaa1f6d2a48adfda4".to_string(),
        ),
    ]
}
