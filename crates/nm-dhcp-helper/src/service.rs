//! The bus side: `org.freedesktop.nm_dhcp_helper` at
//! `/org/freedesktop/nm_dhcp_helper` (`Start`), one object per transaction
//! at `/org/freedesktop/nm_dhcp_helper/Transaction/N`
//! (`org.freedesktop.nm_dhcp_helper.Transaction`: `Stop`, `Event`, `State`).
//! Only uid 0 may call; the bus policy says the same.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use nm_runtime::Paths;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, OwnedObjectPath, OwnedVariant, Variant, fdo, interface};

use crate::fnv1a;
use crate::lease::{self, ClientView};
use crate::machine::{Config, Previous};
use crate::machine_ll::ConfigLl;
use crate::machine6::Config6;
use crate::net::Udp6Socket;
use crate::net::{self, ArpSocket, PacketSocket};
use crate::packet::{ClientParams, REQUESTED};
use crate::packet6::Params6;
use crate::sanitize;
use crate::transaction::{self, Setup};
use crate::transaction_ll::{self, SetupLl};
use crate::transaction6::{self, Setup6};

pub const BUS_NAME: &str = "org.freedesktop.nm_dhcp_helper";
pub const PATH: &str = "/org/freedesktop/nm_dhcp_helper";
pub const TRANSACTION_PATH: &str = "/org/freedesktop/nm_dhcp_helper/Transaction";
pub const TRANSACTION_INTERFACE: &str = "org.freedesktop.nm_dhcp_helper.Transaction";
/// Where leases live (under `--root`); `lease-file` must be inside.
pub const STATE_DIR: &str = "/var/lib/NetworkManager";
/// NetworkManager's `NM_DHCP_TIMEOUT_DEFAULT`.
const DEFAULT_TIMEOUT: u32 = 45;
/// `ipv4.dhcp-timeout` at or above this is infinite (NetworkManager's
/// `NM_DHCP_TIMEOUT_INFINITY`).
const INFINITE_TIMEOUT: u32 = 2_147_483_647;
/// The longest `acd-timeout` (ms): `ipv4.dad-timeout`'s maximum.
const MAX_ACD_TIMEOUT: u32 = 30_000;

/// A command for a transaction's task.
pub enum Control {
    Stop {
        release: bool,
        done: oneshot::Sender<()>,
    },
    /// DHCPv6: the leased address failed duplicate address detection.
    Decline {
        address: std::net::Ipv6Addr,
    },
}

struct Running {
    ifindex: u32,
    /// One transaction of each family may run per interface.
    family: Family,
    /// The unique bus name that started it; it ends when that name goes.
    owner: String,
    control: mpsc::UnboundedSender<Control>,
}

/// What the interface objects and the transaction tasks share.
pub struct Shared {
    pub paths: Paths,
    next_id: AtomicU32,
    running: Mutex<HashMap<u32, Running>>,
    /// The unique bus name last found to be root (nm-core's). The bus
    /// never gives a unique name to a second connection and a connection's
    /// uid never changes, so the answer holds for as long as the name is
    /// asked with; keeping it spares every Start and Stop a round trip.
    root_caller: Mutex<Option<String>>,
}

impl Shared {
    pub fn new(paths: Paths) -> Arc<Shared> {
        Arc::new(Shared {
            paths,
            next_id: AtomicU32::new(1),
            running: Mutex::new(HashMap::new()),
            root_caller: Mutex::new(None),
        })
    }

    fn running(&self) -> MutexGuard<'_, HashMap<u32, Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn root_caller(&self) -> MutexGuard<'_, Option<String>> {
        self.root_caller.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by a transaction's task when it ends.
    pub fn forget(&self, id: u32) {
        self.running().remove(&id);
    }

    /// Stops a transaction (without release) and waits for it to end.
    async fn stop(&self, control: &mpsc::UnboundedSender<Control>) {
        let (done, wait) = oneshot::channel();
        if control.send(Control::Stop { release: false, done }).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
        }
    }
}

pub fn transaction_path(id: u32) -> OwnedObjectPath {
    OwnedObjectPath::try_from(format!("{TRANSACTION_PATH}/{id}")).expect("a number makes a valid object path")
}

