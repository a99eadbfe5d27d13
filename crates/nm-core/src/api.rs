//! NetworkManager's public D-Bus API (reference `nmcli-surface.md`).
//!
//! Each object's properties live in a plain struct behind a mutex that the
//! engine updates; the interface objects only read it, so no interface lock
//! is ever held while the engine works (a method waiting for the engine and
//! the engine waiting for that interface would deadlock). Methods that
//! change anything are sent to the engine, which owns the state and replies
//! once the bus has seen every new object (ordering rule B1).

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};

use nm_dbus::WireSettings;
use nm_dbus::errors::NmError;
use nm_model::dbus_dict;
use nm_platform::{LinkDetails, MacvlanOptions, TunOptions, VxlanOptions};
use tokio::sync::{mpsc, oneshot};
use zbus::message::Header;
use zbus::names::InterfaceName;
use zbus::object_server::{Interface, SignalEmitter};
use zbus::{Connection as Bus, OwnedObjectPath, OwnedVariant, Variant, interface};

use crate::auth::{self, Action, Caller, Domain};
use crate::engine::{Call, Input};
use crate::software;

pub const NM_PATH: &str = "/org/freedesktop/NetworkManager";
pub const SETTINGS_PATH: &str = "/org/freedesktop/NetworkManager/Settings";
pub const AGENT_MANAGER_PATH: &str = "/org/freedesktop/NetworkManager/AgentManager";
pub const DNS_MANAGER_PATH: &str = "/org/freedesktop/NetworkManager/DnsManager";
/// The version whose API nm-rs speaks (KDE needs a value; nmcli ≥ 1.46 compares it).
pub const VERSION: &str = "1.42.4";

pub fn path(kind: &str, n: u32) -> OwnedObjectPath {
    OwnedObjectPath::try_from(format!("{NM_PATH}/{kind}/{n}")).expect("a number makes a valid path")
}

pub fn root() -> OwnedObjectPath {
    OwnedObjectPath::try_from("/").expect("/ is a path")
}

/// Shared, engine-written property values of one object.
pub struct Props<T>(Arc<Mutex<T>>);

impl<T> Clone for Props<T> {
    fn clone(&self) -> Self {
        Props(self.0.clone())
    }
}

impl<T> Props<T> {
    pub fn new(value: T) -> Self {
        Props(Arc::new(Mutex::new(value)))
    }
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The properties of one interface, as `GetAll` gives them.
type Properties = HashMap<String, OwnedVariant>;

/// An interface of an exported object: its name and a copy of it.
type Exported = (InterfaceName<'static>, Arc<dyn Interface>);

pub const OBJECT_MANAGER_PATH: &str = "/org/freedesktop";
const OBJECT_MANAGER_IFACE: &str = "org.freedesktop.DBus.ObjectManager";

/// The engine's way to the bus: the objects it exports and the signals it
/// emits, queued while it handles an input and handed to the bus together
/// (`Connection::send_all` writes up to 16 messages at a time where `send`
/// makes a write, and wakes the bus daemon, for each). At start-up with 300
/// devices the engine emits about 6,000 signals, and those writes were the
/// larger part of its CPU.
///
/// It is also the `ObjectManager` at `/org/freedesktop` (zbus's is not
/// built: it announces each interface of an object in an `InterfacesAdded`
/// of its own, sent at once; a device took four): interfaces exported one
/// after the other at one path make one `InterfacesAdded`, as
/// NetworkManager's, and `GetManagedObjects` lists what was exported here.
///
/// Queued signals go out before anything that must follow them: the answer
/// to a call (ordering rule B1: the engine calls [`Outbox::send_queued`]
/// before it answers), before the engine waits on another service (clients
/// would wait with it), before `GetManagedObjects` is answered (an answer
/// newer than signals still to come would go back in time) and at the end
/// of every input. A clone shares the queue.
#[derive(Clone)]
pub struct Outbox {
    bus: Bus,
    state: Arc<Mutex<OutboxState>>,
    /// Held from taking messages off the queue until they are written, so
    /// that two sends cannot overtake each other.
    sending: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Default)]
struct OutboxState {
    queued: Vec<zbus::Message>,
    queued_bytes: usize,
    /// The last signal while it may still take in the next one: the
    /// interfaces exported at (or withdrawn from) the same path, more
    /// properties changed on the same interface of the same object. Built
    /// into `queued` as soon as anything else is queued.
    open: Option<Open>,
    /// Every exported object with a copy of each of its interfaces (they
    /// hold only shared handles, so a copy reads what the exported one
    /// reads), in the order they were exported.
    objects: HashMap<OwnedObjectPath, Vec<Exported>>,
    /// Before nm-core owns its name no client can follow its signals
    /// (their match rules name the sender org.freedesktop.NetworkManager),
    /// and the first `GetManagedObjects` shows everything: while quiet,
    /// objects are exported unannounced and signals are not built.
    quiet: bool,
}

enum Open {
    Added(OwnedObjectPath, Vec<(InterfaceName<'static>, Properties)>),
    Removed(OwnedObjectPath, Vec<InterfaceName<'static>>),
    /// `PropertiesChanged`: path, interface, values (a later one of a
    /// property replaces the earlier).
    Changed(String, String, Vec<(String, OwnedVariant)>),
}

/// How much may wait in the queue before an export sends it: an input that
/// activates hundreds of devices would otherwise hold all their signals at
/// once, and the heap they took stays fragmented after.
const QUEUE_BYTES: usize = 32 * 1024;

impl OutboxState {
    fn push(&mut self, message: zbus::Message) {
        self.queued_bytes += message.data().len();
        self.queued.push(message);
    }
}

impl Outbox {
    pub fn new(bus: Bus) -> Self {
        Outbox { bus, state: Arc::default(), sending: Arc::default() }
    }

    fn state(&self) -> MutexGuard<'_, OutboxState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn build<B>(&self, path: &str, interface: &str, member: &str, body: &B) -> zbus::Result<zbus::Message>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        let mut builder = zbus::Message::signal(path, interface, member);
        if let Some(me) = self.bus.unique_name() {
            builder = builder.sender(me);
        }
        builder.build(body)
    }

    /// Builds the open signal into the queue.
    fn close(&self, state: &mut OutboxState) {
        let built = match state.open.take() {
            None => return,
            Some(Open::Added(path, interfaces)) => {
                // In a stable order (NetworkManager's is its registration's).
                let interfaces: std::collections::BTreeMap<&str, &Properties> =
                    interfaces.iter().map(|(name, props)| (name.as_str(), props)).collect();
                self.build(OBJECT_MANAGER_PATH, OBJECT_MANAGER_IFACE, "InterfacesAdded", &(&path, interfaces))
            }
            Some(Open::Removed(path, interfaces)) => {
                let names: Vec<&str> = interfaces.iter().map(|n| n.as_str()).collect();
                self.build(OBJECT_MANAGER_PATH, OBJECT_MANAGER_IFACE, "InterfacesRemoved", &(&path, names))
            }
            Some(Open::Changed(path, interface, values)) => {
                let values: HashMap<&str, &OwnedVariant> = values.iter().map(|(k, v)| (k.as_str(), v)).collect();
                let body = (interface.as_str(), values, &[] as &[&str]);
                self.build(&path, "org.freedesktop.DBus.Properties", "PropertiesChanged", &body)
            }
        };
        match built {
            Ok(m) => state.push(m),
            Err(e) => tracing::warn!("announcing an object: {e}"),
        }
    }

    /// Quiet (see `OutboxState::quiet`) or not: nm-core is quiet from its
    /// start until it has discovered the devices, before it asks for its
    /// name.
    pub fn set_quiet(&self, quiet: bool) {
        self.state().quiet = quiet;
    }

    /// Queues a signal with `body` (a tuple of its arguments).
    pub fn signal<B>(&self, path: &str, interface: &str, member: &str, body: &B)
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        if self.state().quiet {
            return;
        }
        match self.build(path, interface, member, body) {
            Ok(m) => {
                let mut state = self.state();
                self.close(&mut state);
                state.push(m);
            }
            Err(e) => tracing::warn!("{interface}.{member} on {path}: {e}"),
        }
    }

    /// Queues `PropertiesChanged` with values (libnm ignores invalidation),
    /// in one signal with the changes queued just before on the same
    /// interface of the same object: a device's activation changes its
    /// properties in several steps with nothing else in between.
    pub fn changed(&self, path: &str, interface: &str, changed: Vec<(&str, Variant<'_>)>) {
        if self.state().quiet {
            return;
        }
        let mut owned = Vec::with_capacity(changed.len());
        for (name, value) in changed {
            match OwnedVariant::try_from(value) {
                Ok(v) => owned.push((name.to_string(), v)),
                Err(e) => tracing::warn!("{interface}.{name} on {path}: {e}"),
            }
        }
        if owned.is_empty() {
            return;
        }
        let mut state = self.state();
        match &mut state.open {
            Some(Open::Changed(p, i, values)) if p == path && i == interface => {
                for (name, value) in owned {
                    match values.iter_mut().find(|(n, _)| *n == name) {
                        Some(slot) => slot.1 = value,
                        None => values.push((name, value)),
                    }
                }
            }
            _ => {
                self.close(&mut state);
                state.open = Some(Open::Changed(path.to_string(), interface.to_string(), owned));
            }
        }
    }

    /// Sends what is queued, in order.
    pub async fn send_queued(&self) {
        self.send(true).await;
    }

    /// Sends the queue; with `close`, the open signal too (without, an
    /// announcement the engine is still adding interfaces to stays).
    async fn send(&self, close: bool) {
        let _turn = self.sending.lock().await;
        let messages = {
            let mut state = self.state();
            if close {
                self.close(&mut state);
            }
            state.queued_bytes = 0;
            std::mem::take(&mut state.queued)
        };
        if messages.is_empty() {
            return;
        }
        if let Err(e) = self.bus.send_all(&messages).await {
            tracing::warn!("sending {} signals: {e}", messages.len());
        }
    }

    /// Sends the queue if it has grown long, unless `path`'s announcement
    /// is open (it would be split).
    async fn send_if_long(&self, path: &str) {
        let send = {
            let state = self.state();
            let open_here = match &state.open {
                Some(Open::Added(p, _) | Open::Removed(p, _)) => p.as_str() == path,
                _ => false,
            };
            state.queued_bytes >= QUEUE_BYTES && !open_here
        };
        if send {
            self.send_queued().await;
        }
    }

    /// Exports `iface` at `path` and queues its announcement (with the
    /// other interfaces exported at `path` just before, if nothing else was
    /// queued in between). Hands `iface` back if `path` has it already.
    pub async fn at<I: Interface + Clone>(&self, path: &str, iface: I) -> zbus::Result<Option<I>> {
        self.send_if_long(path).await;
        let path = OwnedObjectPath::try_from(path)?;
        let copy: Arc<dyn Interface> = Arc::new(iface.clone());
        let server = self.bus.object_server();
        // Read first: a failure leaves nothing exported and unannounced.
        let quiet = self.state().quiet;
        let props = if quiet {
            Properties::new()
        } else {
            let emitter = SignalEmitter::new(&self.bus, path.clone())?;
            copy.get_all(server, &self.bus, None, &emitter).await?
        };
        if let Some(back) = server.at(&path, iface).await? {
            return Ok(Some(back));
        }
        let mut state = self.state();
        state.objects.entry(path.clone()).or_default().push((I::name(), copy));
        if quiet {
            return Ok(None);
        }
        match &mut state.open {
            Some(Open::Added(open, interfaces)) if *open == path => interfaces.push((I::name(), props)),
            _ => {
                self.close(&mut state);
                state.open = Some(Open::Added(path, vec![(I::name(), props)]));
            }
        }
        Ok(None)
    }

    /// Withdraws interface `I` at `path` and queues that (with the other
    /// interfaces withdrawn from `path` just before).
    pub async fn remove<I: Interface>(&self, path: &str) -> zbus::Result<bool> {
        self.send_if_long(path).await;
        let path = OwnedObjectPath::try_from(path)?;
        let gone = self.bus.object_server().remove::<I, _>(&path).await?;
        let mut state = self.state();
        if let Some(interfaces) = state.objects.get_mut(&path) {
            interfaces.retain(|(name, _)| *name != I::name());
            if interfaces.is_empty() {
                state.objects.remove(&path);
            }
        }
        if state.quiet {
            return Ok(gone);
        }
        match &mut state.open {
            Some(Open::Removed(open, names)) if *open == path => names.push(I::name()),
            _ => {
                self.close(&mut state);
                state.open = Some(Open::Removed(path, vec![I::name()]));
            }
        }
        Ok(gone)
    }

    /// Every exported object with its interfaces' properties, once the
    /// signals queued before are sent: a client that subscribed first and
    /// then asks never gets a change older than the answer after it.
    async fn managed_objects(&self) -> zbus::fdo::Result<ManagedObjects> {
        self.send(false).await;
        let objects: Vec<_> = self.state().objects.iter().map(|(p, i)| (p.clone(), i.clone())).collect();
        let server = self.bus.object_server();
        let mut all = Vec::with_capacity(objects.len());
        for (path, interfaces) in objects {
            let emitter = SignalEmitter::new(&self.bus, path.clone())?;
            let mut props = Vec::with_capacity(interfaces.len());
            for (name, iface) in interfaces {
                let values = iface.get_all(server, &self.bus, None, &emitter).await?;
                props.push((name, values));
            }
            all.push((path, props));
        }
        Ok(ManagedObjects(all))
    }
}

/// `GetManagedObjects`' answer, `a{oa{sa{sv}}}`, kept as lists: the paths
/// and each object's interface names are unique already, so they are not
/// hashed into maps only to be serialised and freed (at 300 devices, 6 %
/// less of nm-core's CPU per `nmcli device status`).
pub struct ManagedObjects(Vec<(OwnedObjectPath, Vec<(InterfaceName<'static>, Properties)>)>);

impl zbus::Type for ManagedObjects {
    const SIGNATURE: &'static zbus::Signature =
        <HashMap<OwnedObjectPath, HashMap<String, Properties>> as zbus::Type>::SIGNATURE;
}

impl serde::Serialize for ManagedObjects {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(path, interfaces)| (path, ObjectInterfaces(interfaces))))
    }
}

/// One object's `a{sa{sv}}` in [`ManagedObjects`].
struct ObjectInterfaces<'a>(&'a [(InterfaceName<'static>, Properties)]);

impl serde::Serialize for ObjectInterfaces<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, props)| (name.as_str(), props)))
    }
}

