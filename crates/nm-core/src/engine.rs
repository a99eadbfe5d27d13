//! The engine: one task that owns every device, profile and active
//! connection, and turns inputs (kernel events, settings changes, D-Bus
//! calls, timers) into kernel changes and bus updates. Decisions are made by
//! the pure modules (`device`, `policy`, `ipconfig`, `dns`); this file is the
//! order in which things happen, which is what clients observe.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use nm_dbus::errors::NmError;
use nm_dbus::names::{SECRETS_INTERFACE, SYSTEM_SETTINGS};
use nm_dbus::{settings_from_wire, settings_to_wire};
use nm_model::dbus_dict::{self, SettingsDict};
use nm_model::text::format_mac;
use nm_model::{Connection, Value, validate};
use nm_platform::ethtool::EthtoolBlock;
use nm_platform::{
    Address, BridgeVlan, Family, IFA_F_DADFAILED, IFA_F_PERMANENT, IFA_F_TENTATIVE, Link, LinkDetails, LinkKind,
    NewLink, Platform, PlatformError, PlatformEvent, RTPROT_KERNEL, RTPROT_RA, Route, RouteFilter,
};
use nm_runtime::Paths;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};
use zbus::{Connection as Bus, OwnedObjectPath, Variant};

use crate::agents;
use crate::api::{self, *};
use crate::auto_default;
use crate::bridge;
use crate::checkpoint::{self, Activation, ProfileStep};
use crate::config::{Config, DnsMode};
use crate::device::{AcState, DeviceState, DeviceType, LinkFacts, ac_reason, is_managed, reason, spec_list_matches};
use crate::dhcp;
use crate::dhcp_client::{self, DhcpEvent};
use crate::dhcp6;
use crate::dispatcher::{self, Dispatch};
use crate::dns;
use crate::ethtool;
use crate::ipconfig::{self, AddrGen, FamilyMethod, MacChoice, Plan, PlannedAddress};
use crate::ndisc;
use crate::policy::{self, Candidate, DeviceView, Retries};
use crate::settings_view::{self, Owner, Remote, SettingsEvent, Snapshot, Source, Storage};
use crate::software;
use crate::state_files::{self, DeviceRecord};
use crate::supplicant;
use crate::tc;

type Reply<T> = oneshot::Sender<Result<T, NmError>>;

pub enum Input {
    Platform(PlatformEvent),
    Dhcp(DhcpEvent),
    /// nm-dhcp-helper came onto the bus (true) or left it (false).
    DhcpHelper(bool),
    Settings(Source, SettingsEvent),
    Call(Call),
    Timer(Timer),
    /// An answer for the 802.1X stage of an activation.
    Auth(u32, AuthInput),
    /// An LLDP frame arrived on the link with this ifindex.
    Lldp(u32, Vec<u8>),
}

pub enum AuthInput {
    /// The stored secrets from the profile's settings service.
    ServiceSecrets(Result<SettingsDict, NmError>),
    /// What the secret agents gave, if anything.
    AgentSecrets(agents::Answer),
    Supplicant(supplicant::Event),
}

pub enum Timer {
    /// The carrier of a device has been gone for the grace period.
    CarrierGrace { device: u32, since: Instant },
    /// Start-up's wait for carriers is over.
    StartupWait,
    /// A profile's autoconnect block may have expired.
    RetryCheck,
    /// Write the timestamps file (batched: one write for many activations).
    FlushTimestamps,
    /// Give freed heap back to the system.
    TrimHeap,
    /// LLDP neighbours of a device may have outlived their TTL.
    LldpExpiry { device: u32 },
    /// An activation failed while its ActivateConnection call was being
    /// answered: it is torn down after the reply, so that the client first
    /// sees the object the reply names (libnm insists), then its failure.
    Failed { ac: u32, reason: u32 },
    /// The dispatcher has run an activation's pre-up scripts.
    PreUpDone { ac: u32 },
    /// An activation waited its DHCP timeout for nm-dhcp-helper to appear.
    DhcpHelperWait { ac: u32 },
    /// `ipv6.method=dhcp` had no transaction running (the link-local
    /// address never left DAD, or no helper) within its DHCP timeout.
    Dhcp6Wait { ac: u32 },
    /// A checkpoint's rollback timeout (unless adjusted since: `generation`).
    CheckpointTimeout { id: u32, generation: u32 },
    /// Someone changed the addresses of an idle device: it is looked at
    /// once their burst is over (addresses come before their routes).
    External { ifindex: u32 },
}

pub enum Call {
    CheckpointCreate {
        devices: Vec<OwnedObjectPath>,
        rollback_timeout: u32,
        flags: u32,
        reply: Reply<OwnedObjectPath>,
    },
    CheckpointDestroy {
        checkpoint: OwnedObjectPath,
        reply: Reply<()>,
    },
    CheckpointRollback {
        checkpoint: OwnedObjectPath,
        reply: Reply<HashMap<String, u32>>,
    },
    CheckpointAdjust {
        checkpoint: OwnedObjectPath,
        add_timeout: u32,
        reply: Reply<()>,
    },
    DeviceByIface {
        iface: String,
        reply: Reply<OwnedObjectPath>,
    },
    Activate {
        connection: OwnedObjectPath,
        device: OwnedObjectPath,
        reply: Reply<OwnedObjectPath>,
    },
    AddAndActivate {
        dict: SettingsDict,
        device: OwnedObjectPath,
        reply: Reply<(OwnedObjectPath, OwnedObjectPath)>,
    },
    Deactivate {
        active: OwnedObjectPath,
        reply: Reply<()>,
    },
    Sleep {
        sleep: bool,
        reply: Reply<()>,
    },
    EnableNetworking {
        enable: bool,
        reply: Reply<()>,
    },
    /// Write the resolver file again, even when nm-core's last text is
    /// unchanged (`Reload` with a DNS flag).
    RewriteDns {
        reply: Reply<()>,
    },
    ConnectionByUuid {
        uuid: String,
        reply: Reply<OwnedObjectPath>,
    },
    AddConnection {
        dict: SettingsDict,
        save: bool,
        reply: Reply<OwnedObjectPath>,
    },
    UpdateConnection {
        id: u32,
        dict: SettingsDict,
        to_disk: bool,
        reply: Reply<()>,
    },
    DeleteConnection {
        id: u32,
        reply: Reply<()>,
    },
    GetSecrets {
        id: u32,
        setting: String,
        reply: Reply<SettingsDict>,
    },
    DeviceDelete {
        id: u32,
        reply: Reply<()>,
    },
    DeviceDisconnect {
        id: u32,
        reply: Reply<()>,
    },
    AppliedConnection {
        id: u32,
        reply: Reply<SettingsDict>,
    },
    SetDeviceAutoconnect {
        id: u32,
        value: bool,
        reply: Reply<()>,
    },
    SetManaged {
        id: u32,
        value: bool,
        reply: Reply<()>,
    },
    Reapply {
        id: u32,
        dict: SettingsDict,
        reply: Reply<()>,
    },
    SaveHostname {
        hostname: String,
        reply: Reply<()>,
    },
}

struct Profile {
    path: OwnedObjectPath,
    /// Which settings service has it, and its path there.
    source: Source,
    remote: OwnedObjectPath,
    uuid: String,
    props: Props<ConnectionProps>,
    /// Type and interface name, for matching without the settings lookups.
    binding: policy::Binding,
}

impl Device {
    /// Where a managed device rests without an activation: DISCONNECTED,
    /// or UNAVAILABLE while it waits for a carrier it needs.
    fn idle_state(&self) -> DeviceState {
        if self.kind.needs_carrier() && !self.carrier { DeviceState::Unavailable } else { DeviceState::Disconnected }
    }
}

impl Profile {
    /// The profile (shared, not copied: policy looks at every profile often).
    fn conn(&self) -> Arc<Connection> {
        self.props.lock().conn.clone()
    }
}

/// The host's kernel command line in words (read once: it does not change
/// while the system runs), for `match.kernel-command-line`.
fn kernel_cmdline() -> &'static [String] {
    static WORDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    WORDS.get_or_init(|| {
        std::fs::read_to_string("/proc/cmdline").map(|t| policy::split_kernel_cmdline(&t)).unwrap_or_default()
    })
}

struct Device {
    path: OwnedObjectPath,
    ifindex: u32,
    name: String,
    kind: DeviceType,
    perm_mac: Option<Vec<u8>>,
    driver: Option<String>,
    /// The link the kernel names as this one's parent (`IFLA_LINK`: a
    /// veth's peer, a macvlan's lower link), when it is in this namespace.
    link_parent: Option<u32>,
    managed: bool,
    state: DeviceState,
    carrier: bool,
    /// `Device.Autoconnect`; `Disconnect()` clears it until a manual activation.
    autoconnect: bool,
    active: Option<u32>,
    /// The default route metric this device uses while active.
    metric: u32,
    carrier_lost: Option<Instant>,
    /// The MTU the link had before an activation first changed it, given
    /// back when the activation ends (as NetworkManager resets it).
    mtu_initial: Option<u32>,
    /// Whether it was looked at for an auto-default profile (once a device).
    auto_default_checked: bool,
    /// An unmanaged device's IP4Config and IP6Config: what the kernel has
    /// on it ([`Engine::show_kernel_ip`]).
    kernel_ip: [Option<(OwnedObjectPath, Props<IpProps>)>; 2],
    /// The LLDP listener while an activation asks for one, and when each
    /// neighbour's information runs out.
    lldp: Option<LldpWatch>,
    props: Props<DeviceProps>,
}

/// A device's LLDP reception: the task reading its packet socket (ended
/// with the watch) and the expiry of each neighbour in `DeviceProps.lldp`.
struct LldpWatch {
    task: tokio::task::JoinHandle<()>,
    expires: Vec<Instant>,
    /// When the one expiry timer of the device fires (`None`: none set).
    timer_at: Option<Instant>,
}

/// At most this many LLDP neighbours per device (as systemd's LLDP client,
/// NetworkManager's): a flood of made-up chassis ids costs no more.
const MAX_LLDP_NEIGHBORS: usize = 128;

impl Drop for LldpWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where DHCPv4 of an activation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum V4Status {
    /// Not DHCP (static, disabled, …).
    NotUsed,
    Waiting,
    Bound,
    Failed,
}

struct Dhcp4 {
    status: V4Status,
    transaction: Option<OwnedObjectPath>,
    /// The lease as the helper gave it, planned again when a reapply
    /// changes what the profile makes of it (route metric, never-default…).
    held: Option<Box<dhcp::Lease>>,
    lease: dhcp::LeasePlan,
    config: Option<(OwnedObjectPath, Props<BTreeMap<String, String>>)>,
}

/// The IPv4 link-local address an activation has beside its method's
/// (`ipv4.link-local=enabled`, [`dhcp::link_local_beside`]): nm-dhcp-helper
/// probes for it as for `method=link-local`; it never holds the
/// activation up.
#[derive(Default)]
struct LinkLocal4 {
    transaction: Option<OwnedObjectPath>,
    lease: dhcp::LeasePlan,
}

/// DHCPv6 of an activation: asked for by the profile (`dhcp`) or by a
/// router (`auto`, see [`dhcp6::mode_for_router`]). It never holds the
/// activation up: `auto` completes with the router's part, as the kernel
/// does it, and the lease comes when it comes.
#[derive(Default)]
struct Dhcp6 {
    /// Asked for, and how (kept while the helper is away, to ask again).
    mode: Option<dhcp6::Mode>,
    transaction: Option<OwnedObjectPath>,
    lease: dhcp6::LeasePlan,
    config: Option<(OwnedObjectPath, Props<BTreeMap<String, String>>)>,
    /// No lease came in time: the activation stops waiting for one.
    gave_up: bool,
}

/// How an activation starts (NetworkManager's activation types).
#[derive(Debug, PartialEq, Eq)]
enum ActivationType {
    /// Configures the device as the profile says.
    Full,
    /// Takes back what a recorded activation left in the kernel (after a
    /// restart): the same steps without taking anything down.
    Assume,
    /// Shows configuration someone else made ("connected (externally)"),
    /// as the kernel has it: nothing is set, and it ends when that
    /// configuration goes.
    External(Box<KernelConfig>),
}

/// What the kernel has on a device: its addresses (but IPv6 link-local)
/// and its routes in the main table, as they are.
#[derive(Debug, PartialEq, Eq)]
struct KernelConfig {
    addresses: Vec<PlannedAddress>,
    routes: Vec<ipconfig::PlannedRoute>,
}

impl KernelConfig {
    /// The gateway of the family's default route.
    fn gateway(&self, v6: bool) -> Option<IpAddr> {
        self.routes.iter().find(|r| r.is_default() && r.dest.is_ipv6() == v6)?.gateway
    }

    /// A plan that shows this configuration instead of the profile's.
    fn show_in(self, plan: &mut Plan) {
        plan.gateway4 = match self.gateway(false) {
            Some(IpAddr::V4(g)) => Some(g),
            _ => None,
        };
        plan.gateway6 = match self.gateway(true) {
            Some(IpAddr::V6(g)) => Some(g),
            _ => None,
        };
        plan.addresses = self.addresses;
        plan.routes = self.routes;
    }
}

struct Active {
    path: OwnedObjectPath,
    profile: u32,
    device: u32,
    state: AcState,
    /// What the profile asks by itself ([`Engine::static_plan`]) plus the
    /// leases.
    plan: Plan,
    /// The profile's routing rules, added at ip-config and removed with
    /// the activation (kept apart from `plan`, which leases re-apply:
    /// the kernel would take a rule twice).
    rules: Vec<nm_platform::Rule>,
    dhcp: Dhcp4,
    dhcp6: Dhcp6,
    link_local: LinkLocal4,
    assumed: bool,
    /// An external activation ([`ActivationType::External`]).
    external: bool,
    conn: Arc<Connection>,
    ip4: Option<(OwnedObjectPath, Props<IpProps>)>,
    ip6: Option<(OwnedObjectPath, Props<IpProps>)>,
    props: Props<ActiveProps>,
    /// Started by a user (not by autoconnect): a failure does not count
    /// against the profile's retries.
    by_user: bool,
    /// In IP_CHECK, waiting for the dispatcher's pre-up scripts.
    pre_up_pending: bool,
    /// The 802.1X stage, for profiles with an `802-1x` setting.
    auth: Option<Auth8021x>,
    /// `ipv4.method=shared`: dnsmasq and the firewall table, while up.
    sharing: Option<crate::shared::Sharing>,
    /// What the device had before the profile's `ethtool` setting changed
    /// it, put back when the activation ends.
    ethtool_saved: Option<EthtoolSaved>,
    /// The link's promiscuous mode before `accept-all-mac-addresses`
    /// changed it, put back when the activation ends.
    promisc_initial: Option<bool>,
}

/// Every VLAN id, to empty a bridge's or a port's VLAN table.
const EVERY_VLAN: BridgeVlan = BridgeVlan { start: 1, end: 4094, pvid: false, untagged: false };

/// A device's offload features and settings groups as they were before an
/// activation changed them (only what it changed).
struct EthtoolSaved {
    features: Vec<(String, bool)>,
    blocks: Vec<(EthtoolBlock, Vec<(usize, u32)>)>,
}

/// The 802.1X stage of an activation (dropped with it: the agents' request
/// is cancelled and wpa_supplicant's interface removed).
struct Auth8021x {
    machine: supplicant::Machine,
    session: Option<supplicant::Session>,
    /// Dropping it cancels the request to the agents.
    cancel: Option<oneshot::Sender<()>>,
}

/// A checkpoint: the snapshot (`checkpoint.rs`) and its bus object.
struct Checkpoint {
    path: OwnedObjectPath,
    flags: u32,
    devices: Vec<checkpoint::DeviceSnapshot>,
    /// The profiles (uuids) and devices there were, for the flags that
    /// delete new profiles and disconnect new devices at rollback.
    profiles: Vec<String>,
    known_devices: Vec<u32>,
    /// Bumped when the timeout is adjusted: an older timer is stale.
    generation: u32,
    props: Props<api::CheckpointProps>,
}

#[derive(Default)]
struct Counters {
    checkpoint: u32,
    profile: u32,
    device: u32,
    active: u32,
    ip4: u32,
    ip6: u32,
    dhcp4: u32,
    dhcp6: u32,
}

fn next(n: &mut u32) -> u32 {
    *n += 1;
    *n
}

pub struct Engine {
    bus: Bus,
    /// What the engine emits, sent together (see [`Outbox`]).
    out: Outbox,
    platform: Platform,
    tx: mpsc::UnboundedSender<Input>,
    handle: EngineHandle,
    paths: Paths,
    config: Config,
    manager: Props<ManagerProps>,
    settings: Props<SettingsProps>,
    dns_props: Props<DnsProps>,
    agents: agents::Registry,
    profiles: BTreeMap<u32, Profile>,
    devices: BTreeMap<u32, Device>,
    /// Boxed: an `Active` holds two plans and is large, and a map node has
    /// room for eleven entries whether it holds them or not.
    actives: BTreeMap<u32, Box<Active>>,
    counters: Counters,
    checkpoints: BTreeMap<u32, Checkpoint>,
    timestamps: BTreeMap<String, u64>,
    retries: HashMap<String, Retries>,
    /// The first list of profiles arrived (or the service is absent).
    settings_known: bool,
    /// Whether nm-dispatcher is installed (or running).
    dispatcher: dispatcher::Presence,
    /// True once nm-core hears nm-dhcp-helper's events (see [`Engine::follow`]).
    dhcp_subscribed: tokio::sync::watch::Receiver<bool>,
    /// Handed to the task that subscribes, when it starts.
    dhcp_subscribed_tx: Option<tokio::sync::watch::Sender<bool>>,
    /// The user whose settings service is on the bus.
    user_owner: Option<Owner>,
    /// Start-up's wait for carriers is over.
    carrier_wait_over: bool,
    startup: bool,
    networking_enabled: bool,
    /// Put to sleep (`Manager.Sleep`, or logind's PrepareForSleep before a
    /// suspend). Asleep, or with networking off, the managed devices are
    /// down and unmanaged (reason SLEEPING) and the manager's state is
    /// ASLEEP, as NetworkManager's.
    sleeping: bool,
    last_resolv: Option<String>,
    /// What systemd-resolved was told per link index, when it is used, and
    /// the task that tells it (started at the first use).
    resolved_links: BTreeMap<u32, crate::resolved::LinkDns>,
    resolved: Option<crate::resolved::Sender>,
    timestamps_dirty: bool,
    /// Devices that get no auto-default profile: the configuration's specs
    /// and those of the state file (the user deleted theirs).
    no_auto_default: Vec<String>,
    /// Auto-default profiles nm-core made and nobody changed: profile → device.
    default_wired: BTreeMap<u32, u32>,
    /// While autoconnect starts a batch of activations (no caller waits on
    /// them), the Manager's properties are published once at the end
    /// instead of at every step of every activation.
    publishing_deferred: bool,
    publish_pending: bool,
    /// In [`Engine::discover`]: the bus name is not owned yet.
    discovering: bool,
}

/// How long a device someone configures is left to them before nm-core
/// describes it (their routes follow their addresses).
const EXTERNAL_SETTLE: Duration = Duration::from_millis(200);

/// How long timestamps may wait before they are written.
const TIMESTAMPS_DELAY: Duration = Duration::from_secs(2);

fn err_unknown_connection(what: &str) -> NmError {
    NmError::manager("UnknownConnection", format!("Connection '{what}' is not known"))
}

/// A profile that went while a call about it waited its turn (deleted by
/// another client, or its service left the bus).
fn err_profile_gone(id: u32) -> NmError {
    NmError::manager("UnknownConnection", format!("The connection {} was deleted", api::path("Settings", id)))
}

impl Engine {
    pub async fn start(
        bus: Bus,
        platform: Platform,
        paths: Paths,
        config: Config,
    ) -> anyhow::Result<(Self, mpsc::UnboundedReceiver<Input>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = EngineHandle(tx.clone());
        let manager = Props::new(ManagerProps::default());
        let settings = Props::new(SettingsProps::default());
        let dns_props = Props::new(DnsProps {
            mode: match config.core.dns {
                DnsMode::File => "default".into(),
                DnsMode::SystemdResolved => "systemd-resolved".into(),
                DnsMode::None => "none".into(),
            },
            ..Default::default()
        });
        let out = Outbox::new(bus.clone());
        // Quiet until `discover` has exported the devices: nm-core asks
        // for its name only then, and no client hears it before.
        out.set_quiet(true);
        // Straight to zbus: the object manager is not one of the objects it
        // lists or announces (nor does NetworkManager's).
        bus.object_server().at(api::OBJECT_MANAGER_PATH, ObjectManagerIface { out: out.clone() }).await?;
        let server = out.clone();
        server.at(NM_PATH, ManagerIface { props: manager.clone(), engine: handle.clone() }).await?;
        server.at(SETTINGS_PATH, SettingsIface { props: settings.clone(), engine: handle.clone() }).await?;
        let agents = agents::Registry::default();
        server.at(AGENT_MANAGER_PATH, AgentManagerIface { agents: agents.clone() }).await?;
        server.at(DNS_MANAGER_PATH, DnsManagerIface { props: dns_props.clone() }).await?;
        let timestamps = state_files::load_timestamps(&paths);
        let mut no_auto_default = config.core.no_auto_default.clone();
        if let Ok(text) = std::fs::read_to_string(paths.path(auto_default::STATE_FILE)) {
            no_auto_default.extend(auto_default::parse_state(&text));
        }
        let (dhcp_subscribed_tx, dhcp_subscribed) = tokio::sync::watch::channel(false);
        let engine = Engine {
            out,
            bus,
            platform,
            tx,
            handle,
            paths,
            config,
            manager,
            settings,
            dns_props,
            agents,
            profiles: BTreeMap::new(),
            devices: BTreeMap::new(),
            actives: BTreeMap::new(),
            counters: Counters::default(),
            checkpoints: BTreeMap::new(),
            timestamps,
            retries: HashMap::new(),
            settings_known: false,
            dispatcher: dispatcher::Presence::default(),
            dhcp_subscribed,
            dhcp_subscribed_tx: Some(dhcp_subscribed_tx),
            user_owner: None,
            carrier_wait_over: false,
            startup: true,
            networking_enabled: true,
            sleeping: false,
            last_resolv: None,
            resolved_links: BTreeMap::new(),
            resolved: None,
            timestamps_dirty: false,
            no_auto_default,
            default_wired: BTreeMap::new(),
            publishing_deferred: false,
            publish_pending: false,
            discovering: false,
        };
        Ok((engine, rx))
    }

    /// Exports every link the kernel has. Before the bus name is owned no
    /// client listens: the device list is published once at the end, not
    /// once per device (300 devices: 45,000 paths sent), and no
    /// DeviceAdded goes out.
    pub async fn discover(&mut self) {
        self.discovering = true;
        for link in self.platform.links() {
            self.link_appeared(link).await;
        }
        self.discovering = false;
        self.publish_devices().await;
        self.out.set_quiet(false);
        self.out.send_queued().await;
    }

    /// Starts the start-up carrier wait and following the other services.
    /// zbus makes one subscription (AddMatch) at a time, each a round trip,
    /// so the order is the order of need: the system settings first (no
    /// profile, no activation), then nm-dhcp-helper's events (an activation
    /// that reaches DHCP first waits for them: `dhcp_subscribed`), then the
    /// dispatcher, a user's settings, agents and polkit.
    pub fn follow(&mut self) {
        let wait = Duration::from_millis(self.config.core.carrier_wait_ms);
        self.schedule(wait, Timer::StartupWait);
        self.follow_settings(Source::System);
        if let Some(subscribed) = self.dhcp_subscribed_tx.take() {
            let (bus, tx) = (self.bus.clone(), self.tx.clone());
            tokio::spawn(async move {
                if let Err(e) = dhcp_client::watch(bus, tx, subscribed).await {
                    warn!("following DHCP events stopped: {e}");
                }
            });
        }
        let (bus, presence) = (self.bus.clone(), self.dispatcher.clone());
        tokio::spawn(async move {
            if let Err(e) = dispatcher::watch(bus, presence).await {
                warn!("following nm-dispatcher's presence stopped: {e}");
            }
        });
        self.follow_settings(Source::User);
        agents::spawn_name_watch(self.bus.clone(), self.agents.clone());
        let (bus, handle) = (self.bus.clone(), self.handle.clone());
        tokio::spawn(async move {
            if let Err(e) = crate::logind::watch(bus, handle).await {
                warn!("following logind's sleep signals stopped: {e}");
            }
        });
    }

    fn follow_settings(&self, source: Source) {
        let (bus, tx) = (self.bus.clone(), self.tx.clone());
        // A user's service comes and goes with their session: no wait.
        let wait = (source == Source::System).then(|| Duration::from_millis(self.config.core.settings_wait_ms));
        tokio::spawn(async move {
            if let Err(e) = settings_view::run(bus, tx, source, wait).await {
                warn!("following {} stopped: {e}", source.bus_name());
            }
        });
    }

    /// Writes what waits to be written (also on the way out).
    pub fn flush(&mut self) {
        if self.timestamps_dirty {
            state_files::save_timestamps(&self.paths, &self.timestamps);
            self.timestamps_dirty = false;
        }
    }

