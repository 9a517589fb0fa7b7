use super::*;

/// A recorded node: (unit, activating µs, activated µs, ordered after).
struct Recorded {
    manager: [(u64, u64, u64); 1],
    /// efivarfs contents by variable name.
    efi: BTreeMap<&'static str, Vec<u8>>,
    units: Vec<(&'static str, u64, u64, Vec<&'static str>)>,
}

impl Source for Recorded {
    fn show(&self, unit: Option<&str>) -> Result<BTreeMap<String, String>, String> {
        let mut p = BTreeMap::new();
        match unit {
            None => {
                let (i, u, f) = self.manager[0];
                p.insert("InitRDTimestampMonotonic".into(), i.to_string());
                p.insert("UserspaceTimestampMonotonic".into(), u.to_string());
                p.insert("FinishTimestampMonotonic".into(), f.to_string());
            }
            Some(name) => {
                let name = if name == "default.target" {
                    "multi-user.target"
                } else {
                    name
                };
                let (n, a, b, _) = self
                    .units
                    .iter()
                    .find(|u| u.0 == name)
                    .ok_or(format!("Unit {name} could not be found."))?;
                p.insert("Id".into(), n.to_string());
                p.insert("InactiveExitTimestampMonotonic".into(), a.to_string());
                p.insert("ActiveEnterTimestampMonotonic".into(), b.to_string());
            }
        }
        Ok(p)
    }
    /// As PID 1 lists them: the boot's anchor under its alias.
    fn units(&self) -> Result<Vec<String>, String> {
        Ok(self
            .units
            .iter()
            .map(|u| match u.0 {
                "multi-user.target" => "default.target".to_owned(),
                other => other.to_owned(),
            })
            .collect())
    }
    fn loader_variable(&self, name: &str) -> Option<Vec<u8>> {
        self.efi.get(name).cloned()
    }
    fn after(&self, unit: &str) -> Result<Vec<String>, String> {
        Ok(self
            .units
            .iter()
            .find(|u| u.0 == unit)
            .map(|u| u.3.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default())
    }
}

/// Stage 1 at 1.23 s, stage 2 at 2.5 s, ready at 9.75 s.
fn node() -> Recorded {
    Recorded {
        manager: [(1_230_000, 2_500_000, 9_750_000)],
        efi: BTreeMap::new(),
        units: vec![
            ("sysinit.target", 2_600_000, 2_600_000, vec![]),
            ("basic.target", 2_610_000, 2_610_000, vec!["sysinit.target"]),
            (
                "berth-networkd.service",
                2_620_000,
                2_743_000,
                vec!["basic.target", "sysinit.target"],
            ),
            (
                "network-online.target",
                4_000_000,
                4_000_000,
                vec!["berth-networkd.service"],
            ),
            (
                "berth-runtime.service",
                4_001_000,
                9_740_000,
                vec!["network-online.target", "basic.target"],
            ),
            (
                "multi-user.target",
                2_611_000,
                9_750_000,
                vec![
                    "basic.target",
                    "berth-runtime.service",
                    "berth-networkd.service",
                ],
            ),
            ("never.service", 0, 0, vec![]),
        ],
    }
}

#[test]
fn time_is_systemds_two_lines() {
    assert_eq!(
        time(&node()).stdout,
        "Startup finished in 1.230s (kernel) + 1.270s (initrd) + 7.250s (userspace) = 9.750s \nmulti-user.target reached after 7.250s in userspace.\n"
    );
}

#[test]
fn an_unfinished_boot_is_said_and_fails() {
    let mut n = node();
    n.manager[0].2 = 0;
    let o = time(&n);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.starts_with("Bootup is not yet finished"),
        "{}",
        o.stderr
    );
}

#[test]
fn blame_is_longest_first_right_aligned() {
    assert_eq!(
        blame(&node()).stdout,
        "7.139s multi-user.target\n5.739s berth-runtime.service\n 123ms berth-networkd.service\n"
    );
}

#[test]
fn critical_chain_follows_the_latest_activated() {
    assert_eq!(
        critical_chain(&node(), &[], 0).stdout,
        format!(
            "{CHAIN_HEADER}multi-user.target +7.139s\n\
             \u{2514}\u{2500}berth-runtime.service @1.501s +5.739s\n  \
             \u{2514}\u{2500}network-online.target @1.500s\n    \
             \u{2514}\u{2500}berth-networkd.service @120ms +123ms\n      \
             \u{2514}\u{2500}basic.target @110ms\n        \
             \u{2514}\u{2500}sysinit.target @100ms\n"
        )
    );
}

/// An efivarfs file: attributes, then `text` as NUL-terminated UTF-16LE.
fn efi_var(text: &str) -> Vec<u8> {
    let mut v = vec![0x06, 0, 0, 0];
    for u in text.encode_utf16().chain([0]) {
        v.extend_from_slice(&u.to_le_bytes());
    }
    v
}

#[test]
fn time_has_firmware_and_loader_from_systemd_boots_variables() {
    let mut n = node();
    n.efi.insert("LoaderTimeInitUSec", efi_var("2104000"));
    n.efi.insert("LoaderTimeExecUSec", efi_var("2915000"));
    assert_eq!(
        time(&n).stdout,
        "Startup finished in 2.104s (firmware) + 811ms (loader) + 1.230s (kernel) + 1.270s (initrd) + 7.250s (userspace) = 12.665s \nmulti-user.target reached after 7.250s in userspace.\n"
    );
    // One of the two missing: neither is said (as on a machine without systemd-boot).
    n.efi.remove("LoaderTimeExecUSec");
    assert!(time(&n)
        .stdout
        .starts_with("Startup finished in 1.230s (kernel) + "));
}

#[test]
fn fuzz_shows_every_dependency_within_it_and_dots_for_a_unit_walked_before() {
    let n = node();
    let argv = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let out = run(&argv("critical-chain --fuzz=10s"), &n).stdout;
    assert_eq!(
        out,
        format!(
            "{CHAIN_HEADER}multi-user.target +7.139s\n\
             \u{251c}\u{2500}berth-runtime.service @1.501s +5.739s\n\
             \u{2502} \u{251c}\u{2500}network-online.target @1.500s\n\
             \u{2502} \u{2502} \u{2514}\u{2500}berth-networkd.service @120ms +123ms\n\
             \u{2502} \u{2502}   \u{251c}\u{2500}basic.target @110ms\n\
             \u{2502} \u{2502}   \u{2502} \u{2514}\u{2500}sysinit.target @100ms\n\
             \u{2502} \u{2502}   \u{2514}\u{2500}sysinit.target @100ms\n\
             \u{2502} \u{2502}     \u{2514}\u{2500}...\n\
             \u{2502} \u{2514}\u{2500}basic.target @110ms\n\
             \u{2502}   \u{2514}\u{2500}...\n\
             \u{251c}\u{2500}berth-networkd.service @120ms +123ms\n\
             \u{2502} \u{2514}\u{2500}...\n\
             \u{2514}\u{2500}basic.target @110ms\n  \
             \u{2514}\u{2500}...\n"
        )
    );
    // 5 ms: basic.target (2.610 s) and sysinit.target (2.600 s) are 10 ms apart, so
    // the default's chain; a bad span is said.
    assert_eq!(
        run(&argv("critical-chain --fuzz 5ms"), &n).stdout,
        critical_chain(&n, &[], 0).stdout
    );
    let bad = run(&argv("critical-chain --fuzz=soon"), &n);
    assert_eq!(
        (bad.code, bad.stderr.as_str()),
        (1, "Failed to parse timespan 'soon'.\n")
    );
}
