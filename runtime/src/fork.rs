//! The one `fork` of the runtime's helper programs (`berth-monitor` and the pod's PID
//! namespace init), behind a safe wrapper. A fork is only sound while the process has one
//! thread: a child of a threaded process could find a lock held forever or the allocator
//! mid-way. The wrapper checks that (the kernel's own count in /proc/self/task) instead of
//! trusting each caller's comment.

use std::io;

/// Which side of [`fork_single_threaded`] this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The original process; `child` is the new one's pid.
    Parent {
        child: i32,
    },
    Child,
}

/// Forks the calling process, refusing (with an error that says why) when it has more
/// than one thread.
pub fn fork_single_threaded() -> io::Result<Side> {
    let threads = std::fs::read_dir("/proc/self/task")?.count();
    if threads != 1 {
        return Err(io::Error::other(format!(
            "refusing to fork a process with {threads} threads"
        )));
    }
    // SAFETY: the process has exactly one thread (checked above, and no thread can have
    // been started between that check and this call, since this thread is the only one),
    // so the child may run any code: no other thread held a lock or was mid-way through
    // an allocation when the address space was copied.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { child }) => Ok(Side::Parent {
            child: child.as_raw(),
        }),
        Ok(nix::unistd::ForkResult::Child) => Ok(Side::Child),
        Err(e) => Err(io::Error::from(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threaded_process_is_refused() {
        // The test harness runs tests on threads of its own, and this one adds another.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let helper = std::thread::spawn(move || rx.recv());
        let err = fork_single_threaded().expect_err("refused");
        assert!(err.to_string().contains("threads"), "{err}");
        drop(tx);
        let _ = helper.join();
    }
}
