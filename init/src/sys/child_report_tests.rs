use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use super::*;
use crate::sys::sandbox::{MountOp, Sandbox};
use crate::sys::service_spawn::SpawnError;

fn spec() -> CommandSpawn {
    CommandSpawn {
        working_directory: "/srv/work".into(),
        cgroup: Some("/sys/fs/cgroup/system.slice/x.service".into()),
        nice: Some(5),
        rlimits: vec![(nix::libc::RLIMIT_NOFILE as i32, Some(1), Some(2))],
        credentials: Some((1000, 100, Vec::new())),
        sandbox: Some(Sandbox {
            new_uts: false,
            new_net: false,
            mounts: vec![
                MountOp::Bind {
                    source: "/srv/a".into(),
                    target: "/srv/a".into(),
                    recursive: true,
                },
                MountOp::ReadOnly {
                    target: "/usr".into(),
                    flags: MsFlags::MS_NODEV,
                },
            ],
            bounding_set: Some(0),
            origins: vec![
                (PathBuf::from("/"), "ProtectSystem=strict".into()),
                (PathBuf::from("/srv/a"), "ReadWritePaths=/srv/a".into()),
            ],
        }),
        ..CommandSpawn::new("x.service", Path::new("/bin/sh"), vec!["sh".into()])
    }
}

#[test]
fn the_record_is_four_native_words() {
    let f = ChildReport {
        failure: ChildFailure {
            step: Step::Namespace,
            index: 2,
            errno: nix::libc::ENOENT,
        },
        pid: 4321,
    };
    let bytes = f.encode();
    let mut want = Vec::new();
    want.extend_from_slice(&226u32.to_ne_bytes());
    want.extend_from_slice(&2u32.to_ne_bytes());
    want.extend_from_slice(&2i32.to_ne_bytes());
    want.extend_from_slice(&4321u32.to_ne_bytes());
    assert_eq!(bytes.to_vec(), want);
    assert_eq!(ChildReport::decode(&bytes), Some(f));
    assert_eq!(ChildReport::decode(&bytes[..15]), None, "short");
    let mut unknown = bytes;
    unknown[0..4].copy_from_slice(&223u32.to_ne_bytes());
    assert_eq!(ChildReport::decode(&unknown), None, "223 is no step");
}

#[test]
fn steps_have_systemds_names_and_exit_statuses() {
    assert_eq!(Step::Namespace.name(), "NAMESPACE");
    assert_eq!(Step::Namespace.exit_status(), 226);
    assert_eq!(Step::Chdir.exit_status(), 200);
    assert_eq!(Step::Exec.name(), "EXEC");
    assert_eq!(Step::NoNewPrivileges.name(), "NO_NEW_PRIVILEGES");
    for step in STEPS {
        assert_eq!(Step::from_code(step as u32), Some(step));
        assert_ne!(step.name(), "?", "{step:?} has a name");
    }
}

#[test]
fn a_record_written_into_the_pipe_comes_back_and_none_when_nothing_was_written() {
    let pipe = ReportPipe::new().unwrap();
    let f = ChildFailure {
        step: Step::Chdir,
        index: NO_INDEX,
        errno: nix::libc::EACCES,
    };
    pipe.reporter().report(&f);
    // Written here, so the "child" is this process.
    let pid = std::process::id();
    assert_eq!(pipe.take(), Some(ChildReport { failure: f, pid }));
    assert_eq!(
        ReportPipe::new().unwrap().take(),
        None,
        "no record, no wait"
    );
}

#[test]
fn failures_are_said_with_the_setting_that_asked_for_them() {
    let spec = spec();
    let said = |step, index, errno| {
        SpawnError::child(&spec, &ChildFailure { step, index, errno }, 1).to_string()
    };
    assert_eq!(
        said(Step::Namespace, 0, nix::libc::ENOENT),
        "ReadWritePaths=/srv/a: bind mount: No such file or directory"
    );
    assert_eq!(
        said(Step::Namespace, 1, nix::libc::EPERM),
        "ProtectSystem=strict: read-only remount /usr: Operation not permitted"
    );
    assert_eq!(
        said(Step::Namespace, NO_INDEX, nix::libc::EPERM),
        "mount namespace: unshare: Operation not permitted"
    );
    assert_eq!(
        said(Step::Chdir, NO_INDEX, nix::libc::ENOENT),
        "WorkingDirectory=/srv/work: chdir: No such file or directory"
    );
    assert_eq!(
        said(Step::Limits, 0, nix::libc::EPERM),
        "LimitNOFILE=: setrlimit: Operation not permitted"
    );
    assert_eq!(
        said(Step::User, NO_INDEX, nix::libc::EAGAIN),
        "User=1000: setuid: Resource temporarily unavailable"
    );
    assert_eq!(
        said(Step::Capabilities, 21, nix::libc::EPERM),
        "CapabilityBoundingSet=: drop CAP_SYS_ADMIN: Operation not permitted"
    );
    assert_eq!(
        said(Step::Exec, NO_INDEX, nix::libc::ENOENT),
        "cannot start /bin/sh: No such file or directory"
    );
}
