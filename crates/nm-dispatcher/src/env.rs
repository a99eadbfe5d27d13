//! The arguments and environment of a script (reference §5.4), pure.
//!
//! Every value here may come from the network (a DHCP option, a search
//! domain): it is passed as one environment value of a process started by
//! `execve`, never pasted into a command line, so no shell ever parses it.

use std::net::IpAddr;

use crate::request::{DEVICE_ACTIVATED, IpConfig, Request};

/// `argv[1]`: the interface the scripts are about.
pub fn interface_argument(r: &Request) -> String {
    match r.action.as_str() {
        "hostname" => "none".into(),
        "connectivity-change" => String::new(),
        _ if r.is_vpn() && !r.vpn_ip_iface.is_empty() => r.vpn_ip_iface.clone(),
        _ => r.device.as_ref().map(|d| d.ip_iface.clone()).unwrap_or_default(),
    }
}

fn unspecified(v6: bool) -> &'static str {
    if v6 { "::" } else { "0.0.0.0" }
}

fn show(a: Option<IpAddr>, v6: bool) -> String {
    a.map_or_else(|| unspecified(v6).to_owned(), |a| a.to_string())
}

fn join(list: &[IpAddr]) -> String {
    list.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")
}

/// `IP4_ADDRESS_0="a/plen gw"`, `IP4_ROUTE_0="dest/plen nh metric"`, … with
/// `prefix` `IP4`, `IP6`, `VPN_IP4` or `VPN_IP6`.
fn ip_items(out: &mut Vec<(String, String)>, prefix: &str, ip: &IpConfig, v6: bool) {
    for (i, a) in ip.addresses.iter().enumerate() {
        out.push((
            format!("{prefix}_ADDRESS_{i}"),
            format!("{}/{} {}", show(a.addr, v6), a.prefix, show(a.gateway, v6)),
        ));
    }
    out.push((format!("{prefix}_NUM_ADDRESSES"), ip.addresses.len().to_string()));
    if let Some(gw) = ip.gateway() {
        out.push((format!("{prefix}_GATEWAY"), gw.to_string()));
    }
    for (i, r) in ip.routes.iter().enumerate() {
        out.push((
            format!("{prefix}_ROUTE_{i}"),
            format!("{}/{} {} {}", show(r.dest, v6), r.prefix, show(r.next_hop, v6), r.metric),
        ));
    }
    out.push((format!("{prefix}_NUM_ROUTES"), ip.routes.len().to_string()));
    if !ip.nameservers.is_empty() {
        out.push((format!("{prefix}_NAMESERVERS"), join(&ip.nameservers)));
    }
    if !ip.domains.is_empty() {
        out.push((format!("{prefix}_DOMAINS"), ip.domains.join(" ")));
    }
    if !v6 && !ip.wins_servers.is_empty() {
        out.push((format!("{prefix}_WINS_SERVERS"), join(&ip.wins_servers)));
    }
}

/// `DHCP4_DOMAIN_NAME_SERVERS=…` from `domain_name_servers`: upper case,
/// anything but letters and digits turned into `_`.
fn dhcp_name(prefix: &str, option: &str) -> String {
    let name: String =
        option.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("{prefix}_{name}")
}

fn dhcp_items(out: &mut Vec<(String, String)>, prefix: &str, options: &[(String, String)]) {
    for (k, v) in options {
        if k.is_empty() {
            continue;
        }
        out.push((dhcp_name(prefix, k), v.clone()));
        // Azure's agents read option 245 by this name (NetworkManager does the same).
        if let Some(code) = k.strip_prefix("private_") {
            out.push((format!("{prefix}_UNKNOWN_{code}"), v.clone()));
        }
    }
}

fn proxy_items(out: &mut Vec<(String, String)>, prefix: &str, proxy: &[(String, String)]) {
    for (k, v) in proxy {
        let name = match k.as_str() {
            "pac-url" => "PROXY_PAC_URL",
            "pac-script" => "PROXY_PAC_SCRIPT",
            _ => continue,
        };
        if !v.is_empty() {
            out.push((format!("{prefix}{name}"), v.clone()));
        }
    }
}

