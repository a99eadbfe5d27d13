//! The profiles of the settings services, followed over the bus: the
//! system service (`nm-system-settings`) and, while a user is logged in,
//! that user's service (`nm-user-settings`), as NetworkManager 0.7/0.8 did
//! (reference §4.3). For each: the first list when the service appears (or
//! nm-core starts), then its NewConnection, Updated and Removed signals,
//! and its disappearance. Each becomes a [`SettingsEvent`] for the engine.

use futures_util::{StreamExt, stream};
use nm_dbus::names::{
    CONNECTION_INTERFACE, SETTINGS_INTERFACE, SETTINGS_PATH, SYSTEM_INTERFACE, SYSTEM_SETTINGS, USER_SETTINGS,
};
use nm_dbus::settings_service::{SettingsConnectionProxy, SettingsProxy};
use nm_dbus::{WireSettings, settings_from_wire};
use nm_model::dbus_dict::SettingsDict;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use zbus::{Connection as Bus, MatchRule, MessageStream, OwnedObjectPath};

use crate::engine::Input;

/// Which settings service a profile comes from. Both use the same object
/// paths, so a profile is known by (source, path).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    System,
    User,
}

impl Source {
    pub fn bus_name(self) -> &'static str {
        match self {
            Source::System => SYSTEM_SETTINGS,
            Source::User => USER_SETTINGS,
        }
    }
}

/// The user a settings service runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    /// The user's name (NSS), for `connection.permissions`.
    pub name: Option<String>,
}

/// Where a service keeps a profile: its `Filename` and `Unsaved`
/// properties (additions of ours to the 0.8 interface, which did not say);
/// empty and false from a service without them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Storage {
    pub filename: String,
    pub unsaved: bool,
}

/// A profile as a service has it.
#[derive(Debug)]
pub struct Remote {
    pub path: OwnedObjectPath,
    pub dict: SettingsDict,
    pub storage: Storage,
}

/// What a settings service has when it appears (or nm-core starts).
#[derive(Debug)]
pub struct Snapshot {
    pub profiles: Vec<Remote>,
    /// The user the service runs as.
    pub owner: Owner,
    /// The system service's `Hostname` (asked together with the list, so
    /// that DHCP at start-up does not wait for one more round trip); `None`
    /// from a user's service or when it could not be read.
    pub hostname: Option<String>,
}

#[derive(Debug)]
pub enum SettingsEvent {
    Loaded(Snapshot),
    /// The service is not on the bus (at start, or it left).
    Absent,
    Added(Remote),
    Updated(Remote),
    Removed(OwnedObjectPath),
}

/// GetSettings calls in flight while loading.
const PARALLEL: usize = 32;

pub async fn connection_proxy(
    bus: &Bus,
    source: Source,
    path: &OwnedObjectPath,
) -> zbus::Result<SettingsConnectionProxy<'static>> {
    SettingsConnectionProxy::builder(bus)
        .destination(source.bus_name())
        .path(path.clone())
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
}

pub async fn settings_proxy(bus: &Bus, source: Source) -> zbus::Result<SettingsProxy<'static>> {
    SettingsProxy::builder(bus)
        .destination(source.bus_name())
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
}

/// A profile's settings and storage, asked side by side.
async fn get(bus: &Bus, source: Source, path: OwnedObjectPath) -> anyhow::Result<Remote> {
    let (wire, storage) = tokio::join!(
        async { connection_proxy(bus, source, &path).await?.get_settings().await },
        storage(bus, source, &path)
    );
    let dict = settings_from_wire(&wire?)?;
    Ok(Remote { path, dict, storage })
}

/// A profile's [`Storage`]: one `Properties.GetAll`. A service that cannot
/// say (an error, properties missing) gives the default: the profile
/// matters more than where it is kept.
pub async fn storage(bus: &Bus, source: Source, path: &OwnedObjectPath) -> Storage {
    let reply = bus
        .call_method(
            Some(source.bus_name()),
            path,
            Some("org.freedesktop.DBus.Properties"),
            "GetAll",
            &(CONNECTION_INTERFACE,),
        )
        .await;
    let mut props: std::collections::HashMap<String, zbus::OwnedVariant> =
        match reply.and_then(|r| r.body().deserialize()) {
            Ok(props) => props,
            Err(e) => {
                debug!("reading where {path} is stored: {e}");
                return Storage::default();
            }
        };
    let filename = props.remove("Filename").and_then(|v| String::try_from(v).ok()).unwrap_or_default();
    let unsaved = props.remove("Unsaved").and_then(|v| bool::try_from(v).ok()).unwrap_or(false);
    Storage { filename, unsaved }
}

