//! Who may change what (issue 7), as NetworkManager decides it:
//!
//! - root (uid 0) may do everything;
//! - anyone else is asked of polkit (`CheckAuthorization` with the caller's
//!   bus name as subject) for one of NetworkManager's actions; a challenge
//!   the caller could not answer and a "no" both refuse;
//! - without polkit on the bus (or with `[core] auth-polkit = false`), a
//!   non-root caller is allowed only when it is in `[core] auth-group`
//!   (by NSS: its primary group or a supplementary one from `getgrouplist`);
//! - `connection.permissions` (`user:NAME:`) limits a profile to the users
//!   it names (and root): others may neither use, read nor change it.
//!
//! Answers are not cached (NetworkManager does not cache either): every
//! call asks polkit again, so a changed rule counts at once.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::StreamExt;
use nm_dbus::errors::NmError;
use nm_model::Connection;
use nm_model::dbus_dict::SettingsDict;
use nm_model::value::Value;
use zbus::message::{Flags, Header};
use zbus::object_server::SignalEmitter;
use zbus::{Connection as Bus, MatchRule, MessageStream, Variant};

use crate::users;

pub const POLKIT: &str = "org.freedesktop.PolicyKit1";
const AUTHORITY_PATH: &str = "/org/freedesktop/PolicyKit1/Authority";
const AUTHORITY_IFACE: &str = "org.freedesktop.PolicyKit1.Authority";
/// polkit's `CheckAuthorizationFlags`: the caller may be asked (an agent).
const ALLOW_USER_INTERACTION: u32 = 1;
/// How long polkit may take: a non-interactive answer is immediate; an
/// interactive one waits for a person typing a password.
const POLKIT_TIMEOUT: Duration = Duration::from_secs(25);
const POLKIT_INTERACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

/// NetworkManager's polkit actions (`org.freedesktop.NetworkManager.<x>`),
/// in the order `GetPermissions` lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    EnableDisableNetwork,
    EnableDisableWifi,
    EnableDisableWwan,
    EnableDisableWimax,
    SleepWake,
    NetworkControl,
    WifiShareProtected,
    WifiShareOpen,
    SettingsModifySystem,
    SettingsModifyOwn,
    SettingsModifyHostname,
    SettingsModifyGlobalDns,
    Reload,
    CheckpointRollback,
    EnableDisableStatistics,
    EnableDisableConnectivityCheck,
    WifiScan,
}

impl Action {
    pub const ALL: [Action; 17] = [
        Action::EnableDisableNetwork,
        Action::EnableDisableWifi,
        Action::EnableDisableWwan,
        Action::EnableDisableWimax,
        Action::SleepWake,
        Action::NetworkControl,
        Action::WifiShareProtected,
        Action::WifiShareOpen,
        Action::SettingsModifySystem,
        Action::SettingsModifyOwn,
        Action::SettingsModifyHostname,
        Action::SettingsModifyGlobalDns,
        Action::Reload,
        Action::CheckpointRollback,
        Action::EnableDisableStatistics,
        Action::EnableDisableConnectivityCheck,
        Action::WifiScan,
    ];

