//! Reading a container's cgroup: CPU and memory usage for ContainerStats and the OOM-kill
//! count for the exit reason. Handles cgroup v2 (the Berth image) and v1 (hosts in
//! hybrid mode, where the OCI runtime uses the v1 controllers).

use std::path::{Path, PathBuf};

/// A cgroup filesystem root and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupFs {
    root: PathBuf,
    v2: bool,
}

/// Usage numbers of one cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// Cumulative CPU time in nanoseconds.
    pub cpu_usage_nanos: u64,
    /// Memory in use, page cache included.
    pub memory_usage_bytes: u64,
    /// Usage minus inactive file cache: what the kubelet evicts on.
    pub memory_working_set_bytes: u64,
    /// Anonymous memory.
    pub memory_rss_bytes: u64,
}

impl CgroupFs {
    /// The host's cgroup filesystem at /sys/fs/cgroup.
    pub fn detect() -> Self {
        Self::at(Path::new("/sys/fs/cgroup"))
    }

    /// A cgroup filesystem mounted at `root` (a fake tree in tests); v2 when the root has
    /// `cgroup.controllers`.
    pub fn at(root: &Path) -> Self {
        CgroupFs {
            root: root.to_path_buf(),
            v2: root.join("cgroup.controllers").exists(),
        }
    }

    /// Whether this is the unified (v2) hierarchy.
    pub fn is_v2(&self) -> bool {
        self.v2
    }

    /// The directory of `cgroup` (a cgroupfs path like `/berth/pod-x/c1`) for `controller`
    /// (ignored on v2).
    pub fn dir(&self, controller: &str, cgroup: &str) -> PathBuf {
        let rel = cgroup.trim_start_matches('/');
        if self.v2 {
            self.root.join(rel)
        } else {
            self.root.join(controller).join(rel)
        }
    }

    /// Whether the cgroup exists (in any controller, on v1).
    pub fn exists(&self, cgroup: &str) -> bool {
        if self.v2 {
            return self.dir("", cgroup).is_dir();
        }
        [
            "cpu", "cpuacct", "memory", "pids", "devices", "freezer", "blkio", "cpuset", "hugetlb",
            "systemd",
        ]
        .iter()
        .any(|c| self.dir(c, cgroup).is_dir())
    }

    /// CPU and memory usage of `cgroup`; `None` if it does not exist.
    pub fn stats(&self, cgroup: &str) -> Option<CgroupStats> {
        if self.v2 {
            let dir = self.dir("", cgroup);
            let cpu =
                read_keyed(&dir.join("cpu.stat"), "usage_usec").map(|us| us.saturating_mul(1000));
            let usage = read_number(&dir.join("memory.current"));
            let stat = std::fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
            if cpu.is_none() && usage.is_none() {
                return None;
            }
            let usage = usage.unwrap_or(0);
            let inactive = keyed(&stat, "inactive_file").unwrap_or(0);
            Some(CgroupStats {
                cpu_usage_nanos: cpu.unwrap_or(0),
                memory_usage_bytes: usage,
                memory_working_set_bytes: usage.saturating_sub(inactive),
                memory_rss_bytes: keyed(&stat, "anon").unwrap_or(0),
            })
        } else {
            let cpu = read_number(&self.dir("cpuacct", cgroup).join("cpuacct.usage"));
            let mem = self.dir("memory", cgroup);
            let usage = read_number(&mem.join("memory.usage_in_bytes"));
            if cpu.is_none() && usage.is_none() {
                return None;
            }
            let usage = usage.unwrap_or(0);
            let stat = std::fs::read_to_string(mem.join("memory.stat")).unwrap_or_default();
            let inactive = keyed(&stat, "total_inactive_file").unwrap_or(0);
            Some(CgroupStats {
                cpu_usage_nanos: cpu.unwrap_or(0),
                memory_usage_bytes: usage,
                memory_working_set_bytes: usage.saturating_sub(inactive),
                memory_rss_bytes: keyed(&stat, "total_rss").unwrap_or(0),
            })
        }
    }

    /// Whether the kernel's OOM killer killed a process of `cgroup`.
    pub fn oom_killed(&self, cgroup: &str) -> bool {
        let count = if self.v2 {
            read_keyed(&self.dir("", cgroup).join("memory.events"), "oom_kill")
        } else {
            read_keyed(
                &self.dir("memory", cgroup).join("memory.oom_control"),
                "oom_kill",
            )
        };
        count.unwrap_or(0) > 0
    }
}

fn read_number(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn read_keyed(path: &Path, key: &str) -> Option<u64> {
    keyed(&std::fs::read_to_string(path).ok()?, key)
}

/// The value of `key` in a flat-keyed cgroup file (`key value` lines).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: PathBuf, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn v2_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root.join("cgroup.controllers"), "cpu memory\n");
        let c = root.join("berth/pod-1/c1");
        write(c.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n");
        write(c.join("memory.current"), "10000\n");
        write(
            c.join("memory.stat"),
            "anon 4000\nfile 6000\ninactive_file 2500\n",
        );
        write(
            c.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        );
        let fs = CgroupFs::at(root);
        assert!(fs.is_v2());
        let s = fs.stats("/berth/pod-1/c1").unwrap();
        assert_eq!(
            s,
            CgroupStats {
                cpu_usage_nanos: 1_500_000,
                memory_usage_bytes: 10000,
                memory_working_set_bytes: 7500,
                memory_rss_bytes: 4000
            }
        );
        assert!(fs.oom_killed("/berth/pod-1/c1"));
        assert!(fs.exists("/berth/pod-1/c1"));
        assert_eq!(fs.stats("/berth/none"), None);
        assert!(!fs.oom_killed("/berth/none"));
    }

    #[test]
    fn v1_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root.join("cpuacct/berth/c1/cpuacct.usage"), "123456789\n");
        write(root.join("memory/berth/c1/memory.usage_in_bytes"), "9000\n");
        write(
            root.join("memory/berth/c1/memory.stat"),
            "cache 100\nrss 50\ntotal_rss 700\ntotal_inactive_file 10000\n",
        );
        write(
            root.join("memory/berth/c1/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        );
        let fs = CgroupFs::at(root);
        assert!(!fs.is_v2());
        let s = fs.stats("berth/c1").unwrap();
        assert_eq!(
            s,
            CgroupStats {
                cpu_usage_nanos: 123456789,
                memory_usage_bytes: 9000,
                memory_working_set_bytes: 0,
                memory_rss_bytes: 700
            }
        );
        assert!(!fs.oom_killed("/berth/c1"));
        assert!(fs.exists("/berth/c1"));
        assert!(!fs.exists("/berth/c2"));
    }
}
