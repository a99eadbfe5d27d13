//! Wired 802.1X through wpa_supplicant's D-Bus API (`fi.w1.wpa_supplicant1`).
//!
//! The decisions are pure and unit-tested: which secrets a profile needs
//! ([`missing_secrets`]), the network wpa_supplicant gets
//! ([`network_config`]) and the authentication stage as a state machine of
//! (phase, input) → action ([`Machine`]). The D-Bus part ([`Session`]) is a
//! task per activation that creates the interface with the `wired` driver,
//! adds and selects the network and reports `completed`, an EAP failure or
//! the timeout back to the engine; dropping the session removes the
//! interface from wpa_supplicant.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures_util::StreamExt;
use nm_model::{Connection, Value};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use zbus::{Connection as Bus, MatchRule, MessageStream, OwnedObjectPath};

use crate::agents::{self, Source};
use crate::device::reason;

pub const SUPPLICANT: &str = "fi.w1.wpa_supplicant1";
pub const SUPPLICANT_PATH: &str = "/fi/w1/wpa_supplicant1";
pub const INTERFACE_IFACE: &str = "fi.w1.wpa_supplicant1.Interface";
pub const SETTING: &str = "802-1x";
/// NetworkManager's default `802-1x.auth-timeout` for wired 802.1X.
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(25);
/// How long a handed-over network may go without an EAP exchange before
/// the interface is started over (once).
const KICK_AFTER: Duration = Duration::from_secs(4);

/// Whether an activation of this profile authenticates with 802.1X first.
pub fn wants_8021x(conn: &Connection) -> bool {
    conn.connection_type() == Some("802-3-ethernet") && conn.setting(SETTING).is_some()
}

fn eap_methods(conn: &Connection) -> Vec<String> {
    conn.get(SETTING, "eap").and_then(Value::as_str_list).unwrap_or_default()
}

fn has(conn: &Connection, prop: &str) -> bool {
    match conn.get(SETTING, prop) {
        Some(Value::Str(s)) => !s.is_empty(),
        Some(Value::Bytes(b)) => !b.is_empty(),
        Some(_) => true,
        None => false,
    }
}

/// The secrets the profile's first EAP method needs, as nmcli's agent and
/// NetworkManager's `need_secrets` see them.
fn required_secrets(conn: &Connection) -> Vec<&'static str> {
    match eap_methods(conn).first().map(String::as_str) {
        Some("md5" | "leap" | "pwd" | "peap" | "ttls" | "fast") => vec!["password"],
        Some("tls") if has(conn, "private-key") => vec!["private-key-password"],
        _ => vec![],
    }
}

/// The secrets of `802-1x` still missing, with where each may come from
/// (secrets marked not-required are never missing).
pub fn missing_secrets(conn: &Connection) -> Vec<(&'static str, Source)> {
    required_secrets(conn)
        .into_iter()
        .filter(|s| !(has(conn, s) || (*s == "password" && has(conn, "password-raw"))))
        .map(|s| (s, agents::source(conn.secret_flags(SETTING, s))))
        .filter(|(_, src)| *src != Source::NotNeeded)
        .collect()
}

/// The authentication timeout: `802-1x.auth-timeout` when positive.
pub fn auth_timeout(conn: &Connection) -> Duration {
    match conn.get(SETTING, "auth-timeout").and_then(Value::as_i128) {
        Some(s) if s > 0 => Duration::from_secs(u64::try_from(s).unwrap_or(25)),
        _ => DEFAULT_AUTH_TIMEOUT,
    }
}

/// A certificate property (`file://PATH\0` as bytes, or a path) as a path.
fn cert_path(conn: &Connection, prop: &str) -> Option<String> {
    let raw = match conn.get(SETTING, prop)? {
        Value::Bytes(b) => String::from_utf8_lossy(b).trim_end_matches('\0').to_string(),
        Value::Str(s) => s.clone(),
        _ => return None,
    };
    let path = raw.strip_prefix("file://").unwrap_or(&raw).to_string();
    path.starts_with('/').then_some(path)
}