/// Whether the request carries the device's IP data to scripts:
/// NetworkManager gives it when the device is activated; pre-up runs just
/// before that and gets it too, since it is what a pre-up script is for.
fn with_ip_data(r: &Request) -> bool {
    let activated = r.device.as_ref().is_some_and(|d| d.state == DEVICE_ACTIVATED);
    activated || matches!(r.action.as_str(), "pre-up" | "vpn-pre-up")
}

/// The whole environment, `PATH` (given) included. Entries whose name or
/// value holds a NUL byte cannot be passed to `execve` and are dropped.
pub fn environment(r: &Request, path: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vec![("NM_DISPATCHER_ACTION".into(), r.action.clone())];
    out.push(("PATH".into(), path.to_owned()));
    if r.action == "hostname" {
        return out;
    }
    if let Some(uuid) = &r.connection_uuid {
        out.push(("CONNECTION_UUID".into(), uuid.clone()));
    }
    if let Some(id) = &r.connection_id {
        out.push(("CONNECTION_ID".into(), id.clone()));
    }
    if let Some(p) = &r.connection_path {
        out.push(("CONNECTION_DBUS_PATH".into(), p.clone()));
    }
    if let Some(f) = &r.connection_filename {
        out.push(("CONNECTION_FILENAME".into(), f.clone()));
    }
    if r.connection_external {
        out.push(("CONNECTION_EXTERNAL".into(), "1".into()));
    }
    if r.action == "connectivity-change" {
        out.push(("CONNECTIVITY_STATE".into(), r.connectivity.clone()));
    }
    if let Some(d) = &r.device {
        out.push(("DEVICE_IFACE".into(), d.iface.clone()));
        out.push(("DEVICE_IP_IFACE".into(), d.ip_iface.clone()));
    }
    if !r.vpn_ip_iface.is_empty() {
        out.push(("VPN_IP_IFACE".into(), r.vpn_ip_iface.clone()));
    }
    if with_ip_data(r) {
        proxy_items(&mut out, "", &r.proxy);
        if let Some(ip) = &r.ip4 {
            ip_items(&mut out, "IP4", ip, false);
        }
        if let Some(ip) = &r.ip6 {
            ip_items(&mut out, "IP6", ip, true);
        }
        dhcp_items(&mut out, "DHCP4", &r.dhcp4);
        dhcp_items(&mut out, "DHCP6", &r.dhcp6);
    }
    if r.is_vpn() {
        proxy_items(&mut out, "VPN_", &r.vpn_proxy);
        if let Some(ip) = &r.vpn_ip4 {
            ip_items(&mut out, "VPN_IP4", ip, false);
        }
        if let Some(ip) = &r.vpn_ip6 {
            ip_items(&mut out, "VPN_IP6", ip, true);
        }
    }
    out.retain(|(k, v)| !k.contains('\0') && !v.contains('\0'));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Address, Device, Route};

    fn value<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn up() -> Request {
        Request {
            action: "up".into(),
            connection_id: Some("Wired 1".into()),
            connection_uuid: Some("0c2e3e4f-0000-4000-8000-000000000001".into()),
            connection_path: Some("/org/freedesktop/NetworkManager/Settings/1".into()),
            device: Some(Device { iface: "eth0".into(), ip_iface: "eth0".into(), state: DEVICE_ACTIVATED }),
            ip4: Some(IpConfig {
                addresses: vec![Address {
                    addr: Some("192.0.2.5".parse().unwrap()),
                    prefix: 24,
                    gateway: Some("192.0.2.1".parse().unwrap()),
                }],
                routes: vec![Route {
                    dest: Some("10.1.0.0".parse().unwrap()),
                    prefix: 16,
                    next_hop: None,
                    metric: 100,
                }],
                nameservers: vec!["192.0.2.53".parse().unwrap(), "192.0.2.54".parse().unwrap()],
                domains: vec!["lab.test".into()],
                wins_servers: vec![],
            }),
            dhcp4: vec![
                ("domain_name_servers".into(), "192.0.2.53".into()),
                ("private_245".into(), "a8:3f:81:10".into()),
                ("host_name".into(), "$(reboot);`id`|x".into()),
            ],
            connectivity: "FULL".into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_activated_device_gets_every_variable() {
        let env = environment(&up(), "/usr/bin:/bin");
        assert_eq!(value(&env, "NM_DISPATCHER_ACTION"), Some("up"));
        assert_eq!(value(&env, "PATH"), Some("/usr/bin:/bin"));
        assert_eq!(value(&env, "CONNECTION_ID"), Some("Wired 1"));
        assert_eq!(value(&env, "CONNECTION_UUID"), Some("0c2e3e4f-0000-4000-8000-000000000001"));
        assert_eq!(value(&env, "CONNECTION_DBUS_PATH"), Some("/org/freedesktop/NetworkManager/Settings/1"));
        assert_eq!(value(&env, "CONNECTION_EXTERNAL"), None);
        assert_eq!(value(&env, "DEVICE_IFACE"), Some("eth0"));
        assert_eq!(value(&env, "DEVICE_IP_IFACE"), Some("eth0"));
        assert_eq!(value(&env, "IP4_ADDRESS_0"), Some("192.0.2.5/24 192.0.2.1"));
        assert_eq!(value(&env, "IP4_NUM_ADDRESSES"), Some("1"));
        assert_eq!(value(&env, "IP4_GATEWAY"), Some("192.0.2.1"));
        assert_eq!(value(&env, "IP4_ROUTE_0"), Some("10.1.0.0/16 0.0.0.0 100"));
        assert_eq!(value(&env, "IP4_NUM_ROUTES"), Some("1"));
        assert_eq!(value(&env, "IP4_NAMESERVERS"), Some("192.0.2.53 192.0.2.54"));
        assert_eq!(value(&env, "IP4_DOMAINS"), Some("lab.test"));
        assert_eq!(value(&env, "DHCP4_DOMAIN_NAME_SERVERS"), Some("192.0.2.53"));
        assert_eq!(value(&env, "DHCP4_PRIVATE_245"), Some("a8:3f:81:10"));
        assert_eq!(value(&env, "DHCP4_UNKNOWN_245"), Some("a8:3f:81:10"));
        // Shell syntax is a value like any other.
        assert_eq!(value(&env, "DHCP4_HOST_NAME"), Some("$(reboot);`id`|x"));
        assert_eq!(value(&env, "CONNECTIVITY_STATE"), None);
        assert_eq!(interface_argument(&up()), "eth0");
    }

    #[test]
    fn ip_data_only_when_activated_or_pre_up() {
        let mut down = up();
        down.action = "down".into();
        down.device.as_mut().unwrap().state = 30;
        let env = environment(&down, "/bin");
        assert_eq!(value(&env, "IP4_ADDRESS_0"), None);
        assert_eq!(value(&env, "DHCP4_DOMAIN_NAME_SERVERS"), None);
        assert_eq!(value(&env, "CONNECTION_ID"), Some("Wired 1"));
        let mut pre_up = down.clone();
        pre_up.action = "pre-up".into();
        assert_eq!(value(&environment(&pre_up, "/bin"), "IP4_ADDRESS_0"), Some("192.0.2.5/24 192.0.2.1"));
    }

    #[test]
    fn hostname_and_connectivity_change() {
        let mut h = up();
        h.action = "hostname".into();
        let env = environment(&h, "/bin");
        assert_eq!(env.len(), 2, "only the action and PATH: {env:?}");
        assert_eq!(interface_argument(&h), "none");
        let c = Request { action: "connectivity-change".into(), connectivity: "LIMITED".into(), ..Default::default() };
        assert_eq!(value(&environment(&c, "/bin"), "CONNECTIVITY_STATE"), Some("LIMITED"));
        assert_eq!(interface_argument(&c), "");
    }

    #[test]
    fn nul_bytes_are_dropped_and_names_made_safe() {
        let mut r = up();
        r.dhcp4 = vec![("bad\0name".into(), "x".into()), ("ok-name".into(), "a\0b".into()), ("x.y".into(), "1".into())];
        let env = environment(&r, "/bin");
        assert!(env.iter().all(|(k, v)| !k.contains('\0') && !v.contains('\0')));
        assert_eq!(value(&env, "DHCP4_X_Y"), Some("1"));
        assert_eq!(value(&env, "DHCP4_OK_NAME"), None);
    }
}