async fn require_root(shared: &Shared, bus: &Connection, hdr: &Header<'_>, what: &str) -> fdo::Result<()> {
    let sender = hdr.sender().ok_or_else(|| fdo::Error::AccessDenied("message without sender".into()))?;
    if shared.root_caller().as_deref() == Some(sender.as_str()) {
        return Ok(());
    }
    let dbus = fdo::DBusProxy::new(bus).await?;
    let uid = dbus.get_connection_unix_user(sender.clone().into()).await?;
    if uid != 0 {
        warn!(uid, "refused: {what} needs root");
        return Err(fdo::Error::AccessDenied(format!("only root may {what}")));
    }
    *shared.root_caller() = Some(sender.to_string());
    Ok(())
}

/// `Start`'s options, checked.
#[derive(Debug, Default)]
struct StartOptions {
    client_id: Option<Vec<u8>>,
    hostname: Option<String>,
    /// Option 81 instead of option 12: the name and its flags byte.
    fqdn: Option<String>,
    fqdn_flags: u8,
    send_hostname: bool,
    request_broadcast: bool,
    rapid_commit: bool,
    timeout: Option<Duration>,
    lease_file: Option<String>,
    uuid: Option<String>,
    vendor_class: Option<Vec<u8>>,
    reject_servers: Vec<(Ipv4Addr, u8)>,
    last_address: Option<Ipv4Addr>,
    /// Address conflict detection before taking an address (RFC 5227).
    acd_timeout: Option<Duration>,
    /// "family" "ipv6": a DHCPv6 transaction.
    ipv6: bool,
    /// "family" "ipv4ll": an IPv4 link-local address (RFC 3927), no DHCP.
    link_local: bool,
    /// "mode" "other": stateless DHCPv6 (Information-request).
    stateless: bool,
    /// The DHCPv6 client DUID (required with ipv6).
    duid: Option<Vec<u8>>,
    iaid: Option<u32>,
    /// A DHCPv4-only and a DHCPv6-only key that was given, to refuse a mix.
    v4_key: Option<String>,
    v6_key: Option<String>,
}

fn invalid(key: &str, why: impl std::fmt::Display) -> fdo::Error {
    fdo::Error::InvalidArgs(format!("{key}: {why}"))
}

fn get_str(key: &str, v: &Variant<'_>) -> fdo::Result<String> {
    match v {
        Variant::Str(s) => Ok(s.as_str().to_owned()),
        _ => Err(invalid(key, "expected a string (s)")),
    }
}

/// An `ay` option of a length in `len`.
fn get_bytes(key: &str, v: &Variant<'_>, len: std::ops::RangeInclusive<usize>) -> fdo::Result<Vec<u8>> {
    let bytes = Vec::<u8>::try_from(v.try_clone().map_err(|e| invalid(key, e))?)
        .map_err(|_| invalid(key, "expected bytes (ay)"))?;
    if !len.contains(&bytes.len()) {
        return Err(invalid(key, format!("must be {} to {} bytes", len.start(), len.end())));
    }
    Ok(bytes)
}

fn get_bool(key: &str, v: &Variant<'_>) -> fdo::Result<bool> {
    match v {
        Variant::Bool(b) => Ok(*b),
        _ => Err(invalid(key, "expected a boolean (b)")),
    }
}