/// The network wpa_supplicant's `AddNetwork` gets for the profile (it
/// holds the secrets: never log it).
pub fn network_config(conn: &Connection) -> Result<BTreeMap<String, Value>, String> {
    let methods = eap_methods(conn);
    if methods.is_empty() {
        return Err("802-1x.eap: no EAP method given".into());
    }
    let mut eap = Vec::new();
    for m in &methods {
        match m.as_str() {
            "md5" | "peap" | "ttls" | "tls" | "leap" | "pwd" | "fast" => eap.push(m.to_ascii_uppercase()),
            other => return Err(format!("802-1x.eap: method '{other}' is not supported")),
        }
    }
    let mut net = BTreeMap::new();
    let s = |v: &str| Value::Str(v.to_string());
    net.insert("key_mgmt".into(), s("IEEE8021X"));
    net.insert("eap".into(), s(&eap.join(" ")));
    net.insert("eapol_flags".into(), Value::UInt32(0));
    let strings = [
        ("identity", "identity"),
        ("anonymous-identity", "anonymous_identity"),
        ("password", "password"),
        ("private-key-password", "private_key_passwd"),
        ("domain-suffix-match", "domain_suffix_match"),
    ];
    for (prop, key) in strings {
        if let Some(v) = conn.get_str(SETTING, prop).filter(|v| !v.is_empty()) {
            net.insert(key.into(), s(v));
        }
    }
    for (prop, key) in [("ca-cert", "ca_cert"), ("client-cert", "client_cert"), ("private-key", "private_key")] {
        if let Some(p) = cert_path(conn, prop) {
            net.insert(key.into(), s(&p));
        }
    }
    let mut phase1 = Vec::new();
    if let Some(v) = conn.get_str(SETTING, "phase1-peapver").filter(|v| !v.is_empty()) {
        phase1.push(format!("peapver={v}"));
    }
    if conn.get_str(SETTING, "phase1-peaplabel") == Some("1") {
        phase1.push("peaplabel=1".into());
    }
    if !phase1.is_empty() {
        net.insert("phase1".into(), s(&phase1.join(" ")));
    }
    let mut phase2 = Vec::new();
    if let Some(v) = conn.get_str(SETTING, "phase2-auth").filter(|v| !v.is_empty()) {
        phase2.push(format!("auth={}", v.to_ascii_uppercase()));
    }
    if let Some(v) = conn.get_str(SETTING, "phase2-autheap").filter(|v| !v.is_empty()) {
        phase2.push(format!("autheap={}", v.to_ascii_uppercase()));
    }
    if !phase2.is_empty() {
        net.insert("phase2".into(), s(&phase2.join(" ")));
    }
    Ok(net)
}

// ------------------------------------------------------------ machine ---

/// Where the authentication stage of one activation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the settings service's stored secrets.
    ServiceSecrets,
    /// Waiting for the agents (device in NEED_AUTH).
    AgentSecrets,
    /// wpa_supplicant is authenticating.
    Authenticating,
    Done,
    Failed,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Start,
    ServiceAnswered,
    AgentsAnswered,
    Supplicant(Event),
}

/// What the engine does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    AskService,
    /// Ask the agents with these `GetSecrets` flags (REQUEST_NEW: forget
    /// the secrets that failed first).
    AskAgents {
        flags: u32,
    },
    /// Hand the network to wpa_supplicant.
    Authenticate,
    /// Authenticated: on to IP configuration.
    Proceed,
    Fail {
        reason: u32,
    },
    Nothing,
}

/// The authentication stage as NetworkManager runs it for wired 802.1X:
/// stored secrets first, then the agents (interactively when a user asked
/// for the activation), then wpa_supplicant; one failed authentication asks
/// the agents again for new secrets, the second one fails.
#[derive(Clone, Debug)]
pub struct Machine {
    pub phase: Phase,
    interactive: bool,
    asked_new: bool,
}

