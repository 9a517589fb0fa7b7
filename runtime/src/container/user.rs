//! Which uid, gid and supplementary groups the container process runs as: from the CRI
//! security context, else the image's `User`, resolved against the image's own
//! `/etc/passwd` and `/etc/group` (read inside the rootfs, never the host's).

use std::path::Path;

use super::inroot::read_in_root;
use super::ContainerError;

/// The largest /etc/passwd or /etc/group read from an image.
const MAX_ACCOUNT_FILE: u64 = 4 << 20;

/// The text of an account file of the image, empty if there is none.
fn read_account_file(rootfs: &Path, path: &str) -> Result<String, ContainerError> {
    let bytes = read_in_root(rootfs, Path::new(path), MAX_ACCOUNT_FILE)?.unwrap_or_default();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The resolved identity of the container's first process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// What the request and image ask for.
#[derive(Debug, Default)]
pub struct UserRequest<'a> {
    /// `run_as_user` from the security context.
    pub uid: Option<i64>,
    /// `run_as_username` from the security context.
    pub username: &'a str,
    /// `run_as_group` from the security context.
    pub gid: Option<i64>,
    /// `supplemental_groups` from the security context.
    pub supplemental_groups: &'a [i64],
    /// SupplementalGroupsPolicy Strict: only the requested groups, not the user's
    /// groups from the image's /etc/group (Merge, the default, adds those).
    pub strict_groups: bool,
    /// The image config's `User` (`uid`, `uid:gid`, `name`, `name:group`).
    pub image_user: &'a str,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

/// Resolves the request against the rootfs.
pub fn resolve(rootfs: &Path, req: &UserRequest) -> Result<ResolvedUser, ContainerError> {
    const SC: &str = "config.linux.security_context";
    if req.gid.is_some() && req.uid.is_none() && req.username.is_empty() {
        return Err(ContainerError::invalid(
            format!("{SC}.run_as_group"),
            "set without run_as_user or run_as_username",
        ));
    }
    let passwd = read_passwd(rootfs)?;
    let groups = read_groups(rootfs)?;
    let (user_part, group_part) = if let Some(uid) = req.uid {
        (
            Some(id_u32(uid, &format!("{SC}.run_as_user"))?.to_string()),
            None,
        )
    } else if !req.username.is_empty() {
        (Some(req.username.to_string()), None)
    } else if !req.image_user.is_empty() {
        match req.image_user.split_once(':') {
            Some((u, g)) => (Some(u.to_string()), Some(g.to_string())),
            None => (Some(req.image_user.to_string()), None),
        }
    } else {
        (None, None)
    };

    let mut user = ResolvedUser::default();
    let mut name = None;
    if let Some(user_part) = user_part {
        if let Ok(uid) = user_part.parse::<u32>() {
            user.uid = uid;
            if let Some(entry) = passwd.iter().find(|e| e.uid == uid) {
                user.gid = entry.gid;
                name = Some(entry.name.clone());
            }
        } else {
            let entry = passwd.iter().find(|e| e.name == user_part).ok_or_else(|| {
                let field = if req.username.is_empty() {
                    "image.config.User"
                } else {
                    "config.linux.security_context.run_as_username"
                };
                ContainerError::invalid(
                    field,
                    format!("user {user_part:?} not found in the image's /etc/passwd"),
                )
            })?;
            user.uid = entry.uid;
            user.gid = entry.gid;
            name = Some(entry.name.clone());
        }
    }
    if let Some(group_part) = group_part {
        user.gid = match group_part.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|g| g.0 == group_part)
                .map(|g| g.1)
                .ok_or_else(|| {
                    ContainerError::invalid(
                        "image.config.User",
                        format!("group {group_part:?} not found in the image's /etc/group"),
                    )
                })?,
        };
    }
    if let Some(gid) = req.gid {
        user.gid = id_u32(gid, &format!("{SC}.run_as_group"))?;
    }
    if let Some(name) = name.as_ref().filter(|_| !req.strict_groups) {
        for (_, gid, members) in &groups {
            if members.iter().any(|m| m == name) && *gid != user.gid {
                push_unique(&mut user.additional_gids, *gid);
            }
        }
    }
    for (i, gid) in req.supplemental_groups.iter().enumerate() {
        let gid = id_u32(*gid, &format!("{SC}.supplemental_groups[{i}]"))?;
        push_unique(&mut user.additional_gids, gid);
    }
    Ok(user)
}

