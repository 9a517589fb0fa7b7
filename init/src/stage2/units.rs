//! Stage 2's service manager: made before early boot (whose steps are its built-in
//! units, [`super::early`]); after early boot, the units of `/usr/lib/systemd/system`,
//! `/run/systemd/system` and `/etc/systemd/system` are loaded and `default.target` is
//! started through [`crate::manager::Manager`]; the event loop feeds it child exits,
//! `sd_notify` messages and timers, and at shutdown it stops every unit in reverse order
//! before the final steps.

use std::path::Path;

use super::engine::Machine;
use crate::manager::{MachineFacts, Manager};
use crate::unit::load::Loader;
use crate::unit::name::UnitName;
use crate::unit::specifier::Host;
use berth_layout::paths::DEBUG_SHELL_UNIT;

/// Where runtime links and units go, and where the image's units are.
const RUNTIME_UNITS: &str = "/run/systemd/system";
const VENDOR_UNITS: &str = "/usr/lib/systemd/system";

/// The unit booted into.
pub const DEFAULT_TARGET: &str = "default.target";

/// `sys_vendor` of SMBIOS to systemd-detect-virt's names.
pub fn virtualization(sys_vendor: &str) -> Option<&'static str> {
    let v = sys_vendor.trim();
    Some(match v {
        "QEMU" => "qemu",
        "Google" => "google",
        "Amazon EC2" => "amazon",
        "Microsoft Corporation" => "microsoft",
        "KVM" => "kvm",
        _ => return None,
    })
}

fn read(m: &Machine, path: &str) -> String {
    m.sys
        .read_to_string(Path::new(path))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// `ID=` and `VERSION_ID=` of `/etc/os-release`.
fn os_release(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_default()
}

/// `berth.debug`: the root shell's unit is enabled for this boot, as
/// systemd-debug-generator does for `systemd.debug_shell` (a `sysinit.target.wants/` link
/// under `/run`, so `systemctl is-enabled` says `enabled-runtime`). The unit ships in every
/// variant; only the debug variant has its shell (`ConditionPathExists=`).
fn enable_debug_shell(m: &Machine) {
    let wants = Path::new(RUNTIME_UNITS).join("sysinit.target.wants");
    let link = wants.join(DEBUG_SHELL_UNIT);
    let made = ["/run/systemd", RUNTIME_UNITS]
        .iter()
        .map(Path::new)
        .chain([wants.as_path()])
        .try_for_each(|dir| m.sys.mkdir_mode(dir, 0o755))
        .and_then(|()| {
            match m
                .sys
                .symlink(&Path::new(VENDOR_UNITS).join(DEBUG_SHELL_UNIT), &link)
            {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                other => other,
            }
        });
    if let Err(e) = made {
        m.log(&format!(
            "berth: FAILED {DEBUG_SHELL_UNIT}: cannot enable it for berth.debug at {}: {e}",
            link.display()
        ));
    }
}

/// The manager for this machine, before early boot: it knows no unit files yet.
pub fn manager<'a>(m: &Machine<'a>) -> Manager<'a> {
    let facts = MachineFacts {
        root: "/".into(),
        cmdline: String::new(),
        virtualization: None,
        first_boot: false,
    };
    let mut manager = Manager::new(
        m.sys,
        Loader::system(Path::new("/")),
        Host::default(),
        facts,
    );
    manager.own_env = std::env::vars().collect();
    manager
}

/// After early boot: what it settled (machine-id, host name, first boot) is given to the
/// manager, and `default.target`'s transaction is started.
pub fn start_default(m: &Machine, manager: &mut Manager) {
    if m.options.debug_shell {
        enable_debug_shell(m);
    }
    let os = read(m, "/etc/os-release");
    let host = Host {
        hostname: read(m, "/proc/sys/kernel/hostname"),
        machine_id: m.machine_id.clone().unwrap_or_default(),
        boot_id: read(m, "/proc/sys/kernel/random/boot_id").replace('-', ""),
        kernel_release: read(m, "/proc/sys/kernel/osrelease"),
        os_id: os_release(&os, "ID"),
        os_version_id: os_release(&os, "VERSION_ID"),
    };
    let facts = MachineFacts {
        root: "/".into(),
        cmdline: read(m, "/proc/cmdline"),
        virtualization: virtualization(&read(m, "/sys/class/dmi/id/sys_vendor")).map(str::to_owned),
        first_boot: m.first_boot,
    };
    manager.set_machine(host, facts);
    match UnitName::parse(DEFAULT_TARGET) {
        Ok(anchor) => manager.start(&anchor),
        Err(e) => m.log(&format!("berth: FAILED {DEFAULT_TARGET}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn berth_debug_enables_the_shells_unit_for_the_boot_only() {
        use crate::sys::fake::{Call, Fake};
        use berth_layout::cmdline::BootOptions;
        let f = Fake::new();
        let m = Machine::new(&f, BootOptions::parse_lenient("berth.debug").0);
        enable_debug_shell(&m);
        let link = Path::new("/run/systemd/system/sysinit.target.wants/berth-debug-shell.service");
        assert!(f.calls().contains(&Call::Symlink(
            "/usr/lib/systemd/system/berth-debug-shell.service".into(),
            link.into()
        )));
        // Twice (a restarted PID 1 never happens, but the link may be there): no error.
        enable_debug_shell(&m);
        assert!(
            !f.logs().iter().any(|l| l.contains("FAILED")),
            "{:?}",
            f.logs()
        );
    }

    #[test]
    fn clouds_by_vendor() {
        assert_eq!(virtualization("QEMU\n"), Some("qemu"));
        assert_eq!(virtualization("Google"), Some("google"));
        assert_eq!(virtualization("Dell Inc."), None);
    }

    #[test]
    fn os_release_values() {
        let text = "NAME=\"Berth\"\nID=berth\nVERSION_ID=\"0.1.0\"\n";
        assert_eq!(os_release(text, "ID"), "berth");
        assert_eq!(os_release(text, "VERSION_ID"), "0.1.0");
    }
}
