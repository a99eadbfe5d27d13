//! nm-core's part of `/etc/NetworkManager/nm-rs.toml`:
//!
//! ```toml
//! [core]
//! managed = ["interface-name:eth*", "type:veth"]   # besides physical devices
//! unmanaged = ["interface-name:docker*"]
//! no-auto-default = ["*"]     # no "Wired connection N" for these devices
//! dns = "file"                # or "none": leave the resolver alone
//! resolv-conf = "/etc/resolv.conf"
//! carrier-grace-ms = 3000     # carrier loss tolerated before deactivating
//! carrier-wait-ms = 5000      # how long start-up waits for carriers
//! settings-wait-ms = 5000     # how long start-up waits for nm-system-settings
//! auth-polkit = true          # ask polkit about non-root callers (when it runs)
//! auth-group = "netdev"       # without polkit: this group may do what root may
//! ```

use std::path::PathBuf;

use nm_runtime::Paths;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub core: CoreConfig,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnsMode {
    /// The resolver file, or systemd-resolved when the file leads to its
    /// (NetworkManager's `dns=default`).
    File,
    /// Always through systemd-resolved.
    SystemdResolved,
    None,
}

#[derive(Debug, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct CoreConfig {
    pub managed: Vec<String>,
    pub unmanaged: Vec<String>,
    /// NetworkManager's `main.no-auto-default`: devices (specs, `*` for
    /// all) that get no auto-default ethernet profile.
    pub no_auto_default: Vec<String>,
    pub dns: DnsMode,
    pub resolv_conf: String,
    pub carrier_grace_ms: u64,
    pub carrier_wait_ms: u64,
    /// When nm-system-settings is not on the bus at start (it may start
    /// beside nm-core), how long to wait for it before going on without
    /// profiles.
    pub settings_wait_ms: u64,
    /// NetworkManager's `main.auth-polkit`: false never asks polkit.
    pub auth_polkit: bool,
    /// Without polkit, members of this group (by NSS) may change things;
    /// unset, only root may.
    pub auth_group: Option<String>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            managed: vec![],
            unmanaged: vec![],
            no_auto_default: vec![],
            dns: DnsMode::File,
            resolv_conf: "/etc/resolv.conf".into(),
            carrier_grace_ms: 3000,
            carrier_wait_ms: 5000,
            settings_wait_ms: 5000,
            auth_polkit: true,
            auth_group: None,
        }
    }
}

/// What nm-core takes from NetworkManager's own configuration
/// (`/etc/NetworkManager/NetworkManager.conf` and the `conf.d` files of
/// /usr/lib, /run and /etc, read in NetworkManager's order), so a host's
/// existing settings keep working; `nm-rs.toml` is read over it. Taken:
/// `[main] dns` (`none`, `systemd-resolved`, else the file), `rc-manager=
/// unmanaged` (the resolver left alone), `no-auto-default`, `auth-polkit`
/// (`root-only` is false), `[keyfile] unmanaged-devices`, `[device*]`
/// sections with `managed=` for their `match-device=`, and with the
/// `ifupdown` plugin and `[ifupdown] managed=false` (Debian's default)
/// the interfaces /etc/network/interfaces configures, left to ifupdown.
/// Unreadable files are skipped: NetworkManager's configuration is a
/// courtesy here.
pub fn networkmanager_conf(paths: &Paths) -> toml::Table {
    let mut files = vec![paths.path("/etc/NetworkManager/NetworkManager.conf")];
    let mut by_name: std::collections::BTreeMap<std::ffi::OsString, PathBuf> = Default::default();
    for dir in ["/usr/lib/NetworkManager/conf.d", "/run/NetworkManager/conf.d", "/etc/NetworkManager/conf.d"] {
        let Ok(entries) = std::fs::read_dir(paths.path(dir)) else { continue };
        for e in entries.filter_map(Result::ok) {
            if e.path().extension().is_some_and(|x| x == "conf") {
                // A later directory's file of the same name replaces it.
                by_name.insert(e.file_name(), e.path());
            }
        }
    }
    files.extend(by_name.into_values());
    let mut conf = NmConf::default();
    for f in files {
        if let Ok(text) = std::fs::read_to_string(&f) {
            conf.read(&text);
        }
    }
    // Debian's `plugins=ifupdown,keyfile` with `[ifupdown] managed=false`
    // (its default): what /etc/network/interfaces configures is ifupdown's.
    if conf.plugins.as_ref().is_some_and(|p| p.iter().any(|p| p == "ifupdown")) && !conf.ifupdown_managed {
        let mut texts: Vec<String> =
            std::fs::read_to_string(paths.path("/etc/network/interfaces")).into_iter().collect();
        if let Ok(entries) = std::fs::read_dir(paths.path("/etc/network/interfaces.d")) {
            let mut files: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
            files.sort();
            texts.extend(files.iter().filter_map(|f| std::fs::read_to_string(f).ok()));
        }
        let names: Vec<String> = texts.iter().flat_map(|t| ifupdown_interfaces(t)).collect();
        if !names.is_empty() {
            let specs = names.iter().map(|n| format!("interface-name:={n}")).collect::<Vec<_>>().join(";");
            conf.unmanaged.get_or_insert_with(Vec::new).push(specs);
        }
    }
    conf.into_table()
}

