//! nm-system-settings: the system profiles (NetworkManager keyfiles and TOML
//! under /etc, /run and /usr/lib) on the system bus as
//! `org.freedesktop.NetworkManagerSystemSettings`.

mod config;
mod files;
mod service;
mod store;
mod watch;

use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::Parser;
use nm_dbus::names::{SETTINGS_PATH, SYSTEM_SETTINGS};
use nm_runtime::{CommonArgs, Paths};
use tracing::{info, warn};

use crate::service::{Daemon, SettingsIface, SystemIface};
use crate::store::{DirKind, Store};

#[derive(Parser, Debug)]
#[command(version, about = "nm-rs system settings service")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> anyhow::Result<()> {
    nm_runtime::run_daemon(run(Args::parse()))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let paths = Paths::new(args.common.root.as_deref());
    let config: config::Config = nm_runtime::load_config(&paths, args.common.config.as_deref())?;
    let dirs = files::profile_dirs(&paths);
    // /etc and /run are ours to create; /usr/lib belongs to packages.
    for (kind, dir) in &dirs {
        if *kind != DirKind::UsrLib {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }

    let mut store = Store::default();
    let mut skipped = 0usize;
    for (kind, dir) in &dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut names: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        names.sort();
        for path in names {
            match files::load(&path, *kind) {
                Ok(Some(profile)) => {
                    store.set_file(&path, Some(profile));
                }
                Ok(None) => {}
                Err(reason) => {
                    skipped += 1;
                    warn!(file = %path.display(), "skipping {}: {reason}", path.display());
                }
            }
        }
    }
    info!(profiles = store.len(), skipped, "profiles loaded");
    // Parsing thousands of files leaves freed heap behind; give it back.
    // SAFETY: malloc_trim only walks glibc's own heap and takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }

    let daemon = Arc::new(Daemon { store: Mutex::new(store), paths, config });
    let bus = zbus::connection::Builder::system()
        .serve_at(SETTINGS_PATH, SettingsIface { daemon: daemon.clone() })
        .serve_at(SETTINGS_PATH, SystemIface { daemon: daemon.clone() })
        .build()
        .await
        .context("connecting to the system bus")?;
    // Nobody can be listening before the name is owned: export quietly.
    let initial: Vec<u32> = daemon.store().ids().collect();
    for id in initial {
        service::export(&bus, &daemon, id).await.context("exporting a profile")?;
    }
    watch::spawn(bus.clone(), daemon.clone(), dirs.to_vec())?;
    // The name last: once it is owned, every profile is there to be listed.
    bus.request_name(SYSTEM_SETTINGS).await.with_context(|| format!("owning {SYSTEM_SETTINGS}"))?;
    nm_runtime::notify_ready("serving system profiles");
    nm_runtime::spawn_watchdog();
    info!("ready on the bus as {SYSTEM_SETTINGS}");

    nm_runtime::shutdown_signal().await?;
    nm_runtime::notify_stopping();
    Ok(())
}
