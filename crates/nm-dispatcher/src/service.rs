//! `org.freedesktop.nm_dispatcher` at `/org/freedesktop/nm_dispatcher`:
//! `Action` with NetworkManager's fifteen arguments and `a(sus)` reply.
//! Requests are queued and run one after another, each to its end, in the
//! order they arrived; a caller's reply waits for its request's scripts.

use std::collections::HashMap;
use std::time::Duration;

use nm_runtime::Paths;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};
use zbus::message::Header;
use zbus::{Connection, fdo, interface};

use crate::request::{Request, VarDict, Wire};
use crate::{env, runner, scripts};

pub const BUS_NAME: &str = nm_dbus::names::DISPATCHER;
pub const PATH: &str = "/org/freedesktop/nm_dispatcher";

/// PATH for scripts when the dispatcher itself has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub struct Queued {
    request: Request,
    reply: oneshot::Sender<Vec<runner::Result>>,
}

pub struct Dispatcher {
    pub queue: mpsc::UnboundedSender<Queued>,
}

async fn require_root(bus: &Connection, hdr: &Header<'_>) -> fdo::Result<()> {
    let uid = nm_dbus::caller_uid(bus, hdr).await?;
    if uid != 0 {
        warn!(uid, "refused an Action call: only root may run dispatcher scripts");
        return Err(fdo::Error::AccessDenied("only root may run dispatcher scripts".into()));
    }
    Ok(())
}

#[interface(name = "org.freedesktop.nm_dispatcher")]
impl Dispatcher {
    #[allow(clippy::too_many_arguments)]
    async fn action(
        &self,
        action: String,
        connection: HashMap<String, VarDict>,
        connection_properties: VarDict,
        device_properties: VarDict,
        device_proxy_properties: VarDict,
        device_ip4_config: VarDict,
        device_ip6_config: VarDict,
        device_dhcp4_config: VarDict,
        device_dhcp6_config: VarDict,
        connectivity_state: String,
        vpn_ip_iface: String,
        vpn_proxy_properties: VarDict,
        vpn_ip4_config: VarDict,
        vpn_ip6_config: VarDict,
        _debug: bool,
        #[zbus(connection)] bus: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> fdo::Result<Vec<runner::Result>> {
        require_root(bus, &hdr).await?;
        let request = Request::from_wire(Wire {
            action,
            connection,
            connection_properties,
            device_properties,
            device_proxy_properties,
            device_ip4_config,
            device_ip6_config,
            device_dhcp4_config,
            device_dhcp6_config,
            connectivity_state,
            vpn_ip_iface,
            vpn_proxy_properties,
            vpn_ip4_config,
            vpn_ip6_config,
        })
        .map_err(fdo::Error::InvalidArgs)?;
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Queued { request, reply })
            .map_err(|_| fdo::Error::Failed("the dispatcher is shutting down".into()))?;
        answer.await.map_err(|_| fdo::Error::Failed("the request was dropped".into()))
    }
}

/// Runs queued requests in order. Returns when the queue is closed, or
/// when nothing arrived for `idle` (if given).
pub async fn serve(
    paths: &Paths,
    queue: &mut mpsc::UnboundedReceiver<Queued>,
    limit: Duration,
    idle: Option<Duration>,
) {
    let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into());
    loop {
        let next = match idle {
            Some(idle) => match tokio::time::timeout(idle, queue.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    info!("idle for {idle:?}, exiting");
                    return;
                }
            },
            None => queue.recv().await,
        };
        let Some(Queued { request, reply }) = next else {
            return;
        };
        let _ = reply.send(handle(paths, &request, &path, limit).await);
    }
}

/// Drains what was queued before the name went (a request, once queued,
/// always runs).
pub async fn drain(paths: &Paths, queue: &mut mpsc::UnboundedReceiver<Queued>, limit: Duration) {
    let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into());
    queue.close();
    while let Some(Queued { request, reply }) = queue.recv().await {
        let _ = reply.send(handle(paths, &request, &path, limit).await);
    }
}

async fn handle(paths: &Paths, request: &Request, path: &str, limit: Duration) -> Vec<runner::Result> {
    let found = scripts::discover(paths, &request.action);
    if found.is_empty() {
        return vec![];
    }
    let env = env::environment(request, path);
    let interface = env::interface_argument(request);
    runner::run(runner::Job { scripts: &found, interface: &interface, action: &request.action, env: &env, limit }).await
}