    /// The polkit action id.
    pub fn id(self) -> &'static str {
        match self {
            Action::EnableDisableNetwork => "org.freedesktop.NetworkManager.enable-disable-network",
            Action::EnableDisableWifi => "org.freedesktop.NetworkManager.enable-disable-wifi",
            Action::EnableDisableWwan => "org.freedesktop.NetworkManager.enable-disable-wwan",
            Action::EnableDisableWimax => "org.freedesktop.NetworkManager.enable-disable-wimax",
            Action::SleepWake => "org.freedesktop.NetworkManager.sleep-wake",
            Action::NetworkControl => "org.freedesktop.NetworkManager.network-control",
            Action::WifiShareProtected => "org.freedesktop.NetworkManager.wifi.share.protected",
            Action::WifiShareOpen => "org.freedesktop.NetworkManager.wifi.share.open",
            Action::SettingsModifySystem => "org.freedesktop.NetworkManager.settings.modify.system",
            Action::SettingsModifyOwn => "org.freedesktop.NetworkManager.settings.modify.own",
            Action::SettingsModifyHostname => "org.freedesktop.NetworkManager.settings.modify.hostname",
            Action::SettingsModifyGlobalDns => "org.freedesktop.NetworkManager.settings.modify.global-dns",
            Action::Reload => "org.freedesktop.NetworkManager.reload",
            Action::CheckpointRollback => "org.freedesktop.NetworkManager.checkpoint-rollback",
            Action::EnableDisableStatistics => "org.freedesktop.NetworkManager.enable-disable-statistics",
            Action::EnableDisableConnectivityCheck => {
                "org.freedesktop.NetworkManager.enable-disable-connectivity-check"
            }
            Action::WifiScan => "org.freedesktop.NetworkManager.wifi.scan",
        }
    }

    /// What the action lets one do, for "Not authorized to …".
    fn what(self) -> &'static str {
        match self {
            Action::EnableDisableNetwork => "enable/disable networking",
            Action::EnableDisableWifi => "enable/disable Wi-Fi",
            Action::EnableDisableWwan => "enable/disable mobile broadband",
            Action::EnableDisableWimax => "enable/disable WiMAX",
            Action::SleepWake => "put NetworkManager to sleep or wake it up",
            Action::NetworkControl => "control networking",
            Action::WifiShareProtected | Action::WifiShareOpen => "share connections over Wi-Fi",
            Action::SettingsModifySystem => "modify network connections for all users",
            Action::SettingsModifyOwn => "modify personal network connections",
            Action::SettingsModifyHostname => "modify the persistent system hostname",
            Action::SettingsModifyGlobalDns => "modify the global DNS configuration",
            Action::Reload => "reload NetworkManager",
            Action::CheckpointRollback => "create or roll back checkpoints",
            Action::EnableDisableStatistics => "enable/disable device statistics",
            Action::EnableDisableConnectivityCheck => "enable/disable connectivity checking",
            Action::WifiScan => "request Wi-Fi scans",
        }
    }
}

/// An answer about one action for one caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Yes,
    /// polkit would allow it after authentication (no agent answered, or
    /// the caller did not allow interaction).
    Challenge,
    No,
}

impl Answer {
    /// `GetPermissions`' word.
    pub fn word(self) -> &'static str {
        match self {
            Answer::Yes => "yes",
            Answer::Challenge => "auth",
            Answer::No => "no",
        }
    }
}

/// The decision, given the caller's uid, polkit's answer (`None` when
/// polkit is not on the bus or not used) and whether the caller is in the
/// configured group (false when no group is configured).
pub fn decide(uid: u32, polkit: Option<Answer>, in_group: bool) -> Answer {
    match (uid, polkit) {
        (0, _) => Answer::Yes,
        (_, Some(answer)) => answer,
        (_, None) if in_group => Answer::Yes,
        (_, None) => Answer::No,
    }
}

/// `[core] auth-polkit` and `[core] auth-group`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthConfig {
    pub polkit: bool,
    pub group: Option<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { polkit: true, group: None }
    }
}

static CONFIG: OnceLock<AuthConfig> = OnceLock::new();

/// Sets the configuration once, at start-up (before the name is owned).
pub fn init(config: AuthConfig) {
    let _ = CONFIG.set(config);
}

fn config() -> &'static AuthConfig {
    CONFIG.get_or_init(AuthConfig::default)
}

/// Which error domain a refusal is reported in (NetworkManager names the
/// error after the interface that was called).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    Manager,
    Settings,
    Device,
}

impl Domain {
    fn denied(self, message: String) -> NmError {
        match self {
            Domain::Manager => NmError::manager("PermissionDenied", message),
            Domain::Settings => NmError::settings("PermissionDenied", message),
            Domain::Device => NmError::device("PermissionDenied", message),
        }
    }
}

/// Why a caller is refused, in words (pure).
pub fn refusal(action: Action, answer: Answer, polkit_used: bool, uid: u32, group: Option<&str>) -> String {
    let head = format!("Not authorized to {} ({})", action.what(), action.id());
    match (answer, polkit_used, group) {
        (Answer::Challenge, _, _) => format!("{head}: authentication is required and no authentication agent gave it"),
        (_, true, _) => format!("{head}: polkit refused uid {uid}"),
        (_, false, Some(g)) => format!("{head}: polkit is not running and uid {uid} is not in group '{g}'"),
        (_, false, None) => format!("{head}: polkit is not running and only root may"),
    }
}

