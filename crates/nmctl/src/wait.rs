//! Waiting, driven by NetworkManager's signals (never by polling): the pure
//! decisions — is the network online, how is an activation going — over what
//! was observed, and the loops that feed them until satisfied or timed out.

use std::time::Duration;

use anyhow::Result;
use nm_model::Value;
use tokio::time::Instant;

use crate::client::{Client, Event, Watch};
use crate::exit::{self, fail};
use crate::names;
use crate::objects::*;
use crate::spinner::Spinner;

// ------------------------------------------------------ wait-online ---

/// What `nmctl wait-online` waits for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OnlineQuery {
    pub interfaces: Vec<String>,
    pub ipv4: bool,
    pub ipv6: bool,
    pub startup_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceObs {
    pub iface: String,
    pub state: u32,
    pub loopback: bool,
    pub ipv4: bool,
    pub ipv6: bool,
}

/// What the decision looks at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OnlineObs {
    pub running: bool,
    pub startup: bool,
    pub devices: Vec<DeviceObs>,
}

fn has_address(s: &ObjectStore, dev: &str, prop: &str, iface: &str) -> bool {
    s.path(dev, DEVICE, prop)
        .and_then(|p| s.get(&p, iface, "AddressData").and_then(Value::as_dict_list))
        .is_some_and(|l| !l.is_empty())
}

pub fn online_obs(running: bool, s: &ObjectStore) -> OnlineObs {
    let devices = s
        .devices()
        .iter()
        .map(|d| DeviceObs {
            iface: s.str(d, DEVICE, "Interface"),
            state: s.device_state(d).0,
            loopback: s.u32(d, DEVICE, "DeviceType") == names::DEVICE_TYPE_LOOPBACK
                || s.str(d, DEVICE, "Interface") == "lo",
            ipv4: has_address(s, d, "Ip4Config", IP4),
            ipv6: has_address(s, d, "Ip6Config", IP6),
        })
        .collect();
    OnlineObs { running, startup: s.bool(MANAGER_PATH, MANAGER, "Startup"), devices }
}

/// What a connected device still lacks for the query (empty when nothing).
fn lacks(q: &OnlineQuery, d: &DeviceObs) -> Vec<String> {
    let mut out = Vec::new();
    if q.ipv4 && !d.ipv4 {
        out.push(format!("{} has no IPv4 address", d.iface));
    }
    if q.ipv6 && !d.ipv6 {
        out.push(format!("{} has no IPv6 address", d.iface));
    }
    out
}

fn is(d: &DeviceObs) -> String {
    format!("{} is {}", d.iface, names::device_state(d.state))
}

/// `Ok` when online; otherwise everything still missing, in words.
///
/// - Named interfaces (`--interface`): each must be connected (and have the
///   asked-for addresses); NetworkManager's start-up need not be complete.
/// - Otherwise start-up must be complete (as `nm-online -s` waits for) and,
///   unless `--startup-only`, some device other than loopback connected.
pub fn online(q: &OnlineQuery, o: &OnlineObs) -> Result<(), Vec<String>> {
    if !o.running {
        return Err(vec!["NetworkManager is not running".into()]);
    }
    let mut missing = Vec::new();
    if !q.interfaces.is_empty() {
        for name in &q.interfaces {
            match o.devices.iter().find(|d| &d.iface == name) {
                None => missing.push(format!("{name} does not exist")),
                Some(d) if d.state != names::DEVICE_ACTIVATED => missing.push(is(d)),
                Some(d) => missing.extend(lacks(q, d)),
            }
        }
        return if missing.is_empty() { Ok(()) } else { Err(missing) };
    }
    if o.startup {
        missing.push("NetworkManager is still starting up".into());
    }
    if !q.startup_only {
        let candidates: Vec<&DeviceObs> = o.devices.iter().filter(|d| !d.loopback).collect();
        let connected: Vec<&&DeviceObs> = candidates.iter().filter(|d| d.state == names::DEVICE_ACTIVATED).collect();
        if connected.is_empty() {
            let states: Vec<String> = candidates.iter().map(|d| is(d)).collect();
            missing.push(if states.is_empty() {
                "no network device".into()
            } else {
                format!("no device is connected ({})", states.join(", "))
            });
        } else if connected.iter().all(|d| !lacks(q, d).is_empty()) {
            missing.extend(connected.iter().flat_map(|d| lacks(q, d)));
        }
    }
    if missing.is_empty() { Ok(()) } else { Err(missing) }
}

