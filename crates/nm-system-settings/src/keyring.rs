//! A user's secrets in the user's keyring, through the Secret Service API
//! (`org.freedesktop.secrets` on the user's session bus), when one runs.
//!
//! Only a user's service uses it, and only for saved profiles: secrets the
//! service owns (flags neither agent-owned nor not-saved) go to the keyring
//! and their file is written without them. Items look like the ones
//! NetworkManager's libsecret agents (nm-applet, GNOME Shell) write with
//! schema `org.freedesktop.NetworkManager.Connection`: attributes
//! `xdg:schema`, `connection-uuid`, `setting-name`, `setting-key`, label
//! `Network secret for <id>/<setting>/<key>`, in the default collection.
//! No attribute of our own is added: `CreateItem` replaces an item whose
//! attributes are exactly these, so an agent and this service share one
//! item per secret instead of leaving two.
//!
//! The session uses the `plain` algorithm: the secret crosses the user's own
//! session bus, a socket only the user (and root) can connect to, between
//! two processes of the user; an encrypted session would protect against
//! nobody who could not already read both processes' memory.
//!
//! The decisions (where a secret goes, what a keyring item adds to a
//! profile, which items an update leaves stale) are pure functions; the
//! D-Bus part is a thin client that connects for each operation (they are
//! rare: a user's edit, an activation) so a keyring that starts or stops
//! later is seen without any watching.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use nm_model::schema::{self, SECRET_FLAG_AGENT_OWNED, SECRET_FLAG_NOT_SAVED};
use nm_model::{Connection, Value};
use zbus::proxy::CacheProperties;
use zbus::{Connection as Bus, proxy};
use zbus::{ObjectPath, OwnedObjectPath, OwnedVariant as OwnedValue, Variant};

use crate::store::DirKind;

/// The Secret Service's bus name.
pub const SECRETS_NAME: &str = "org.freedesktop.secrets";
/// The libsecret schema NetworkManager's agents store secrets under.
pub const SCHEMA: &str = "org.freedesktop.NetworkManager.Connection";
pub const ATTR_SCHEMA: &str = "xdg:schema";
pub const ATTR_UUID: &str = "connection-uuid";
pub const ATTR_SETTING: &str = "setting-name";
pub const ATTR_KEY: &str = "setting-key";
const DEFAULT_ALIAS: &str = "default";
const NO_PROMPT: &str = "/";

/// Where a secret of a profile is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretHome {
    /// In the user's keyring (when one runs; else in the file).
    Keyring,
    /// In the profile file (0600).
    File,
    /// Nowhere: an agent owns it, or it is asked for every time.
    Nowhere,
}

/// Where a secret with these flags goes, in a profile of this folder.
/// Unsaved profiles (the runtime folder) keep theirs in their file: an
/// unsaved profile must not leave anything behind in a keyring that
/// outlives the session.
pub fn secret_home(flags: u32, dir: DirKind) -> SecretHome {
    if flags & (SECRET_FLAG_AGENT_OWNED | SECRET_FLAG_NOT_SAVED) != 0 {
        SecretHome::Nowhere
    } else if dir == DirKind::Saved {
        SecretHome::Keyring
    } else {
        SecretHome::File
    }
}

/// One secret as a keyring item holds it. Its `Debug` hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    pub setting: String,
    pub key: String,
    pub value: String,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Entry({}.{}, <hidden>)", self.setting, self.key)
    }
}

/// The attributes of the item of one secret (as libsecret writes them).
pub fn attributes(uuid: &str, setting: &str, key: &str) -> HashMap<String, String> {
    HashMap::from([
        (ATTR_SCHEMA.to_string(), SCHEMA.to_string()),
        (ATTR_UUID.to_string(), uuid.to_string()),
        (ATTR_SETTING.to_string(), setting.to_string()),
        (ATTR_KEY.to_string(), key.to_string()),
    ])
}

/// The label nm-applet gives such an item.
pub fn label(id: &str, setting: &str, key: &str) -> String {
    format!("Network secret for {id}/{setting}/{key}")
}

/// Whether a setting's property is a text secret (the only kind a keyring
/// item holds; byte secrets and WireGuard peers' keys stay in the file).
fn text_secret(setting: &str, key: &str) -> bool {
    schema::setting(setting).and_then(|s| s.property(key)).is_some_and(|p| p.secret && p.kind == schema::Kind::Str)
}

