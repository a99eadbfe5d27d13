//! `cargo xtask`: the project's developer tasks (alias in .cargo/config.toml).
//!
//! - `test [--full]`: what CI runs (`.ci/run`): fmt, clippy, build, unit and
//!   lab tests; ends with one line `N passed, N failed`.
//! - `lab [--run CMD]`: a lab with two uplinks and the daemons, and a shell in it.
//! - `fuzz [--seconds N] [TARGET]`: run the fuzz targets under `fuzz/`.
//! - `bench settings [--count N]`: load N profiles into nm-system-settings.
//! - `bench core [--runs N] [--only GROUP] [--daemons …]`: nm-rs beside
//!   NetworkManager and systemd-networkd on the shared peer-bench lab.
//! - `bench dhcp [--runs N] [--only GROUP] [--daemons …]`: DHCPv4 there.
//! - `bench link-order`: the daemons under callgrind there; writes the
//!   order of their functions for release builds (link-order/daemons.order).
//! - `completions --out DIR`, `man --out DIR`: nmctl's shell completions and
//!   man pages from its clap definitions.
//! - `install [--destdir DIR]`, `deb`: the FHS layout and a Debian package.
//! - `boot-test`: the package booted under systemd-nspawn, checked end to end.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod boot_test;
mod checks;
mod deb;
mod docs;
mod fuzz;
mod install;
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
    /// Write nmctl's shell completions (bash, zsh, fish, elvish, PowerShell) into a directory.
    Completions {
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
    },
    /// Write nmctl's man pages (nmctl.1 and one per subcommand) into a directory.
    Man {
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
    },
    /// Install binaries, systemd units, bus policies and activation files,
    /// tmpfiles/sysusers, man pages, completions and docs (FHS places).
    Install {
        /// Install under this directory instead of / (for packaging).
        #[arg(long, value_name = "DIR", default_value = "/")]
        destdir: std::path::PathBuf,
        /// Install the debug build instead of a release build.
        #[arg(long)]
        debug: bool,
        /// Use the binaries already built.
        #[arg(long)]
        no_build: bool,
    },
    /// The packaging checks of `test` alone: `systemd-analyze verify` and
    /// `security` on the units, dbus-daemon on the policies and activation
    /// files, all installed (debug build, as built) into a temp root.
    CheckPackaging,
    /// Boot a Debian system with the package under systemd-nspawn, in a lab
    /// namespace with dnsmasq, and check it end to end (root; the Debian
    /// tree is cached in /var/cache/nm-rs/boot-test).
    BootTest {
        /// Package the binaries already built (debug).
        #[arg(long)]
        no_build: bool,
    },
    /// Build a Debian package (target/deb/nm-rs_<version>_<arch>.deb).
    Deb {
        /// Write the package into this directory.
        #[arg(long, value_name = "DIR")]
        out: Option<std::path::PathBuf>,
        /// Package the debug build instead of a release build.
        #[arg(long)]
        debug: bool,
        /// Use the binaries already built.
        #[arg(long)]
        no_build: bool,
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
    /// nm-core + nm-system-settings beside NetworkManager and systemd-networkd
    /// on the peer-bench lab (../shared/peer-bench, or $NM_RS_PEER_BENCH):
    /// 300 links at start-up, 200,000 foreign routes, re-activation, and
    /// `nmcli connection up` of a static profile. Prints medians, ratios
    /// and the targets.
    Core {
        /// Runs per daemon and group (default: 3 for links and routes, 5 for
        /// reactivate and static).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        runs: Option<u32>,
        /// Only these metric groups (comma-separated).
        #[arg(long, value_name = "GROUP", value_enum, value_delimiter = ',')]
        only: Vec<bench::CoreGroup>,
        /// The daemons to measure, in this order (comma-separated).
        #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "nm,networkd,nmrs",
              value_parser = clap::builder::PossibleValuesParser::new(bench::CORE_DAEMONS.iter().copied()))]
        daemons: Vec<String>,
        /// Scale links for the links group.
        #[arg(long, value_name = "N", default_value_t = 300)]
        links: u32,
        /// Foreign routes for the routes group.
        #[arg(long, value_name = "N", default_value_t = 200_000)]
        routes: u32,
        /// Use the release binaries already built.
        #[arg(long)]
        no_build: bool,
        /// Run nothing: print the table of an earlier run's results.tsv.
        #[arg(long, value_name = "RESULTS_TSV")]
        from: Option<std::path::PathBuf>,
    },
    /// DHCPv4: nm-core + nm-system-settings + the unprivileged nm-dhcp-helper
    /// beside NetworkManager and systemd-networkd on the peer-bench lab
    /// (dnsmasq --no-ping): cold start to address + default route (minus the
    /// harness's own fixed cost), down → up, a 1 s carrier flap, CPU to the
    /// first address, memory. Prints medians, ratios and the targets.
    Dhcp {
        /// Runs per daemon and group.
        #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
        /// Only these metric groups (comma-separated).
        #[arg(long, value_name = "GROUP", value_enum, value_delimiter = ',')]
        only: Vec<bench::DhcpGroup>,
        /// The daemons to measure, in this order (comma-separated).
        #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "nm,networkd,nmrs",
              value_parser = clap::builder::PossibleValuesParser::new(bench::CORE_DAEMONS.iter().copied()))]
        daemons: Vec<String>,
        /// Use the release binaries already built.
        #[arg(long)]
        no_build: bool,
        /// Run nothing: print the table of an earlier run's results.tsv.
        #[arg(long, value_name = "RESULTS_TSV")]
        from: Option<std::path::PathBuf>,
    },
    /// Run nm-core, nm-system-settings and nm-dhcp-helper under callgrind
    /// through the DHCP, nmcli and 300-link scenarios of the peer-bench lab
    /// and write the functions they ran, first-run first, into
    /// link-order/daemons.order: release builds link those together, so the
    /// daemons' resident code shrinks. Then relinks the release binaries.
    LinkOrder {
        /// Use the release binaries already built.
        #[arg(long)]
        no_build: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Test { full } => test::run(full),
        Task::Lab { run, no_build } => util::block_on(lab::run(run, !no_build)),
        Task::Fuzz { seconds, target } => fuzz::run(seconds, target.as_deref()),
        Task::Install { destdir, debug, no_build } => {
            install::install(&destdir, !debug, no_build).map(|()| ExitCode::SUCCESS)
        }
        Task::BootTest { no_build } => util::block_on(boot_test::run(no_build)).map(|()| ExitCode::SUCCESS),
        Task::CheckPackaging => checks::run().map(|()| ExitCode::SUCCESS),
        Task::Deb { out, debug, no_build } => deb::build(out.as_deref(), !debug, no_build).map(|deb| {
            println!("{}", deb.display());
            ExitCode::SUCCESS
        }),
        Task::Completions { out } => docs::completions(&out),
        Task::Man { out } => docs::man(&out),
        Task::Bench { what: Bench::Settings { count } } => util::block_on(bench::settings(count)),
        Task::Bench { what: Bench::LinkOrder { no_build } } => bench::link_order(!no_build),
        Task::Bench { what: Bench::Core { from: Some(results), .. } } => {
            bench::table_from(&results, bench::core_render)
        }
        Task::Bench { what: Bench::Core { runs, only, daemons, links, routes, no_build, from: None } } => {
            bench::core(bench::CoreOptions { runs, only, daemons, links, routes, build: !no_build })
        }
        Task::Bench { what: Bench::Dhcp { from: Some(results), .. } } => {
            bench::table_from(&results, bench::dhcp_render)
        }
        Task::Bench { what: Bench::Dhcp { runs, only, daemons, no_build, from: None } } => {
            bench::dhcp(bench::DhcpOptions { runs, only, daemons, build: !no_build })
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