impl Machine {
    pub fn new(interactive: bool) -> Self {
        Machine { phase: Phase::ServiceSecrets, interactive, asked_new: false }
    }

    fn interaction(&self) -> u32 {
        if self.interactive { agents::flags::ALLOW_INTERACTION | agents::flags::USER_REQUESTED } else { 0 }
    }

    fn fail(&mut self, reason: u32) -> Action {
        self.phase = Phase::Failed;
        Action::Fail { reason }
    }

    /// `missing`: whether the applied connection still lacks a needed secret.
    pub fn step(&mut self, step: Step, missing: bool) -> Action {
        match (self.phase, step) {
            (Phase::ServiceSecrets, Step::Start) => Action::AskService,
            (Phase::ServiceSecrets, Step::ServiceAnswered) if missing => {
                self.phase = Phase::AgentSecrets;
                Action::AskAgents { flags: self.interaction() }
            }
            (Phase::ServiceSecrets | Phase::AgentSecrets, Step::ServiceAnswered | Step::AgentsAnswered) => {
                if missing {
                    self.fail(reason::NO_SECRETS)
                } else {
                    self.phase = Phase::Authenticating;
                    Action::Authenticate
                }
            }
            (Phase::Authenticating, Step::Supplicant(e)) => match e {
                Event::Completed => {
                    self.phase = Phase::Done;
                    Action::Proceed
                }
                Event::AuthFailed if !self.asked_new => {
                    self.asked_new = true;
                    self.phase = Phase::AgentSecrets;
                    Action::AskAgents { flags: self.interaction() | agents::flags::REQUEST_NEW }
                }
                Event::AuthFailed => self.fail(reason::SUPPLICANT_FAILED),
                Event::Timeout => self.fail(reason::SUPPLICANT_TIMEOUT),
                Event::Failed { config: true, .. } => self.fail(reason::SUPPLICANT_CONFIG_FAILED),
                Event::Failed { config: false, .. } => self.fail(reason::SUPPLICANT_FAILED),
            },
            // wpa_supplicant unusable before the network was even handed over.
            (Phase::ServiceSecrets | Phase::AgentSecrets, Step::Supplicant(Event::Failed { .. })) => {
                self.fail(reason::SUPPLICANT_FAILED)
            }
            _ => Action::Nothing,
        }
    }
}

// ------------------------------------------------------------ session ---

/// What wpa_supplicant reported for the network last handed over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `State` became `completed`: authenticated.
    Completed,
    /// EAP ended in failure (wrong secrets).
    AuthFailed,
    /// Neither within the authentication timeout.
    Timeout,
    /// wpa_supplicant could not be used (`config`: it refused the network).
    Failed { config: bool, message: String },
}

enum Cmd {
    Authenticate(BTreeMap<String, Value>, Duration),
}

/// wpa_supplicant's interface for one activation. Dropping it removes the
/// interface (and its network) from wpa_supplicant.
pub struct Session {
    cmd: mpsc::UnboundedSender<Cmd>,
}

type Report = Box<dyn Fn(Event) + Send + Sync>;

impl Session {
    /// The session for `ifname`; it talks to wpa_supplicant in the
    /// background and reports to `report`.
    pub fn start(bus: Bus, ifname: String, report: impl Fn(Event) + Send + Sync + 'static) -> Session {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(bus, ifname, rx, Box::new(report)));
        Session { cmd: tx }
    }

    /// Creates (or takes over) wpa_supplicant's interface with the wired
    /// driver afresh, hands the network over and starts the timeout.
    pub fn authenticate(&self, network: BTreeMap<String, Value>, timeout: Duration) {
        let _ = self.cmd.send(Cmd::Authenticate(network, timeout));
    }
}

fn wire_dict(map: &BTreeMap<String, Value>) -> HashMap<String, zbus::OwnedVariant> {
    map.iter()
        .filter_map(|(k, v)| {
            let v = nm_dbus::to_variant(v).ok()?;
            Some((k.clone(), zbus::OwnedVariant::try_from(v).ok()?))
        })
        .collect()
}

