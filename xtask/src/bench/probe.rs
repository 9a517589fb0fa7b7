//! What `bench boot --against` reads inside a booted guest, the same way on both systems:
//! shell commands that work in busybox `sh` and in bash, and the parsing of their output.
//!
//! Memory is read from `/proc/<pid>/status` (VmRSS) and `smaps_rollup` (Pss) with shell
//! builtins only, so the probe starts no process that it would then count. The console
//! session that runs the probe (the shell, the programs it started, and a `login` above it)
//! is left out of the totals.

use anyhow::{bail, Context, Result};

/// One line per process with a user address space: `@proc PID PPID RSS PSS COMM` (KiB).
pub const PROCESSES: &str = concat!(
    "for d in /proc/[0-9]*; do c=; r=; p=; pp=; ",
    "read -r c 2>/dev/null < $d/comm; ",
    "while read -r k v u; do case $k in VmRSS:) r=$v;; PPid:) pp=$v;; esac; done 2>/dev/null < $d/status; ",
    "while read -r k v u; do case $k in Pss:) p=$v;; esac; done 2>/dev/null < $d/smaps_rollup; ",
    "[ -n \"$p\" ] && echo \"@proc ${d#/proc/} $pp $r $p $c\"; ",
    "done; echo \"@self $$\""
);

/// The root file system's use, POSIX format: the last line's third field is KiB used.
pub const ROOT_USED: &str = "df -P -k /";

/// The offset of the kernel's log clock from CLOCK_MONOTONIC: a line written to the kernel
/// log and the monotonic clock read right after (`now at N nsecs`).
pub const CLOCK: &str = "echo berth-bench-clock > /dev/kmsg; grep -m 1 'now at' /proc/timer_list; dmesg | grep berth-bench-clock | tail -n 1";

/// A process as the probe saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub rss_kib: u64,
    pub pss_kib: u64,
    pub comm: String,
}

/// The processes and the probing shell's own pid.
#[derive(Debug)]
pub struct Processes {
    pub all: Vec<Process>,
    pub shell: u32,
}

impl Processes {
    pub fn parse(text: &str) -> Result<Processes> {
        let mut all = Vec::new();
        let mut shell = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("@proc ") {
                let mut f = rest.splitn(5, ' ');
                let mut num = |what: &str| -> Result<u64> {
                    f.next()
                        .and_then(|v| v.parse().ok())
                        .with_context(|| format!("no {what} in {line:?}"))
                };
                let pid = num("pid")?;
                let ppid = num("ppid")?;
                let rss_kib = num("RSS")?;
                let pss_kib = num("PSS")?;
                let comm = f.next().unwrap_or("").to_owned();
                all.push(Process {
                    pid: u32::try_from(pid)?,
                    ppid: u32::try_from(ppid)?,
                    rss_kib,
                    pss_kib,
                    comm,
                });
            } else if let Some(pid) = line.strip_prefix("@self ") {
                shell = Some(
                    pid.trim()
                        .parse()
                        .with_context(|| format!("bad {line:?}"))?,
                );
            }
        }
        let Some(shell) = shell else {
            bail!("the process probe printed no @self line:\n{text}");
        };
        if all.is_empty() {
            bail!("the process probe listed no process:\n{text}");
        }
        Ok(Processes { all, shell })
    }

    fn get(&self, pid: u32) -> Option<&Process> {
        self.all.iter().find(|p| p.pid == pid)
    }

    /// The probing session: the shell, its children, and its ancestors below PID 1.
    fn is_session(&self, p: &Process) -> bool {
        if p.pid == self.shell || p.ppid == self.shell {
            return true;
        }
        let mut up = self.get(self.shell).map(|s| s.ppid);
        while let Some(pid) = up.filter(|&pid| pid > 1) {
            if pid == p.pid {
                return true;
            }
            up = self.get(pid).map(|a| a.ppid);
        }
        false
    }

    /// RSS of PID 1, KiB.
    pub fn pid1_rss(&self) -> Option<u64> {
        self.get(1).map(|p| p.rss_kib)
    }

    /// RSS of the processes named `comm` (their sum), KiB; `None` when none runs.
    pub fn rss_of(&self, comm: &str) -> Option<u64> {
        let found: Vec<&Process> = self.all.iter().filter(|p| p.comm == comm).collect();
        (!found.is_empty()).then(|| found.iter().map(|p| p.rss_kib).sum())
    }

    /// `(name, PSS)` of every user process outside the probing session, largest first.
    pub fn pss_by_process(&self) -> Vec<(String, u64)> {
        let mut list: Vec<(String, u64)> = self
            .all
            .iter()
            .filter(|p| !self.is_session(p))
            .map(|p| (p.comm.clone(), p.pss_kib))
            .collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        list
    }

    /// PSS of every user process outside the probing session, KiB.
    pub fn userspace_pss(&self) -> u64 {
        self.all
            .iter()
            .filter(|p| !self.is_session(p))
            .map(|p| p.pss_kib)
            .sum()
    }
}

