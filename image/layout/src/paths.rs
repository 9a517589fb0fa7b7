//! Paths inside the image that the builder and the booted system (or two programs in it)
//! must agree on, as in the design's "In-image paths" table. Absolute paths are as the
//! running system sees them; the builder writes them relative to the root it assembles.

/// Stage 1 in the initramfs: what the kernel runs (`rdinit=` default).
pub const STAGE1: &str = "/init";
/// Stage 2 in the verified root (`usr/sbin/init` through the merged-usr `sbin -> usr/sbin`
/// link): the same program as stage 1, which stage 1 requires in a root before switching
/// to it and which is stage 2 when executed as PID 1. Stage 1 itself goes on as stage 2
/// in its own process, without executing it.
pub const STAGE2: &str = "/sbin/init";
/// Marks the initramfs as one (systemd's convention), relative to the initramfs root.
pub const INITRD_RELEASE: &str = "etc/initrd-release";

/// The kernel modules of each release in the root:
/// `<MODULES>/<release>/{modules.dep,modules.builtin}`.
pub const MODULES: &str = "/usr/lib/modules";
/// The same in the initramfs, which has no merged `/usr`.
pub const INITRAMFS_MODULES: &str = "/lib/modules";
/// The dependency index the builder generates, in a release's module folder.
pub const MODULES_DEP: &str = "modules.dep";
/// The kernel's list of built-in modules, in a release's module folder.
pub const MODULES_BUILTIN: &str = "modules.builtin";
/// The names `request_module` asks for, by module, in a release's module folder.
pub const MODULES_ALIAS: &str = "modules.alias";

/// Unit files: shipped (verified), then the runtime's (`/etc` is a tmpfs overlay).
pub const UNIT_DIRS: [&str; 2] = ["/usr/lib/systemd/system", "/etc/systemd/system"];
/// Folders of `NAME.conf` boot-time configuration, searched in this order, later names
/// overriding earlier ones (as systemd does): `<dir>/modules-load.d`, `sysctl.d`, ...
pub const CONFD_BASES: [&str; 3] = ["/usr/lib", "/run", "/etc"];

/// Where STATE is mounted; the stateful binds (`/var`, `/home`, ...) come from it.
pub const STATE_MOUNT: &str = "/mnt/stateful_partition";
/// The machine-id as programs read it (in the `/etc` overlay, rebuilt every boot).
pub const MACHINE_ID: &str = "/etc/machine-id";
/// The machine-id kept on STATE, relative to [`STATE_MOUNT`], so it survives reboots.
pub const MACHINE_ID_ON_STATE: &str = "berth/machine-id";

/// Berth's stateless run-time folder.
pub const RUN_BERTH: &str = "/run/berth";
/// PID 1's control socket (used by `systemctl`).
pub const INIT_SOCKET: &str = "/run/berth/init.sock";
/// The CRI socket, named in `/etc/crictl.yaml`.
pub const CRI_SOCKET: &str = "/run/berth/cri.sock";
/// The CRI runtime's stateful root (on STATE).
pub const RUNTIME_ROOT: &str = "/var/lib/berth/runtime";
/// The CRI runtime's stateless state.
pub const RUNTIME_STATE: &str = "/run/berth/runtime";
/// User data from the cloud's metadata service.
pub const USER_DATA: &str = "/run/berth/user-data";

/// Journal files when STATE persists them.
pub const JOURNAL_PERSISTENT: &str = "/var/log/journal";
/// Journal files when STATE is a tmpfs.
pub const JOURNAL_VOLATILE: &str = "/run/log/journal";

/// The unit of the debug variant's root shell on the serial console, shipped in
/// `/usr/lib/systemd/system` and enabled for the boot by PID 1 when the kernel command
/// line has `berth.debug`.
pub const DEBUG_SHELL_UNIT: &str = "berth-debug-shell.service";