async fn call<B, R>(bus: &Bus, path: &str, iface: &str, method: &str, body: &B) -> zbus::Result<R>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
    R: for<'d> serde::Deserialize<'d> + zbus::zvariant::Type,
{
    let msg = bus.call_method(Some(SUPPLICANT), path, Some(iface), method, body).await?;
    msg.body().deserialize::<R>()
}

fn is_error(e: &zbus::Error, suffix: &str) -> bool {
    matches!(e, zbus::Error::MethodError(name, _, _) if name.as_str().ends_with(suffix))
}

/// wpa_supplicant's interface for `ifname` (wired driver, ap_scan 0).
async fn interface(bus: &Bus, ifname: &str) -> zbus::Result<OwnedObjectPath> {
    let mut args = HashMap::new();
    args.insert("Ifname".to_string(), zbus::Variant::from(ifname));
    args.insert("Driver".to_string(), zbus::Variant::from("wired"));
    let path: OwnedObjectPath = match call(bus, SUPPLICANT_PATH, SUPPLICANT, "CreateInterface", &(args,)).await {
        Ok(p) => p,
        Err(e) if is_error(&e, "InterfaceExists") => {
            call(bus, SUPPLICANT_PATH, SUPPLICANT, "GetInterface", &(ifname,)).await?
        }
        Err(e) => return Err(e),
    };
    let set: zbus::Result<()> = call(
        bus,
        path.as_str(),
        "org.freedesktop.DBus.Properties",
        "Set",
        &(INTERFACE_IFACE, "ApScan", zbus::Variant::from(0u32)),
    )
    .await;
    if let Err(e) = set {
        debug!("wpa_supplicant ApScan 0 on {ifname}: {e}");
    }
    Ok(path)
}

/// Whether a signal says an EAP exchange began.
fn eap_started(member: &str, body: &zbus::message::Body) -> bool {
    member == "EAP" && body.deserialize::<(String, String)>().is_ok_and(|(status, _)| status == "started")
}

/// What a signal from wpa_supplicant's interface means, if anything.
pub fn signal_event(member: &str, body: &zbus::message::Body) -> Option<Event> {
    match member {
        "EAP" => {
            let (status, parameter) = body.deserialize::<(String, String)>().ok()?;
            (status == "completion" && parameter == "failure").then_some(Event::AuthFailed)
        }
        "PropertiesChanged" => {
            type Changed = HashMap<String, zbus::OwnedVariant>;
            let changed: Changed = body
                .deserialize::<(String, Changed, Vec<String>)>()
                .map(|(_, c, _)| c)
                .or_else(|_| body.deserialize::<(Changed,)>().map(|(c,)| c))
                .ok()?;
            let state = changed.get("State").and_then(|v| String::try_from(v.clone()).ok())?;
            debug!("wpa_supplicant state {state}");
            (state == "completed").then_some(Event::Completed)
        }
        _ => None,
    }
}

/// wpa_supplicant's interface for `ifname` and a stream of its signals.
async fn open(bus: &Bus, ifname: &str) -> zbus::Result<(OwnedObjectPath, MessageStream)> {
    let iface = interface(bus, ifname).await?;
    info!(device = %ifname, "wpa_supplicant interface {iface}");
    let rule =
        MatchRule::builder().msg_type(zbus::message::Type::Signal).sender(SUPPLICANT).path(iface.clone()).build();
    let stream = match rule {
        Ok(rule) => MessageStream::for_match_rule(rule, bus, std::num::NonZeroUsize::new(64)).await,
        Err(e) => Err(e),
    };
    match stream {
        Ok(s) => Ok((iface, s)),
        Err(e) => {
            remove_interface(bus, &iface).await;
            Err(e)
        }
    }
}

