//! Views (view.rs) as text for people or JSON for scripts. Pure: the same
//! view always gives the same bytes; the snapshot tests hold them.

use serde::Serialize;

use crate::names::{self, Tone};
use crate::table::{Cell, Style, fields, or_dash, table};
use crate::view::*;

/// One JSON document, pretty-printed, ending in a newline.
pub fn json<T: Serialize>(value: &T) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

fn state_cell(state: &str, code: u32) -> Cell {
    Cell::toned(state, names::device_tone(code))
}

/// `nmctl` alone: NetworkManager's state, each device with its addresses,
/// the default routes and the name servers.
pub fn overview(o: &Overview, style: Style) -> String {
    let mut out = format!("State: {}\n\n", style.paint(&o.state, names::nm_state_tone(o.state_code)));
    let mut rows = Vec::new();
    for d in &o.devices {
        let first = d.addresses.first().map_or("", String::as_str);
        rows.push(vec![
            Cell::new(&d.device),
            Cell::new(&d.kind),
            state_cell(&d.state, d.state_code),
            Cell::new(or_dash(d.connection.as_deref().unwrap_or(""))),
            Cell::new(first),
        ]);
        for a in d.addresses.iter().skip(1) {
            rows.push(vec![Cell::new(""), Cell::new(""), Cell::new(""), Cell::new(""), Cell::new(a)]);
        }
    }
    out.push_str(&table(style, &["DEVICE", "TYPE", "STATE", "CONNECTION", "ADDRESSES"], &rows));
    out.push('\n');
    let mut lines = Vec::new();
    for r in &o.default_routes {
        let metric = r.metric.map(|m| format!(" metric {m}")).unwrap_or_default();
        lines.push(("Default route".to_string(), Cell::new(format!("{} via {}{metric}", r.gateway, r.device))));
    }
    if o.default_routes.is_empty() {
        lines.push(("Default route".to_string(), Cell::toned("none", Tone::Bad)));
    }
    for d in &o.dns {
        let via = d.device.as_ref().map(|i| format!(" ({i})")).unwrap_or_default();
        lines.push(("DNS".to_string(), Cell::new(format!("{}{via}", d.server))));
    }
    if o.dns.is_empty() {
        lines.push(("DNS".to_string(), Cell::new("none")));
    }
    out.push_str(&fields(style, &lines));
    out
}

pub fn general(g: &General, style: Style) -> String {
    let rows = vec![
        ("STATE".into(), Cell::toned(&g.state, names::nm_state_tone(g.state_code))),
        ("CONNECTIVITY".into(), Cell::new(&g.connectivity)),
        ("STARTUP".into(), Cell::new(if g.startup_complete { "complete" } else { "starting" })),
        ("NETWORKING".into(), Cell::new(if g.networking_enabled { "enabled" } else { "disabled" })),
        ("PRIMARY".into(), Cell::new(or_dash(g.primary_connection.as_deref().unwrap_or("")))),
        ("HOSTNAME".into(), Cell::new(or_dash(&g.hostname))),
        ("VERSION".into(), Cell::new(or_dash(&g.version))),
    ];
    fields(style, &rows)
}

pub fn devices(list: &[DeviceSummary], style: Style) -> String {
    let rows: Vec<Vec<Cell>> = list
        .iter()
        .map(|d| {
            vec![
                Cell::new(&d.device),
                Cell::new(&d.kind),
                state_cell(&d.state, d.state_code),
                Cell::new(or_dash(d.connection.as_deref().unwrap_or(""))),
            ]
        })
        .collect();
    table(style, &["DEVICE", "TYPE", "STATE", "CONNECTION"], &rows)
}