    fn schedule(&self, after: Duration, timer: Timer) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = tx.send(Input::Timer(timer));
        });
    }

    pub async fn handle(&mut self, input: Input) {
        match input {
            Input::Platform(e) => self.platform_event(e).await,
            Input::Settings(source, e) => self.settings_event(source, e).await,
            Input::Call(c) => self.call(c).await,
            Input::Timer(t) => self.timer(t).await,
            Input::Dhcp(e) => self.dhcp_event(e).await,
            Input::DhcpHelper(present) => self.dhcp_helper(present).await,
            Input::Auth(ac, e) => self.auth_input(ac, e).await,
            Input::Lldp(ifindex, frame) => self.lldp_frame(ifindex, &frame).await,
        }
        self.check_startup().await;
        self.out.send_queued().await;
    }

    // ------------------------------------------------------------ calls ---

    async fn call(&mut self, call: Call) {
        match call {
            Call::DeviceByIface { iface, reply } => {
                let r = self.devices.values().find(|d| d.name == iface).map(|d| d.path.clone()).ok_or_else(|| {
                    NmError::manager("UnknownDevice", format!("No device found for the requested iface '{iface}'"))
                });
                self.out.send_queued().await;
                let _ = reply.send(r);
            }
            Call::Activate { connection, device, reply } => {
                let r = self.activate_call(&connection, &device).await;
                self.out.send_queued().await;
                let _ = reply.send(r);
            }
            Call::AddAndActivate { dict, device, reply } => {
                let r = self.add_and_activate(dict, &device).await;
                self.out.send_queued().await;
                let _ = reply.send(r);
            }
            Call::Deactivate { active, reply } => {
                let id = self.actives.iter().find(|(_, a)| a.path == active).map(|(id, _)| *id);
                let r = match id {
                    Some(id) => {
                        let profile = self.actives[&id].profile;
                        if let Some(uuid) = self.profiles.get(&profile).map(|p| p.uuid.clone()) {
                            self.retries_for(&uuid).blocked_by_user = true;
                        }
                        self.deactivate(id, reason::USER_REQUESTED, ac_reason::USER_DISCONNECTED).await;
                        // Only that profile is blocked: the device may take
                        // another one (`device disconnect` is what stops it).
                        self.autoconnect_all().await;
                        Ok(())
                    }
                    None => {
                        Err(NmError::manager("ConnectionNotActive", format!("The connection {active} was not active")))
                    }
                };
                self.out.send_queued().await;
                let _ = reply.send(r);
            }
            Call::CheckpointCreate { devices, rollback_timeout, flags, reply } => {
                let r = self.checkpoint_create(devices, rollback_timeout, flags).await;
                self.out.send_queued().await;
                let _ = reply.send(r);
            }
            Call::CheckpointDestroy { checkpoint, reply } => {
                let r = match self.checkpoint_id(&checkpoint) {
                    Ok(id) => {
                        self.checkpoint_destroy(id).await;
                        Ok(())
                    }
                    Err(e) => Err(e),
                };
                self.out.send_queued().await;
                let _ = reply.send(r);
            }
            Call::CheckpointRollback { checkpoint, reply } => {
                let r = match self.checkpoint_id(&checkpoint) {
                    Ok(id) => Ok(self.checkpoint_rollback(id).await),
                    Err(e) => Err(e),
                };
                self.out.send_queued().await;
                let _ = reply.send(r);
            }
            Call::CheckpointAdjust { checkpoint, add_timeout, reply } => {
                let r = self.checkpoint_id(&checkpoint).map(|id| self.checkpoint_adjust(id, add_timeout));
                self.out.send_queued().await;
                let _ = reply.send(r);
            }
            Call::Sleep { sleep, reply } => {
                let r = if self.sleeping == sleep {
                    Err(NmError::manager(
                        "AlreadyAsleepOrAwake",
                        if sleep { "Already asleep" } else { "Already awake" },
                    ))
                } else {
                    self.set_sleeping(sleep).await;
                    Ok(())
                };
                self.out.send_queued().await;
                let _ = reply.send(r);
            }
            Call::EnableNetworking { enable, reply } => {
                let r = if self.networking_enabled == enable {
                    let what = if enable { "Already enabled" } else { "Already disabled" };
                    Err(NmError::manager("AlreadyEnabledOrDisabled", what))
                } else {
                    self.enable_networking(enable).await;
                    Ok(())
                };
                self.out.send_queued().await;
                let _ = reply.send(r);
            }
            Call::ConnectionByUuid { uuid, reply } => {
                let r = self
                    .profiles
                    .values()
                    .find(|p| p.uuid == uuid)
                    .map(|p| p.path.clone())
                    .ok_or_else(|| err_unknown_connection(&uuid));
                self.out.send_queued().await;
                let _ = reply.send(r);
            }
            Call::AddConnection { dict, save, reply } => {
                let r = self.add_connection(dict, save).await.map(|id| self.profiles[&id].path.clone());
                self.out.send_queued().await;
                let _ = reply.send(r);
            }
            Call::UpdateConnection { id, dict, to_disk, reply } => {
                let r = self.update_connection(id, dict, to_disk).await;
                self.out.send_queued().await;
                let _ = reply.send(r);
            }
            Call::DeleteConnection { id, reply } => {
                let r = self.delete_connection(id).await;
                self.out.send_queued().await;
                let _ = reply.send(r);
            }
            Call::GetSecrets { id, setting, reply } => {
                let r = self.get_secrets(id, &setting).await;
                self.out.send_queued().await;
                let _ = reply.send(r);
            }
            Call::DeviceDelete { id, reply } => {
                let r = self.delete_device(id).await;
                self.out.send_queued().await;
                let _ = reply.send(r);
            }
            Call::DeviceDisconnect { id, reply } => {
                let r = match self.devices.get(&id).and_then(|d| d.active) {
                    Some(ac) => {
                        if let Some(d) = self.devices.get_mut(&id) {
                            d.autoconnect = false;
                        }
                        self.deactivate(ac, reason::USER_REQUESTED, ac_reason::USER_DISCONNECTED).await;
                        self.device_autoconnect_changed(id).await;
                        Ok(())
                    }
                    None => Err(NmError::device("NotActive", "This device is not active")),
                };
                self.out.send_queued().await;
                let _ = reply.send(r);
            }
            Call::AppliedConnection { id, reply } => {
                let r = self
                    .devices
                    .get(&id)
                    .and_then(|d| d.active)
                    .and_then(|a| self.actives.get(&a))
                    .map(|a| dbus_dict::to_dbus(&a.conn, false))
                    .ok_or_else(|| NmError::device("NotActive", "This device is not active"));
                self.out.send_queued().await;
                let _ = reply.send(r);
            }
            Call::Reapply { id, dict, reply } => {
                let r = self.reapply(id, dict).await;
                self.out.send_queued().await;
                let _ = reply.send(r);
            }
            Call::SetManaged { id, value, reply } => {
                self.set_managed(id, value, true).await;
                self.out.send_queued().await;
                let _ = reply.send(Ok(()));
            }
            Call::RewriteDns { reply } => {
                self.last_resolv = None;
                self.update_dns().await;
                self.out.send_queued().await;
                let _ = reply.send(Ok(()));
            }
            Call::SaveHostname { hostname, reply } => {
                let r = self.save_hostname(&hostname).await;
                self.out.send_queued().await;
                let _ = reply.send(r);
            }
            Call::SetDeviceAutoconnect { id, value, reply } => {
                if let Some(d) = self.devices.get_mut(&id) {
                    d.autoconnect = value;
                }
                self.device_autoconnect_changed(id).await;
                if value {
                    self.autoconnect_all().await;
                }
                self.out.send_queued().await;
                let _ = reply.send(Ok(()));
            }
        }
    }

    async fn device_autoconnect_changed(&mut self, id: u32) {
        let Some(d) = self.devices.get(&id) else {
            return;
        };
        d.props.lock().autoconnect = d.autoconnect;
        self.out.changed(&d.path, DEVICE_IFACE, vec![("Autoconnect", Variant::from(d.autoconnect))]);
    }

    // ------------------------------------------------------ checkpoints ---

    fn checkpoint_id(&self, path: &OwnedObjectPath) -> Result<u32, NmError> {
        self.checkpoints
            .iter()
            .find(|(_, c)| c.path == *path)
            .map(|(id, _)| *id)
            .ok_or_else(|| NmError::manager("InvalidArguments", format!("checkpoint {path} does not exist")))
    }

    async fn checkpoint_create(
        &mut self,
        devices: Vec<OwnedObjectPath>,
        timeout: u32,
        flags: u32,
    ) -> Result<OwnedObjectPath, NmError> {
        checkpoint::check_flags(flags).map_err(|m| NmError::manager("InvalidArguments", m))?;
        // None named: every device.
        let ids: Vec<u32> = if devices.is_empty() {
            self.devices.keys().copied().collect()
        } else {
            devices
                .iter()
                .map(|p| {
                    self.device_by_path(p)
                        .ok_or_else(|| NmError::manager("UnknownDevice", format!("device {p} does not exist")))
                })
                .collect::<Result<_, _>>()?
        };
        if flags & checkpoint::DESTROY_ALL != 0 {
            let all: Vec<u32> = self.checkpoints.keys().copied().collect();
            for id in all {
                self.checkpoint_destroy(id).await;
            }
        } else if flags & checkpoint::ALLOW_OVERLAPPING == 0 {
            let taken: Vec<u32> = self.checkpoints.values().flat_map(|c| c.devices.iter().map(|d| d.device)).collect();
            if let Some(d) = checkpoint::overlap(&ids, &taken) {
                let name = self.devices.get(&d).map(|d| d.name.clone()).unwrap_or_default();
                return Err(NmError::manager(
                    "InvalidArguments",
                    format!("a checkpoint for device '{name}' already exists"),
                ));
            }
        }
        let snapshots: Vec<checkpoint::DeviceSnapshot> = ids
            .iter()
            .filter_map(|id| self.devices.get(id).map(|d| (id, d)))
            .map(|(id, d)| checkpoint::DeviceSnapshot {
                device: *id,
                path: d.path.to_string(),
                managed: d.managed,
                autoconnect: d.autoconnect,
                active: d.active.and_then(|ac| self.actives.get(&ac)).map(|a| {
                    let profile = self.profiles.get(&a.profile);
                    checkpoint::SavedProfile {
                        uuid: a.conn.uuid().unwrap_or_default().to_string(),
                        settings: profile.map_or_else(|| a.conn.clone(), |p| p.conn()),
                        applied: a.conn.clone(),
                        unsaved: profile.is_some_and(|p| p.props.lock().unsaved),
                    }
                }),
            })
            .collect();
        let id = next(&mut self.counters.checkpoint);
        let path = api::path("Checkpoint", id);
        let props = Props::new(api::CheckpointProps {
            devices: snapshots.iter().filter_map(|s| OwnedObjectPath::try_from(s.path.clone()).ok()).collect(),
            created: boottime_ms(),
            rollback_timeout: timeout,
        });
        if let Err(e) = self.out.at(&path, api::CheckpointIface { props: props.clone() }).await {
            return Err(NmError::failed(format!("exporting {path}: {e}")));
        }
        info!("checkpoint {id} of {} devices (rollback after {timeout} s; 0: none)", snapshots.len());
        self.checkpoints.insert(
            id,
            Checkpoint {
                path: path.clone(),
                flags,
                devices: snapshots,
                profiles: self.profiles.values().map(|p| p.uuid.clone()).collect(),
                known_devices: self.devices.keys().copied().collect(),
                generation: 0,
                props,
            },
        );
        if timeout > 0 {
            self.schedule(Duration::from_secs(u64::from(timeout)), Timer::CheckpointTimeout { id, generation: 0 });
        }
        self.publish_checkpoints().await;
        Ok(path)
    }

    async fn checkpoint_destroy(&mut self, id: u32) {
        if let Some(c) = self.checkpoints.remove(&id) {
            let _ = self.out.remove::<api::CheckpointIface>(&c.path).await;
            self.publish_checkpoints().await;
        }
    }

    /// A new timeout, `add` seconds from now (0: none).
    fn checkpoint_adjust(&mut self, id: u32, add: u32) {
        let Some(c) = self.checkpoints.get_mut(&id) else { return };
        c.generation += 1;
        let generation = c.generation;
        {
            let mut p = c.props.lock();
            let elapsed = u32::try_from((boottime_ms() - p.created).max(0) / 1000).unwrap_or(u32::MAX);
            p.rollback_timeout = if add == 0 { 0 } else { elapsed.saturating_add(add) };
        }
        if add > 0 {
            self.schedule(Duration::from_secs(u64::from(add)), Timer::CheckpointTimeout { id, generation });
        }
    }

    /// Puts the devices back as the checkpoint saw them and destroys it:
    /// each device's result by its path (`NMRollbackResult`).
    async fn checkpoint_rollback(&mut self, id: u32) -> HashMap<String, u32> {
        let Some(c) = self.checkpoints.remove(&id) else { return HashMap::new() };
        let Checkpoint { path, flags, devices, profiles, known_devices: known, .. } = c;
        let mut results = HashMap::new();
        for snap in &devices {
            let r = self.rollback_device(snap).await;
            results.insert(snap.path.clone(), r);
        }
        if flags & checkpoint::DELETE_NEW_CONNECTIONS != 0 {
            let new: Vec<u32> =
                self.profiles.iter().filter(|(_, p)| !profiles.contains(&p.uuid)).map(|(id, _)| *id).collect();
            for p in new {
                if let Err(e) = self.delete_connection(p).await {
                    warn!("checkpoint {id}: deleting a new profile: {e:?}");
                }
            }
        }
        if flags & checkpoint::DISCONNECT_NEW_DEVICES != 0 {
            let new: Vec<u32> =
                self.devices.iter().filter(|(d, _)| !known.contains(d)).filter_map(|(_, dev)| dev.active).collect();
            for ac in new {
                self.deactivate(ac, reason::USER_REQUESTED, ac_reason::USER_DISCONNECTED).await;
            }
        }
        info!("checkpoint {id} rolled back");
        let _ = self.out.remove::<api::CheckpointIface>(&path).await;
        self.publish_checkpoints().await;
        results
    }

    async fn rollback_device(&mut self, snap: &checkpoint::DeviceSnapshot) -> u32 {
        let Some(d) = self.devices.get(&snap.device) else { return checkpoint::RESULT_ERR_NO_DEVICE };
        if d.managed != snap.managed {
            self.set_managed(snap.device, snap.managed, true).await;
        }
        if !snap.managed {
            return checkpoint::RESULT_OK;
        }
        if self.asleep() {
            return checkpoint::RESULT_ERR_DEVICE_UNMANAGED;
        }
        if let Some(d) = self.devices.get_mut(&snap.device)
            && d.autoconnect != snap.autoconnect
        {
            d.autoconnect = snap.autoconnect;
            self.device_autoconnect_changed(snap.device).await;
        }
        // The profile first: its saved settings back, or itself if deleted.
        let mut profile = None;
        let mut restored = false;
        if let Some(saved) = &snap.active {
            let existing = self.profiles.iter().find(|(_, p)| p.uuid == saved.uuid).map(|(id, p)| (*id, p.conn()));
            let dict = || dbus_dict::to_dbus(&saved.settings, false);
            let r = match checkpoint::profile_step(saved, existing.as_ref().map(|(_, c)| c.as_ref())) {
                ProfileStep::Keep => Ok(existing.as_ref().map(|(id, _)| *id)),
                ProfileStep::Update => {
                    let pid = existing.as_ref().map(|(id, _)| *id).unwrap_or_default();
                    restored = true;
                    self.update_connection(pid, dict(), !saved.unsaved).await.map(|()| Some(pid))
                }
                ProfileStep::Add => {
                    restored = true;
                    self.add_connection(dict(), !saved.unsaved).await.map(Some)
                }
            };
            match r {
                Ok(p) => profile = p,
                Err(e) => {
                    warn!(device = %snap.path, "restoring the profile '{}': {e:?}", saved.uuid);
                    return checkpoint::RESULT_ERR_FAILED;
                }
            }
        }
        let now = self
            .devices
            .get(&snap.device)
            .and_then(|d| d.active)
            .and_then(|ac| self.actives.get(&ac).map(|a| (ac, a.conn.clone())));
        let now_view = now.as_ref().map(|(_, c)| (c.uuid().unwrap_or_default(), c.as_ref()));
        match checkpoint::activation_step(snap.active.as_ref(), now_view, restored) {
            Activation::Keep => checkpoint::RESULT_OK,
            Activation::Deactivate => {
                if let Some((ac, _)) = now {
                    self.deactivate(ac, reason::USER_REQUESTED, ac_reason::USER_DISCONNECTED).await;
                }
                checkpoint::RESULT_OK
            }
            Activation::Activate => match profile {
                Some(p) => match self.activate(p, snap.device, true, ActivationType::Full).await {
                    Ok(_) => checkpoint::RESULT_OK,
                    Err(e) => {
                        warn!(device = %snap.path, "activating the saved profile again: {e:?}");
                        checkpoint::RESULT_ERR_FAILED
                    }
                },
                None => checkpoint::RESULT_ERR_FAILED,
            },
        }
    }

    /// `Manager.Checkpoints`.
    async fn publish_checkpoints(&mut self) {
        let list: Vec<OwnedObjectPath> = self.checkpoints.values().map(|c| c.path.clone()).collect();
        self.manager.lock().checkpoints = list.clone();
        self.out.changed(&nm_path(), NM_IFACE, vec![("Checkpoints", Variant::from(list))]);
    }

    /// Asleep: put to sleep, or networking switched off.
    fn asleep(&self) -> bool {
        self.sleeping || !self.networking_enabled
    }

    async fn set_sleeping(&mut self, sleep: bool) {
        let was_asleep = self.asleep();
        info!("{}", if sleep { "going to sleep" } else { "waking up" });
        self.sleeping = sleep;
        self.sleep_or_wake(was_asleep).await;
    }

    async fn enable_networking(&mut self, enable: bool) {
        let was_asleep = self.asleep();
        info!("networking {}", if enable { "enabled" } else { "disabled" });
        self.networking_enabled = enable;
        self.manager.lock().networking_enabled = enable;
        self.out.changed(&nm_path(), NM_IFACE, vec![("NetworkingEnabled", Variant::from(enable))]);
        self.sleep_or_wake(was_asleep).await;
    }

    /// NetworkManager's sleep and wake: asleep, every activation ends and
    /// each managed device goes down and unmanaged (reason SLEEPING); awake
    /// again, they come up, are managed and autoconnect as at start-up.
    async fn sleep_or_wake(&mut self, was_asleep: bool) {
        let asleep = self.asleep();
        if asleep == was_asleep {
            return;
        }
        if asleep {
            let ids: Vec<u32> = self.actives.keys().copied().collect();
            for id in ids {
                self.deactivate(id, reason::SLEEPING, ac_reason::DEVICE_DISCONNECTED).await;
            }
        }
        let managed: Vec<(u32, u32, DeviceState, bool)> = self
            .devices
            .iter()
            .filter(|(_, d)| d.managed)
            .map(|(id, d)| (*id, d.ifindex, d.idle_state(), d.kind.is_software()))
            .collect();
        for (id, ifindex, idle, software) in managed {
            // (A software device went with its activation; waking makes
            // it again.)
            if !software && let Err(e) = self.platform.set_link_up(ifindex, !asleep).await {
                warn!(ifindex, "setting the link {}: {e}", if asleep { "down" } else { "up" });
            }
            let (state, why) =
                if asleep { (DeviceState::Unmanaged, reason::SLEEPING) } else { (idle, reason::NOW_MANAGED) };
            self.set_device_state(id, state, why).await;
        }
        self.refresh_available().await;
        self.publish_actives().await;
        if !asleep {
            self.autoconnect_all().await;
        }
    }

    /// Takes a device into nm-core's hands or lets it go. Letting go leaves
    /// the kernel as it is, as NetworkManager does. `asked`: by a user (or
    /// a checkpoint's rollback), not nm-core adopting a software device a
    /// profile names, which it takes as it is (its activation comes back).
    async fn set_managed(&mut self, id: u32, managed: bool, asked: bool) {
        let Some(d) = self.devices.get_mut(&id) else { return };
        if d.managed == managed {
            return;
        }
        d.managed = managed;
        d.props.lock().managed = managed;
        let (path, ifindex, name, active) = (d.path.clone(), d.ifindex, d.name.clone(), d.active);
        self.out.changed(&path, DEVICE_IFACE, vec![("Managed", Variant::from(managed))]);
        // The user's word outlives a restart of nm-core (NetworkManager's
        // `managed=false` record); taken back, the device starts clean.
        if asked && managed {
            state_files::save_device(&self.paths, ifindex, None);
        } else if asked {
            state_files::save_unmanaged(&self.paths, ifindex);
        }
        if self.asleep() {
            // Taken over (or let go) when the manager wakes.
            return;
        }
        if managed {
            info!(device = %name, "managing{}", if asked { " (asked)" } else { "" });
            // Its IP4Config/IP6Config become its activations' again.
            self.show_kernel_ip(id).await;
            // What the device has from before is not a profile's: taken
            // over clean, as NetworkManager does.
            if asked {
                self.deconfigure(ifindex, false).await;
            }
            if let Err(e) = self.platform.set_link_up(ifindex, true).await {
                warn!(device = %name, "setting the link up: {e}");
            }
            let state = self.devices.get(&id).map_or(DeviceState::Unavailable, Device::idle_state);
            self.set_device_state(id, state, reason::NOW_MANAGED).await;
            self.refresh_available().await;
            self.make_auto_defaults().await;
            self.autoconnect_all().await;
        } else {
            info!(device = %name, "no longer managed (asked)");
            if let Some(ac) = active {
                // The configuration stays in the kernel; nm-core forgets it.
                self.finish_deactivation(ac, ac_reason::DEVICE_DISCONNECTED).await;
            }
            self.set_device_state(id, DeviceState::Unmanaged, reason::NOW_UNMANAGED).await;
            self.refresh_available().await;
            self.show_kernel_ip(id).await;
        }
    }

    /// Applies new settings to a running activation: what the old plan had
    /// and the new one lacks goes, the rest is (re)applied with replace
    /// semantics, so nothing that stays is ever removed.
    async fn reapply(&mut self, device: u32, dict: SettingsDict) -> Result<(), NmError> {
        let not_active = || NmError::device("NotActive", "This device is not active");
        let ac = self.devices.get(&device).and_then(|d| d.active).ok_or_else(not_active)?;
        let a = self.actives.get(&ac).ok_or_else(not_active)?;
        let conn = if dict.is_empty() {
            self.profiles.get(&a.profile).map(|p| p.conn()).ok_or_else(|| err_profile_gone(a.profile))?
        } else {
            Arc::new(Self::parse(&dict)?)
        };
        if conn.uuid() != a.conn.uuid() {
            return Err(NmError::device("InvalidArgument", "the uuid of the applied profile cannot change"));
        }
        let (ifindex, metric) = self.devices.get(&device).map(|d| (d.ifindex, d.metric)).ok_or_else(not_active)?;
        // What changed of a bridge's, a port's or the traffic control
        // settings goes to the kernel again (unchanged, they are left:
        // qdiscs and VLAN tables are made anew).
        let changed = |setting: &str| conn.settings.get(setting) != a.conn.settings.get(setting);
        if changed("bridge") || changed("bridge-port") {
            self.reapply_bridge(ifindex, &conn).await.map_err(|e| NmError::device("Failed", e.to_string()))?;
        }
        if changed("tc") {
            self.apply_tc(ifindex, &conn).await.map_err(|e| NmError::device("Failed", e))?;
        }
        let ethtool_changed = changed("ethtool");
        let plan = ipconfig::plan(&conn, metric);
        let old = a.plan.clone();
        // The leases stay while their method does (their addresses keep
        // the lifetimes the kernel counts down).
        let v4_lease = if plan.v4 == FamilyMethod::Dhcp && old.v4 == FamilyMethod::Dhcp {
            let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            a.dhcp.held.as_deref().map(|l| dhcp::lease_plan(l, &conn, metric, now)).unwrap_or_default()
        } else {
            dhcp::LeasePlan::default()
        };
        let v6_lease = if (plan.v6, plan.v6_slaac) == (old.v6, old.v6_slaac) {
            a.dhcp6.lease.clone()
        } else {
            dhcp6::LeasePlan::default()
        };
        // The link-local address stays while the new settings still ask
        // for it beside their method.
        let link_local =
            if dhcp::link_local_beside(&conn) { a.link_local.lease.clone() } else { dhcp::LeasePlan::default() };
        let full = merge_dhcp6(merge_lease(&merge_lease(&plan, &link_local), &v4_lease), &v6_lease);
        let stale = ipconfig::Plan {
            addresses: old
                .addresses
                .iter()
                .filter(|x| !full.addresses.iter().any(|n| n.addr == x.addr && n.prefix == x.prefix))
                .cloned()
                .collect(),
            routes: old.routes.iter().filter(|r| !full.routes.contains(r)).cloned().collect(),
            v6: if old.v6 == FamilyMethod::Disabled && plan.v6 != FamilyMethod::Disabled {
                FamilyMethod::Disabled
            } else {
                FamilyMethod::Ignore
            },
            // What the kernel took from routers goes only when `auto` does.
            v6_slaac: old.v6_slaac && !plan.v6_slaac,
            ..old.clone()
        };
        self.unapply_plan(ifindex, &stale).await;
        if let Some(mtu) = plan.mtu.filter(|m| Some(*m) != old.mtu)
            && let Err(e) = self.set_mtu(ifindex, mtu).await
        {
            warn!(ifindex, "MTU {mtu} left out: {e}");
        }
        // The whole of it: a lease planned again may have changed too.
        if let Err(e) = self.apply_plan(ifindex, &full).await {
            // Refused as a whole: what the new settings added goes and the
            // old configuration comes back, so a failed reapply changes nothing.
            let added = ipconfig::Plan {
                addresses: full
                    .addresses
                    .iter()
                    .filter(|n| !old.addresses.iter().any(|x| n.addr == x.addr && n.prefix == x.prefix))
                    .cloned()
                    .collect(),
                routes: full.routes.iter().filter(|r| !old.routes.contains(r)).cloned().collect(),
                v6: FamilyMethod::Ignore,
                v6_slaac: false,
                ..old.clone()
            };
            self.unapply_plan(ifindex, &added).await;
            if let Err(again) = self.apply_plan(ifindex, &old).await {
                warn!(ifindex, "restoring the configuration after a failed reapply: {again}");
            }
            return Err(NmError::device("Failed", e));
        }
        let rules = ipconfig::routing_rules(&conn);
        let old_rules = self.actives.get(&ac).map(|a| a.rules.clone()).unwrap_or_default();
        self.remove_rules(&old_rules.iter().filter(|r| !rules.contains(r)).cloned().collect::<Vec<_>>()).await;
        self.add_rules(&rules.iter().filter(|r| !old_rules.contains(r)).cloned().collect::<Vec<_>>()).await;
        // A changed `ethtool` setting: the device's features as the old
        // profile found them, then as the new one asks.
        if ethtool_changed {
            self.restore_ethtool(ac);
            self.apply_ethtool(ac, &conn);
        }
        let (ip4, ip6) = {
            let a = self.actives.get_mut(&ac).ok_or_else(not_active)?;
            if plan.v4 == FamilyMethod::Dhcp && a.plan.v4 == FamilyMethod::Dhcp {
                a.dhcp.lease = v4_lease;
            }
            a.plan = full;
            a.rules = rules;
            a.link_local.lease = link_local;
            a.conn = conn;
            (a.ip4.take(), a.ip6.take())
        };
        self.follow_link_local_setting(ac).await;
        if let Some((p, _)) = ip4 {
            self.unexport_ip_object(false, &p).await;
        }
        if let Some((p, _)) = ip6 {
            self.unexport_ip_object(true, &p).await;
        }
        // Families the new settings no longer configure show no object.
        if let Some(a) = self.actives.get(&ac) {
            let mut p = a.props.lock();
            p.ip4_config = root();
            p.ip6_config = root();
        }
        if let Some(d) = self.devices.get(&device) {
            {
                let mut p = d.props.lock();
                p.ip4_config = root();
                p.ip6_config = root();
            }
            self.out.changed(
                &d.path,
                DEVICE_IFACE,
                vec![("Ip4Config", Variant::from(root())), ("Ip6Config", Variant::from(root()))],
            );
        }
        self.export_ip_configs(ac).await;
        self.publish_actives().await;
        self.update_dns().await;
        if let Some(d) = self.dispatch(ac, "reapply") {
            self.dispatch_later(d);
        }
        Ok(())
    }

    async fn save_hostname(&mut self, hostname: &str) -> Result<(), NmError> {
        self.before_calling_out().await;
        let proxy = zbus::Proxy::new(
            &self.bus,
            SYSTEM_SETTINGS,
            nm_dbus::names::SETTINGS_PATH,
            nm_dbus::names::SYSTEM_INTERFACE,
        )
        .await
        .map_err(NmError::from)?;
        proxy.call::<_, _, ()>("SaveHostname", &(hostname,)).await.map_err(NmError::from)?;
        self.set_hostname(hostname.to_string()).await;
        Ok(())
    }

    async fn set_hostname(&mut self, hostname: String) {
        if self.settings.lock().hostname == hostname {
            return;
        }
        self.settings.lock().hostname = hostname.clone();
        self.out.changed(&settings_path(), SETTINGS_IFACE, vec![("Hostname", Variant::from(hostname))]);
        let connectivity = dispatcher::connectivity_name(self.manager.lock().connectivity);
        self.dispatch_later(Dispatch::global("hostname", connectivity));
    }

    fn profile_by_path(&self, path: &OwnedObjectPath) -> Option<u32> {
        self.profiles.iter().find(|(_, p)| &p.path == path).map(|(id, _)| *id)
    }

    fn device_by_path(&self, path: &OwnedObjectPath) -> Option<u32> {
        self.devices.iter().find(|(_, d)| &d.path == path).map(|(id, _)| *id)
    }

    fn view(d: &Device) -> DeviceView<'_> {
        DeviceView {
            name: &d.name,
            kind: d.kind,
            perm_mac: d.perm_mac.as_deref(),
            driver: d.driver.as_deref(),
            kernel_cmdline: kernel_cmdline(),
        }
    }

    async fn activate_call(
        &mut self,
        connection: &OwnedObjectPath,
        device: &OwnedObjectPath,
    ) -> Result<OwnedObjectPath, NmError> {
        let device_id = if device.as_str() == "/" {
            None
        } else {
            Some(
                self.device_by_path(device)
                    .ok_or_else(|| NmError::manager("UnknownDevice", format!("Device '{device}' not found")))?,
            )
        };
        let profile_id = if connection.as_str() == "/" {
            // "Choose the best profile for this device" (nmcli device connect).
            let dev =
                device_id.ok_or_else(|| NmError::manager("UnknownDevice", "a device is needed to choose a profile"))?;
            let name = self.devices[&dev].name.clone();
            self.best_profile(dev, false).ok_or_else(|| {
                NmError::manager("UnknownConnection", format!("No suitable connection found for device {name}"))
            })?
        } else {
            self.profile_by_path(connection).ok_or_else(|| err_unknown_connection(connection.as_str()))?
        };
        // IPv6 connection sharing (prefix delegation to the shared link) is
        // not nm-rs's: said at once, rather than by a failed activation.
        let conn = self.profiles[&profile_id].conn();
        if conn.get_str("ipv6", "method") == Some("shared") {
            return Err(NmError::manager(
                "Failed",
                "ipv6.method 'shared' (IPv6 connection sharing) is not supported by nm-rs",
            ));
        }
        // VPN plugins (NetworkManager-openvpn, …) are not nm-rs's: their
        // profiles are kept and shown whole, and refused here as
        // NetworkManager refuses a VPN whose plugin is not installed.
        if conn.connection_type() == Some("vpn") {
            let service = conn.get_str("vpn", "service-type").unwrap_or_default();
            return Err(NmError::manager(
                "ConnectionNotAvailable",
                format!("The VPN service '{service}' was not installed."),
            ));
        }
        let device_id = match device_id {
            Some(d) => d,
            // A software device exists while its profile is up: made now.
            None if software::interface(&self.profiles[&profile_id].conn()).is_some() => {
                self.realize_software(profile_id).await?
            }
            None => self.device_for_profile(profile_id)?,
        };
        self.retries_for_profile(profile_id).blocked_by_user = false;
        if let Some(d) = self.devices.get_mut(&device_id) {
            d.autoconnect = true;
        }
        self.activate(profile_id, device_id, true, ActivationType::Full).await
    }

    /// The device of a software profile (bridge, macvlan, vxlan, tun, veth): its
    /// link, made as the profile says if it is not there yet.
    async fn realize_software(&mut self, profile: u32) -> Result<u32, NmError> {
        let conn = self.profiles.get(&profile).map(|p| p.conn()).ok_or_else(|| err_profile_gone(profile))?;
        let name = software::interface(&conn).ok_or_else(|| {
            NmError::manager("UnknownDevice", "a software device's profile needs connection.interface-name")
        })?;
        if let Some(id) = self.devices.iter().find(|(_, d)| d.name == name).map(|(id, _)| *id) {
            return Ok(id);
        }
        let parent = software::parent(&conn).and_then(|p| self.parent_ifindex(p));
        let what = software::new_link(&conn, parent).map_err(|e| NmError::manager("UnknownDevice", e))?;
        let link = self
            .platform
            .create_link(name, &what)
            .await
            .map_err(|e| NmError::manager("Failed", format!("creating {name}: {e}")))?;
        info!(device = %name, kind = ?link.kind, "created for '{}'", conn.id().unwrap_or_default());
        let ifindex = link.ifindex;
        if let NewLink::Bridge(_) = what {
            let machine_id = self.machine_id();
            if let Some(mac) = bridge::mac(&conn, machine_id.as_deref())
                && let Err(e) = self.platform.set_mac(ifindex, mac).await
            {
                warn!(device = %name, "setting the bridge's MAC address: {e}");
            }
        }
        // A veth has a carrier only while both ends are up, and the
        // activation starts from a device with its carrier: both go up
        // now. The peer is otherwise left to whoever takes it (a
        // namespace, another profile).
        if let NewLink::Veth { peer } = &what {
            let ends = [Some(ifindex), self.platform.link_by_name(peer).map(|l| l.ifindex)];
            for end in ends.into_iter().flatten() {
                if let Err(e) = self.platform.set_link_up(end, true).await {
                    warn!(device = %name, "setting the veth pair up: {e}");
                }
            }
            // The carrier is there at once; its event comes later.
            if let Err(e) = self.platform.read_link(name).await {
                warn!(device = %name, "reading the link again: {e}");
            }
        }
        let link = self.platform.link(ifindex).unwrap_or(link);
        // The event the kernel sends about it finds the device there.
        Box::pin(self.add_device(link, true, false)).await;
        self.devices
            .iter()
            .find(|(_, d)| d.ifindex == ifindex)
            .map(|(id, _)| *id)
            .ok_or_else(|| NmError::manager("UnknownDevice", format!("{name} vanished")))
    }

    /// The object of the device a macvlan or vxlan link sits on ("/" when
    /// it has none or it is not a device here).
    fn parent_path(&self, link: &Link) -> OwnedObjectPath {
        let parent = match &link.details {
            Some(LinkDetails::Macvlan(_)) => link.parent,
            Some(LinkDetails::Vxlan(o)) => o.parent,
            _ if link.kind == LinkKind::Veth => link.parent,
            _ => None,
        };
        parent
            .and_then(|i| self.devices.values().find(|d| d.ifindex == i))
            .map(|d| d.path.clone())
            .unwrap_or_else(api::root)
    }

    /// A new veth's other end, there before it, learns its peer.
    async fn link_parents(&mut self, ifindex: u32, path: &OwnedObjectPath) {
        let peers: Vec<(OwnedObjectPath, Props<DeviceProps>)> = self
            .devices
            .values()
            .filter(|d| d.kind == DeviceType::Veth && d.ifindex != ifindex && d.link_parent == Some(ifindex))
            .map(|d| (d.path.clone(), d.props.clone()))
            .collect();
        for (peer, props) in peers {
            props.lock().parent = path.clone();
            self.out.changed(&peer, VETH_IFACE, vec![("Peer", Variant::from(path.clone()))]);
        }
    }

    /// A device gone is no one's peer or parent any more.
    async fn unlink_parents(&mut self, gone: &OwnedObjectPath) {
        let children: Vec<(OwnedObjectPath, DeviceType, Props<DeviceProps>)> = self
            .devices
            .values()
            .filter(|d| &d.props.lock().parent == gone)
            .map(|d| (d.path.clone(), d.kind, d.props.clone()))
            .collect();
        for (child, kind, props) in children {
            props.lock().parent = root();
            if let Some((iface, prop)) = parent_property(kind) {
                self.out.changed(&child, iface, vec![(prop, Variant::from(root()))]);
            }
        }
    }

    /// The link a software profile's `parent` names: an interface, or a
    /// profile (by uuid) whose interface is there.
    fn parent_ifindex(&self, parent: &str) -> Option<u32> {
        let by_name = |n: &str| self.platform.link_by_name(n).map(|l| l.ifindex);
        by_name(parent).or_else(|| {
            let p = self.profiles.values().find(|p| p.uuid == parent)?;
            by_name(p.conn().get_str("connection", "interface-name")?)
        })
    }

    /// `Device.Delete`: only a software device a profile of nm-core's makes.
    async fn delete_device(&mut self, id: u32) -> Result<(), NmError> {
        let (name, ifindex, active, kind, managed) = self
            .devices
            .get(&id)
            .map(|d| (d.name.clone(), d.ifindex, d.active, d.kind, d.managed))
            .ok_or_else(|| NmError::device("NotSoftware", "no such device"))?;
        // A veth is software too, but the other veths here (a container's,
        // the lab's) are not nm-rs's to delete: only one a profile makes.
        let veth_of_ours = kind == DeviceType::Veth
            && self.profiles.values().any(|p| p.binding.software_interface() == Some(name.as_str()));
        if !(kind.is_software() || veth_of_ours) || !managed {
            return Err(NmError::device("NotSoftware", format!("{name} is not a software device nm-rs created")));
        }
        match active {
            // Its deactivation deletes it; autoconnect does not make it again.
            Some(ac) => {
                if let Some(profile) = self.actives.get(&ac).map(|a| a.profile) {
                    self.retries_for_profile(profile).blocked_by_user = true;
                }
                self.deactivate(ac, reason::USER_REQUESTED, ac_reason::USER_DISCONNECTED).await
            }
            None => self.platform.delete_link(ifindex).await.map_err(|e| NmError::device("Failed", e.to_string()))?,
        }
        Ok(())
    }

    /// Software devices that were there before their profiles were known
    /// (a restart) become nm-core's once a profile names them.
    async fn adopt_software(&mut self) {
        let names: Vec<String> =
            self.profiles.values().filter_map(|p| p.binding.software_interface().map(str::to_string)).collect();
        let adopt: Vec<u32> = self
            .devices
            .iter()
            .filter(|(_, d)| {
                (d.kind.is_software() || d.kind == DeviceType::Veth) && !d.managed && names.contains(&d.name)
            })
            .filter(|(_, d)| !state_files::load_unmanaged(&self.paths, d.ifindex))
            .map(|(id, _)| *id)
            .collect();
        for id in adopt {
            self.set_managed(id, true, false).await;
        }
    }

    /// Gives a bridge what its profile asks (NetworkManager's stage 1 of a
    /// bridge): its own settings, then VLAN filtering. The kernel changes
    /// the VLAN ports start in only while filtering is off, and makes that
    /// VLAN on every port when it is set: so filtering goes off, the
    /// default and the bridge's own VLAN table are cleared, the default is
    /// set, the profile's VLANs are added, and filtering goes on. Without
    /// filtering the table is emptied and the default back to 1.
    async fn configure_bridge(&self, ifindex: u32, conn: &Connection) -> Result<(), PlatformError> {
        let every_vlan = [EVERY_VLAN];
        self.platform.change_bridge(ifindex, &bridge::options(conn)).await?;
        let Some(default_pvid) = bridge::vlan_filtering(conn) else {
            // Best effort, as NetworkManager: a kernel without VLAN
            // filtering (CONFIG_BRIDGE_VLAN_FILTERING) refuses both.
            let off = self.platform.set_bridge_vlan_filtering(ifindex, Some(false), Some(1)).await;
            if let Err(e) = off.and(self.platform.change_bridge_vlans(ifindex, true, false, &every_vlan).await) {
                debug!(ifindex, "clearing the bridge's VLAN filtering: {e}");
            }
            return Ok(());
        };
        self.platform.set_bridge_vlan_filtering(ifindex, Some(false), Some(0)).await?;
        self.platform.change_bridge_vlans(ifindex, true, false, &every_vlan).await?;
        if default_pvid != 0 {
            self.platform.set_bridge_vlan_filtering(ifindex, None, Some(default_pvid)).await?;
        }
        self.platform.change_bridge_vlans(ifindex, true, true, &bridge::vlans(conn, "bridge")).await?;
        self.platform.set_bridge_vlan_filtering(ifindex, Some(true), None).await
    }

    /// A reapply's part for bridges: a bridge profile's settings and VLANs
    /// again; a port's options, and its VLAN table replaced by what the
    /// profile asks now (with the bridge's default VLAN, which the kernel
    /// gave the port when it joined).
    async fn reapply_bridge(&self, ifindex: u32, conn: &Connection) -> Result<(), PlatformError> {
        if bridge::interface(conn).is_some() {
            return self.configure_bridge(ifindex, conn).await;
        }
        let Some(master) = self.platform.link(ifindex).and_then(|l| l.master) else { return Ok(()) };
        if bridge::master(conn).is_none() {
            return Ok(());
        }
        let bridge_conn = self
            .devices
            .values()
            .find(|d| d.ifindex == master)
            .and_then(|d| d.active)
            .and_then(|ac| self.actives.get(&ac))
            .map(|a| a.conn.clone());
        if let Some(default_pvid) = bridge_conn.as_deref().and_then(bridge::vlan_filtering) {
            self.platform.change_bridge_vlans(ifindex, false, false, &[EVERY_VLAN]).await?;
            let vlans = bridge::with_default_pvid(bridge::vlans(conn, "bridge-port"), default_pvid);
            self.platform.change_bridge_vlans(ifindex, false, true, &vlans).await?;
        }
        self.platform.set_bridge_port(ifindex, &bridge::port_options(conn)).await
    }

    /// Gives a link that joined a bridge what its port profile asks:
    /// `bridge-port.vlans` when the bridge filters VLANs (its profile
    /// `bridge`, when it has one), then cost, priority and hairpin mode.
    async fn configure_port(
        &self,
        ifindex: u32,
        port: &Connection,
        bridge: Option<&Connection>,
    ) -> Result<(), PlatformError> {
        if bridge.and_then(bridge::vlan_filtering).is_some() {
            self.platform.change_bridge_vlans(ifindex, false, true, &bridge::vlans(port, "bridge-port")).await?;
        }
        self.platform.set_bridge_port(ifindex, &bridge::port_options(port)).await
    }

    /// Stage 2 of a bridge port: its bridge up (activated for it when it is
    /// not), then the link made its port. Returns why it could not be.
    async fn attach_port(&mut self, device: u32, conn: &Connection, master: &str, by_user: bool) -> Result<(), String> {
        let profile = self.profiles.iter().find(|(_, p)| bridge::is_master_of(&p.conn(), master)).map(|(id, _)| *id);
        let (bridge_device, to_activate) = match profile {
            Some(profile) => {
                let id = self.realize_software(profile).await.map_err(|e| e.to_string())?;
                let idle = self.devices.get(&id).is_some_and(|d| d.active.is_none());
                if idle {
                    // Autoconnect brings up a bridge only if it may
                    // autoconnect itself: not one the user took down.
                    let uuid = self.profiles[&profile].uuid.clone();
                    if !by_user && !self.may_autoconnect(&uuid, Instant::now()) {
                        return Err("its profile may not autoconnect now".to_string());
                    }
                }
                (id, idle.then_some(profile))
            }
            // A bridge made by someone else, named by its interface.
            None => (
                self.devices
                    .iter()
                    .find(|(_, d)| d.kind == DeviceType::Bridge && d.name == master)
                    .map(|(id, _)| *id)
                    .ok_or_else(|| format!("no bridge '{master}' and no profile for it"))?,
                None,
            ),
        };
        let (port, bridge_ifindex) = match (self.devices.get(&device), self.devices.get(&bridge_device)) {
            (Some(p), Some(b)) => (p.ifindex, b.ifindex),
            _ => return Err(format!("bridge '{master}' is gone")),
        };
        // The port first: the bridge then activates with its carrier (and
        // its DHCP goes out through the port at once).
        self.platform.set_master(port, bridge_ifindex).await.map_err(|e| e.to_string())?;
        let bridge_conn = match self.devices.get(&bridge_device).and_then(|d| d.active) {
            Some(ac) => self.actives.get(&ac).map(|a| a.conn.clone()),
            None => profile.and_then(|p| self.profiles.get(&p)).map(|p| p.conn()),
        };
        self.configure_port(port, conn, bridge_conn.as_deref()).await.map_err(|e| e.to_string())?;
        self.publish_ports(bridge_device).await;
        if let Some(profile) = to_activate {
            Box::pin(self.activate(profile, bridge_device, by_user, ActivationType::Full))
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// A bridge's `Slaves`: the devices whose link has it as master.
    async fn publish_ports(&mut self, bridge_device: u32) {
        let Some(b) = self.devices.get(&bridge_device) else { return };
        let ports: Vec<OwnedObjectPath> = self
            .devices
            .values()
            .filter(|d| self.platform.link(d.ifindex).is_some_and(|l| l.master == Some(b.ifindex)))
            .map(|d| d.path.clone())
            .collect();
        let changed = {
            let mut p = b.props.lock();
            let changed = p.ports != ports;
            p.ports = ports.clone();
            changed
        };
        if changed {
            let bridge_iface = "org.freedesktop.NetworkManager.Device.Bridge";
            self.out.changed(&b.path, bridge_iface, vec![("Slaves", Variant::from(ports.clone()))]);
            self.out.changed(&b.path, DEVICE_IFACE, vec![("Ports", Variant::from(ports))]);
        }
    }

    /// Whether the profile's retries (and the user) let autoconnect try it now.
    fn may_autoconnect(&self, uuid: &str, now: Instant) -> bool {
        self.retries.get(uuid).is_none_or(|r| r.may_autoconnect(now))
    }

    /// The device a profile should run on when the caller named none.
    fn device_for_profile(&self, profile: u32) -> Result<u32, NmError> {
        let p = &self.profiles[&profile];
        let conn = p.conn();
        let fits: Vec<&u32> = self
            .devices
            .iter()
            .filter(|(_, d)| d.managed && p.binding.admits(&Self::view(d)) && policy::compatible(&conn, &Self::view(d)))
            .map(|(id, _)| id)
            .collect();
        // As NetworkManager ranks them: a single-connect profile stays on
        // the device it is active on; otherwise an idle device before one
        // busy with another profile, and one it already runs on last.
        let single = !policy::may_run_again(&conn, true);
        let rank = |id: &u32| {
            let d = &self.devices[id];
            let here = d.active.and_then(|ac| self.actives.get(&ac)).is_some_and(|a| a.profile == profile);
            match (here, d.active.is_none()) {
                (true, _) if single => 0,
                (true, _) => 3,
                (false, true) => 1,
                (false, false) => 2,
            }
        };
        let ready =
            fits.iter().filter(|id| self.devices[id].state >= DeviceState::Disconnected).min_by_key(|id| rank(id));
        match (ready, fits.first()) {
            (Some(id), _) => Ok(**id),
            // NetworkManager's words: nmcli prints them after "Connection activation failed: ".
            (None, Some(id)) => Err(NmError::manager(
                "UnknownDevice",
                format!(
                    "No suitable device found for this connection (device {} not available because device has no carrier).",
                    self.devices[id].name
                ),
            )),
            (None, None) => Err(NmError::manager("UnknownDevice", "No suitable device found for this connection.")),
        }
    }

    fn best_profile(&self, device: u32, auto: bool) -> Option<u32> {
        let d = &self.devices[&device];
        let view = Self::view(d);
        let now = Instant::now();
        let active_elsewhere: std::collections::HashSet<u32> =
            self.actives.values().filter(|a| a.device != device).map(|a| a.profile).collect();
        let conns: Vec<(u32, Arc<Connection>, u64)> = self
            .profiles
            .iter()
            .filter(|(id, p)| {
                p.binding.admits(&view) && (!active_elsewhere.contains(id) || policy::may_run_again(&p.conn(), !auto))
            })
            .map(|(id, p)| (*id, p.conn(), self.timestamps.get(&p.uuid).copied().unwrap_or(0)))
            .filter(|(_, c, _)| !auto || policy::autoconnects(c))
            .filter(|(_, c, _)| !auto || self.may_autoconnect(c.uuid().unwrap_or_default(), now))
            .collect();
        policy::best(
            &view,
            conns.iter().map(|(id, conn, ts)| Candidate {
                id: *id,
                conn,
                timestamp: *ts,
                system: self.profiles.get(id).is_some_and(|p| p.source == Source::System),
            }),
        )
    }

    fn retries_for(&mut self, uuid: &str) -> &mut Retries {
        let conn = self.profiles.values().find(|p| p.uuid == uuid).map(|p| p.conn()).unwrap_or_default();
        self.retries.entry(uuid.to_string()).or_insert_with(|| Retries::new(&conn))
    }

    fn retries_for_profile(&mut self, profile: u32) -> &mut Retries {
        let uuid = self.profiles.get(&profile).map(|p| p.uuid.clone()).unwrap_or_default();
        self.retries_for(&uuid)
    }

    async fn add_and_activate(
        &mut self,
        mut dict: SettingsDict,
        device: &OwnedObjectPath,
    ) -> Result<(OwnedObjectPath, OwnedObjectPath), NmError> {
        let dev = self
            .device_by_path(device)
            .ok_or_else(|| NmError::manager("UnknownDevice", format!("Device '{device}' not found")))?;
        // Complete the partial profile from the device, as NetworkManager does
        // for `nmcli device connect`.
        let (name, kind) = (self.devices[&dev].name.clone(), self.devices[&dev].kind);
        let c = dict.entry("connection".into()).or_default();
        c.entry("type".into()).or_insert_with(|| Value::Str(kind.connection_type().into()));
        c.entry("id".into()).or_insert_with(|| Value::Str(name.clone()));
        c.entry("uuid".into()).or_insert_with(|| Value::Str(uuid::Uuid::new_v4().to_string()));
        c.entry("interface-name".into()).or_insert_with(|| Value::Str(name.clone()));
        let profile = self.add_connection(dict, true).await?;
        let path = self.profiles[&profile].path.clone();
        let ac = self.activate(profile, dev, true, ActivationType::Full).await?;
        Ok((path, ac))
    }

    // --------------------------------------------------------- profiles ---

    fn parse(dict: &SettingsDict) -> Result<Connection, NmError> {
        let conn = dbus_dict::from_dbus(dict)?;
        Ok(validate::normalize_and_validate(conn)?)
    }

    /// Sends what the engine queued before it waits on another service
    /// (nm-dhcp-helper, nm-dispatcher, a settings service): clients would
    /// otherwise wait for that answer too (an activation's last signals
    /// waited for the DHCPv6 helper's `Start`, 8 ms).
    async fn before_calling_out(&self) {
        self.out.send_queued().await;
    }

    /// New profiles go to the system service (a user's own are added to
    /// that user's service directly, not through nm-core).
    async fn remote_settings(&self) -> Result<nm_dbus::settings_service::SettingsProxy<'static>, NmError> {
        self.before_calling_out().await;
        settings_view::settings_proxy(&self.bus, Source::System).await.map_err(NmError::from)
    }

    /// Where a profile lives: its service and its path there.
    fn remote_of(&self, id: u32) -> Result<(Source, OwnedObjectPath), NmError> {
        self.profiles.get(&id).map(|p| (p.source, p.remote.clone())).ok_or_else(|| err_profile_gone(id))
    }

    fn profile_by_remote(&self, source: Source, remote: &OwnedObjectPath) -> Option<u32> {
        self.profiles.iter().find(|(_, p)| p.source == source && &p.remote == remote).map(|(id, _)| *id)
    }

    async fn add_connection(&mut self, dict: SettingsDict, save: bool) -> Result<u32, NmError> {
        let conn = Self::parse(&dict)?;
        let uuid = conn.uuid().unwrap_or_default().to_string();
        if self.profiles.values().any(|p| p.uuid == uuid) {
            return Err(NmError::settings("UuidExists", format!("a profile with the uuid {uuid} already exists")));
        }
        let wire = settings_to_wire(&dbus_dict::to_dbus(&conn, true)).map_err(|e| NmError::failed(e.0))?;
        let settings = self.remote_settings().await?;
        let remote =
            if save { settings.add_connection(wire).await } else { settings.add_connection_unsaved(wire).await }
                .map_err(NmError::from)?;
        // Where the service keeps it is read before the profile is exported:
        // a client listing it at once sees its file (the service's
        // NewConnection comes later, as an input of its own).
        let storage = Storage { unsaved: !save, ..settings_view::storage(&self.bus, Source::System, &remote).await };
        // The service's NewConnection signal may already be queued; the
        // profile is matched by its remote path then, and not added twice.
        let id = self
            .profile_loaded(Source::System, remote, conn.without_secrets(), Some(storage), false)
            .await
            .ok_or_else(|| NmError::settings("UuidExists", format!("a profile with the uuid {uuid} already exists")))?;
        Ok(id)
    }

    async fn update_connection(&mut self, id: u32, dict: SettingsDict, to_disk: bool) -> Result<(), NmError> {
        let profile = self.profiles.get(&id).ok_or_else(|| err_profile_gone(id))?;
        let conn = Self::parse(&dict)?;
        if Some(profile.uuid.as_str()) != conn.uuid() {
            return Err(NmError::connection("InvalidProperty", "connection.uuid: the uuid of a profile cannot change"));
        }
        let (source, remote) = (profile.source, profile.remote.clone());
        let wire = settings_to_wire(&dbus_dict::to_dbus(&conn, true)).map_err(|e| NmError::failed(e.0))?;
        self.before_calling_out().await;
        let proxy = settings_view::connection_proxy(&self.bus, source, &remote).await.map_err(NmError::from)?;
        if to_disk { proxy.update(wire).await } else { proxy.update_unsaved(wire).await }.map_err(NmError::from)?;
        // Saving moves an in-memory profile to a file (and back): its
        // `Filename` is read back before the call is answered (kept as it
        // was if the service cannot say).
        let read = settings_view::storage(&self.bus, source, &remote).await;
        let filename = if read.filename.is_empty() {
            self.profiles.get(&id).map(|p| p.props.lock().filename.clone()).unwrap_or_default()
        } else {
            read.filename
        };
        let storage = Storage { filename, unsaved: !to_disk };
        self.forget_auto_default(id, false).await;
        self.profile_changed(id, conn.without_secrets()).await;
        self.set_storage(id, storage).await;
        Ok(())
    }

    /// `Filename`, `Unsaved` and `Flags` of a profile, announced when changed.
    async fn set_storage(&mut self, id: u32, storage: Storage) {
        let Some(p) = self.profiles.get(&id) else { return };
        let mut changed = Vec::new();
        {
            let mut props = p.props.lock();
            if props.unsaved != storage.unsaved {
                props.unsaved = storage.unsaved;
                changed.push(("Unsaved", Variant::from(storage.unsaved)));
                changed.push(("Flags", Variant::from(props.flags())));
            }
            if props.filename != storage.filename {
                changed.push(("Filename", Variant::from(storage.filename.clone())));
            }
            props.unsaved = storage.unsaved;
            props.filename = storage.filename;
        }
        if !changed.is_empty() {
            self.out.changed(&p.path, CONNECTION_IFACE, changed);
        }
    }

    async fn delete_connection(&mut self, id: u32) -> Result<(), NmError> {
        let (source, remote) = self.remote_of(id)?;
        // Rule B3: an active connection never points at a missing profile.
        self.deactivate_profile(id, ac_reason::CONNECTION_REMOVED).await;
        self.before_calling_out().await;
        let proxy = settings_view::connection_proxy(&self.bus, source, &remote).await.map_err(NmError::from)?;
        proxy.delete().await.map_err(NmError::from)?;
        self.forget_auto_default(id, true).await;
        self.profile_removed(id).await;
        Ok(())
    }

    async fn get_secrets(&self, id: u32, setting: &str) -> Result<SettingsDict, NmError> {
        let (source, remote) = self.remote_of(id)?;
        self.before_calling_out().await;
        fetch_secrets(&self.bus, source, remote, setting).await
    }

    async fn settings_event(&mut self, source: Source, event: SettingsEvent) {
        let name = source.bus_name();
        match event {
            SettingsEvent::Loaded(Snapshot { profiles, owner, hostname }) => {
                let mut seen = Vec::new();
                for Remote { path, dict, storage } in profiles {
                    match Self::parse(&dict).map(|c| Self::owned_by(source, &owner, c)) {
                        Ok(conn) => {
                            if let Some(id) = self.profile_loaded(source, path, conn, Some(storage), true).await {
                                seen.push(id);
                            }
                        }
                        Err(e) => warn!("profile {path} from {name} is invalid: {e}"),
                    }
                }
                if source == Source::User {
                    info!(uid = owner.uid, profiles = seen.len(), "a user's profiles are known");
                    self.user_owner = Some(owner);
                }
                self.publish_connections().await;
                self.refresh_available().await;
                let seen: std::collections::HashSet<u32> = seen.into_iter().collect();
                let gone: Vec<u32> = self
                    .profiles
                    .iter()
                    .filter(|(id, p)| p.source == source && !seen.contains(id))
                    .map(|(id, _)| *id)
                    .collect();
                for id in gone {
                    self.deactivate_profile(id, ac_reason::CONNECTION_REMOVED).await;
                    self.profile_removed(id).await;
                }
                self.adopt_software().await;
                if source == Source::System {
                    self.settings_known = true;
                    info!(profiles = self.profiles.len(), "profiles known");
                    if let Some(h) = hostname {
                        self.set_hostname(h).await;
                    }
                    self.assume_recorded().await;
                    self.follow_externals().await;
                    self.make_auto_defaults().await;
                }
                self.autoconnect_all().await;
            }
            SettingsEvent::Absent if source == Source::System => {
                // Active profiles stay (and stay exported); new activations wait.
                self.settings_known = true;
                self.assume_recorded().await;
            }
            SettingsEvent::Absent => {
                // The user logged out: their profiles go, and what they
                // activated goes down with them (as in the split design).
                self.user_owner = None;
                let gone: Vec<u32> =
                    self.profiles.iter().filter(|(_, p)| p.source == Source::User).map(|(id, _)| *id).collect();
                for id in gone {
                    self.deactivate_profile(id, ac_reason::CONNECTION_REMOVED).await;
                    self.profile_removed(id).await;
                }
                self.autoconnect_all().await;
            }
            SettingsEvent::Added(Remote { path: remote, dict, storage }) => {
                let owner = self.owner_of(source);
                match Self::parse(&dict).map(|c| Self::owned_by(source, &owner, c)) {
                    Ok(conn) => {
                        self.profile_loaded(source, remote, conn, Some(storage), false).await;
                        self.adopt_software().await;
                        self.autoconnect_all().await;
                    }
                    Err(e) => warn!("new profile {remote} from {name} is invalid: {e}"),
                }
            }
            SettingsEvent::Updated(Remote { path: remote, dict, storage }) => {
                let Some(id) = self.profile_by_remote(source, &remote) else {
                    return;
                };
                let owner = self.owner_of(source);
                match Self::parse(&dict).map(|c| Self::owned_by(source, &owner, c)) {
                    Ok(conn) => {
                        self.set_storage(id, storage).await;
                        self.profile_changed(id, conn).await;
                    }
                    Err(e) => {
                        warn!("profile {remote} from {name} was updated into an invalid one: {e}; dropping it");
                        self.deactivate_profile(id, ac_reason::CONNECTION_REMOVED).await;
                        self.profile_removed(id).await;
                    }
                }
                self.autoconnect_all().await;
            }
            SettingsEvent::Removed(remote) => {
                let Some(id) = self.profile_by_remote(source, &remote) else {
                    return;
                };
                self.deactivate_profile(id, ac_reason::CONNECTION_REMOVED).await;
                self.profile_removed(id).await;
            }
        }
    }

    /// A user's profile belongs to that user alone: unless it says
    /// otherwise, its `connection.permissions` names the user, so that the
    /// rules for per-user profiles (who sees it, who may activate it) apply.
    fn owned_by(source: Source, owner: &Owner, mut conn: Connection) -> Connection {
        if source != Source::User {
            return conn;
        }
        let listed = conn
            .get("connection", "permissions")
            .is_some_and(|v| !matches!(v, Value::Array { items, .. } if items.is_empty()));
        if !listed && let Some(user) = &owner.name {
            conn.set("connection", "permissions", Value::str_list([format!("user:{user}:")]));
        }
        conn
    }

    /// Who runs a service (root for the system's).
    fn owner_of(&self, source: Source) -> Owner {
        match (source, &self.user_owner) {
            (Source::User, Some(owner)) => owner.clone(),
            _ => Owner { uid: 0, name: Some("root".into()) },
        }
    }

    /// A profile a service has: new (exported), or known by uuid (updated,
    /// its remote path refreshed). Returns its id; `None` when a user's
    /// profile has the uuid of a system one (the system's wins).
    /// `quiet`: part of a whole list (the caller publishes the list and the
    /// devices' available profiles once at the end). `storage`: where the
    /// service keeps it, when it said (`None`: unchanged).
    async fn profile_loaded(
        &mut self,
        source: Source,
        remote: OwnedObjectPath,
        conn: Connection,
        storage: Option<Storage>,
        quiet: bool,
    ) -> Option<u32> {
        let uuid = conn.uuid().unwrap_or_default().to_string();
        let known = self
            .profiles
            .iter()
            .find(|(_, p)| p.uuid == uuid || (p.source == source && p.remote == remote))
            .map(|(id, p)| (*id, p.source));
        if let Some((id, known_source)) = known {
            if known_source != source {
                warn!(
                    "{} has a profile with the uuid {uuid} of one of {}; ignoring it",
                    source.bus_name(),
                    known_source.bus_name()
                );
                return None;
            }
            if let Some(p) = self.profiles.get_mut(&id) {
                p.remote = remote;
            }
            if let Some(storage) = storage {
                self.set_storage(id, storage).await;
            }
            self.profile_changed(id, conn).await;
            return Some(id);
        }
        let id = next(&mut self.counters.profile);
        let path = api::path("Settings", id);
        let storage = storage.unwrap_or_default();
        let props = Props::new(ConnectionProps {
            timestamp: self.timestamps.get(&uuid).copied().unwrap_or(0),
            generated: false,
            external: false,
            conn: Arc::new(conn),
            unsaved: storage.unsaved,
            filename: storage.filename,
        });
        let iface = ConnectionIface { id, props: props.clone(), engine: self.handle.clone() };
        if let Err(e) = self.out.at(&path, iface).await {
            warn!("exporting {path}: {e}");
        }
        let binding = policy::Binding::of(&props.lock().conn);
        self.profiles.insert(id, Profile { path: path.clone(), source, remote, uuid, props, binding });
        self.out.signal(SETTINGS_PATH, SETTINGS_IFACE, "NewConnection", &(path,));
        if !quiet {
            self.publish_connections().await;
            self.refresh_available().await;
        }
        Some(id)
    }

    /// `Settings.Connections`.
    async fn publish_connections(&mut self) {
        let connections: Vec<OwnedObjectPath> = self.profiles.values().map(|p| p.path.clone()).collect();
        self.settings.lock().connections = connections.clone();
        self.out.changed(&settings_path(), SETTINGS_IFACE, vec![("Connections", Variant::from(connections))]);
    }

    async fn profile_changed(&mut self, id: u32, conn: Connection) {
        let Some(p) = self.profiles.get_mut(&id) else {
            return;
        };
        {
            let mut props = p.props.lock();
            if *props.conn == conn {
                return;
            }
            p.binding = policy::Binding::of(&conn);
            props.conn = Arc::new(conn);
        }
        let path = p.path.clone();
        self.out.signal(&path, CONNECTION_IFACE, "Updated", &());
        self.retries.remove(&p.uuid.clone());
        self.refresh_available().await;
    }

    async fn profile_removed(&mut self, id: u32) {
        let Some(p) = self.profiles.remove(&id) else {
            return;
        };
        self.out.signal(&p.path, CONNECTION_IFACE, "Removed", &());
        let connections: Vec<OwnedObjectPath> = self.profiles.values().map(|p| p.path.clone()).collect();
        self.settings.lock().connections = connections.clone();
        self.out.changed(&settings_path(), SETTINGS_IFACE, vec![("Connections", Variant::from(connections))]);
        self.out.signal(SETTINGS_PATH, SETTINGS_IFACE, "ConnectionRemoved", &(&p.path,));
        let _ = self.out.remove::<ConnectionIface>(&p.path).await;
        self.retries.remove(&p.uuid);
        self.refresh_available().await;
        // A device it was active on may take another profile.
        self.autoconnect_all().await;
    }

    async fn deactivate_profile(&mut self, profile: u32, why: u32) {
        let acs: Vec<u32> = self.actives.iter().filter(|(_, a)| a.profile == profile).map(|(id, _)| *id).collect();
        for ac in acs {
            self.deactivate(ac, reason::CONNECTION_REMOVED, why).await;
        }
    }

    /// Recomputes every device's `AvailableConnections`.
    async fn refresh_available(&mut self) {
        let conns: Vec<(OwnedObjectPath, &policy::Binding, Arc<Connection>)> =
            self.profiles.values().map(|p| (p.path.clone(), &p.binding, p.conn())).collect();
        let mut changes = Vec::new();
        for d in self.devices.values() {
            let view = Self::view(d);
            let list: Vec<OwnedObjectPath> = if d.managed {
                conns
                    .iter()
                    .filter(|(_, b, c)| b.admits(&view) && policy::compatible(c, &view))
                    .map(|(p, _, _)| p.clone())
                    .collect()
            } else {
                vec![]
            };
            let mut props = d.props.lock();
            if props.available_connections != list {
                props.available_connections = list.clone();
                changes.push((d.path.clone(), list));
            }
        }
        for (path, list) in changes {
            self.out.changed(&path, DEVICE_IFACE, vec![("AvailableConnections", Variant::from(list))]);
        }
    }

    // ---------------------------------------------------------- devices ---

    async fn platform_event(&mut self, event: PlatformEvent) {
        if let PlatformEvent::AddressAdded(a) | PlatformEvent::AddressRemoved(a) = &event {
            let ifindex = a.ifindex;
            self.follow_external(ifindex, false).await;
        }
        match event {
            PlatformEvent::LinkAdded(link) | PlatformEvent::LinkChanged(link) => {
                if self.devices.values().any(|d| d.ifindex == link.ifindex) {
                    let ifindex = link.ifindex;
                    self.link_changed(link).await;
                    // A router advertisement may now ask for DHCPv6.
                    let on_link: Vec<u32> = self
                        .actives
                        .iter()
                        .filter(|(_, a)| self.devices.get(&a.device).is_some_and(|d| d.ifindex == ifindex))
                        .map(|(id, _)| *id)
                        .collect();
                    for ac in on_link {
                        self.maybe_start_dhcp6(ac).await;
                    }
                } else {
                    self.link_appeared(link).await;
                }
            }
            PlatformEvent::LinkRemoved { ifindex, .. } => self.link_removed(ifindex).await,
            // The kernel marks the address (one without lifetime) or
            // removes it with the mark (one with, as a lease's).
            PlatformEvent::AddressAdded(a) | PlatformEvent::AddressRemoved(a)
                if a.addr.is_ipv6() && a.flags & IFA_F_DADFAILED != 0 =>
            {
                self.leased_address_in_use(&a).await;
            }
            PlatformEvent::AddressAdded(a) | PlatformEvent::AddressRemoved(a) if a.addr.is_ipv6() => {
                let on_link: Vec<(u32, bool)> = self
                    .actives
                    .iter()
                    .filter(|(_, x)| self.devices.get(&x.device).is_some_and(|d| d.ifindex == a.ifindex))
                    .map(|(id, x)| (*id, x.ip6.is_some()))
                    .collect();
                for (ac, shows_v6) in on_link {
                    // The device's IPv6 addresses (the link-local one, the
                    // kernel's autoconfiguration) show in IP6Config.
                    if shows_v6 {
                        self.refresh_ip6(ac).await;
                    }
                    // The link-local address may have become usable.
                    self.maybe_start_dhcp6(ac).await;
                }
            }
            // An IPv4 address someone added or removed by hand shows in the
            // activation's IP4Config.
            PlatformEvent::AddressAdded(a) | PlatformEvent::AddressRemoved(a) => {
                let on_link: Vec<u32> = self
                    .actives
                    .iter()
                    .filter(|(_, x)| {
                        x.ip4.is_some() && self.devices.get(&x.device).is_some_and(|d| d.ifindex == a.ifindex)
                    })
                    .map(|(id, _)| *id)
                    .collect();
                for ac in on_link {
                    self.refresh_ip_configs(ac).await;
                }
            }
            PlatformEvent::Resynced => {}
        }
    }

    fn facts(link: &Link) -> LinkFacts {
        LinkFacts {
            name: link.name.clone(),
            kind: device_type(&link.kind),
            driver: link.driver.clone(),
            mac: link.perm_mac.as_ref().or(link.mac.as_ref()).map(|m| format_mac(m)),
            physical: link.physical,
        }
    }

    async fn link_appeared(&mut self, link: Link) {
        // A software link one of the profiles makes is nm-core's (after a
        // restart too).
        let ours = matches!(
            link.kind,
            LinkKind::Bridge | LinkKind::Macvlan | LinkKind::Vxlan | LinkKind::Tun | LinkKind::Veth
        ) && self.profiles.values().any(|p| p.binding.software_interface() == Some(link.name.as_str()));
        let ifindex = link.ifindex;
        self.add_device(link, ours, true).await;
        // An unmanaged link may come with addresses (no event for them).
        if self.devices.values().any(|d| d.ifindex == ifindex && !d.managed) {
            self.follow_external(ifindex, false).await;
        }
    }

    /// A device object for a new link. `ours`: a link nm-core made (or a
    /// profile of its makes), managed whatever the configuration says of
    /// other software's links. `autoconnect`: look for a profile for it
    /// (not when the link was made for one).
    async fn add_device(&mut self, link: Link, ours: bool, autoconnect: bool) {
        let facts = Self::facts(&link);
        // A device the user let go stays so across a restart of nm-core; a
        // recorded activation is taken back.
        let record = state_files::read_device(&self.paths, link.ifindex);
        let managed = ours
            || (is_managed(&facts, &self.config.core.managed, &self.config.core.unmanaged)
                && !record.as_deref().is_some_and(state_files::parse_unmanaged));
        let id = next(&mut self.counters.device);
        let path = api::path("Devices", id);
        let kind = facts.kind;
        let sleeping = managed && self.asleep();
        let state = if managed && !sleeping { DeviceState::Unavailable } else { DeviceState::Unmanaged };
        let props = Props::new(DeviceProps {
            interface: link.name.clone(),
            driver: link.driver.clone().unwrap_or_default(),
            device_type: kind.number(),
            state: state as u32,
            reason: match (managed, sleeping) {
                (true, true) => reason::SLEEPING,
                (true, false) => reason::NOW_MANAGED,
                _ => reason::NONE,
            },
            managed,
            autoconnect: true,
            active_connection: root(),
            available_connections: vec![],
            hw_address: link.mac.as_deref().map(format_mac).unwrap_or_default(),
            perm_hw_address: link.perm_mac.as_deref().or(link.mac.as_deref()).map(format_mac).unwrap_or_default(),
            mtu: link.mtu,
            carrier: link.carrier,
            ip4_config: root(),
            ip6_config: root(),
            dhcp4_config: root(),
            dhcp6_config: root(),
            interface_flags: iface_flags(&link, false),
            type_description: kind.description().into(),
            software: !link.physical,
            ports: Vec::new(),
            details: link.details.clone(),
            parent: self.parent_path(&link),
            lldp: Vec::new(),
        });
        let server = self.out.clone();
        let exported = async {
            // One announcement for all of them (the outbox joins exports at one
            // path): libnm makes the device from the most specific type
            // interface of its first announcement, and `.Device` alone makes
            // none.
            match kind {
                DeviceType::Ethernet => server.at(&path, WiredIface { props: props.clone() }).await.map(|_| ())?,
                DeviceType::Veth => {
                    server.at(&path, VethIface { props: props.clone() }).await?;
                    server.at(&path, WiredIface { props: props.clone() }).await.map(|_| ())?
                }
                DeviceType::Bridge => server.at(&path, BridgeIface { props: props.clone() }).await.map(|_| ())?,
                DeviceType::Macvlan => server.at(&path, MacvlanIface { props: props.clone() }).await.map(|_| ())?,
                DeviceType::Vxlan => server.at(&path, VxlanIface { props: props.clone() }).await.map(|_| ())?,
                DeviceType::Tun => server.at(&path, TunIface { props: props.clone() }).await.map(|_| ())?,
                _ => server.at(&path, GenericIface { props: props.clone() }).await.map(|_| ())?,
            };
            server.at(&path, StatisticsIface { props: props.clone(), refresh_rate_ms: Arc::default() }).await?;
            server.at(&path, DeviceIface { id, props: props.clone(), engine: self.handle.clone() }).await
        };
        if let Err(e) = exported.await {
            warn!("exporting device {}: {e}", link.name);
        }
        let metric = kind.default_route_metric();
        self.devices.insert(
            id,
            Device {
                path: path.clone(),
                ifindex: link.ifindex,
                name: link.name.clone(),
                kind,
                perm_mac: link.perm_mac.clone().or(link.mac.clone()),
                driver: link.driver.clone(),
                link_parent: link.parent,
                managed,
                state,
                carrier: link.carrier,
                autoconnect: true,
                active: None,
                metric,
                carrier_lost: None,
                mtu_initial: None,
                auto_default_checked: false,
                kernel_ip: [None, None],
                lldp: None,
                props,
            },
        );
        if kind == DeviceType::Veth {
            self.link_parents(link.ifindex, &path).await;
        }
        self.publish_devices().await;
        if !self.discovering {
            self.out.signal(NM_PATH, NM_IFACE, "DeviceAdded", &(&path,));
        }
        self.refresh_available().await;
        if managed && !sleeping {
            info!(device = %link.name, "managing");
            // A recorded activation is taken back as it is: nothing is set.
            let recorded = record.as_deref().and_then(state_files::parse_device).is_some();
            if !link.admin_up && !recorded {
                // NetworkManager sets managed ethernet up to see the carrier.
                if let Err(e) = self.platform.set_link_up(link.ifindex, true).await {
                    warn!(device = %link.name, "setting the link up: {e}");
                }
            }
            if link.carrier || !kind.needs_carrier() {
                self.set_device_state(id, DeviceState::Disconnected, reason::CARRIER).await;
            }
            if self.settings_known && autoconnect {
                self.assume_recorded().await;
                self.follow_external(link.ifindex, true).await;
                self.make_auto_defaults().await;
                self.autoconnect_all().await;
            }
        }
    }

    /// NetworkManager's auto-default profile, "Wired connection N", for
    /// each managed ethernet device that no profile may use, once a device
    /// (see `auto_default.rs`): in memory, DHCP, at the lowest priority.
    /// Only once the system's profiles are known and their service is on
    /// the bus to keep it.
    async fn make_auto_defaults(&mut self) {
        let candidates: Vec<u32> = self
            .devices
            .iter()
            .filter(|(_, d)| {
                d.managed && !d.auto_default_checked && matches!(d.kind, DeviceType::Ethernet | DeviceType::Veth)
            })
            .map(|(id, _)| *id)
            .collect();
        if candidates.is_empty() || !self.settings_known {
            return;
        }
        // Read only when a profile is made: most devices have one already.
        let mut machine_id = None;
        for id in candidates {
            let Some(d) = self.devices.get_mut(&id) else { continue };
            d.auto_default_checked = true;
            let d = &self.devices[&id];
            let perm_mac = self.real_perm_mac(d);
            let facts = LinkFacts {
                name: d.name.clone(),
                kind: d.kind,
                driver: None,
                mac: d.perm_mac.as_deref().map(format_mac),
                physical: d.kind == DeviceType::Ethernet,
            };
            if self.no_auto_default.iter().any(|spec| spec_list_matches(spec, &facts)) {
                continue;
            }
            let view = Self::view(d);
            if self.profiles.values().any(|p| p.binding.admits(&view) && policy::compatible(&p.conn(), &view)) {
                continue;
            }
            let name = {
                let ids: Vec<String> =
                    self.profiles.values().map(|p| p.conn().id().unwrap_or_default().to_string()).collect();
                auto_default::name(ids.iter().map(String::as_str))
            };
            let iface = d.name.clone();
            let device_id = perm_mac.clone().unwrap_or_else(|| iface.clone());
            let machine_id = machine_id.get_or_insert_with(|| self.machine_id());
            let conn = auto_default::profile(&name, &iface, machine_id.as_deref(), &device_id);
            match self.add_connection(dbus_dict::to_dbus(&conn, false), false).await {
                Ok(profile) => {
                    info!(device = %iface, "auto-default: '{name}' made in memory");
                    self.default_wired.insert(profile, id);
                    self.set_generated(profile, |props| props.generated = true).await;
                }
                Err(e) => warn!(device = %iface, "auto-default: '{name}' could not be made: {e}"),
            }
        }
    }

    /// Marks a profile nm-core made (NM_GENERATED, EXTERNAL, …) and
    /// announces its new `Flags`.
    async fn set_generated(&self, profile: u32, mark: impl FnOnce(&mut ConnectionProps)) {
        let Some(p) = self.profiles.get(&profile) else { return };
        let flags = {
            let mut props = p.props.lock();
            mark(&mut props);
            props.flags()
        };
        self.out.changed(&p.path, CONNECTION_IFACE, vec![("Flags", Variant::from(flags))]);
    }

    /// A device's permanent MAC, when it has one of its own (a veth's is
    /// made anew with every link, so it does not name the device).
    fn real_perm_mac(&self, d: &Device) -> Option<String> {
        d.perm_mac.as_deref().filter(|_| d.kind == DeviceType::Ethernet).map(format_mac)
    }

    /// An auto-default profile stops being one: changed by someone (it is
    /// theirs now), or deleted (`by_user`: the device goes into the state
    /// file, so that no other is made for it).
    async fn forget_auto_default(&mut self, profile: u32, by_user: bool) {
        let Some(device) = self.default_wired.remove(&profile) else { return };
        self.set_generated(profile, |props| props.generated = false).await;
        let Some(d) = self.devices.get(&device).filter(|_| by_user) else { return };
        let line = auto_default::state_line(self.real_perm_mac(d).as_deref(), &d.name);
        let file = self.paths.path(auto_default::STATE_FILE);
        let old = std::fs::read_to_string(&file).unwrap_or_default();
        if let Err(e) = nm_runtime::write_atomic(&file, auto_default::add_to_state(&old, &line).as_bytes(), 0o600) {
            warn!("writing {}: {e}", file.display());
        }
        self.no_auto_default.extend(auto_default::parse_state(&line));
    }

    async fn link_changed(&mut self, mut link: Link) {
        let Some(id) = self.devices.iter().find(|(_, d)| d.ifindex == link.ifindex).map(|(id, _)| *id) else {
            return;
        };
        // A "no carrier" event can be older than what nm-core has read
        // since: of a veth pair set up, the kernel announces the first end
        // without carrier at once, and its carrier later (linkwatch, up to
        // a second on). The link is read again before a loss counts.
        if self.devices[&id].carrier && !link.carrier {
            if let Err(e) = self.platform.read_link(&link.name).await {
                tracing::debug!(device = %link.name, "reading the link again: {e}");
            }
            if let Some(now) = self.platform.link(link.ifindex) {
                link = now;
            }
        }
        let (old_carrier, managed, state, path, kind) = {
            let d = &self.devices[&id];
            (d.carrier, d.managed, d.state, d.path.clone(), d.kind)
        };
        let mut changed = Vec::new();
        {
            let d = self.devices.get_mut(&id).expect("device exists");
            d.carrier = link.carrier;
            let lldp = d.lldp.is_some();
            let mut p = d.props.lock();
            let hw = link.mac.as_deref().map(format_mac).unwrap_or_default();
            if p.hw_address != hw {
                p.hw_address = hw.clone();
                changed.push(("HwAddress", Variant::from(hw)));
            }
            if p.mtu != link.mtu {
                p.mtu = link.mtu;
                changed.push(("Mtu", Variant::from(link.mtu)));
            }
            let flags = iface_flags(&link, lldp);
            if p.interface_flags != flags {
                p.interface_flags = flags;
                changed.push(("InterfaceFlags", Variant::from(flags)));
            }
            if p.carrier != link.carrier {
                p.carrier = link.carrier;
            }
            // (The type interfaces' properties follow from these when read.)
            p.details = link.details.clone();
            if p.interface != link.name {
                p.interface = link.name.clone();
                changed.push(("Interface", Variant::from(link.name.clone())));
            }
        }
        let carrier_changed = old_carrier != link.carrier;
        // A veth's peer: the kernel announces the first end made before
        // the pair is joined, without it.
        let parent = self.parent_path(&link);
        if let Some(d) = self.devices.get_mut(&id) {
            d.name = link.name.clone();
            d.link_parent = link.parent;
            let moved = {
                let mut p = d.props.lock();
                std::mem::replace(&mut p.parent, parent.clone()) != parent
            };
            if moved && let Some((iface, prop)) = parent_property(kind) {
                self.out.changed(&path, iface, vec![(prop, Variant::from(parent))]);
            }
        }
        self.out.changed(&path, DEVICE_IFACE, changed);
        if carrier_changed && matches!(kind, DeviceType::Ethernet | DeviceType::Veth) {
            self.out.changed(&path, WIRED_IFACE, vec![("Carrier", Variant::from(link.carrier))]);
        }
        // The carrier came while DHCPv4 waits for its first lease (a bridge
        // whose port just joined: the first DISCOVER left before the port
        // forwarded): ask again now, not at the client's next
        // retransmission seconds later. A new Start replaces the old one.
        if managed && carrier_changed && link.carrier {
            let waiting = self.devices.get(&id).and_then(|d| d.active).filter(|ac| {
                self.actives.get(ac).is_some_and(|a| {
                    a.state == AcState::Activating && a.dhcp.status == V4Status::Waiting && a.dhcp.transaction.is_some()
                })
            });
            if let Some(ac) = waiting {
                tracing::debug!(device = %link.name, "carrier came: DHCPv4 asks again");
                self.start_dhcp(ac, None).await;
            }
        }
        if !managed || self.asleep() || !carrier_changed || !kind.needs_carrier() {
            return;
        }
        if link.carrier {
            if let Some(d) = self.devices.get_mut(&id) {
                d.carrier_lost = None;
            }
            if state == DeviceState::Unavailable {
                info!(device = %link.name, "carrier is back");
                self.set_device_state(id, DeviceState::Disconnected, reason::CARRIER).await;
                self.autoconnect_all().await;
            }
        } else {
            info!(device = %link.name, "carrier lost");
            let since = Instant::now();
            if let Some(d) = self.devices.get_mut(&id) {
                d.carrier_lost = Some(since);
            }
            if state == DeviceState::Disconnected {
                self.set_device_state(id, DeviceState::Unavailable, reason::CARRIER).await;
            } else if state > DeviceState::Disconnected {
                self.schedule(
                    Duration::from_millis(self.config.core.carrier_grace_ms),
                    Timer::CarrierGrace { device: id, since },
                );
            }
        }
    }

    async fn link_removed(&mut self, ifindex: u32) {
        let Some(id) = self.devices.iter().find(|(_, d)| d.ifindex == ifindex).map(|(id, _)| *id) else {
            return;
        };
        if let Some(ac) = self.devices[&id].active {
            self.deactivate(ac, reason::REMOVED, ac_reason::DEVICE_REMOVED).await;
        }
        let Some(d) = self.devices.remove(&id) else {
            return;
        };
        state_files::save_device(&self.paths, ifindex, None);
        // Its auto-default profile goes with it, unless someone changed it.
        let generated: Vec<u32> = self.default_wired.iter().filter(|(_, dev)| **dev == id).map(|(p, _)| *p).collect();
        for profile in generated {
            self.default_wired.remove(&profile);
            if let Err(e) = self.delete_connection(profile).await {
                warn!(device = %d.name, "removing its auto-default profile: {e}");
            }
        }
        let server = self.out.clone();
        for (family, view) in d.kernel_ip.iter().enumerate() {
            if let Some((p, _)) = view {
                self.unexport_ip_object(family == 1, p).await;
            }
        }
        let _ = server.remove::<DeviceIface>(&d.path).await;
        let _ = server.remove::<StatisticsIface>(&d.path).await;
        let _ = server.remove::<WiredIface>(&d.path).await;
        let _ = server.remove::<GenericIface>(&d.path).await;
        let _ = server.remove::<BridgeIface>(&d.path).await;
        let _ = server.remove::<MacvlanIface>(&d.path).await;
        let _ = server.remove::<VxlanIface>(&d.path).await;
        let _ = server.remove::<TunIface>(&d.path).await;
        let _ = server.remove::<VethIface>(&d.path).await;
        self.unlink_parents(&d.path).await;
        self.publish_devices().await;
        self.out.signal(NM_PATH, NM_IFACE, "DeviceRemoved", &(&d.path,));
    }

    /// `Manager.Devices` and `AllDevices` (the same list: no placeholders).
    async fn publish_devices(&mut self) {
        if self.discovering {
            return;
        }
        let devices: Vec<OwnedObjectPath> = self.devices.values().map(|d| d.path.clone()).collect();
        self.manager.lock().devices = devices.clone();
        self.out.changed(
            &nm_path(),
            NM_IFACE,
            vec![("Devices", Variant::from(devices.clone())), ("AllDevices", Variant::from(devices))],
        );
    }

    /// Rule B4: `StateReason` changes together with `State`, then `StateChanged`.
    async fn set_device_state(&mut self, id: u32, state: DeviceState, why: u32) {
        let Some(d) = self.devices.get_mut(&id) else {
            return;
        };
        let old = d.state;
        if old == state {
            return;
        }
        d.state = state;
        {
            let mut p = d.props.lock();
            p.state = state as u32;
            p.reason = why;
        }
        let path = d.path.clone();
        let name = d.name.clone();
        tracing::debug!(device = %name, "state {} -> {} (reason {why})", old as u32, state as u32);
        self.out.changed(
            &path,
            DEVICE_IFACE,
            vec![("State", Variant::from(state as u32)), ("StateReason", Variant::from((state as u32, why)))],
        );
        self.out.signal(&path, DEVICE_IFACE, "StateChanged", &(state as u32, old as u32, why));
    }

    // ------------------------------------------------------- activation ---

    /// A metric no other active device uses: the type's default, bumped.
    fn free_metric(&self, device: u32) -> u32 {
        let d = &self.devices[&device];
        let base = d.kind.default_route_metric();
        let used: Vec<u32> = self
            .actives
            .values()
            .filter(|a| a.device != device)
            .filter_map(|a| self.devices.get(&a.device))
            .map(|d| d.metric)
            .collect();
        (base..base + 50).find(|m| !used.contains(m)).unwrap_or(base)
    }

    async fn activate(
        &mut self,
        profile: u32,
        device: u32,
        by_user: bool,
        how: ActivationType,
    ) -> Result<OwnedObjectPath, NmError> {
        let assumed = how != ActivationType::Full;
        let external = matches!(how, ActivationType::External(_));
        let Some(d) = self.devices.get(&device) else {
            return Err(NmError::manager("UnknownDevice", "no such device"));
        };
        if !d.managed {
            return Err(NmError::manager(
                "ConnectionNotAvailable",
                format!("Device {} is not managed by nm-rs", d.name),
            ));
        }
        if !self.networking_enabled {
            return Err(NmError::manager("ConnectionNotAvailable", "networking is disabled"));
        }
        if self.sleeping {
            return Err(NmError::manager("ConnectionNotAvailable", "nm-rs is asleep"));
        }
        let conn = self.profiles.get(&profile).map(|p| p.conn()).ok_or_else(|| err_profile_gone(profile))?;
        if !policy::compatible(&conn, &Self::view(d)) {
            return Err(NmError::manager(
                "ConnectionNotAvailable",
                format!(
                    "Connection '{}' is not available on device {} because it is not compatible",
                    conn.id().unwrap_or(""),
                    d.name
                ),
            ));
        }
        // A port whose bridge is neither a profile nor a link is refused
        // here, as NetworkManager refuses it: failing later would end the
        // activation before the caller could see it.
        if let Some(master) = bridge::master(&conn)
            && !self.profiles.values().any(|p| bridge::is_master_of(&p.conn(), master))
            && !self.devices.values().any(|d| d.kind == DeviceType::Bridge && d.name == master)
        {
            return Err(NmError::manager(
                "UnknownConnection",
                format!(
                    "Can not find a master for {}: Master connection not found or invalid",
                    conn.id().unwrap_or("")
                ),
            ));
        }
        if d.state < DeviceState::Disconnected {
            return Err(NmError::manager(
                "ConnectionNotAvailable",
                format!(
                    "Connection '{}' is not available on device {} because device has no carrier",
                    conn.id().unwrap_or(""),
                    d.name
                ),
            ));
        }
        // One activation per device, and a profile on one device at a time
        // unless its `multi-connect` lets it be on more.
        if let Some(old) = d.active {
            self.deactivate(old, reason::NEW_ACTIVATION, ac_reason::DEVICE_DISCONNECTED).await;
        }
        let elsewhere: Vec<u32> = self
            .actives
            .iter()
            .filter(|(_, a)| a.profile == profile && !policy::may_run_again(&conn, by_user))
            .map(|(id, _)| *id)
            .collect();
        for ac in elsewhere {
            self.deactivate(ac, reason::NEW_ACTIVATION, ac_reason::DEVICE_DISCONNECTED).await;
        }

        let recorded = state_files::load_device(&self.paths, self.devices[&device].ifindex);
        let metric = match &recorded {
            Some(r) if assumed && r.metric > 0 => r.metric,
            _ => self.free_metric(device),
        };
        if let Some(d) = self.devices.get_mut(&device) {
            d.metric = metric;
        }
        let mut plan = ipconfig::plan(&conn, metric);
        if let ActivationType::External(seen) = how {
            seen.show_in(&mut plan);
        }
        let id = next(&mut self.counters.active);
        let path = api::path("ActiveConnection", id);
        let (dev_path, ifindex, name) = {
            let d = &self.devices[&device];
            (d.path.clone(), d.ifindex, d.name.clone())
        };
        let props = Props::new(ActiveProps {
            connection: self.profiles[&profile].path.clone(),
            id: conn.id().unwrap_or_default().into(),
            uuid: conn.uuid().unwrap_or_default().into(),
            kind: conn.connection_type().unwrap_or_default().into(),
            devices: vec![dev_path.clone()],
            state: AcState::Activating as u32,
            state_flags: state_flags(&conn, &plan, AcState::Activating, false),
            default4: false,
            default6: false,
            ip4_config: root(),
            ip6_config: root(),
            dhcp4_config: root(),
            dhcp6_config: root(),
        });
        // Rule B1: the object is on the bus before the reply names it.
        if let Err(e) = self.out.at(&path, ActiveIface { props: props.clone() }).await {
            return Err(NmError::failed(format!("exporting {path}: {e}")));
        }
        self.actives.insert(
            id,
            Box::new(Active {
                path: path.clone(),
                profile,
                device,
                state: AcState::Activating,
                plan: plan.clone(),
                rules: ipconfig::routing_rules(&conn),
                dhcp: Dhcp4 {
                    status: V4Status::NotUsed,
                    transaction: None,
                    held: None,
                    lease: Default::default(),
                    config: None,
                },
                dhcp6: Dhcp6::default(),
                link_local: LinkLocal4::default(),
                assumed,
                external,
                conn: conn.clone(),
                ip4: None,
                ip6: None,
                props,
                by_user,
                pre_up_pending: false,
                auth: None,
                sharing: None,
                ethtool_saved: None,
                promisc_initial: None,
            }),
        );
        if let Some(d) = self.devices.get_mut(&device) {
            d.active = Some(id);
            d.props.lock().active_connection = path.clone();
        }
        self.out.changed(&dev_path, DEVICE_IFACE, vec![("ActiveConnection", Variant::from(path.clone()))]);
        self.publish_actives().await;
        info!(device = %name, uuid = conn.uuid().unwrap_or_default(), "activating '{}'", conn.id().unwrap_or_default());
        let why = if assumed { reason::CONNECTION_ASSUMED } else { reason::NONE };

        // Stage 1 (prepare): a bridge's own settings, cloned MAC. Stage 2
        // (config): MTU, link up.
        self.set_device_state(device, DeviceState::Prepare, why).await;
        let mut failure = None;
        if !assumed
            && bridge::interface(&conn).is_some()
            && let Err(e) = self.configure_bridge(ifindex, &conn).await
        {
            failure = Some((format!("configuring the bridge: {e}"), reason::CONFIG_FAILED));
        }
        if !assumed
            && failure.is_none()
            && let Some(mac) = self.cloned_mac(device, &conn, plan.mac)
            && self.platform.link(ifindex).and_then(|l| l.mac).as_deref() != Some(mac.as_slice())
            && let Err(e) = self.platform.set_mac(ifindex, mac).await
        {
            failure = Some((format!("setting the MAC address: {e}"), reason::IP_CONFIG_UNAVAILABLE));
        }
        self.set_device_state(device, DeviceState::Config, why).await;
        if failure.is_none() && lldp_wanted(&conn) {
            self.start_lldp(device);
        }
        if !assumed && failure.is_none() {
            // An MTU the link cannot take is a warning, as in NetworkManager.
            if let Some(mtu) = plan.mtu
                && let Err(e) = self.set_mtu(ifindex, mtu).await
            {
                warn!(device = %name, "MTU {mtu} left out: {e}");
            }
            // Before the link comes up: its link-local address is made then.
            // On a link that is up already the kernel keeps the one it made
            // with the old mode; IPv6 off and on again makes it anew (as
            // NetworkManager's own link-local address would be).
            if let Some(ids) = &plan.v6_addr_gen
                && self.set_addr_gen(&name, ids)
                && self.platform.link(ifindex).is_some_and(|l| l.admin_up)
                && plan.v6 != FamilyMethod::Disabled
            {
                set_sysctl(&name, "disable_ipv6", "1");
                set_sysctl(&name, "disable_ipv6", "0");
            }
            self.apply_ethtool(id, &conn);
            // `802-3-ethernet.accept-all-mac-addresses` (-1: as the link is).
            let wanted = conn.get("802-3-ethernet", "accept-all-mac-addresses").and_then(Value::as_i128);
            let now = self.platform.link(ifindex).map(|l| l.promisc);
            if let (Some(w @ (0 | 1)), Some(now)) = (wanted, now)
                && (w == 1) != now
            {
                match self.platform.set_promisc(ifindex, w == 1).await {
                    Ok(()) => {
                        if let Some(a) = self.actives.get_mut(&id) {
                            a.promisc_initial = Some(now);
                        }
                    }
                    Err(e) => warn!(device = %name, "accept-all-mac-addresses left out: {e}"),
                }
            }
            if let Err(e) = self.apply_tc(ifindex, &conn).await {
                failure = Some((format!("applying traffic control: {e}"), reason::CONFIG_FAILED));
            }
            if failure.is_none()
                && let Err(e) = self.platform.set_link_up(ifindex, true).await
            {
                failure = Some((format!("setting the link up: {e}"), reason::IP_CONFIG_UNAVAILABLE));
            }
        }
        if failure.is_none()
            && let Some(master) = bridge::master(&conn)
            && let Err(e) = self.attach_port(device, &conn, master, by_user).await
        {
            failure = Some((format!("joining bridge {master}: {e}"), reason::IP_CONFIG_UNAVAILABLE));
        }
        if let Some((f, why)) = failure {
            warn!(device = %name, "activation of '{}' failed: {f}", conn.id().unwrap_or_default());
            let _ = self.tx.send(Input::Timer(Timer::Failed { ac: id, reason: why }));
            // The caller gets the path; the failure shows as states, as in NetworkManager.
            return Ok(path);
        }
        // Still stage 2: 802.1X (secrets, then wpa_supplicant). Its answers
        // come back as inputs; the last one goes on to ip-config.
        if !assumed && supplicant::wants_8021x(&conn) {
            if let Some(a) = self.actives.get_mut(&id) {
                a.auth = Some(Auth8021x { machine: supplicant::Machine::new(by_user), session: None, cancel: None });
            }
            self.auth_step(id, supplicant::Step::Start).await;
            return Ok(path);
        }
        // `connection.autoconnect-slaves`: a bridge brings its ports up
        // with it, before its own addresses (its DHCP goes through them).
        if !assumed && bridge::interface(&conn).is_some() && bridge::brings_up_ports(&conn) {
            self.activate_ports(&conn, by_user).await;
        }
        self.ip_config_stage(id).await;
        Ok(path)
    }

    /// Activates the port profiles of the bridge profile `bridge` that are
    /// not active yet, each on its device (one that is missing or busy with
    /// another profile is left, with a word in the log).
    async fn activate_ports(&mut self, bridge: &Connection, by_user: bool) {
        let ports: Vec<u32> = self
            .profiles
            .iter()
            .filter(|(_, p)| bridge::master(&p.conn()).is_some_and(|m| bridge::is_master_of(bridge, m)))
            .filter(|(id, _)| !self.actives.values().any(|a| a.profile == **id))
            .map(|(id, _)| *id)
            .collect();
        for port in ports {
            let result = match self.device_for_profile(port) {
                Ok(device) if self.devices.get(&device).is_some_and(|d| d.active.is_none()) => {
                    Box::pin(self.activate(port, device, by_user, ActivationType::Full)).await.map(drop)
                }
                Ok(_) => Err(NmError::manager("ConnectionNotAvailable", "its device is busy with another profile")),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                let name = self.profiles.get(&port).map(|p| p.conn().id().unwrap_or_default().to_string());
                info!("port '{}' not brought up with its bridge: {e}", name.unwrap_or_default());
            }
        }
    }

    /// Stage 3 (ip-config): addresses and routes; DHCP slots in here.
    async fn ip_config_stage(&mut self, id: u32) {
        let Some(a) = self.actives.get(&id) else { return };
        let (device, assumed, mut plan, conn) = (a.device, a.assumed, a.plan.clone(), a.conn.clone());
        let Some((ifindex, name, metric)) = self.devices.get(&device).map(|d| (d.ifindex, d.name.clone(), d.metric))
        else {
            return;
        };
        let why = if assumed { reason::CONNECTION_ASSUMED } else { reason::NONE };
        self.set_device_state(device, DeviceState::IpConfig, why).await;
        if self.actives.get(&id).is_some_and(|a| a.external) {
            // Someone else's configuration: shown, never touched.
            self.try_complete(id).await;
            return;
        }
        if plan.v4 == FamilyMethod::Shared && !plan.addresses.iter().any(|a| a.addr.is_ipv4()) {
            self.pick_shared_address(&mut plan, &conn, metric, ifindex);
            if let Some(a) = self.actives.get_mut(&id) {
                a.plan = plan.clone();
            }
        }
        if let Err(f) = self.apply_plan(ifindex, &plan).await {
            warn!(device = %name, "activation of '{}' failed: {f}", conn.id().unwrap_or_default());
            let _ = self.tx.send(Input::Timer(Timer::Failed { ac: id, reason: reason::IP_CONFIG_UNAVAILABLE }));
            return;
        }
        if plan.v4 == FamilyMethod::Shared {
            let own = plan.addresses.iter().find_map(|a| match a.addr {
                IpAddr::V4(v4) => Some((v4, a.prefix)),
                IpAddr::V6(_) => None,
            });
            let files = crate::shared::files(&name, |p| self.paths.path(p));
            let started = own
                .ok_or_else(|| "no address to share".to_string())
                .and_then(|(addr, prefix)| crate::shared::start(&name, addr, prefix, &files));
            match started {
                Ok(sharing) => {
                    info!(device = %name, "sharing its connection (dnsmasq, NAT)");
                    if let Some(a) = self.actives.get_mut(&id) {
                        a.sharing = Some(sharing);
                    }
                }
                Err(e) => {
                    warn!(device = %name, "sharing the connection of '{}' failed: {e}", conn.id().unwrap_or_default());
                    let _ = self.tx.send(Input::Timer(Timer::Failed { ac: id, reason: reason::SHARED_START_FAILED }));
                    return;
                }
            }
        }
        if let Some(a) = self.actives.get(&id) {
            self.add_rules(&a.rules).await;
        }
        if plan.v4 == FamilyMethod::Dhcp {
            self.start_dhcp(id, None).await;
        }
        if dhcp::link_local_beside(&conn) {
            self.start_link_local(id).await;
        }
        // After DHCPv4's start: its first message goes out before the
        // router's answer keeps the link (and the server) busy.
        if plan.v6_slaac {
            self.solicit_routers(ifindex);
        }
        if plan.v6 == FamilyMethod::Dhcp {
            let wait = dhcp6::timeout(&conn);
            self.schedule(Duration::from_secs(wait.into()), Timer::Dhcp6Wait { ac: id });
        }
        self.maybe_start_dhcp6(id).await;
        self.try_complete(id).await;
    }

    // ----------------------------------------------------------- 802.1X ---

    /// An answer for the 802.1X stage: secrets go into the applied
    /// connection only (the log names the setting and the source, never a
    /// value), then the stage's machine decides.
    async fn auth_input(&mut self, ac: u32, input: AuthInput) {
        let Some(a) = self.actives.get_mut(&ac) else { return };
        let id = a.conn.id().unwrap_or_default().to_string();
        let step = match input {
            AuthInput::ServiceSecrets(answer) => {
                match answer {
                    Ok(dict) => {
                        let mut conn = (*a.conn).clone();
                        let got = agents::merge_secrets(&mut conn, supplicant::SETTING, &dict);
                        a.conn = Arc::new(conn);
                        if !got.is_empty() {
                            info!("secrets of '{id}' ({}) from the settings service", got.join(", "));
                        }
                    }
                    Err(e) => warn!("stored secrets of '{id}' unavailable: {e}"),
                }
                supplicant::Step::ServiceAnswered
            }
            AuthInput::AgentSecrets(answer) => {
                if let Some(auth) = a.auth.as_mut() {
                    auth.cancel = None;
                }
                if let Some((agent, dict)) = answer {
                    let mut conn = (*a.conn).clone();
                    let got = agents::merge_secrets(&mut conn, supplicant::SETTING, &dict);
                    a.conn = Arc::new(conn);
                    info!("secrets of '{id}' ({}) from secret agent '{agent}'", got.join(", "));
                }
                supplicant::Step::AgentsAnswered
            }
            AuthInput::Supplicant(e) => supplicant::Step::Supplicant(e),
        };
        self.auth_step(ac, step).await;
    }

    /// Runs the 802.1X stage one step and does what it decides.
    async fn auth_step(&mut self, ac: u32, step: supplicant::Step) {
        use supplicant::Action;
        let Some(a) = self.actives.get_mut(&ac) else { return };
        if a.state != AcState::Activating {
            return;
        }
        let missing = !supplicant::missing_secrets(&a.conn).is_empty();
        let Some(auth) = a.auth.as_mut() else { return };
        let action = auth.machine.step(step, missing);
        let (device, profile) = (a.device, a.profile);
        let (bus, tx) = (self.bus.clone(), self.tx.clone());
        match action {
            Action::Nothing => {}
            Action::AskService => {
                let remote = self.remote_of(profile);
                tokio::spawn(async move {
                    let answer = match remote {
                        Ok((source, remote)) => fetch_secrets(&bus, source, remote, supplicant::SETTING).await,
                        Err(e) => Err(e),
                    };
                    let _ = tx.send(Input::Auth(ac, AuthInput::ServiceSecrets(answer)));
                });
            }
            Action::AskAgents { flags } => {
                if flags & agents::flags::REQUEST_NEW != 0 {
                    let mut conn = (*a.conn).clone();
                    agents::forget_secrets(&mut conn, supplicant::SETTING);
                    a.conn = Arc::new(conn);
                }
                let conn = a.conn.clone();
                let Some(path) = self.profiles.get(&profile).map(|p| p.path.clone()) else { return };
                let request = agents::Request {
                    connection: dbus_dict::to_dbus(&conn, false),
                    path,
                    setting: supplicant::SETTING.into(),
                    hints: supplicant::missing_secrets(&conn).iter().map(|(s, _)| s.to_string()).collect(),
                    flags,
                    permissions: crate::auth::permissions_of(&conn),
                    requester: None,
                };
                let (cancel, cancelled) = oneshot::channel();
                if let Some(auth) = self.actives.get_mut(&ac).and_then(|a| a.auth.as_mut()) {
                    auth.cancel = Some(cancel);
                }
                info!("asking secret agents for the secrets of '{}' (flags {flags:#x})", conn.id().unwrap_or_default());
                self.set_device_state(device, DeviceState::NeedAuth, reason::NONE).await;
                let registry = self.agents.clone();
                tokio::spawn(async move {
                    let answer = agents::ask(bus, registry, request, cancelled).await;
                    let _ = tx.send(Input::Auth(ac, AuthInput::AgentSecrets(answer)));
                });
            }
            Action::Authenticate => {
                let conn = a.conn.clone();
                let network = match supplicant::network_config(&conn) {
                    Ok(n) => n,
                    Err(e) => {
                        warn!("802.1X for '{}' cannot start: {e}", conn.id().unwrap_or_default());
                        let why = reason::SUPPLICANT_CONFIG_FAILED;
                        let _ = self.tx.send(Input::Timer(Timer::Failed { ac, reason: why }));
                        return;
                    }
                };
                let Some(ifname) = self.devices.get(&device).map(|d| d.name.clone()) else { return };
                if let Some(auth) = self.actives.get_mut(&ac).and_then(|a| a.auth.as_mut()) {
                    let session = auth.session.get_or_insert_with(|| {
                        supplicant::Session::start(bus, ifname.clone(), move |e| {
                            let _ = tx.send(Input::Auth(ac, AuthInput::Supplicant(e)));
                        })
                    });
                    session.authenticate(network, supplicant::auth_timeout(&conn));
                }
                info!(device = %ifname, "802.1X authentication of '{}' with wpa_supplicant", conn.id().unwrap_or_default());
                self.set_device_state(device, DeviceState::Config, reason::NONE).await;
            }
            Action::Proceed => self.ip_config_stage(ac).await,
            Action::Fail { reason } => {
                warn!("802.1X for '{}' failed (reason {reason})", a.conn.id().unwrap_or_default());
                let _ = self.tx.send(Input::Timer(Timer::Failed { ac, reason }));
            }
        }
    }

    /// Finishes an activation once ip-config is done: every family ready
    /// or allowed to fail, DHCP not pending. Called after the static part
    /// and after every DHCP event.
    async fn try_complete(&mut self, id: u32) {
        let Some(a) = self.actives.get(&id) else { return };
        // `ipv6.method=dhcp` is waited for too, until its lease or its end.
        let dhcp6_pending = a.plan.v6 == FamilyMethod::Dhcp && !a.dhcp6.gave_up && a.dhcp6.lease.addresses.is_empty();
        if a.state != AcState::Activating || a.dhcp.status == V4Status::Waiting || dhcp6_pending || a.pre_up_pending {
            return;
        }
        if !ip_families_ok(&a.plan, a.dhcp.status, !a.dhcp6.lease.addresses.is_empty()) {
            warn!("activation of '{}' failed: no IP configuration", a.conn.id().unwrap_or_default());
            let _ = self.tx.send(Input::Timer(Timer::Failed { ac: id, reason: reason::IP_CONFIG_UNAVAILABLE }));
            return;
        }
        let (device, assumed) = (a.device, a.assumed);
        let why = if assumed { reason::CONNECTION_ASSUMED } else { reason::NONE };
        self.set_device_state(device, DeviceState::IpCheck, why).await;
        // pre-up is waited for (off the engine: the device stays in
        // IP_CHECK meanwhile); its failure does not stop the activation.
        if let Some(d) = self.dispatch(id, "pre-up").filter(|_| !assumed && self.dispatcher.present()) {
            if let Some(a) = self.actives.get_mut(&id) {
                a.pre_up_pending = true;
            }
            let (bus, presence, tx) = (self.bus.clone(), self.dispatcher.clone(), self.tx.clone());
            tokio::spawn(async move {
                dispatcher::call(&bus, &presence, d).await;
                let _ = tx.send(Input::Timer(Timer::PreUpDone { ac: id }));
            });
            return;
        }
        self.finish_activation(id).await;
    }

    /// IP_CHECK passed: SECONDARIES, ACTIVATED, the `up` scripts, the
    /// device's record and the profile's timestamp.
    async fn finish_activation(&mut self, id: u32) {
        let Some(a) = self.actives.get(&id) else { return };
        if a.state != AcState::Activating {
            return;
        }
        let (device, assumed, conn) = (a.device, a.assumed, a.conn.clone());
        let why = if assumed { reason::CONNECTION_ASSUMED } else { reason::NONE };
        let Some((ifindex, metric, name)) = self.devices.get(&device).map(|d| (d.ifindex, d.metric, d.name.clone()))
        else {
            return;
        };
        self.set_device_state(device, DeviceState::Secondaries, why).await;
        self.export_ip_configs(id).await;
        self.set_device_state(device, DeviceState::Activated, why).await;
        self.set_ac_state(id, AcState::Activated, ac_reason::NONE).await;
        if let Some(d) = self.dispatch(id, "up").filter(|_| !assumed) {
            self.dispatch_later(d);
        }
        let uuid = conn.uuid().unwrap_or_default().to_string();
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        // GetSettings shows it (connection.timestamp), as NetworkManager's;
        // kept beside the settings, which stay shared with the activation.
        if let Some(p) = self.profiles.values().find(|p| p.uuid == uuid) {
            p.props.lock().timestamp = now;
        }
        // An external activation is found again from the kernel, and its
        // volatile profile has no future to order: nothing is kept of it.
        let external = self.actives.get(&id).is_some_and(|a| a.external);
        if !external {
            state_files::save_device(&self.paths, ifindex, Some(&DeviceRecord { uuid: uuid.clone(), metric }));
            self.timestamps.insert(uuid.clone(), now);
        }
        if !self.timestamps_dirty && !external {
            self.timestamps_dirty = true;
            self.schedule(TIMESTAMPS_DELAY, Timer::FlushTimestamps);
        }
        self.retries_for(&uuid).succeeded(&conn);
        self.publish_actives().await;
        self.update_dns().await;
        info!(device = %name, "'{}' activated", conn.id().unwrap_or_default());
        self.maybe_start_dhcp6(id).await;
    }

    /// Starts the link-local transaction an activation has beside its
    /// method. Without nm-dhcp-helper it starts when the helper comes.
    async fn start_link_local(&mut self, ac: u32) {
        let Some(a) = self.actives.get(&ac) else { return };
        let Some(ifindex) = self.devices.get(&a.device).map(|d| d.ifindex) else { return };
        let options = dhcp::link_local_options(&a.conn);
        self.before_calling_out().await;
        let _ = self.dhcp_subscribed.wait_for(|subscribed| *subscribed).await;
        let result = dhcp_client::start(&self.bus, ifindex, &options).await;
        let Some(a) = self.actives.get_mut(&ac) else { return };
        let id = a.conn.id().unwrap_or_default().to_string();
        match result {
            Ok(path) => {
                info!(transaction = %path, "IPv4 link-local started for '{id}' beside its method");
                a.link_local.transaction = Some(path);
            }
            Err(e) if nm_dbus::service_absent(&e) => {
                info!("IPv4 link-local for '{id}' waits for nm-dhcp-helper to come onto the bus");
            }
            Err(e) => warn!("IPv4 link-local for '{id}' could not start: {e}"),
        }
    }

    /// After a reapply: the link-local transaction starts or stops as the
    /// new settings say (its address went with the plan already).
    async fn follow_link_local_setting(&mut self, ac: u32) {
        let Some(a) = self.actives.get_mut(&ac) else { return };
        match (dhcp::link_local_beside(&a.conn), a.link_local.transaction.take()) {
            (false, Some(t)) => {
                self.before_calling_out().await;
                dhcp_client::stop(&self.bus, &t, false).await;
            }
            (true, None) => self.start_link_local(ac).await,
            (_, running) => a.link_local.transaction = running,
        }
    }

    /// The link-local transaction's events: `bound` gives the address
    /// (169.254.x.y/16), `expire` takes it (another host has it; the
    /// helper probes for another), `fail` ends the transaction.
    async fn link_local_event(&mut self, ac: u32, ev: DhcpEvent) {
        info!(transaction = %ev.transaction, "IPv4 link-local {}", ev.state);
        match ev.state.as_str() {
            "bound" => self.apply_link_local(ac, &dhcp::Lease::from_dict(&ev.lease)).await,
            "expire" => self.apply_link_local(ac, &dhcp::Lease::default()).await,
            "timeout" | "fail" => {
                self.apply_link_local(ac, &dhcp::Lease::default()).await;
                if let Some(a) = self.actives.get_mut(&ac) {
                    a.link_local.transaction = None;
                }
            }
            _ => {}
        }
    }

    /// Puts a link-local address in place of the one before (none: takes
    /// it away), and into the activation's plan and IP4Config.
    async fn apply_link_local(&mut self, ac: u32, lease: &dhcp::Lease) {
        let Some(a) = self.actives.get(&ac) else { return };
        let Some((ifindex, metric)) = self.devices.get(&a.device).map(|d| (d.ifindex, d.metric)) else { return };
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let new = dhcp::lease_plan(lease, &a.conn, metric, now);
        let (stale, fresh) = lease_change(&a.link_local.lease, &new);
        self.unapply_plan(ifindex, &stale).await;
        if let Err(e) = self.apply_plan(ifindex, &fresh).await {
            warn!("applying the IPv4 link-local address: {e}");
        }
        let Some(a) = self.actives.get_mut(&ac) else { return };
        a.link_local.lease = new;
        let a = &self.actives[&ac];
        let plan = merge_dhcp6(merge_lease(&self.static_plan(a), &a.dhcp.lease), &a.dhcp6.lease);
        let Some(a) = self.actives.get_mut(&ac) else { return };
        a.plan = plan;
        if a.state == AcState::Activated {
            self.refresh_ip_configs(ac).await;
            self.publish_actives().await;
        }
    }

    /// Starts DHCPv4 for an activation (`timeout` overrides the profile's,
    /// for the restart after a lost lease). When nm-dhcp-helper is not on
    /// the bus (and the bus cannot start it), the activation waits for it
    /// as long as its DHCP timeout, and starts when it appears.
    async fn start_dhcp(&mut self, ac: u32, timeout: Option<u32>) {
        let Some(a) = self.actives.get(&ac) else { return };
        let Some(ifindex) = self.devices.get(&a.device).map(|d| d.ifindex) else { return };
        let hostname = self.settings.lock().hostname.clone();
        let mut options = dhcp::start_options(&a.conn, &hostname);
        if let Some(t) = timeout {
            options.insert("timeout".into(), Value::UInt32(t));
        }
        // At start-up the subscription may still be on its way (it is
        // made beside the settings' first list); an error means its task
        // ended, and waiting longer would not help.
        self.before_calling_out().await;
        let _ = self.dhcp_subscribed.wait_for(|subscribed| *subscribed).await;
        let result = dhcp_client::start(&self.bus, ifindex, &options).await;
        let Some(a) = self.actives.get_mut(&ac) else { return };
        match result {
            Ok(path) => {
                info!(transaction = %path, "DHCPv4 started for '{}'", a.conn.id().unwrap_or_default());
                a.dhcp.transaction = Some(path);
                if a.dhcp.status != V4Status::Bound {
                    a.dhcp.status = V4Status::Waiting;
                }
            }
            Err(e) if nm_dbus::service_absent(&e) => {
                info!("DHCPv4 for '{}' waits for nm-dhcp-helper to come onto the bus", a.conn.id().unwrap_or_default());
                a.dhcp.transaction = None;
                if a.dhcp.status != V4Status::Bound {
                    a.dhcp.status = V4Status::Waiting;
                }
                // A lost lease is looked for without end (u32::MAX): no timer.
                let wait = timeout.unwrap_or_else(|| dhcp::timeout(&a.conn));
                if wait != u32::MAX {
                    self.schedule(Duration::from_secs(wait.into()), Timer::DhcpHelperWait { ac });
                }
            }
            Err(e) => {
                warn!("DHCPv4 for '{}' could not start: {e}", a.conn.id().unwrap_or_default());
                a.dhcp.status = V4Status::Failed;
            }
        }
    }

    /// nm-dhcp-helper came or went. Its transactions end with it; when it
    /// is back, every DHCP activation starts again (the helper takes its
    /// saved lease back with INIT-REBOOT; the kernel keeps the address
    /// meanwhile, with the lifetimes of the last lease).
    async fn dhcp_helper(&mut self, present: bool) {
        if !present {
            for a in self.actives.values_mut() {
                a.dhcp6.transaction = None;
                a.link_local.transaction = None;
            }
            let mut waiting = Vec::new();
            for (id, a) in self.actives.iter_mut().filter(|(_, a)| a.dhcp.transaction.is_some()) {
                info!("nm-dhcp-helper left the bus; DHCPv4 for '{}' waits for it", a.conn.id().unwrap_or_default());
                a.dhcp.transaction = None;
                if a.state == AcState::Activating {
                    waiting.push((*id, dhcp::timeout(&a.conn)));
                }
            }
            // An activation that has no lease yet gives up after its DHCP
            // timeout, as it would have with the helper there.
            for (ac, secs) in waiting.into_iter().filter(|(_, s)| *s != u32::MAX) {
                self.schedule(Duration::from_secs(secs.into()), Timer::DhcpHelperWait { ac });
            }
            return;
        }
        let waiting: Vec<u32> = self
            .actives
            .iter()
            .filter(|(_, a)| {
                a.dhcp.transaction.is_none() && matches!(a.dhcp.status, V4Status::Waiting | V4Status::Bound)
            })
            .map(|(id, _)| *id)
            .collect();
        for ac in waiting {
            let lost_while_active = self.actives.get(&ac).is_some_and(|a| a.state != AcState::Activating);
            self.start_dhcp(ac, lost_while_active.then_some(u32::MAX)).await;
        }
        let v6: Vec<u32> = self
            .actives
            .iter()
            .filter(|(_, a)| a.dhcp6.mode.is_some() && a.dhcp6.transaction.is_none())
            .map(|(id, _)| *id)
            .collect();
        for ac in v6 {
            let active = self.actives.get(&ac).is_some_and(|a| a.state != AcState::Activating);
            self.start_dhcp6(ac, active).await;
        }
        let link_local: Vec<u32> = self
            .actives
            .iter()
            .filter(|(_, a)| dhcp::link_local_beside(&a.conn) && a.link_local.transaction.is_none())
            .filter(|(_, a)| matches!(a.state, AcState::Activating | AcState::Activated))
            .map(|(id, _)| *id)
            .collect();
        for ac in link_local {
            self.start_link_local(ac).await;
        }
    }

    async fn dhcp_event(&mut self, ev: DhcpEvent) {
        if let Some(ac) = self
            .actives
            .iter()
            .find(|(_, a)| a.link_local.transaction.as_ref() == Some(&ev.transaction))
            .map(|(id, _)| *id)
        {
            self.link_local_event(ac, ev).await;
            return;
        }
        if let Some(ac) =
            self.actives.iter().find(|(_, a)| a.dhcp6.transaction.as_ref() == Some(&ev.transaction)).map(|(id, _)| *id)
        {
            self.dhcp6_event(ac, ev).await;
            return;
        }
        let Some(ac) =
            self.actives.iter().find(|(_, a)| a.dhcp.transaction.as_ref() == Some(&ev.transaction)).map(|(id, _)| *id)
        else {
            return;
        };
        info!(transaction = %ev.transaction, "DHCPv4 {}", ev.state);
        match ev.state.as_str() {
            "bound" | "renew" | "rebind" => {
                let lease = dhcp::Lease::from_dict(&ev.lease);
                self.apply_lease(ac, &lease).await;
                let activated = self.actives.get(&ac).is_some_and(|a| a.state == AcState::Activated);
                if activated {
                    let link_local = self.actives.get(&ac).is_some_and(|a| dhcp::is_link_local(&a.conn));
                    if let Some(d) = self.dispatch(ac, "dhcp4-change").filter(|_| !link_local) {
                        self.dispatch_later(d);
                    }
                } else {
                    self.try_complete(ac).await;
                }
            }
            "expire" | "nak" => {
                // The address is gone; the helper starts over by itself.
                self.apply_lease(ac, &dhcp::Lease::default()).await;
                if let Some(a) = self.actives.get_mut(&ac) {
                    a.dhcp.status = V4Status::Waiting;
                }
            }
            "timeout" | "fail" => {
                self.apply_lease(ac, &dhcp::Lease::default()).await;
                let activating = self.actives.get(&ac).is_some_and(|a| a.state == AcState::Activating);
                if let Some(a) = self.actives.get_mut(&ac) {
                    a.dhcp.transaction = None;
                    a.dhcp.status = V4Status::Failed;
                }
                if activating {
                    self.try_complete(ac).await;
                } else {
                    // A lease lost while active is looked for without end.
                    self.start_dhcp(ac, Some(u32::MAX)).await;
                }
            }
            _ => {}
        }
    }

    /// Puts a lease's configuration in the kernel (an empty lease takes the
    /// previous one away): what the old lease had and the new one lacks is
    /// removed, the rest is added or refreshed (lifetimes).
    async fn apply_lease(&mut self, ac: u32, lease: &dhcp::Lease) {
        let Some(a) = self.actives.get(&ac) else { return };
        let Some((ifindex, metric)) = self.devices.get(&a.device).map(|d| (d.ifindex, d.metric)) else { return };
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let new = dhcp::lease_plan(lease, &a.conn, metric, now);
        let static_plan = self.static_plan(a);
        let (stale, mut fresh) = lease_change(&a.dhcp.lease, &new);
        // The profile's own IPv4 routes through a gateway go in again with
        // the lease's: before it, a gateway in the leased network was on no
        // link and the kernel refused them (replacing is idempotent).
        let static_via = static_plan.routes.iter().filter(|r| r.dest.is_ipv4() && r.gateway.is_some());
        fresh.routes.extend(static_via.cloned());
        let static_mtu = static_plan.mtu;
        self.unapply_plan(ifindex, &stale).await;
        if let Err(e) = self.apply_plan(ifindex, &fresh).await {
            warn!("applying the DHCP lease: {e}");
        }
        if let Some(mtu) = new.mtu.filter(|_| static_mtu.is_none())
            && let Err(e) = self.set_mtu(ifindex, mtu).await
        {
            warn!("setting the lease's MTU {mtu}: {e}");
        }
        let Some(a) = self.actives.get_mut(&ac) else { return };
        a.plan = merge_dhcp6(merge_lease(&static_plan, &new), &a.dhcp6.lease);
        if lease.address.is_some() {
            a.dhcp.status = V4Status::Bound;
        }
        a.dhcp.lease = new;
        a.dhcp.held = lease.address.is_some().then(|| Box::new(lease.clone()));
        let options = lease.options.clone();
        self.publish_dhcp(ac, false, options).await;
        if self.actives.get(&ac).is_some_and(|a| a.state == AcState::Activated) {
            self.refresh_ip_configs(ac).await;
            self.publish_actives().await;
            self.update_dns().await;
        }
    }

    /// The DHCP4Config (DHCP6Config) object of an activation (exported at
    /// the first lease), and the device's and the activation's paths to it.
    async fn publish_dhcp(&mut self, ac: u32, v6: bool, options: BTreeMap<String, String>) {
        let Some(a) = self.actives.get(&ac) else { return };
        let (interface, property) = if v6 {
            ("org.freedesktop.NetworkManager.DHCP6Config", "Dhcp6Config")
        } else {
            ("org.freedesktop.NetworkManager.DHCP4Config", "Dhcp4Config")
        };
        let config = if v6 { &a.dhcp6.config } else { &a.dhcp.config };
        if let Some((path, props)) = config {
            *props.lock() = options.clone();
            let map: HashMap<String, zbus::OwnedVariant> = options
                .into_iter()
                .filter_map(|(k, v)| zbus::OwnedVariant::try_from(Variant::from(v)).ok().map(|v| (k, v)))
                .collect();
            self.out.changed(path, interface, vec![("Options", Variant::from(map))]);
            return;
        }
        if options.is_empty() {
            return;
        }
        let device = a.device;
        let ac_path = a.path.clone();
        let props = Props::new(options);
        let server = self.out.clone();
        let (path, exported) = if v6 {
            let path = api::path("DHCP6Config", next(&mut self.counters.dhcp6));
            (path.clone(), server.at(&path, Dhcp6ConfigIface { props: props.clone() }).await.map(drop))
        } else {
            let path = api::path("DHCP4Config", next(&mut self.counters.dhcp4));
            (path.clone(), server.at(&path, Dhcp4ConfigIface { props: props.clone() }).await.map(drop))
        };
        if let Err(e) = exported {
            warn!("exporting {path}: {e}");
            return;
        }
        let set = |p: &mut OwnedObjectPath| *p = path.clone();
        if let Some(a) = self.actives.get_mut(&ac) {
            let mut ap = a.props.lock();
            if v6 {
                a.dhcp6.config = Some((path.clone(), props));
                set(&mut ap.dhcp6_config);
            } else {
                a.dhcp.config = Some((path.clone(), props));
                set(&mut ap.dhcp4_config);
            }
        }
        self.out.changed(&ac_path, ACTIVE_IFACE, vec![(property, Variant::from(path.clone()))]);
        if let Some(d) = self.devices.get(&device) {
            {
                let mut dp = d.props.lock();
                set(if v6 { &mut dp.dhcp6_config } else { &mut dp.dhcp4_config });
            }
            self.out.changed(&d.path, DEVICE_IFACE, vec![(property, Variant::from(path.clone()))]);
        }
    }

    // ---------------------------------------------------------- DHCPv6 ---

    /// Starts DHCPv6 when the profile asks for it (`dhcp`) or, for `auto`,
    /// when the last router advertisement on the link does (M or O flag);
    /// once per activation.
    async fn maybe_start_dhcp6(&mut self, ac: u32) {
        let Some(a) = self.actives.get(&ac) else { return };
        if !matches!(a.state, AcState::Activating | AcState::Activated) {
            return;
        }
        // Not before the ip-config stage (the link may still be waiting for
        // 802.1X, and DHCPv6's timeout would run meanwhile).
        let Some((ifindex, state)) = self.devices.get(&a.device).map(|d| (d.ifindex, d.state)) else { return };
        // DHCPv6 speaks from the link-local address: not while it is in DAD
        // (an advertisement can come before; its end is an address event).
        if (state as u32) < DeviceState::IpConfig as u32 || !self.link_local_ready(ifindex) {
            return;
        }
        let mode = match a.plan.v6 {
            FamilyMethod::Dhcp => Some(dhcp6::Mode::Managed),
            // `auto` does not hold the activation up: while DHCPv4 is still
            // pending its start waits (one Start round trip less before the
            // IPv4 lease), and the activation's end starts it.
            FamilyMethod::Kernel if a.state == AcState::Activating && a.dhcp.status == V4Status::Waiting => None,
            // `auto` (link-local takes nothing from routers)
            FamilyMethod::Kernel if a.plan.v6_slaac => {
                self.platform.link(ifindex).and_then(|l| dhcp6::mode_for_router(l.ra.managed, l.ra.other))
            }
            _ => None,
        };
        let running = a.dhcp6.mode;
        let (Some(mode), None | Some(dhcp6::Mode::Other)) = (mode, running) else { return };
        if running == Some(mode) {
            return;
        }
        // The router now says "managed" where it said "other" before: the
        // information-only transaction makes way for one with an address.
        let old = self.actives.get_mut(&ac).and_then(|a| {
            a.dhcp6.mode = Some(mode);
            a.dhcp6.transaction.take()
        });
        if let Some(t) = old {
            self.before_calling_out().await;
            dhcp_client::stop(&self.bus, &t, false).await;
        }
        self.start_dhcp6(ac, false).await;
    }

    /// Asks nm-dhcp-helper for the activation's DHCPv6 transaction; with
    /// `forever`, without the profile's timeout (a lease lost while
    /// activated is looked for without end, as with DHCPv4). When the
    /// helper is not on the bus, its return starts it ([`Self::dhcp_helper`]).
    async fn start_dhcp6(&mut self, ac: u32, forever: bool) {
        let Some(a) = self.actives.get(&ac) else { return };
        let Some(mode) = a.dhcp6.mode else { return };
        let Some(link) = self.devices.get(&a.device).and_then(|d| self.platform.link(d.ifindex)) else { return };
        let machine_id = self.machine_id();
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let Some(duid) = dhcp6::duid_for(&a.conn, machine_id.as_deref(), link.mac.as_deref(), now) else {
            warn!("DHCPv6 for '{}': no machine-id and no MAC to make a DUID of", a.conn.id().unwrap_or_default());
            return;
        };
        let mut options = dhcp6::start_options(&a.conn, mode, &duid);
        if forever {
            options.insert("timeout".into(), Value::UInt32(u32::MAX));
        }
        let name = a.conn.id().unwrap_or_default().to_string();
        self.before_calling_out().await;
        let _ = self.dhcp_subscribed.wait_for(|subscribed| *subscribed).await;
        match dhcp_client::start(&self.bus, link.ifindex, &options).await {
            Ok(path) => {
                info!(transaction = %path, "DHCPv6 ({mode:?}) started for '{name}'");
                if let Some(a) = self.actives.get_mut(&ac) {
                    a.dhcp6.transaction = Some(path);
                }
            }
            Err(e) => info!("DHCPv6 for '{name}' waits for nm-dhcp-helper: {e}"),
        }
    }

    async fn dhcp6_event(&mut self, ac: u32, ev: DhcpEvent) {
        info!(transaction = %ev.transaction, "DHCPv6 {}", ev.state);
        match ev.state.as_str() {
            "bound" | "renew" | "rebind" => {
                let Some(lease) = dhcp6::Lease::from_dict(&ev.lease) else {
                    warn!(transaction = %ev.transaction, "a DHCPv6 event without a DHCPv6 lease");
                    return;
                };
                self.apply_lease6(ac, &lease).await;
                if self.actives.get(&ac).is_some_and(|a| a.state == AcState::Activated) {
                    if let Some(d) = self.dispatch(ac, "dhcp6-change") {
                        self.dispatch_later(d);
                    }
                } else {
                    self.try_complete(ac).await;
                }
            }
            // The address is gone; the helper solicits again by itself.
            "expire" => self.apply_lease6(ac, &dhcp6::Lease::default()).await,
            "timeout" | "fail" => {
                self.apply_lease6(ac, &dhcp6::Lease::default()).await;
                let Some(a) = self.actives.get_mut(&ac) else { return };
                warn!("DHCPv6 for '{}' ended: {}", a.conn.id().unwrap_or_default(), ev.state);
                a.dhcp6.transaction = None;
                if a.state == AcState::Activating {
                    a.dhcp6.gave_up = true;
                    self.try_complete(ac).await;
                } else {
                    self.start_dhcp6(ac, true).await;
                }
            }
            _ => {}
        }
    }

    /// The kernel found a DHCPv6 address in use by another host (its
    /// duplicate address detection failed): the address goes, the server
    /// hears so (Decline), and the helper asks for another, as
    /// NetworkManager does. Other addresses that fail DAD are the kernel's
    /// and the user's business.
    async fn leased_address_in_use(&mut self, address: &Address) {
        let IpAddr::V6(v6) = address.addr else { return };
        let leased =
            |a: &Active| a.dhcp6.lease.addresses.iter().any(|p| p.addr == address.addr && p.prefix == address.prefix);
        let Some(ac) = self
            .actives
            .iter()
            .find(|(_, a)| leased(a) && self.devices.get(&a.device).is_some_and(|d| d.ifindex == address.ifindex))
            .map(|(id, _)| *id)
        else {
            return;
        };
        warn!(address = %v6, "the DHCPv6 address is in use on the link (duplicate address detection failed); declining it");
        self.apply_lease6(ac, &dhcp6::Lease::default()).await;
        if let Some(transaction) = self.actives.get(&ac).and_then(|a| a.dhcp6.transaction.clone()) {
            self.before_calling_out().await;
            dhcp_client::decline(&self.bus, &transaction, v6).await;
        }
    }

    /// Puts a DHCPv6 lease in the kernel (the address with its lifetime)
    /// and the resolver; an empty lease takes the previous one away.
    async fn apply_lease6(&mut self, ac: u32, lease: &dhcp6::Lease) {
        let Some(a) = self.actives.get(&ac) else { return };
        let Some(ifindex) = self.devices.get(&a.device).map(|d| d.ifindex) else { return };
        let new = dhcp6::lease_plan(lease, &a.conn);
        let static_plan = self.static_plan(a);
        let only = |addresses: Vec<PlannedAddress>| Plan::addresses_and_routes(addresses, Vec::new());
        // Only what changed address goes: a renewal with other lifetimes
        // refreshes the address in place (a re-add would run DAD again).
        let kept = |x: &PlannedAddress| new.addresses.iter().any(|n| n.addr == x.addr && n.prefix == x.prefix);
        let stale = only(a.dhcp6.lease.addresses.iter().filter(|x| !kept(x)).cloned().collect());
        let fresh = only(new.addresses.clone());
        self.unapply_plan(ifindex, &stale).await;
        if let Err(e) = self.apply_plan(ifindex, &fresh).await {
            warn!("applying the DHCPv6 lease: {e}");
        }
        let Some(a) = self.actives.get_mut(&ac) else { return };
        a.plan = merge_dhcp6(merge_lease(&static_plan, &a.dhcp.lease), &new);
        a.dhcp6.lease = new;
        self.publish_dhcp(ac, true, lease.options.clone()).await;
        if self.actives.get(&ac).is_some_and(|a| a.state == AcState::Activated) {
            self.refresh_ip6(ac).await;
            self.update_dns().await;
        }
    }

    /// Brings the exported IP4Config of an activation up to date with its
    /// plan and the device's addresses.
    async fn refresh_ip_configs(&mut self, ac: u32) {
        let Some(a) = self.actives.get(&ac) else { return };
        let Some((path, props)) = a.ip4.clone() else {
            // The family was not configured before the lease: export it now.
            self.export_ip_configs_family(ac, false).await;
            return;
        };
        let Some(new) = self.ip_props_now(ac, false).await else { return };
        self.update_ip_object(&path, &props, false, new).await;
    }

    /// Shows `new` in an exported IP4Config (`v6`: IP6Config) and says so;
    /// false when it showed that already.
    async fn update_ip_object(&self, path: &OwnedObjectPath, props: &Props<IpProps>, v6: bool, new: IpProps) -> bool {
        if *props.lock() == new {
            return false;
        }
        let iface =
            if v6 { "org.freedesktop.NetworkManager.IP6Config" } else { "org.freedesktop.NetworkManager.IP4Config" };
        let changes = new.changed_properties(v6);
        *props.lock() = new;
        self.out.changed(path, iface, changes);
        true
    }

    async fn apply_plan(&self, ifindex: u32, plan: &Plan) -> Result<(), String> {
        if plan.v6 == FamilyMethod::Disabled {
            set_sysctl(&self.devices_name(ifindex), "disable_ipv6", "1");
        }
        if !plan.v6_sysctls.is_empty() {
            let name = self.devices_name(ifindex);
            for (key, value) in &plan.v6_sysctls {
                set_sysctl(&name, key, value);
            }
        }
        // After accept_ra: the kernel takes a token only on a link that
        // takes router advertisements.
        if let Some(token) = plan.v6_token
            && let Err(e) = self.platform.set_ipv6_token(ifindex, token).await
        {
            warn!(ifindex, "ipv6.token {token} left out: {e}");
        }
        for a in &plan.addresses {
            let mut addr = Address::new(ifindex, a.addr, a.prefix);
            // nm-core adds the prefix route itself, with the device's metric.
            addr.noprefixroute = true;
            addr.valid_lft = a.lifetime;
            addr.preferred_lft = a.lifetime;
            self.platform.add_address(&addr).await.map_err(|e| format!("adding {}/{}: {e}", a.addr, a.prefix))?;
        }
        // Routes to the link first: a gateway must be reachable when its route
        // is added. A route the kernel refuses (its gateway on no link) is
        // left out with a warning, as NetworkManager leaves it: the rest of
        // the configuration stands.
        let (direct, via): (Vec<_>, Vec<_>) = plan.routes.iter().partition(|r| r.gateway.is_none());
        for r in direct.into_iter().chain(via) {
            if let Err(e) = self.platform.replace_route(&platform_route(ifindex, r)).await {
                warn!(ifindex, "route {}/{} left out: {e}", r.dest, r.prefix);
            }
        }
        Ok(())
    }

    /// Adds routing rules; one the kernel refuses is left out with a
    /// warning, like a route.
    async fn add_rules(&self, rules: &[nm_platform::Rule]) {
        for r in rules {
            if let Err(e) = self.platform.add_rule(r).await {
                warn!("routing rule left out: {e}");
            }
        }
    }

    async fn remove_rules(&self, rules: &[nm_platform::Rule]) {
        for r in rules {
            if let Err(e) = self.platform.delete_rule(r).await {
                tracing::debug!("removing a routing rule: {e}");
            }
        }
    }

    /// Asks the link's routers to advertise now (see `ndisc.rs`) when its
    /// link-local address is ready; before that the kernel solicits by
    /// itself once the address's DAD is done.
    fn solicit_routers(&self, ifindex: u32) {
        if !self.link_local_ready(ifindex) {
            return;
        }
        let mac = self.platform.link(ifindex).and_then(|l| l.mac);
        match ndisc::solicit_routers(ifindex, mac.as_deref()) {
            Ok(()) => tracing::debug!(ifindex, "router solicitation sent"),
            Err(e) => warn!(ifindex, "sending a router solicitation: {e}"),
        }
    }

    /// Whether the link has a link-local IPv6 address past its DAD.
    fn link_local_ready(&self, ifindex: u32) -> bool {
        self.platform
            .addresses(ifindex)
            .iter()
            .any(|a| is_link_local6(a.addr) && a.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED) == 0)
    }

    fn devices_name(&self, ifindex: u32) -> String {
        self.devices.values().find(|d| d.ifindex == ifindex).map(|d| d.name.clone()).unwrap_or_default()
    }

    /// `/etc/machine-id` (under the root), which generated identities
    /// (DUID, bridge and stable MACs, IPv6 secrets) are hashed from.
    fn machine_id(&self) -> Option<String> {
        std::fs::read_to_string(self.paths.path("/etc/machine-id")).ok()
    }

    /// The address `choice` (`ethernet.cloned-mac-address`) gives the
    /// device now; `None` leaves it as it is.
    fn cloned_mac(&self, device: u32, conn: &Connection, choice: MacChoice) -> Option<[u8; 6]> {
        let d = self.devices.get(&device)?;
        match choice {
            MacChoice::Keep => None,
            MacChoice::Fixed(m) => Some(m),
            MacChoice::Permanent => d.perm_mac.as_deref().and_then(|m| <[u8; 6]>::try_from(m).ok()),
            MacChoice::Random => Some(ipconfig::local_mac(uuid::Uuid::new_v4().as_bytes())),
            MacChoice::Stable => {
                Some(ipconfig::stable_mac(self.machine_id().as_deref(), ipconfig::stable_id(conn), &d.name))
            }
        }
    }

    /// After a profile that changed the device's MAC address: the address
    /// the device had when nm-core found it, as NetworkManager restores it.
    /// Sets a link's MTU for an activation, remembering the one it had
    /// before the first change.
    async fn set_mtu(&mut self, ifindex: u32, mtu: u32) -> Result<(), nm_platform::PlatformError> {
        let current = self.platform.link(ifindex).map(|l| l.mtu);
        if let Some(d) = self.devices.values_mut().find(|d| d.ifindex == ifindex)
            && d.mtu_initial.is_none()
        {
            d.mtu_initial = current;
        }
        self.platform.set_mtu(ifindex, mtu).await
    }

    /// The MTU the device had before its activation changed it.
    async fn restore_mtu(&mut self, device: u32) {
        let Some((ifindex, Some(initial))) = self.devices.get_mut(&device).map(|d| (d.ifindex, d.mtu_initial.take()))
        else {
            return;
        };
        if self.platform.link(ifindex).is_some_and(|l| l.mtu != initial)
            && let Err(e) = self.platform.set_mtu(ifindex, initial).await
        {
            warn!(ifindex, "restoring the MTU {initial}: {e}");
        }
    }

    async fn restore_mac(&self, device: u32, plan: &Plan) {
        let Some(d) = self.devices.get(&device).filter(|_| plan.mac != MacChoice::Keep) else {
            return;
        };
        let Some(initial) = d.perm_mac.as_deref().and_then(|m| <[u8; 6]>::try_from(m).ok()) else {
            return;
        };
        if self.platform.link(d.ifindex).and_then(|l| l.mac).as_deref() != Some(initial.as_slice())
            && let Err(e) = self.platform.set_mac(d.ifindex, initial).await
        {
            warn!(device = %d.name, "restoring the MAC address: {e}");
        }
    }

    /// `ipv6.addr-gen-mode` into the kernel's settings of the link, written
    /// only when they differ: the addresses the kernel makes from now on
    /// (SLAAC's; the link-local one when the link comes up) follow it.
    /// Whether anything changed.
    fn set_addr_gen(&self, name: &str, ids: &AddrGen) -> bool {
        let read = |key: &str| std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{name}/{key}")).ok();
        let (mode, secret) = match ids {
            AddrGen::Eui64 => ("0", None),
            AddrGen::StablePrivacy { stable_id } => {
                let machine_id = self.machine_id();
                ("2", Some(ipconfig::stable_secret(machine_id.as_deref(), stable_id, name)))
            }
        };
        let mut changed = false;
        // The secret first: the kernel takes mode 2 only with one.
        if let Some(secret) = secret
            && read("stable_secret").and_then(|s| s.trim().parse().ok()) != Some(secret)
        {
            set_sysctl(name, "stable_secret", &secret.to_string());
            changed = true;
        }
        if read("addr_gen_mode").as_deref().map(str::trim) != Some(mode) {
            set_sysctl(name, "addr_gen_mode", mode);
            changed = true;
        }
        changed
    }

    /// Takes what `apply_plan` added away again.
    /// A shared device's address when its profile names none: 10.42.N.1/24
    /// in a network no address of the host is in (NetworkManager's choice),
    /// with its prefix route.
    fn pick_shared_address(&self, plan: &mut Plan, conn: &Connection, metric: u32, ifindex: u32) {
        let v4 = |a: Address| match a.addr {
            IpAddr::V4(v4) => Some((v4, a.prefix)),
            IpAddr::V6(_) => None,
        };
        // One it has already (taken back after a restart) is kept.
        let own =
            self.platform.addresses(ifindex).into_iter().filter_map(v4).find(|(a, p)| crate::shared::is_picked(*a, *p));
        let taken: Vec<std::net::Ipv4Addr> = self
            .devices
            .values()
            .filter(|d| d.ifindex != ifindex)
            .flat_map(|d| self.platform.addresses(d.ifindex))
            .filter_map(v4)
            .map(|(a, _)| a)
            .collect();
        let Some((addr, prefix)) = own.or_else(|| crate::shared::pick_address(&taken)) else {
            warn!(ifindex, "no free 10.42.N.0/24 network to share");
            return;
        };
        let (metric, table) = (ipconfig::route_metric(conn, "ipv4", metric), ipconfig::route_table(conn, "ipv4"));
        ipconfig::add_address(plan, IpAddr::V4(addr), prefix, metric, table);
    }

    /// What an activation's profile asks by itself, at its device's metric
    /// (not kept: it is the profile's plan, cheap to make again, and 300
    /// activations kept a copy each).
    /// What the profile asks by itself, with the link-local address it has
    /// beside its method (the leases' addresses are merged over it).
    fn static_plan(&self, a: &Active) -> Plan {
        let plan = ipconfig::plan(&a.conn, self.devices.get(&a.device).map_or(0, |d| d.metric));
        if a.link_local.lease.addresses.is_empty() { plan } else { merge_lease(&plan, &a.link_local.lease) }
    }

    async fn unapply_plan(&self, ifindex: u32, plan: &Plan) {
        // Before accept_ra goes off (the kernel changes a token only while
        // the link takes router advertisements).
        if plan.v6_token.is_some()
            && let Err(e) = self.platform.set_ipv6_token(ifindex, std::net::Ipv6Addr::UNSPECIFIED).await
        {
            tracing::debug!(ifindex, "clearing the IPv6 token: {e}");
        }
        for r in &plan.routes {
            if let Err(e) = self.platform.delete_route(&platform_route(ifindex, r)).await {
                tracing::debug!("removing route {}/{}: {e}", r.dest, r.prefix);
            }
        }
        for a in &plan.addresses {
            let mut addr = Address::new(ifindex, a.addr, a.prefix);
            addr.noprefixroute = true;
            if let Err(e) = self.platform.delete_address(&addr).await {
                tracing::debug!("removing {}/{}: {e}", a.addr, a.prefix);
            }
        }
        if plan.v6 == FamilyMethod::Disabled {
            set_sysctl(&self.devices_name(ifindex), "disable_ipv6", "0");
        }
        if plan.v6_slaac {
            self.forget_router_config(ifindex).await;
        }
    }

    /// Leaves a device without configuration, as NetworkManager's
    /// deactivation leaves it (and its take-over of a device that becomes
    /// managed): addresses added by hand or by an earlier owner go too, so
    /// the next activation starts clean and `ip` shows nothing of a profile
    /// that is down. The IPv6 link-local address stays (the kernel's, while
    /// the link is up), and so does all of IPv6 after a profile with
    /// `ipv6.method=ignore`, which leaves IPv6 to others.
    async fn deconfigure(&self, ifindex: u32, keep_v6: bool) {
        let kept = |a: &Address| is_link_local6(a.addr) || (keep_v6 && a.addr.is_ipv6());
        let gone = |a: &Address| !kept(a);
        for a in self.platform.addresses(ifindex).into_iter().filter(gone) {
            if let Err(e) = self.platform.delete_address(&a).await {
                tracing::debug!("removing {}/{}: {e}", a.addr, a.prefix);
            }
        }
    }

    /// Ends what the kernel took from router advertisements for an `auto`
    /// activation, as NetworkManager's deactivation does: no more of them,
    /// and the addresses (SLAAC, privacy) and routes they gave removed.
    /// The link-local address and configured addresses stay.
    async fn forget_router_config(&self, ifindex: u32) {
        set_sysctl(&self.devices_name(ifindex), "accept_ra", "0");
        for a in self.platform.addresses(ifindex).into_iter().filter(from_router) {
            if let Err(e) = self.platform.delete_address(&a).await {
                tracing::debug!("removing {}/{}: {e}", a.addr, a.prefix);
            }
        }
        for r in self.router_routes(ifindex).await {
            if let Err(e) = self.platform.delete_route(&r).await {
                tracing::debug!("removing route {}/{}: {e}", r.dest, r.prefix);
            }
        }
    }

    /// The IPv6 routes the kernel took from router advertisements on a device.
    /// The IPv6 routes the kernel made from router advertisements on the
    /// link: default and more-specific routes (protocol `ra`) and the
    /// on-link prefixes (protocol `kernel`, timed out by the kernel; nm-core
    /// adds its addresses without prefix routes, so those are not its own).
    async fn router_routes(&self, ifindex: u32) -> Vec<Route> {
        let filter = RouteFilter { family: Some(Family::V6), oif: Some(ifindex), protocol: None, table: None };
        let routes = self.platform.routes(filter).await.unwrap_or_else(|e| {
            warn!("listing the routes from routers: {e}");
            Vec::new()
        });
        routes.into_iter().filter(|r| r.protocol == RTPROT_RA || (r.protocol == RTPROT_KERNEL && r.expires)).collect()
    }

    async fn export_ip_configs(&mut self, ac: u32) {
        for v6 in [false, true] {
            self.export_ip_configs_family(ac, v6).await;
        }
    }

    /// What an activation's IP4Config (or IP6Config) says now.
    async fn ip_props_now(&self, ac: u32, v6: bool) -> Option<IpProps> {
        let a = self.actives.get(&ac)?;
        let mut props = ip_props(&a.plan, v6)?;
        // Every address the device has shows (as NetworkManager lists
        // them): the IPv6 link-local one, one someone added by hand; with
        // IPv6 `auto`, the routers' routes too.
        let ifindex = self.devices.get(&a.device)?.ifindex;
        if !v6 {
            add_kernel_addresses(&mut props, &self.platform.addresses(ifindex), false);
            return Some(props);
        }
        let routes = if a.plan.v6 == FamilyMethod::Kernel { self.router_routes(ifindex).await } else { Vec::new() };
        Some(with_kernel_ip6(props, &self.platform.addresses(ifindex), &routes))
    }

    /// The IP6Config of an activation after the kernel changed an address
    /// of its device or a DHCPv6 lease changed.
    async fn refresh_ip6(&mut self, ac: u32) {
        let Some(new) = self.ip_props_now(ac, true).await else { return };
        let Some((path, props)) = self.actives.get(&ac).and_then(|a| a.ip6.clone()) else { return };
        if !self.update_ip_object(&path, &props, true, new).await {
            return;
        }
        // A router's default route may have come or gone (Default6).
        self.publish_actives().await;
    }

    /// Exports the IP4Config (or IP6Config) of an activation, if its plan
    /// configures that family, and points the AC and the device at it.
    async fn export_ip_configs_family(&mut self, ac: u32, v6: bool) {
        let Some(props) = self.ip_props_now(ac, v6).await else { return };
        let Some(a) = self.actives.get(&ac) else { return };
        let device = a.device;
        let props = Props::new(props);
        let Some(path) = self.export_ip_object(v6, &props).await else { return };
        let Some(a) = self.actives.get_mut(&ac) else { return };
        let prop = if v6 { "Ip6Config" } else { "Ip4Config" };
        {
            let mut ap = a.props.lock();
            if v6 {
                ap.ip6_config = path.clone();
            } else {
                ap.ip4_config = path.clone();
            }
        }
        if v6 {
            a.ip6 = Some((path.clone(), props));
        } else {
            a.ip4 = Some((path.clone(), props));
        }
        self.out.changed(&a.path, ACTIVE_IFACE, vec![(prop, Variant::from(path.clone()))]);
        self.point_device_ip(device, v6, path).await;
    }

    /// Exports an IP4Config (or IP6Config) object showing `props`, at a new
    /// path.
    async fn export_ip_object(&mut self, v6: bool, props: &Props<IpProps>) -> Option<OwnedObjectPath> {
        let server = self.out.clone();
        let (path, result) = if v6 {
            let path = api::path("IP6Config", next(&mut self.counters.ip6));
            let r = server.at(&path, Ip6ConfigIface { props: props.clone() }).await.map(|_| ());
            (path, r)
        } else {
            let path = api::path("IP4Config", next(&mut self.counters.ip4));
            let r = server.at(&path, Ip4ConfigIface { props: props.clone() }).await.map(|_| ());
            (path, r)
        };
        match result {
            Ok(()) => Some(path),
            Err(e) => {
                warn!("exporting {path}: {e}");
                None
            }
        }
    }

    /// Takes an IP4Config (or IP6Config) object off the bus.
    async fn unexport_ip_object(&self, v6: bool, path: &OwnedObjectPath) {
        let server = self.out.clone();
        if v6 {
            let _ = server.remove::<Ip6ConfigIface>(path).await;
        } else {
            let _ = server.remove::<Ip4ConfigIface>(path).await;
        }
    }

    /// Points a device's `Ip4Config` (`Ip6Config`) at `path` and says so.
    async fn point_device_ip(&self, device: u32, v6: bool, path: OwnedObjectPath) {
        let Some(d) = self.devices.get(&device) else { return };
        {
            let mut dp = d.props.lock();
            if v6 {
                dp.ip6_config = path.clone();
            } else {
                dp.ip4_config = path.clone();
            }
        }
        let prop = if v6 { "Ip6Config" } else { "Ip4Config" };
        self.out.changed(&d.path, DEVICE_IFACE, vec![(prop, Variant::from(path))]);
    }

    /// Runs an action's scripts without waiting for them.
    fn dispatch_later(&self, d: Dispatch) {
        if !self.dispatcher.present() {
            return;
        }
        let (bus, presence) = (self.bus.clone(), self.dispatcher.clone());
        tokio::spawn(async move { dispatcher::call(&bus, &presence, d).await });
    }

    /// The dispatcher's view of an activation.
    fn dispatch(&self, ac: u32, action: &'static str) -> Option<Dispatch> {
        let a = self.actives.get(&ac)?;
        let d = self.devices.get(&a.device)?;
        let connectivity = dispatcher::connectivity_name(self.manager.lock().connectivity);
        Some(Dispatch {
            action,
            connection: dbus_dict::to_dbus(&a.conn, false),
            connection_path: self.profiles.get(&a.profile).map(|p| p.path.clone()).unwrap_or_else(root),
            connection_filename: self
                .profiles
                .get(&a.profile)
                .map(|p| p.props.lock().filename.clone())
                .unwrap_or_default(),
            interface: d.name.clone(),
            device_type: d.kind.number(),
            device_state: d.state as u32,
            device_path: d.path.clone(),
            ip4: ip_props(&a.plan, false),
            ip6: ip_props(&a.plan, true),
            dhcp4: a.dhcp.config.as_ref().map(|(_, options)| options.lock().clone()).unwrap_or_default(),
            connectivity,
        })
    }

    fn stop_sharing(&mut self, ac: u32) {
        if let Some(sharing) = self.actives.get_mut(&ac).and_then(|a| a.sharing.take()) {
            sharing.stop();
        }
    }

    async fn set_ac_state(&mut self, ac: u32, state: AcState, why: u32) {
        let Some(a) = self.actives.get_mut(&ac) else {
            return;
        };
        if a.state == state {
            return;
        }
        a.state = state;
        let flags = state_flags(&a.conn, &a.plan, state, a.dhcp.status == V4Status::Failed)
            | if a.external { AC_EXTERNAL } else { 0 };
        let flags_changed = {
            let mut p = a.props.lock();
            p.state = state as u32;
            std::mem::replace(&mut p.state_flags, flags) != flags
        };
        let path = a.path.clone();
        let mut changed = vec![("State", Variant::from(state as u32))];
        if flags_changed {
            changed.push(("StateFlags", Variant::from(flags)));
        }
        self.out.changed(&path, ACTIVE_IFACE, changed);
        self.out.signal(&path, ACTIVE_IFACE, "StateChanged", &(state as u32, why));
    }

    async fn fail_activation(&mut self, ac: u32, why: u32) {
        let Some(a) = self.actives.get(&ac) else {
            return;
        };
        let (device, by_user, conn, plan, rules) =
            (a.device, a.by_user, a.conn.clone(), a.plan.clone(), a.rules.clone());
        self.set_device_state(device, DeviceState::Failed, why).await;
        self.stop_sharing(ac);
        // Whatever part of the configuration made it into the kernel goes.
        if let Some(ifindex) = self.devices.get(&device).map(|d| d.ifindex) {
            self.unapply_plan(ifindex, &plan).await;
            self.deconfigure(ifindex, plan.v6 == FamilyMethod::Ignore).await;
            self.leave_bridge(ifindex, &conn).await;
        }
        self.remove_rules(&rules).await;
        self.restore_ethtool(ac);
        self.restore_promisc(ac).await;
        self.restore_mac(device, &plan).await;
        self.restore_mtu(device).await;
        if !by_user {
            let uuid = conn.uuid().unwrap_or_default().to_string();
            self.retries_for(&uuid).failed(&conn, Instant::now());
            self.schedule(policy::RETRY_RESET, Timer::RetryCheck);
        }
        // As NetworkManager: the device's failure (no address in time, no
        // secrets, 802.1X supplicant failed, …) shows as DEVICE_DISCONNECTED,
        // and nmcli then prints the device's reason (IP_CONFIG_INVALID is
        // a VPN's: "The VPN service returned invalid configuration").
        self.finish_deactivation(ac, ac_reason::DEVICE_DISCONNECTED).await;
        // A failed software device goes as a deactivated one does (a retry
        // makes it again), and a failed bridge takes its ports along.
        self.deactivate_ports(&conn).await;
        self.delete_software_device(device, &conn).await;
    }

    /// A profile's `tc` setting on its device: exactly its qdiscs and
    /// filters (nothing happens without the setting).
    async fn apply_tc(&self, ifindex: u32, conn: &Connection) -> Result<(), String> {
        let Some(plan) = tc::plan(conn, |dev| self.platform.link_by_name(dev).map(|l| l.ifindex)) else {
            return Ok(());
        };
        let (qdiscs, filters) = plan?;
        self.platform.sync_tc(ifindex, &qdiscs, &filters).await.map_err(|e| e.to_string())
    }

    /// Puts back the promiscuous mode an activation changed.
    async fn restore_promisc(&mut self, ac: u32) {
        let Some(a) = self.actives.get_mut(&ac) else { return };
        let Some(was) = a.promisc_initial.take() else { return };
        let Some(ifindex) = self.devices.get(&a.device).map(|d| d.ifindex) else { return };
        if let Err(e) = self.platform.set_promisc(ifindex, was).await {
            warn!(ifindex, "resetting promiscuous mode: {e}");
        }
    }

    /// Applies a profile's `ethtool` setting to an activation's device,
    /// keeping what it changes for [`Self::restore_ethtool`].
    fn apply_ethtool(&mut self, ac: u32, conn: &Connection) {
        let Some(plan) = ethtool::plan(conn) else { return };
        let Some(a) = self.actives.get_mut(&ac) else { return };
        let Some(name) = self.devices.get(&a.device).map(|d| d.name.as_str()) else { return };
        a.ethtool_saved = Some(apply_ethtool(name, &plan));
    }

    /// Puts back what an activation's `ethtool` setting changed on its
    /// device.
    fn restore_ethtool(&mut self, ac: u32) {
        let Some(a) = self.actives.get_mut(&ac) else { return };
        let Some(saved) = a.ethtool_saved.take() else { return };
        let Some(name) = self.devices.get(&a.device).map(|d| d.name.clone()) else { return };
        if !saved.features.is_empty()
            && let Err(e) = nm_platform::ethtool::set_features(&name, &saved.features)
        {
            warn!(device = %name, "ethtool: resetting the offload features: {e}");
        }
        for (block, words) in &saved.blocks {
            if let Err(e) = nm_platform::ethtool::set_block(&name, *block, words) {
                warn!(device = %name, "ethtool: resetting the {block:?} settings: {e}");
            }
        }
    }

    /// Starts listening for LLDP on a device (NetworkManager's
    /// `connection.lldp=enable`); frames come back as [`Input::Lldp`].
    fn start_lldp(&mut self, device: u32) {
        let Some(d) = self.devices.get_mut(&device) else { return };
        if d.lldp.is_some() {
            return;
        }
        let (ifindex, name) = (d.ifindex, d.name.clone());
        let listener = match nm_platform::lldp::LldpListener::open(ifindex) {
            Ok(l) => l,
            Err(e) => {
                warn!(device = %name, "LLDP: no listener: {e}");
                return;
            }
        };
        let tx = self.tx.clone();
        let task = tokio::spawn(async move {
            loop {
                match listener.next().await {
                    Ok(frame) => {
                        if tx.send(Input::Lldp(ifindex, frame)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        warn!(device = %name, "LLDP: {e}");
                        return;
                    }
                }
            }
        });
        d.lldp = Some(LldpWatch { task, expires: Vec::new(), timer_at: None });
        self.set_lldp_flag(device, true);
    }

    /// `InterfaceFlags`' LLDP_CLIENT_ENABLED, announced when it changes.
    fn set_lldp_flag(&self, device: u32, on: bool) {
        let Some(d) = self.devices.get(&device) else { return };
        let flags = {
            let mut p = d.props.lock();
            let flags =
                if on { p.interface_flags | LLDP_CLIENT_ENABLED } else { p.interface_flags & !LLDP_CLIENT_ENABLED };
            if flags == p.interface_flags {
                return;
            }
            p.interface_flags = flags;
            flags
        };
        self.out.changed(&d.path, DEVICE_IFACE, vec![("InterfaceFlags", Variant::from(flags))]);
    }

    /// Stops listening and forgets the device's neighbours.
    async fn stop_lldp(&mut self, device: u32) {
        let Some(d) = self.devices.get_mut(&device) else { return };
        if d.lldp.take().is_none() {
            return;
        }
        let had = std::mem::take(&mut d.props.lock().lldp);
        self.set_lldp_flag(device, false);
        if !had.is_empty() {
            self.publish_lldp(device).await;
        }
    }

    /// A frame from a device's LLDP listener: a neighbour added, updated
    /// or (TTL 0) gone.
    async fn lldp_frame(&mut self, ifindex: u32, frame: &[u8]) {
        let Some(n) = nm_platform::lldp::parse(frame) else { return };
        let Some((&id, d)) = self.devices.iter_mut().find(|(_, d)| d.ifindex == ifindex) else { return };
        let Some(watch) = d.lldp.as_mut() else { return };
        let expiry = Instant::now() + Duration::from_secs(u64::from(n.ttl));
        let changed = {
            let mut p = d.props.lock();
            let at = p.lldp.iter().position(|x| x.same(&n));
            match (at, n.ttl) {
                (Some(i), 0) => {
                    p.lldp.remove(i);
                    watch.expires.remove(i);
                    true
                }
                (None, 0) => false,
                (Some(i), _) => {
                    watch.expires[i] = expiry;
                    let changed = p.lldp[i] != n;
                    p.lldp[i] = n;
                    changed
                }
                (None, _) => {
                    if p.lldp.len() >= MAX_LLDP_NEIGHBORS
                        && let Some(soonest) = (0..watch.expires.len()).min_by_key(|i| watch.expires[*i])
                    {
                        p.lldp.remove(soonest);
                        watch.expires.remove(soonest);
                    }
                    p.lldp.push(n);
                    watch.expires.push(expiry);
                    true
                }
            }
        };
        self.arm_lldp_timer(id);
        if changed {
            self.publish_lldp(id).await;
        }
    }

    /// Sets the device's one LLDP timer for its earliest expiry, unless it
    /// is set for that or sooner already.
    fn arm_lldp_timer(&mut self, device: u32) {
        let Some(watch) = self.devices.get_mut(&device).and_then(|d| d.lldp.as_mut()) else { return };
        let Some(next) = watch.expires.iter().min().copied() else { return };
        if watch.timer_at.is_some_and(|t| t <= next) {
            return;
        }
        watch.timer_at = Some(next);
        self.schedule(next.saturating_duration_since(Instant::now()), Timer::LldpExpiry { device });
    }

    /// Drops the neighbours whose TTL ran out, and sets the timer for the
    /// next.
    async fn expire_lldp(&mut self, device: u32) {
        let Some(d) = self.devices.get_mut(&device) else { return };
        let Some(watch) = d.lldp.as_mut() else { return };
        let now = Instant::now();
        if watch.timer_at.is_some_and(|t| t > now) {
            // An earlier timer, overtaken by a later one set since.
            return;
        }
        watch.timer_at = None;
        let removed = {
            let mut p = d.props.lock();
            let before = p.lldp.len();
            let mut i = 0;
            while i < p.lldp.len() {
                if watch.expires[i] <= now {
                    p.lldp.remove(i);
                    watch.expires.remove(i);
                } else {
                    i += 1;
                }
            }
            before != p.lldp.len()
        };
        self.arm_lldp_timer(device);
        if removed {
            self.publish_lldp(device).await;
        }
    }

    async fn publish_lldp(&self, device: u32) {
        let Some(d) = self.devices.get(&device) else { return };
        let list: Vec<_> = d.props.lock().lldp.iter().map(api::lldp_neighbor).collect();
        self.out.changed(&d.path, DEVICE_IFACE, vec![("LldpNeighbors", Variant::from(list))]);
    }

    /// A port profile's link leaves its bridge (when it had joined it).
    async fn leave_bridge(&mut self, ifindex: u32, conn: &Connection) {
        if bridge::master(conn).is_none() {
            return;
        }
        let Some(master) = self.platform.link(ifindex).and_then(|l| l.master) else { return };
        let bridge_device = self.devices.iter().find(|(_, d)| d.ifindex == master).map(|(id, _)| *id);
        if let Err(e) = self.platform.set_master(ifindex, 0).await {
            warn!(ifindex, "leaving the bridge: {e}");
        }
        if let Some(b) = bridge_device {
            self.publish_ports(b).await;
        }
    }

    /// Ends the activations of the ports of `conn` when it is a bridge.
    async fn deactivate_ports(&mut self, conn: &Connection) {
        if bridge::interface(conn).is_none() {
            return;
        }
        let ports: Vec<u32> = self
            .actives
            .iter()
            .filter(|(_, p)| bridge::master(&p.conn).is_some_and(|m| bridge::is_master_of(conn, m)))
            .map(|(id, _)| *id)
            .collect();
        for port in ports {
            Box::pin(self.deactivate(port, reason::DEPENDENCY_FAILED, ac_reason::DEPENDENCY_FAILED)).await;
        }
    }

    /// Deletes the link of a software profile (bridge, macvlan, vxlan,
    /// tun, veth) once its activation has ended.
    async fn delete_software_device(&mut self, device: u32, conn: &Connection) {
        if software::interface(conn).is_none() {
            return;
        }
        let Some(ifindex) = self.devices.get(&device).map(|d| d.ifindex) else { return };
        info!(ifindex, "deleting the device of '{}'", conn.id().unwrap_or_default());
        if let Err(e) = self.platform.delete_link(ifindex).await {
            warn!(ifindex, "deleting the device: {e}");
        }
    }

    /// Rule B2: the AC goes to DEACTIVATING, the configuration goes, the AC
    /// goes to DEACTIVATED, and only then leaves the lists and the bus.
    async fn deactivate(&mut self, ac: u32, device_reason: u32, why: u32) {
        let Some(a) = self.actives.get(&ac) else {
            return;
        };
        let (device, plan, rules, conn) = (a.device, a.plan.clone(), a.rules.clone(), a.conn.clone());
        // An external activation ran no scripts and was nobody's to end.
        let was_up = a.state == AcState::Activated && !a.external;
        info!(device = %self.devices.get(&device).map(|d| d.name.as_str()).unwrap_or("?"), "deactivating '{}'", a.conn.id().unwrap_or_default());
        // A bridge's ports go down before it, as NetworkManager takes them
        // (not when the bridge only takes its profile again).
        if device_reason != reason::NEW_ACTIVATION {
            self.deactivate_ports(&conn).await;
        }
        self.set_ac_state(ac, AcState::Deactivating, why).await;
        self.set_device_state(device, DeviceState::Deactivating, device_reason).await;
        // pre-down is waited for, except when the carrier is already gone.
        if let Some(d) = self.dispatch(ac, "pre-down").filter(|_| was_up && device_reason != reason::CARRIER) {
            self.before_calling_out().await;
            dispatcher::call(&self.bus, &self.dispatcher, d).await;
        }
        let down = self.dispatch(ac, "down").filter(|_| was_up);
        self.stop_sharing(ac);
        if let Some(ifindex) = self.devices.get(&device).map(|d| d.ifindex) {
            self.unapply_plan(ifindex, &plan).await;
            self.deconfigure(ifindex, plan.v6 == FamilyMethod::Ignore).await;
            state_files::save_device(&self.paths, ifindex, None);
            self.leave_bridge(ifindex, &conn).await;
        }
        self.remove_rules(&rules).await;
        // (A software device about to be deleted keeps what it has.)
        if software::interface(&conn).is_none() || device_reason == reason::NEW_ACTIVATION {
            self.restore_ethtool(ac);
            self.restore_promisc(ac).await;
            self.restore_mac(device, &plan).await;
            self.restore_mtu(device).await;
        }
        self.finish_deactivation(ac, why).await;
        // A software device exists while its profile is up (not when the
        // same device is about to take a profile again).
        if device_reason != reason::NEW_ACTIVATION {
            self.delete_software_device(device, &conn).await;
        }
        if let Some(d) = down {
            self.dispatch_later(d);
        }
    }

    async fn finish_deactivation(&mut self, ac: u32, why: u32) {
        self.set_ac_state(ac, AcState::Deactivated, why).await;
        let Some(a) = self.actives.remove(&ac) else {
            return;
        };
        let device = a.device;
        self.stop_lldp(device).await;
        if let Some(d) = self.devices.get_mut(&device) {
            d.active = None;
            {
                let mut p = d.props.lock();
                p.active_connection = root();
                p.ip4_config = root();
                p.ip6_config = root();
            }
            let path = d.path.clone();
            self.out.changed(
                &path,
                DEVICE_IFACE,
                vec![
                    ("ActiveConnection", Variant::from(root())),
                    ("Ip4Config", Variant::from(root())),
                    ("Ip6Config", Variant::from(root())),
                ],
            );
        }
        let next_state = self.devices.get(&device).map_or(DeviceState::Disconnected, Device::idle_state);
        let why_dev = if next_state == DeviceState::Unavailable { reason::CARRIER } else { reason::NONE };
        self.set_device_state(device, next_state, why_dev).await;
        self.publish_actives().await;
        for t in [&a.dhcp.transaction, &a.dhcp6.transaction, &a.link_local.transaction].into_iter().flatten() {
            self.before_calling_out().await;
            dhcp_client::stop(&self.bus, t, false).await;
        }
        let server = self.out.clone();
        let _ = server.remove::<ActiveIface>(&a.path).await;
        if let Some((p, _)) = &a.dhcp.config {
            let _ = server.remove::<Dhcp4ConfigIface>(p).await;
            if let Some(d) = self.devices.get(&device) {
                d.props.lock().dhcp4_config = root();
                self.out.changed(&d.path, DEVICE_IFACE, vec![("Dhcp4Config", Variant::from(root()))]);
            }
        }
        if let Some((p, _)) = &a.dhcp6.config {
            let _ = server.remove::<Dhcp6ConfigIface>(p).await;
            if let Some(d) = self.devices.get(&device) {
                d.props.lock().dhcp6_config = root();
                self.out.changed(&d.path, DEVICE_IFACE, vec![("Dhcp6Config", Variant::from(root()))]);
            }
        }
        if let Some((p, _)) = a.ip4 {
            self.unexport_ip_object(false, &p).await;
        }
        if let Some((p, _)) = a.ip6 {
            self.unexport_ip_object(true, &p).await;
        }
        self.update_dns().await;
        // An external activation's profile is volatile: it goes with it.
        if a.external
            && self.profiles.contains_key(&a.profile)
            && let Err(e) = Box::pin(self.delete_connection(a.profile)).await
        {
            warn!("removing the external profile: {e}");
        }
    }

    /// What the kernel has on a device now (one route dump).
    async fn kernel_config(&self, ifindex: u32) -> KernelConfig {
        let addresses = self
            .platform
            .addresses(ifindex)
            .into_iter()
            .filter(|a| !matches!(a.addr, IpAddr::V6(v6) if v6.is_unicast_link_local()))
            .map(|a| PlannedAddress { addr: a.addr, prefix: a.prefix, lifetime: a.valid_lft })
            .collect();
        let filter = RouteFilter { oif: Some(ifindex), ..RouteFilter::main() };
        let routes = self.platform.routes(filter).await.unwrap_or_default();
        let routes = routes
            .into_iter()
            .filter(|r| !matches!(r.dest, IpAddr::V6(v6) if v6.is_unicast_link_local()))
            .map(|r| ipconfig::PlannedRoute {
                dest: r.dest,
                prefix: r.prefix,
                gateway: r.gateway,
                metric: r.metric,
                table: r.table,
                protocol: r.protocol,
                scope: r.scope,
                mtu: r.mtu,
                extra: Default::default(),
            })
            .collect();
        KernelConfig { addresses, routes }
    }

    /// What an unmanaged device (`lo`, a container's bridge, one the user
    /// let go) shows in IP4Config and IP6Config, as NetworkManager shows
    /// it: the kernel's addresses and main-table routes, nothing of a
    /// profile; no object for a family without any. A managed device's
    /// objects are its activation's, so its view goes.
    async fn show_kernel_ip(&mut self, id: u32) {
        let Some(d) = self.devices.get(&id) else { return };
        let mut views = [None, None];
        if !d.managed && d.active.is_none() {
            let ifindex = d.ifindex;
            let addresses = self.platform.addresses(ifindex);
            let filter = RouteFilter { oif: Some(ifindex), ..RouteFilter::main() };
            let routes = self.platform.routes(filter).await.unwrap_or_else(|e| {
                warn!(ifindex, "listing the device's routes: {e}");
                Vec::new()
            });
            views = [kernel_ip_props(&addresses, &routes, false), kernel_ip_props(&addresses, &routes, true)];
        }
        for (family, view) in views.into_iter().enumerate() {
            self.set_kernel_ip(id, family == 1, view).await;
        }
    }

    async fn set_kernel_ip(&mut self, id: u32, v6: bool, view: Option<IpProps>) {
        let Some(d) = self.devices.get_mut(&id) else { return };
        match (d.kernel_ip[usize::from(v6)].take(), view) {
            (None, None) => {}
            (Some((path, props)), Some(view)) => {
                d.kernel_ip[usize::from(v6)] = Some((path.clone(), props.clone()));
                self.update_ip_object(&path, &props, v6, view).await;
            }
            (None, Some(view)) => {
                let props = Props::new(view);
                let Some(path) = self.export_ip_object(v6, &props).await else { return };
                if let Some(d) = self.devices.get_mut(&id) {
                    d.kernel_ip[usize::from(v6)] = Some((path.clone(), props));
                }
                self.point_device_ip(id, v6, path).await;
            }
            (Some((path, _)), None) => {
                // The device lets go of the object before it leaves the bus.
                self.point_device_ip(id, v6, root()).await;
                self.unexport_ip_object(v6, &path).await;
            }
        }
    }

    async fn follow_externals(&mut self) {
        let ifindexes: Vec<u32> = self.devices.values().map(|d| d.ifindex).collect();
        for ifindex in ifindexes {
            self.follow_external(ifindex, true).await;
        }
    }

    /// Configuration someone else put on a device (NetworkManager's
    /// "connected (externally)"): a managed, idle ethernet device with
    /// addresses of its own gets an in-memory profile describing them and
    /// an external activation that changes nothing; when the addresses go,
    /// the activation and its profile go too.
    /// `now`: decide at once (at start-up); else an idle device is looked
    /// at a little later ([`Timer::External`]).
    async fn follow_external(&mut self, ifindex: u32, now: bool) {
        let Some((id, d)) = self.devices.iter().find(|(_, d)| d.ifindex == ifindex) else { return };
        let id = *id;
        if !d.managed {
            if now {
                self.show_kernel_ip(id).await;
            } else {
                self.schedule(EXTERNAL_SETTLE, Timer::External { ifindex });
            }
            return;
        }
        // Cheap checks first: this runs for every address event.
        let external_ac = match d.active {
            Some(ac) if self.actives.get(&ac).is_some_and(|a| a.external && a.state == AcState::Activated) => Some(ac),
            Some(_) => return,
            None => None,
        };
        let idle = d.managed
            && d.state == DeviceState::Disconnected
            && matches!(d.kind, DeviceType::Ethernet | DeviceType::Veth)
            && self.settings_known
            && !self.asleep();
        if external_ac.is_none() && !idle {
            return;
        }
        let addresses: Vec<nm_platform::Address> =
            self.platform.addresses(ifindex).into_iter().filter(set_by_someone).collect();
        if let Some(ac) = external_ac {
            if addresses.is_empty() {
                info!(device = %d.name, "its external configuration is gone");
                self.deactivate(ac, reason::NONE, ac_reason::DEVICE_DISCONNECTED).await;
            }
            return;
        }
        if addresses.is_empty() {
            return;
        }
        if !now {
            self.schedule(EXTERNAL_SETTLE, Timer::External { ifindex });
            return;
        }
        let name = d.name.clone();
        let seen = self.kernel_config(ifindex).await;
        let mut conn = auto_default::external(&name, &addresses, seen.gateway(false));
        // One left from before a restart of nm-core (in /run, unsaved,
        // never autoconnecting) is taken again rather than doubled.
        let left = self.profiles.iter().find(|(_, p)| {
            let c = p.conn();
            p.props.lock().unsaved
                && c.id() == Some(name.as_str())
                && c.get_str("connection", "interface-name") == Some(name.as_str())
                && c.get("connection", "autoconnect").and_then(Value::as_bool) == Some(false)
        });
        let made = match left.map(|(pid, p)| (*pid, p.uuid.clone())) {
            Some((pid, uuid)) => {
                conn.set("connection", "uuid", Value::Str(uuid));
                self.update_connection(pid, dbus_dict::to_dbus(&conn, false), false).await.map(|()| pid)
            }
            None => self.add_connection(dbus_dict::to_dbus(&conn, false), false).await,
        };
        let profile = match made {
            Ok(profile) => profile,
            Err(e) => {
                warn!(device = %name, "describing its external configuration: {e}");
                return;
            }
        };
        self.set_generated(profile, |props| (props.generated, props.external) = (true, true)).await;
        info!(device = %name, "configured by someone else: connected (externally)");
        if let Err(e) = self.activate(profile, id, false, ActivationType::External(Box::new(seen))).await {
            warn!(device = %name, "external activation: {e}");
            let _ = self.delete_connection(profile).await;
        }
    }

    /// The activated connection with the lowest-metric default route of a
    /// family, as (metric, id): its own, and for IPv6 also what routers
    /// gave (IP6Config lists those).
    fn best_default_route(&self, v6: bool) -> Option<(u32, u32)> {
        self.actives
            .iter()
            .filter(|(_, a)| a.state == AcState::Activated)
            .filter_map(|(id, a)| {
                let planned = a.plan.routes.iter().filter(|r| r.is_default() && r.dest.is_ipv6() == v6);
                let mut metrics: Vec<u32> = planned.map(|r| r.metric).collect();
                if let Some((_, props)) = a.ip6.as_ref().filter(|_| v6 && a.plan.v6 == FamilyMethod::Kernel) {
                    let p = props.lock();
                    metrics.extend(p.routes.iter().filter(|r| r.1 == 0 && r.0.is_ipv6()).map(|r| r.3));
                }
                metrics.into_iter().min().map(|m| (m, *id))
            })
            .min()
    }

    /// Manager's ActiveConnections, ActivatingConnection, PrimaryConnection,
    /// State and Connectivity, and each AC's Default flags.
    async fn publish_actives(&mut self) {
        if self.publishing_deferred {
            self.publish_pending = true;
            return;
        }
        let list: Vec<OwnedObjectPath> = self.actives.values().map(|a| a.path.clone()).collect();
        let activating =
            self.actives.values().find(|a| a.state == AcState::Activating).map(|a| a.path.clone()).unwrap_or_else(root);
        // The primary connection holds the best (lowest metric) IPv4 default route.
        let primary4 = self.best_default_route(false);
        let primary6 = self.best_default_route(true);
        let primary = primary4.or(primary6).map(|(_, id)| id);
        for (id, a) in &self.actives {
            let d4 = primary4.is_some_and(|(_, p)| p == *id);
            let d6 = primary6.is_some_and(|(_, p)| p == *id);
            let changed = {
                let mut p = a.props.lock();
                let c = p.default4 != d4 || p.default6 != d6;
                p.default4 = d4;
                p.default6 = d6;
                c
            };
            if changed {
                self.out.changed(
                    &a.path,
                    ACTIVE_IFACE,
                    vec![("Default", Variant::from(d4)), ("Default6", Variant::from(d6))],
                );
            }
        }
        let any_activated = self.actives.values().any(|a| a.state == AcState::Activated);
        let any_activating = self.actives.values().any(|a| a.state == AcState::Activating);
        let any_deactivating = self.actives.values().any(|a| a.state == AcState::Deactivating);
        let state = if self.asleep() {
            10
        } else if primary.is_some() {
            70
        } else if any_activated {
            50
        } else if any_activating {
            40
        } else if any_deactivating {
            30
        } else {
            20
        };
        let connectivity = if primary.is_some() {
            4
        } else if any_activated {
            3
        } else {
            1
        };
        let primary_path = primary.and_then(|id| self.actives.get(&id)).map(|a| a.path.clone()).unwrap_or_else(root);
        let primary_type = primary
            .and_then(|id| self.actives.get(&id))
            .map(|a| a.conn.connection_type().unwrap_or_default().to_string())
            .unwrap_or_default();
        let mut changed = Vec::new();
        let mut connectivity_changed = false;
        let old_state;
        {
            let mut m = self.manager.lock();
            old_state = m.state;
            if m.active_connections != list {
                m.active_connections = list.clone();
                changed.push(("ActiveConnections", Variant::from(list)));
            }
            if m.activating_connection != activating {
                m.activating_connection = activating.clone();
                changed.push(("ActivatingConnection", Variant::from(activating)));
            }
            if m.primary_connection != primary_path {
                m.primary_connection = primary_path.clone();
                m.primary_connection_type = primary_type.clone();
                changed.push(("PrimaryConnection", Variant::from(primary_path)));
                changed.push(("PrimaryConnectionType", Variant::from(primary_type)));
            }
            if m.connectivity != connectivity {
                m.connectivity = connectivity;
                changed.push(("Connectivity", Variant::from(connectivity)));
                connectivity_changed = true;
            }
            if m.state != state {
                m.state = state;
                changed.push(("State", Variant::from(state)));
            }
        }
        self.out.changed(&nm_path(), NM_IFACE, changed);
        if connectivity_changed {
            self.dispatch_later(Dispatch::global("connectivity-change", dispatcher::connectivity_name(connectivity)));
        }
        if old_state != state {
            self.out.signal(NM_PATH, NM_IFACE, "StateChanged", &(state,));
        }
    }

    async fn update_dns(&mut self) {
        let mut entries = Vec::new();
        let mut sources = Vec::new();
        let best4 = self.best_default_route(false).map(|(_, ac)| ac);
        let best6 = self.best_default_route(true).map(|(_, ac)| ac);
        let configs: Vec<(String, ipconfig::DnsConfig, bool)> = self
            .actives
            .iter()
            .filter(|(_, a)| a.state == AcState::Activated)
            .filter_map(|(id, a)| self.devices.get(&a.device).map(|d| (*id, d, a)))
            .flat_map(|(id, d, a)| {
                [
                    (d.name.clone(), a.plan.dns4.clone(), best4 == Some(id)),
                    (d.name.clone(), a.plan.dns6.clone(), best6 == Some(id)),
                ]
            })
            .filter(|(_, c, _)| !c.servers.is_empty() || !c.searches.is_empty())
            .collect();
        for (iface, c, best) in &configs {
            entries.push((iface.clone(), c.servers.clone(), c.searches.clone(), c.priority));
            sources.push(dns::Source { config: c, best: *best });
        }
        self.dns_props.lock().entries = entries;
        if self.config.core.dns == DnsMode::None {
            return;
        }
        let file = self.paths.path(&self.config.core.resolv_conf);
        let target = std::fs::read_link(&file).ok();
        let via_resolved = self.config.core.dns == DnsMode::SystemdResolved
            || target.as_deref().is_some_and(crate::resolved::is_resolved_file);
        let mode = if via_resolved { "systemd-resolved" } else { "default" };
        let mode_changed = {
            let mut p = self.dns_props.lock();
            let changed = p.mode != mode;
            p.mode = mode.into();
            changed
        };
        if mode_changed {
            self.out.changed(&dns_manager_path(), DNS_MANAGER_IFACE, vec![("Mode", Variant::from(mode))]);
        }
        if via_resolved {
            self.tell_resolved();
        }
        let text = dns::render(&sources);
        if self.last_resolv.as_deref() == Some(text.as_str()) {
            return;
        }
        // NetworkManager's copy in /run always; the resolver file itself
        // unless it is a symlink, which is its owner's (systemd-resolved's
        // stub, say) or leads to that copy already.
        let runtime = self.paths.path(dns::RUNTIME_RESOLV);
        let mut written = nm_runtime::write_replace(&runtime, text.as_bytes(), 0o644)
            .map_err(|e| warn!("writing {}: {e}", runtime.display()))
            .is_ok();
        if dns::writes_resolv_conf(target.as_deref()) {
            written &= nm_runtime::write_atomic(&file, text.as_bytes(), 0o644)
                .map_err(|e| warn!("writing {}: {e}", file.display()))
                .is_ok();
        } else if let Some(t) = target.filter(|t| !dns::leads_to_runtime_copy(t)) {
            tracing::debug!("{} leads to {}: left alone", file.display(), t.display());
        }
        if written {
            self.last_resolv = Some(text);
        }
    }

    /// Each activated device's DNS to systemd-resolved for its link, what
    /// changed only; links that have none any more are reverted.
    fn tell_resolved(&mut self) {
        let mut now: BTreeMap<u32, crate::resolved::LinkDns> = BTreeMap::new();
        for a in self.actives.values().filter(|a| a.state == AcState::Activated) {
            let Some(d) = self.devices.get(&a.device) else { continue };
            let default_route = a.plan.routes.iter().any(|r| r.prefix == 0);
            let dns = crate::resolved::link_dns(&[&a.plan.dns4, &a.plan.dns6], default_route);
            if !dns.servers.is_empty() || !dns.domains.is_empty() {
                now.insert(d.ifindex, dns);
            }
        }
        if now == self.resolved_links {
            return;
        }
        let tx = self.resolved.get_or_insert_with(|| crate::resolved::spawn(self.bus.clone())).clone();
        for (ifindex, dns) in &now {
            if self.resolved_links.get(ifindex) != Some(dns) {
                let _ = tx.send((*ifindex, Some(dns.clone())));
            }
        }
        for ifindex in self.resolved_links.keys().filter(|i| !now.contains_key(i)) {
            let _ = tx.send((*ifindex, None));
        }
        self.resolved_links = now;
    }

    // ------------------------------------------------------- automation ---

    /// Takes recorded activations back after a restart, without touching them.
    async fn assume_recorded(&mut self) {
        let candidates: Vec<(u32, String)> = self
            .devices
            .iter()
            .filter(|(_, d)| d.managed && d.active.is_none() && d.state >= DeviceState::Disconnected)
            .filter_map(|(id, d)| state_files::load_device(&self.paths, d.ifindex).map(|r| (*id, r.uuid)))
            .collect();
        // Bridges before their ports: a port taken back finds its bridge up.
        let mut candidates = candidates;
        candidates.sort_by_key(|(id, _)| self.devices.get(id).is_none_or(|d| d.kind != DeviceType::Bridge));
        for (device, uuid) in candidates {
            let Some(profile) = self.profiles.iter().find(|(_, p)| p.uuid == uuid).map(|(id, _)| *id) else {
                continue;
            };
            if let Err(e) = self.activate(profile, device, false, ActivationType::Assume).await {
                warn!("taking back {uuid}: {e}");
            }
        }
    }

    async fn autoconnect_all(&mut self) {
        if !self.settings_known || self.asleep() {
            return;
        }
        // Software devices whose profiles autoconnect are made first (a
        // macvlan or vxlan once its parent is there); as devices they are
        // then ready like the rest.
        let now = Instant::now();
        let missing: Vec<u32> = self
            .profiles
            .iter()
            .filter(|(_, p)| {
                p.binding.software_interface().is_some_and(|n| !self.devices.values().any(|d| d.name == n))
            })
            .filter(|(_, p)| {
                let conn = p.conn();
                policy::autoconnects(&conn)
                    && software::parent(&conn).is_none_or(|parent| self.parent_ifindex(parent).is_some())
                    && self.may_autoconnect(&p.uuid, now)
            })
            .map(|(id, _)| *id)
            .collect();
        for profile in missing {
            if let Err(e) = self.realize_software(profile).await {
                // Counted as a failed attempt: a profile the kernel refuses
                // is not tried again at every event.
                warn!("autoconnect: {e}");
                let conn = self.profiles[&profile].conn();
                let uuid = self.profiles[&profile].uuid.clone();
                self.retries_for(&uuid).failed(&conn, now);
                self.schedule(policy::RETRY_RESET, Timer::RetryCheck);
            }
        }
        let ready: Vec<u32> = self
            .devices
            .iter()
            .filter(|(_, d)| d.managed && d.autoconnect && d.active.is_none() && d.state == DeviceState::Disconnected)
            .map(|(id, _)| *id)
            .collect();
        // 300 devices at start-up would otherwise publish ActiveConnections
        // (up to 300 paths) some 1,500 times; nothing is answered in between.
        self.publishing_deferred = true;
        for device in ready {
            if self.devices.get(&device).is_none_or(|d| d.active.is_some()) {
                continue;
            }
            if let Some(profile) = self.best_profile(device, true)
                && let Err(e) = self.activate(profile, device, false, ActivationType::Full).await
            {
                warn!("autoconnect: {e}");
            }
        }
        self.publishing_deferred = false;
        if std::mem::take(&mut self.publish_pending) {
            self.publish_actives().await;
        }
    }

    async fn timer(&mut self, timer: Timer) {
        match timer {
            Timer::CarrierGrace { device, since } => {
                let still_lost = self.devices.get(&device).is_some_and(|d| d.carrier_lost == Some(since) && !d.carrier);
                if !still_lost {
                    return;
                }
                if let Some(ac) = self.devices.get(&device).and_then(|d| d.active) {
                    self.deactivate(ac, reason::CARRIER, ac_reason::DEVICE_DISCONNECTED).await;
                } else {
                    self.set_device_state(device, DeviceState::Unavailable, reason::CARRIER).await;
                }
            }
            Timer::StartupWait => self.carrier_wait_over = true,
            Timer::External { ifindex } => self.follow_external(ifindex, true).await,
            Timer::CheckpointTimeout { id, generation } => {
                if self.checkpoints.get(&id).is_some_and(|c| c.generation == generation) {
                    info!("checkpoint {id}: its rollback timeout passed, rolling back");
                    self.checkpoint_rollback(id).await;
                }
            }
            Timer::FlushTimestamps => self.flush(),
            Timer::TrimHeap => nm_runtime::trim_heap(),
            Timer::LldpExpiry { device } => self.expire_lldp(device).await,
            Timer::RetryCheck => self.autoconnect_all().await,
            Timer::Failed { ac, reason } => {
                self.fail_activation(ac, reason).await;
                self.autoconnect_all().await;
            }
            Timer::DhcpHelperWait { ac } => {
                let Some(a) = self.actives.get_mut(&ac) else { return };
                if a.dhcp.transaction.is_some() || a.dhcp.status != V4Status::Waiting {
                    return;
                }
                warn!("DHCPv4 for '{}': nm-dhcp-helper never came onto the bus", a.conn.id().unwrap_or_default());
                a.dhcp.status = V4Status::Failed;
                if a.state == AcState::Activating {
                    self.try_complete(ac).await;
                }
            }
            Timer::Dhcp6Wait { ac } => {
                let Some(a) = self.actives.get_mut(&ac) else { return };
                if a.state != AcState::Activating || a.dhcp6.transaction.is_some() || a.dhcp6.gave_up {
                    return;
                }
                warn!(
                    "DHCPv6 for '{}' never started (link-local address or nm-dhcp-helper)",
                    a.conn.id().unwrap_or_default()
                );
                a.dhcp6.gave_up = true;
                self.try_complete(ac).await;
            }
            Timer::PreUpDone { ac } => {
                let Some(a) = self.actives.get_mut(&ac) else { return };
                a.pre_up_pending = false;
                self.finish_activation(ac).await;
            }
        }
    }

    /// `Startup` goes FALSE once the profiles are known, nothing is
    /// activating, and every managed device has its carrier or the wait for
    /// carriers is over.
    async fn check_startup(&mut self) {
        if !self.startup {
            return;
        }
        let busy = self.actives.values().any(|a| a.state == AcState::Activating);
        let waiting_carrier =
            !self.carrier_wait_over && self.devices.values().any(|d| d.managed && d.state == DeviceState::Unavailable);
        if self.settings_known && !busy && !waiting_carrier {
            self.startup = false;
            self.manager.lock().startup = false;
            self.out.changed(&nm_path(), NM_IFACE, vec![("Startup", Variant::from(false))]);
            info!("start-up complete");
            // Start-up's bursts (every client's GetManagedObjects while it
            // waited) leave freed heap behind; give it back now and once
            // the last waiting clients are served.
            nm_runtime::trim_heap();
            self.schedule(Duration::from_millis(500), Timer::TrimHeap);
        }
    }
}