async fn next_signal(current: &mut Option<(OwnedObjectPath, MessageStream)>) -> Option<zbus::Result<zbus::Message>> {
    match current {
        Some((_, stream)) => stream.next().await,
        None => std::future::pending().await,
    }
}

/// A fresh interface for `ifname` with `network` handed over.
async fn attempt(
    bus: &Bus,
    ifname: &str,
    current: &mut Option<(OwnedObjectPath, MessageStream)>,
    network: &BTreeMap<String, Value>,
) -> Result<(), Event> {
    if let Some((iface, _)) = current.take() {
        remove_interface(bus, &iface).await;
    }
    let (iface, stream) = open(bus, ifname).await.map_err(|e| {
        warn!(device = %ifname, "wpa_supplicant cannot take the interface: {e}");
        Event::Failed { config: false, message: e.to_string() }
    })?;
    let handed = hand_over(bus, &iface, network).await;
    *current = Some((iface, stream));
    handed.map_err(|e| {
        warn!(device = %ifname, "wpa_supplicant refused the network: {e}");
        Event::Failed { config: true, message: e.to_string() }
    })
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn run(bus: Bus, ifname: String, mut rx: mpsc::UnboundedReceiver<Cmd>, report: Report) {
    let mut current: Option<(OwnedObjectPath, MessageStream)> = None;
    let mut network = BTreeMap::new();
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut kick: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None => break,
                // A fresh interface for every attempt: after a failure
                // wpa_supplicant's EAPOL machine is held for a minute.
                Some(Cmd::Authenticate(net, timeout)) => {
                    network = net;
                    deadline = None;
                    kick = None;
                    match attempt(&bus, &ifname, &mut current, &network).await {
                        Ok(()) => {
                            let now = tokio::time::Instant::now();
                            deadline = Some(now + timeout);
                            kick = Some(now + KICK_AFTER);
                        }
                        Err(ev) => report(ev),
                    }
                }
            },
            msg = next_signal(&mut current) => {
                let Some(Ok(msg)) = msg else { continue };
                let header = msg.header();
                let Some(member) = header.member() else { continue };
                if eap_started(member.as_str(), &msg.body()) {
                    kick = None;
                }
                if let Some(ev) = signal_event(member.as_str(), &msg.body()).filter(|_| deadline.is_some()) {
                    info!(device = %ifname, "802.1X: {}", if ev == Event::Completed { "authenticated" } else { "authentication failed" });
                    deadline = None;
                    kick = None;
                    report(ev);
                }
            }
            () = sleep_until(kick) => {
                // No EAP exchange began: an authenticator that has just
                // failed this port drops the next EAPOL-Start, and
                // wpa_supplicant would send another only 30 s later.
                kick = None;
                info!(device = %ifname, "802.1X: no EAP exchange yet, starting over once");
                if let Err(ev) = attempt(&bus, &ifname, &mut current, &network).await {
                    deadline = None;
                    report(ev);
                }
            }
            () = sleep_until(deadline) => {
                warn!(device = %ifname, "802.1X: no authentication within the timeout");
                deadline = None;
                kick = None;
                report(Event::Timeout);
            }
        }
    }
    if let Some((iface, _)) = current {
        remove_interface(&bus, &iface).await;
    }
}

/// Replaces the interface's networks by `network` and selects it.
async fn hand_over(bus: &Bus, iface: &OwnedObjectPath, network: &BTreeMap<String, Value>) -> zbus::Result<()> {
    let () = call(bus, iface.as_str(), INTERFACE_IFACE, "RemoveAllNetworks", &()).await?;
    let net: OwnedObjectPath = call(bus, iface.as_str(), INTERFACE_IFACE, "AddNetwork", &(wire_dict(network),)).await?;
    let () = call(bus, iface.as_str(), INTERFACE_IFACE, "SelectNetwork", &(&net,)).await?;
    Ok(())
}

