//! Secret agents (issue 7): the registry behind
//! `org.freedesktop.NetworkManager.AgentManager` and the `GetSecrets` round
//! through the agents an activation may ask.
//!
//! An agent is a client (nmcli `--ask`, a desktop shell) that registers on
//! the bus and answers `org.freedesktop.NetworkManager.SecretAgent.GetSecrets`
//! at [`AGENT_PATH`] on its unique name. It is known by that unique name,
//! with the uid the bus gives for it; it goes when it unregisters or leaves
//! the bus. Secrets come back into the *applied* connection of an activation
//! only: never into the exported profile, never into a log line (logs name
//! the setting and who answered, nothing else).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use nm_dbus::errors::NmError;
use nm_model::dbus_dict::SettingsDict;
use nm_model::{Connection, schema};
use tokio::sync::{oneshot, watch};
use tracing::{debug, info, warn};
use zbus::{Connection as Bus, OwnedObjectPath};

pub const AGENT_PATH: &str = "/org/freedesktop/NetworkManager/SecretAgent";
pub const AGENT_IFACE: &str = "org.freedesktop.NetworkManager.SecretAgent";
/// How long one agent may take: nmcli `--ask` waits for a person typing.
pub const GET_SECRETS_TIMEOUT: Duration = Duration::from_secs(120);

/// `NMSecretAgentGetSecretsFlags`.
pub mod flags {
    pub const ALLOW_INTERACTION: u32 = 0x1;
    pub const REQUEST_NEW: u32 = 0x2;
    pub const USER_REQUESTED: u32 = 0x4;
}

/// `NMSettingSecretFlags`: not needed at all.
pub const SECRET_FLAG_NOT_REQUIRED: u32 = 0x4;

fn agent_error(nick: &str, message: impl Into<String>) -> NmError {
    NmError::new(&format!("org.freedesktop.NetworkManager.AgentManager.{nick}"), message)
}

/// NetworkManager's rule for an agent's identifier: 3 to 255 characters of
/// ASCII letters, digits, `_`, `-` and `.`, no `.` at either end and no `..`
/// (so never a `/`).
pub fn validate_identifier(id: &str) -> Result<(), String> {
    if !(3..=255).contains(&id.len()) {
        return Err("Identifier length not between 3 and 255 characters (inclusive)".into());
    }
    if id.starts_with('.') || id.ends_with('.') {
        return Err("Identifier must not start or end with '.'".into());
    }
    if let Some(c) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
        return Err(format!("Identifier contains invalid character '{}'", c.escape_default()));
    }
    if id.contains("..") {
        return Err("Identifier contains two '.' characters in sequence".into());
    }
    Ok(())
}

/// One registered agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    /// The unique bus name (`:1.42`) it answers on.
    pub sender: String,
    pub identifier: String,
    pub uid: u32,
    /// The user name of `uid` (for `connection.permissions`).
    pub user: Option<String>,
    pub capabilities: u32,
}

/// The agents an activation of a profile may ask, in the order to ask them:
/// only users `connection.permissions` allows (everyone when it is empty;
/// root always), the requesting user's agents first, then the others in
/// registration order.
pub fn candidates(agents: &[Agent], permissions: &[String], requester: Option<u32>) -> Vec<Agent> {
    let allowed: Vec<&Agent> =
        agents.iter().filter(|a| crate::auth::may_use(permissions, a.uid, a.user.as_deref())).collect();
    let mine = allowed.iter().filter(|a| Some(a.uid) == requester);
    let others = allowed.iter().filter(|a| Some(a.uid) != requester);
    mine.chain(others).map(|a| (*a).clone()).collect()
}

struct Inner {
    agents: Vec<Agent>,
    /// Bumped whenever an agent goes, so a request waiting on it moves on.
    gone: watch::Sender<u64>,
}

/// The registered agents, shared by the AgentManager interface, the name
/// watch and running secret requests.
#[derive(Clone)]
pub struct Registry(Arc<Mutex<Inner>>);

