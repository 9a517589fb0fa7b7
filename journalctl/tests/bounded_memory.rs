//! `run` holds what a command shape needs, not the journal: a source of millions of
//! synthetic entries made one at a time, output thrown away, and the peak of the bytes
//! allocated while it runs (a counting global allocator, this test binary's own) must
//! stay under a few MiB whatever the entry count. Collecting the entries, as `run` once
//! did, peaks at hundreds of MiB here, so the bound can fail.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use berth_journalctl::entry::Entry;
use berth_journalctl::{args, run, Direction, Source, Stream};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only counts are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: `p` was allocated by `System` with `layout` (through `alloc` above).
        unsafe { System.dealloc(p, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The counters are process-wide: one measurement at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Bytes allocated at the peak of `f`, above what was live when it started.
fn peak_during(f: impl FnOnce()) -> usize {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed).saturating_sub(base)
}

const ENTRIES: u64 = 1_000_000;
const BOOTS: [&str; 2] = [
    "0123456789abcdef0123456789abcdef",
    "fedcba9876543210fedcba9876543210",
];
const BOUND: usize = 1 << 20;

fn entry(i: u64) -> Entry {
    let boot = BOOTS[usize::from(i >= ENTRIES / 2)];
    Entry {
        realtime: 1_700_000_000_000_000 + i * 1000,
        monotonic: i * 1000,
        boot_id: boot.into(),
        cursor: format!("s=0;i={i:x};b={boot}"),
        seqnum: i + 1,
        fields: vec![
            (
                "_SYSTEMD_UNIT".into(),
                format!("svc{}.service", i % 8).into_bytes(),
            ),
            ("PRIORITY".into(), format!("{}", 3 + i % 4).into_bytes()),
            (
                "SYSLOG_IDENTIFIER".into(),
                format!("svc{}", i % 8).into_bytes(),
            ),
            ("_PID".into(), format!("{}", 300 + i % 8).into_bytes()),
            (
                "MESSAGE".into(),
                format!("request {i} served in {} ms", i % 977).into_bytes(),
            ),
        ],
    }
}

/// `ENTRIES` entries, made as they are drawn.
struct Synthetic;

impl Source for Synthetic {
    fn entries(&mut self, direction: Direction) -> Result<Stream<'_>, String> {
        Ok(match direction {
            Direction::Forward => Box::new((0..ENTRIES).map(entry)),
            Direction::Backward => Box::new((0..ENTRIES).rev().map(entry)),
        })
    }
    fn disk_usage(&mut self) -> Result<u64, String> {
        Ok(0)
    }
    fn vacuum(&mut self, _: Option<u64>, _: Option<u64>) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }
}

fn peak_of(command: &str) -> usize {
    let argv: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
    let options = args::parse(&argv).expect("parse");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut code = 0;
    let peak = peak_during(|| {
        code = run(&options, &mut Synthetic, 0, None, &mut std::io::sink()).code;
    });
    assert_eq!(code, 0, "{command}");
    peak
}

#[test]
fn the_counter_sees_a_held_journal() {
    // A tenth of what collecting would cost: the bound must be far below it, or the test
    // proves nothing.
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let peak = peak_during(|| {
        let held: Vec<Entry> = (0..ENTRIES / 10).map(entry).collect();
        assert_eq!(held.len() as u64, ENTRIES / 10);
    });
    assert!(
        peak > 4 * BOUND,
        "a tenth of the journal held: {peak} bytes"
    );
}

#[test]
fn every_shape_runs_in_bounded_memory() {
    for command in [
        "--no-pager",
        "-o verbose",
        "-r -b -1",
        "-n 10",
        "-n 1000 -r",
        "-u svc3 -p info -g 99",
        "--list-boots",
    ] {
        let peak = peak_of(command);
        eprintln!("journalctl {command}: peak {peak} bytes allocated");
        assert!(
            peak < BOUND,
            "journalctl {command}: {peak} bytes at the peak over {ENTRIES} entries"
        );
    }
}