fn parse_options(options: &HashMap<String, OwnedVariant>) -> fdo::Result<StartOptions> {
    let mut o = StartOptions { send_hostname: true, ..Default::default() };
    let mut timeout = DEFAULT_TIMEOUT;
    for (key, value) in options {
        let v: &Variant<'_> = value;
        // A variant inside the variant is unwrapped once.
        let v = match v {
            Variant::Variant(inner) => inner.as_ref(),
            v => v,
        };
        match key.as_str() {
            "client-id" | "hostname" | "fqdn" | "fqdn-flags" | "send-hostname" | "request-broadcast"
            | "rapid-commit" | "acd-timeout" | "lease-file" | "vendor-class" | "reject-servers" | "last-address" => {
                o.v4_key = Some(key.clone())
            }
            "mode" | "duid" | "iaid" => o.v6_key = Some(key.clone()),
            _ => {}
        }
        match key.as_str() {
            "family" => {
                (o.ipv6, o.link_local) = match get_str(key, v)?.as_str() {
                    "ipv4" => (false, false),
                    "ipv6" => (true, false),
                    "ipv4ll" => (false, true),
                    _ => return Err(invalid(key, "must be \"ipv4\", \"ipv6\" or \"ipv4ll\"")),
                }
            }
            "mode" => {
                o.stateless = match get_str(key, v)?.as_str() {
                    "managed" => false,
                    "other" => true,
                    _ => return Err(invalid(key, "must be \"managed\" or \"other\"")),
                }
            }
            // RFC 8415 §11.1: a DUID is a 2-byte type and at most 128 bytes more.
            "duid" => o.duid = Some(get_bytes(key, v, 4..=130)?),
            "iaid" => match v {
                Variant::U32(n) => o.iaid = Some(*n),
                _ => return Err(invalid(key, "expected a number (u)")),
            },
            "client-id" => o.client_id = Some(get_bytes(key, v, 2..=255)?),
            "hostname" => {
                let h = get_str(key, v)?;
                // NetworkManager sends the host name up to the first dot.
                let short = h.split('.').next().unwrap_or_default();
                match sanitize::dns_name(short) {
                    Ok(name) => o.hostname = Some(name),
                    Err(e) => warn!("not sending host name {}: {e}", sanitize::for_log(h.as_bytes())),
                }
            }
            "fqdn" => {
                let f = get_str(key, v)?;
                match sanitize::dns_name(&f) {
                    Ok(name) if name.contains('.') => o.fqdn = Some(name),
                    Ok(_) => return Err(invalid(key, "not a fully qualified name")),
                    Err(e) => return Err(invalid(key, e)),
                }
            }
            // RFC 4702's S, E and N bits.
            "fqdn-flags" => match v {
                Variant::U32(n) if *n & !0x0d == 0 => o.fqdn_flags = *n as u8,
                _ => return Err(invalid(key, "expected the S, E, N bits (u)")),
            },
            "send-hostname" => o.send_hostname = get_bool(key, v)?,
            "request-broadcast" => o.request_broadcast = get_bool(key, v)?,
            "rapid-commit" => o.rapid_commit = get_bool(key, v)?,
            "timeout" => match v {
                Variant::U32(n) => timeout = *n,
                _ => return Err(invalid(key, "expected seconds (u)")),
            },
            "acd-timeout" => match v {
                Variant::U32(n) if *n <= MAX_ACD_TIMEOUT => {
                    o.acd_timeout = (*n > 0).then(|| Duration::from_millis(u64::from(*n)));
                }
                Variant::U32(_) => return Err(invalid(key, format!("at most {MAX_ACD_TIMEOUT} ms"))),
                _ => return Err(invalid(key, "expected milliseconds (u)")),
            },
            "lease-file" => o.lease_file = Some(get_str(key, v)?),
            "uuid" => {
                let u = get_str(key, v)?;
                if u.is_empty() || u.len() > 64 || !u.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    return Err(invalid(key, "not a profile uuid"));
                }
                o.uuid = Some(u);
            }
            "vendor-class" => {
                let s = get_str(key, v)?;
                if s.is_empty() || s.len() > 255 {
                    return Err(invalid(key, "must be 1 to 255 bytes"));
                }
                o.vendor_class = Some(s.into_bytes());
            }
            "reject-servers" => {
                let list = Vec::<String>::try_from(v.try_clone().map_err(|e| invalid(key, e))?)
                    .map_err(|_| invalid(key, "expected strings (as)"))?;
                for item in list {
                    o.reject_servers
                        .push(parse_net(&item).ok_or_else(|| invalid(key, format!("bad address {item:?}")))?);
                }
            }
            "last-address" => {
                let s = get_str(key, v)?;
                o.last_address = Some(s.parse().map_err(|_| invalid(key, format!("bad address {s:?}")))?);
            }
            other => tracing::debug!("ignoring unknown Start option {other}"),
        }
    }
    o.timeout = (timeout != 0 && timeout < INFINITE_TIMEOUT).then(|| Duration::from_secs(u64::from(timeout)));
    match (o.ipv6, &o.v4_key, &o.v6_key) {
        (true, Some(k), _) => return Err(invalid(k, "is for family ipv4 only")),
        (false, _, Some(k)) => return Err(invalid(k, "is for family ipv6 only")),
        (true, None, _) if o.duid.is_none() => return Err(invalid("duid", "required with family ipv6")),
        _ => {}
    }
    Ok(o)
}