/// The interfaces an ifupdown file configures (`iface NAME …` stanzas),
/// but the loopback.
fn ifupdown_interfaces(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("iface")).then(|| words.next()).flatten()
        })
        .filter(|name| *name != "lo")
        .map(String::from)
        .collect()
}

/// The keys of NetworkManager.conf nm-core uses, as read so far.
#[derive(Debug, Default)]
struct NmConf {
    dns: Option<String>,
    rc_manager: Option<String>,
    no_auto_default: Option<Vec<String>>,
    auth_polkit: Option<String>,
    unmanaged: Option<Vec<String>>,
    plugins: Option<Vec<String>>,
    /// `[ifupdown] managed` (NetworkManager's default: false).
    ifupdown_managed: bool,
    /// `[device*]` sections: their match and whether they manage.
    devices: Vec<(Vec<String>, bool)>,
}

/// A device spec list: `;` or `,` between entries.
fn spec_list(v: &str) -> Vec<String> {
    v.split([';', ',']).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

impl NmConf {
    /// One file's keys, over what earlier files said (`key+=` adds to a
    /// list, as NetworkManager merges them).
    fn read(&mut self, text: &str) {
        let mut group = String::new();
        let mut device: Option<(Vec<String>, Option<bool>)> = None;
        let flush = |device: &mut Option<(Vec<String>, Option<bool>)>, devices: &mut Vec<(Vec<String>, bool)>| {
            if let Some((m, Some(managed))) = device.take() {
                devices.push((if m.is_empty() { vec!["*".into()] } else { m }, managed));
            }
        };
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(g) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                flush(&mut device, &mut self.devices);
                group = g.trim().to_string();
                if group == "device" || group.starts_with("device-") {
                    device = Some((Vec::new(), None));
                }
                continue;
            }
            let Some((key, value)) = line.split_once('=') else { continue };
            let (key, add) = match key.trim_end().strip_suffix('+') {
                Some(k) => (k.trim_end(), true),
                None => (key.trim_end(), false),
            };
            let value = value.trim();
            let list = |old: &mut Option<Vec<String>>| {
                let mut new = if add { old.take().unwrap_or_default() } else { Vec::new() };
                new.extend(spec_list(value));
                *old = Some(new);
            };
            match (group.as_str(), key) {
                ("main", "dns") => self.dns = Some(value.to_string()),
                ("main", "rc-manager") => self.rc_manager = Some(value.to_string()),
                ("main", "no-auto-default") => list(&mut self.no_auto_default),
                ("main", "auth-polkit") => self.auth_polkit = Some(value.to_string()),
                ("keyfile", "unmanaged-devices") => list(&mut self.unmanaged),
                ("main", "plugins") => list(&mut self.plugins),
                ("ifupdown", "managed") => self.ifupdown_managed = matches!(value, "1" | "true" | "yes"),
                (_, "match-device") if device.is_some() => {
                    if let Some((m, _)) = device.as_mut() {
                        *m = spec_list(value);
                    }
                }
                (_, "managed") if device.is_some() => {
                    if let Some((_, managed)) = device.as_mut() {
                        *managed = matches!(value, "1" | "true" | "yes").then_some(true).or(Some(false));
                    }
                }
                _ => {}
            }
        }
        flush(&mut device, &mut self.devices);
    }

    fn into_table(self) -> toml::Table {
        let mut core = toml::Table::new();
        let strings = |v: Vec<String>| toml::Value::Array(v.into_iter().map(toml::Value::String).collect());
        let dns = match (self.rc_manager.as_deref(), self.dns.as_deref()) {
            (Some("unmanaged"), _) | (_, Some("none")) => Some("none"),
            (_, Some("systemd-resolved")) => Some("systemd-resolved"),
            (_, Some(_)) => Some("file"),
            _ => None,
        };
        if let Some(d) = dns {
            core.insert("dns".into(), toml::Value::String(d.into()));
        }
        if let Some(v) = self.no_auto_default {
            core.insert("no-auto-default".into(), strings(vec![v.join(";")]));
        }
        if let Some(p) = self.auth_polkit {
            core.insert("auth-polkit".into(), toml::Value::Boolean(matches!(p.as_str(), "true" | "yes" | "1")));
        }
        // Each NetworkManager list stays one entry: its `except:` specs
        // speak for it alone (`device::spec_list_matches`).
        let one = |specs: Vec<String>| specs.join(";");
        let mut unmanaged: Vec<String> = self.unmanaged.into_iter().map(one).collect();
        let mut managed = Vec::new();
        for (specs, is_managed) in self.devices {
            if is_managed { managed.push(one(specs)) } else { unmanaged.push(one(specs)) }
        }
        if !unmanaged.is_empty() {
            core.insert("unmanaged".into(), strings(unmanaged));
        }
        if !managed.is_empty() {
            core.insert("managed".into(), strings(managed));
        }
        let mut table = toml::Table::new();
        if !core.is_empty() {
            table.insert("core".into(), toml::Value::Table(core));
        }
        table
    }
}