const NM_IFACE: &str = "org.freedesktop.NetworkManager";
const SETTINGS_IFACE: &str = "org.freedesktop.NetworkManager.Settings";
const CONNECTION_IFACE: &str = "org.freedesktop.NetworkManager.Settings.Connection";
const DEVICE_IFACE: &str = "org.freedesktop.NetworkManager.Device";
const WIRED_IFACE: &str = "org.freedesktop.NetworkManager.Device.Wired";
const VETH_IFACE: &str = "org.freedesktop.NetworkManager.Device.Veth";

/// The interface and property that show a device's `DeviceProps::parent`.
fn parent_property(kind: DeviceType) -> Option<(&'static str, &'static str)> {
    match kind {
        DeviceType::Veth => Some((VETH_IFACE, "Peer")),
        DeviceType::Macvlan => Some(("org.freedesktop.NetworkManager.Device.Macvlan", "Parent")),
        DeviceType::Vxlan => Some(("org.freedesktop.NetworkManager.Device.Vxlan", "Parent")),
        _ => None,
    }
}
const ACTIVE_IFACE: &str = "org.freedesktop.NetworkManager.Connection.Active";
const DNS_MANAGER_IFACE: &str = "org.freedesktop.NetworkManager.DnsManager";

/// The stored secrets of one setting of a profile, from the settings
/// service that has it.
async fn fetch_secrets(
    bus: &Bus,
    source: Source,
    remote: OwnedObjectPath,
    setting: &str,
) -> Result<SettingsDict, NmError> {
    let proxy = zbus::Proxy::new(bus, source.bus_name(), remote, SECRETS_INTERFACE).await.map_err(NmError::from)?;
    let wire: nm_dbus::WireSettings =
        proxy.call("GetSecrets", &(setting, Vec::<String>::new(), false)).await.map_err(NmError::from)?;
    settings_from_wire(&wire).map_err(|e| NmError::failed(e.0))
}

