//! Calls into nm-dispatcher at NetworkManager's points (reference §5.2),
//! with its `Action` contract, when the dispatcher is on the bus or can be
//! started by it. Its absence is not an error.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;

use nm_dbus::names::DISPATCHER;
use nm_model::dbus_dict::SettingsDict;
use tracing::{debug, warn};
use zbus::{Connection as Bus, MatchRule, MessageStream, OwnedObjectPath, OwnedVariant, Variant};

use crate::api::IpProps;

pub const PATH: &str = "/org/freedesktop/nm_dispatcher";
pub const INTERFACE: &str = "org.freedesktop.nm_dispatcher";
/// How long nm-core waits for an answer: NetworkManager's 10 minutes (the
/// dispatcher's own limit per script is as long), except for `pre-down`,
/// which the engine waits for inline before it takes a device down, and so
/// caps shorter.
const WAIT_LIMIT: Duration = Duration::from_secs(600);
const INLINE_WAIT_LIMIT: Duration = Duration::from_secs(10);

pub struct Dispatch {
    pub action: &'static str,
    pub connection: SettingsDict,
    pub connection_path: OwnedObjectPath,
    /// The profile's file (CONNECTION_FILENAME), empty when unknown.
    pub connection_filename: String,
    pub interface: String,
    pub device_type: u32,
    pub device_state: u32,
    pub device_path: OwnedObjectPath,
    pub ip4: Option<IpProps>,
    pub ip6: Option<IpProps>,
    /// The DHCPv4 lease's options, as DHCP4Config shows them.
    pub dhcp4: BTreeMap<String, String>,
    pub connectivity: &'static str,
}

impl Dispatch {
    /// An action about the host, not a device: `hostname`, `connectivity-change`.
    pub fn global(action: &'static str, connectivity: &'static str) -> Dispatch {
        let root = || OwnedObjectPath::try_from("/").expect("/ is an object path");
        Dispatch {
            action,
            connection: SettingsDict::new(),
            connection_path: root(),
            connection_filename: String::new(),
            interface: String::new(),
            device_type: 0,
            device_state: 0,
            device_path: root(),
            ip4: None,
            ip6: None,
            dhcp4: BTreeMap::new(),
            connectivity,
        }
    }
}

/// NMConnectivityState as the dispatcher spells it.
pub fn connectivity_name(state: u32) -> &'static str {
    match state {
        4 => "FULL",
        3 => "LIMITED",
        2 => "PORTAL",
        1 => "NONE",
        _ => "UNKNOWN",
    }
}

type VarDict = HashMap<String, OwnedVariant>;