/// `org.freedesktop.DBus.ObjectManager` at `/org/freedesktop` (see [`Outbox`]).
#[derive(Clone)]
pub struct ObjectManagerIface {
    pub out: Outbox,
}

#[interface(name = "org.freedesktop.DBus.ObjectManager")]
impl ObjectManagerIface {
    async fn get_managed_objects(&self) -> zbus::fdo::Result<ManagedObjects> {
        self.out.managed_objects().await
    }

    #[zbus(signal)]
    async fn interfaces_added(
        emitter: &SignalEmitter<'_>,
        object_path: OwnedObjectPath,
        interfaces_and_properties: HashMap<String, HashMap<String, OwnedVariant>>,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn interfaces_removed(
        emitter: &SignalEmitter<'_>,
        object_path: OwnedObjectPath,
        interfaces: Vec<String>,
    ) -> zbus::Result<()>;
}

/// The engine's inbox, for the interface objects.
#[derive(Clone)]
pub struct EngineHandle(pub mpsc::UnboundedSender<Input>);

impl EngineHandle {
    pub async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T, NmError>>) -> Call) -> Result<T, NmError> {
        let (tx, rx) = oneshot::channel();
        self.0.send(Input::Call(make(tx))).map_err(|_| NmError::failed("nm-core is stopping"))?;
        rx.await.map_err(|_| NmError::failed("nm-core is stopping"))?
    }

    /// Hands the engine a call without waiting for its answer. For property
    /// setters: zbus holds the object tree while a `Set` runs, and the
    /// engine's answer may add or remove objects (an activation starting
    /// or ending), which would wait for the setter that waits for it.
    pub fn tell<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T, NmError>>) -> Call) -> Result<(), NmError> {
        let (tx, _answer_not_awaited) = oneshot::channel();
        self.0.send(Input::Call(make(tx))).map_err(|_| NmError::failed("nm-core is stopping"))
    }
}

/// `connection.permissions` and id of the profile exported at `path`
/// (`None` when nothing is: the engine then says the path is unknown).
async fn profile_acl(bus: &Bus, path: &str) -> Option<(Vec<String>, String)> {
    let iface = bus.object_server().interface::<_, ConnectionIface>(path).await.ok()?;
    let iface = iface.get().await;
    let props = iface.props.lock();
    Some((auth::permissions_of(&props.conn), props.conn.id().unwrap_or_default().to_string()))
}

/// The profile an active connection was made from, as [`profile_acl`].
async fn active_profile_acl(bus: &Bus, active: &str) -> Option<(Vec<String>, String)> {
    let iface = bus.object_server().interface::<_, ActiveIface>(active).await.ok()?;
    let connection = iface.get().await.props.lock().connection.clone();
    profile_acl(bus, connection.as_str()).await
}

/// AddAndActivate makes a profile and activates it: network-control, the
/// right to add that profile, and the caller among its users.
async fn authorize_add_and_activate(
    bus: &Bus,
    hdr: &Header<'_>,
    dict: &nm_model::dbus_dict::SettingsDict,
) -> Result<(), NmError> {
    let caller = auth::authorize(bus, hdr, Action::NetworkControl, Domain::Manager).await?;
    let perms = auth::permissions_in_dict(dict);
    let interactive = auth::interactive(hdr);
    auth::check(bus, &caller, auth::modify_action(&[&perms]), interactive, Domain::Manager).await?;
    auth::check_acl(&caller, &perms, &id_in_dict(dict), Domain::Manager).await
}

/// A device property set through `Properties.Set` (Managed, Autoconnect):
/// network-control, as NetworkManager asks.
async fn authorize_setter(bus: &Bus, hdr: Option<&Header<'_>>) -> Result<(), NmError> {
    authorize_set(bus, hdr, Action::NetworkControl).await
}

async fn authorize_set(bus: &Bus, hdr: Option<&Header<'_>>, action: Action) -> Result<(), NmError> {
    let hdr = hdr.ok_or_else(|| NmError::access_denied("property set without a message"))?;
    auth::authorize(bus, hdr, action, Domain::Device).await.map(drop)
}

/// `connection.id` of a profile given on the bus.
fn id_in_dict(dict: &nm_model::dbus_dict::SettingsDict) -> String {
    dict.get("connection").and_then(|s| s.get("id")).and_then(|v| v.as_str()).unwrap_or_default().to_string()
}

// ------------------------------------------------------------ manager ---

/// NetworkManager's log levels, lowest first.
const LOG_LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERR", "OFF"];
/// NetworkManager's log domains (and its group names).
const LOG_DOMAINS: &[&str] = &[
    "PLATFORM",
    "RFKILL",
    "ETHER",
    "WIFI",
    "BT",
    "MB",
    "DHCP4",
    "DHCP6",
    "PPP",
    "WIFI_SCAN",
    "IP4",
    "IP6",
    "AUTOIP4",
    "DNS",
    "VPN",
    "SHARING",
    "SUPPLICANT",
    "AGENTS",
    "SETTINGS",
    "SUSPEND",
    "CORE",
    "DEVICE",
    "OLPC",
    "INFINIBAND",
    "FIREWALL",
    "ADSL",
    "BOND",
    "VLAN",
    "BRIDGE",
    "DBUS_PROPS",
    "TEAM",
    "CONCHECK",
    "DCB",
    "DISPATCH",
    "AUDIT",
    "SYSTEMD",
    "VPN_PLUGIN",
    "PROXY",
    "TC",
    "NDISC",
    "OVS",
    "ALL",
    "DEFAULT",
    "DHCP",
    "IP",
];
const DEFAULT_LOG_DOMAINS: &str = "PLATFORM,DEVICE,CORE,SETTINGS,DHCP4,DHCP6,IP4,IP6,DNS,DISPATCH,AGENTS";