fn ip_lines(rows: &mut Vec<(String, Cell)>, prefix: &str, ip: &IpInfo) {
    for (i, a) in ip.addresses.iter().enumerate() {
        rows.push((format!("{prefix}.ADDRESS[{}]", i + 1), Cell::new(a)));
    }
    rows.push((format!("{prefix}.GATEWAY"), Cell::new(or_dash(ip.gateway.as_deref().unwrap_or("")))));
    for (i, r) in ip.routes.iter().enumerate() {
        let mut text = format!("dst = {}", r.dest);
        if let Some(nh) = &r.next_hop {
            text.push_str(&format!(", nh = {nh}"));
        }
        if let Some(m) = r.metric {
            text.push_str(&format!(", mt = {m}"));
        }
        if let Some(t) = r.table.filter(|t| *t != 0 && *t != 254) {
            text.push_str(&format!(", table = {t}"));
        }
        rows.push((format!("{prefix}.ROUTE[{}]", i + 1), Cell::new(text)));
    }
    for (i, d) in ip.dns.iter().enumerate() {
        rows.push((format!("{prefix}.DNS[{}]", i + 1), Cell::new(d)));
    }
    for (i, d) in ip.searches.iter().enumerate() {
        rows.push((format!("{prefix}.SEARCHES[{}]", i + 1), Cell::new(d)));
    }
}

pub fn device_detail(d: &DeviceDetail, style: Style) -> String {
    let s = &d.summary;
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut rows = vec![
        ("GENERAL.DEVICE".into(), Cell::new(&s.device)),
        ("GENERAL.TYPE".into(), Cell::new(&s.kind)),
        ("GENERAL.HWADDR".into(), Cell::new(or_dash(&d.hw_address))),
        ("GENERAL.MTU".into(), Cell::new(d.mtu.to_string())),
        (
            "GENERAL.STATE".into(),
            Cell::toned(format!("{} ({})", s.state_code, s.state), names::device_tone(s.state_code)),
        ),
        ("GENERAL.REASON".into(), Cell::new(format!("{} ({})", s.reason_code, s.reason))),
        ("GENERAL.CONNECTION".into(), Cell::new(or_dash(s.connection.as_deref().unwrap_or("")))),
        ("GENERAL.MANAGED".into(), Cell::new(yes_no(s.managed))),
        ("GENERAL.AUTOCONNECT".into(), Cell::new(yes_no(d.autoconnect))),
    ];
    if let Some(c) = d.carrier {
        rows.push(("WIRED.CARRIER".into(), Cell::new(if c { "on" } else { "off" })));
    }
    if let Some(ip) = &d.ip4 {
        ip_lines(&mut rows, "IP4", ip);
    }
    if let Some(ip) = &d.ip6 {
        ip_lines(&mut rows, "IP6", ip);
    }
    for (k, v) in &d.dhcp4 {
        rows.push(("DHCP4.OPTION".into(), Cell::new(format!("{k} = {v}"))));
    }
    fields(style, &rows)
}

/// Several devices' details, a blank line between them.
pub fn device_details(list: &[DeviceDetail], style: Style) -> String {
    list.iter().map(|d| device_detail(d, style)).collect::<Vec<_>>().join("\n")
}

pub fn connections(list: &[ConnectionRow], style: Style) -> String {
    let rows: Vec<Vec<Cell>> = list
        .iter()
        .map(|c| {
            let tone = if c.active_state.as_deref() == Some("activated") { Tone::Good } else { Tone::Plain };
            vec![
                Cell::toned(&c.name, tone),
                Cell::new(&c.uuid),
                Cell::new(short_type(&c.kind)),
                Cell::new(or_dash(c.device.as_deref().unwrap_or(""))),
            ]
        })
        .collect();
    table(style, &["NAME", "UUID", "TYPE", "DEVICE"], &rows)
}

pub fn connection_detail(c: &ConnectionDetail, style: Style) -> String {
    let mut rows: Vec<(String, Cell)> = c.lines.iter().map(|(k, v)| (k.clone(), Cell::new(or_dash(v)))).collect();
    if let Some(a) = &c.active {
        let tone = if a.state_code == names::AC_ACTIVATED { Tone::Good } else { Tone::Busy };
        rows.push(("GENERAL.STATE".into(), Cell::toned(&a.state, tone)));
        rows.push(("GENERAL.DEVICES".into(), Cell::new(or_dash(&a.devices.join(", ")))));
        rows.push(("GENERAL.DEFAULT".into(), Cell::new(if a.default4 { "yes" } else { "no" })));
        rows.push(("GENERAL.DEFAULT6".into(), Cell::new(if a.default6 { "yes" } else { "no" })));
        if let Some(ip) = &a.ip4 {
            ip_lines(&mut rows, "IP4", ip);
        }
        if let Some(ip) = &a.ip6 {
            ip_lines(&mut rows, "IP6", ip);
        }
    }
    fields(style, &rows)
}