fn nm_path() -> OwnedObjectPath {
    OwnedObjectPath::try_from(NM_PATH).expect("valid path")
}

fn dns_manager_path() -> OwnedObjectPath {
    OwnedObjectPath::try_from(DNS_MANAGER_PATH).expect("valid path")
}

fn settings_path() -> OwnedObjectPath {
    OwnedObjectPath::try_from(SETTINGS_PATH).expect("valid path")
}

fn device_type(kind: &LinkKind) -> DeviceType {
    match kind {
        LinkKind::Loopback => DeviceType::Loopback,
        LinkKind::Ethernet => DeviceType::Ethernet,
        LinkKind::Veth => DeviceType::Veth,
        LinkKind::Bridge => DeviceType::Bridge,
        LinkKind::Macvlan => DeviceType::Macvlan,
        LinkKind::Vxlan => DeviceType::Vxlan,
        LinkKind::Tun => DeviceType::Tun,
        _ => DeviceType::Generic,
    }
}

/// NetworkManager's `NMDeviceInterfaceFlags`: UP 0x1, LOWER_UP 0x2, PROMISC
/// 0x4, CARRIER 0x10000 (from the link) and LLDP_CLIENT_ENABLED 0x20000
/// (while nm-core listens for LLDP on it).
fn iface_flags(link: &Link, lldp: bool) -> u32 {
    (if link.admin_up { 0x1 } else { 0 })
        | (if link.carrier { 0x2 | 0x10000 } else { 0 })
        | (if link.promisc { 0x4 } else { 0 })
        | (if lldp { LLDP_CLIENT_ENABLED } else { 0 })
}