impl CoreConfig {
    pub fn auth(&self) -> crate::auth::AuthConfig {
        crate::auth::AuthConfig { polkit: self.auth_polkit, group: self.auth_group.clone().filter(|g| !g.is_empty()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_settings() {
        let c: Config = toml::from_str("[core]\nauth-polkit = false\nauth-group = \"netdev\"\n").unwrap();
        assert_eq!(c.core.auth(), crate::auth::AuthConfig { polkit: false, group: Some("netdev".into()) });
        let d = Config::default();
        assert_eq!(d.core.auth(), crate::auth::AuthConfig { polkit: true, group: None });
    }

    #[test]
    fn networkmanager_conf_keeps_working() {
        let mut c = NmConf::default();
        c.read(
            "# NetworkManager.conf\n[main]\nplugins=keyfile\ndns=none\nno-auto-default=eth1,eth2\n\n\
             [keyfile]\nunmanaged-devices=interface-name:docker*;mac:52:54:00:12:34:56\n\n\
             [device-lab]\nmatch-device=interface-name:veth*\nmanaged=1\n",
        );
        // A conf.d file read later adds to and overrides it.
        c.read("[main]\nno-auto-default+=eth3\nauth-polkit=root-only\n[device]\nmatch-device=driver:e1000\nmanaged=false\n");
        let t = c.into_table();
        let core: CoreConfig = toml::Value::Table(t["core"].as_table().unwrap().clone()).try_into().unwrap();
        assert_eq!(core.dns, DnsMode::None);
        assert_eq!(core.no_auto_default, ["eth1;eth2;eth3"]);
        assert!(!core.auth_polkit);
        assert_eq!(core.unmanaged, ["interface-name:docker*;mac:52:54:00:12:34:56", "driver:e1000"]);
        assert_eq!(core.managed, ["interface-name:veth*"]);

        let mut r = NmConf::default();
        r.read("[main]\ndns=systemd-resolved\n");
        assert_eq!(r.into_table()["core"]["dns"].as_str(), Some("systemd-resolved"));
        let mut u = NmConf::default();
        u.read("[main]\ndns=default\nrc-manager=unmanaged\n");
        assert_eq!(u.into_table()["core"]["dns"].as_str(), Some("none"), "the resolver left alone");
        assert!(NmConf::default().into_table().is_empty());
    }

    #[test]
    fn debians_ifupdown_interfaces_stay_ifupdowns() {
        let text = "# The loopback\nauto lo\niface lo inet loopback\n\nallow-hotplug eth0\niface eth0 inet dhcp\niface eth0 inet6 auto\n";
        assert_eq!(ifupdown_interfaces(text), ["eth0", "eth0"]);
        let mut c = NmConf::default();
        c.read("[main]\nplugins=ifupdown,keyfile\n\n[ifupdown]\nmanaged=false\n");
        assert!(c.plugins.as_ref().is_some_and(|p| p.contains(&"ifupdown".to_string())) && !c.ifupdown_managed);
        c.read("[ifupdown]\nmanaged=true\n");
        assert!(c.ifupdown_managed);
    }
}
