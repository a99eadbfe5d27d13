//! The driver of one DHCPv6 transaction, as `transaction.rs` is for v4: one
//! task owning [`Machine6`] and its socket, feeding it packets, timer
//! expiries and `Stop`, and carrying out what it returns. One socket for
//! the whole transaction (no raw socket: the link-local address is there
//! from the start). No lease file (see `lease6.rs`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use zbus::object_server::SignalEmitter;
use zbus::{Connection, OwnedObjectPath};

use crate::lease6::{self, ClientView6, Lease6};
use crate::machine::EventKind;
use crate::machine6::{Action6, Config6, Input6, Machine6};
use crate::net::{Link, Udp6Socket};
use crate::service::{Control, Shared, TransactionIface};
use crate::transaction::{fatal, publish_state};

pub struct Setup6 {
    pub id: u32,
    pub path: OwnedObjectPath,
    pub link: Link,
    pub cfg: Config6,
    pub state: Arc<Mutex<&'static str>>,
    pub seed: u64,
}

struct Driver6 {
    bus: Connection,
    setup: Setup6,
    epoch: Instant,
    sock: Udp6Socket,
    published: &'static str,
}

pub async fn run(
    bus: Connection,
    shared: Arc<Shared>,
    setup: Setup6,
    sock: Udp6Socket,
    mut inbox: mpsc::UnboundedReceiver<Control>,
) {
    let id = setup.id;
    // Let the Start reply (the object path) go out before the first Event.
    tokio::task::yield_now().await;
    let mut machine = Machine6::new(setup.cfg.clone(), setup.seed);
    let mut d = Driver6 { bus, setup, epoch: Instant::now(), sock, published: "init" };
    let mut actions = machine.handle(Input6::Start, d.now());
    let mut stop_done = None;
    loop {
        let finished = d.carry_out(actions).await;
        d.publish(machine.state_name()).await;
        if finished {
            break;
        }
        let deadline = machine.deadline().map(|t| d.epoch + t);
        actions = tokio::select! {
            r = d.sock.recv() => match r {
                Ok(payload) => machine.handle(Input6::Packet(&payload), d.now()),
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
            () = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => machine.handle(Input6::Timer, d.now()),
            c = inbox.recv() => match c {
                Some(Control::Stop { release, done }) => {
                    stop_done = Some(done);
                    machine.handle(Input6::Stop { release }, d.now())
                }
                Some(Control::Decline { address }) => machine.handle(Input6::Decline { address }, d.now()),
                None => break,
            },
        };
    }
    d.publish("stopped").await;
    shared.forget(id);
    if let Err(e) = d.bus.object_server().remove::<TransactionIface, _>(&d.setup.path).await {
        debug!("unexporting {}: {e}", d.setup.path);
    }
    info!(device = %d.setup.link.ifname, transaction = id, "DHCPv6 transaction ended");
    if let Some(done) = stop_done {
        let _ = done.send(());
    }
}

impl Driver6 {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Carries out the machine's actions; true when the transaction is over.
    async fn carry_out(&mut self, actions: Vec<Action6>) -> bool {
        let mut finished = false;
        for action in actions {
            match action {
                Action6::Send { payload, what } => match self.sock.send(&payload).await {
                    Ok(()) => debug!(device = %self.setup.link.ifname, "sent {what}"),
                    Err(e) if fatal(&e) => {
                        warn!(device = %self.setup.link.ifname, "sending {what}: {e}");
                        self.event(EventKind::Fail, None).await;
                        return true;
                    }
                    // EADDRNOTAVAIL while the link-local address is
                    // tentative: the next retransmission tries again.
                    Err(e) => debug!(device = %self.setup.link.ifname, "sending {what}: {e}"),
                },
                Action6::Event { kind, lease } => self.event(kind, lease.as_ref()).await,
                Action6::Finished => finished = true,
            }
        }
        finished
    }

    async fn event(&mut self, kind: EventKind, lease: Option<&Lease6>) {
        let dev = &self.setup.link.ifname;
        match lease.and_then(|l| l.address.map(|a| (a, l))) {
            Some((a, l)) => info!(device = %dev, state = kind.as_str(), "{a}/128, valid {} s", l.valid),
            None => info!(device = %dev, state = kind.as_str(), "DHCPv6 event"),
        }
        // When the lease began on the wall clock (`life_starts`).
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let age = lease.map_or(0, |l| self.now().saturating_sub(l.acquired).as_secs());
        let view = ClientView6 {
            duid: self.setup.cfg.params.duid.clone(),
            iaid: self.setup.cfg.params.iaid,
            life_starts: unix.saturating_sub(age),
        };
        let dict = lease6::to_dbus(lease, &view);
        let sent = async {
            let emitter = SignalEmitter::new(&self.bus, self.setup.path.clone())?;
            TransactionIface::event(&emitter, kind.as_str(), dict).await
        };
        if let Err(e) = sent.await {
            warn!("emitting Event on {}: {e}", self.setup.path);
        }
        if kind == EventKind::Bound {
            nm_runtime::trim_heap();
        }
    }

    async fn publish(&mut self, name: &'static str) {
        if name != self.published {
            self.published = name;
            publish_state(&self.bus, &self.setup.path, &self.setup.state, name).await;
        }
    }
}