impl Default for Registry {
    fn default() -> Self {
        Registry(Arc::new(Mutex::new(Inner { agents: Vec::new(), gone: watch::channel(0).0 })))
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an agent; a sender registers once (NetworkManager's rule).
    pub fn add(&self, agent: Agent) -> Result<(), NmError> {
        validate_identifier(&agent.identifier).map_err(|m| agent_error("InvalidIdentifier", m))?;
        let mut inner = self.lock();
        if inner.agents.iter().any(|a| a.sender == agent.sender) {
            return Err(agent_error("PermissionDenied", "This agent is already registered."));
        }
        info!(agent = %agent.identifier, sender = %agent.sender, uid = agent.uid, "secret agent registered");
        inner.agents.push(agent);
        Ok(())
    }

    /// Removes the agent of `sender`; whether there was one.
    pub fn remove(&self, sender: &str, why: &str) -> bool {
        let mut inner = self.lock();
        let before = inner.agents.len();
        inner.agents.retain(|a| {
            let keep = a.sender != sender;
            if !keep {
                info!(agent = %a.identifier, sender, "secret agent removed ({why})");
            }
            keep
        });
        let removed = inner.agents.len() != before;
        if removed {
            inner.gone.send_modify(|n| *n += 1);
        }
        removed
    }

    pub fn agents(&self) -> Vec<Agent> {
        self.lock().agents.clone()
    }

    pub fn is_registered(&self, sender: &str) -> bool {
        self.lock().agents.iter().any(|a| a.sender == sender)
    }

    fn gone(&self) -> watch::Receiver<u64> {
        self.lock().gone.subscribe()
    }

    /// `Register`/`RegisterWithCapabilities` of a caller.
    pub async fn register(
        &self,
        bus: &Bus,
        sender: &str,
        identifier: String,
        capabilities: u32,
    ) -> Result<(), NmError> {
        validate_identifier(&identifier).map_err(|m| agent_error("InvalidIdentifier", m))?;
        let dbus = zbus::fdo::DBusProxy::new(bus).await.map_err(NmError::from)?;
        let name = zbus::names::BusName::try_from(sender).map_err(|e| NmError::failed(e.to_string()))?;
        let uid = dbus.get_connection_unix_user(name).await.map_err(|e| NmError::failed(e.to_string()))?;
        let user = crate::auth::user_name(uid).await;
        self.add(Agent { sender: sender.to_string(), identifier, uid, user, capabilities })
    }

    /// `Unregister` of a caller.
    pub fn unregister(&self, sender: &str) -> Result<(), NmError> {
        if self.remove(sender, "unregistered") {
            Ok(())
        } else {
            Err(agent_error("NotRegistered", "Caller is not registered"))
        }
    }
}

/// Drops agents whose unique name leaves the bus.
pub fn spawn_name_watch(bus: Bus, registry: Registry) {
    tokio::spawn(async move {
        let result = async {
            let dbus = zbus::fdo::DBusProxy::new(&bus).await?;
            let mut changes = dbus.receive_name_owner_changed().await?;
            while let Some(signal) = changes.next().await {
                let Ok(args) = signal.args() else { continue };
                if args.name().starts_with(':') && args.new_owner().is_none() {
                    registry.remove(args.name(), "left the bus");
                }
            }
            Ok::<(), zbus::Error>(())
        };
        if let Err(e) = result.await {
            warn!("following agents on the bus stopped: {e}");
        }
    });
}

// ------------------------------------------------------------ secrets ---

/// Where a missing secret may come from, by its `*-flags`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Flags 0: the settings service that stores the profile.
    Service,
    /// AGENT_OWNED or NOT_SAVED: a user's agent.
    Agents,
    /// NOT_REQUIRED: nobody; the activation goes without it.
    NotNeeded,
}

pub fn source(flags: u32) -> Source {
    if flags & SECRET_FLAG_NOT_REQUIRED != 0 {
        Source::NotNeeded
    } else if flags & (schema::SECRET_FLAG_AGENT_OWNED | schema::SECRET_FLAG_NOT_SAVED) != 0 {
        Source::Agents
    } else {
        Source::Service
    }
}

/// Copies into `conn` the secret properties of `setting` found in `answer`
/// (anything else an agent or service returns is ignored); returns their
/// names, for the log.
pub fn merge_secrets(conn: &mut Connection, setting: &str, answer: &SettingsDict) -> Vec<String> {
    let Some(spec) = schema::setting(setting) else { return Vec::new() };
    let Some(props) = answer.get(setting) else { return Vec::new() };
    let mut merged = Vec::new();
    for (name, value) in props {
        if spec.property(name).is_some_and(|p| p.secret) {
            conn.set(setting, name, value.clone());
            merged.push(name.clone());
        }
    }
    merged
}

/// Removes the secrets of `setting` from `conn` (before asking for new ones).
pub fn forget_secrets(conn: &mut Connection, setting: &str) {
    let Some(spec) = schema::setting(setting) else { return };
    if let Some(s) = conn.settings.get_mut(setting) {
        let secret: Vec<String> =
            s.props.keys().filter(|k| spec.property(k).is_some_and(|p| p.secret)).cloned().collect();
        for k in secret {
            s.props.remove(&k);
        }
    }
}

/// One request to the agents.
pub struct Request {
    /// The profile, without secrets (agents see what `GetSettings` shows).
    pub connection: SettingsDict,
    /// The profile's exported path: nmcli matches requests by it.
    pub path: OwnedObjectPath,
    pub setting: String,
    pub hints: Vec<String>,
    pub flags: u32,
    /// `connection.permissions` of the profile.
    pub permissions: Vec<String>,
    pub requester: Option<u32>,
}

/// What the agents answered: the first agent that gave secrets (its
/// identifier) and the secrets of the setting asked for.
pub type Answer = Option<(String, SettingsDict)>;

/// Asks the allowed agents one after another until one answers with
/// secrets. An agent that fails, times out or leaves is skipped; an agent
/// registering meanwhile is asked too. When `cancel` fires (or its sender
/// is dropped: the activation went away), the agent being asked gets
/// `CancelGetSecrets` and nothing is returned.
pub async fn ask(bus: Bus, registry: Registry, req: Request, mut cancel: oneshot::Receiver<()>) -> Answer {
    let wire = match nm_dbus::settings_to_wire(&req.connection) {
        Ok(w) => w,
        Err(e) => {
            warn!("secrets for {}: cannot send the profile to agents: {e}", req.setting);
            return None;
        }
    };
    let mut asked: Vec<String> = Vec::new();
    let mut gone = registry.gone();
    loop {
        let next = candidates(&registry.agents(), &req.permissions, req.requester)
            .into_iter()
            .find(|a| !asked.contains(&a.sender));
        let Some(agent) = next else {
            info!(setting = %req.setting, asked = asked.len(), "no secret agent gave secrets");
            return None;
        };
        asked.push(agent.sender.clone());
        debug!(agent = %agent.identifier, setting = %req.setting, flags = req.flags, "asking a secret agent");
        let body = (&wire, &req.path, req.setting.as_str(), &req.hints, req.flags);
        let call = bus.call_method(Some(agent.sender.as_str()), AGENT_PATH, Some(AGENT_IFACE), "GetSecrets", &body);
        let still_there = async {
            loop {
                if gone.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                if !registry.is_registered(&agent.sender) {
                    return;
                }
            }
        };
        tokio::select! {
            reply = tokio::time::timeout(GET_SECRETS_TIMEOUT, call) => match reply {
                Ok(Ok(msg)) => match msg.body().deserialize::<nm_dbus::WireSettings>() {
                    Ok(w) => match nm_dbus::settings_from_wire(&w) {
                        Ok(dict) if dict.get(&req.setting).is_some_and(|s| !s.is_empty()) => {
                            info!(agent = %agent.identifier, setting = %req.setting, "secrets from a secret agent");
                            return Some((agent.identifier, dict));
                        }
                        Ok(_) => info!(agent = %agent.identifier, setting = %req.setting, "secret agent answered without secrets"),
                        Err(e) => warn!(agent = %agent.identifier, "malformed secrets: {e}"),
                    },
                    Err(e) => warn!(agent = %agent.identifier, "malformed GetSecrets reply: {e}"),
                },
                Ok(Err(e)) => {
                    let canceled = matches!(&e, zbus::Error::MethodError(name, _, _) if name.as_str().ends_with("UserCanceled"));
                    info!(agent = %agent.identifier, setting = %req.setting, "secret agent refused: {}", short_error(&e));
                    if canceled {
                        return None;
                    }
                }
                Err(_) => {
                    warn!(agent = %agent.identifier, setting = %req.setting, "secret agent did not answer in time");
                    cancel_on(&bus, &agent.sender, &req.path, &req.setting).await;
                }
            },
            () = still_there => info!(agent = %agent.identifier, "secret agent went away while asked"),
            _ = &mut cancel => {
                cancel_on(&bus, &agent.sender, &req.path, &req.setting).await;
                return None;
            }
        }
    }
}

/// An error's name and message, without anything else zbus adds.
fn short_error(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(name, msg, _) => format!("{name}: {}", msg.as_deref().unwrap_or("")),
        e => e.to_string(),
    }
}

