//! `cargo xtask`: the project's developer tasks (alias in .cargo/config.toml).
//!
//! - `test [--full]`: what CI runs (`.ci/run`): fmt, clippy, build, unit and
//!   lab tests; ends with one line `N passed, N failed`.
//! - `lab [--run CMD]`: a lab with two uplinks and the daemons, and a shell in it.
//! - `fuzz [--seconds N] [TARGET]`: run the fuzz targets under `fuzz/`.
//! - `bench settings [--count N]`: load N profiles into nm-system-settings.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod fuzz;
mod lab;
mod test;
mod util;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "nm-rs developer tasks", version)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Format check, clippy, build, unit and lab tests (as root); installs
    /// the Debian packages the tests need. Ends with `N passed, N failed`.
    Test {
        /// Also run every fuzz target for a short while.
        #[arg(long)]
        full: bool,
    },
    /// Bring up a lab (two uplinks, dnsmasq, private system bus, the daemons)
    /// and open a shell in its client namespace; leaving it tears all down.
    Lab {
        /// Run this shell command in the lab instead of an interactive shell,
        /// and exit with its status.
        #[arg(long, value_name = "CMD")]
        run: Option<String>,
        /// Use the binaries already in target/debug instead of building first.
        #[arg(long)]
        no_build: bool,
    },
    /// Run the cargo-fuzz targets under fuzz/, each for a while.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Only this target (default: all).
        target: Option<String>,
    },
    /// Benchmarks (release builds; not part of the tests).
    Bench {
        #[command(subcommand)]
        what: Bench,
    },
}

#[derive(Subcommand)]
enum Bench {
    /// Start nm-system-settings over N keyfiles: time to the bus name, time
    /// for ListConnections + GetSettings of all, and RSS.
    Settings {
        #[arg(long, default_value_t = 10_000)]
        count: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Test { full } => test::run(full),
        Task::Lab { run, no_build } => util::block_on(lab::run(run, !no_build)),
        Task::Fuzz { seconds, target } => fuzz::run(seconds, target.as_deref()),
        Task::Bench { what: Bench::Settings { count } } => util::block_on(bench::settings(count)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