const LLDP_CLIENT_ENABLED: u32 = 0x20000;

fn platform_route(ifindex: u32, r: &ipconfig::PlannedRoute) -> Route {
    let mut route = Route::new(r.dest, r.prefix);
    route.gateway = r.gateway;
    route.oif = Some(ifindex);
    route.metric = r.metric;
    route.table = r.table;
    route.protocol = r.protocol;
    route.scope = r.scope;
    route.mtu = r.mtu;
    route.src = r.extra.src;
    route.onlink = r.extra.onlink;
    route.tcp = r.extra.tcp;
    match r.extra.kind {
        0 | nm_platform::RTN_UNICAST => {}
        nm_platform::RTN_LOCAL => {
            route.kind = nm_platform::RTN_LOCAL;
            route.scope = nm_platform::RT_SCOPE_HOST;
        }
        // The kernel takes these without a device or gateway.
        kind => {
            route.kind = kind;
            route.oif = None;
            route.gateway = None;
            route.scope = nm_platform::RT_SCOPE_UNIVERSE;
        }
    }
    route
}

/// What an IP4Config/IP6Config object (and the dispatcher) shows of a plan;
/// `None` when the family is not configured.
fn ip_props(plan: &Plan, v6: bool) -> Option<IpProps> {
    let method = if v6 { plan.v6 } else { plan.v4 };
    if matches!(method, FamilyMethod::Ignore | FamilyMethod::Disabled) {
        return None;
    }
    let dns = if v6 { &plan.dns6 } else { &plan.dns4 };
    Some(IpProps {
        addresses: plan
            .addresses
            .iter()
            .filter(|x| x.addr.is_ipv6() == v6)
            .map(|x| (x.addr, u32::from(x.prefix)))
            .collect(),
        gateway: if v6 { plan.gateway6.map(|g| g.to_string()) } else { plan.gateway4.map(|g| g.to_string()) }
            .unwrap_or_default(),
        routes: plan
            .routes
            .iter()
            .filter(|r| r.dest.is_ipv6() == v6)
            .map(|r| (r.dest, u32::from(r.prefix), r.gateway, r.metric, r.table))
            .collect(),
        nameservers: dns.servers.clone(),
        searches: dns.searches.clone(),
        options: dns.options.clone(),
        priority: dns.priority,
    })
}