/// The system service's `Hostname`: one `Properties.Get` (a proxy would
/// first look up the owner and subscribe to changes).
async fn hostname(bus: &Bus) -> anyhow::Result<String> {
    let reply = bus
        .call_method(
            Some(SYSTEM_SETTINGS),
            SETTINGS_PATH,
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &(SYSTEM_INTERFACE, "Hostname"),
        )
        .await?;
    let value: zbus::OwnedVariant = reply.body().deserialize()?;
    Ok(String::try_from(value)?)
}

/// Every profile of the service, the user the service runs as and (of the
/// system service) the hostname.
async fn load_all(bus: &Bus, dbus: &zbus::fdo::DBusProxy<'_>, source: Source) -> anyhow::Result<Snapshot> {
    // The questions at once: each is a round trip through the bus.
    let (uid, profiles, hostname) = tokio::join!(
        async { Ok::<_, anyhow::Error>(dbus.get_connection_unix_user(source.bus_name().try_into()?).await?) },
        all_profiles(bus, source),
        async {
            match source {
                Source::System => Some(hostname(bus).await),
                Source::User => None,
            }
        },
    );
    let (uid, profiles) = (uid?, profiles?);
    let hostname = hostname.and_then(|h| h.map_err(|e| warn!("reading the hostname from {SYSTEM_SETTINGS}: {e}")).ok());
    // Only a user's name is needed (`connection.permissions`); NSS may ask
    // a directory service, so not on the engine's task.
    let name = match source {
        Source::User => tokio::task::spawn_blocking(move || crate::users::name_of(uid)).await.ok().flatten(),
        Source::System => None,
    };
    let owner = Owner { uid, name };
    Ok(Snapshot { profiles, owner, hostname })
}

/// Every profile of a service: `GetAllConnections` in one round trip, or,
/// from a service without it, `ListConnections` and then each profile's
/// `GetSettings` and `GetAll`. A profile that cannot be read is left out
/// (and said so), not the others with it.
async fn all_profiles(bus: &Bus, source: Source) -> anyhow::Result<Vec<Remote>> {
    let proxy = settings_proxy(bus, source).await?;
    let unreadable = |path: &OwnedObjectPath, e: &dyn std::fmt::Display| {
        warn!("{path} of {}: left out: {e}", source.bus_name());
    };
    match proxy.get_all_connections().await {
        Ok(entries) => Ok(entries
            .into_iter()
            .filter_map(|(path, wire, filename, unsaved)| match settings_from_wire(&wire) {
                Ok(dict) => Some(Remote { path, dict, storage: Storage { filename, unsaved } }),
                Err(e) => {
                    unreadable(&path, &e);
                    None
                }
            })
            .collect()),
        Err(e) if nm_dbus::unknown_method(&e) => {
            let paths = proxy.list_connections().await?;
            Ok(stream::iter(paths)
                .map(|p| async move { (p.clone(), get(bus, source, p).await) })
                .buffer_unordered(PARALLEL)
                .filter_map(|(path, r)| async move { r.map_err(|e| unreadable(&path, &e)).ok() })
                .collect()
                .await)
        }
        Err(e) => Err(e.into()),
    }
}