/// `a.b.c.d` or `a.b.c.d/n`.
fn parse_net(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, p.parse::<u8>().ok().filter(|p| *p <= 32)?),
        None => (s, 32),
    };
    Some((addr.parse().ok()?, prefix))
}

/// The lease file of a transaction: `lease-file` if given (an absolute path
/// inside the state dir), else `nm-rs-dhcp-<ifname>-<uuid>.lease` there
/// (`nm-rs-dhcp-<ifname>.lease` without a uuid).
fn lease_file(paths: &Paths, opts: &StartOptions, ifname: &str) -> fdo::Result<PathBuf> {
    if let Some(f) = &opts.lease_file {
        let p = Path::new(f);
        let inside = p.is_absolute()
            && p.starts_with(STATE_DIR)
            && p.components().all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
            && p.file_name().is_some()
            && p != Path::new(STATE_DIR);
        if !inside {
            return Err(invalid("lease-file", format!("must be an absolute path under {STATE_DIR}")));
        }
        return Ok(paths.path(p));
    }
    let name = match &opts.uuid {
        Some(u) => format!("nm-rs-dhcp-{ifname}-{u}.lease"),
        None => format!("nm-rs-dhcp-{ifname}.lease"),
    };
    Ok(paths.path(STATE_DIR).join(name))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What the lease file (or nm-core) says about an earlier lease.
fn previous(file: &Path, last_address: Option<Ipv4Addr>) -> Option<Previous> {
    if let Ok(text) = std::fs::read_to_string(file)
        && let Some((address, expiry)) = lease::parse_file(&text)
    {
        return Some(match expiry {
            Some(e) if e <= unix_now() => Previous::Hint(address),
            _ => Previous::Reboot(address),
        });
    }
    last_address.filter(|a| crate::packet::usable_address(*a)).map(Previous::Reboot)
}

fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom(2) into a local buffer of the stated size.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    if n == 8 { u64::from_ne_bytes(b) } else { nanos ^ u64::from(std::process::id()) << 32 }
}

/// The manager object.
pub struct Manager {
    pub shared: Arc<Shared>,
}

