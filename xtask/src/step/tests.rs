//! The cache mechanism with a step that counts its runs.

use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{Cache, Code, Key, Step};
use crate::ui::Ui;

struct Counting {
    input: String,
    runs: Cell<u32>,
    outside: Option<PathBuf>,
}

impl Step for Counting {
    const NAME: &'static str = "counting";
    const CODE: Code = Code {
        sources: &["code.txt"],
        exclude: &[],
        crates: &[],
    };
    type Meta = String;

    fn inputs(&self, key: Key) -> Result<Key> {
        Ok(key.add("input", &self.input))
    }

    fn run(&self, dir: &Path, _ui: &Ui) -> Result<String> {
        self.runs.set(self.runs.get() + 1);
        fs::write(dir.join("out.txt"), &self.input)?;
        if let Some(outside) = &self.outside {
            fs::write(outside, &self.input)?;
        }
        Ok(format!("made from {}", self.input))
    }

    fn outputs(&self) -> Vec<PathBuf> {
        self.outside.iter().cloned().collect()
    }
}

fn step(input: &str, outside: Option<PathBuf>) -> Counting {
    Counting {
        input: input.into(),
        runs: Cell::new(0),
        outside,
    }
}

#[test]
fn a_step_runs_once_per_key_and_again_when_its_inputs_or_code_change() {
    let dir = tempfile::tempdir().unwrap();
    let (ws, work) = (dir.path().join("ws"), dir.path().join("work"));
    fs::create_dir_all(&ws).unwrap();
    fs::write(ws.join("code.txt"), "v1").unwrap();
    let ui = Ui::new(true);

    let one = step("one", None);
    let done = Cache::new(work.clone(), &ws)
        .unwrap()
        .ensure(&ui, &one)
        .unwrap();
    assert_eq!(done.meta, "made from one");
    assert_eq!(fs::read_to_string(done.dir.join("out.txt")).unwrap(), "one");
    let again = Cache::new(work.clone(), &ws)
        .unwrap()
        .ensure(&ui, &one)
        .unwrap();
    assert_eq!((one.runs.get(), again.key), (1, done.key.clone()));

    let two = step("two", None);
    let done_two = Cache::new(work.clone(), &ws)
        .unwrap()
        .ensure(&ui, &two)
        .unwrap();
    assert_eq!(two.runs.get(), 1);
    assert_ne!(done_two.key, done.key);
    assert!(!work.join("counting.tmp").exists());

    fs::write(ws.join("code.txt"), "v2").unwrap();
    Cache::new(work.clone(), &ws)
        .unwrap()
        .ensure(&ui, &two)
        .unwrap();
    assert_eq!(two.runs.get(), 2, "a code change runs the step again");
}

#[test]
fn an_outside_output_changed_or_removed_after_the_build_is_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let (ws, work) = (dir.path().join("ws"), dir.path().join("work"));
    fs::create_dir_all(&ws).unwrap();
    let outside = dir.path().join("disk.raw");
    let ui = Ui::new(true);
    let cache = Cache::new(work, &ws).unwrap();
    let disk = step("disk", Some(outside.clone()));
    cache.ensure(&ui, &disk).unwrap();
    cache.ensure(&ui, &disk).unwrap();
    assert_eq!(disk.runs.get(), 1);

    fs::write(&outside, "booted and changed").unwrap();
    cache.ensure(&ui, &disk).unwrap();
    assert_eq!(disk.runs.get(), 2);
    assert_eq!(fs::read_to_string(&outside).unwrap(), "disk");

    fs::remove_file(&outside).unwrap();
    cache.ensure(&ui, &disk).unwrap();
    assert_eq!(disk.runs.get(), 3);
}
