//! Progress for long steps: an indicatif bar or spinner on a terminal, one plain line per
//! finished step otherwise (CI logs), nothing but errors and the result with `--quiet`.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Ui {
    quiet: bool,
}

/// One running step.
pub struct Step {
    bar: ProgressBar,
    name: String,
    started: Instant,
    quiet: bool,
}

impl Ui {
    pub fn new(quiet: bool) -> Ui {
        Ui { quiet }
    }

    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// A step without a known length (a spinner).
    pub fn step(&self, name: &str) -> Step {
        self.make(name, None)
    }

    /// A step of `total` units of work (bytes): a bar.
    pub fn step_bytes(&self, name: &str, total: u64) -> Step {
        self.make(name, Some(total))
    }

    fn make(&self, name: &str, total: Option<u64>) -> Step {
        let bar = match total {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{prefix:>10} {spinner} {elapsed} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        if self.quiet {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        } else {
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        bar.set_prefix(name.to_string());
        Step {
            bar,
            name: name.to_string(),
            started: Instant::now(),
            quiet: self.quiet,
        }
    }

    /// Prints a line unless quiet.
    pub fn say(&self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    pub fn clear(&self) {}
}

impl Step {
    pub fn set_position(&self, done: u64) {
        self.bar.set_position(done);
    }

    pub fn message(&self, text: &str) {
        self.bar.set_message(text.to_string());
    }

    /// Ends the step with a one-line summary.
    pub fn finish(self, summary: &str) {
        self.bar.finish_and_clear();
        if !self.quiet {
            eprintln!(
                "{:>10} {summary} ({:.1}s)",
                self.name,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
