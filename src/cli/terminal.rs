//! What the command line does on a terminal: colour on standard output (`--color`,
//! `NO_COLOR`), a progress line on standard error (never when it is not a terminal, or with
//! `--quiet`), and `--verbose`'s line per provider request.

use crate::http::RequestObserver;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set or TERM is dumb
    Auto,
    Always,
    Never,
}

/// Whether standard output gets colour.
pub fn colour(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
        }
    }
}

/// Whether a progress line may be drawn: standard error is a terminal and not `--quiet`.
pub fn progress_allowed(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// A progress line on standard error, redrawn in place at most ten times a second.
pub struct Progress {
    what: String,
    total: Option<usize>,
    done: usize,
    started: Instant,
    drawn: Option<Instant>,
}

impl Progress {
    pub fn new(what: &str, total: Option<usize>) -> Progress {
        Progress {
            what: what.to_string(),
            total,
            done: 0,
            started: Instant::now(),
            drawn: None,
        }
    }

    /// One more done; the line is redrawn if the last drawing is old enough (the first
    /// always is).
    pub fn step(&mut self) {
        self.advance(1);
    }

    /// `n` more done, as [`Progress::step`].
    pub fn advance(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.done += n;
        if self
            .drawn
            .is_none_or(|at| at.elapsed() >= Duration::from_millis(100))
            || Some(self.done) == self.total
        {
            self.draw();
        }
    }

    pub fn draw(&mut self) {
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.done as f64 / elapsed;
        let line = match self.total {
            // A rate needs some time behind it.
            Some(total) if elapsed < 0.5 => format!("{} {}/{total}", self.what, self.done),
            Some(total) => {
                let left = total.saturating_sub(self.done) as f64;
                let eta = if rate > 0.0 {
                    format!(", ETA {}", short(left / rate))
                } else {
                    String::new()
                };
                format!("{} {}/{total} ({rate:.0}/s{eta})", self.what, self.done)
            }
            None => format!("{} {}", self.what, self.done),
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
        self.drawn = Some(Instant::now());
    }

    /// Takes the line away (before other output, and at the end).
    pub fn clear(&mut self) {
        if self.drawn.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

fn short(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Sees the provider requests of `list`, `plan` and `run`: a progress line of requests made
/// while listing (on a terminal), and with `--verbose` a line per request.
pub struct Requests {
    progress: Option<Mutex<Progress>>,
    verbose: bool,
    seen: AtomicUsize,
}

impl Requests {
    pub fn new(progress: bool, verbose: bool) -> Requests {
        Requests {
            progress: progress
                .then(|| Mutex::new(Progress::new("listing: provider requests", None))),
            verbose,
            seen: AtomicUsize::new(0),
        }
    }

    /// The listing is over: the progress line goes.
    pub fn done(&self) {
        if let Some(p) = &self.progress {
            p.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }
}

impl RequestObserver for Requests {
    fn request(&self, account: &str, provider: &'static str, result: &'static str, took: Duration) {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        if self.verbose {
            if let Some(p) = &self.progress {
                p.lock().unwrap_or_else(|e| e.into_inner()).clear();
            }
            eprintln!(
                "request #{n}: account {account} ({provider}): {result} in {} ms",
                took.as_millis()
            );
        }
        if let Some(p) = &self.progress {
            p.lock().unwrap_or_else(|e| e.into_inner()).step();
        }
    }
}