async fn remove_interface(bus: &Bus, iface: &OwnedObjectPath) {
    let r: zbus::Result<()> = call(bus, SUPPLICANT_PATH, SUPPLICANT, "RemoveInterface", &(iface,)).await;
    if let Err(e) = r {
        debug!("wpa_supplicant RemoveInterface {iface}: {e}");
    }
}

/// The secret property names of `802-1x` (for tests and the schema check).
#[cfg(test)]
fn secret_props() -> Vec<&'static str> {
    nm_model::schema::setting(SETTING)
        .map(|s| s.properties.iter().filter(|p| p.secret).map(|p| p.name).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::flags::{ALLOW_INTERACTION, REQUEST_NEW, USER_REQUESTED};

    fn profile(eap: &str, password: Option<&str>, flags: u32) -> Connection {
        let mut c = Connection::default();
        c.set("connection", "type", Value::Str("802-3-ethernet".into()));
        c.set(SETTING, "eap", Value::str_list([eap]));
        c.set(SETTING, "identity", Value::Str("alice".into()));
        if let Some(p) = password {
            c.set(SETTING, "password", Value::Str(p.into()));
        }
        c.set(SETTING, "password-flags", Value::UInt32(flags));
        c
    }

    #[test]
    fn which_secrets_are_missing_and_who_has_them() {
        assert!(wants_8021x(&profile("md5", None, 0)));
        let mut plain = Connection::default();
        plain.set("connection", "type", Value::Str("802-3-ethernet".into()));
        assert!(!wants_8021x(&plain));
        assert!(missing_secrets(&profile("md5", Some("pw"), 0)).is_empty());
        assert_eq!(missing_secrets(&profile("md5", None, 0)), [("password", Source::Service)]);
        assert_eq!(missing_secrets(&profile("md5", None, 1)), [("password", Source::Agents)]);
        assert_eq!(missing_secrets(&profile("peap", None, 2)), [("password", Source::Agents)]);
        assert!(missing_secrets(&profile("md5", None, 4)).is_empty());
        assert!(missing_secrets(&profile("md5", Some(""), 4)).is_empty());
        assert_eq!(missing_secrets(&profile("md5", Some(""), 1)), [("password", Source::Agents)]);
        let mut raw = profile("md5", None, 1);
        raw.set(SETTING, "password-raw", Value::Bytes(b"pw".to_vec()));
        assert!(missing_secrets(&raw).is_empty());
        assert!(missing_secrets(&profile("tls", None, 0)).is_empty());
        assert!(secret_props().contains(&"password"));
    }

    #[test]
    fn networks_for_wpa_supplicant() {
        let net = network_config(&profile("md5", Some("correct-horse"), 0)).unwrap();
        assert_eq!(net["key_mgmt"], Value::Str("IEEE8021X".into()));
        assert_eq!(net["eap"], Value::Str("MD5".into()));
        assert_eq!(net["identity"], Value::Str("alice".into()));
        assert_eq!(net["password"], Value::Str("correct-horse".into()));
        assert_eq!(net["eapol_flags"], Value::UInt32(0));
        assert!(!net.contains_key("phase2"));

        let mut peap = profile("peap", Some("pw"), 0);
        peap.set(SETTING, "phase2-auth", Value::Str("mschapv2".into()));
        peap.set(SETTING, "anonymous-identity", Value::Str("anon".into()));
        peap.set(SETTING, "ca-cert", Value::Bytes(b"file:///etc/ssl/ca.pem\0".to_vec()));
        let net = network_config(&peap).unwrap();
        assert_eq!(net["eap"], Value::Str("PEAP".into()));
        assert_eq!(net["phase2"], Value::Str("auth=MSCHAPV2".into()));
        assert_eq!(net["anonymous_identity"], Value::Str("anon".into()));
        assert_eq!(net["ca_cert"], Value::Str("/etc/ssl/ca.pem".into()));

        assert!(network_config(&profile("sim", None, 0)).unwrap_err().contains("'sim'"));
        let mut none = profile("md5", None, 0);
        none.set(SETTING, "eap", Value::str_list(Vec::<String>::new()));
        assert!(network_config(&none).is_err());
    }

    #[test]
    fn timeout_from_the_profile_or_the_default() {
        let mut c = profile("md5", None, 0);
        assert_eq!(auth_timeout(&c), DEFAULT_AUTH_TIMEOUT);
        c.set(SETTING, "auth-timeout", Value::Int32(7));
        assert_eq!(auth_timeout(&c), Duration::from_secs(7));
    }

    #[test]
    fn stored_secrets_authenticate_at_once() {
        let mut m = Machine::new(true);
        assert_eq!(m.step(Step::Start, true), Action::AskService);
        assert_eq!(m.step(Step::ServiceAnswered, false), Action::Authenticate);
        assert_eq!(m.step(Step::Supplicant(Event::Completed), false), Action::Proceed);
        assert_eq!(m.phase, Phase::Done);
        // Late or repeated events change nothing.
        assert_eq!(m.step(Step::Supplicant(Event::Timeout), false), Action::Nothing);
    }

    #[test]
    fn agents_are_asked_interactively_only_for_a_user() {
        let mut m = Machine::new(true);
        m.step(Step::Start, true);
        assert_eq!(
            m.step(Step::ServiceAnswered, true),
            Action::AskAgents { flags: ALLOW_INTERACTION | USER_REQUESTED }
        );
        assert_eq!(m.phase, Phase::AgentSecrets);
        assert_eq!(m.step(Step::AgentsAnswered, false), Action::Authenticate);

        let mut auto = Machine::new(false);
        auto.step(Step::Start, true);
        assert_eq!(auto.step(Step::ServiceAnswered, true), Action::AskAgents { flags: 0 });
        assert_eq!(auto.step(Step::AgentsAnswered, true), Action::Fail { reason: reason::NO_SECRETS });
        assert_eq!(auto.phase, Phase::Failed);
    }

    #[test]
    fn one_failed_authentication_asks_for_new_secrets_the_second_fails() {
        let mut m = Machine::new(true);
        m.step(Step::Start, true);
        m.step(Step::ServiceAnswered, false);
        assert_eq!(
            m.step(Step::Supplicant(Event::AuthFailed), false),
            Action::AskAgents { flags: ALLOW_INTERACTION | USER_REQUESTED | REQUEST_NEW }
        );
        assert_eq!(m.step(Step::AgentsAnswered, false), Action::Authenticate);
        assert_eq!(
            m.step(Step::Supplicant(Event::AuthFailed), false),
            Action::Fail { reason: reason::SUPPLICANT_FAILED }
        );

        let mut none = Machine::new(false);
        none.step(Step::Start, true);
        none.step(Step::ServiceAnswered, false);
        none.step(Step::Supplicant(Event::AuthFailed), false);
        assert_eq!(none.step(Step::AgentsAnswered, true), Action::Fail { reason: reason::NO_SECRETS });
    }

    #[test]
    fn timeouts_and_unusable_supplicants_fail_with_their_reasons() {
        let mut m = Machine::new(false);
        m.step(Step::Start, false);
        m.step(Step::ServiceAnswered, false);
        assert_eq!(
            m.step(Step::Supplicant(Event::Timeout), false),
            Action::Fail { reason: reason::SUPPLICANT_TIMEOUT }
        );

        let mut m = Machine::new(false);
        m.step(Step::Start, false);
        m.step(Step::ServiceAnswered, false);
        let refused = Event::Failed { config: true, message: "bad".into() };
        assert_eq!(m.step(Step::Supplicant(refused), false), Action::Fail { reason: reason::SUPPLICANT_CONFIG_FAILED });

        let mut m = Machine::new(false);
        m.step(Step::Start, false);
        let gone = Event::Failed { config: false, message: "ServiceUnknown".into() };
        assert_eq!(m.step(Step::Supplicant(gone), false), Action::Fail { reason: reason::SUPPLICANT_FAILED });
    }
}