async fn cancel_on(bus: &Bus, sender: &str, path: &OwnedObjectPath, setting: &str) {
    let body = (path, setting);
    let call = bus.call_method(Some(sender), AGENT_PATH, Some(AGENT_IFACE), "CancelGetSecrets", &body);
    if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(5), call).await {
        debug!("CancelGetSecrets on {sender}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nm_model::Value;

    fn agent(sender: &str, uid: u32, user: &str) -> Agent {
        Agent {
            sender: sender.into(),
            identifier: format!("agent.{uid}"),
            uid,
            user: Some(user.into()),
            capabilities: 0,
        }
    }

    #[test]
    fn identifiers_as_networkmanager_checks_them() {
        assert!(validate_identifier("nmcli-connect").is_ok());
        assert!(validate_identifier("org.gnome.Shell.NetworkAgent").is_ok());
        assert!(validate_identifier("").is_err());
        assert!(validate_identifier("ab").is_err());
        assert!(validate_identifier(&"a".repeat(256)).is_err());
        assert!(validate_identifier(&"a".repeat(255)).is_ok());
        assert!(validate_identifier("a/b/c").unwrap_err().contains("'/'"));
        assert!(validate_identifier(".abc").is_err());
        assert!(validate_identifier("abc.").is_err());
        assert!(validate_identifier("a..bc").is_err());
        assert!(validate_identifier("agent with space").is_err());
        assert!(validate_identifier("agënt").is_err());
    }

    #[test]
    fn registry_once_per_sender_and_removal_by_name() {
        let r = Registry::default();
        r.add(agent(":1.5", 1000, "alice")).unwrap();
        let again = r.add(agent(":1.5", 1000, "alice")).unwrap_err();
        assert!(again.name.ends_with("AgentManager.PermissionDenied"), "{again:?}");
        let bad = r.add(Agent { identifier: "x/y".into(), ..agent(":1.6", 0, "root") }).unwrap_err();
        assert!(bad.name.ends_with("InvalidIdentifier"));
        r.add(agent(":1.7", 0, "root")).unwrap();
        let gone = r.gone();
        assert!(r.remove(":1.5", "left the bus"));
        assert!(gone.has_changed().unwrap());
        assert!(!r.remove(":1.5", "again"));
        assert_eq!(r.agents().len(), 1);
        assert!(r.unregister(":1.99").unwrap_err().name.ends_with("NotRegistered"));
        r.unregister(":1.7").unwrap();
        assert!(r.agents().is_empty());
    }

    #[test]
    fn candidates_follow_permissions_and_put_the_requester_first() {
        let agents = vec![agent(":1.1", 1000, "alice"), agent(":1.2", 0, "root"), agent(":1.3", 1001, "bob")];
        let all = candidates(&agents, &[], None);
        assert_eq!(all.iter().map(|a| a.sender.as_str()).collect::<Vec<_>>(), [":1.1", ":1.2", ":1.3"]);
        let bob_first = candidates(&agents, &[], Some(1001));
        assert_eq!(bob_first[0].sender, ":1.3");
        let alice_only = candidates(&agents, &["user:alice:".to_string()], Some(1001));
        assert_eq!(alice_only.iter().map(|a| a.sender.as_str()).collect::<Vec<_>>(), [":1.1", ":1.2"]);
    }

    #[test]
    fn where_secrets_come_from() {
        assert_eq!(source(0), Source::Service);
        assert_eq!(source(1), Source::Agents);
        assert_eq!(source(2), Source::Agents);
        assert_eq!(source(4), Source::NotNeeded);
        assert_eq!(source(5), Source::NotNeeded);
    }

    #[test]
    fn only_secret_properties_are_merged_and_forgotten() {
        let mut conn = Connection::default();
        conn.set("802-1x", "identity", Value::Str("alice".into()));
        let mut answer = SettingsDict::new();
        let s = answer.entry("802-1x".into()).or_default();
        s.insert("password".into(), Value::Str("pw".into()));
        s.insert("identity".into(), Value::Str("mallory".into()));
        answer.entry("ipv4".into()).or_default().insert("method".into(), Value::Str("disabled".into()));
        assert_eq!(merge_secrets(&mut conn, "802-1x", &answer), ["password"]);
        assert_eq!(conn.get_str("802-1x", "identity"), Some("alice"));
        assert_eq!(conn.get_str("802-1x", "password"), Some("pw"));
        assert!(conn.setting("ipv4").is_none());
        forget_secrets(&mut conn, "802-1x");
        assert_eq!(conn.get_str("802-1x", "password"), None);
        assert_eq!(conn.get_str("802-1x", "identity"), Some("alice"));
    }
}