/// Follows one settings service for as long as nm-core runs.
///
/// `startup_wait`: when the service is not on the bus yet at start, how
/// long to wait for it before telling the engine it is absent. The system
/// service may start beside nm-core rather than before it; until it is
/// there (or the wait is over) nm-core neither autoconnects nor says its
/// start-up is complete, so that `nm-online -s` does not pass on an empty
/// profile list.
pub async fn run(
    bus: Bus,
    tx: mpsc::UnboundedSender<Input>,
    source: Source,
    startup_wait: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    let name = source.bus_name();
    let send = |e: SettingsEvent| {
        let _ = tx.send(Input::Settings(source, e));
    };
    // Subscribe before asking and listing, so that nothing falls between:
    // to the name first, as who owns it is asked after; then to the signals
    // side by side with that question (the list, which must come after the
    // signal subscription, is asked once both are answered).
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(name)
        .path_namespace(SETTINGS_PATH)
        .build()?;
    let dbus = zbus::fdo::DBusProxy::new(&bus).await?;
    let mut owners = dbus.receive_name_owner_changed_with_args(&[(0, name)]).await?;
    let (signals, owner) = tokio::join!(
        MessageStream::for_match_rule(rule, &bus, std::num::NonZeroUsize::new(256)),
        dbus.get_name_owner(name.try_into()?),
    );
    let mut signals = signals?;

    // The two services share object paths and interfaces, and a match rule
    // on a well-known name is not enough to tell their signals apart in one
    // process: signals count only when sent by the name's current owner.
    let mut owner: Option<String> = owner.ok().map(|o| o.to_string());
    let mut present = owner.is_some();
    if present {
        match load_all(&bus, &dbus, source).await {
            Ok(snapshot) => send(SettingsEvent::Loaded(snapshot)),
            Err(e) => {
                warn!("loading profiles from {name} failed: {e}");
                send(SettingsEvent::Absent);
            }
        }
    }
    // Absent from the start: say so now, or once the start-up wait is over.
    let absent_at = match (present, startup_wait) {
        (true, _) => None,
        (false, None) => {
            send(SettingsEvent::Absent);
            None
        }
        (false, Some(wait)) => Some(tokio::time::Instant::now() + wait),
    };
    let waiting = tokio::time::sleep_until(absent_at.unwrap_or_else(tokio::time::Instant::now));
    tokio::pin!(waiting);
    let mut still_waiting = absent_at.is_some();

    loop {
        tokio::select! {
            () = &mut waiting, if still_waiting => {
                still_waiting = false;
                if !present {
                    warn!("{name} is not on the bus after {} ms; going on without profiles", startup_wait.unwrap_or_default().as_millis());
                    send(SettingsEvent::Absent);
                }
            }
            Some(change) = owners.next() => {
                let Ok(args) = change.args() else { continue };
                owner = args.new_owner().as_ref().map(|o| o.to_string());
                let now_present = owner.is_some();
                if now_present && !present {
                    debug!("{name} appeared");
                    still_waiting = false;
                    // A service owns its name only once every profile is exported.
                    match load_all(&bus, &dbus, source).await {
                        Ok(snapshot) => send(SettingsEvent::Loaded(snapshot)),
                        Err(e) => warn!("loading profiles from {name} failed: {e}"),
                    }
                } else if !now_present && present {
                    match source {
                        Source::System => warn!("{name} left the bus; keeping what is active"),
                        Source::User => info!("{name} left the bus (the user logged out)"),
                    }
                    send(SettingsEvent::Absent);
                }
                present = now_present;
            }
            Some(msg) = signals.next() => {
                let Ok(msg) = msg else { continue };
                let header = msg.header();
                if owner.is_none() || header.sender().map(|s| s.as_str()) != owner.as_deref() {
                    continue;
                }
                let (Some(iface), Some(member), Some(path)) = (header.interface(), header.member(), header.path()) else { continue };
                let path = OwnedObjectPath::from(path.to_owned());
                match (iface.as_str(), member.as_str()) {
                    (SETTINGS_INTERFACE, "NewConnection") => {
                        let Ok(new_path) = msg.body().deserialize::<OwnedObjectPath>() else { continue };
                        match get(&bus, source, new_path.clone()).await {
                            Ok(remote) => send(SettingsEvent::Added(remote)),
                            Err(e) => warn!("reading new profile {new_path}: {e}"),
                        }
                    }
                    (CONNECTION_INTERFACE, "Updated") => {
                        let Ok(wire) = msg.body().deserialize::<WireSettings>() else { continue };
                        match settings_from_wire(&wire) {
                            Ok(dict) => {
                                // An update may move the profile (to /run and back).
                                let storage = storage(&bus, source, &path).await;
                                send(SettingsEvent::Updated(Remote { path, dict, storage }));
                            }
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