/// Splits a profile of folder `dir` into what its file keeps and the
/// secrets that go to the keyring.
pub fn split(conn: &Connection, dir: DirKind) -> (Connection, Vec<Entry>) {
    let mut file = conn.clone();
    let mut entries = Vec::new();
    for (setting, props) in conn.secrets("") {
        for (key, value) in props {
            let Value::Str(text) = value else { continue };
            if !text_secret(&setting, &key)
                || secret_home(conn.secret_flags(&setting, &key), dir) != SecretHome::Keyring
            {
                continue;
            }
            if let Some(s) = file.settings.get_mut(&setting) {
                s.props.remove(&key);
            }
            entries.push(Entry { setting: setting.clone(), key, value: text });
        }
    }
    (file, entries)
}

/// Adds the keyring's secrets to a profile read from its file: only secrets
/// of settings the profile has, that the profile says the service owns
/// (an agent-owned item is the agent's), and that the file lacks (a secret
/// is in the file only when the last write could not reach the keyring, so
/// the file's copy is the newer one).
pub fn merge(conn: &mut Connection, entries: &[Entry]) {
    for e in entries {
        if conn.settings.contains_key(&e.setting)
            && text_secret(&e.setting, &e.key)
            && conn.secret_is_system_owned(&e.setting, &e.key)
            && conn.get(&e.setting, &e.key).is_none()
        {
            conn.set(&e.setting, &e.key, Value::Str(e.value.clone()));
        }
    }
}

/// Which of a profile's keyring items (setting, key) an update leaves
/// stale: those not stored again, unless the new profile says an agent owns
/// the secret (the item is then the agent's, under the same attributes).
pub fn stale(found: &[(String, String)], stored: &[Entry], new: &Connection) -> Vec<(String, String)> {
    let kept: BTreeSet<(&str, &str)> = stored.iter().map(|e| (e.setting.as_str(), e.key.as_str())).collect();
    found
        .iter()
        .filter(|(s, k)| !kept.contains(&(s.as_str(), k.as_str())))
        .filter(|(s, k)| new.secret_flags(s, k) & SECRET_FLAG_AGENT_OWNED == 0)
        .cloned()
        .collect()
}

/// Why the keyring was not used.
#[derive(Debug)]
pub enum Unavailable {
    /// No session bus, or nobody owns `org.freedesktop.secrets` on it.
    Absent(String),
    /// The default collection is locked and unlocking it needs a prompt.
    Locked,
    /// A call failed (the message never holds a secret).
    Failed(String),
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::Absent(why) => write!(f, "no Secret Service: {why}"),
            Unavailable::Locked => {
                f.write_str("the keyring's default collection is locked and unlocking it needs a prompt")
            }
            Unavailable::Failed(why) => write!(f, "the Secret Service failed: {why}"),
        }
    }
}

fn failed(what: &str) -> impl FnOnce(zbus::Error) -> Unavailable + '_ {
    move |e| Unavailable::Failed(format!("{what}: {e}"))
}

