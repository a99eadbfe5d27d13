//! The settings service: profiles (NetworkManager keyfiles and TOML) on the
//! system bus through the 0.8 settings-service interface. One library, two
//! scopes (`scope.rs`): the system's profiles as
//! `org.freedesktop.NetworkManagerSystemSettings` (the `nm-system-settings`
//! binary, root) and one user's as `org.freedesktop.NetworkManagerUserSettings`
//! (the `nm-user-settings` binary, run as that user), whose secrets go to
//! the user's keyring when a Secret Service runs (`keyring.rs`).

pub mod config;
mod files;
pub mod keyring;
pub mod scope;
mod service;
mod store;
mod watch;

use std::sync::{Arc, Mutex};

use anyhow::Context;
use nm_dbus::names::SETTINGS_PATH;
use nm_runtime::Paths;
use tracing::{info, warn};

pub use crate::config::Config;
pub use crate::scope::{Kind, Scope, UserDirs};
use crate::service::{Daemon, SettingsIface, SystemIface};
use crate::store::Store;

/// Loads the scope's profiles, serves them on the system bus under the
/// scope's name and follows their folders until SIGTERM/SIGINT.
pub async fn serve(scope: Scope, paths: Paths, config: Config) -> anyhow::Result<()> {
    files::create_dirs(&scope)?;

    let mut store = Store::default();
    let mut skipped = 0usize;
    for (kind, dir) in &scope.dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut names: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        names.sort();
        for path in names {
            match files::load(&path, *kind, &scope) {
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
    nm_runtime::trim_heap();

    let bus_name = scope.bus_name();
    let dirs = scope.dirs.clone();
    let serves_hostname = scope.serves_hostname();
    if let Some(address) = &scope.session_bus {
        info!(address = %address, "secrets go to the keyring when a Secret Service runs on this session bus");
    }
    let keyring = keyring::Keyring::new(scope.session_bus.clone());
    let daemon = Arc::new(Daemon { scope, store: Mutex::new(store), paths, config, keyring });
    let mut builder =
        zbus::connection::Builder::system().serve_at(SETTINGS_PATH, SettingsIface { daemon: daemon.clone() });
    if serves_hostname {
        builder = builder.serve_at(SETTINGS_PATH, SystemIface { daemon: daemon.clone() });
    }
    let bus = builder.build().await.context("connecting to the system bus")?;
    // Nobody can be listening before the name is owned: export quietly.
    let initial: Vec<u32> = daemon.store().ids().collect();
    for id in initial {
        service::export(&bus, &daemon, id).await.context("exporting a profile")?;
    }
    watch::spawn(bus.clone(), daemon.clone(), dirs)?;
    // The name last: once it is owned, every profile is there to be listed.
    bus.request_name(bus_name).await.with_context(|| format!("owning {bus_name}"))?;
    nm_runtime::notify_ready("serving profiles");
    nm_runtime::spawn_watchdog();
    info!("ready on the bus as {bus_name}");

    nm_runtime::shutdown_signal().await?;
    nm_runtime::notify_stopping();
    Ok(())
}
