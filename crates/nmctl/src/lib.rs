//! nmctl, the nm-rs command line. It speaks only NetworkManager's public
//! D-Bus API, so it works against NetworkManager too.
//!
//! - [`cli`]: the clap definitions ([`command`] hands them to xtask for
//!   completions and man pages);
//! - [`client`]: the bus (objects, signals, method calls) into [`objects`];
//! - [`view`] turns objects into plain structs, [`render`] those into text
//!   or JSON (pure, snapshot-tested), with [`table`] for layout and colour;
//! - [`wait`]: wait-online and activation waits as pure decisions plus
//!   signal-driven loops; [`spinner`] shows progress on a terminal;
//! - [`props`]: `setting.property value` pairs; [`edit`]: profiles as files;
//! - [`run`], [`device_cmd`], [`connection_cmd`], [`monitor`]: the commands;
//!   [`exit`]: exit statuses.

pub mod cli;
pub mod client;
pub mod connection_cmd;
pub mod device_cmd;
pub mod edit;
pub mod exit;
pub mod monitor;
pub mod names;
pub mod objects;
pub mod props;
pub mod render;
pub mod run;
pub mod spinner;
pub mod table;
pub mod view;
pub mod wait;

/// The whole command line, for completions and man pages.
pub fn command() -> clap::Command {
    <cli::Cli as clap::CommandFactory>::command()
}

/// Parses the arguments, runs the command, prints any error, returns the
/// exit status.
pub fn main() -> std::process::ExitCode {
    use clap::Parser;
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nmctl: error: starting the runtime: {e}");
            return std::process::ExitCode::from(exit::FAILURE);
        }
    };
    match runtime.block_on(run::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nmctl: error: {e:#}");
            std::process::ExitCode::from(exit::code_of(&e))
        }
    }
}