/// An unmanaged device's IP4Config (IP6Config) from what the kernel has:
/// every address of the family (link-local too), its main-table routes
/// and the gateway of its default route; `None` when there is nothing.
fn kernel_ip_props(addresses: &[Address], routes: &[nm_platform::Route], v6: bool) -> Option<IpProps> {
    let addresses: Vec<(IpAddr, u32)> =
        addresses.iter().filter(|a| a.addr.is_ipv6() == v6).map(|a| (a.addr, u32::from(a.prefix))).collect();
    let routes: Vec<_> = routes
        .iter()
        .filter(|r| r.dest.is_ipv6() == v6)
        .map(|r| (r.dest, u32::from(r.prefix), r.gateway, r.metric, r.table))
        .collect();
    if addresses.is_empty() && routes.is_empty() {
        return None;
    }
    let gateway = routes.iter().find(|r| r.1 == 0).and_then(|r| r.2).map(|g| g.to_string()).unwrap_or_default();
    Some(IpProps { addresses, gateway, routes, ..IpProps::default() })
}

/// An IPv6 address the kernel made from a router's advertisement (SLAAC,
/// privacy): global, with a lifetime.
fn from_router(a: &Address) -> bool {
    !is_link_local6(a.addr) && a.addr.is_ipv6() && a.flags & IFA_F_PERMANENT == 0
}

