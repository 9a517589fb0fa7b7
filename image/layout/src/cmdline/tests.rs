use super::*;
use proptest::prelude::*;

const HASH: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

#[test]
fn defaults() {
    let c = Cmdline::parse(&format!("console=ttyS0 roothash={HASH}\n")).unwrap();
    assert_eq!(c.root_hash.to_string(), HASH);
    assert_eq!(c.options, BootOptions::default());
    assert_eq!(c.options.verity, VerityMode::Panic);
    assert_eq!(c.options.failure, FailureAction::Halt);
    assert_eq!(c.options.state, StateMode::Auto);
}

#[test]
fn all_options_and_last_wins() {
    let text = format!(
        "BOOT_IMAGE=/vmlinuz roothash=00 roothash={} berth.verity=restart \
         berth.failure=reboot berth.verbose berth.debug berth.hostname=a \
         berth.hostname=node-1 berth.state=wipe quiet",
        HASH.to_uppercase()
    );
    let c = Cmdline::parse(&text).unwrap();
    assert_eq!(c.root_hash.to_string(), HASH);
    assert_eq!(c.options.verity, VerityMode::Restart);
    assert_eq!(c.options.verity.table_option(), "restart_on_corruption");
    assert_eq!(c.options.failure, FailureAction::Reboot);
    assert!(c.options.verbose);
    assert!(c.options.debug_shell);
    assert_eq!(c.options.hostname.as_deref(), Some("node-1"));
    assert_eq!(c.options.state, StateMode::Wipe);
}

#[test]
fn errors_name_the_value() {
    assert_eq!(
        Cmdline::parse("console=ttyS0"),
        Err(CmdlineError::MissingRootHash)
    );
    let e = Cmdline::parse("roothash=xyz").unwrap_err();
    assert_eq!(
        e.to_string(),
        "roothash=\"xyz\" is not 64 hexadecimal digits (a sha256 root hash)"
    );
    let e = Cmdline::parse(&format!("roothash={HASH} berth.verity=ignore")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "berth.verity=\"ignore\" is not one of panic, restart"
    );
    assert!(Cmdline::parse(&format!("roothash={HASH} berth.failure=")).is_err());
    assert!(Cmdline::parse(&format!("roothash={HASH} berth.verity")).is_err());
    assert!(Cmdline::parse(&format!("roothash={HASH} berth.verbose=maybe")).is_err());
}

#[test]
fn stage1_leaves_stage2_values_to_stage2() {
    let c = Cmdline::parse(&format!(
        "roothash={HASH} berth.hostname=-bad berth.state=maybe berth.debug=maybe"
    ))
    .unwrap();
    assert_eq!(c.options, BootOptions::default());
}

#[test]
fn stage2_reports_bad_values_and_uses_defaults() {
    let (o, problems) = BootOptions::parse_lenient(
        "console=ttyS0 roothash=00 berth.debug berth.hostname=node-1 berth.state=reformat",
    );
    assert!(o.debug_shell);
    assert!(!o.verbose);
    assert_eq!(o.hostname.as_deref(), Some("node-1"));
    assert_eq!(o.state, StateMode::Reformat);
    assert!(problems.is_empty(), "{problems:?}");

    let (o, problems) =
        BootOptions::parse_lenient("berth.hostname=-bad berth.state=maybe berth.verity=x");
    assert_eq!(o, BootOptions::default());
    let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        [
            "berth.verity=\"x\" is not one of panic, restart",
            "berth.hostname=\"-bad\" is not a valid host name (RFC 1123)",
            "berth.state=\"maybe\" is not one of auto, tmpfs, reformat, wipe",
        ]
    );
    assert!(!BootOptions::parse_lenient("berth.debug=0").0.debug_shell);
    assert_eq!(
        BootOptions::parse_lenient("berth.state=tmpfs").0.state,
        StateMode::Tmpfs
    );
}

#[test]
fn failure_action_survives_a_bad_command_line() {
    assert_eq!(
        FailureAction::from_cmdline("roothash=bad berth.failure=reboot"),
        FailureAction::Reboot
    );
    assert_eq!(
        FailureAction::from_cmdline("berth.failure=sometimes"),
        FailureAction::Halt
    );
}

#[test]
fn rendered_words_golden() {
    let mut c = Cmdline::new(HASH.parse().unwrap());
    assert_eq!(c.to_string(), format!("roothash={HASH} berth.verity=panic"));
    c.options.verbose = true;
    c.options.debug_shell = true;
    assert_eq!(
        c.to_string(),
        format!("roothash={HASH} berth.verity=panic berth.verbose berth.debug")
    );
}

#[test]
fn quotes_group_words() {
    assert_eq!(
        split(" a \"b c\" d=\"e f\"g\n"),
        ["a", "b c", "d=e fg"].map(String::from)
    );
    assert!(split("  \n").is_empty());
}

#[test]
fn host_names_follow_rfc_1123() {
    for good in ["node-1", "a", "n1.example.com", "0node", &"a".repeat(63)] {
        assert!(valid_hostname(good), "{good}");
    }
    let long = format!("{}.{}", "a".repeat(40), "b".repeat(30));
    for bad in [
        "",
        "-a",
        "a-",
        "a..b",
        ".a",
        "a.",
        "a_b",
        "a b",
        "nöde",
        &"a".repeat(64),
        &long,
    ] {
        assert!(!valid_hostname(bad), "{bad}");
    }
}

fn cmdline() -> impl Strategy<Value = Cmdline> {
    let state = prop_oneof![
        Just(StateMode::Auto),
        Just(StateMode::Tmpfs),
        Just(StateMode::Reformat),
        Just(StateMode::Wipe),
    ];
    (
        any::<[u8; 32]>(),
        any::<[bool; 4]>(),
        proptest::option::of("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?"),
        state,
    )
        .prop_map(
            |(hash, [restart, reboot, verbose, debug_shell], hostname, state)| Cmdline {
                root_hash: RootHash(hash),
                options: BootOptions {
                    verity: if restart {
                        VerityMode::Restart
                    } else {
                        VerityMode::Panic
                    },
                    failure: if reboot {
                        FailureAction::Reboot
                    } else {
                        FailureAction::Halt
                    },
                    hostname,
                    state,
                    verbose,
                    debug_shell,
                },
            },
        )
}

proptest! {
    #[test]
    fn round_trips_among_foreign_words(
        c in cmdline(),
        foreign in proptest::collection::vec("[a-z_.]{1,12}(=[a-zA-Z0-9,/]{0,12})?", 0..6),
        seed in any::<u64>(),
    ) {
        let mut words = c.words();
        for (i, w) in foreign.iter().enumerate() {
            if w.starts_with("berth.") || w.starts_with("roothash") {
                continue;
            }
            let at = (seed as usize).wrapping_add(i) % (words.len() + 1);
            words.insert(at, w.clone());
        }
        let text = words.join(" ");
        prop_assert_eq!(Cmdline::parse(&text), Ok(c.clone()));
        prop_assert_eq!(BootOptions::parse_lenient(&text), (c.options.clone(), Vec::new()));
        prop_assert_eq!(FailureAction::from_cmdline(&text), c.options.failure);
    }

    #[test]
    fn never_panics(text in "\\PC{0,200}") {
        let _ = Cmdline::parse(&text);
        let _ = BootOptions::parse_lenient(&text);
        let _ = FailureAction::from_cmdline(&text);
    }
}