/// Waits until [`online`] holds, or fails (status 3) after `timeout` naming
/// what is missing. Also waits for NetworkManager to come onto the bus.
pub async fn wait_online(q: &OnlineQuery, timeout: Duration) -> Result<()> {
    let client = Client::connect().await?;
    let mut watch = client.watch().await?;
    let deadline = Instant::now() + timeout;
    loop {
        let missing = match online(q, &online_obs(watch.present, &watch.store)) {
            Ok(()) => return Ok(()),
            Err(m) => m,
        };
        tokio::select! {
            ev = watch.next(&client) => { ev?; }
            _ = tokio::time::sleep_until(deadline) => {
                return Err(fail(exit::TIMEOUT, format!("timed out after {} s: {}", timeout.as_secs(), missing.join(", "))));
            }
        }
    }
}

// ------------------------------------------------------- activation ---

/// What is known of one activation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActivationObs {
    /// The active connection's state while it exists.
    pub state: Option<u32>,
    /// It was seen and is gone (unexported).
    pub gone: bool,
    /// The reason of its last `StateChanged`.
    pub reason: Option<u32>,
    /// Its device's state.
    pub device_state: Option<u32>,
    /// The reason the device gave when it went FAILED.
    pub device_failure: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Still going; the text says how.
    Pending(String),
    Done,
    /// Failed; the text says why.
    Failed(String),
}

pub fn activation(o: &ActivationObs) -> Progress {
    match o.state {
        Some(names::AC_ACTIVATED) => return Progress::Done,
        Some(s) if s < names::AC_ACTIVATED || s == 0 => {
            let how = o.device_state.map_or("activating", names::device_state);
            return Progress::Pending(how.to_string());
        }
        None if !o.gone => return Progress::Pending("activating".into()),
        _ => {}
    }
    if let Some(r) = o.device_failure.filter(|r| *r != 0) {
        return Progress::Failed(format!("{} ({})", names::device_reason(r), names::device_reason_name(r)));
    }
    match o.reason.filter(|r| *r > 1) {
        Some(r) => Progress::Failed(format!("{} ({})", names::active_reason(r), names::active_reason_name(r))),
        None => Progress::Failed("the activation was cancelled".into()),
    }
}

fn observe(o: &mut ActivationObs, watch: &Watch, ac: &str, device: &mut Option<String>) {
    let s = &watch.store;
    if s.has(ac, ACTIVE) {
        o.state = Some(s.u32(ac, ACTIVE, "State"));
        if device.is_none() {
            *device = s.paths(ac, ACTIVE, "Devices").into_iter().next();
        }
    } else if o.state.is_some() {
        o.gone = true;
        o.state = None;
    }
    if let Some(d) = device.as_deref().filter(|d| s.has(d, DEVICE)) {
        let (state, reason) = s.device_state(d);
        o.device_state = Some(state);
        if state == names::DEVICE_FAILED {
            o.device_failure = Some(reason);
        }
    }
}

/// Follows an activation until it is up (Ok), failed (status 4, with the
/// reason) or `timeout` passed (status 3).
pub async fn wait_activation(
    client: &Client,
    watch: &mut Watch,
    ac: &str,
    device: Option<String>,
    what: &str,
    timeout: Duration,
) -> Result<()> {
    let mut o = ActivationObs::default();
    let mut device = device;
    let mut spinner = Spinner::new();
    let deadline = Instant::now() + timeout;
    loop {
        observe(&mut o, watch, ac, &mut device);
        let how = match activation(&o) {
            Progress::Done => {
                spinner.clear();
                return Ok(());
            }
            Progress::Failed(why) => {
                spinner.clear();
                return Err(fail(exit::ACTIVATION_FAILED, format!("activation of {what} failed: {why}")));
            }
            Progress::Pending(how) => how,
        };
        spinner.show(&format!("activating {what}: {how}"));
        tokio::select! {
            ev = watch.next(client) => match ev? {
                Event::ActiveStateChanged { path, state, reason } if path == ac => {
                    o.reason = Some(reason);
                    if state == names::AC_DEACTIVATED {
                        o.state = Some(state);
                        o.gone = true;
                    }
                }
                Event::DeviceStateChanged { path, new, reason, .. } if Some(&path) == device.as_ref() && new == names::DEVICE_FAILED => {
                    o.device_failure = Some(reason);
                }
                Event::Vanished => return Err(fail(exit::NOT_RUNNING, "NetworkManager left the bus")),
                _ => {}
            },
            _ = spinner.tick() => {}
            _ = tokio::time::sleep_until(deadline) => {
                spinner.clear();
                return Err(fail(exit::TIMEOUT, format!("timed out after {} s waiting for {what} ({how})", timeout.as_secs())));
            }
        }
    }
}