/// `NMActivationStateFlags` of an activation: its role (bridge, port),
/// and once activated, layer 2 and each configured family ready.
/// Whether an address on an idle device is someone's configuration: any
/// IPv4 address; an IPv6 one only if set by hand (permanent, not
/// link-local): the kernel's own SLAAC addresses stay after a profile
/// with `ipv6.method=ignore` goes, and are nobody's activation.
fn set_by_someone(a: &nm_platform::Address) -> bool {
    match a.addr {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => !v6.is_unicast_link_local() && a.flags & nm_platform::IFA_F_PERMANENT != 0,
    }
}

/// `NM_ACTIVATION_STATE_FLAG_EXTERNAL`: nmcli says "connected (externally)".
const AC_EXTERNAL: u32 = 0x80;

fn state_flags(conn: &Connection, plan: &Plan, state: AcState, v4_failed: bool) -> u32 {
    const IS_MASTER: u32 = 0x1;
    const IS_SLAVE: u32 = 0x2;
    const LAYER2_READY: u32 = 0x4;
    const IP4_READY: u32 = 0x8;
    const IP6_READY: u32 = 0x10;
    let configured = |m: FamilyMethod| {
        matches!(m, FamilyMethod::Static | FamilyMethod::Dhcp | FamilyMethod::Kernel | FamilyMethod::Shared)
    };
    let mut flags = 0;
    if bridge::interface(conn).is_some() {
        flags |= IS_MASTER;
    }
    if bridge::master(conn).is_some() {
        flags |= IS_SLAVE;
    }
    if state == AcState::Activated {
        flags |= LAYER2_READY;
        if configured(plan.v4) && !v4_failed {
            flags |= IP4_READY;
        }
        if configured(plan.v6) {
            flags |= IP6_READY;
        }
    }
    flags
}