fn dict(entries: Vec<(&str, Variant<'static>)>) -> VarDict {
    entries.into_iter().filter_map(|(k, v)| OwnedVariant::try_from(v).ok().map(|v| (k.to_string(), v))).collect()
}

fn v4(a: &std::net::IpAddr) -> u32 {
    match a {
        std::net::IpAddr::V4(a) => u32::from_ne_bytes(a.octets()),
        std::net::IpAddr::V6(_) => 0,
    }
}

fn v6(a: &std::net::IpAddr) -> Vec<u8> {
    match a {
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
        std::net::IpAddr::V4(_) => vec![0; 16],
    }
}

/// The legacy encodings the dispatcher contract uses.
fn ip4_dict(p: &IpProps) -> VarDict {
    let gw: Option<std::net::IpAddr> = p.gateway.parse().ok();
    let addresses: Vec<Vec<u32>> = p
        .addresses
        .iter()
        .enumerate()
        .map(|(i, (a, pl))| vec![v4(a), *pl, if i == 0 { gw.as_ref().map_or(0, v4) } else { 0 }])
        .collect();
    let routes: Vec<Vec<u32>> =
        p.routes.iter().map(|(d, pl, nh, m, _)| vec![v4(d), *pl, nh.as_ref().map_or(0, v4), *m]).collect();
    let ns: Vec<u32> = p.nameservers.iter().filter_map(|n| n.parse().ok()).map(|a| v4(&a)).collect();
    dict(vec![
        ("addresses", Variant::from(addresses)),
        ("routes", Variant::from(routes)),
        ("nameservers", Variant::from(ns)),
        ("domains", Variant::from(p.searches.clone())),
        ("wins-servers", Variant::from(Vec::<u32>::new())),
    ])
}

fn ip6_dict(p: &IpProps) -> VarDict {
    let gw: Option<std::net::IpAddr> = p.gateway.parse().ok();
    let addresses: Vec<(Vec<u8>, u32, Vec<u8>)> = p
        .addresses
        .iter()
        .enumerate()
        .map(|(i, (a, pl))| {
            (v6(a), *pl, if i == 0 { gw.as_ref().map_or_else(|| vec![0; 16], v6) } else { vec![0; 16] })
        })
        .collect();
    let routes: Vec<(Vec<u8>, u32, Vec<u8>, u32)> = p
        .routes
        .iter()
        .map(|(d, pl, nh, m, _)| (v6(d), *pl, nh.as_ref().map_or_else(|| vec![0; 16], v6), *m))
        .collect();
    let ns: Vec<Vec<u8>> = p.nameservers.iter().filter_map(|n| n.parse().ok()).map(|a| v6(&a)).collect();
    dict(vec![
        ("addresses", Variant::from(addresses)),
        ("routes", Variant::from(routes)),
        ("nameservers", Variant::from(ns)),
        ("domains", Variant::from(p.searches.clone())),
    ])
}

/// Whether a dispatcher is on the bus or can be started by it. Calls are
/// skipped only after the bus said so: a call answered ServiceUnknown (the
/// bus looks at its service folders again before it answers that), or a
/// reload of its service files (`ActivatableServicesChanged`) or an owner
/// change after which the name is neither owned nor activatable. The
/// start-up listing only ever says "there": the bus may not have read a
/// file written just before. So a host without a dispatcher pays one call,
/// and a dispatcher installed later is found.
#[derive(Clone)]
pub struct Presence(Arc<AtomicBool>);

impl Default for Presence {
    fn default() -> Self {
        Presence(Arc::new(AtomicBool::new(true)))
    }
}

impl Presence {
    pub fn present(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, present: bool) {
        self.0.store(present, Ordering::Relaxed);
    }
}

/// Whether the dispatcher is on the bus or the bus can start it: both
/// questions at once, as plain calls (no proxy to set up first).
async fn installed_or_running(bus: &Bus) -> zbus::Result<bool> {
    const BUS: &str = "org.freedesktop.DBus";
    const BUS_PATH: &str = "/org/freedesktop/DBus";
    let owned = bus.call_method(Some(BUS), BUS_PATH, Some(BUS), "NameHasOwner", &(DISPATCHER,));
    let activatable = bus.call_method(Some(BUS), BUS_PATH, Some(BUS), "ListActivatableNames", &());
    let (owned, activatable) = tokio::join!(owned, activatable);
    if owned?.body().deserialize::<bool>()? {
        return Ok(true);
    }
    Ok(activatable?.body().deserialize::<Vec<String>>()?.iter().any(|n| n == DISPATCHER))
}

/// Keeps [`Presence`] current for as long as nm-core runs.
pub async fn watch(bus: Bus, presence: Presence) -> anyhow::Result<()> {
    // A first answer before the subscriptions: an activation that reaches
    // IP_CHECK right after start-up needs it to know whether pre-up
    // scripts may run (until then it assumes they may).
    presence.set(installed_or_running(&bus).await?);
    let dbus = zbus::fdo::DBusProxy::new(&bus).await?;
    let mut owners = dbus.receive_name_owner_changed_with_args(&[(0, DISPATCHER)]).await?;
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender("org.freedesktop.DBus")
        .interface("org.freedesktop.DBus")
        .member("ActivatableServicesChanged")
        .build()?;
    let mut reloads = MessageStream::for_match_rule(rule, &bus, None).await?;
    // Again, now that no change can pass unseen.
    presence.set(installed_or_running(&bus).await?);
    loop {
        tokio::select! {
            Some(_) = owners.next() => {}
            Some(_) = reloads.next() => {}
            else => break,
        }
        presence.set(installed_or_running(&bus).await?);
    }
    Ok(())
}

/// Calls `Action` (the bus starts the dispatcher if it is installed);
/// returns when it has run its scripts, or the limit passed. Errors are
/// logged, never returned.
pub async fn call(bus: &Bus, presence: &Presence, d: Dispatch) {
    if !presence.present() {
        debug!(action = d.action, "no dispatcher installed");
        return;
    }
    let wire = match nm_dbus::settings_to_wire(&d.connection) {
        Ok(w) => w,
        Err(e) => {
            warn!("dispatcher {}: {e}", d.action);
            return;
        }
    };
    let connection_properties = dict(vec![
        ("path", Variant::from(d.connection_path.clone())),
        ("filename", Variant::from(d.connection_filename.clone())),
        ("external", Variant::from(false)),
    ]);
    let device_properties = if d.interface.is_empty() {
        VarDict::new()
    } else {
        dict(vec![
            ("interface", Variant::from(d.interface.clone())),
            ("ip-interface", Variant::from(d.interface.clone())),
            ("type", Variant::from(d.device_type)),
            ("state", Variant::from(d.device_state)),
            ("path", Variant::from(d.device_path.clone())),
        ])
    };
    let dhcp4 = dict(d.dhcp4.iter().map(|(k, v)| (k.as_str(), Variant::from(v.clone()))).collect());
    let ip4 = d.ip4.as_ref().map(ip4_dict).unwrap_or_default();
    let ip6 = d.ip6.as_ref().map(ip6_dict).unwrap_or_default();
    let empty = VarDict::new;
    let args = (
        d.action,
        wire,
        connection_properties,
        device_properties,
        empty(),
        ip4,
        ip6,
        dhcp4,
        empty(),
        d.connectivity,
        "",
        empty(),
        empty(),
        empty(),
        false,
    );
    let call = async {
        let reply = bus.call_method(Some(DISPATCHER), PATH, Some(INTERFACE), "Action", &args).await?;
        reply.body().deserialize::<Vec<(String, u32, String)>>()
    };
    let limit = if d.action == "pre-down" { INLINE_WAIT_LIMIT } else { WAIT_LIMIT };
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(results)) => {
            for (script, result, message) in results {
                if result != 1 {
                    warn!(action = d.action, script, result, "dispatcher script: {message}");
                }
            }
        }
        Ok(Err(e)) if nm_dbus::service_absent(&e) => {
            debug!(action = d.action, "no dispatcher installed");
            presence.set(false);
        }
        Ok(Err(e)) => warn!(action = d.action, "dispatcher: {e}"),
        Err(_) => warn!(action = d.action, "dispatcher did not answer within {limit:?}"),
    }
}