#[proxy(
    interface = "org.freedesktop.Secret.Service",
    default_service = "org.freedesktop.secrets",
    default_path = "/org/freedesktop/secrets"
)]
trait Service {
    fn open_session(&self, algorithm: &str, input: &Variant<'_>) -> zbus::Result<(OwnedValue, OwnedObjectPath)>;
    fn search_items(
        &self,
        attributes: HashMap<String, String>,
    ) -> zbus::Result<(Vec<OwnedObjectPath>, Vec<OwnedObjectPath>)>;
    fn unlock(&self, objects: &[ObjectPath<'_>]) -> zbus::Result<(Vec<OwnedObjectPath>, OwnedObjectPath)>;
    fn read_alias(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
}

/// `(session, parameters, value, content type)`.
type Secret = (OwnedObjectPath, Vec<u8>, Vec<u8>, String);

#[proxy(interface = "org.freedesktop.Secret.Collection", default_service = "org.freedesktop.secrets")]
trait Collection {
    fn create_item(
        &self,
        properties: HashMap<&str, Variant<'_>>,
        secret: &Secret,
        replace: bool,
    ) -> zbus::Result<(OwnedObjectPath, OwnedObjectPath)>;
    #[zbus(property)]
    fn locked(&self) -> zbus::Result<bool>;
}

#[proxy(interface = "org.freedesktop.Secret.Item", default_service = "org.freedesktop.secrets")]
trait Item {
    fn get_secret(&self, session: &ObjectPath<'_>) -> zbus::Result<Secret>;
    fn delete(&self) -> zbus::Result<OwnedObjectPath>;
    #[zbus(property)]
    fn attributes(&self) -> zbus::Result<HashMap<String, String>>;
}

#[proxy(interface = "org.freedesktop.Secret.Session", default_service = "org.freedesktop.secrets")]
trait Session {
    fn close(&self) -> zbus::Result<()>;
}

/// The user's keyring, reached on the session bus at `address`.
#[derive(Debug, Default)]
pub struct Keyring {
    address: Option<String>,
}

/// One operation's connection and plain session.
struct Client {
    bus: Bus,
    service: ServiceProxy<'static>,
    session: OwnedObjectPath,
}

impl Keyring {
    pub fn new(address: Option<String>) -> Keyring {
        Keyring { address }
    }

    async fn client(&self) -> Result<Client, Unavailable> {
        let address = self.address.as_deref().ok_or_else(|| Unavailable::Absent("no session bus".into()))?;
        let bus = zbus::connection::Builder::address(address)
            .method_timeout(std::time::Duration::from_secs(10))
            .build()
            .await
            .map_err(|e| Unavailable::Absent(format!("cannot connect to the session bus: {e}")))?;
        let dbus = zbus::fdo::DBusProxy::new(&bus).await.map_err(|e| Unavailable::Failed(e.to_string()))?;
        let name = zbus::names::BusName::try_from(SECRETS_NAME).map_err(|e| Unavailable::Failed(e.to_string()))?;
        if !dbus.name_has_owner(name).await.map_err(|e| Unavailable::Failed(e.to_string()))? {
            return Err(Unavailable::Absent(format!("{SECRETS_NAME} is not on the session bus")));
        }
        let service = ServiceProxy::new(&bus).await.map_err(failed("Service"))?;
        let (_, session) = service.open_session("plain", &Variant::from("")).await.map_err(failed("OpenSession"))?;
        Ok(Client { bus, service, session })
    }

    /// Stores the secrets of profile `uuid` (`id`), replacing its items of
    /// the same setting and key. On `Err` nothing may be assumed stored.
    pub async fn store(&self, uuid: &str, id: &str, entries: &[Entry]) -> Result<(), Unavailable> {
        let client = self.client().await?;
        let result = client.store(uuid, id, entries).await;
        client.close().await;
        result
    }

    /// The secrets of profile `uuid` (of one setting, or all when empty),
    /// from the items that are unlocked or can be unlocked without a prompt.
    pub async fn load(&self, uuid: &str, setting: &str) -> Result<Vec<Entry>, Unavailable> {
        let client = self.client().await?;
        let result = client.load(uuid, setting).await;
        client.close().await;
        result
    }

    /// Deletes the items of profile `uuid` that `doomed` names (setting,
    /// key), or all of them when `doomed` is `None`. Returns how many went.
    pub async fn delete(&self, uuid: &str, doomed: Option<&[(String, String)]>) -> Result<usize, Unavailable> {
        let client = self.client().await?;
        let result = client.delete(uuid, doomed).await;
        client.close().await;
        result
    }

    /// Every item of profile `uuid` as (setting, key), without reading secrets.
    pub async fn items(&self, uuid: &str) -> Result<Vec<(String, String)>, Unavailable> {
        let client = self.client().await?;
        let result = client.items(uuid).await.map(|v| v.into_iter().map(|(_, s, k)| (s, k)).collect());
        client.close().await;
        result
    }
}

impl Client {
    async fn close(self) {
        if let Ok(p) = SessionProxy::builder(&self.bus).path(self.session.clone()).build().await {
            let _ = p.close().await;
        }
    }

    async fn item(&self, path: &OwnedObjectPath) -> Result<ItemProxy<'static>, Unavailable> {
        ItemProxy::builder(&self.bus)
            .path(path.clone())
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(failed("Item"))
    }

    /// The default collection, unlocked if that needs no prompt.
    async fn collection(&self) -> Result<CollectionProxy<'static>, Unavailable> {
        let path = self.service.read_alias(DEFAULT_ALIAS).await.map_err(failed("ReadAlias"))?;
        if path.as_str() == NO_PROMPT {
            return Err(Unavailable::Failed("the keyring has no default collection".into()));
        }
        let collection = CollectionProxy::builder(&self.bus)
            .path(path.clone())
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(failed("Collection"))?;
        if collection.locked().await.map_err(failed("Locked"))? {
            let (unlocked, _prompt) = self.service.unlock(&[path.as_ref()]).await.map_err(failed("Unlock"))?;
            if !unlocked.contains(&path) {
                // Unlocking needs the user at a prompt; a service does not pop one up.
                return Err(Unavailable::Locked);
            }
        }
        Ok(collection)
    }

    async fn store(&self, uuid: &str, id: &str, entries: &[Entry]) -> Result<(), Unavailable> {
        let collection = self.collection().await?;
        for e in entries {
            let properties = HashMap::from([
                ("org.freedesktop.Secret.Item.Label", Variant::from(label(id, &e.setting, &e.key))),
                ("org.freedesktop.Secret.Item.Attributes", Variant::from(attributes(uuid, &e.setting, &e.key))),
            ]);
            let secret: Secret =
                (self.session.clone(), Vec::new(), e.value.as_bytes().to_vec(), "text/plain".to_string());
            let (_, prompt) = collection.create_item(properties, &secret, true).await.map_err(failed("CreateItem"))?;
            if prompt.as_str() != NO_PROMPT {
                return Err(Unavailable::Locked);
            }
        }
        Ok(())
    }

    /// The profile's items (unlocking locked ones when no prompt is needed)
    /// with their setting and key.
    async fn items(&self, uuid: &str) -> Result<Vec<(OwnedObjectPath, String, String)>, Unavailable> {
        let query = HashMap::from([(ATTR_UUID.to_string(), uuid.to_string())]);
        let (mut unlocked, locked) = self.service.search_items(query).await.map_err(failed("SearchItems"))?;
        if !locked.is_empty() {
            let paths: Vec<ObjectPath<'_>> = locked.iter().map(|p| p.as_ref()).collect();
            if let Ok((now, _prompt)) = self.service.unlock(&paths).await {
                unlocked.extend(now);
            }
        }
        let mut out = Vec::new();
        for path in unlocked {
            let attrs = self.item(&path).await?.attributes().await.map_err(failed("Attributes"))?;
            // Items of the NetworkManager schema only (or written without a
            // schema by an older agent): same uuid, setting and key.
            if attrs.get(ATTR_SCHEMA).is_some_and(|s| s != SCHEMA) {
                continue;
            }
            if let (Some(s), Some(k)) = (attrs.get(ATTR_SETTING), attrs.get(ATTR_KEY)) {
                out.push((path, s.clone(), k.clone()));
            }
        }
        Ok(out)
    }

    async fn load(&self, uuid: &str, setting: &str) -> Result<Vec<Entry>, Unavailable> {
        let mut entries = Vec::new();
        for (path, s, key) in self.items(uuid).await? {
            if !setting.is_empty() && s != setting {
                continue;
            }
            let (_, _, value, _) =
                self.item(&path).await?.get_secret(&self.session.as_ref()).await.map_err(failed("GetSecret"))?;
            match String::from_utf8(value) {
                Ok(value) => entries.push(Entry { setting: s, key, value }),
                Err(_) => tracing::warn!(uuid, setting = %s, key = %key, "a keyring item is not UTF-8 text; ignored"),
            }
        }
        Ok(entries)
    }

    async fn delete(&self, uuid: &str, doomed: Option<&[(String, String)]>) -> Result<usize, Unavailable> {
        let mut n = 0;
        for (path, s, k) in self.items(uuid).await? {
            if doomed.is_some_and(|d| !d.iter().any(|(ds, dk)| *ds == s && *dk == k)) {
                continue;
            }
            let prompt = self.item(&path).await?.delete().await.map_err(failed("Delete"))?;
            if prompt.as_str() != NO_PROMPT {
                return Err(Unavailable::Locked);
            }
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wifi(psk_flags: Option<u32>) -> Connection {
        let mut c = Connection::default();
        c.set("connection", "id", Value::Str("cafe".into()));
        c.set("connection", "uuid", Value::Str("u1".into()));
        c.set("connection", "type", Value::Str("802-11-wireless".into()));
        c.set("802-11-wireless-security", "key-mgmt", Value::Str("wpa-psk".into()));
        c.set("802-11-wireless-security", "psk", Value::Str("s3cret-psk".into()));
        if let Some(f) = psk_flags {
            c.set("802-11-wireless-security", "psk-flags", Value::UInt32(f));
        }
        c
    }

    fn entry(setting: &str, key: &str, value: &str) -> Entry {
        Entry { setting: setting.into(), key: key.into(), value: value.into() }
    }

    #[test]
    fn where_a_secret_goes() {
        assert_eq!(secret_home(0, DirKind::Saved), SecretHome::Keyring);
        assert_eq!(secret_home(0x4, DirKind::Saved), SecretHome::Keyring, "not-required is still ours");
        assert_eq!(secret_home(0, DirKind::Runtime), SecretHome::File, "unsaved profiles leave nothing behind");
        assert_eq!(secret_home(SECRET_FLAG_AGENT_OWNED, DirKind::Saved), SecretHome::Nowhere);
        assert_eq!(secret_home(SECRET_FLAG_NOT_SAVED, DirKind::Runtime), SecretHome::Nowhere);
    }

    #[test]
    fn split_takes_the_services_text_secrets_out_of_the_file() {
        let (file, entries) = split(&wifi(None), DirKind::Saved);
        assert_eq!(entries, vec![entry("802-11-wireless-security", "psk", "s3cret-psk")]);
        assert!(file.get("802-11-wireless-security", "psk").is_none());
        assert_eq!(file.get_str("802-11-wireless-security", "key-mgmt"), Some("wpa-psk"));
        // An unsaved profile keeps its secret; an agent-owned one is not ours.
        let (file, entries) = split(&wifi(None), DirKind::Runtime);
        assert!(entries.is_empty() && file.get("802-11-wireless-security", "psk").is_some());
        let (_, entries) = split(&wifi(Some(SECRET_FLAG_AGENT_OWNED)), DirKind::Saved);
        assert!(entries.is_empty());
        // Byte secrets stay in the file.
        let mut c = wifi(None);
        c.set("802-1x", "password-raw", Value::Bytes(vec![1, 2]));
        let (file, entries) = split(&c, DirKind::Saved);
        assert_eq!(entries.len(), 1);
        assert!(file.get("802-1x", "password-raw").is_some());
    }

    #[test]
    fn merge_fills_what_the_file_lacks_for_the_services_own_secrets() {
        let (mut file, _) = split(&wifi(None), DirKind::Saved);
        let items = vec![
            entry("802-11-wireless-security", "psk", "from-keyring"),
            entry("802-1x", "password", "no such setting in the profile"),
            entry("802-11-wireless-security", "key-mgmt", "not a secret"),
        ];
        merge(&mut file, &items);
        assert_eq!(file.get_str("802-11-wireless-security", "psk"), Some("from-keyring"));
        assert!(file.setting("802-1x").is_none());
        assert_eq!(file.get_str("802-11-wireless-security", "key-mgmt"), Some("wpa-psk"));
        // The file's copy wins: it is written only when the keyring was away.
        let mut c = wifi(None);
        merge(&mut c, &items);
        assert_eq!(c.get_str("802-11-wireless-security", "psk"), Some("s3cret-psk"));
        // An agent-owned secret's item is the agent's business.
        let (mut c, _) = split(&wifi(Some(SECRET_FLAG_AGENT_OWNED)), DirKind::Runtime);
        c.settings.get_mut("802-11-wireless-security").unwrap().props.remove("psk");
        merge(&mut c, &items);
        assert!(c.get("802-11-wireless-security", "psk").is_none());
    }

    #[test]
    fn stale_items_are_the_ones_not_stored_again_unless_an_agent_took_them() {
        let found = vec![
            ("802-11-wireless-security".to_string(), "psk".to_string()),
            ("802-1x".to_string(), "password".to_string()),
        ];
        let stored = vec![entry("802-11-wireless-security", "psk", "x")];
        assert_eq!(stale(&found, &stored, &wifi(None)), vec![found[1].clone()]);
        let mut agent = wifi(None);
        agent.set("802-1x", "password-flags", Value::UInt32(SECRET_FLAG_AGENT_OWNED));
        assert!(stale(&found, &stored, &agent).is_empty());
        let mut not_saved = wifi(None);
        not_saved.set("802-1x", "password-flags", Value::UInt32(SECRET_FLAG_NOT_SAVED));
        assert_eq!(stale(&found, &stored, &not_saved).len(), 1);
    }

    #[test]
    fn items_look_like_network_managers() {
        let a = attributes("u1", "802-11-wireless-security", "psk");
        assert_eq!(a.len(), 4);
        assert_eq!(a["xdg:schema"], "org.freedesktop.NetworkManager.Connection");
        assert_eq!(a["connection-uuid"], "u1");
        assert_eq!(a["setting-name"], "802-11-wireless-security");
        assert_eq!(a["setting-key"], "psk");
        assert_eq!(
            label("cafe", "802-11-wireless-security", "psk"),
            "Network secret for cafe/802-11-wireless-security/psk"
        );
        assert!(!format!("{:?}", entry("s", "k", "v4lue")).contains("v4lue"), "Debug hides the secret");
    }
}