/// Quiets the kernel on the console (messages still reach the log), so that its lines do
/// not come between a command's output lines (a module loaded late by udev, say).
pub const QUIET_CONSOLE: &str = "dmesg -n 1";

/// The lines of a command's output without the kernel's own console lines (`[  41.45] …`),
/// which may come in between before the console is quieted.
pub(super) fn output_lines(text: &str) -> impl DoubleEndedIterator<Item = &str> {
    text.lines().filter(|l| {
        let l = l.trim_start();
        !(l.starts_with('[') && super::stamp(l).is_ok())
    })
}

/// A number printed alone on a line (`systemctl show -P` of a timestamp, say).
pub fn number(text: &str) -> Result<u64> {
    output_lines(text)
        .filter_map(|l| l.trim().parse().ok())
        .next_back()
        .with_context(|| format!("no number in {text:?}"))
}

/// KiB used on `/` from `df -P -k /`: the line of the file system mounted on `/`.
pub fn root_used(text: &str) -> Result<u64> {
    output_lines(text)
        .filter(|l| l.split_whitespace().nth(5) == Some("/"))
        .find_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        .with_context(|| format!("df printed {text:?}"))
}

/// Seconds to add to a CLOCK_MONOTONIC time to place it on the kernel log's clock.
pub fn clock_offset(text: &str) -> Result<f64> {
    let now = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("now at "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .with_context(|| format!("no `now at N nsecs` in {text:?}"))?;
    let logged = text
        .lines()
        .find(|l| l.contains("berth-bench-clock") && l.trim_start().starts_with('['))
        .with_context(|| format!("the clock line is not in the kernel log: {text:?}"))?;
    Ok(super::stamp(logged)? - now as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "@proc 1 0 3000 2500 init\n@proc 200 1 9000 7000 containerd\n\
        @proc 300 1 4000 3000 login\n@proc 301 300 5000 4000 bash\n@proc 302 301 900 800 bash\n\
        @proc 400 1 2000 1500 systemd-journal\n@self 301\n";

    #[test]
    fn the_probing_session_is_not_counted() {
        let p = Processes::parse(SAMPLE).unwrap();
        assert_eq!(p.pid1_rss(), Some(3000));
        assert_eq!(p.rss_of("containerd"), Some(9000));
        assert_eq!(p.rss_of("berth-runtime"), None);
        // init, containerd and journald; not login, the shell or its child.
        assert_eq!(p.userspace_pss(), 2500 + 7000 + 1500);
        let by_process = p.pss_by_process();
        let names: Vec<&str> = by_process.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["containerd", "init", "systemd-journal"]);
    }

    #[test]
    fn a_probe_without_its_shell_line_is_an_error() {
        assert!(Processes::parse("@proc 1 0 3 2 init\n").is_err());
        assert!(Processes::parse("@self 5\n").is_err());
        assert!(Processes::parse("@proc 1 x 3 2 init\n@self 1\n").is_err());
    }

    #[test]
    fn df_and_the_clock_are_read() {
        let df = "Filesystem     1024-blocks  Used Available Capacity Mounted on\n/dev/dm-0 80000 59392 20000 75% /\n";
        assert_eq!(root_used(df).unwrap(), 59392);
        let noisy =
            "[   41.455007] kvm: Nested Virtualization enabled\n38777748\n[   41.5] SVM: x\n";
        assert_eq!(number(noisy).unwrap(), 38777748);
        assert!(number("[   41.455007] kvm: 12\n").is_err());
        let df_noisy = format!("[   41.455007] kvm: loaded\n{df}");
        assert_eq!(root_used(&df_noisy).unwrap(), 59392);
        let clock = "now at 5123456789 nsecs\n[    5.200000] berth-bench-clock\n";
        assert!((clock_offset(clock).unwrap() - 0.076543211).abs() < 1e-6);
        assert!(clock_offset("now at 5 nsecs\n").is_err());
    }
}
