//! [`Platform`]: the handle, the cache it shares with the event task, and
//! the event task itself.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::build::{self, LinkChange, Request};
use crate::cache::Cache;
use crate::error::PlatformError;
use crate::parse::{
    HostInfo, LinkMsg, RTM_DELADDR, RTM_DELLINK, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE, messages, parse_address,
    parse_inet6_link, parse_link, parse_link_removed, parse_route,
};
use crate::socket::{
    DumpEnd, NlSocket, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, RTNLGRP_IPV6_IFINFO, RTNLGRP_LINK, Recv, Requester,
};
use crate::sysfs;
use crate::tun;
use crate::types::{
    Address, BridgeOptions, BridgePortOptions, BridgeVlan, Family, Link, NewLink, PlatformEvent, Qdisc, Route,
    RouteFilter, Rule, TcFilter,
};

/// How often a dump interrupted by concurrent changes is tried again
/// before it is taken as it is (the event stream then corrects the cache).
const DUMP_TRIES: usize = 3;

/// Options of [`Platform::with_options`].
#[derive(Debug, Clone)]
pub struct PlatformOptions {
    /// Receive queue of the event socket in bytes. A burst of events that
    /// does not fit is an overrun, answered by a full re-dump. Default 8 MiB
    /// (kernel memory, used only while events wait to be read).
    pub event_buffer: usize,
}

impl Default for PlatformOptions {
    fn default() -> Self {
        PlatformOptions { event_buffer: 8 << 20 }
    }
}

type Shared = Arc<Mutex<Cache>>;

fn lock(cache: &Shared) -> MutexGuard<'_, Cache> {
    // The cache stays usable even if a holder panicked: every update is a
    // single map operation.
    cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The kernel's links and addresses, kept current by a background task,