/// Who called: uid and unique bus name.
#[derive(Clone, Debug)]
pub struct Caller {
    pub uid: u32,
    pub sender: String,
}

impl Caller {
    pub async fn of(bus: &Bus, hdr: &Header<'_>) -> Result<Caller, NmError> {
        let sender = hdr.sender().ok_or_else(|| NmError::access_denied("message without sender"))?;
        let uid = nm_dbus::caller_uid(bus, hdr).await.map_err(|e| NmError::failed(e.to_string()))?;
        Ok(Caller { uid, sender: sender.to_string() })
    }
}

/// Allows the call or refuses it with a clear `PermissionDenied`.
pub async fn authorize(bus: &Bus, hdr: &Header<'_>, action: Action, domain: Domain) -> Result<Caller, NmError> {
    let caller = Caller::of(bus, hdr).await?;
    check(bus, &caller, action, interactive(hdr), domain).await?;
    Ok(caller)
}

/// Whether the caller set ALLOW_INTERACTIVE_AUTHORIZATION: then polkit may
/// ask it (through its agent) to authenticate.
pub fn interactive(hdr: &Header<'_>) -> bool {
    hdr.primary().flags().contains(Flags::ALLOW_INTERACTIVE_AUTH)
}

/// [`authorize`] for a caller already known.
pub async fn check(
    bus: &Bus,
    caller: &Caller,
    action: Action,
    interactive: bool,
    domain: Domain,
) -> Result<(), NmError> {
    if caller.uid == 0 {
        return Ok(());
    }
    let cfg = config();
    let polkit = if cfg.polkit {
        ask_polkit(bus, &caller.sender, action, interactive).await.map_err(|e| domain.denied(e))?
    } else {
        None
    };
    let in_group = match (polkit, &cfg.group) {
        (None, Some(g)) => uid_in_group(caller.uid, g).await,
        _ => false,
    };
    match decide(caller.uid, polkit, in_group) {
        Answer::Yes => Ok(()),
        answer => {
            let message = refusal(action, answer, polkit.is_some(), caller.uid, cfg.group.as_deref());
            tracing::info!("refused: {message} (caller {})", caller.sender);
            Err(domain.denied(message))
        }
    }
}

/// Every action's answer for `GetPermissions` (never interactive).
pub async fn permissions(bus: &Bus, caller: &Caller) -> Result<HashMap<String, String>, NmError> {
    let cfg = config();
    let mut out = HashMap::new();
    let mut group_answer: Option<bool> = None;
    for action in Action::ALL {
        let polkit = if caller.uid != 0 && cfg.polkit {
            ask_polkit(bus, &caller.sender, action, false).await.unwrap_or_else(|e| {
                tracing::warn!("{e}");
                Some(Answer::No)
            })
        } else {
            None
        };
        let in_group = match (caller.uid, polkit, &cfg.group) {
            (1.., None, Some(g)) => match group_answer {
                Some(known) => known,
                None => *group_answer.insert(uid_in_group(caller.uid, g).await),
            },
            _ => false,
        };
        out.insert(action.id().to_string(), decide(caller.uid, polkit, in_group).word().to_string());
    }
    Ok(out)
}

