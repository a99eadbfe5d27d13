//! nm-dispatcher: runs NetworkManager dispatcher scripts for nm-core, as
//! `org.freedesktop.nm_dispatcher` with NetworkManager's `Action` contract
//! (reference §5), so scripts written for NetworkManager run unchanged.
//! The bus starts it on the first call; it leaves after a quiet spell
//! unless started with `--persist`.
//!
//! - `request.rs`: the fifteen `Action` arguments as plain data.
//! - `scripts.rs`: the folders, the order, the permission rules.
//! - `env.rs`: a script's arguments and environment (pure).
//! - `runner.rs`: exec, wait or not, the time limit.
//! - `service.rs`: the bus object and the request queue.

mod env;
mod request;
mod runner;
mod scripts;
mod service;

use std::time::Duration;

use anyhow::Context;
use nm_runtime::Paths;
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::info;

use crate::service::{BUS_NAME, Dispatcher, PATH};

const CLI: nm_runtime::DaemonCli = nm_runtime::DaemonCli {
    name: "nm-dispatcher",
    version: env!("CARGO_PKG_VERSION"),
    about: "nm-rs dispatcher: runs NetworkManager dispatcher scripts",
    switches: &[("persist", "Stay on the bus instead of leaving when idle")],
    values: &[],
};

/// `[dispatcher]` in `/etc/NetworkManager/nm-rs.toml`:
///
/// ```toml
/// [dispatcher]
/// script-timeout-ms = 600000   # a script running longer is killed
/// idle-exit-ms = 10000         # leave the bus after this long without requests
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Config {
    dispatcher: DispatcherConfig,
}

#[derive(Debug, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
struct DispatcherConfig {
    script_timeout_ms: u64,
    idle_exit_ms: u64,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        // NetworkManager's limits: 600 s per script, 10 s idle.
        DispatcherConfig { script_timeout_ms: 600_000, idle_exit_ms: 10_000 }
    }
}

fn main() -> anyhow::Result<()> {
    nm_runtime::run_daemon(run(CLI.parse()))
}

/// The bus that started us (`DBUS_STARTER_ADDRESS`, set by the bus for an
/// activated service) or the system bus.
fn bus_builder() -> zbus::connection::Builder<'static> {
    match std::env::var("DBUS_STARTER_ADDRESS") {
        Ok(address) if std::env::var("DBUS_STARTER_BUS_TYPE").is_ok_and(|t| t == "system") => {
            zbus::connection::Builder::address(address.as_str())
        }
        _ => zbus::connection::Builder::system(),
    }
}

async fn run(args: nm_runtime::Args) -> anyhow::Result<()> {
    let paths = Paths::new(args.common.root.as_deref());
    let config: Config = nm_runtime::load_config(&paths, args.common.config.as_deref())?;
    let limit = Duration::from_millis(config.dispatcher.script_timeout_ms.max(1));
    let idle = (!args.switch("persist")).then(|| Duration::from_millis(config.dispatcher.idle_exit_ms.max(1)));
    let (queue, mut requests) = mpsc::unbounded_channel();
    let bus =
        bus_builder().serve_at(PATH, Dispatcher { queue }).build().await.context("connecting to the system bus")?;
    bus.request_name(BUS_NAME).await.with_context(|| format!("owning {BUS_NAME}"))?;
    nm_runtime::notify_ready("running dispatcher scripts");
    nm_runtime::spawn_watchdog();
    info!("ready on the bus as {BUS_NAME}");

    tokio::select! {
        () = service::serve(&paths, &mut requests, limit, idle) => {}
        r = nm_runtime::shutdown_signal() => r?,
    }
    // New calls go to the next instance the bus starts; what was queued runs here.
    let _ = bus.release_name(BUS_NAME).await;
    nm_runtime::notify_stopping();
    service::drain(&paths, &mut requests, limit).await;
    Ok(())
}
