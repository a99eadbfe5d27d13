//! Calls into nm-dispatcher at NetworkManager's points (reference §5.2),
//! with its `Action` contract, when the dispatcher is on the bus or can be
//! started by it. Its absence is not an error.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use nm_dbus::names::DISPATCHER;
use nm_model::dbus_dict::SettingsDict;
use tracing::{debug, warn};
use zbus::{Connection as Bus, OwnedObjectPath, OwnedVariant, Variant};

use crate::api::IpProps;

pub const PATH: &str = "/org/freedesktop/nm_dispatcher";
pub const INTERFACE: &str = "org.freedesktop.nm_dispatcher";
/// How long a waited-for action (pre-up, pre-down) may hold an activation.
/// NetworkManager waits up to 10 minutes; nm-core's engine waits inline
/// for now, so it caps the wait (stages move off the engine with the
/// dispatcher issue).
pub const WAIT_LIMIT: Duration = Duration::from_secs(10);

pub struct Dispatch {
    pub action: &'static str,
    pub connection: SettingsDict,
    pub connection_path: OwnedObjectPath,
    pub interface: String,
    pub device_type: u32,
    pub device_state: u32,
    pub device_path: OwnedObjectPath,
    pub ip4: Option<IpProps>,
    pub ip6: Option<IpProps>,
    pub connectivity: &'static str,
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

/// Whether a dispatcher is on the bus or can be started by it, kept
/// current by [`watch`] so that an activation does not ask the bus.
#[derive(Clone, Default)]
pub struct Presence(Arc<AtomicBool>);

impl Presence {
    fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Follows the dispatcher's name on the bus.
pub async fn watch(bus: Bus, presence: Presence) -> anyhow::Result<()> {
    let dbus = zbus::fdo::DBusProxy::new(&bus).await?;
    let mut changes = dbus.receive_name_owner_changed_with_args(&[(0, DISPATCHER)]).await?;
    let activatable = dbus.list_activatable_names().await?.iter().any(|n| n.as_str() == DISPATCHER);
    let owned = dbus.name_has_owner(DISPATCHER.try_into()?).await?;
    presence.0.store(activatable || owned, Ordering::Relaxed);
    while let Some(change) = changes.next().await {
        if let Ok(args) = change.args() {
            presence.0.store(activatable || args.new_owner().is_some(), Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Calls `Action`; returns when the dispatcher has run its scripts (or the
/// limit passed). Errors are logged, never returned.
pub async fn call(bus: &Bus, presence: &Presence, d: Dispatch) {
    if !presence.get() {
        debug!(action = d.action, "no dispatcher on the bus");
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
        ("filename", Variant::from(String::new())),
        ("external", Variant::from(false)),
    ]);
    let device_properties = dict(vec![
        ("interface", Variant::from(d.interface.clone())),
        ("ip-interface", Variant::from(d.interface.clone())),
        ("type", Variant::from(d.device_type)),
        ("state", Variant::from(d.device_state)),
        ("path", Variant::from(d.device_path.clone())),
    ]);
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
        empty(),
        empty(),
        d.connectivity,
        "",
        empty(),
        empty(),
        empty(),
        false,
    );
    let call = async {
        let proxy = zbus::Proxy::new(bus, DISPATCHER, PATH, INTERFACE).await?;
        proxy.call::<_, _, Vec<(String, u32, String)>>("Action", &args).await
    };
    match tokio::time::timeout(WAIT_LIMIT, call).await {
        Ok(Ok(results)) => {
            for (script, result, message) in results {
                if result != 1 {
                    warn!(action = d.action, script, result, "dispatcher script: {message}");
                }
            }
        }
        Ok(Err(e)) => warn!(action = d.action, "dispatcher: {e}"),
        Err(_) => warn!(action = d.action, "dispatcher did not answer within {WAIT_LIMIT:?}"),
    }
}