#[interface(name = "org.freedesktop.nm_dhcp_helper")]
impl Manager {
    /// Starts a DHCPv4 transaction on `ifindex` (DHCPv6 with "family"
    /// "ipv6", IPv4 link-local with "ipv4ll"); returns its object. A
    /// transaction of the same family already running on that interface is
    /// stopped first (the three families run side by side).
    async fn start(
        &self,
        ifindex: u32,
        options: HashMap<String, OwnedVariant>,
        #[zbus(connection)] bus: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> fdo::Result<OwnedObjectPath> {
        require_root(&self.shared, bus, &hdr, "start DHCP").await?;
        let owner = hdr.sender().map(|s| s.to_string()).unwrap_or_default();
        let opts = parse_options(&options)?;
        let link = net::link(ifindex).map_err(|e| invalid("ifindex", format!("{ifindex}: {e}")))?;
        let file = if opts.ipv6 { PathBuf::new() } else { lease_file(&self.shared.paths, &opts, &link.ifname)? };

        let old: Vec<_> = {
            let running = self.shared.running();
            let same = |r: &&Running| r.ifindex == ifindex && r.family == opts.family();
            running.values().filter(same).map(|r| r.control.clone()).collect()
        };
        for control in old {
            info!(device = %link.ifname, "a new Start replaces the running transaction");
            self.shared.stop(&control).await;
        }
        if opts.ipv6 {
            return self.start6(bus, opts, link, owner).await;
        }
        if opts.link_local {
            return self.start_ll(bus, opts, link, owner).await;
        }

        let raw = PacketSocket::open(ifindex)
            .map_err(|e| fdo::Error::Failed(format!("opening a packet socket on {}: {e}", link.ifname)))?;
        let client_id = opts.client_id.clone().unwrap_or_else(|| [&[1u8][..], &link.mac].concat());
        let params = ClientParams {
            mac: link.mac,
            client_id: client_id.clone(),
            hostname: if opts.send_hostname && opts.fqdn.is_none() { opts.hostname.clone() } else { None },
            fqdn: opts.fqdn.clone().filter(|_| opts.send_hostname).map(|name| (opts.fqdn_flags, name)),
            vendor_class: opts.vendor_class.clone(),
            request_broadcast: opts.request_broadcast,
            rapid_commit: opts.rapid_commit,
            max_message_size: u16::try_from(link.mtu.clamp(576, 65535)).unwrap_or(1500),
        };
        let prev = previous(&file, opts.last_address);
        let cfg = Config {
            params,
            timeout: opts.timeout,
            reject_servers: opts.reject_servers.clone(),
            previous: prev,
            acd: opts.acd_timeout,
        };
        let view = ClientView { requested: REQUESTED.iter().map(|(_, n)| *n).collect(), client_id, expiry: None };

        let (id, path, state, inbox) = self.register(bus, ifindex, Family::V4, owner).await?;
        info!(device = %link.ifname, transaction = id, lease_file = %file.display(), previous = ?prev, acd = ?cfg.acd, "DHCPv4 started");
        let setup = Setup { id, path: path.clone(), link, cfg, view, lease_file: file, state, seed: random_seed() };
        tokio::spawn(transaction::run(bus.clone(), self.shared.clone(), setup, raw, inbox));
        // The transaction sends its first packet before this reply goes out.
        tokio::task::yield_now().await;
        Ok(path)
    }
}

impl Manager {
    /// A new transaction's object on the bus and its entry among the
    /// running ones: (id, path, the `State` it publishes, its inbox).
    async fn register(
        &self,
        bus: &Connection,
        ifindex: u32,
        family: Family,
        owner: String,
    ) -> fdo::Result<(u32, OwnedObjectPath, Arc<Mutex<&'static str>>, mpsc::UnboundedReceiver<Control>)> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let path = transaction_path(id);
        let (control, inbox) = mpsc::unbounded_channel();
        let state = Arc::new(Mutex::new("init"));
        let iface = TransactionIface {
            state: state.clone(),
            control: control.clone(),
            shared: self.shared.clone(),
            ipv6: family == Family::V6,
        };
        bus.object_server().at(path.clone(), iface).await.map_err(|e| fdo::Error::Failed(e.to_string()))?;
        self.shared.running().insert(id, Running { ifindex, family, owner, control });
        Ok((id, path, state, inbox))
    }

    /// The DHCPv6 part of `Start`: its socket, machine and task.
    async fn start6(
        &self,
        bus: &Connection,
        opts: StartOptions,
        link: net::Link,
        owner: String,
    ) -> fdo::Result<OwnedObjectPath> {
        let duid = opts.duid.ok_or_else(|| invalid("duid", "required with family ipv6"))?;
        let sock = Udp6Socket::open(&link.ifname, link.ifindex)
            .map_err(|e| fdo::Error::Failed(format!("opening the DHCPv6 socket on {}: {e}", link.ifname)))?;
        // The default IAID: stable across restarts, so the server gives
        // the same address again.
        let iaid = opts.iaid.unwrap_or_else(|| fnv1a(link.ifname.as_bytes()));
        let cfg = Config6 { params: Params6 { duid, iaid }, stateless: opts.stateless, timeout: opts.timeout };
        let (id, path, state, inbox) = self.register(bus, link.ifindex, Family::V6, owner).await?;
        info!(device = %link.ifname, transaction = id, iaid = format!("0x{iaid:08x}"), stateless = cfg.stateless, "DHCPv6 started");
        let setup = Setup6 { id, path: path.clone(), link, cfg, state, seed: random_seed() };
        tokio::spawn(transaction6::run(bus.clone(), self.shared.clone(), setup, sock, inbox));
        Ok(path)
    }

