//! Watches the profile directories: an edit, a new file or a removal made
//! by anybody reaches the store and the bus.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt;
use inotify::{Inotify, WatchDescriptor, WatchMask};
use tracing::warn;
use zbus::Connection as Bus;

use crate::files;
use crate::service::{Daemon, publish};
use crate::store::DirKind;

/// Starts watching. Directories that do not exist are not watched.
pub fn spawn(bus: Bus, daemon: Arc<Daemon>, dirs: Vec<(DirKind, PathBuf)>) -> anyhow::Result<()> {
    let inotify = Inotify::init()?;
    let mut by_wd: HashMap<WatchDescriptor, (DirKind, PathBuf)> = HashMap::new();
    let mask = WatchMask::CLOSE_WRITE
        | WatchMask::MOVED_TO
        | WatchMask::MOVED_FROM
        | WatchMask::DELETE
        | WatchMask::CREATE
        | WatchMask::ATTRIB;
    for (kind, dir) in dirs {
        if dir.is_dir() {
            let wd = inotify.watches().add(&dir, mask)?;
            by_wd.insert(wd, (kind, dir));
        }
    }
    let mut events = inotify.into_event_stream(vec![0u8; 16 * 1024])?;
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    warn!("watching profile directories failed: {e}");
                    break;
                }
            };
            let (Some((kind, dir)), Some(name)) = (by_wd.get(&event.wd), event.name) else {
                continue;
            };
            let name: OsString = name;
            reload(&bus, &daemon, *kind, dir.join(name)).await;
        }
    });
    Ok(())
}

/// Re-reads one file and publishes what changed.
pub async fn reload(bus: &Bus, daemon: &Arc<Daemon>, kind: DirKind, path: PathBuf) {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if !files::is_profile_name(name) {
        return;
    }
    let profile = match files::load(&path, kind, &daemon.scope) {
        Ok(p) => p,
        Err(reason) => {
            warn!(file = %path.display(), "skipping {}: {reason}", path.display());
            None
        }
    };
    let changes = daemon.store().set_file(&path, profile);
    publish(bus, daemon, changes).await;
}