/// Waits until `done(store)` holds (deactivations), or fails after `timeout`.
pub async fn wait_until(
    client: &Client,
    watch: &mut Watch,
    what: &str,
    timeout: Duration,
    done: impl Fn(&ObjectStore) -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !done(&watch.store) {
        tokio::select! {
            ev = watch.next(client) => { ev?; }
            _ = tokio::time::sleep_until(deadline) => {
                return Err(fail(exit::TIMEOUT, format!("timed out after {} s waiting for {what}", timeout.as_secs())));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(iface: &str, state: u32, ipv4: bool, ipv6: bool) -> DeviceObs {
        DeviceObs { iface: iface.into(), state, loopback: iface == "lo", ipv4, ipv6 }
    }

    fn obs(startup: bool, devices: Vec<DeviceObs>) -> OnlineObs {
        OnlineObs { running: true, startup, devices }
    }

    #[test]
    fn default_needs_startup_done_and_a_connected_device() {
        let q = OnlineQuery::default();
        let up = obs(false, vec![dev("lo", 100, true, true), dev("eth0", 100, true, false)]);
        assert_eq!(online(&q, &up), Ok(()));
        let starting = obs(true, vec![dev("eth0", 100, true, false)]);
        assert_eq!(online(&q, &starting), Err(vec!["NetworkManager is still starting up".to_string()]));
        let down =
            obs(false, vec![dev("lo", 100, true, true), dev("eth0", 20, false, false), dev("eth1", 30, false, false)]);
        assert_eq!(
            online(&q, &down),
            Err(vec!["no device is connected (eth0 is unavailable, eth1 is disconnected)".to_string()])
        );
        assert_eq!(online(&q, &obs(false, vec![])), Err(vec!["no network device".to_string()]));
        assert_eq!(online(&q, &OnlineObs::default()), Err(vec!["NetworkManager is not running".to_string()]));
    }

    #[test]
    fn startup_only_is_nm_online_s() {
        let q = OnlineQuery { startup_only: true, ..Default::default() };
        assert_eq!(online(&q, &obs(false, vec![dev("eth0", 30, false, false)])), Ok(()));
        assert!(online(&q, &obs(true, vec![dev("eth0", 100, true, true)])).is_err());
    }

    #[test]
    fn families_are_required_when_asked() {
        let q = OnlineQuery { ipv6: true, ..Default::default() };
        let v4_only = obs(false, vec![dev("eth0", 100, true, false)]);
        assert_eq!(online(&q, &v4_only), Err(vec!["eth0 has no IPv6 address".to_string()]));
        let one_has_it = obs(false, vec![dev("eth0", 100, true, false), dev("eth1", 100, false, true)]);
        assert_eq!(online(&q, &one_has_it), Ok(()));
    }

    #[test]
    fn named_interfaces_are_each_checked() {
        let q = OnlineQuery { interfaces: vec!["eth0".into(), "eth9".into()], ipv4: true, ..Default::default() };
        let o = obs(true, vec![dev("eth0", 30, false, false)]);
        assert_eq!(online(&q, &o), Err(vec!["eth0 is disconnected".to_string(), "eth9 does not exist".to_string()]));
        let q = OnlineQuery { interfaces: vec!["eth0".into()], ipv4: true, ..Default::default() };
        assert_eq!(
            online(&q, &obs(true, vec![dev("eth0", 100, false, true)])),
            Err(vec!["eth0 has no IPv4 address".to_string()])
        );
        assert_eq!(online(&q, &obs(true, vec![dev("eth0", 100, true, false)])), Ok(()));
    }

    #[test]
    fn activation_follows_the_active_connection() {
        let mut o = ActivationObs::default();
        assert_eq!(activation(&o), Progress::Pending("activating".into()));
        o.state = Some(1);
        o.device_state = Some(70);
        assert_eq!(activation(&o), Progress::Pending("connecting (getting IP configuration)".into()));
        o.state = Some(2);
        assert_eq!(activation(&o), Progress::Done);
    }

    #[test]
    fn a_failure_names_the_device_reason_first() {
        let o = ActivationObs {
            state: Some(4),
            gone: true,
            reason: Some(5),
            device_state: Some(30),
            device_failure: Some(5),
        };
        assert_eq!(
            activation(&o),
            Progress::Failed(
                "no IP configuration could be obtained (no address, DHCP timed out, …) (IP_CONFIG_UNAVAILABLE)".into()
            )
        );
        let o = ActivationObs { gone: true, reason: Some(6), ..Default::default() };
        assert_eq!(activation(&o), Progress::Failed("the activation timed out (CONNECT_TIMEOUT)".into()));
        let o = ActivationObs { gone: true, ..Default::default() };
        assert_eq!(activation(&o), Progress::Failed("the activation was cancelled".into()));
    }
}