    /// The IPv4 link-local part of `Start`: an ARP socket and the machine
    /// that probes for an address (over `acd-timeout`, 2 s by default).
    async fn start_ll(
        &self,
        bus: &Connection,
        opts: StartOptions,
        link: net::Link,
        owner: String,
    ) -> fdo::Result<OwnedObjectPath> {
        let sock = ArpSocket::open(link.ifindex)
            .map_err(|e| fdo::Error::Failed(format!("opening the ARP socket on {}: {e}", link.ifname)))?;
        let cfg = ConfigLl {
            mac: link.mac,
            probe_time: opts.acd_timeout.unwrap_or(LL_PROBE_TIME).max(Duration::from_millis(3)),
        };
        let (id, path, state, inbox) = self.register(bus, link.ifindex, Family::LinkLocal, owner).await?;
        info!(device = %link.ifname, transaction = id, "IPv4 link-local started");
        let setup = SetupLl { id, path: path.clone(), link, cfg, state, seed: random_seed() };
        tokio::spawn(transaction_ll::run(bus.clone(), self.shared.clone(), setup, sock, inbox));
        Ok(path)
    }
}

/// What a transaction is for; one of each may run per interface (IPv4
/// link-local beside DHCPv4 too, as `ipv4.link-local=enabled` asks).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
    LinkLocal,
}

impl StartOptions {
    fn family(&self) -> Family {
        match (self.ipv6, self.link_local) {
            (true, _) => Family::V6,
            (false, true) => Family::LinkLocal,
            (false, false) => Family::V4,
        }
    }
}

/// How long a link-local candidate is probed for unless the caller says:
/// about RFC 3927's three probes a second or two apart.
const LL_PROBE_TIME: Duration = Duration::from_secs(2);

/// One transaction on the bus.
pub struct TransactionIface {
    pub state: Arc<Mutex<&'static str>>,
    control: mpsc::UnboundedSender<Control>,
    shared: Arc<Shared>,
    ipv6: bool,
}

#[interface(name = "org.freedesktop.nm_dhcp_helper.Transaction")]
impl TransactionIface {
    /// Ends the transaction, sending DHCPRELEASE first when `release` and a
    /// lease is held; the object is gone when this returns.
    async fn stop(
        &self,
        release: bool,
        #[zbus(connection)] bus: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> fdo::Result<()> {
        require_root(&self.shared, bus, &hdr, "stop DHCP").await?;
        let (done, wait) = oneshot::channel();
        if self.control.send(Control::Stop { release, done }).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
        }
        Ok(())
    }

    /// DHCPv6 only: the leased `address` is in use by another host on the
    /// link (nm-core saw its duplicate address detection fail). The server
    /// is told (Decline) and the client solicits another address. (DHCPv4
    /// checks its addresses itself when `Start` asks: `acd-timeout`.)
    async fn decline(
        &self,
        address: &str,
        #[zbus(connection)] bus: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> fdo::Result<()> {
        require_root(&self.shared, bus, &hdr, "decline an address").await?;
        if !self.ipv6 {
            return Err(fdo::Error::NotSupported("Decline is for DHCPv6 transactions".into()));
        }
        let address = address.parse().map_err(|_| invalid("address", format!("'{address}' is not an IPv6 address")))?;
        // A transaction that just ended has nothing left to decline.
        let _ = self.control.send(Control::Decline { address });
        Ok(())
    }

    #[zbus(property)]
    fn state(&self) -> String {
        (*self.state.lock().unwrap_or_else(|p| p.into_inner())).to_owned()
    }

    #[zbus(signal)]
    pub async fn event(
        emitter: &SignalEmitter<'_>,
        state: &str,
        lease: HashMap<String, OwnedVariant>,
    ) -> zbus::Result<()>;
}

