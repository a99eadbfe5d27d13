//! The driver of one transaction: one task that owns the machine and its
//! sockets, feeds it packets, timer expiries and `Stop`, and carries out
//! what it returns (packets, `Event` signals, the `State` property, the
//! lease file).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use zbus::names::InterfaceName;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, OwnedObjectPath, Variant};

use crate::lease::{self, ClientView, Lease};
use crate::machine::{Action, Config, EventKind, Input, Machine, Sockets, Via};
use crate::net::{ArpSocket, Link, PacketSocket, UdpSocket};
use crate::service::{Control, Shared, TRANSACTION_INTERFACE, TransactionIface};

pub struct Setup {
    pub id: u32,
    pub path: OwnedObjectPath,
    pub link: Link,
    pub cfg: Config,
    pub view: ClientView,
    pub lease_file: PathBuf,
    pub state: Arc<Mutex<&'static str>>,
    pub seed: u64,
}

struct Driver {
    bus: Connection,
    setup: Setup,
    epoch: Instant,
    raw: Option<PacketSocket>,
    udp: Option<UdpSocket>,
    arp: Option<ArpSocket>,
    published: &'static str,
    lease_write_failed: bool,
}

/// Waits on a socket that may not be open (then forever).
async fn recv_raw(s: &mut Option<PacketSocket>) -> std::io::Result<(Ipv4Addr, Vec<u8>)> {
    match s {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

async fn recv_udp(s: &mut Option<UdpSocket>) -> std::io::Result<(Ipv4Addr, Vec<u8>)> {
    match s {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

async fn recv_arp(s: &mut Option<ArpSocket>) -> std::io::Result<Vec<u8>> {
    match s {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// Errors that say the interface is gone, not that the link is busy.
pub(crate) fn fatal(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENODEV | libc::ENXIO | libc::EPERM | libc::EACCES))
}

pub async fn run(
    bus: Connection,
    shared: Arc<Shared>,
    setup: Setup,
    raw: PacketSocket,
    mut inbox: mpsc::UnboundedReceiver<Control>,
) {
    let id = setup.id;
    let mut machine = Machine::new(setup.cfg.clone(), setup.seed);
    let mut d = Driver {
        bus,
        setup,
        epoch: Instant::now(),
        raw: Some(raw),
        udp: None,
        arp: None,
        published: "init",
        lease_write_failed: false,
    };
    let mut actions = machine.handle(Input::Start, d.now());
    // The first packet leaves at once: the activation waits for the
    // server's answer to it, not for the Start reply. Everything else, the
    // Events above all, follows the reply (the object path), so nm-core
    // knows the transaction its events name.
    d.send_leading(&mut actions);
    tokio::task::yield_now().await;
    let mut stop_done = None;
    loop {
        let finished = d.carry_out(actions).await;
        if !finished && let Err(e) = d.sync_sockets(machine.sockets()) {
            warn!(device = %d.setup.link.ifname, "{e}");
            d.event(EventKind::Fail, None).await;
            break;
        }
        d.publish_state(machine.state_name()).await;
        if finished {
            break;
        }
        let deadline = machine.deadline().map(|t| d.epoch + t);
        actions = tokio::select! {
            r = recv_raw(&mut d.raw) => match r {
                Ok((from, payload)) => machine.handle(Input::Packet { payload: &payload, from }, d.now()),
                Err(e) if !fatal(&e) => {
                    // A passing error (the link went down, an ICMP error):
                    // keep going, without spinning on it.
                    debug!(device = %d.setup.link.ifname, "packet socket: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Vec::new()
                }
                Err(e) => {
                    warn!(device = %d.setup.link.ifname, "packet socket: {e}");
                    d.event(EventKind::Fail, None).await;
                    break;
                }
            },
            r = recv_udp(&mut d.udp) => match r {
                Ok((from, payload)) => machine.handle(Input::Packet { payload: &payload, from }, d.now()),
                Err(e) if !fatal(&e) => {
                    // A passing error (the link went down, an ICMP error):
                    // keep going, without spinning on it.
                    debug!(device = %d.setup.link.ifname, "UDP socket: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Vec::new()
                }
                Err(e) => {
                    warn!(device = %d.setup.link.ifname, "UDP socket: {e}");
                    d.event(EventKind::Fail, None).await;
                    break;
                }
            },
            r = recv_arp(&mut d.arp) => match r {
                Ok(payload) => machine.handle(Input::Arp { payload: &payload }, d.now()),
                Err(e) if !fatal(&e) => {
                    debug!(device = %d.setup.link.ifname, "ARP socket: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Vec::new()
                }
                Err(e) => {
                    warn!(device = %d.setup.link.ifname, "ARP socket: {e}");
                    d.event(EventKind::Fail, None).await;
                    break;
                }
            },
            () = sleep_until(deadline) => machine.handle(Input::Timer, d.now()),
            c = inbox.recv() => match c {
                Some(Control::Stop { release, done }) => {
                    stop_done = Some(done);
                    machine.handle(Input::Stop { release }, d.now())
                }
                // Refused for DHCPv4 transactions by the service.
                Some(Control::Decline { .. }) => Vec::new(),
                None => break,
            },
        };
    }
    d.raw = None;
    d.udp = None;
    d.arp = None;
    d.publish_state("stopped").await;
    shared.forget(id);
    if let Err(e) = d.bus.object_server().remove::<TransactionIface, _>(&d.setup.path).await {
        debug!("unexporting {}: {e}", d.setup.path);
    }
    info!(device = %d.setup.link.ifname, transaction = id, "DHCPv4 transaction ended");
    if let Some(done) = stop_done {
        let _ = done.send(());
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Opens the socket the machine needs to receive on and closes the others.
    fn sync_sockets(&mut self, want: Sockets) -> std::io::Result<()> {
        if want != Sockets::Arp {
            self.arp = None;
        }
        match want {
            Sockets::Packet => {
                self.udp = None;
                self.open_raw()?;
            }
            Sockets::Udp => {
                self.raw = None;
                self.open_udp()?;
            }
            Sockets::Arp => {
                self.raw = None;
                self.udp = None;
                self.open_arp()?;
            }
            Sockets::None => {
                self.raw = None;
                self.udp = None;
            }
        }
        Ok(())
    }

    fn open_arp(&mut self) -> std::io::Result<&ArpSocket> {
        if self.arp.is_none() {
            let s = ArpSocket::open(self.setup.link.ifindex)
                .map_err(|e| std::io::Error::new(e.kind(), format!("opening the ARP socket: {e}")))?;
            self.arp = Some(s);
        }
        Ok(self.arp.as_ref().expect("just opened"))
    }

    fn open_raw(&mut self) -> std::io::Result<&PacketSocket> {
        if self.raw.is_none() {
            let s = PacketSocket::open(self.setup.link.ifindex)
                .map_err(|e| std::io::Error::new(e.kind(), format!("opening the packet socket: {e}")))?;
            self.raw = Some(s);
        }
        Ok(self.raw.as_ref().expect("just opened"))
    }

    fn open_udp(&mut self) -> std::io::Result<&UdpSocket> {
        if self.udp.is_none() {
            let s = UdpSocket::open(&self.setup.link.ifname)
                .map_err(|e| std::io::Error::new(e.kind(), format!("opening the UDP socket on port 68: {e}")))?;
            self.udp = Some(s);
        }
        Ok(self.udp.as_ref().expect("just opened"))
    }

    /// Carries out the machine's actions; true when the transaction is over.
    async fn carry_out(&mut self, actions: Vec<Action>) -> bool {
        let mut finished = false;
        for action in actions {
            match action {
                Action::Send { payload, via, what } => {
                    if let Err(e) = self.send(&payload, via).await {
                        warn!(device = %self.setup.link.ifname, ?via, "sending {what}: {e}");
                        if fatal(&e) {
                            self.event(EventKind::Fail, None).await;
                            return true;
                        }
                    } else {
                        debug!(device = %self.setup.link.ifname, ?via, "sent {what}");
                    }
                }
                Action::Arp { payload, what } => match self.open_arp().and_then(|s| s.send_broadcast(&payload)) {
                    Ok(()) => debug!(device = %self.setup.link.ifname, "sent {what}"),
                    Err(e) => {
                        warn!(device = %self.setup.link.ifname, "sending {what}: {e}");
                        if fatal(&e) {
                            self.event(EventKind::Fail, None).await;
                            return true;
                        }
                    }
                },
                Action::Event { kind, lease } => self.event(kind, lease.as_ref()).await,
                Action::SaveLease(lease) => self.save(&lease),
                Action::RemoveLease => match std::fs::remove_file(&self.setup.lease_file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => warn!(file = %self.setup.lease_file.display(), "removing the lease file: {e}"),
                },
                Action::Finished => finished = true,
            }
        }
        finished
    }

    /// Sends the leading raw broadcasts of `actions` now (the packet socket
    /// sends without waiting) and takes them off the list; one that fails
    /// stays, for `carry_out` to try again and report.
    fn send_leading(&mut self, actions: &mut Vec<Action>) {
        while let Some(Action::Send { payload, via: Via::RawBroadcast, what }) = actions.first() {
            if self.open_raw().and_then(|s| s.send_broadcast(payload)).is_err() {
                return;
            }
            debug!(device = %self.setup.link.ifname, via = ?Via::RawBroadcast, "sent {what}");
            actions.remove(0);
        }
    }

    async fn send(&mut self, payload: &[u8], via: Via) -> std::io::Result<()> {
        match via {
            Via::RawBroadcast => self.open_raw()?.send_broadcast(payload),
            Via::UdpUnicast(to) => self.open_udp()?.send_to(payload, to).await,
            Via::UdpBroadcast => self.open_udp()?.send_to(payload, Ipv4Addr::BROADCAST).await,
        }
    }

    /// The client's view of a lease now: its wall-clock expiry.
    fn view(&self, lease: Option<&Lease>) -> ClientView {
        let mut view = self.setup.view.clone();
        if let Some(l) = lease.filter(|l| !l.infinite()) {
            let expires_in = (l.acquired + Duration::from_secs(u64::from(l.lease_time))).saturating_sub(self.now());
            let unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            view.expiry = Some(unix + expires_in.as_secs());
        }
        view
    }

    async fn event(&mut self, kind: EventKind, lease: Option<&Lease>) {
        let dev = &self.setup.link.ifname;
        match lease {
            Some(l) => info!(
                device = %dev,
                state = kind.as_str(),
                "{}/{} from {}, lease {} s",
                l.address,
                l.prefix,
                l.server_id,
                l.lease_time
            ),
            None => info!(device = %dev, state = kind.as_str(), "DHCPv4 event"),
        }
        let dict = lease::to_dbus(lease, &self.view(lease));
        let sent = async {
            let emitter = SignalEmitter::new(&self.bus, self.setup.path.clone())?;
            TransactionIface::event(&emitter, kind.as_str(), dict).await
        };
        if let Err(e) = sent.await {
            warn!("emitting Event on {}: {e}", self.setup.path);
        }
        // The exchange is over until the renewal: what it allocated (the
        // bus connection's buffers, decoded packets) goes back to the system.
        if kind == EventKind::Bound {
            nm_runtime::trim_heap();
        }
    }

    /// The lease file is a cache for INIT-REBOOT: replaced by rename (never
    /// seen half-written) but not synced to disk, which would hold up every
    /// bound event by two flushes. A crash before the kernel writes it back
    /// costs the next start a full DISCOVER (systemd-networkd keeps its
    /// leases on /run and always does).
    fn save(&mut self, lease: &Lease) {
        let text = lease::file_text(lease, &self.view(Some(lease)));
        match nm_runtime::write_replace(&self.setup.lease_file, text.as_bytes(), 0o600) {
            Ok(()) => self.lease_write_failed = false,
            Err(e) if !self.lease_write_failed => {
                self.lease_write_failed = true;
                warn!(file = %self.setup.lease_file.display(), "cannot save the lease (INIT-REBOOT will not work): {e}");
            }
            Err(_) => {}
        }
    }

    async fn publish_state(&mut self, name: &'static str) {
        if name == self.published {
            return;
        }
        self.published = name;
        publish_state(&self.bus, &self.setup.path, &self.setup.state, name).await;
    }
}

/// Sets the `State` property and says so (PropertiesChanged); shared with
/// the DHCPv6 driver.
pub(crate) async fn publish_state(
    bus: &Connection,
    path: &OwnedObjectPath,
    state: &Mutex<&'static str>,
    name: &'static str,
) {
    *state.lock().unwrap_or_else(|p| p.into_inner()) = name;
    let sent = async {
        let emitter = SignalEmitter::new(bus, path.clone())?;
        let changed: HashMap<&str, Variant<'_>> = [("State", Variant::from(name))].into_iter().collect();
        zbus::fdo::Properties::properties_changed(
            &emitter,
            InterfaceName::try_from(TRANSACTION_INTERFACE)?,
            changed,
            std::borrow::Cow::Borrowed(&[]),
        )
        .await
    };
    if let Err(e) = sent.await {
        debug!("PropertiesChanged on {path}: {e}");
    }
}
