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
}