fn push_unique(list: &mut Vec<u32>, value: u32) {
    if !list.contains(&value) {
        list.push(value);
    }
}

fn id_u32(value: i64, field: &str) -> Result<u32, ContainerError> {
    u32::try_from(value)
        .map_err(|_| ContainerError::invalid(field, format!("{value} is not a valid id")))
}

fn read_passwd(rootfs: &Path) -> Result<Vec<PasswdEntry>, ContainerError> {
    let text = read_account_file(rootfs, "/etc/passwd")?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
            })
        })
        .collect())
}

/// `(name, gid, members)` of each `/etc/group` line.
fn read_groups(rootfs: &Path) -> Result<Vec<(String, u32, Vec<String>)>, ContainerError> {
    let text = read_account_file(rootfs, "/etc/group")?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let members = f.get(3).map(|m| {
                m.split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            });
            Some((
                f.first()?.to_string(),
                f.get(2)?.parse().ok()?,
                members.unwrap_or_default(),
            ))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nwww:x:33:33::/:/bin/false\nbad line\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nwww:x:33:\nextra:x:500:www,other\nstaff:x:50:\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn image_user_forms() {
        let dir = rootfs();
        let r = |image_user| {
            resolve(
                dir.path(),
                &UserRequest {
                    image_user,
                    ..Default::default()
                },
            )
            .unwrap()
        };
        assert_eq!(r(""), ResolvedUser::default());
        assert_eq!(
            r("www"),
            ResolvedUser {
                uid: 33,
                gid: 33,
                additional_gids: vec![500]
            }
        );
        assert_eq!(
            r("33"),
            ResolvedUser {
                uid: 33,
                gid: 33,
                additional_gids: vec![500]
            }
        );
        assert_eq!(
            r("1000"),
            ResolvedUser {
                uid: 1000,
                gid: 0,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            r("1000:7"),
            ResolvedUser {
                uid: 1000,
                gid: 7,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            r("www:staff"),
            ResolvedUser {
                uid: 33,
                gid: 50,
                additional_gids: vec![500]
            }
        );
        assert!(resolve(
            dir.path(),
            &UserRequest {
                image_user: "nobody",
                ..Default::default()
            }
        )
        .is_err());
        assert!(resolve(
            dir.path(),
            &UserRequest {
                image_user: "www:nogroup",
                ..Default::default()
            }
        )
        .is_err());
    }

    #[test]
    fn security_context_wins_over_the_image() {
        let dir = rootfs();
        let req = UserRequest {
            uid: Some(33),
            gid: Some(7),
            supplemental_groups: &[9, 500],
            image_user: "root",
            ..Default::default()
        };
        assert_eq!(
            resolve(dir.path(), &req).unwrap(),
            ResolvedUser {
                uid: 33,
                gid: 7,
                additional_gids: vec![500, 9]
            }
        );
        let req = UserRequest {
            username: "www",
            ..Default::default()
        };
        assert_eq!(resolve(dir.path(), &req).unwrap().uid, 33);
        let err = resolve(
            dir.path(),
            &UserRequest {
                gid: Some(1),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("run_as_group"), "{err}");
        let err = resolve(
            dir.path(),
            &UserRequest {
                uid: Some(-1),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("run_as_user"), "{err}");
    }

    #[test]
    fn a_hostile_passwd_is_an_error_never_a_host_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("l")).unwrap();
        // /etc/passwd -> /l/0 -> /l/1 ... -> /l/41 -> the host's /etc/passwd.
        std::os::unix::fs::symlink("/l/0", root.join("etc/passwd")).unwrap();
        for n in 0..41 {
            std::os::unix::fs::symlink(format!("/l/{}", n + 1), root.join(format!("l/{n}")))
                .unwrap();
        }
        std::os::unix::fs::symlink("/etc/passwd", root.join("l/41")).unwrap();
        let request = UserRequest {
            username: "root",
            ..Default::default()
        };
        let e = resolve(root, &request).unwrap_err();
        assert!(matches!(e, ContainerError::InRoot(_)), "{e:?}");
        // A link to /dev/zero finds no /dev/zero in the image: the user is unknown.
        std::fs::remove_file(root.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", root.join("etc/passwd")).unwrap();
        let e = resolve(root, &request).unwrap_err();
        assert!(
            e.to_string().contains("run_as_username"),
            "an unknown user, not a read of the host's /dev/zero: {e}"
        );
    }
}
