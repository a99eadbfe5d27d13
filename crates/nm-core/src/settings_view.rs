//! The profiles of nm-system-settings, followed over the bus: the first
//! list when the service appears (or nm-core starts), then its NewConnection,
//! Updated and Removed signals, and its disappearance. Each becomes a
//! [`SettingsEvent`] for the engine.

use futures_util::{StreamExt, TryStreamExt, stream};
use nm_dbus::names::{CONNECTION_INTERFACE, SETTINGS_INTERFACE, SETTINGS_PATH, SYSTEM_SETTINGS};
use nm_dbus::settings_service::{SettingsConnectionProxy, SettingsProxy};
use nm_dbus::{WireSettings, settings_from_wire};
use nm_model::dbus_dict::SettingsDict;
use tokio::sync::mpsc;
use tracing::{debug, warn};
use zbus::{Connection as Bus, MatchRule, MessageStream, OwnedObjectPath};

use crate::engine::Input;

#[derive(Debug)]
pub enum SettingsEvent {
    /// Every profile of the service, when it appears (or at start).
    Loaded(Vec<(OwnedObjectPath, SettingsDict)>),
    /// The service is not on the bus (at start, or it left).
    Absent,
    Added(OwnedObjectPath, SettingsDict),
    Updated(OwnedObjectPath, SettingsDict),
    Removed(OwnedObjectPath),
}

/// GetSettings calls in flight while loading.
const PARALLEL: usize = 32;

pub async fn connection_proxy(bus: &Bus, path: &OwnedObjectPath) -> zbus::Result<SettingsConnectionProxy<'static>> {
    SettingsConnectionProxy::builder(bus)
        .destination(SYSTEM_SETTINGS)
        .path(path.clone())
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
}

pub async fn settings_proxy(bus: &Bus) -> zbus::Result<SettingsProxy<'static>> {
    SettingsProxy::builder(bus)
        .destination(SYSTEM_SETTINGS)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
}

async fn get(bus: &Bus, path: &OwnedObjectPath) -> anyhow::Result<SettingsDict> {
    let wire: WireSettings = connection_proxy(bus, path).await?.get_settings().await?;
    Ok(settings_from_wire(&wire)?)
}

async fn load_all(bus: &Bus) -> anyhow::Result<Vec<(OwnedObjectPath, SettingsDict)>> {
    let paths = settings_proxy(bus).await?.list_connections().await?;
    stream::iter(paths)
        .map(|p| async move { get(bus, &p).await.map(|d| (p, d)) })
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await
}

/// Follows the system settings service for as long as nm-core runs.
pub async fn run(bus: Bus, tx: mpsc::UnboundedSender<Input>) -> anyhow::Result<()> {
    let send = |e: SettingsEvent| {
        let _ = tx.send(Input::Settings(e));
    };
    // Subscribe before listing, so that nothing falls between the two.
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(SYSTEM_SETTINGS)
        .path_namespace(SETTINGS_PATH)
        .build()?;
    let mut signals = MessageStream::for_match_rule(rule, &bus, std::num::NonZeroUsize::new(256)).await?;
    let dbus = zbus::fdo::DBusProxy::new(&bus).await?;
    let mut owners = dbus.receive_name_owner_changed_with_args(&[(0, SYSTEM_SETTINGS)]).await?;

    let mut present = dbus.name_has_owner(SYSTEM_SETTINGS.try_into()?).await?;
    if present {
        match load_all(&bus).await {
            Ok(list) => send(SettingsEvent::Loaded(list)),
            Err(e) => {
                warn!("loading profiles from {SYSTEM_SETTINGS} failed: {e}");
                send(SettingsEvent::Absent);
            }
        }
    } else {
        send(SettingsEvent::Absent);
    }

    loop {
        tokio::select! {
            Some(change) = owners.next() => {
                let Ok(args) = change.args() else { continue };
                let now_present = args.new_owner().is_some();
                if now_present && !present {
                    debug!("{SYSTEM_SETTINGS} appeared");
                    // Give a freshly started service a moment? No: it owns its
                    // name only once every profile is exported.
                    match load_all(&bus).await {
                        Ok(list) => send(SettingsEvent::Loaded(list)),
                        Err(e) => warn!("loading profiles from {SYSTEM_SETTINGS} failed: {e}"),
                    }
                } else if !now_present && present {
                    warn!("{SYSTEM_SETTINGS} left the bus; keeping what is active");
                    send(SettingsEvent::Absent);
                }
                present = now_present;
            }
            Some(msg) = signals.next() => {
                let Ok(msg) = msg else { continue };
                let header = msg.header();
                let (Some(iface), Some(member), Some(path)) = (header.interface(), header.member(), header.path()) else { continue };
                let path = OwnedObjectPath::from(path.to_owned());
                match (iface.as_str(), member.as_str()) {
                    (SETTINGS_INTERFACE, "NewConnection") => {
                        let Ok(new_path) = msg.body().deserialize::<OwnedObjectPath>() else { continue };
                        match get(&bus, &new_path).await {
                            Ok(dict) => send(SettingsEvent::Added(new_path, dict)),
                            Err(e) => warn!("reading new profile {new_path}: {e}"),
                        }
                    }
                    (CONNECTION_INTERFACE, "Updated") => {
                        let Ok(wire) = msg.body().deserialize::<WireSettings>() else { continue };
                        match settings_from_wire(&wire) {
                            Ok(dict) => send(SettingsEvent::Updated(path, dict)),
                            Err(e) => warn!("profile {path} updated with bad settings: {e}"),
                        }
                    }
                    (CONNECTION_INTERFACE, "Removed") => send(SettingsEvent::Removed(path)),
                    _ => {}
                }
            }
            else => break,
        }
    }
    Ok(())
}