/// Ends the transactions of a client that left the bus (nm-core stopped or
/// crashed): the next nm-core starts its own.
pub async fn follow_owners(bus: Connection, shared: Arc<Shared>) {
    let Ok(dbus) = fdo::DBusProxy::new(&bus).await else {
        return;
    };
    let Ok(mut changes) = dbus.receive_name_owner_changed().await else {
        warn!("cannot follow NameOwnerChanged; transactions outlive their callers");
        return;
    };
    while let Some(signal) = changes.next().await {
        let Ok(args) = signal.args() else { continue };
        if args.new_owner().is_some() || !args.name().starts_with(':') {
            continue;
        }
        let gone = args.name().to_string();
        let orphans: Vec<_> = {
            let running = shared.running();
            running.iter().filter(|(_, r)| r.owner == gone).map(|(id, r)| (*id, r.control.clone())).collect()
        };
        for (id, control) in orphans {
            info!(transaction = id, "its caller {gone} left the bus; stopping");
            shared.stop(&control).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(entries: Vec<(&str, Variant<'static>)>) -> fdo::Result<StartOptions> {
        let map = entries.into_iter().map(|(k, v)| (k.to_string(), OwnedVariant::try_from(v).unwrap())).collect();
        parse_options(&map)
    }

    #[test]
    fn defaults() {
        let o = opts(vec![]).unwrap();
        assert!(o.send_hostname && !o.rapid_commit && !o.request_broadcast);
        assert_eq!(o.timeout, Some(Duration::from_secs(45)));
        assert_eq!(o.client_id, None);
        assert_eq!(o.acd_timeout, None);
    }

    #[test]
    fn acd_timeout_is_milliseconds() {
        let acd = |v: Variant<'static>| opts(vec![("acd-timeout", v)]).map(|o| o.acd_timeout);
        assert_eq!(acd(Variant::from(300u32)).unwrap(), Some(Duration::from_millis(300)));
        assert_eq!(acd(Variant::from(0u32)).unwrap(), None, "0 is off");
        assert_eq!(acd(Variant::from(MAX_ACD_TIMEOUT)).unwrap(), Some(Duration::from_secs(30)));
        assert!(acd(Variant::from(MAX_ACD_TIMEOUT + 1)).is_err());
        assert!(acd(Variant::from(300i32)).is_err(), "typed");
    }

    #[test]
    fn options_are_typed_and_checked() {
        let o = opts(vec![
            ("client-id", Variant::from(vec![0xffu8, 1, 2])),
            ("hostname", Variant::from("box.lab.test")),
            ("send-hostname", Variant::from(false)),
            ("rapid-commit", Variant::from(true)),
            ("timeout", Variant::from(0u32)),
            ("uuid", Variant::from("8fb923ad-bd8a-48c8-b85e-737628bb673a")),
            ("reject-servers", Variant::from(vec!["10.0.0.1".to_string(), "10.1.0.0/16".into()])),
            ("last-address", Variant::from("198.18.0.150")),
            ("something-new", Variant::from(1u32)),
        ])
        .unwrap();
        assert_eq!(o.client_id, Some(vec![0xff, 1, 2]));
        assert_eq!(o.hostname.as_deref(), Some("box"));
        assert!(!o.send_hostname && o.rapid_commit);
        assert_eq!(o.timeout, None);
        assert_eq!(o.reject_servers, [(Ipv4Addr::new(10, 0, 0, 1), 32), (Ipv4Addr::new(10, 1, 0, 0), 16)]);
        assert_eq!(o.last_address, Some(Ipv4Addr::new(198, 18, 0, 150)));

        assert!(opts(vec![("timeout", Variant::from("45"))]).is_err());
        assert!(opts(vec![("client-id", Variant::from(vec![1u8]))]).is_err());
        assert!(opts(vec![("uuid", Variant::from("../../etc/passwd"))]).is_err());
        assert!(opts(vec![("reject-servers", Variant::from(vec!["x".to_string()]))]).is_err());
        assert!(opts(vec![("last-address", Variant::from("nope"))]).is_err());
        // A bad host name is not sent, but does not fail the start.
        assert_eq!(opts(vec![("hostname", Variant::from("$(reboot)"))]).unwrap().hostname, None);
        assert_eq!(opts(vec![("timeout", Variant::from(INFINITE_TIMEOUT))]).unwrap().timeout, None);
    }

    #[test]
    fn ipv6_options_are_checked() {
        let duid = || ("duid", Variant::from(vec![0u8, 4, 1, 2, 3, 4]));
        let o = opts(vec![("family", Variant::from("ipv6")), duid(), ("iaid", Variant::from(7u32))]).unwrap();
        assert!(o.ipv6 && !o.stateless);
        assert_eq!((o.duid.as_deref(), o.iaid), (Some(&[0u8, 4, 1, 2, 3, 4][..]), Some(7)));
        let o = opts(vec![("family", Variant::from("ipv6")), ("mode", Variant::from("other")), duid()]).unwrap();
        assert!(o.stateless);
        assert!(!opts(vec![("family", Variant::from("ipv4"))]).unwrap().ipv6);
        for bad in [
            vec![("family", Variant::from("ipv7"))],
            vec![("family", Variant::from(6u32))],
            vec![("family", Variant::from("ipv6"))],
            vec![("family", Variant::from("ipv6")), ("duid", Variant::from(vec![0u8, 4, 1]))],
            vec![("family", Variant::from("ipv6")), ("duid", Variant::from(vec![0u8; 131]))],
            vec![("family", Variant::from("ipv6")), duid(), ("mode", Variant::from("stateful"))],
            vec![("family", Variant::from("ipv6")), duid(), ("iaid", Variant::from("1"))],
            vec![("family", Variant::from("ipv6")), duid(), ("hostname", Variant::from("box"))],
            vec![("family", Variant::from("ipv6")), duid(), ("client-id", Variant::from(vec![1u8, 2]))],
            vec![duid()],
            vec![("mode", Variant::from("managed"))],
        ] {
            let err = opts(bad.clone()).expect_err("refused");
            assert!(matches!(err, fdo::Error::InvalidArgs(_)), "{bad:?}: {err}");
        }
        assert_eq!(fnv1a(b""), 0x811c_9dc5);
        assert_eq!(fnv1a(b"a"), 0xe40c_292c);
    }

    #[test]
    fn lease_files_stay_in_the_state_dir() {
        let paths = Paths::new(Some(Path::new("/tmp/lab")));
        let mut o = StartOptions { uuid: Some("u-1".into()), ..Default::default() };
        assert_eq!(
            lease_file(&paths, &o, "eth0").unwrap(),
            Path::new("/tmp/lab/var/lib/NetworkManager/nm-rs-dhcp-eth0-u-1.lease")
        );
        o.lease_file = Some("/var/lib/NetworkManager/sub/x.lease".into());
        assert_eq!(lease_file(&paths, &o, "eth0").unwrap(), Path::new("/tmp/lab/var/lib/NetworkManager/sub/x.lease"));
        for bad in [
            "/etc/shadow",
            "var/lib/NetworkManager/x",
            "/var/lib/NetworkManager/../../etc/x",
            "/var/lib/NetworkManager",
        ] {
            o.lease_file = Some(bad.into());
            assert!(lease_file(&paths, &o, "eth0").is_err(), "{bad}");
        }
    }

    #[test]
    fn previous_lease_decides_init_reboot() {
        let dir = std::env::temp_dir().join(format!("nm-dhcp-helper-prev-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("l.lease");
        let a = Ipv4Addr::new(198, 18, 0, 150);
        assert_eq!(previous(&f, None), None);
        assert_eq!(previous(&f, Some(a)), Some(Previous::Reboot(a)));
        std::fs::write(&f, format!("ADDRESS={a}\nLEASE_TIME=60\nEXPIRY={}\n", unix_now() + 100)).unwrap();
        assert_eq!(previous(&f, None), Some(Previous::Reboot(a)));
        std::fs::write(&f, format!("ADDRESS={a}\nLEASE_TIME=60\nEXPIRY={}\n", unix_now() - 1)).unwrap();
        assert_eq!(previous(&f, None), Some(Previous::Hint(a)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_fqdn_replaces_the_host_name() {
        let o = opts(vec![("fqdn", Variant::from("box.lab.test")), ("fqdn-flags", Variant::from(5u32))]).unwrap();
        assert_eq!((o.fqdn.as_deref(), o.fqdn_flags), (Some("box.lab.test"), 5));
        assert!(opts(vec![("fqdn", Variant::from("box"))]).is_err(), "not qualified");
        assert!(opts(vec![("fqdn", Variant::from("$(x).lab"))]).is_err());
        assert!(opts(vec![("fqdn-flags", Variant::from(2u32))]).is_err(), "the O bit is the server's");
    }
}
