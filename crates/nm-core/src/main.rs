//! nm-core: devices, policy and activation behind NetworkManager's own
//! D-Bus API, so that the real nmcli drives nm-rs.

mod agents;
mod api;
mod auth;
mod auto_default;
mod bridge;
mod checkpoint;
mod config;
mod device;
mod dhcp;
mod dhcp6;
mod dhcp_client;
mod dispatcher;
mod dns;
mod engine;
mod ethtool;
mod ipconfig;
mod logind;
mod ndisc;
mod policy;
mod resolved;
mod settings_view;
mod shared;
mod software;
mod state_files;
mod supplicant;
mod tc;
mod users;

use anyhow::Context;
use nm_dbus::names::NETWORK_MANAGER;
use nm_runtime::Paths;
use tracing::info;

use crate::engine::{Engine, Input};

const CLI: nm_runtime::DaemonCli = nm_runtime::DaemonCli {
    name: "nm-core",
    version: env!("CARGO_PKG_VERSION"),
    about: "nm-rs core daemon (org.freedesktop.NetworkManager)",
    switches: &[],
    values: &[],
};

fn main() -> anyhow::Result<()> {
    nm_runtime::run_daemon(run(CLI.parse()))
}

async fn run(args: nm_runtime::Args) -> anyhow::Result<()> {
    let paths = Paths::new(args.common.root.as_deref());
    // NetworkManager's own configuration first, nm-rs.toml over it.
    let config: config::Config =
        nm_runtime::load_config_over(&paths, args.common.config.as_deref(), config::networkmanager_conf(&paths))?;
    // The kernel's dumps and the bus's handshake wait on different peers:
    // side by side.
    let (platform, bus) = tokio::join!(nm_platform::Platform::new(), zbus::connection::Builder::system().build());
    let (platform, mut kernel_events) = platform.context("opening the kernel's netlink")?;
    let bus = bus.context("connecting to the system bus")?;
    auth::init(config.core.auth());
    let (mut engine, mut inputs) = Engine::start(bus.clone(), platform, paths, config).await?;
    engine.discover().await;
    // The name once every device is exported (a client that sees it sees
    // them all), and before the subscriptions: they are answered one by one.
    bus.request_name(NETWORK_MANAGER).await.with_context(|| format!("owning {NETWORK_MANAGER}"))?;
    engine.follow();
    auth::spawn_permission_watch(bus.clone(), api::NM_PATH);
    nm_runtime::notify_ready("managing devices");
    nm_runtime::spawn_watchdog();
    nm_runtime::spawn_heap_trimmer(std::time::Duration::from_secs(2));
    info!("ready on the bus as {NETWORK_MANAGER}");

    let shutdown = nm_runtime::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            Some(e) = kernel_events.recv() => engine.handle(Input::Platform(e)).await,
            Some(i) = inputs.recv() => engine.handle(i).await,
            r = &mut shutdown => {
                r?;
                break;
            }
        }
    }
    // Addresses and routes stay: the next start takes them back (DESIGN §2, issue 3 item 7).
    nm_runtime::notify_stopping();
    engine.flush();
    Ok(())
}
