//! The bus side: NetworkManager's public API only (so nmctl works against
//! NetworkManager too). Objects come from `GetManagedObjects` on
//! `/org/freedesktop` and are kept current from signals ([`Watch`]); methods
//! are plain calls on `org.freedesktop.NetworkManager`.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result};
use futures_util::{StreamExt, stream};
use nm_dbus::{WireSettings, from_variant, settings_from_wire, settings_to_wire};
use nm_model::dbus_dict::SettingsDict;
use zbus::fdo::{DBusProxy, NameOwnerChangedStream};
use zbus::proxy::{CacheProperties, MethodFlags};
use zbus::{MatchRule, MessageStream, OwnedObjectPath, OwnedVariant, Proxy};

use crate::exit::{self, fail, from_bus};
use crate::objects::*;
use crate::view::Profile;

const NM: &str = "org.freedesktop.NetworkManager";
const OBJECT_MANAGER_PATH: &str = "/org/freedesktop";
const ROOT: &str = "/";

type WireObjects = HashMap<OwnedObjectPath, HashMap<String, HashMap<String, OwnedVariant>>>;

fn props_from_wire(path: &str, wire: HashMap<String, OwnedVariant>) -> Props {
    wire.into_iter()
        .filter_map(|(k, v)| match from_variant(&v) {
            Ok(v) => Some((k, v)),
            Err(_) => {
                // A property nmctl cannot represent is one it does not need.
                let _ = path;
                None
            }
        })
        .collect()
}

fn interfaces_from_wire(path: &str, wire: HashMap<String, HashMap<String, OwnedVariant>>) -> Interfaces {
    wire.into_iter().map(|(iface, props)| (iface, props_from_wire(path, props))).collect()
}

pub struct Client {
    bus: zbus::Connection,
}

impl Client {
    /// The system bus (`DBUS_SYSTEM_BUS_ADDRESS` when set).
    pub async fn connect() -> Result<Client> {
        let bus =
            zbus::Connection::system().await.map_err(|e| fail(exit::NOT_RUNNING, format!("no system bus: {e}")))?;
        Ok(Client { bus })
    }

    async fn proxy<'a>(&self, path: &'a str, iface: &'a str) -> Result<Proxy<'a>> {
        zbus::proxy::Builder::new(&self.bus)
            .destination(NM)
            .path(path)
            .interface(iface)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .context("making a D-Bus proxy")
    }

    pub async fn running(&self) -> Result<bool> {
        let dbus = DBusProxy::new(&self.bus).await?;
        Ok(dbus.name_has_owner(NM.try_into()?).await?)
    }

    /// Fails with "NetworkManager is not running" (status 8) when it is not.
    pub async fn require_running(&self) -> Result<()> {
        if self.running().await? { Ok(()) } else { Err(fail(exit::NOT_RUNNING, "NetworkManager is not running")) }
    }

    pub async fn objects(&self) -> Result<ObjectStore> {
        self.objects_if_running()
            .await?
            .map_err(|e| from_bus("reading NetworkManager's objects", e))?
            .ok_or_else(|| fail(exit::NOT_RUNNING, "NetworkManager is not running"))
    }