/// and the operations on links, addresses and routes.
///
/// Everything happens in the network namespace of the thread that called
/// [`Platform::new`]. Dropping the handle stops the background task.
///
/// After an operation returns, the cache shows the notifications the kernel
/// sent for it while handling the request (links and IPv4 addresses; an
/// IPv6 address may be announced a moment later, when duplicate address
/// detection starts).
pub struct Platform {
    cache: Shared,
    requests: Arc<tokio::sync::Mutex<Requester>>,
    sync: mpsc::UnboundedSender<oneshot::Sender<()>>,
    task: tokio::task::AbortHandle,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform").finish_non_exhaustive()
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Platform {
    /// Opens the netlink sockets in the current thread's network namespace,
    /// subscribes to link and IPv4/IPv6 address events (not routes), dumps
    /// links and addresses into the cache, and starts the event task (on the
    /// current tokio runtime). The receiver gets every change applied to
    /// the cache after the dump.
    pub async fn new() -> Result<(Platform, mpsc::UnboundedReceiver<PlatformEvent>), PlatformError> {
        Platform::with_options(PlatformOptions::default()).await
    }

    pub async fn with_options(
        options: PlatformOptions,
    ) -> Result<(Platform, mpsc::UnboundedReceiver<PlatformEvent>), PlatformError> {
        // Subscribe first, then dump: whatever changes during the dump is
        // queued on the event socket and applied after it.
        let events_sock = NlSocket::events(
            &[RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, RTNLGRP_IPV6_IFINFO],
            options.event_buffer,
        )?;
        let mut requester = Requester::open()?;
        let cache = dump_cache(&mut requester, &Cache::default()).await?;
        let cache: Shared = Arc::new(Mutex::new(cache));
        let requests = Arc::new(tokio::sync::Mutex::new(requester));
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (sync_tx, sync_rx) = mpsc::unbounded_channel();
        let task = EventTask {
            sock: events_sock,
            cache: cache.clone(),
            requests: requests.clone(),
            events: events_tx,
            sync: sync_rx,
        };
        let handle = tokio::spawn(task.run());
        Ok((Platform { cache, requests, sync: sync_tx, task: handle.abort_handle() }, events_rx))
    }

    /// Every link, by ifindex.
    pub fn links(&self) -> Vec<Link> {
        lock(&self.cache).links().cloned().collect()
    }

    pub fn link(&self, ifindex: u32) -> Option<Link> {
        lock(&self.cache).link(ifindex).cloned()
    }

    pub fn link_by_name(&self, name: &str) -> Option<Link> {
        lock(&self.cache).link_by_name(name).cloned()
    }

    /// The addresses of one link, IPv4 and IPv6, in the kernel's order.
    pub fn addresses(&self, ifindex: u32) -> Vec<Address> {
        lock(&self.cache).addresses(ifindex).to_vec()
    }

    fn describe_link(&self, ifindex: u32) -> String {
        match self.link(ifindex) {
            Some(l) => format!("link {ifindex} ({})", l.name),
            None => format!("link {ifindex}"),
        }
    }

    /// Sends a request that changes something and waits for the kernel's
    /// acknowledgement.
    async fn change(&self, req: Request, op: &(dyn Fn() -> String + Sync)) -> Result<(), PlatformError> {
        let mut requests = self.requests.lock().await;
        requests.run(&req, op, &mut |_, _| {}).await?;
        Ok(())
    }

    /// Waits until the event task has read everything the kernel queued
    /// so far.
    async fn settle(&self) {
        let (tx, rx) = oneshot::channel();
        if self.sync.send(tx).is_ok() {
            let _ = rx.await;
        }
    }

    async fn change_link(&self, ifindex: u32, change: LinkChange) -> Result<(), PlatformError> {
        let what = match change {
            LinkChange::Up(true) => "setting up".to_owned(),
            LinkChange::Up(false) => "setting down".to_owned(),
            LinkChange::Promisc(on) => format!("setting promiscuous mode {} on", if on { "on" } else { "off" }),
            LinkChange::Mtu(mtu) => format!("setting MTU {mtu} on"),
            LinkChange::Mac(m) => {
                format!("setting MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} on", m[0], m[1], m[2], m[3], m[4], m[5])
            }
            LinkChange::Master(0) => "releasing from its bridge".to_owned(),
            LinkChange::Master(m) => format!("attaching to {} the link", self.describe_link(m)),
            LinkChange::Ipv6Token(t) => format!("setting IPv6 token {t} on"),
        };
        let op = || format!("{what} {}", self.describe_link(ifindex));
        self.change(build::set_link(ifindex, change), &op).await?;
        self.settle().await;
        Ok(())
    }

    /// `IFF_UP` on or off.
    pub async fn set_link_up(&self, ifindex: u32, up: bool) -> Result<(), PlatformError> {
        self.change_link(ifindex, LinkChange::Up(up)).await
    }

    /// `IFF_PROMISC`: whether the link takes frames for any MAC address.
    pub async fn set_promisc(&self, ifindex: u32, on: bool) -> Result<(), PlatformError> {
        self.change_link(ifindex, LinkChange::Promisc(on)).await
    }

    pub async fn set_mtu(&self, ifindex: u32, mtu: u32) -> Result<(), PlatformError> {
        self.change_link(ifindex, LinkChange::Mtu(mtu)).await
    }

    pub async fn set_mac(&self, ifindex: u32, mac: [u8; 6]) -> Result<(), PlatformError> {
        self.change_link(ifindex, LinkChange::Mac(mac)).await
    }

    /// The interface identifier the kernel gives SLAAC addresses on the
    /// link (`::`: its own again). The link must take router advertisements.
    pub async fn set_ipv6_token(&self, ifindex: u32, token: std::net::Ipv6Addr) -> Result<(), PlatformError> {
        self.change_link(ifindex, LinkChange::Ipv6Token(token)).await
    }

    /// Makes the link a port of the bridge `master` (0: of none).
    pub async fn set_master(&self, ifindex: u32, master: u32) -> Result<(), PlatformError> {
        self.change_link(ifindex, LinkChange::Master(master)).await
    }

    /// Gives the bridge `ifindex` the settings `o` (all of them: what the
    /// profile leaves out goes back to NetworkManager's default).
    pub async fn change_bridge(&self, ifindex: u32, o: &BridgeOptions) -> Result<(), PlatformError> {
        let op = || format!("setting the bridge options of {}", self.describe_link(ifindex));
        self.change(build::change_bridge(ifindex, o), &op).await
    }

    /// A bridge's VLAN filtering and default port VLAN (0: none), each
    /// when given.
    pub async fn set_bridge_vlan_filtering(
        &self,
        ifindex: u32,
        filtering: Option<bool>,
        default_pvid: Option<u16>,
    ) -> Result<(), PlatformError> {
        let op = || format!("setting the VLAN filtering of {}", self.describe_link(ifindex));
        self.change(build::bridge_vlan_filtering(ifindex, filtering, default_pvid), &op).await
    }

    /// How the port `ifindex` sits in its bridge.
    pub async fn set_bridge_port(&self, ifindex: u32, o: &BridgePortOptions) -> Result<(), PlatformError> {
        let op = || format!("setting the bridge port options of {}", self.describe_link(ifindex));
        self.change(build::change_bridge_port(ifindex, o), &op).await
    }

    /// Adds (`add`) or removes entries of the VLAN table of a bridge
    /// (`of_bridge`) or of a bridge port.
    pub async fn change_bridge_vlans(
        &self,
        ifindex: u32,
        of_bridge: bool,
        add: bool,
        vlans: &[BridgeVlan],
    ) -> Result<(), PlatformError> {
        if vlans.is_empty() {
            return Ok(());
        }
        let verb = if add { "adding VLANs to" } else { "removing VLANs from" };
        let op = || format!("{verb} {}", self.describe_link(ifindex));
        self.change(build::bridge_vlans(ifindex, of_bridge, add, vlans), &op).await
    }

    /// Puts exactly `qdiscs` and `filters` on the device, as NetworkManager
    /// does: the root and ingress qdiscs go first (with the filters on
    /// them; the kernel's default root qdisc comes back) and the root's
    /// filters, then each is added in order. Every one is tried; the first
    /// failure is returned.
    pub async fn sync_tc(&self, ifindex: u32, qdiscs: &[Qdisc], filters: &[TcFilter]) -> Result<(), PlatformError> {
        const TC_H_ROOT: u32 = 0xffff_ffff;
        const TC_H_INGRESS: u32 = 0xffff_fff1;
        let dev = self.describe_link(ifindex);
        // Nothing there to remove is not an error.
        let _ =
            self.change(build::delete_qdisc(ifindex, TC_H_ROOT), &|| format!("removing the root qdisc of {dev}")).await;
        let _ = self
            .change(build::delete_qdisc(ifindex, TC_H_INGRESS), &|| format!("removing the ingress qdisc of {dev}"))
            .await;
        let _ =
            self.change(build::delete_filters(ifindex, TC_H_ROOT), &|| format!("removing the filters of {dev}")).await;
        let mut first = None;
        for q in qdiscs {
            let op = || format!("adding qdisc {} to {dev}", q.kind);
            if let Err(e) = self.change(build::new_qdisc(ifindex, q), &op).await {
                first.get_or_insert(e);
            }
        }
        for f in filters {
            let op = || format!("adding filter {} to {dev}", f.kind);
            if let Err(e) = self.change(build::new_filter(ifindex, f), &op).await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Creates a software link and returns it as the cache has it now. A
    /// name in use is refused (`EEXIST`).
    pub async fn create_link(&self, name: &str, what: &NewLink) -> Result<Link, PlatformError> {
        let op = || format!("creating {name}");
        match what {
            NewLink::Tun(o) => {
                build::check_ifname(name)?;
                if self.link_by_name(name).is_some() {
                    // TUNSETIFF would attach to it rather than refuse.
                    return Err(PlatformError::Invalid(format!("{name} exists already")));
                }
                tun::create(name, o).map_err(|e| PlatformError::Kernel {
                    op: op(),
                    errno: e.raw_os_error().unwrap_or(libc::EIO),
                    message: None,
                })?;
                // The kernel announces owner and group only for a link that
                // is up: what it said at creation is read again.
                self.settle().await;
                self.read_link(name).await?;
            }
            _ => self.change(build::new_link(name, what)?, &op).await?,
        }
        self.settle().await;
        self.link_by_name(name).ok_or_else(|| PlatformError::Invalid(format!("{name} created but not seen")))
    }

    /// Reads one link from the kernel into the cache (no event): for a
    /// state the kernel reports late (a carrier change waits for the
    /// kernel's link watch, up to a second), when it is needed now.
    pub async fn read_link(&self, name: &str) -> Result<(), PlatformError> {
        let mut read = None;
        let op = || format!("reading {name}");
        let mut requests = self.requests.lock().await;
        requests
            .run(&build::get_link(name), &op, &mut |kind, payload| {
                if kind == RTM_NEWLINK
                    && let Ok(Some(msg)) = parse_link(payload)
                {
                    read = Some(msg);
                }
            })
            .await?;
        if let Some(msg) = read {
            let mut cache = lock(&self.cache);
            let info = host_info(&cache, &msg);
            cache.put_link(msg.into_link(&info));
        }
        Ok(())
    }

    /// Deletes a link (a software device); one already gone is not an error.
    pub async fn delete_link(&self, ifindex: u32) -> Result<(), PlatformError> {
        let op = || format!("deleting {}", self.describe_link(ifindex));
        match self.change(build::del_link(ifindex), &op).await {
            Err(e) if e.errno() == Some(libc::ENODEV) => {}
            other => other?,
        }
        self.settle().await;
        Ok(())
    }

    /// Adds an address, or refreshes it if it exists (`NLM_F_REPLACE`):
    /// lifetimes from `valid_lft`/`preferred_lft` (preferred is capped at
    /// valid), `IFA_F_NOPREFIXROUTE` from `noprefixroute`; an IPv4 address
    /// without a peer gets its broadcast address. `flags` is not sent.
    pub async fn add_address(&self, addr: &Address) -> Result<(), PlatformError> {
        let req = build::new_address(addr)?;
        let op = || format!("adding {}/{} to {}", addr.addr, addr.prefix, self.describe_link(addr.ifindex));
        self.change(req, &op).await?;
        self.settle().await;
        Ok(())
    }

    /// Deletes an address. One that is not there (or whose link is gone)
    /// is not an error.
    pub async fn delete_address(&self, addr: &Address) -> Result<(), PlatformError> {
        let req = build::del_address(addr)?;
        let op = || format!("deleting {}/{} from {}", addr.addr, addr.prefix, self.describe_link(addr.ifindex));
        match self.change(req, &op).await {
            Err(e) if matches!(e.errno(), Some(libc::EADDRNOTAVAIL | libc::ENODEV)) => {}
            other => other?,
        }
        self.settle().await;
        Ok(())
    }

    /// The unicast routes that match `filter`. Routes are not cached: each
    /// call dumps, per family, only what the kernel's filter lets through
    /// (table, interface, protocol; the parser checks again, for kernels
    /// without strict checking). A table or interface that does not exist
    /// has no routes.
    pub async fn routes(&self, filter: RouteFilter) -> Result<Vec<Route>, PlatformError> {
        let families = match filter.family {
            Some(f) => vec![f],
            None => vec![Family::V4, Family::V6],
        };
        let mut routes = Vec::new();
        let mut requests = self.requests.lock().await;
        for family in families {
            let req = build::dump_routes(family, &filter);
            let op = || format!("dumping {family:?} routes ({filter:?})");
            for attempt in 1..=DUMP_TRIES {
                let mut got = Vec::new();
                let mut on_message = |kind: u16, payload: &[u8]| {
                    if kind == RTM_NEWROUTE {
                        match parse_route(payload, &filter) {
                            Ok(Some(r)) => got.push(r),
                            Ok(None) => {}
                            Err(e) => tracing::warn!(error = %e, "skipping a route"),
                        }
                    }
                };
                match requests.run(&req, &op, &mut on_message).await {
                    Ok(DumpEnd::Interrupted) if attempt < DUMP_TRIES => continue,
                    Ok(_) => routes.extend(got),
                    Err(e) if matches!(e.errno(), Some(libc::ENOENT | libc::ENODEV)) => {}
                    Err(e) => return Err(e),
                }
                break;
            }
        }
        Ok(routes)
    }

    /// Adds `route`, or replaces the one with the same destination, table
    /// and metric (`NLM_F_CREATE | NLM_F_REPLACE`).
    pub async fn replace_route(&self, route: &Route) -> Result<(), PlatformError> {
        let req = build::new_route(route)?;
        let op = || format!("replacing route {}", describe_route(route));
        self.change(req, &op).await
    }

    /// Adds a routing policy rule; one already there is not an error.
    pub async fn add_rule(&self, rule: &Rule) -> Result<(), PlatformError> {
        let req = build::new_rule(rule)?;
        let op = || format!("adding routing rule {rule:?}");
        match self.change(req, &op).await {
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
            other => other,
        }
    }

    /// Deletes a routing policy rule; one that is not there is not an error.
    pub async fn delete_rule(&self, rule: &Rule) -> Result<(), PlatformError> {
        let req = build::del_rule(rule)?;
        let op = || format!("deleting routing rule {rule:?}");
        match self.change(req, &op).await {
            Err(e) if matches!(e.errno(), Some(libc::ENOENT | libc::ESRCH)) => Ok(()),
            other => other,
        }
    }

    /// Deletes the route with the destination, table, metric, protocol,
    /// gateway and interface of `route`. One that is not there (or whose
    /// interface is gone) is not an error. For a metric of 0 the kernel
    /// takes the first route that matches the rest.
    pub async fn delete_route(&self, route: &Route) -> Result<(), PlatformError> {
        let req = build::del_route(route)?;
        let op = || format!("deleting route {}", describe_route(route));
        match self.change(req, &op).await {
            Err(e) if matches!(e.errno(), Some(libc::ESRCH | libc::ENODEV)) => Ok(()),
            other => other,
        }
    }
}

fn describe_route(r: &Route) -> String {
    let mut s = format!("{}/{}", r.dest, r.prefix);
    if let Some(gw) = r.gateway {
        s += &format!(" via {gw}");
    }
    if let Some(oif) = r.oif {
        s += &format!(" dev {oif}");
    }
    s + &format!(" metric {} table {} proto {}", r.metric, r.table, r.protocol)
}

/// What sysfs says about a link, asked only when it matters and only once
/// per index and name.
fn host_info(known: &Cache, msg: &LinkMsg) -> HostInfo {
    if !msg.wants_host_info() {
        return HostInfo::default();
    }
    known.host_info(msg.ifindex, &msg.name).unwrap_or_else(|| sysfs::probe(&msg.name, msg.ifindex))
}

/// Links and addresses as the kernel has them now. `known` spares sysfs
/// reads for links already seen.
async fn dump_cache(requests: &mut Requester, known: &Cache) -> Result<Cache, PlatformError> {
    let mut attempt = 1;
    loop {
        let mut fresh = Cache::default();
        let op = || "dumping links".to_owned();
        let links_end = requests
            .run(&build::dump_links(), &op, &mut |kind, payload| {
                if kind != RTM_NEWLINK {
                    return;
                }
                match parse_link(payload) {
                    Ok(Some(msg)) => {
                        let info = host_info(known, &msg);
                        fresh.put_link(msg.into_link(&info));
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "skipping a link"),
                }
            })
            .await?;
        let op = || "dumping addresses".to_owned();
        let addrs_end = requests
            .run(&build::dump_addresses(), &op, &mut |kind, payload| {
                if kind != RTM_NEWADDR {
                    return;
                }
                match parse_address(payload) {
                    Ok(Some(a)) => {
                        fresh.put_address(a);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "skipping an address"),
                }
            })
            .await?;
        let consistent = links_end == DumpEnd::Complete && addrs_end == DumpEnd::Complete;
        if consistent || attempt == DUMP_TRIES {
            if !consistent {
                tracing::debug!("dump interrupted by changes; events will correct it");
            }
            return Ok(fresh);
        }
        attempt += 1;
    }
}

/// The background task: reads the event socket, updates the cache, sends
/// the events; answers settle requests; re-dumps after an overrun.
struct EventTask {
    sock: NlSocket,
    cache: Shared,
    requests: Arc<tokio::sync::Mutex<Requester>>,
    events: mpsc::UnboundedSender<PlatformEvent>,
    sync: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
}

impl EventTask {
    async fn run(mut self) {
        loop {
            tokio::select! {
                biased;
                waiter = self.sync.recv() => match waiter {
                    Some(waiter) => {
                        self.drain().await;
                        let _ = waiter.send(());
                    }
                    // The Platform is gone.
                    None => return,
                },
                got = self.sock.recv() => {
                    match got {
                        Ok(Recv::Data(len)) => {
                            let events = apply(&self.cache, self.sock.data(len));
                            self.send(events);
                            // Whatever else is queued, in one go.
                            self.drain().await;
                        }
                        Ok(Recv::Empty) => {}
                        Ok(Recv::Overrun) | Ok(Recv::Truncated(_)) => self.resync().await,
                        Err(e) => {
                            tracing::error!(error = %e, "netlink event socket");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            }
        }
    }

    fn send(&self, events: Vec<PlatformEvent>) {
        for e in events {
            // Nobody listening is fine: the cache is what counts.
            let _ = self.events.send(e);
        }
    }

    /// Reads and applies everything queued now.
    async fn drain(&mut self) {
        loop {
            match self.sock.try_recv() {
                Ok(Recv::Data(len)) => {
                    let events = apply(&self.cache, self.sock.data(len));
                    self.send(events);
                }
                Ok(Recv::Empty) => return,
                Ok(Recv::Overrun) | Ok(Recv::Truncated(_)) => {
                    self.resync().await;
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "netlink event socket");
                    return;
                }
            }
        }
    }

    /// Events were lost. What is still queued is older than the loss and
    /// is dropped; a fresh dump replaces the cache, and the difference goes
    /// out as events, then `Resynced`. Events queued from here on are newer
    /// than the moment the dump starts, and are applied after it.
    async fn resync(&mut self) {
        tracing::info!("netlink event socket overran; dumping links and addresses again");
        loop {
            loop {
                match self.sock.try_recv() {
                    Ok(Recv::Empty) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            let known = lock(&self.cache).clone();
            let dumped = {
                let mut requests = self.requests.lock().await;
                dump_cache(&mut requests, &known).await
            };
            match dumped {
                Ok(fresh) => {
                    let events = lock(&self.cache).replace(fresh);
                    self.send(events);
                    self.send(vec![PlatformEvent::Resynced]);
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "re-dump after an overrun failed; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// Applies one datagram of events to the cache; returns the events.
fn apply(cache: &Shared, data: &[u8]) -> Vec<PlatformEvent> {
    let mut out = Vec::new();
    for m in messages(data) {
        let (h, payload) = match m {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "skipping the rest of an event datagram");
                break;
            }
        };
        let result = match h.kind {
            RTM_NEWLINK => parse_link(payload).map(|msg| {
                if let Some(msg) = msg {
                    let info = host_info(&lock(cache), &msg);
                    out.extend(lock(cache).put_link(msg.into_link(&info)));
                } else if let Some((ifindex, ra)) = parse_inet6_link(payload) {
                    out.extend(lock(cache).set_ra(ifindex, ra));
                }
            }),
            RTM_DELLINK => parse_link_removed(payload).map(|gone| {
                if let Some((ifindex, name)) = gone {
                    lock(cache).remove_link(ifindex, name, &mut out);
                }
            }),
            RTM_NEWADDR => parse_address(payload).map(|a| {
                if let Some(a) = a {
                    out.extend(lock(cache).put_address(a));
                }
            }),
            RTM_DELADDR => parse_address(payload).map(|a| {
                if let Some(a) = a {
                    out.extend(lock(cache).remove_address(&a));
                }
            }),
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, kind = h.kind, "skipping an event");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send<T: Send>(_: &T) {}

    /// nm-core shares one Platform between tasks of a multi-threaded runtime.
    #[test]
    fn the_handle_and_its_futures_can_cross_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Platform>();
        #[allow(dead_code)]
        fn futures(p: &Platform, a: &Address, r: &Route) {
            send(&Platform::new());
            send(&p.set_link_up(1, true));
            send(&p.set_mtu(1, 1500));
            send(&p.set_mac(1, [2, 0, 0, 0, 0, 1]));
            send(&p.add_address(a));
            send(&p.delete_address(a));
            send(&p.routes(RouteFilter::default()));
            send(&p.replace_route(r));
            send(&p.delete_route(r));
        }
    }
}