/// A `SetLogging` request checked as NetworkManager checks it: the level
/// (empty or `KEEP`: unchanged) and the domains (`DOMAIN` or
/// `DOMAIN:LEVEL`, comma-separated; empty: unchanged), upper-cased.
fn logging_request(level: &str, domains: &str, now: &(String, String)) -> Result<(String, String), NmError> {
    let known_level = |l: &str| LOG_LEVELS.contains(&l);
    let level = match level.trim().to_ascii_uppercase().as_str() {
        "" | "KEEP" => now.0.clone(),
        l if known_level(l) => l.to_string(),
        _ => return Err(NmError::manager("InvalidArguments", format!("Unknown log level '{level}'"))),
    };
    let mut out = Vec::new();
    for token in domains.split([',', ' ']).map(str::trim).filter(|t| !t.is_empty()) {
        let upper = token.to_ascii_uppercase();
        let (domain, domain_level) = upper.split_once(':').map_or((upper.as_str(), None), |(d, l)| (d, Some(l)));
        if !LOG_DOMAINS.contains(&domain) {
            return Err(NmError::manager("InvalidArguments", format!("Unknown log domain '{token}'")));
        }
        if let Some(l) = domain_level.filter(|l| !known_level(l) && *l != "KEEP") {
            return Err(NmError::manager("InvalidArguments", format!("Unknown log level '{l}'")));
        }
        out.push(upper.clone());
    }
    let domains = if out.is_empty() { now.1.clone() } else { out.join(",") };
    Ok((level, domains))
}

/// The tracing filter of a NetworkManager log level.
fn level_filter(level: &str) -> Option<tracing::level_filters::LevelFilter> {
    use tracing::level_filters::LevelFilter;
    Some(match level {
        "TRACE" => LevelFilter::TRACE,
        "DEBUG" => LevelFilter::DEBUG,
        "INFO" => LevelFilter::INFO,
        "WARN" => LevelFilter::WARN,
        "ERR" => LevelFilter::ERROR,
        "OFF" => LevelFilter::OFF,
        _ => return None,
    })
}

#[derive(Clone, Debug)]
pub struct ManagerProps {
    pub devices: Vec<OwnedObjectPath>,
    pub active_connections: Vec<OwnedObjectPath>,
    pub state: u32,
    pub startup: bool,
    pub networking_enabled: bool,
    /// `GetLogging`: (level, domains).
    pub logging: (String, String),
    /// The radio switches (`nmcli radio`): kept and reported, as
    /// NetworkManager does without such hardware.
    pub wireless_enabled: bool,
    pub wwan_enabled: bool,
    pub connectivity: u32,
    pub primary_connection: OwnedObjectPath,
    pub primary_connection_type: String,
    pub activating_connection: OwnedObjectPath,
    pub checkpoints: Vec<OwnedObjectPath>,
}

impl Default for ManagerProps {
    fn default() -> Self {
        ManagerProps {
            devices: vec![],
            active_connections: vec![],
            state: 20,
            startup: true,
            networking_enabled: true,
            logging: ("INFO".into(), DEFAULT_LOG_DOMAINS.into()),
            wireless_enabled: true,
            wwan_enabled: true,
            connectivity: 1,
            primary_connection: root(),
            primary_connection_type: String::new(),
            activating_connection: root(),
            checkpoints: vec![],
        }
    }
}

#[derive(Clone)]
pub struct ManagerIface {
    pub props: Props<ManagerProps>,
    pub engine: EngineHandle,
}

#[interface(name = "org.freedesktop.NetworkManager")]
impl ManagerIface {
    fn get_devices(&self) -> Vec<OwnedObjectPath> {
        self.props.lock().devices.clone()
    }

    fn get_all_devices(&self) -> Vec<OwnedObjectPath> {
        self.props.lock().devices.clone()
    }

    async fn get_device_by_ip_iface(&self, iface: String) -> Result<OwnedObjectPath, NmError> {
        self.engine.call(|reply| Call::DeviceByIface { iface, reply }).await
    }

