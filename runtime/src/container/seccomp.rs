//! Which seccomp filter a container gets: none (unconfined or privileged), the built-in
//! RuntimeDefault profile ([`seccomp_default`](super::seccomp_default)), or a JSON
//! profile from the node (`localhost/<path>`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};
use oci_spec::OciSpecError;

use super::seccomp_default::{ALLOWED, BY_CAPABILITY, CLONE_NAMESPACE_FLAGS, PERSONALITY_ARGS};
use super::ContainerError;

/// The seccomp profile a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeccompChoice {
    /// No filter.
    Unconfined,
    /// The built-in default profile.
    RuntimeDefault,
    /// A profile file on the node.
    Localhost(PathBuf),
}

const FIELD: &str = "config.linux.security_context.seccomp";

/// The largest seccomp profile read (Docker's default profile is about 20 KiB): a
/// request naming `/dev/zero` must not make the daemon read without end.
const PROFILE_LIMIT: u64 = 4 << 20;

/// Loads an OCI-format (or Docker-format, unknown keys ignored) JSON profile.
pub fn load_profile(path: &Path) -> Result<LinuxSeccomp, ContainerError> {
    use std::io::Read;
    let reading = |e: std::io::Error| {
        ContainerError::invalid(FIELD, format!("reading {}: {e}", path.display()))
    };
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(PROFILE_LIMIT + 1).read_to_end(&mut text))
        .map_err(reading)?;
    if text.len() as u64 > PROFILE_LIMIT {
        return Err(ContainerError::invalid(
            FIELD,
            format!("{} is larger than {PROFILE_LIMIT} bytes", path.display()),
        ));
    }
    serde_json::from_slice(&text)
        .map_err(|e| ContainerError::invalid(FIELD, format!("profile {}: {e}", path.display())))
}

/// The RuntimeDefault profile for a container holding `caps` (`CAP_X` names).
pub fn default_profile(caps: &BTreeSet<String>) -> Result<LinuxSeccomp, OciSpecError> {
    let mut names: BTreeSet<&str> = ALLOWED.iter().copied().collect();
    for (cap, calls) in BY_CAPABILITY {
        if caps.contains(*cap) {
            names.extend(calls.iter().copied());
        }
    }
    let mut syscalls = vec![rule(
        names.into_iter().collect(),
        LinuxSeccompAction::ScmpActAllow,
        None,
        vec![],
    )];
    for value in PERSONALITY_ARGS {
        syscalls.push(rule(
            vec!["personality"],
            LinuxSeccompAction::ScmpActAllow,
            None,
            vec![arg(0, *value, None, LinuxSeccompOperator::ScmpCmpEq)?],
        ));
    }
    if !caps.contains("CAP_SYS_ADMIN") {
        let no_ns = arg(
            0,
            CLONE_NAMESPACE_FLAGS,
            Some(0),
            LinuxSeccompOperator::ScmpCmpMaskedEq,
        )?;
        syscalls.push(rule(
            vec!["clone"],
            LinuxSeccompAction::ScmpActAllow,
            None,
            vec![no_ns],
        ));
        syscalls.push(rule(
            vec!["clone3"],
            LinuxSeccompAction::ScmpActErrno,
            Some(libc::ENOSYS as u32),
            vec![],
        ));
    }
    let mut profile = LinuxSeccomp::default();
    profile.set_default_action(LinuxSeccompAction::ScmpActErrno);
    profile.set_default_errno_ret(Some(libc::EPERM as u32));
    profile.set_architectures(Some(native_architectures()));
    profile.set_syscalls(Some(syscalls));
    Ok(profile)
}

fn rule(
    names: Vec<&str>,
    action: LinuxSeccompAction,
    errno: Option<u32>,
    args: Vec<LinuxSeccompArg>,
) -> LinuxSyscall {
    let mut rule = LinuxSyscall::default();
    rule.set_names(names.into_iter().map(String::from).collect());
    rule.set_action(action);
    rule.set_errno_ret(errno);
    if !args.is_empty() {
        rule.set_args(Some(args));
    }
    rule
}

fn arg(
    index: usize,
    value: u64,
    value_two: Option<u64>,
    op: LinuxSeccompOperator,
) -> Result<LinuxSeccompArg, OciSpecError> {
    let builder = LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .op(op);
    match value_two {
        Some(v) => builder.value_two(v).build(),
        None => builder.build(),
    }
}

fn native_architectures() -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchNative]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_denies_by_default_and_follows_capabilities() {
        let plain = default_profile(&BTreeSet::new()).unwrap();
        let json = serde_json::to_value(&plain).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["defaultErrnoRet"], 1);
        let allowed = json["syscalls"][0]["names"].as_array().unwrap();
        assert!(allowed.iter().any(|n| n == "read"));
        assert!(!allowed.iter().any(|n| n == "mount"));
        assert!(json["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["names"][0] == "clone3" && r["errnoRet"] == 38));

        let admin = default_profile(&["CAP_SYS_ADMIN".to_string()].into()).unwrap();
        let json = serde_json::to_value(&admin).unwrap();
        assert!(json["syscalls"][0]["names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "mount"));
        assert!(!json["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["names"][0] == "clone3" && r["action"] == "SCMP_ACT_ERRNO"));
    }

    #[test]
    fn localhost_profiles_load_and_bad_ones_are_invalid_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.json");
        std::fs::write(&good, r#"{"defaultAction":"SCMP_ACT_LOG","archMap":[],"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#).unwrap();
        assert_eq!(
            load_profile(&good).unwrap().default_action(),
            LinuxSeccompAction::ScmpActLog
        );
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{").unwrap();
        assert!(load_profile(&bad).is_err());
        assert!(load_profile(&dir.path().join("missing.json")).is_err());
        // A file without end is refused after the limit, not read forever.
        let endless = load_profile(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(endless.contains("larger than"), "{endless}");
    }
}
