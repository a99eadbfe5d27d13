//! nm-system-settings' part of `/etc/NetworkManager/nm-rs.toml`:
//!
//! ```toml
//! [settings]
//! format = "keyfile"          # or "toml": the format of new profiles
//! hostname-file = "/etc/hostname"
//! ```

use serde::Deserialize;

use crate::store::Format;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub settings: SettingsConfig,
}

#[derive(Debug, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct SettingsConfig {
    #[serde(deserialize_with = "format")]
    pub format: Format,
    pub hostname_file: String,
}

impl Default for SettingsConfig {
    fn default() -> Self {
        SettingsConfig { format: Format::Keyfile, hostname_file: "/etc/hostname".into() }
    }
}

fn format<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Format, D::Error> {
    match String::deserialize(d)?.as_str() {
        "keyfile" => Ok(Format::Keyfile),
        "toml" => Ok(Format::Toml),
        other => Err(serde::de::Error::custom(format!("unknown format '{other}' (keyfile or toml)"))),
    }
}