    async fn activate_connection(
        &self,
        connection: OwnedObjectPath,
        device: OwnedObjectPath,
        specific_object: OwnedObjectPath,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<OwnedObjectPath, NmError> {
        let _ = specific_object;
        let caller = auth::authorize(bus, &hdr, Action::NetworkControl, Domain::Manager).await?;
        if let Some((perms, id)) = profile_acl(bus, connection.as_str()).await {
            auth::check_acl(&caller, &perms, &id, Domain::Manager).await?;
        }
        self.engine.call(|reply| Call::Activate { connection, device, reply }).await
    }

    async fn add_and_activate_connection(
        &self,
        connection: WireSettings,
        device: OwnedObjectPath,
        specific_object: OwnedObjectPath,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(OwnedObjectPath, OwnedObjectPath), NmError> {
        let _ = specific_object;
        let dict = nm_dbus::settings_from_wire(&connection).map_err(|e| NmError::connection("InvalidProperty", e.0))?;
        authorize_add_and_activate(bus, &hdr, &dict).await?;
        self.engine.call(|reply| Call::AddAndActivate { dict, device, reply }).await
    }

    async fn add_and_activate_connection2(
        &self,
        connection: WireSettings,
        device: OwnedObjectPath,
        specific_object: OwnedObjectPath,
        options: HashMap<String, OwnedVariant>,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(OwnedObjectPath, OwnedObjectPath, HashMap<String, OwnedVariant>), NmError> {
        let _ = (specific_object, options);
        let dict = nm_dbus::settings_from_wire(&connection).map_err(|e| NmError::connection("InvalidProperty", e.0))?;
        authorize_add_and_activate(bus, &hdr, &dict).await?;
        let (p, a) = self.engine.call(|reply| Call::AddAndActivate { dict, device, reply }).await?;
        Ok((p, a, HashMap::new()))
    }

    async fn deactivate_connection(
        &self,
        active_connection: OwnedObjectPath,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), NmError> {
        let caller = auth::authorize(bus, &hdr, Action::NetworkControl, Domain::Manager).await?;
        if let Some((perms, id)) = active_profile_acl(bus, active_connection.as_str()).await {
            auth::check_acl(&caller, &perms, &id, Domain::Manager).await?;
        }
        self.engine.call(|reply| Call::Deactivate { active: active_connection, reply }).await
    }

    async fn checkpoint_create(
        &self,
        devices: Vec<OwnedObjectPath>,
        rollback_timeout: u32,
        flags: u32,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<OwnedObjectPath, NmError> {
        auth::authorize(bus, &hdr, Action::CheckpointRollback, Domain::Manager).await?;
        self.engine.call(|reply| Call::CheckpointCreate { devices, rollback_timeout, flags, reply }).await
    }

    async fn checkpoint_destroy(
        &self,
        checkpoint: OwnedObjectPath,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), NmError> {
        auth::authorize(bus, &hdr, Action::CheckpointRollback, Domain::Manager).await?;
        self.engine.call(|reply| Call::CheckpointDestroy { checkpoint, reply }).await
    }

    async fn checkpoint_rollback(
        &self,
        checkpoint: OwnedObjectPath,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<HashMap<String, u32>, NmError> {
        auth::authorize(bus, &hdr, Action::CheckpointRollback, Domain::Manager).await?;
        self.engine.call(|reply| Call::CheckpointRollback { checkpoint, reply }).await
    }

    async fn checkpoint_adjust_rollback_timeout(
        &self,
        checkpoint: OwnedObjectPath,
        add_timeout: u32,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), NmError> {
        auth::authorize(bus, &hdr, Action::CheckpointRollback, Domain::Manager).await?;
        self.engine.call(|reply| Call::CheckpointAdjust { checkpoint, add_timeout, reply }).await
    }

    async fn enable(
        &self,
        enable: bool,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), NmError> {
        auth::authorize(bus, &hdr, Action::EnableDisableNetwork, Domain::Manager).await?;
        self.engine.call(|reply| Call::EnableNetworking { enable, reply }).await
    }

    async fn sleep(
        &self,
        sleep: bool,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), NmError> {
        auth::authorize(bus, &hdr, Action::SleepWake, Domain::Manager).await?;
        self.engine.call(|reply| Call::Sleep { sleep, reply }).await
    }

    /// What the caller may do, as nm-core would decide it now: polkit's
    /// answer per action ("yes", "auth" for a challenge, "no"), or without
    /// polkit "yes" for root and members of `auth-group`.
    async fn get_permissions(
        &self,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<HashMap<String, String>, NmError> {
        let caller = Caller::of(bus, &hdr).await?;
        auth::permissions(bus, &caller).await
    }

    fn get_logging(&self) -> (String, String) {
        self.props.lock().logging.clone()
    }

    /// `nmcli general logging level L domains D`: the level applies to all
    /// of nm-core's logging from now on (its log has no domains of
    /// NetworkManager's kind); the domains are checked and reported back.
    async fn set_logging(
        &self,
        level: String,
        domains: String,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), NmError> {
        auth::authorize(bus, &hdr, Action::NetworkControl, Domain::Manager).await?;
        let (level, domains) = logging_request(&level, &domains, &self.props.lock().logging)?;
        if let Some(filter) = level_filter(&level) {
            nm_runtime::set_log_level(filter);
        }
        tracing::info!(level = %level, domains = %domains, "logging changed");
        self.props.lock().logging = (level, domains);
        Ok(())
    }

    /// `nmcli general reload [FLAGS]`: the resolver file is written again
    /// (flags 0, `dns-rc` 0x2, `dns-full` 0x4); the configuration file
    /// (`conf` 0x1) is read when nm-core starts.
    async fn reload(
        &self,
        flags: u32,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), NmError> {
        auth::authorize(bus, &hdr, Action::Reload, Domain::Manager).await?;
        if flags & !0x7 != 0 {
            return Err(NmError::manager("InvalidArguments", format!("invalid flags for reload: {flags:#x}")));
        }
        if flags == 0 || flags & 0x1 != 0 {
            tracing::info!("reload: nm-core reads its configuration when it starts");
        }
        if flags == 0 || flags & 0x6 != 0 {
            self.engine.call(|reply| Call::RewriteDns { reply }).await?;
        }
        Ok(())
    }

    fn check_connectivity(&self) -> u32 {
        self.props.lock().connectivity
    }

    #[zbus(name = "state")]
    fn legacy_state(&self) -> u32 {
        self.props.lock().state
    }

    #[zbus(property)]
    fn devices(&self) -> Vec<OwnedObjectPath> {
        self.props.lock().devices.clone()
    }
    #[zbus(property)]
    fn all_devices(&self) -> Vec<OwnedObjectPath> {
        self.props.lock().devices.clone()
    }
    #[zbus(property)]
    fn checkpoints(&self) -> Vec<OwnedObjectPath> {
        self.props.lock().checkpoints.clone()
    }
    #[zbus(property)]
    fn networking_enabled(&self) -> bool {
        self.props.lock().networking_enabled
    }
    #[zbus(property)]
    fn wireless_enabled(&self) -> bool {
        self.props.lock().wireless_enabled
    }
    #[zbus(property)]
    async fn set_wireless_enabled(
        &mut self,
        value: bool,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Option<Header<'_>>,
    ) -> Result<(), NmError> {
        authorize_set(bus, hdr.as_ref(), Action::EnableDisableWifi).await?;
        self.props.lock().wireless_enabled = value;
        Ok(())
    }
    #[zbus(property)]
    fn wireless_hardware_enabled(&self) -> bool {
        true
    }
    #[zbus(property)]
    fn wwan_enabled(&self) -> bool {
        self.props.lock().wwan_enabled
    }
    #[zbus(property)]
    async fn set_wwan_enabled(
        &mut self,
        value: bool,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Option<Header<'_>>,
    ) -> Result<(), NmError> {
        authorize_set(bus, hdr.as_ref(), Action::EnableDisableWwan).await?;
        self.props.lock().wwan_enabled = value;
        Ok(())
    }
    #[zbus(property)]
    fn wwan_hardware_enabled(&self) -> bool {
        true
    }
    #[zbus(property)]
    fn wimax_enabled(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn wimax_hardware_enabled(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn radio_flags(&self) -> u32 {
        0
    }
    #[zbus(property)]
    fn active_connections(&self) -> Vec<OwnedObjectPath> {
        self.props.lock().active_connections.clone()
    }
    #[zbus(property)]
    fn primary_connection(&self) -> OwnedObjectPath {
        self.props.lock().primary_connection.clone()
    }
    #[zbus(property)]
    fn primary_connection_type(&self) -> String {
        self.props.lock().primary_connection_type.clone()
    }
    #[zbus(property)]
    fn metered(&self) -> u32 {
        0
    }
    #[zbus(property)]
    fn activating_connection(&self) -> OwnedObjectPath {
        self.props.lock().activating_connection.clone()
    }
    #[zbus(property)]
    fn startup(&self) -> bool {
        self.props.lock().startup
    }
    #[zbus(property)]
    fn version(&self) -> String {
        VERSION.into()
    }
    #[zbus(property)]
    fn version_info(&self) -> Vec<u32> {
        vec![(1 << 16) | (42 << 8) | 4]
    }
    #[zbus(property)]
    fn capabilities(&self) -> Vec<u32> {
        vec![]
    }
    #[zbus(property)]
    fn state(&self) -> u32 {
        self.props.lock().state
    }
    #[zbus(property)]
    fn connectivity(&self) -> u32 {
        self.props.lock().connectivity
    }
    #[zbus(property)]
    fn connectivity_check_available(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn connectivity_check_enabled(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn connectivity_check_uri(&self) -> String {
        String::new()
    }
    #[zbus(property)]
    fn global_dns_configuration(&self) -> HashMap<String, OwnedVariant> {
        HashMap::new()
    }

    #[zbus(signal)]
    pub async fn check_permissions(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;
    #[zbus(signal, name = "StateChanged")]
    pub async fn state_changed_signal(emitter: &SignalEmitter<'_>, state: u32) -> zbus::Result<()>;
    #[zbus(signal)]
    pub async fn device_added(emitter: &SignalEmitter<'_>, device_path: OwnedObjectPath) -> zbus::Result<()>;
    #[zbus(signal)]
    pub async fn device_removed(emitter: &SignalEmitter<'_>, device_path: OwnedObjectPath) -> zbus::Result<()>;
}

// ----------------------------------------------------------- settings ---

#[derive(Clone, Debug, Default)]
pub struct SettingsProps {
    pub connections: Vec<OwnedObjectPath>,
    pub hostname: String,
}

#[derive(Clone)]
pub struct SettingsIface {
    pub props: Props<SettingsProps>,
    pub engine: EngineHandle,
}

impl SettingsIface {
    async fn add(
        &self,
        connection: WireSettings,
        save: bool,
        bus: &Bus,
        hdr: &Header<'_>,
    ) -> Result<OwnedObjectPath, NmError> {
        let dict = nm_dbus::settings_from_wire(&connection).map_err(|e| NmError::connection("InvalidProperty", e.0))?;
        let perms = auth::permissions_in_dict(&dict);
        let caller = auth::authorize(bus, hdr, auth::modify_action(&[&perms]), Domain::Settings).await?;
        auth::check_acl(&caller, &perms, &id_in_dict(&dict), Domain::Settings).await?;
        self.engine.call(|reply| Call::AddConnection { dict, save, reply }).await
    }
}

#[interface(name = "org.freedesktop.NetworkManager.Settings")]
impl SettingsIface {
    fn list_connections(&self) -> Vec<OwnedObjectPath> {
        self.props.lock().connections.clone()
    }

    async fn get_connection_by_uuid(&self, uuid: String) -> Result<OwnedObjectPath, NmError> {
        self.engine.call(|reply| Call::ConnectionByUuid { uuid, reply }).await
    }

    async fn add_connection(
        &self,
        connection: WireSettings,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<OwnedObjectPath, NmError> {
        self.add(connection, true, bus, &hdr).await
    }

    async fn add_connection_unsaved(
        &self,
        connection: WireSettings,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<OwnedObjectPath, NmError> {
        self.add(connection, false, bus, &hdr).await
    }

    async fn add_connection2(
        &self,
        settings: WireSettings,
        flags: u32,
        args: HashMap<String, OwnedVariant>,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(OwnedObjectPath, HashMap<String, OwnedVariant>), NmError> {
        const TO_DISK: u32 = 0x1;
        const IN_MEMORY: u32 = 0x2;
        const BLOCK_AUTOCONNECT: u32 = 0x20;
        if flags & !(TO_DISK | IN_MEMORY | BLOCK_AUTOCONNECT) != 0 || args.keys().any(|k| k != "plugin") {
            return Err(NmError::settings("InvalidArguments", "unknown flags or arguments"));
        }
        if (flags & TO_DISK != 0) == (flags & IN_MEMORY != 0) {
            return Err(NmError::settings("InvalidArguments", "exactly one of TO_DISK and IN_MEMORY is required"));
        }
        let path = self.add(settings, flags & TO_DISK != 0, bus, &hdr).await?;
        Ok((path, HashMap::new()))
    }

    async fn save_hostname(
        &self,
        hostname: String,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), NmError> {
        auth::authorize(bus, &hdr, Action::SettingsModifyHostname, Domain::Settings).await?;
        self.engine.call(|reply| Call::SaveHostname { hostname, reply }).await
    }

    fn reload_connections(&self) -> bool {
        true
    }

    /// `nmcli connection load FILE…`: the system settings service reads
    /// the files now (see its LoadConnections); the profiles then come as
    /// any new profile does.
    async fn load_connections(
        &self,
        filenames: Vec<String>,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(bool, Vec<String>), NmError> {
        auth::authorize(bus, &hdr, Action::SettingsModifySystem, Domain::Settings).await?;
        let reply = bus
            .call_method(
                Some(nm_dbus::names::SYSTEM_SETTINGS),
                nm_dbus::names::SETTINGS_PATH,
                Some(nm_dbus::names::SETTINGS_INTERFACE),
                "LoadConnections",
                &(filenames,),
            )
            .await
            .map_err(|e| NmError::failed(format!("loading the profiles: {e}")))?;
        reply.body().deserialize().map_err(|e| NmError::failed(format!("loading the profiles: {e}")))
    }

    #[zbus(property)]
    fn connections(&self) -> Vec<OwnedObjectPath> {
        self.props.lock().connections.clone()
    }
    #[zbus(property)]
    fn hostname(&self) -> String {
        self.props.lock().hostname.clone()
    }
    #[zbus(property)]
    fn can_modify(&self) -> bool {
        true
    }

    #[zbus(signal)]
    pub async fn new_connection(emitter: &SignalEmitter<'_>, connection: OwnedObjectPath) -> zbus::Result<()>;
    #[zbus(signal)]
    pub async fn connection_removed(emitter: &SignalEmitter<'_>, connection: OwnedObjectPath) -> zbus::Result<()>;
}

/// A profile as nm-core re-exports it: the cached settings and the time
/// of its last activation answer `GetSettings` without a round trip. The
/// timestamp is kept apart so that an activation's settings stay the same
/// `Arc` as the profile's (no copy of every profile at its activation).
#[derive(Clone, Debug)]
pub struct ConnectionProps {
    pub conn: std::sync::Arc<nm_model::Connection>,
    /// `connection.timestamp` (seconds since the epoch; 0: never).
    pub timestamp: u64,
    /// NM_GENERATED: nm-core made it (the auto-default ethernet profile)
    /// and nobody has changed it since.
    pub generated: bool,
    /// VOLATILE | EXTERNAL: the profile of an external activation, gone
    /// with it.
    pub external: bool,
    pub unsaved: bool,
    pub filename: String,
}

impl ConnectionProps {
    /// `Settings.Connection.Flags`: UNSAVED 0x1, NM_GENERATED 0x2,
    /// VOLATILE 0x4, EXTERNAL 0x8.
    pub fn flags(&self) -> u32 {
        u32::from(self.unsaved) | (u32::from(self.generated) << 1) | if self.external { 0x4 | 0x8 } else { 0 }
    }
}

#[derive(Clone)]
pub struct ConnectionIface {
    pub id: u32,
    pub props: Props<ConnectionProps>,
    pub engine: EngineHandle,
}

#[interface(name = "org.freedesktop.NetworkManager.Settings.Connection")]
impl ConnectionIface {
    /// A profile limited by `connection.permissions` is shown only to its
    /// users and root.
    async fn get_settings(
        &self,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<WireSettings, NmError> {
        let (perms, id) = self.acl();
        if !auth::acl_users(&perms).is_empty() {
            auth::check_acl(&Caller::of(bus, &hdr).await?, &perms, &id, Domain::Settings).await?;
        }
        let (conn, timestamp) = {
            let props = self.props.lock();
            (props.conn.clone(), props.timestamp)
        };
        let mut dict = dbus_dict::to_dbus(&conn, false);
        if timestamp > 0 {
            dict.entry("connection".into()).or_default().insert("timestamp".into(), nm_model::Value::UInt64(timestamp));
        }
        nm_dbus::settings_to_wire(&dict).map_err(|e| NmError::failed(e.0))
    }

    async fn get_secrets(
        &self,
        setting_name: String,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<WireSettings, NmError> {
        self.authorize_modify(bus, &hdr, None).await?;
        let id = self.id;
        let dict = self.engine.call(|reply| Call::GetSecrets { id, setting: setting_name, reply }).await?;
        nm_dbus::settings_to_wire(&dict).map_err(|e| NmError::failed(e.0))
    }

    async fn update(
        &self,
        properties: WireSettings,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), NmError> {
        self.update_with(properties, true, bus, &hdr).await
    }

    async fn update_unsaved(
        &self,
        properties: WireSettings,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), NmError> {
        self.update_with(properties, false, bus, &hdr).await
    }

    async fn update2(
        &self,
        settings: WireSettings,
        flags: u32,
        args: HashMap<String, OwnedVariant>,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<HashMap<String, OwnedVariant>, NmError> {
        const KNOWN: u32 = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x40;
        if flags & !KNOWN != 0 || args.keys().any(|k| k != "plugin" && k != "version-id") {
            return Err(NmError::settings("InvalidArguments", "unknown flags or arguments"));
        }
        // An empty dictionary keeps the current settings. IN_MEMORY (0x2),
        // IN_MEMORY_DETACHED (0x4) and IN_MEMORY_ONLY (0x8) keep the change
        // in /run; otherwise it is saved.
        if !settings.is_empty() {
            let to_disk = flags & (0x2 | 0x4 | 0x8) == 0;
            self.update_with(settings, to_disk, bus, &hdr).await?;
        } else {
            self.authorize_modify(bus, &hdr, None).await?;
        }
        Ok(HashMap::new())
    }

    fn save(&self) {}

    async fn delete(&self, #[zbus(connection)] bus: &Bus, #[zbus(header)] hdr: Header<'_>) -> Result<(), NmError> {
        self.authorize_modify(bus, &hdr, None).await?;
        let id = self.id;
        self.engine.call(|reply| Call::DeleteConnection { id, reply }).await
    }

    #[zbus(property)]
    fn unsaved(&self) -> bool {
        self.props.lock().unsaved
    }
    #[zbus(property)]
    fn flags(&self) -> u32 {
        self.props.lock().flags()
    }
    #[zbus(property)]
    fn filename(&self) -> String {
        self.props.lock().filename.clone()
    }

    #[zbus(signal)]
    pub async fn updated(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;
    #[zbus(signal)]
    pub async fn removed(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;
}

impl ConnectionIface {
    /// `connection.permissions` and id of this profile.
    fn acl(&self) -> (Vec<String>, String) {
        let props = self.props.lock();
        (auth::permissions_of(&props.conn), props.conn.id().unwrap_or_default().to_string())
    }

    /// NetworkManager's rule for changing (or reading the secrets of) a
    /// profile: the caller must be among its users (and among the new
    /// settings' users), and needs `settings.modify.own` when each names
    /// only one user, `settings.modify.system` otherwise.
    async fn authorize_modify(
        &self,
        bus: &Bus,
        hdr: &Header<'_>,
        new: Option<&nm_model::dbus_dict::SettingsDict>,
    ) -> Result<Caller, NmError> {
        let (perms, id) = self.acl();
        let new_perms = new.map(auth::permissions_in_dict);
        let mut involved: Vec<&[String]> = vec![&perms];
        involved.extend(new_perms.as_deref());
        let caller = auth::authorize(bus, hdr, auth::modify_action(&involved), Domain::Settings).await?;
        auth::check_acl(&caller, &perms, &id, Domain::Settings).await?;
        if let (Some(new_perms), Some(new)) = (&new_perms, new) {
            let new_id = Some(id_in_dict(new)).filter(|i| !i.is_empty()).unwrap_or(id);
            auth::check_acl(&caller, new_perms, &new_id, Domain::Settings).await?;
        }
        Ok(caller)
    }

    async fn update_with(
        &self,
        properties: WireSettings,
        to_disk: bool,
        bus: &Bus,
        hdr: &Header<'_>,
    ) -> Result<(), NmError> {
        let dict = nm_dbus::settings_from_wire(&properties).map_err(|e| NmError::connection("InvalidProperty", e.0))?;
        self.authorize_modify(bus, hdr, Some(&dict)).await?;
        let id = self.id;
        self.engine.call(|reply| Call::UpdateConnection { id, dict, to_disk, reply }).await
    }
}

// ------------------------------------------------------------- device ---

#[derive(Clone, Debug)]
pub struct DeviceProps {
    pub interface: String,
    pub driver: String,
    pub device_type: u32,
    pub state: u32,
    pub reason: u32,
    pub managed: bool,
    pub autoconnect: bool,
    pub active_connection: OwnedObjectPath,
    pub available_connections: Vec<OwnedObjectPath>,
    pub hw_address: String,
    pub perm_hw_address: String,
    pub mtu: u32,
    pub carrier: bool,
    pub ip4_config: OwnedObjectPath,
    pub ip6_config: OwnedObjectPath,
    pub dhcp4_config: OwnedObjectPath,
    pub dhcp6_config: OwnedObjectPath,
    pub interface_flags: u32,
    pub type_description: String,
    pub software: bool,
    /// A bridge's ports (`Device.Bridge.Slaves`).
    pub ports: Vec<OwnedObjectPath>,
    /// A macvlan's, vxlan's or tun's settings as the kernel has them.
    pub details: Option<LinkDetails>,
    /// The device a macvlan or vxlan sits on ("/" when none is known).
    pub parent: OwnedObjectPath,
    /// What LLDP neighbours say, while the profile asks to listen
    /// (`connection.lldp`).
    pub lldp: Vec<nm_platform::lldp::LldpNeighbor>,
}

/// One LLDP neighbour as NetworkManager's `LldpNeighbors` entries read
/// (libnm's `NMLldpNeighbor` attributes).
pub fn lldp_neighbor(n: &nm_platform::lldp::LldpNeighbor) -> HashMap<String, OwnedVariant> {
    let mut m: HashMap<String, OwnedVariant> = HashMap::new();
    let mut put = |k: &str, v: Variant<'_>| {
        if let Ok(v) = OwnedVariant::try_from(v) {
            m.insert(k.to_string(), v);
        }
    };
    put("raw", Variant::from(n.raw.clone()));
    put("destination", Variant::from(n.destination));
    put("chassis-id-type", Variant::from(u32::from(n.chassis_id_type)));
    put("chassis-id", Variant::from(n.chassis_id.as_str()));
    put("port-id-type", Variant::from(u32::from(n.port_id_type)));
    put("port-id", Variant::from(n.port_id.as_str()));
    for (key, text) in [
        ("port-description", &n.port_description),
        ("system-name", &n.system_name),
        ("system-description", &n.system_description),
    ] {
        if let Some(t) = text {
            put(key, Variant::from(t.as_str()));
        }
    }
    if let Some(c) = n.system_capabilities {
        put("system-capabilities", Variant::from(u32::from(c)));
    }
    if let Some(v) = n.ieee_802_1_pvid {
        put("ieee-802-1-pvid", Variant::from(u32::from(v)));
    }
    if let Some(v) = n.ieee_802_3_max_frame_size {
        put("ieee-802-3-max-frame-size", Variant::from(u32::from(v)));
    }
    m
}

#[derive(Clone)]
pub struct DeviceIface {
    pub id: u32,
    pub props: Props<DeviceProps>,
    pub engine: EngineHandle,
}

#[interface(name = "org.freedesktop.NetworkManager.Device")]
impl DeviceIface {
    async fn disconnect(&self, #[zbus(connection)] bus: &Bus, #[zbus(header)] hdr: Header<'_>) -> Result<(), NmError> {
        auth::authorize(bus, &hdr, Action::NetworkControl, Domain::Device).await?;
        let id = self.id;
        self.engine.call(|reply| Call::DeviceDisconnect { id, reply }).await
    }

    /// `nmcli device delete`: a bridge nm-rs made goes (its activation
    /// first); other devices are not nm-rs's to delete.
    async fn delete(&self, #[zbus(connection)] bus: &Bus, #[zbus(header)] hdr: Header<'_>) -> Result<(), NmError> {
        auth::authorize(bus, &hdr, Action::NetworkControl, Domain::Device).await?;
        let id = self.id;
        self.engine.call(|reply| Call::DeviceDelete { id, reply }).await
    }

    /// `nmcli device reapply` / `device modify`: the profile's (or the given)
    /// settings are applied to the running activation without taking it down.
    async fn reapply(
        &self,
        connection: WireSettings,
        version_id: u64,
        flags: u32,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), NmError> {
        let _ = version_id;
        auth::authorize(bus, &hdr, Action::NetworkControl, Domain::Device).await?;
        if flags & !0x1 != 0 {
            return Err(NmError::device("InvalidArgument", format!("unknown flags 0x{flags:x}")));
        }
        let dict = nm_dbus::settings_from_wire(&connection).map_err(|e| NmError::connection("InvalidProperty", e.0))?;
        let id = self.id;
        self.engine.call(|reply| Call::Reapply { id, dict, reply }).await
    }

    async fn get_applied_connection(&self, flags: u32) -> Result<(WireSettings, u64), NmError> {
        let _ = flags;
        let id = self.id;
        let dict = self.engine.call(|reply| Call::AppliedConnection { id, reply }).await?;
        Ok((nm_dbus::settings_to_wire(&dict).map_err(|e| NmError::failed(e.0))?, 0))
    }

    #[zbus(property)]
    fn udi(&self) -> String {
        format!("/sys/class/net/{}", self.props.lock().interface)
    }
    #[zbus(property)]
    fn path(&self) -> String {
        String::new()
    }
    #[zbus(property)]
    fn interface(&self) -> String {
        self.props.lock().interface.clone()
    }
    #[zbus(property)]
    fn ip_interface(&self) -> String {
        let p = self.props.lock();
        if p.state >= 70 && p.state <= 100 { p.interface.clone() } else { String::new() }
    }
    #[zbus(property)]
    fn driver(&self) -> String {
        self.props.lock().driver.clone()
    }
    #[zbus(property)]
    fn driver_version(&self) -> String {
        String::new()
    }
    #[zbus(property)]
    fn firmware_version(&self) -> String {
        String::new()
    }
    #[zbus(property)]
    fn capabilities(&self) -> u32 {
        let p = self.props.lock();
        0x1 | 0x2 | if p.software { 0x4 } else { 0 }
    }
    #[zbus(property)]
    fn ip4_address(&self) -> u32 {
        0
    }
    #[zbus(property)]
    fn state(&self) -> u32 {
        self.props.lock().state
    }
    #[zbus(property)]
    fn state_reason(&self) -> (u32, u32) {
        let p = self.props.lock();
        (p.state, p.reason)
    }
    #[zbus(property)]
    fn active_connection(&self) -> OwnedObjectPath {
        self.props.lock().active_connection.clone()
    }
    #[zbus(property)]
    fn ip4_config(&self) -> OwnedObjectPath {
        self.props.lock().ip4_config.clone()
    }
    #[zbus(property)]
    fn dhcp4_config(&self) -> OwnedObjectPath {
        self.props.lock().dhcp4_config.clone()
    }
    #[zbus(property)]
    fn ip6_config(&self) -> OwnedObjectPath {
        self.props.lock().ip6_config.clone()
    }
    #[zbus(property)]
    fn dhcp6_config(&self) -> OwnedObjectPath {
        self.props.lock().dhcp6_config.clone()
    }
    /// The engine announces a change (zbus's own signal after `Set` would
    /// carry the value from before the engine acted).
    #[zbus(property(emits_changed_signal = "false"))]
    fn managed(&self) -> bool {
        self.props.lock().managed
    }
    /// `nmcli device set IFACE managed yes|no`.
    #[zbus(property)]
    async fn set_managed(
        &self,
        value: bool,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Option<Header<'_>>,
    ) -> Result<(), NmError> {
        authorize_setter(bus, hdr.as_ref()).await?;
        let id = self.id;
        self.engine.tell(|reply| Call::SetManaged { id, value, reply })
    }
    /// Announced by the engine, as `Managed`.
    #[zbus(property(emits_changed_signal = "false"))]
    fn autoconnect(&self) -> bool {
        self.props.lock().autoconnect
    }
    #[zbus(property)]
    async fn set_autoconnect(
        &self,
        value: bool,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Option<Header<'_>>,
    ) -> Result<(), NmError> {
        authorize_setter(bus, hdr.as_ref()).await?;
        let id = self.id;
        self.engine.tell(|reply| Call::SetDeviceAutoconnect { id, value, reply })
    }
    #[zbus(property)]
    fn firmware_missing(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn nm_plugin_missing(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn device_type(&self) -> u32 {
        self.props.lock().device_type
    }
    #[zbus(property)]
    fn available_connections(&self) -> Vec<OwnedObjectPath> {
        self.props.lock().available_connections.clone()
    }
    #[zbus(property)]
    fn physical_port_id(&self) -> String {
        String::new()
    }
    #[zbus(property)]
    fn mtu(&self) -> u32 {
        self.props.lock().mtu
    }
    #[zbus(property)]
    fn metered(&self) -> u32 {
        0
    }
    #[zbus(property)]
    fn lldp_neighbors(&self) -> Vec<HashMap<String, OwnedVariant>> {
        self.props.lock().lldp.iter().map(lldp_neighbor).collect()
    }
    #[zbus(property)]
    fn real(&self) -> bool {
        true
    }
    #[zbus(property)]
    fn ip4_connectivity(&self) -> u32 {
        if self.props.lock().state == 100 { 4 } else { 1 }
    }
    #[zbus(property)]
    fn ip6_connectivity(&self) -> u32 {
        if self.props.lock().state == 100 { 4 } else { 1 }
    }
    #[zbus(property)]
    fn interface_flags(&self) -> u32 {
        self.props.lock().interface_flags
    }
    #[zbus(property)]
    fn hw_address(&self) -> String {
        self.props.lock().hw_address.clone()
    }
    #[zbus(property)]
    fn ports(&self) -> Vec<OwnedObjectPath> {
        self.props.lock().ports.clone()
    }

    #[zbus(signal, name = "StateChanged")]
    pub async fn state_changed_signal(
        emitter: &SignalEmitter<'_>,
        new_state: u32,
        old_state: u32,
        reason: u32,
    ) -> zbus::Result<()>;
}

#[derive(Clone)]
pub struct WiredIface {
    pub props: Props<DeviceProps>,
}

#[interface(name = "org.freedesktop.NetworkManager.Device.Wired")]
impl WiredIface {
    #[zbus(property)]
    fn hw_address(&self) -> String {
        self.props.lock().hw_address.clone()
    }
    #[zbus(property)]
    fn perm_hw_address(&self) -> String {
        self.props.lock().perm_hw_address.clone()
    }
    #[zbus(property)]
    fn speed(&self) -> u32 {
        if self.props.lock().carrier { 10000 } else { 0 }
    }
    #[zbus(property)]
    fn s390_subchannels(&self) -> Vec<String> {
        vec![]
    }
    #[zbus(property)]
    fn carrier(&self) -> bool {
        self.props.lock().carrier
    }
}

#[derive(Clone)]
pub struct GenericIface {
    pub props: Props<DeviceProps>,
}

#[interface(name = "org.freedesktop.NetworkManager.Device.Generic")]
impl GenericIface {
    #[zbus(property)]
    fn hw_address(&self) -> String {
        self.props.lock().hw_address.clone()
    }
    #[zbus(property)]
    fn type_description(&self) -> String {
        self.props.lock().type_description.clone()
    }
}

#[derive(Clone)]
pub struct BridgeIface {
    pub props: Props<DeviceProps>,
}

#[interface(name = "org.freedesktop.NetworkManager.Device.Bridge")]
impl BridgeIface {
    #[zbus(property)]
    fn hw_address(&self) -> String {
        self.props.lock().hw_address.clone()
    }
    #[zbus(property)]
    fn carrier(&self) -> bool {
        self.props.lock().carrier
    }
    #[zbus(property)]
    fn slaves(&self) -> Vec<OwnedObjectPath> {
        self.props.lock().ports.clone()
    }
}

/// The type interfaces of macvlan, vxlan and tun devices: what the kernel
/// says of the link (`Device.Macvlan`, `.Vxlan`, `.Tun`), read from
/// [`DeviceProps::details`].
#[derive(Clone)]
pub struct MacvlanIface {
    pub props: Props<DeviceProps>,
}

impl MacvlanIface {
    fn options(&self) -> Option<MacvlanOptions> {
        match self.props.lock().details {
            Some(LinkDetails::Macvlan(o)) => Some(o),
            _ => None,
        }
    }
}

#[interface(name = "org.freedesktop.NetworkManager.Device.Macvlan")]
impl MacvlanIface {
    #[zbus(property)]
    fn parent(&self) -> OwnedObjectPath {
        self.props.lock().parent.clone()
    }
    #[zbus(property)]
    fn mode(&self) -> String {
        self.options().map_or("unknown", |o| software::macvlan_mode_name(o.mode)).to_string()
    }
    #[zbus(property)]
    fn no_promisc(&self) -> bool {
        self.options().is_some_and(|o| !o.promiscuous)
    }
    #[zbus(property)]
    fn tap(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn hw_address(&self) -> String {
        self.props.lock().hw_address.clone()
    }
}

/// A veth device (NetworkManager exports it beside `.Device.Wired`; libnm
/// makes an NMDeviceVeth of it).
#[derive(Clone)]
pub struct VethIface {
    pub props: Props<DeviceProps>,
}

#[interface(name = "org.freedesktop.NetworkManager.Device.Veth")]
impl VethIface {
    /// The device of the pair's other end; "/" when that end is in another
    /// namespace.
    #[zbus(property)]
    fn peer(&self) -> OwnedObjectPath {
        self.props.lock().parent.clone()
    }
}

#[derive(Clone)]
pub struct VxlanIface {
    pub props: Props<DeviceProps>,
}

impl VxlanIface {
    fn read<T: Default>(&self, f: impl FnOnce(&VxlanOptions) -> T) -> T {
        match &self.props.lock().details {
            Some(LinkDetails::Vxlan(o)) => f(o),
            _ => T::default(),
        }
    }
}

#[interface(name = "org.freedesktop.NetworkManager.Device.Vxlan")]
impl VxlanIface {
    #[zbus(property)]
    fn parent(&self) -> OwnedObjectPath {
        self.props.lock().parent.clone()
    }
    #[zbus(property)]
    fn hw_address(&self) -> String {
        self.props.lock().hw_address.clone()
    }
    #[zbus(property)]
    fn id(&self) -> u32 {
        self.read(|o| o.id)
    }
    #[zbus(property)]
    fn group(&self) -> String {
        self.read(|o| o.remote.map(|a| a.to_string()).unwrap_or_default())
    }
    #[zbus(property)]
    fn local(&self) -> String {
        self.read(|o| o.local.map(|a| a.to_string()).unwrap_or_default())
    }
    #[zbus(property)]
    fn tos(&self) -> u8 {
        self.read(|o| o.tos)
    }
    #[zbus(property)]
    fn ttl(&self) -> u8 {
        self.read(|o| o.ttl)
    }
    #[zbus(property)]
    fn learning(&self) -> bool {
        self.read(|o| o.learning)
    }
    #[zbus(property)]
    fn ageing(&self) -> u32 {
        self.read(|o| o.ageing)
    }
    #[zbus(property)]
    fn limit(&self) -> u32 {
        self.read(|o| o.limit)
    }
    #[zbus(property)]
    fn dst_port(&self) -> u16 {
        self.read(|o| o.port)
    }
    #[zbus(property)]
    fn src_port_min(&self) -> u16 {
        self.read(|o| o.source_ports.0)
    }
    #[zbus(property)]
    fn src_port_max(&self) -> u16 {
        self.read(|o| o.source_ports.1)
    }
    #[zbus(property)]
    fn proxy(&self) -> bool {
        self.read(|o| o.proxy)
    }
    #[zbus(property)]
    fn rsc(&self) -> bool {
        self.read(|o| o.rsc)
    }
    #[zbus(property, name = "L2miss")]
    fn l2miss(&self) -> bool {
        self.read(|o| o.l2miss)
    }
    #[zbus(property, name = "L3miss")]
    fn l3miss(&self) -> bool {
        self.read(|o| o.l3miss)
    }
}

#[derive(Clone)]
pub struct TunIface {
    pub props: Props<DeviceProps>,
}

impl TunIface {
    fn options(&self) -> Option<TunOptions> {
        match self.props.lock().details {
            Some(LinkDetails::Tun(o)) => Some(o),
            _ => None,
        }
    }
}

#[interface(name = "org.freedesktop.NetworkManager.Device.Tun")]
impl TunIface {
    /// -1: no owner.
    #[zbus(property)]
    fn owner(&self) -> i64 {
        self.options().and_then(|o| o.owner).map_or(-1, i64::from)
    }
    #[zbus(property)]
    fn group(&self) -> i64 {
        self.options().and_then(|o| o.group).map_or(-1, i64::from)
    }
    #[zbus(property)]
    fn mode(&self) -> String {
        if self.options().is_some_and(|o| o.tap) { "tap" } else { "tun" }.to_string()
    }
    #[zbus(property)]
    fn no_pi(&self) -> bool {
        self.options().is_some_and(|o| !o.pi)
    }
    #[zbus(property)]
    fn vnet_hdr(&self) -> bool {
        self.options().is_some_and(|o| o.vnet_hdr)
    }
    #[zbus(property)]
    fn multi_queue(&self) -> bool {
        self.options().is_some_and(|o| o.multi_queue)
    }
    #[zbus(property)]
    fn hw_address(&self) -> String {
        self.props.lock().hw_address.clone()
    }
}

#[derive(Clone)]
pub struct StatisticsIface {
    pub props: Props<DeviceProps>,
    /// As in NetworkManager, counters are read only while a client asked
    /// for them (`RefreshRateMs` > 0); otherwise they read 0 and cost
    /// nothing (GetManagedObjects would read /sys for every device).
    /// Shared: the object manager reads a copy of this interface.
    pub refresh_rate_ms: Arc<std::sync::atomic::AtomicU32>,
}

#[interface(name = "org.freedesktop.NetworkManager.Device.Statistics")]
impl StatisticsIface {
    #[zbus(property)]
    fn refresh_rate_ms(&self) -> u32 {
        self.refresh_rate_ms.load(Relaxed)
    }
    #[zbus(property)]
    fn set_refresh_rate_ms(&self, value: u32) {
        self.refresh_rate_ms.store(value, Relaxed);
    }
    #[zbus(property)]
    fn tx_bytes(&self) -> u64 {
        if self.refresh_rate_ms.load(Relaxed) == 0 { 0 } else { read_stat(&self.props.lock().interface, "tx_bytes") }
    }
    #[zbus(property)]
    fn rx_bytes(&self) -> u64 {
        if self.refresh_rate_ms.load(Relaxed) == 0 { 0 } else { read_stat(&self.props.lock().interface, "rx_bytes") }
    }
}

fn read_stat(iface: &str, what: &str) -> u64 {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/statistics/{what}"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

// -------------------------------------------------- active connection ---

#[derive(Clone, Debug)]
pub struct ActiveProps {
    pub connection: OwnedObjectPath,
    pub id: String,
    pub uuid: String,
    pub kind: String,
    pub devices: Vec<OwnedObjectPath>,
    pub state: u32,
    pub state_flags: u32,
    pub default4: bool,
    pub default6: bool,
    pub ip4_config: OwnedObjectPath,
    pub ip6_config: OwnedObjectPath,
    pub dhcp4_config: OwnedObjectPath,
    pub dhcp6_config: OwnedObjectPath,
}

#[derive(Clone)]
pub struct ActiveIface {
    pub props: Props<ActiveProps>,
}

#[interface(name = "org.freedesktop.NetworkManager.Connection.Active")]
impl ActiveIface {
    #[zbus(property)]
    fn connection(&self) -> OwnedObjectPath {
        self.props.lock().connection.clone()
    }
    #[zbus(property)]
    fn specific_object(&self) -> OwnedObjectPath {
        root()
    }
    #[zbus(property)]
    fn id(&self) -> String {
        self.props.lock().id.clone()
    }
    #[zbus(property)]
    fn uuid(&self) -> String {
        self.props.lock().uuid.clone()
    }
    #[zbus(property, name = "Type")]
    fn kind(&self) -> String {
        self.props.lock().kind.clone()
    }
    #[zbus(property)]
    fn devices(&self) -> Vec<OwnedObjectPath> {
        self.props.lock().devices.clone()
    }
    #[zbus(property)]
    fn state(&self) -> u32 {
        self.props.lock().state
    }
    #[zbus(property)]
    fn state_flags(&self) -> u32 {
        self.props.lock().state_flags
    }
    #[zbus(property)]
    fn default(&self) -> bool {
        self.props.lock().default4
    }
    #[zbus(property)]
    fn ip4_config(&self) -> OwnedObjectPath {
        self.props.lock().ip4_config.clone()
    }
    #[zbus(property)]
    fn dhcp4_config(&self) -> OwnedObjectPath {
        self.props.lock().dhcp4_config.clone()
    }
    #[zbus(property)]
    fn default6(&self) -> bool {
        self.props.lock().default6
    }
    #[zbus(property)]
    fn ip6_config(&self) -> OwnedObjectPath {
        self.props.lock().ip6_config.clone()
    }
    #[zbus(property)]
    fn dhcp6_config(&self) -> OwnedObjectPath {
        self.props.lock().dhcp6_config.clone()
    }
    #[zbus(property)]
    fn vpn(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn controller(&self) -> OwnedObjectPath {
        root()
    }
    #[zbus(property)]
    fn master(&self) -> OwnedObjectPath {
        root()
    }

    #[zbus(signal, name = "StateChanged")]
    pub async fn state_changed_signal(emitter: &SignalEmitter<'_>, state: u32, reason: u32) -> zbus::Result<()>;
}

// ------------------------------------------------------- IP configs ---

/// An IP configuration as nm-core applied it (only what nm-rs made: a
/// host's foreign routes are neither held nor exported).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IpProps {
    /// (address, prefix)
    pub addresses: Vec<(std::net::IpAddr, u32)>,
    pub gateway: String,
    /// (dest, prefix, next hop, metric, table)
    pub routes: Vec<(std::net::IpAddr, u32, Option<std::net::IpAddr>, u32, u32)>,
    pub nameservers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
    pub priority: i32,
}

fn var_dict(entries: Vec<(&str, Variant<'static>)>) -> HashMap<String, OwnedVariant> {
    entries.into_iter().filter_map(|(k, v)| OwnedVariant::try_from(v).ok().map(|v| (k.to_string(), v))).collect()
}

impl IpProps {
    pub fn address_data(&self) -> Vec<HashMap<String, OwnedVariant>> {
        self.addresses
            .iter()
            .map(|(a, p)| var_dict(vec![("address", Variant::from(a.to_string())), ("prefix", Variant::from(*p))]))
            .collect()
    }
    pub fn route_data(&self) -> Vec<HashMap<String, OwnedVariant>> {
        self.routes
            .iter()
            .map(|(d, p, nh, m, t)| {
                let mut e = vec![
                    ("dest", Variant::from(d.to_string())),
                    ("prefix", Variant::from(*p)),
                    ("metric", Variant::from(*m)),
                    ("table", Variant::from(*t)),
                ];
                if let Some(nh) = nh {
                    e.push(("next-hop", Variant::from(nh.to_string())));
                }
                var_dict(e)
            })
            .collect()
    }

    /// What a client reads of an IP4Config (`v6`: IP6Config) that may
    /// change while it is exported, for PropertiesChanged.
    pub fn changed_properties(&self, v6: bool) -> Vec<(&'static str, Variant<'static>)> {
        let servers = self.nameservers.iter().filter_map(|n| n.parse::<std::net::IpAddr>().ok());
        let nameservers = if v6 {
            Variant::from(servers.map(|a| v6_bytes(&a)).collect::<Vec<_>>())
        } else {
            Variant::from(servers.map(|a| v4_u32(&a)).collect::<Vec<_>>())
        };
        vec![
            ("AddressData", Variant::from(self.address_data())),
            ("Gateway", Variant::from(self.gateway.clone())),
            ("RouteData", Variant::from(self.route_data())),
            ("Nameservers", nameservers),
            ("Searches", Variant::from(self.searches.clone())),
        ]
    }
}

fn v4_u32(a: &std::net::IpAddr) -> u32 {
    match a {
        std::net::IpAddr::V4(a) => u32::from_ne_bytes(a.octets()),
        std::net::IpAddr::V6(_) => 0,
    }
}

#[derive(Clone)]
pub struct Ip4ConfigIface {
    pub props: Props<IpProps>,
}

#[interface(name = "org.freedesktop.NetworkManager.IP4Config")]
impl Ip4ConfigIface {
    #[zbus(property)]
    fn addresses(&self) -> Vec<Vec<u32>> {
        let p = self.props.lock();
        let gw = p.gateway.parse().map(|g| v4_u32(&g)).unwrap_or(0);
        p.addresses.iter().enumerate().map(|(i, (a, pl))| vec![v4_u32(a), *pl, if i == 0 { gw } else { 0 }]).collect()
    }
    #[zbus(property)]
    pub fn address_data(&self) -> Vec<HashMap<String, OwnedVariant>> {
        self.props.lock().address_data()
    }
    #[zbus(property)]
    fn gateway(&self) -> String {
        self.props.lock().gateway.clone()
    }
    #[zbus(property)]
    fn routes(&self) -> Vec<Vec<u32>> {
        let p = self.props.lock();
        p.routes
            .iter()
            .filter(|r| r.1 > 0)
            .map(|(d, pl, nh, m, _)| vec![v4_u32(d), *pl, nh.as_ref().map_or(0, v4_u32), *m])
            .collect()
    }
    #[zbus(property)]
    pub fn route_data(&self) -> Vec<HashMap<String, OwnedVariant>> {
        self.props.lock().route_data()
    }
    #[zbus(property)]
    fn nameserver_data(&self) -> Vec<HashMap<String, OwnedVariant>> {
        let p = self.props.lock();
        p.nameservers.iter().map(|n| var_dict(vec![("address", Variant::from(n.clone()))])).collect()
    }
    #[zbus(property)]
    fn nameservers(&self) -> Vec<u32> {
        let p = self.props.lock();
        p.nameservers.iter().filter_map(|n| n.parse().ok()).map(|a| v4_u32(&a)).collect()
    }
    #[zbus(property)]
    fn domains(&self) -> Vec<String> {
        vec![]
    }
    #[zbus(property)]
    fn searches(&self) -> Vec<String> {
        self.props.lock().searches.clone()
    }
    #[zbus(property)]
    fn dns_options(&self) -> Vec<String> {
        self.props.lock().options.clone()
    }
    #[zbus(property)]
    fn dns_priority(&self) -> i32 {
        self.props.lock().priority
    }
    #[zbus(property)]
    fn wins_server_data(&self) -> Vec<String> {
        vec![]
    }
    #[zbus(property)]
    fn wins_servers(&self) -> Vec<u32> {
        vec![]
    }
}

#[derive(Clone)]
pub struct Ip6ConfigIface {
    pub props: Props<IpProps>,
}

fn v6_bytes(a: &std::net::IpAddr) -> Vec<u8> {
    match a {
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
        std::net::IpAddr::V4(_) => vec![0; 16],
    }
}

#[interface(name = "org.freedesktop.NetworkManager.IP6Config")]
impl Ip6ConfigIface {
    #[zbus(property)]
    fn addresses(&self) -> Vec<(Vec<u8>, u32, Vec<u8>)> {
        let p = self.props.lock();
        let gw: Option<std::net::IpAddr> = p.gateway.parse().ok();
        p.addresses
            .iter()
            .enumerate()
            .map(|(i, (a, pl))| {
                let g = if i == 0 { gw.as_ref().map(v6_bytes) } else { None };
                (v6_bytes(a), *pl, g.unwrap_or_else(|| vec![0; 16]))
            })
            .collect()
    }
    #[zbus(property)]
    pub fn address_data(&self) -> Vec<HashMap<String, OwnedVariant>> {
        self.props.lock().address_data()
    }
    #[zbus(property)]
    fn gateway(&self) -> String {
        self.props.lock().gateway.clone()
    }
    #[zbus(property)]
    fn routes(&self) -> Vec<(Vec<u8>, u32, Vec<u8>, u32)> {
        let p = self.props.lock();
        p.routes
            .iter()
            .map(|(d, pl, nh, m, _)| (v6_bytes(d), *pl, nh.as_ref().map_or_else(|| vec![0; 16], v6_bytes), *m))
            .collect()
    }
    #[zbus(property)]
    pub fn route_data(&self) -> Vec<HashMap<String, OwnedVariant>> {
        self.props.lock().route_data()
    }
    #[zbus(property)]
    fn nameservers(&self) -> Vec<Vec<u8>> {
        let p = self.props.lock();
        p.nameservers.iter().filter_map(|n| n.parse().ok()).map(|a| v6_bytes(&a)).collect()
    }
    #[zbus(property)]
    fn domains(&self) -> Vec<String> {
        vec![]
    }
    #[zbus(property)]
    fn searches(&self) -> Vec<String> {
        self.props.lock().searches.clone()
    }
    #[zbus(property)]
    fn dns_options(&self) -> Vec<String> {
        self.props.lock().options.clone()
    }
    #[zbus(property)]
    fn dns_priority(&self) -> i32 {
        self.props.lock().priority
    }
}

/// A DHCP lease's options, as `nmcli -f DHCP4` (`DHCP6`) `device show`
/// lists them: one object type per family, the same property.
macro_rules! dhcp_config_iface {
    ($name:ident, $interface:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone)]
        pub struct $name {
            pub props: Props<std::collections::BTreeMap<String, String>>,
        }

        #[interface(name = $interface)]
        impl $name {
            #[zbus(property)]
            fn options(&self) -> HashMap<String, OwnedVariant> {
                let p = self.props.lock();
                p.iter()
                    .filter_map(|(k, v)| OwnedVariant::try_from(Variant::from(v.clone())).ok().map(|v| (k.clone(), v)))
                    .collect()
            }
        }
    };
}

dhcp_config_iface!(Dhcp4ConfigIface, "org.freedesktop.NetworkManager.DHCP4Config", "A DHCPv4 lease's options.");
dhcp_config_iface!(Dhcp6ConfigIface, "org.freedesktop.NetworkManager.DHCP6Config", "A DHCPv6 lease's options.");

// ------------------------------------------------------------ others ---

/// Secret agents register here, keyed by their unique bus name; the
/// registry (`agents.rs`) is what activations ask for secrets.
#[derive(Clone)]
pub struct AgentManagerIface {
    pub agents: crate::agents::Registry,
}

fn sender_of(hdr: &Header<'_>) -> Result<String, NmError> {
    hdr.sender().map(|s| s.to_string()).ok_or_else(|| NmError::access_denied("message without sender"))
}

#[interface(name = "org.freedesktop.NetworkManager.AgentManager")]
impl AgentManagerIface {
    async fn register(
        &self,
        identifier: String,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), NmError> {
        self.agents.register(bus, &sender_of(&hdr)?, identifier, 0).await
    }

    async fn register_with_capabilities(
        &self,
        identifier: String,
        capabilities: u32,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), NmError> {
        self.agents.register(bus, &sender_of(&hdr)?, identifier, capabilities).await
    }

    fn unregister(&self, #[zbus(header)] hdr: Header<'_>) -> Result<(), NmError> {
        self.agents.unregister(&sender_of(&hdr)?)
    }
}

#[derive(Clone, Debug, Default)]
pub struct DnsProps {
    /// (interface, servers, searches, priority)
    pub entries: Vec<(String, Vec<String>, Vec<String>, i32)>,
    pub mode: String,
}

/// A checkpoint's properties (`/org/freedesktop/NetworkManager/Checkpoint/N`).
pub struct CheckpointProps {
    pub devices: Vec<OwnedObjectPath>,
    /// CLOCK_BOOTTIME milliseconds at creation.
    pub created: i64,
    /// Seconds from creation to the automatic rollback; 0: none.
    pub rollback_timeout: u32,
}

#[derive(Clone)]
pub struct CheckpointIface {
    pub props: Props<CheckpointProps>,
}

#[interface(name = "org.freedesktop.NetworkManager.Checkpoint")]
impl CheckpointIface {
    #[zbus(property)]
    fn devices(&self) -> Vec<OwnedObjectPath> {
        self.props.lock().devices.clone()
    }
    #[zbus(property)]
    fn created(&self) -> i64 {
        self.props.lock().created
    }
    #[zbus(property)]
    fn rollback_timeout(&self) -> u32 {
        self.props.lock().rollback_timeout
    }
}

#[derive(Clone)]
pub struct DnsManagerIface {
    pub props: Props<DnsProps>,
}

#[interface(name = "org.freedesktop.NetworkManager.DnsManager")]
impl DnsManagerIface {
    #[zbus(property)]
    fn mode(&self) -> String {
        self.props.lock().mode.clone()
    }
    #[zbus(property)]
    fn rc_manager(&self) -> String {
        // /etc/resolv.conf written unless it is a symlink (see update_dns).
        "symlink".into()
    }
    #[zbus(property)]
    fn configuration(&self) -> Vec<HashMap<String, OwnedVariant>> {
        let p = self.props.lock();
        p.entries
            .iter()
            .map(|(iface, servers, searches, prio)| {
                var_dict(vec![
                    ("nameservers", Variant::from(servers.clone())),
                    ("domains", Variant::from(searches.clone())),
                    ("interface", Variant::from(iface.clone())),
                    ("priority", Variant::from(*prio)),
                    ("vpn", Variant::from(false)),
                ])
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list form goes on the wire as the `a{oa{sa{sv}}}` it stands for:
    /// read back as maps, it has every object, interface and value.
    #[test]
    fn managed_objects_serialise_as_the_dictionaries() {
        let props = |pairs: &[(&str, u32)]| -> Properties {
            pairs.iter().map(|(k, v)| (k.to_string(), OwnedVariant::from(*v))).collect()
        };
        let iface = |n: &str| InterfaceName::try_from(n.to_string()).unwrap();
        let path = |p: &str| OwnedObjectPath::try_from(p).unwrap();
        let objects = ManagedObjects(vec![
            (
                path("/org/freedesktop/NetworkManager/Devices/1"),
                vec![(iface("org.freedesktop.NetworkManager.Device"), props(&[("State", 100), ("Mtu", 1500)]))],
            ),
            (
                path("/org/freedesktop/NetworkManager/Devices/2"),
                vec![
                    (iface("org.freedesktop.NetworkManager.Device"), props(&[("State", 30)])),
                    (iface("org.freedesktop.NetworkManager.Device.Statistics"), props(&[])),
                ],
            ),
        ]);
        let ctxt = zbus::wire::serialized::Context::new(zbus::wire::NATIVE_ENDIAN, 0);
        let data = zbus::wire::to_bytes(ctxt, &objects).unwrap();
        let (back, _): (HashMap<OwnedObjectPath, HashMap<String, Properties>>, _) = data.deserialize().unwrap();
        assert_eq!(back.len(), 2);
        let d1 = &back[&path("/org/freedesktop/NetworkManager/Devices/1")]["org.freedesktop.NetworkManager.Device"];
        assert_eq!(u32::try_from(d1["Mtu"].clone()).unwrap(), 1500);
        let d2 = &back[&path("/org/freedesktop/NetworkManager/Devices/2")];
        assert_eq!(d2.len(), 2);
        assert!(d2["org.freedesktop.NetworkManager.Device.Statistics"].is_empty());
    }

    #[test]
    fn logging_requests_are_checked_as_networkmanager_checks_them() {
        let now = ("INFO".to_string(), "CORE".to_string());
        assert_eq!(logging_request("debug", "all", &now).unwrap(), ("DEBUG".into(), "ALL".into()));
        assert_eq!(logging_request("", "", &now).unwrap(), now, "empty keeps both");
        assert_eq!(
            logging_request("KEEP", "dhcp4:trace, ip6", &now).unwrap(),
            ("INFO".into(), "DHCP4:TRACE,IP6".into())
        );
        let bad = |l: &str, d: &str| logging_request(l, d, &now).unwrap_err().to_string();
        assert!(bad("LOUD", "").contains("Unknown log level 'LOUD'"));
        assert!(bad("INFO", "CORE,NOPE").contains("Unknown log domain 'NOPE'"));
        assert!(bad("INFO", "CORE:LOUD").contains("Unknown log level 'LOUD'"));
        assert_eq!(level_filter("ERR"), Some(tracing::level_filters::LevelFilter::ERROR));
        assert_eq!(level_filter("KEEP"), None);
    }
}