    /// `GetManagedObjects`, asked without letting the bus start anything:
    /// `Ok(None)` when no one owns NetworkManager's name, so one call answers
    /// both "is it running" and "what does it have".
    async fn objects_if_running(&self) -> Result<std::result::Result<Option<ObjectStore>, zbus::Error>> {
        let om = self.proxy(OBJECT_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager").await?;
        let wire =
            match om.call_with_flags::<_, _, WireObjects>("GetManagedObjects", MethodFlags::NO_AUTO_START, &()).await {
                Ok(wire) => wire.unwrap_or_default(),
                Err(zbus::Error::FDO(e))
                    if matches!(*e, zbus::fdo::Error::ServiceUnknown(_) | zbus::fdo::Error::NameHasNoOwner(_)) =>
                {
                    return Ok(Ok(None));
                }
                Err(e) => return Ok(Err(e)),
            };
        Ok(Ok(Some(ObjectStore::new(
            wire.into_iter().map(|(p, ifaces)| (p.to_string(), interfaces_from_wire(p.as_str(), ifaces))).collect(),
        ))))
    }

    /// `Properties.GetAll` of one interface of one object.
    pub async fn get_all(&self, path: &str, iface: &str) -> Result<Props> {
        let p = self.proxy(path, "org.freedesktop.DBus.Properties").await?;
        let wire: HashMap<String, OwnedVariant> =
            p.call("GetAll", &(iface,)).await.map_err(|e| from_bus("reading properties", e))?;
        Ok(props_from_wire(path, wire))
    }

    pub async fn get_settings(&self, path: &str) -> Result<SettingsDict> {
        let p = self.proxy(path, SETTINGS_CONNECTION).await?;
        let wire: WireSettings = p.call("GetSettings", &()).await.map_err(|e| from_bus("reading a profile", e))?;
        settings_from_wire(&wire).map_err(|e| fail(exit::FAILURE, format!("profile {path}: {e}")))
    }

    /// Every profile with its settings (profiles that cannot be read are left out).
    pub async fn profiles(&self, store: &ObjectStore) -> Result<Vec<Profile>> {
        let paths: Vec<String> = store.with_interface(SETTINGS_CONNECTION).map(str::to_string).collect();
        let mut out = self.profiles_at(paths).await;
        for p in &mut out {
            p.filename = store.str(&p.path, SETTINGS_CONNECTION, "Filename");
        }
        Ok(out)
    }

    /// The profiles at `paths` with their settings, without file names
    /// (those are object properties); unreadable ones are left out.
    pub async fn profiles_at(&self, paths: Vec<String>) -> Vec<Profile> {
        let mut out: Vec<Profile> = stream::iter(paths)
            .map(|path| async move {
                let settings = self.get_settings(&path).await.ok()?;
                Some(Profile { path, settings, filename: String::new() })
            })
            .buffer_unordered(16)
            .filter_map(|p| async move { p })
            .collect()
            .await;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// `ListConnections`, asked without letting the bus start anything:
    /// `Ok(None)` when no one owns NetworkManager's name.
    async fn profile_paths_if_running(&self) -> Result<std::result::Result<Option<Vec<String>>, zbus::Error>> {
        let settings = self.proxy(SETTINGS_PATH, SETTINGS).await?;
        match settings
            .call_with_flags::<_, _, Vec<OwnedObjectPath>>("ListConnections", MethodFlags::NO_AUTO_START, &())
            .await
        {
            Ok(paths) => Ok(Ok(Some(paths.unwrap_or_default().into_iter().map(|p| p.to_string()).collect()))),
            Err(zbus::Error::FDO(e))
                if matches!(*e, zbus::fdo::Error::ServiceUnknown(_) | zbus::fdo::Error::NameHasNoOwner(_)) =>
            {
                Ok(Ok(None))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    pub async fn add_connection(&self, dict: &SettingsDict, temporary: bool) -> Result<String> {
        let wire = settings_to_wire(dict).map_err(|e| fail(exit::USAGE, e.to_string()))?;
        let p = self.proxy(SETTINGS_PATH, SETTINGS).await?;
        let method = if temporary { "AddConnectionUnsaved" } else { "AddConnection" };
        let path: OwnedObjectPath = p.call(method, &(wire,)).await.map_err(|e| from_bus("adding the connection", e))?;
        Ok(path.to_string())
    }

    pub async fn update(&self, path: &str, dict: &SettingsDict, temporary: bool) -> Result<()> {
        let wire = settings_to_wire(dict).map_err(|e| fail(exit::USAGE, e.to_string()))?;
        let p = self.proxy(path, SETTINGS_CONNECTION).await?;
        let method = if temporary { "UpdateUnsaved" } else { "Update" };
        p.call::<_, _, ()>(method, &(wire,)).await.map_err(|e| from_bus("updating the connection", e))
    }

    pub async fn delete(&self, path: &str) -> Result<()> {
        let p = self.proxy(path, SETTINGS_CONNECTION).await?;
        p.call::<_, _, ()>("Delete", &()).await.map_err(|e| from_bus("deleting the connection", e))
    }

    fn object_path(p: Option<&str>) -> Result<OwnedObjectPath> {
        Ok(OwnedObjectPath::try_from(p.unwrap_or(ROOT).to_string())?)
    }

    /// `ActivateConnection`: the new active connection's path.
    pub async fn activate(&self, profile: Option<&str>, device: Option<&str>) -> Result<Result<String, zbus::Error>> {
        let p = self.proxy(MANAGER_PATH, MANAGER).await?;
        let args = (Self::object_path(profile)?, Self::object_path(device)?, Self::object_path(None)?);
        Ok(p.call::<_, _, OwnedObjectPath>("ActivateConnection", &args).await.map(|ac| ac.to_string()))
    }

    /// `AddAndActivateConnection` of a nearly empty profile the daemon completes.
    pub async fn add_and_activate(&self, dict: &SettingsDict, device: &str) -> Result<String> {
        let wire = settings_to_wire(dict).map_err(|e| fail(exit::USAGE, e.to_string()))?;
        let p = self.proxy(MANAGER_PATH, MANAGER).await?;
        let args = (wire, Self::object_path(Some(device))?, Self::object_path(None)?);
        let (_, ac): (OwnedObjectPath, OwnedObjectPath) =
            p.call("AddAndActivateConnection", &args).await.map_err(|e| from_bus("activating", e))?;
        Ok(ac.to_string())
    }

    pub async fn deactivate(&self, ac: &str) -> Result<()> {
        let p = self.proxy(MANAGER_PATH, MANAGER).await?;
        p.call::<_, _, ()>("DeactivateConnection", &(Self::object_path(Some(ac))?,))
            .await
            .map_err(|e| from_bus("deactivating", e))
    }

    pub async fn disconnect(&self, device: &str) -> Result<()> {
        let p = self.proxy(device, DEVICE).await?;
        p.call::<_, _, ()>("Disconnect", &()).await.map_err(|e| from_bus("disconnecting", e))
    }

    /// Subscribes to NetworkManager's name and signals, then reads its
    /// objects; nothing may fall between the subscriptions and the read.
    /// Two round trips, not four: the signal subscription and the read
    /// leave side by side, in that order (both are sent on their first poll,
    /// and the bus handles one connection's messages in order). The name
    /// subscription goes first on its own, as zbus holds its subscription
    /// table while a subscription is being made; the answer to the read
    /// also says whether NetworkManager runs.
    pub async fn watch(&self) -> Result<Watch> {
        let (mut watch, objects) = self.subscribe_and(self.objects_if_running()).await?;
        // NetworkManager present but unreadable still counts as present.
        (watch.store, watch.present) = match objects {
            Ok(Some(store)) => (store, true),
            Ok(None) => (ObjectStore::default(), false),
            Err(_) => (ObjectStore::default(), true),
        };
        Ok(watch)
    }

    /// Subscribes as [`Client::watch`] does, but reads only the profiles'
    /// paths, not the objects: what `connection up` needs before it asks
    /// (so the activation starts a round of reading sooner). The store
    /// stays empty until [`Watch::read_objects`].
    pub async fn watch_profiles(&self) -> Result<(Watch, Vec<String>)> {
        let (mut watch, paths) = self.subscribe_and(self.profile_paths_if_running()).await?;
        let (paths, present) = match paths {
            Ok(Some(paths)) => (paths, true),
            Ok(None) => (Vec::new(), false),
            Err(_) => (Vec::new(), true),
        };
        watch.present = present;
        Ok((watch, paths))
    }

    /// The subscriptions of a [`Watch`] (with an empty store), and `read`'s
    /// answer: it leaves beside the signals' subscription, after it.
    async fn subscribe_and<T>(&self, read: impl Future<Output = Result<T>>) -> Result<(Watch, T)> {
        let owners = DBusProxy::new(&self.bus).await?.receive_name_owner_changed_with_args(&[(0, NM)]).await?;
        let rule = MatchRule::builder().msg_type(zbus::message::Type::Signal).sender(NM).build()?;
        let (signals, read) =
            tokio::join!(MessageStream::for_match_rule(rule, &self.bus, std::num::NonZeroUsize::new(4096)), read);
        let watch = Watch { signals: signals?, owners, store: ObjectStore::default(), present: true, focus: None };
        Ok((watch, read?))
    }
}

/// What changed, after it was applied to [`Watch::store`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Properties {
        path: String,
        iface: String,
        changed: Vec<String>,
    },
    Added {
        path: String,
        interfaces: Vec<String>,
    },
    /// The object's interfaces as they were before removal.
    Removed {
        path: String,
        old: Interfaces,
    },
    ActiveStateChanged {
        path: String,
        state: u32,
        reason: u32,
    },
    DeviceStateChanged {
        path: String,
        new: u32,
        old: u32,
        reason: u32,
    },
    ProfileUpdated {
        path: String,
    },
    /// NetworkManager took its name (the store was read again).
    Appeared,
    /// NetworkManager left the bus (the store is empty).
    Vanished,
    Other,
}

/// NetworkManager's objects, followed.
pub struct Watch {
    signals: MessageStream,
    owners: NameOwnerChangedStream,
    pub store: ObjectStore,
    pub present: bool,
    /// When set, only these objects are kept current (see [`Watch::focus`]).
    focus: Option<Vec<String>>,
}

impl Watch {
    /// From now on only `paths` are kept current; signals about other
    /// objects are passed over unread. Waiting for an activation, reading
    /// the IP and DHCP objects it makes (their every option) and the
    /// manager's changes was most of nmctl's work.
    pub fn focus(&mut self, paths: Vec<String>) {
        self.focus = Some(paths);
    }

    /// Reads every object into the store (after [`Client::watch_profiles`]).
    /// Signals that arrived since the subscription are still to be read and
    /// applied over it: each shows a state older than the one read, which
    /// the next signal of its object brings forward again.
    pub async fn read_objects(&mut self, client: &Client) -> Result<()> {
        self.store = client.objects().await?;
        Ok(())
    }

    /// Reads one activation into the store: the active connection and its
    /// devices (`Properties.GetAll` of each), all `connection up` needs
    /// while it waits, rather than every object. An activation already
    /// gone leaves the store without it (its `StateChanged` is among the
    /// signals still to be read). Signals that arrived before are older
    /// than what is read, as with [`Watch::read_objects`].
    pub async fn read_activation(&mut self, client: &Client, ac: &str) -> Result<()> {
        let Ok(props) = client.get_all(ac, ACTIVE).await else {
            return Ok(());
        };
        self.store.add(ac, [(ACTIVE.to_string(), props)].into_iter().collect());
        for d in self.store.paths(ac, ACTIVE, "Devices") {
            if let Ok(props) = client.get_all(&d, DEVICE).await {
                self.store.add(&d, [(DEVICE.to_string(), props)].into_iter().collect());
            }
        }
        Ok(())
    }

    /// Reads the manager and its active connections (`Properties.GetAll`
    /// of each) into the store: all `connection down` needs to find what
    /// a profile has up, rather than every object.
    pub async fn read_actives(&mut self, client: &Client) -> Result<()> {
        let manager = client.get_all(MANAGER_PATH, MANAGER).await?;
        self.store.add(MANAGER_PATH, [(MANAGER.to_string(), manager)].into_iter().collect());
        for ac in self.store.paths(MANAGER_PATH, MANAGER, "ActiveConnections") {
            // One that went meanwhile is not there to take down.
            if let Ok(props) = client.get_all(&ac, ACTIVE).await {
                self.store.add(&ac, [(ACTIVE.to_string(), props)].into_iter().collect());
            }
        }
        Ok(())
    }

    fn in_focus(&self, path: &str) -> bool {
        self.focus.as_ref().is_none_or(|f| f.iter().any(|p| p == path))
    }

    /// Fails with "NetworkManager is not running" (status 8) when it was
    /// not when the watch began.
    pub fn require_present(&self) -> Result<()> {
        if self.present { Ok(()) } else { Err(fail(exit::NOT_RUNNING, "NetworkManager is not running")) }
    }

    /// Waits for the next signal and applies it.
    pub async fn next(&mut self, client: &Client) -> Result<Event> {
        tokio::select! {
            Some(change) = self.owners.next() => {
                let now = change.args().ok().and_then(|a| a.new_owner().as_ref().map(|_| ())).is_some();
                self.present = now;
                if now {
                    self.store = client.objects().await.unwrap_or_default();
                    Ok(Event::Appeared)
                } else {
                    self.store = ObjectStore::default();
                    Ok(Event::Vanished)
                }
            }
            Some(msg) = self.signals.next() => {
                let msg = msg.context("reading a signal")?;
                Ok(self.apply(&msg))
            }
            else => Err(anyhow::anyhow!("the bus connection closed")),
        }
    }

    fn apply(&mut self, msg: &zbus::Message) -> Event {
        let h = msg.header();
        let (Some(iface), Some(member), Some(path)) = (h.interface(), h.member(), h.path()) else {
            return Event::Other;
        };
        let path = path.as_str().to_string();
        let body = msg.body();
        match (iface.as_str(), member.as_str()) {
            ("org.freedesktop.DBus.Properties", "PropertiesChanged") if !self.in_focus(&path) => Event::Other,
            ("org.freedesktop.DBus.ObjectManager", "InterfacesAdded")
                if self.focus.is_some()
                    && body
                        .deserialize_ignore_signature::<(OwnedObjectPath,)>()
                        .is_ok_and(|(obj,)| !self.in_focus(obj.as_str())) =>
            {
                Event::Other
            }
            ("org.freedesktop.DBus.Properties", "PropertiesChanged") => {
                let Ok((iface, changed, _)) =
                    body.deserialize::<(String, HashMap<String, OwnedVariant>, Vec<String>)>()
                else {
                    return Event::Other;
                };
                let props = props_from_wire(&path, changed);
                let names = props.keys().cloned().collect();
                self.store.change(&path, &iface, props);
                Event::Properties { path, iface, changed: names }
            }
            ("org.freedesktop.DBus.ObjectManager", "InterfacesAdded") => {
                let Ok((obj, ifaces)) =
                    body.deserialize::<(OwnedObjectPath, HashMap<String, HashMap<String, OwnedVariant>>)>()
                else {
                    return Event::Other;
                };
                let interfaces = interfaces_from_wire(obj.as_str(), ifaces);
                let names = interfaces.keys().cloned().collect();
                self.store.add(obj.as_str(), interfaces);
                Event::Added { path: obj.to_string(), interfaces: names }
            }
            ("org.freedesktop.DBus.ObjectManager", "InterfacesRemoved") => {
                let Ok((obj, ifaces)) = body.deserialize::<(OwnedObjectPath, Vec<String>)>() else {
                    return Event::Other;
                };
                let old = self.store.remove(obj.as_str(), &ifaces);
                Event::Removed { path: obj.to_string(), old }
            }
            (ACTIVE, "StateChanged") => match body.deserialize::<(u32, u32)>() {
                Ok((state, reason)) => {
                    let mut p = BTreeMap::new();
                    p.insert("State".to_string(), nm_model::Value::UInt32(state));
                    if self.store.has(&path, ACTIVE) {
                        self.store.change(&path, ACTIVE, p);
                    }
                    Event::ActiveStateChanged { path, state, reason }
                }
                Err(_) => Event::Other,
            },
            (DEVICE, "StateChanged") => match body.deserialize::<(u32, u32, u32)>() {
                Ok((new, old, reason)) => Event::DeviceStateChanged { path, new, old, reason },
                Err(_) => Event::Other,
            },
            (SETTINGS_CONNECTION, "Updated") => Event::ProfileUpdated { path },
            _ => Event::Other,
        }
    }
}
