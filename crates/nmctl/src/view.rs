//! What each command shows, as plain data: built from the object store (and
//! the profiles' settings) here, turned into text or JSON by render.rs. The
//! field names are the `--json` names, so they are part of the interface.

use std::collections::BTreeMap;

use nm_model::Value;
use nm_model::dbus_dict::SettingsDict;
use nm_model::schema;
use serde::Serialize;

use crate::names;
use crate::objects::*;
use crate::props;

/// A profile as `Settings.Connection.GetSettings` returned it.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub path: String,
    pub settings: SettingsDict,
    pub filename: String,
}

impl Profile {
    fn text(&self, prop: &str) -> String {
        self.settings.get("connection").and_then(|s| s.get(prop)).and_then(Value::as_str).unwrap_or_default().into()
    }
    pub fn id(&self) -> String {
        self.text("id")
    }
    pub fn uuid(&self) -> String {
        self.text("uuid")
    }
    pub fn kind(&self) -> String {
        self.text("type")
    }
}

/// `802-3-ethernet` → `ethernet`, as nmcli shows types.
pub fn short_type(kind: &str) -> String {
    schema::setting(kind).map_or(kind, |s| s.keyfile_group()).to_string()
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct General {
    pub state: String,
    pub state_code: u32,
    pub connectivity: String,
    pub startup_complete: bool,
    pub networking_enabled: bool,
    pub version: String,
    pub primary_connection: Option<String>,
    pub hostname: String,
}

pub fn general(s: &ObjectStore) -> General {
    let m = MANAGER_PATH;
    let state_code = s.u32(m, MANAGER, "State");
    General {
        state: names::nm_state(state_code).into(),
        state_code,
        connectivity: names::connectivity(s.u32(m, MANAGER, "Connectivity")).into(),
        startup_complete: !s.bool(m, MANAGER, "Startup"),
        networking_enabled: s.bool(m, MANAGER, "NetworkingEnabled"),
        version: s.str(m, MANAGER, "Version"),
        primary_connection: s.path(m, MANAGER, "PrimaryConnection").map(|ac| s.str(&ac, ACTIVE, "Id")),
        hostname: s.str(SETTINGS_PATH, SETTINGS, "Hostname"),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceSummary {
    pub device: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub state: String,
    pub state_code: u32,
    pub reason: String,
    pub reason_code: u32,
    pub connection: Option<String>,
    pub managed: bool,
}

pub fn device_summary(s: &ObjectStore, dev: &str) -> DeviceSummary {
    let (state_code, reason_code) = s.device_state(dev);
    let ac = s.path(dev, DEVICE, "ActiveConnection").filter(|ac| s.has(ac, ACTIVE));
    let external = ac.as_ref().is_some_and(|ac| s.u32(ac, ACTIVE, "StateFlags") & 0x80 != 0);
    let mut state = names::device_state(state_code).to_string();
    if external && state_code == names::DEVICE_ACTIVATED {
        state.push_str(" (externally)");
    }
    DeviceSummary {
        device: s.str(dev, DEVICE, "Interface"),
        kind: names::device_type(s.u32(dev, DEVICE, "DeviceType")).into(),
        state,
        state_code,
        reason: names::device_reason_name(reason_code),
        reason_code,
        connection: ac.map(|ac| s.str(&ac, ACTIVE, "Id")),
        managed: s.bool(dev, DEVICE, "Managed"),
    }
}

pub fn device_list(s: &ObjectStore) -> Vec<DeviceSummary> {
    s.devices().iter().map(|d| device_summary(s, d)).collect()
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Route {
    pub dest: String,
    pub next_hop: Option<String>,
    pub metric: Option<u32>,
    pub table: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IpInfo {
    pub addresses: Vec<String>,
    pub gateway: Option<String>,
    pub routes: Vec<Route>,
    pub dns: Vec<String>,
    pub searches: Vec<String>,
}

fn dict_u32(d: &nm_model::VarDict, k: &str) -> Option<u32> {
    d.get(k).and_then(Value::as_i128).and_then(|n| u32::try_from(n).ok())
}

fn dict_str(d: &nm_model::VarDict, k: &str) -> Option<String> {
    d.get(k).and_then(Value::as_str).map(str::to_string)
}

/// An IP4Config/IP6Config object (new `*Data` forms; IPv6 name servers are `aay`).
pub fn ip_info(s: &ObjectStore, path: &str, iface: &str) -> IpInfo {
    let list = |p: &str| s.get(path, iface, p).and_then(Value::as_dict_list).unwrap_or_default();
    let addresses = list("AddressData")
        .iter()
        .filter_map(|d| Some(format!("{}/{}", dict_str(d, "address")?, dict_u32(d, "prefix")?)))
        .collect();
    let routes = list("RouteData")
        .iter()
        .filter_map(|d| {
            Some(Route {
                dest: format!("{}/{}", dict_str(d, "dest")?, dict_u32(d, "prefix")?),
                next_hop: dict_str(d, "next-hop"),
                metric: dict_u32(d, "metric"),
                table: dict_u32(d, "table"),
            })
        })
        .collect();
    let dns = if iface == IP4 {
        list("NameserverData").iter().filter_map(|d| dict_str(d, "address")).collect()
    } else {
        s.get(path, iface, "Nameservers")
            .and_then(Value::array_items)
            .unwrap_or_default()
            .iter()
            .filter_map(|v| <[u8; 16]>::try_from(v.as_bytes()?).ok())
            .map(|b| std::net::Ipv6Addr::from(b).to_string())
            .collect()
    };
    let gateway = s.str(path, iface, "Gateway");
    IpInfo {
        addresses,
        gateway: (!gateway.is_empty()).then_some(gateway),
        routes,
        dns,
        searches: s.get(path, iface, "Searches").and_then(Value::as_str_list).unwrap_or_default(),
    }
}

fn ip_of(s: &ObjectStore, owner: &str, owner_iface: &str, prop: &str, iface: &str) -> Option<IpInfo> {
    s.path(owner, owner_iface, prop).filter(|p| s.has(p, iface)).map(|p| ip_info(s, &p, iface))
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceDetail {
    #[serde(flatten)]
    pub summary: DeviceSummary,
    pub hw_address: String,
    pub mtu: u32,
    pub autoconnect: bool,
    pub carrier: Option<bool>,
    pub ip4: Option<IpInfo>,
    pub ip6: Option<IpInfo>,
    pub dhcp4: BTreeMap<String, String>,
}

pub fn device_detail(s: &ObjectStore, dev: &str) -> DeviceDetail {
    let dhcp4 = s
        .path(dev, DEVICE, "Dhcp4Config")
        .and_then(|p| s.get(&p, DHCP4, "Options").and_then(Value::as_var_dict))
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, nm_model::text::scalar_text(&v)))
        .collect();
    DeviceDetail {
        summary: device_summary(s, dev),
        hw_address: s.str(dev, DEVICE, "HwAddress"),
        mtu: s.u32(dev, DEVICE, "Mtu"),
        autoconnect: s.bool(dev, DEVICE, "Autoconnect"),
        carrier: s.has(dev, WIRED).then(|| s.bool(dev, WIRED, "Carrier")),
        ip4: ip_of(s, dev, DEVICE, "Ip4Config", IP4),
        ip6: ip_of(s, dev, DEVICE, "Ip6Config", IP6),
        dhcp4,
    }
}

/// The active connections of a profile (by its settings path).
pub fn actives_of(s: &ObjectStore, profile_path: &str) -> Vec<String> {
    s.paths(MANAGER_PATH, MANAGER, "ActiveConnections")
        .into_iter()
        .filter(|ac| s.str(ac, ACTIVE, "Connection") == profile_path)
        .collect()
}

fn ac_devices(s: &ObjectStore, ac: &str) -> Vec<String> {
    s.paths(ac, ACTIVE, "Devices").iter().map(|d| s.str(d, DEVICE, "Interface")).collect()
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConnectionRow {
    pub name: String,
    pub uuid: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub device: Option<String>,
    pub active_state: Option<String>,
    pub filename: String,
}

/// Profiles, active ones first (as nmcli lists them), then by name.
pub fn connection_list(s: &ObjectStore, profiles: &[Profile], active_only: bool) -> Vec<ConnectionRow> {
    let mut rows: Vec<ConnectionRow> = profiles
        .iter()
        .map(|p| {
            let ac = actives_of(s, &p.path).into_iter().next();
            ConnectionRow {
                name: p.id(),
                uuid: p.uuid(),
                kind: p.kind(),
                device: ac.as_ref().and_then(|ac| ac_devices(s, ac).into_iter().next()),
                active_state: ac.map(|ac| names::active_state(s.u32(&ac, ACTIVE, "State")).to_string()),
                filename: p.filename.clone(),
            }
        })
        .filter(|r| !active_only || r.active_state.is_some())
        .collect();
    rows.sort_by(|a, b| b.active_state.is_some().cmp(&a.active_state.is_some()).then(a.name.cmp(&b.name)));
    rows
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActiveInfo {
    pub state: String,
    pub state_code: u32,
    pub devices: Vec<String>,
    pub default4: bool,
    pub default6: bool,
    pub ip4: Option<IpInfo>,
    pub ip6: Option<IpInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConnectionDetail {
    pub name: String,
    pub uuid: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub filename: String,
    /// setting → property (nmcli's names) → value.
    pub settings: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    pub active: Option<ActiveInfo>,
    /// `setting.property` and its text, in the schema's setting order.
    #[serde(skip)]
    pub lines: Vec<(String, String)>,
}

fn setting_rank(name: &str) -> usize {
    match name {
        "connection" => 0,
        _ => schema::SETTINGS.iter().position(|s| s.name == name).map_or(usize::MAX, |i| i + 1),
    }
}

/// The profile's properties in their stored form: the legacy twins
/// NetworkManager also sends (`addresses` as `aau`, `dns` as `au`, …) are
/// folded into the new ones by nm-model, as libnm does.
fn stored(p: &Profile) -> SettingsDict {
    match nm_model::dbus_dict::from_dbus(&p.settings) {
        Ok(conn) => conn
            .settings
            .iter()
            .map(|(name, setting)| (name.clone(), setting.props.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
            .collect(),
        Err(_) => p.settings.clone(),
    }
}

pub fn connection_detail(s: &ObjectStore, p: &Profile) -> ConnectionDetail {
    let dict = stored(p);
    let mut order: Vec<&String> = dict.keys().collect();
    order.sort_by_key(|n| (setting_rank(n), n.to_string()));
    let mut settings = BTreeMap::new();
    let mut lines = Vec::new();
    for sname in order {
        let mut json = BTreeMap::new();
        for (prop, v) in &dict[sname] {
            let shown = props::display_name(sname, prop);
            lines.push((format!("{sname}.{shown}"), props::format_value(sname, prop, v)));
            json.insert(shown, props::json_value(sname, prop, v));
        }
        settings.insert(sname.clone(), json);
    }
    let active = actives_of(s, &p.path).into_iter().next().map(|ac| {
        let state_code = s.u32(&ac, ACTIVE, "State");
        ActiveInfo {
            state: names::active_state(state_code).into(),
            state_code,
            devices: ac_devices(s, &ac),
            default4: s.bool(&ac, ACTIVE, "Default"),
            default6: s.bool(&ac, ACTIVE, "Default6"),
            ip4: ip_of(s, &ac, ACTIVE, "Ip4Config", IP4),
            ip6: ip_of(s, &ac, ACTIVE, "Ip6Config", IP6),
        }
    });
    ConnectionDetail {
        name: p.id(),
        uuid: p.uuid(),
        kind: p.kind(),
        filename: p.filename.clone(),
        settings,
        active,
        lines,
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OverviewDevice {
    pub device: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub state: String,
    pub state_code: u32,
    pub connection: Option<String>,
    pub addresses: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DefaultRoute {
    pub family: String,
    pub gateway: String,
    pub device: String,
    pub metric: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DnsServer {
    pub server: String,
    pub device: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Overview {
    pub state: String,
    pub state_code: u32,
    pub devices: Vec<OverviewDevice>,
    pub default_routes: Vec<DefaultRoute>,
    pub dns: Vec<DnsServer>,
}

pub fn overview(s: &ObjectStore) -> Overview {
    let mut devices = Vec::new();
    let mut routes = Vec::new();
    let mut dns_fallback = Vec::new();
    for dev in s.devices() {
        let d = device_detail(s, &dev);
        for (family, ip) in [("ipv4", &d.ip4), ("ipv6", &d.ip6)] {
            let Some(ip) = ip else { continue };
            let defaults: Vec<&Route> =
                ip.routes.iter().filter(|r| r.dest.ends_with("/0") && r.next_hop.is_some()).collect();
            for r in &defaults {
                let gateway = r.next_hop.clone().unwrap_or_default();
                routes.push(DefaultRoute {
                    family: family.into(),
                    gateway,
                    device: d.summary.device.clone(),
                    metric: r.metric,
                });
            }
            if let (true, Some(gw)) = (defaults.is_empty(), &ip.gateway) {
                routes.push(DefaultRoute {
                    family: family.into(),
                    gateway: gw.clone(),
                    device: d.summary.device.clone(),
                    metric: None,
                });
            }
            for server in &ip.dns {
                dns_fallback.push(DnsServer { server: server.clone(), device: Some(d.summary.device.clone()) });
            }
        }
        let addresses = d.ip4.iter().chain(d.ip6.iter()).flat_map(|ip| ip.addresses.clone()).collect();
        devices.push(OverviewDevice {
            device: d.summary.device,
            kind: d.summary.kind,
            state: d.summary.state,
            state_code: d.summary.state_code,
            connection: d.summary.connection,
            addresses,
        });
    }
    routes
        .sort_by(|a, b| a.family.cmp(&b.family).then(a.metric.unwrap_or(u32::MAX).cmp(&b.metric.unwrap_or(u32::MAX))));
    // The resolver's view (DnsManager.Configuration) when it is exported.
    let mut dns = Vec::new();
    if s.has(DNS_MANAGER_PATH, DNS_MANAGER) {
        let entries = s.get(DNS_MANAGER_PATH, DNS_MANAGER, "Configuration").and_then(Value::as_dict_list);
        for e in entries.unwrap_or_default() {
            let device = dict_str(&e, "interface").filter(|i| !i.is_empty());
            for server in e.get("nameservers").and_then(Value::as_str_list).unwrap_or_default() {
                if !dns.iter().any(|d: &DnsServer| d.server == server) {
                    dns.push(DnsServer { server, device: device.clone() });
                }
            }
        }
    } else {
        dns = dns_fallback;
    }
    let state_code = s.u32(MANAGER_PATH, MANAGER, "State");
    Overview { state: names::nm_state(state_code).into(), state_code, devices, default_routes: routes, dns }
}