/// CLOCK_BOOTTIME in milliseconds (a checkpoint's `Created`).
fn boottime_ms() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

fn is_link_local6(addr: IpAddr) -> bool {
    matches!(addr, IpAddr::V6(v6) if v6.is_unicast_link_local())
}

/// The device's addresses of a family that the profile's part of an
/// IP4Config/IP6Config lacks (not those still in duplicate address
/// detection), after it.
fn add_kernel_addresses(props: &mut IpProps, addresses: &[Address], v6: bool) {
    for a in addresses.iter().filter(|a| a.addr.is_ipv6() == v6 && a.flags & IFA_F_TENTATIVE == 0) {
        if !props.addresses.iter().any(|(addr, _)| *addr == a.addr) {
            props.addresses.push((a.addr, u32::from(a.prefix)));
        }
    }
}

/// The IP6Config of an activation: the profile's part plus what the device
/// has: its IPv6 addresses (link-local included, as NetworkManager lists
/// them; not those still in duplicate address detection) and, when the
/// kernel configures IPv6 (`auto`), the routes routers gave and the gateway
/// of the best default route among them.
fn with_kernel_ip6(mut props: IpProps, addresses: &[Address], routes: &[Route]) -> IpProps {
    add_kernel_addresses(&mut props, addresses, true);
    let mut from_routers: Vec<&Route> = routes.iter().filter(|r| r.family == Family::V6).collect();
    from_routers.sort_by_key(|r| (r.prefix, r.metric));
    if props.gateway.is_empty()
        && let Some(gw) = from_routers.iter().find(|r| r.prefix == 0).and_then(|r| r.gateway)
    {
        props.gateway = gw.to_string();
    }
    props.routes.extend(from_routers.iter().map(|r| (r.dest, u32::from(r.prefix), r.gateway, r.metric, r.table)));
    props
}

/// Whether the ip-config stage succeeded: no family that may not fail
/// failed, and something (or nothing at all) was asked.
fn ip_families_ok(plan: &Plan, dhcp: V4Status, dhcp6_bound: bool) -> bool {
    let ok = |m: FamilyMethod, bound: bool| match m {
        FamilyMethod::Dhcp => bound,
        FamilyMethod::Unsupported => false,
        _ => true,
    };
    let asked = |m: FamilyMethod| !matches!(m, FamilyMethod::Ignore | FamilyMethod::Disabled);
    let v4_ok = ok(plan.v4, dhcp == V4Status::Bound);
    let v6_ok = ok(plan.v6, dhcp6_bound);
    let v4_failed = asked(plan.v4) && !v4_ok;
    let v6_failed = asked(plan.v6) && !v6_ok;
    if (v4_failed && !plan.v4_may_fail) || (v6_failed && !plan.v6_may_fail) {
        return false;
    }
    let any_ok = (asked(plan.v4) && v4_ok) || (asked(plan.v6) && v6_ok);
    any_ok || (!asked(plan.v4) && !asked(plan.v6))
}

/// The profile's plan with a lease added: the profile's own addresses,
/// routes and DNS servers first, then the lease's.
fn merge_lease(static_plan: &Plan, lease: &dhcp::LeasePlan) -> Plan {
    let mut plan = static_plan.clone();
    plan.addresses.extend(lease.addresses.iter().cloned());
    plan.routes.extend(lease.routes.iter().cloned());
    if plan.gateway4.is_none() {
        plan.gateway4 = lease.gateway;
    }
    for s in &lease.dns {
        if !plan.dns4.servers.contains(s) {
            plan.dns4.servers.push(s.clone());
        }
    }
    for s in &lease.searches {
        if !plan.dns4.searches.contains(s) {
            plan.dns4.searches.push(s.clone());
        }
    }
    plan
}

/// What putting lease `new` in place of `old` takes from the kernel and
/// puts in: (stale, fresh). Fresh is all of `new`: a renewal refreshes its
/// addresses' lifetimes.
fn lease_change(old: &dhcp::LeasePlan, new: &dhcp::LeasePlan) -> (Plan, Plan) {
    let kept = |x: &&PlannedAddress| new.addresses.iter().any(|n| n.addr == x.addr && n.prefix == x.prefix);
    let stale = Plan::addresses_and_routes(
        old.addresses.iter().filter(|x| !kept(x)).cloned().collect(),
        old.routes.iter().filter(|r| !new.routes.contains(r)).cloned().collect(),
    );
    (stale, Plan::addresses_and_routes(new.addresses.clone(), new.routes.clone()))
}

/// A plan with a DHCPv6 lease added: its address, and its DNS servers and
/// domains after those the profile and DHCPv4 have.
fn merge_dhcp6(mut plan: Plan, lease: &dhcp6::LeasePlan) -> Plan {
    plan.addresses.extend(lease.addresses.iter().cloned());
    for s in &lease.dns {
        if !plan.dns6.servers.contains(s) {
            plan.dns6.servers.push(s.clone());
        }
    }
    for s in &lease.searches {
        if !plan.dns6.searches.contains(s) {
            plan.dns6.searches.push(s.clone());
        }
    }
    plan
}

/// Writes `/proc/sys/net/ipv6/conf/IFACE/KEY` (per network namespace).
/// Whether a profile listens for LLDP (`connection.lldp`: 1, enable-rx;
/// NetworkManager's default, -1, is off).
fn lldp_wanted(conn: &Connection) -> bool {
    conn.get("connection", "lldp").and_then(Value::as_i128) == Some(1)
}

/// Applies an `ethtool` plan to the device `name` and returns what it had
/// before (what could not be changed is a warning, as in NetworkManager:
/// the activation goes on).
fn apply_ethtool(name: &str, plan: &ethtool::EthtoolPlan) -> EthtoolSaved {
    use nm_platform::ethtool as kernel;
    let mut saved = EthtoolSaved { features: Vec::new(), blocks: Vec::new() };
    if !plan.features.is_empty() {
        match kernel::features(name) {
            Ok(now) => {
                let wanted: Vec<(String, bool)> = plan
                    .features
                    .iter()
                    .filter(|(k, _)| now.iter().any(|(n, s)| n == k && s.changeable))
                    .cloned()
                    .collect();
                saved.features = wanted
                    .iter()
                    .filter_map(|(k, _)| now.iter().find(|(n, _)| n == k).map(|(n, s)| (n.clone(), s.active)))
                    .collect();
                let fixed: Vec<&str> =
                    plan.features.iter().filter(|f| !wanted.contains(f)).map(|(k, _)| k.as_str()).collect();
                if !fixed.is_empty() {
                    warn!(device = %name, "ethtool: offload features the device does not let change: {}", fixed.join(", "));
                }
                if let Err(e) = kernel::set_features(name, &wanted) {
                    warn!(device = %name, "ethtool: setting the offload features: {e}");
                }
            }
            Err(e) => warn!(device = %name, "ethtool: reading the offload features: {e}"),
        }
    }
    for (block, words) in &plan.blocks {
        let before = match kernel::block(name, *block) {
            Ok(b) => b,
            Err(e) => {
                warn!(device = %name, "ethtool: the device has no {block:?} settings: {e}");
                continue;
            }
        };
        match kernel::set_block(name, *block, words) {
            Ok(()) => {
                let old = words.iter().filter_map(|(i, _)| before.get(*i).map(|v| (*i, *v))).collect();
                saved.blocks.push((*block, old));
            }
            Err(e) => warn!(device = %name, "ethtool: setting the {block:?} settings: {e}"),
        }
    }
    saved
}

fn set_sysctl(iface: &str, key: &str, value: &str) {
    if iface.is_empty() || iface.contains('/') || iface.contains("..") {
        return;
    }
    let file = format!("/proc/sys/net/ipv6/conf/{iface}/{key}");
    if let Err(e) = std::fs::write(&file, value) {
        warn!("writing {file}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    fn v6(ifindex: u32, addr: &str, prefix: u8, flags: u32) -> Address {
        Address { flags, ..Address::new(ifindex, addr.parse().expect("address"), prefix) }
    }

    fn ra_route(dest: &str, prefix: u8, gateway: Option<&str>, metric: u32) -> Route {
        Route {
            family: Family::V6,
            dest: dest.parse().expect("dest"),
            prefix,
            gateway: gateway.map(|g| g.parse().expect("gateway")),
            oif: Some(2),
            metric,
            table: 254,
            protocol: RTPROT_RA,
            scope: 0,
            src: None,
            mtu: None,
            kind: nm_platform::RTN_UNICAST,
            onlink: false,
            tcp: Default::default(),
            expires: true,
        }
    }

    #[test]
    fn what_routers_gave_is_told_apart_from_what_was_configured() {
        assert!(from_router(&v6(2, "fd00::5054:ff:fe00:1", 64, 0)), "SLAAC: a lifetime");
        assert!(!from_router(&v6(2, "fd00::9", 64, IFA_F_PERMANENT)), "configured: forever");
        assert!(!from_router(&v6(2, "fe80::1", 64, 0)), "link-local stays");
        assert!(!from_router(&Address::new(2, "192.0.2.5".parse().expect("v4"), 24)), "IPv4 is not a router's");
    }

    #[test]
    fn ip6config_of_a_kernel_configured_device_lists_what_the_kernel_has() {
        let addresses = [
            v6(2, "fe80::1:2", 64, IFA_F_PERMANENT),
            v6(2, "fd00::1:2", 64, 0),
            v6(2, "fd00::dead", 64, IFA_F_TENTATIVE),
            Address::new(2, "192.0.2.5".parse().expect("v4"), 24),
        ];
        let routes = [
            ra_route("fd00::", 64, None, 256),
            ra_route("::", 0, Some("fe80::2"), 1024),
            ra_route("::", 0, Some("fe80::1"), 100),
        ];
        let props = with_kernel_ip6(IpProps::default(), &addresses, &routes);
        let listed: Vec<String> = props.addresses.iter().map(|(a, p)| format!("{a}/{p}")).collect();
        assert_eq!(listed, ["fe80::1:2/64", "fd00::1:2/64"], "no IPv4, nothing still in DAD");
        assert_eq!(props.gateway, "fe80::1", "the best default route's");
        assert_eq!(props.routes.len(), 3);
        assert_eq!(
            props.routes[0],
            (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0, Some("fe80::1".parse().expect("gw")), 100, 254)
        );

        let own = IpProps { gateway: "fd00::1".into(), ..IpProps::default() };
        assert_eq!(with_kernel_ip6(own, &addresses, &routes).gateway, "fd00::1", "a profile's gateway wins");
    }
}
