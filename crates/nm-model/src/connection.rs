//! A connection profile: settings of properties, plus whatever a file held
//! that the model does not understand, kept so that it is written back.

use std::collections::{BTreeMap, BTreeSet};

use crate::vecmap::VecMap;

use crate::schema::{self, SECRET_FLAG_AGENT_OWNED, SECRET_FLAG_NOT_SAVED};
use crate::value::Value;

/// One setting (`connection`, `ipv4`, …): its properties as D-Bus-shaped values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Setting {
    pub props: VecMap<Value>,
    /// Keys read from a keyfile that the model does not know; their value is
    /// a `Value::Str` holding the raw (still escaped) text, written back as is.
    pub raw_keyfile_keys: BTreeSet<String>,
}

impl Setting {
    pub fn get(&self, prop: &str) -> Option<&Value> {
        self.props.get(prop)
    }
    pub fn set(&mut self, prop: &str, value: Value) {
        self.raw_keyfile_keys.remove(prop);
        self.props.insert(prop.to_string(), value);
    }
}

/// A keyfile group that is not a setting (`[.nmmeta]`, `[vpn-secrets]`, …),
/// kept verbatim.
#[derive(Clone, Debug, PartialEq)]
pub struct RawGroup {
    pub name: String,
    pub entries: Vec<(String, String)>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Connection {
    /// Keyed by canonical setting name (unknown settings by their own name).
    pub settings: VecMap<Setting>,
    pub raw_groups: Vec<RawGroup>,
}

/// A problem with one property, shown as NetworkManager does:
/// `ipv4.addresses: this property cannot be empty for 'method=manual'`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{setting}.{property}: {message}")]
pub struct PropertyError {
    pub setting: String,
    pub property: String,
    pub message: String,
}

impl PropertyError {
    pub fn new(setting: &str, property: &str, message: impl Into<String>) -> Self {
        PropertyError { setting: setting.into(), property: property.into(), message: message.into() }
    }
}

impl Connection {
    /// Drops spare capacity; for profiles kept in memory for long.
    pub fn shrink_to_fit(&mut self) {
        self.settings.shrink_to_fit();
        for (_, s) in self.settings.iter_mut() {
            s.props.shrink_to_fit();
        }
    }

    pub fn setting(&self, name: &str) -> Option<&Setting> {
        self.settings.get(name)
    }

    pub fn setting_mut(&mut self, name: &str) -> &mut Setting {
        self.settings.get_or_insert_with(name, Setting::default)
    }

    pub fn get(&self, setting: &str, prop: &str) -> Option<&Value> {
        self.settings.get(setting)?.get(prop)
    }

    pub fn get_str(&self, setting: &str, prop: &str) -> Option<&str> {
        self.get(setting, prop)?.as_str()
    }

    pub fn set(&mut self, setting: &str, prop: &str, value: Value) {
        self.setting_mut(setting).set(prop, value);
    }

    pub fn id(&self) -> Option<&str> {
        self.get_str("connection", "id")
    }

    pub fn uuid(&self) -> Option<&str> {
        self.get_str("connection", "uuid")
    }

    /// The canonical type (`802-3-ethernet`, …).
    pub fn connection_type(&self) -> Option<&str> {
        self.get_str("connection", "type")
    }

    /// The flags of a secret property (0 when unset).
    pub fn secret_flags(&self, setting: &str, secret: &str) -> u32 {
        let flags = schema::secret_flags_property(secret);
        self.get(setting, &flags).and_then(Value::as_i128).and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
    }

    /// Whether a secret is kept by the system (in the profile file) rather
    /// than by a user's agent or asked for every time.
    pub fn secret_is_system_owned(&self, setting: &str, secret: &str) -> bool {
        self.secret_flags(setting, secret) & (SECRET_FLAG_AGENT_OWNED | SECRET_FLAG_NOT_SAVED) == 0
    }

    /// Every secret the profile holds, as `(setting, property)` pairs.
    /// WireGuard peers' preshared keys are nested and handled by [`Self::without_secrets`].
    fn secret_props(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (sname, setting) in &self.settings {
            let Some(spec) = schema::setting(sname) else {
                continue;
            };
            for prop in setting.props.keys() {
                if spec.property(prop).is_some_and(|p| p.secret) {
                    out.push((sname.clone(), prop.clone()));
                }
            }
        }
        out
    }

    /// A copy with every secret removed (what `GetSettings` returns).
    pub fn without_secrets(&self) -> Connection {
        let mut c = self.clone();
        for (s, p) in self.secret_props() {
            if let Some(setting) = c.settings.get_mut(&s) {
                setting.props.remove(&p);
            }
        }
        if let Some(peers) = c.settings.get_mut("wireguard").and_then(|s| s.props.get_mut("peers"))
            && let Some(mut list) = peers.as_dict_list()
        {
            for peer in &mut list {
                peer.remove("preshared-key");
            }
            *peers = Value::dict_list(list);
        }
        c
    }

    /// The secrets of one setting (or all when `setting` is empty), as
    /// `GetSecrets` returns them.
    pub fn secrets(&self, setting: &str) -> BTreeMap<String, BTreeMap<String, Value>> {
        let mut out: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        for (s, p) in self.secret_props() {
            if (setting.is_empty() || setting == s)
                && let Some(v) = self.get(&s, &p)
            {
                out.entry(s.clone()).or_default().insert(p.clone(), v.clone());
            }
        }
        if (setting.is_empty() || setting == "wireguard")
            && let Some(peers) = self.get("wireguard", "peers").and_then(Value::as_dict_list)
        {
            let keyed: Vec<_> = peers
                .into_iter()
                .filter(|p| p.contains_key("preshared-key"))
                .map(|p| p.into_iter().filter(|(k, _)| k == "public-key" || k == "preshared-key").collect())
                .collect();
            if !keyed.is_empty() {
                out.entry("wireguard".into()).or_default().insert("peers".into(), Value::dict_list(keyed));
            }
        }
        out
    }

    /// Keeps what a client could not have sent back in an `Update`: groups
    /// that are not settings (`[.nmmeta]`), and what the schema does not
    /// type — a keyfile's unknown keys reach clients as text, which libnm
    /// drops, and a setting libnm does not know it never sends. Whatever
    /// the update does carry wins.
    pub fn keep_unknown_from(&mut self, old: &Connection) {
        if self.raw_groups.is_empty() {
            self.raw_groups = old.raw_groups.clone();
        }
        for (name, setting) in &old.settings {
            if setting.raw_keyfile_keys.is_empty() {
                continue;
            }
            if !self.settings.contains_key(name) && schema::setting(name).is_some() {
                // A known setting the update left out was taken away.
                continue;
            }
            let new = self.setting_mut(name);
            for key in &setting.raw_keyfile_keys {
                if !new.props.contains_key(key)
                    && let Some(v) = setting.props.get(key)
                {
                    new.props.insert(key.clone(), v.clone());
                    new.raw_keyfile_keys.insert(key.clone());
                }
            }
        }
    }

    /// Copies the secrets of `old` into `self` where `self` lacks them: an
    /// `Update` without secrets keeps the stored ones, as NetworkManager does
    /// (a VPN's secrets come as an empty map from a client that did not ask
    /// for them).
    pub fn keep_secrets_from(&mut self, old: &Connection) {
        for (s, p) in old.secret_props() {
            let lacking = self.get(&s, &p).is_none_or(|v| v.as_str_map().is_some_and(|m| m.is_empty()));
            if self.settings.contains_key(&s)
                && lacking
                && let Some(v) = old.get(&s, &p)
            {
                self.set(&s, &p, v.clone());
            }
        }
    }
}