/// polkit's answer, or `None` when polkit is not on the bus (and not
/// activatable: the bus answers that at once). Other failures are errors.
async fn ask_polkit(bus: &Bus, sender: &str, action: Action, interactive: bool) -> Result<Option<Answer>, String> {
    let subject: (&str, HashMap<&str, Variant<'_>>) =
        ("system-bus-name", HashMap::from([("name", Variant::from(sender))]));
    let details: HashMap<&str, &str> = HashMap::new();
    let flags = if interactive { ALLOW_USER_INTERACTION } else { 0 };
    let body = (subject, action.id(), details, flags, "");
    let limit = if interactive { POLKIT_INTERACTIVE_TIMEOUT } else { POLKIT_TIMEOUT };
    let call = bus.call_method(Some(POLKIT), AUTHORITY_PATH, Some(AUTHORITY_IFACE), "CheckAuthorization", &body);
    let reply = match tokio::time::timeout(limit, call).await {
        Err(_) => return Err(format!("polkit did not answer about {} within {} s", action.id(), limit.as_secs())),
        Ok(Err(e)) if nm_dbus::service_absent(&e) => return Ok(None),
        Ok(Err(e)) => return Err(format!("polkit could not be asked about {}: {e}", action.id())),
        Ok(Ok(reply)) => reply,
    };
    let (authorized, challenge, _details): (bool, bool, HashMap<String, String>) =
        reply.body().deserialize().map_err(|e| format!("polkit's answer about {}: {e}", action.id()))?;
    Ok(Some(match (authorized, challenge) {
        (true, _) => Answer::Yes,
        (false, true) => Answer::Challenge,
        (false, false) => Answer::No,
    }))
}

/// Emits `CheckPermissions` whenever polkit's rules or sessions change
/// (its `Changed` signal) and when polkit comes or goes, as NetworkManager
/// does: clients showing what they may do ask `GetPermissions` again.
pub fn spawn_permission_watch(bus: Bus, nm_path: &'static str) {
    tokio::spawn(async move {
        if let Err(e) = watch(&bus, nm_path).await {
            tracing::warn!("not following polkit's changes: {e}");
        }
    });
}

async fn watch(bus: &Bus, nm_path: &'static str) -> zbus::Result<()> {
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(POLKIT)
        .path(AUTHORITY_PATH)
        .interface(AUTHORITY_IFACE)
        .member("Changed")
        .build()?;
    let mut changed = MessageStream::for_match_rule(rule, bus, None).await?;
    let dbus = zbus::fdo::DBusProxy::new(bus).await?;
    let mut owners = dbus.receive_name_owner_changed_with_args(&[(0, POLKIT)]).await?;
    loop {
        tokio::select! {
            m = changed.next() => if m.is_none() { return Ok(()) },
            o = owners.next() => if o.is_none() { return Ok(()) },
        }
        let emitter = SignalEmitter::new(bus, nm_path)?;
        if let Err(e) = crate::api::ManagerIface::check_permissions(&emitter).await {
            tracing::warn!("CheckPermissions: {e}");
        }
    }
}

// ---------------------------------------------------- connection.permissions ---

/// The users `connection.permissions` names (`user:NAME:` or `user:NAME`).
/// Empty: the profile is everyone's.
pub fn acl_users(perms: &[String]) -> Vec<&str> {
    perms
        .iter()
        .filter_map(|p| p.strip_prefix("user:"))
        .map(|rest| rest.split(':').next().unwrap_or(rest))
        .filter(|u| !u.is_empty())
        .collect()
}

/// `connection.permissions` of a stored profile.
pub fn permissions_of(conn: &Connection) -> Vec<String> {
    conn.get("connection", "permissions").and_then(Value::as_str_list).unwrap_or_default()
}

/// `connection.permissions` of a profile given on the bus.
pub fn permissions_in_dict(dict: &SettingsDict) -> Vec<String> {
    dict.get("connection").and_then(|s| s.get("permissions")).and_then(Value::as_str_list).unwrap_or_default()
}

/// Whether `user` (with `uid`) may see and use a profile limited to `perms`.
pub fn may_use(perms: &[String], uid: u32, user: Option<&str>) -> bool {
    let users = acl_users(perms);
    uid == 0 || users.is_empty() || user.is_some_and(|u| users.contains(&u))
}

/// NetworkManager's choice between modifying one's own profiles and
/// everyone's: `settings.modify.own` only when every profile involved (the
/// stored one and the new settings, whichever exist) names exactly one
/// user — the caller, which the ACL check makes sure of.
pub fn modify_action(involved: &[&[String]]) -> Action {
    if !involved.is_empty() && involved.iter().all(|p| acl_users(p).len() == 1) {
        Action::SettingsModifyOwn
    } else {
        Action::SettingsModifySystem
    }
}

/// Refuses a non-root caller a profile whose permissions leave it out.
pub async fn check_acl(caller: &Caller, perms: &[String], id: &str, domain: Domain) -> Result<(), NmError> {
    if caller.uid == 0 || acl_users(perms).is_empty() {
        return Ok(());
    }
    let user = user_name(caller.uid).await;
    if may_use(perms, caller.uid, user.as_deref()) {
        return Ok(());
    }
    let who = user.map_or_else(|| format!("uid {}", caller.uid), |u| format!("user '{u}'"));
    Err(domain.denied(format!("Connection '{id}' is not available to {who} (connection.permissions)")))
}

// ------------------------------------------------------------------ NSS ---

/// Whether `uid`'s user is in `group` (a name or a number), by NSS.
pub async fn uid_in_group(uid: u32, group: &str) -> bool {
    let group = group.to_string();
    tokio::task::spawn_blocking(move || users::in_group(uid, &group)).await.unwrap_or(false)
}

/// The user name of `uid`, by NSS.
pub async fn user_name(uid: u32) -> Option<String> {
    tokio::task::spawn_blocking(move || users::name_of(uid)).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_always_may() {
        for p in [None, Some(Answer::No), Some(Answer::Challenge)] {
            assert_eq!(decide(0, p, false), Answer::Yes);
        }
    }

    #[test]
    fn polkit_decides_for_others_when_present() {
        assert_eq!(decide(1000, Some(Answer::Yes), false), Answer::Yes);
        assert_eq!(decide(1000, Some(Answer::Challenge), true), Answer::Challenge);
        // The group only counts without polkit.
        assert_eq!(decide(1000, Some(Answer::No), true), Answer::No);
    }

    #[test]
    fn without_polkit_the_group_decides() {
        assert_eq!(decide(1000, None, true), Answer::Yes);
        assert_eq!(decide(1000, None, false), Answer::No);
    }

    #[test]
    fn words_are_network_managers() {
        assert_eq!(Answer::Yes.word(), "yes");
        assert_eq!(Answer::Challenge.word(), "auth");
        assert_eq!(Answer::No.word(), "no");
    }

    #[test]
    fn action_ids_are_distinct_and_namespaced() {
        let mut ids: Vec<&str> = Action::ALL.iter().map(|a| a.id()).collect();
        assert!(ids.iter().all(|i| i.starts_with("org.freedesktop.NetworkManager.")));
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), Action::ALL.len());
    }

    #[test]
    fn the_policy_file_lists_every_action() {
        let policy = include_str!("../../../polkit/org.freedesktop.NetworkManager.policy");
        for a in Action::ALL {
            assert!(policy.contains(&format!("<action id=\"{}\">", a.id())), "{}", a.id());
        }
    }

    #[test]
    fn refusals_say_what_and_why() {
        let m = refusal(Action::NetworkControl, Answer::No, true, 65534, None);
        assert_eq!(
            m,
            "Not authorized to control networking (org.freedesktop.NetworkManager.network-control): polkit refused uid 65534"
        );
        let m = refusal(Action::EnableDisableNetwork, Answer::Challenge, true, 65534, None);
        assert!(m.contains("authentication is required"), "{m}");
        let m = refusal(Action::SettingsModifySystem, Answer::No, false, 1, Some("netdev"));
        assert!(m.ends_with("polkit is not running and uid 1 is not in group 'netdev'"), "{m}");
        let m = refusal(Action::SettingsModifySystem, Answer::No, false, 1, None);
        assert!(m.ends_with("only root may"), "{m}");
    }

    fn perms(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn acl_reads_user_entries() {
        assert_eq!(acl_users(&perms(&["user:alice:", "user:bob", "bogus"])), vec!["alice", "bob"]);
        assert!(acl_users(&[]).is_empty());
    }

    #[test]
    fn a_limited_profile_is_its_users_and_roots() {
        let p = perms(&["user:alice:"]);
        assert!(may_use(&p, 1000, Some("alice")));
        assert!(!may_use(&p, 1001, Some("bob")));
        assert!(!may_use(&p, 1001, None));
        assert!(may_use(&p, 0, Some("root")));
        assert!(may_use(&[], 1001, Some("bob")));
    }

    #[test]
    fn own_profiles_need_modify_own_only() {
        let own = perms(&["user:alice:"]);
        let two = perms(&["user:alice:", "user:bob:"]);
        assert_eq!(modify_action(&[&own]), Action::SettingsModifyOwn);
        assert_eq!(modify_action(&[&own, &own]), Action::SettingsModifyOwn);
        assert_eq!(modify_action(&[&own, &[]]), Action::SettingsModifySystem);
        assert_eq!(modify_action(&[&[], &own]), Action::SettingsModifySystem);
        assert_eq!(modify_action(&[&two]), Action::SettingsModifySystem);
        assert_eq!(modify_action(&[]), Action::SettingsModifySystem);
    }
}
