//! The driver of one IPv4 link-local transaction (`family` `ipv4ll`), as
//! `transaction.rs` is for DHCPv4: one task owning [`MachineLl`] and an ARP
//! socket. Its events are DHCP's: `bound` with the address (prefix 16, no
//! end), `expire` when another host took it, `fail` when the link is gone.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use zbus::object_server::SignalEmitter;
use zbus::{Connection, OwnedObjectPath, OwnedVariant, Variant};

use crate::machine::EventKind;
use crate::machine_ll::{ActionLl, ConfigLl, InputLl, MachineLl};
use crate::net::{ArpSocket, Link};
use crate::service::{Control, Shared, TransactionIface};
use crate::transaction::{fatal, publish_state};

pub struct SetupLl {
    pub id: u32,
    pub path: OwnedObjectPath,
    pub link: Link,
    pub cfg: ConfigLl,
    pub state: Arc<Mutex<&'static str>>,
    pub seed: u64,
}

pub async fn run(
    bus: Connection,
    shared: Arc<Shared>,
    setup: SetupLl,
    mut sock: ArpSocket,
    mut inbox: mpsc::UnboundedReceiver<Control>,
) {
    let id = setup.id;
    // Let the Start reply (the object path) go out before the first Event.
    tokio::task::yield_now().await;
    let mut machine = MachineLl::new(setup.cfg, setup.seed);
    let epoch = Instant::now();
    let now = || epoch.elapsed();
    let dev = setup.link.ifname.clone();
    let mut published = "init";
    let mut stop_done = None;
    let mut actions = machine.handle(InputLl::Start, now());
    loop {
        let mut finished = false;
        for action in actions {
            match action {
                ActionLl::Send { payload, what } => match sock.send_broadcast(&payload) {
                    Ok(()) => debug!(device = %dev, "sent {what}"),
                    Err(e) if fatal(&e) => {
                        warn!(device = %dev, "sending {what}: {e}");
                        event(&bus, &setup.path, &dev, EventKind::Fail, None).await;
                        finished = true;
                    }
                    Err(e) => debug!(device = %dev, "sending {what}: {e}"),
                },
                ActionLl::Bound(a) => event(&bus, &setup.path, &dev, EventKind::Bound, Some(a)).await,
                ActionLl::Lost(a) => event(&bus, &setup.path, &dev, EventKind::Expire, Some(a)).await,
                ActionLl::Finished => finished = true,
            }
        }
        let name = machine.state_name();
        if name != published {
            published = name;
            publish_state(&bus, &setup.path, &setup.state, name).await;
        }
        if finished {
            break;
        }
        let deadline = machine.deadline().map(|t| epoch + t);
        actions = tokio::select! {
            r = sock.recv() => match r {
                Ok(payload) => machine.handle(InputLl::Arp(&payload), now()),
                Err(e) if !fatal(&e) => {
                    debug!(device = %dev, "ARP socket: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Vec::new()
                }
                Err(e) => {
                    warn!(device = %dev, "ARP socket: {e}");
                    event(&bus, &setup.path, &dev, EventKind::Fail, None).await;
                    break;
                }
            },
            () = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => machine.handle(InputLl::Timer, now()),
            c = inbox.recv() => match c {
                Some(Control::Stop { done, .. }) => {
                    stop_done = Some(done);
                    machine.handle(InputLl::Stop, now())
                }
                Some(Control::Decline { .. }) => Vec::new(),
                None => break,
            },
        };
    }
    publish_state(&bus, &setup.path, &setup.state, "stopped").await;
    shared.forget(id);
    if let Err(e) = bus.object_server().remove::<TransactionIface, _>(&setup.path).await {
        debug!("unexporting {}: {e}", setup.path);
    }
    info!(device = %dev, transaction = id, "IPv4 link-local transaction ended");
    if let Some(done) = stop_done {
        let _ = done.send(());
    }
}

/// The `Event` signal; the "lease" is the address with prefix 16 and no end.
async fn event(bus: &Connection, path: &OwnedObjectPath, dev: &str, kind: EventKind, address: Option<Ipv4Addr>) {
    info!(device = %dev, state = kind.as_str(), address = ?address, "IPv4 link-local event");
    let mut dict: HashMap<String, OwnedVariant> = HashMap::new();
    if let Some(a) = address {
        let entries = [
            ("address", Variant::from(a.to_string())),
            ("prefix", Variant::from(16u32)),
            ("lease-time", Variant::from(u32::MAX)),
        ];
        for (k, v) in entries {
            if let Ok(v) = OwnedVariant::try_from(v) {
                dict.insert(k.to_string(), v);
            }
        }
    }
    let sent = async {
        let emitter = SignalEmitter::new(bus, path.clone())?;
        TransactionIface::event(&emitter, kind.as_str(), dict).await
    };
    if let Err(e) = sent.await {
        warn!("emitting Event on {path}: {e}");
    }
}
