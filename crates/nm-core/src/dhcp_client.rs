//! nm-core's client of nm-dhcp-helper (org.freedesktop.nm_dhcp_helper):
//! starting and stopping transactions, and turning their `Event` signals
//! into engine inputs.

use std::collections::{BTreeMap, HashMap};

use futures_util::StreamExt;
use nm_dbus::names::DHCP_HELPER;
use nm_model::Value;
use tokio::sync::mpsc;
use tracing::warn;
use zbus::{Connection as Bus, MatchRule, MessageStream, OwnedObjectPath, OwnedVariant};

use crate::engine::Input;

pub const PATH: &str = "/org/freedesktop/nm_dhcp_helper";
pub const INTERFACE: &str = "org.freedesktop.nm_dhcp_helper";
pub const TRANSACTION_INTERFACE: &str = "org.freedesktop.nm_dhcp_helper.Transaction";

#[derive(Debug)]
pub struct DhcpEvent {
    pub transaction: OwnedObjectPath,
    pub state: String,
    pub lease: BTreeMap<String, Value>,
}

fn to_wire(options: &BTreeMap<String, Value>) -> HashMap<String, OwnedVariant> {
    options
        .iter()
        .filter_map(|(k, v)| {
            let v = nm_dbus::to_variant(v).ok()?;
            Some((k.clone(), OwnedVariant::try_from(v).ok()?))
        })
        .collect()
}

pub async fn start(bus: &Bus, ifindex: u32, options: &BTreeMap<String, Value>) -> zbus::Result<OwnedObjectPath> {
    let proxy = zbus::Proxy::new(bus, DHCP_HELPER, PATH, INTERFACE).await?;
    proxy.call("Start", &(ifindex, to_wire(options))).await
}

pub async fn stop(bus: &Bus, transaction: &OwnedObjectPath, release: bool) {
    let result = async {
        let proxy = zbus::Proxy::new(bus, DHCP_HELPER, transaction.clone(), TRANSACTION_INTERFACE).await?;
        proxy.call::<_, _, ()>("Stop", &(release,)).await
    };
    if let Err(e) = result.await {
        tracing::debug!("stopping DHCP transaction {transaction}: {e}");
    }
}

/// Tells a DHCPv6 transaction that its address is in use on the link.
pub async fn decline(bus: &Bus, transaction: &OwnedObjectPath, address: std::net::Ipv6Addr) {
    let result = async {
        let proxy = zbus::Proxy::new(bus, DHCP_HELPER, transaction.clone(), TRANSACTION_INTERFACE).await?;
        proxy.call::<_, _, ()>("Decline", &(address.to_string(),)).await
    };
    if let Err(e) = result.await {
        tracing::warn!("declining {address} on DHCP transaction {transaction}: {e}");
    }
}

/// Forwards every transaction's `Event` to the engine, and the helper's
/// coming and going.
/// `subscribed` turns true once both subscriptions hold: from then on no
/// event of a transaction started later can be missed.
pub async fn watch(
    bus: Bus,
    tx: mpsc::UnboundedSender<Input>,
    subscribed: tokio::sync::watch::Sender<bool>,
) -> anyhow::Result<()> {
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(DHCP_HELPER)
        .interface(TRANSACTION_INTERFACE)
        .member("Event")
        .build()?;
    let mut stream = MessageStream::for_match_rule(rule, &bus, std::num::NonZeroUsize::new(64)).await?;
    let dbus = zbus::fdo::DBusProxy::new(&bus).await?;
    let mut owners = dbus.receive_name_owner_changed_with_args(&[(0, DHCP_HELPER)]).await?;
    subscribed.send_replace(true);
    loop {
        let msg = tokio::select! {
            Some(change) = owners.next() => {
                let Ok(args) = change.args() else { continue };
                // A new owner in place of an old one is a leave and a return.
                let left = args.old_owner().is_some().then_some(false);
                let came = args.new_owner().is_some().then_some(true);
                if [left, came].into_iter().flatten().any(|p| tx.send(Input::DhcpHelper(p)).is_err()) {
                    break;
                }
                continue;
            }
            Some(msg) = stream.next() => msg,
            else => break,
        };
        let Ok(msg) = msg else { continue };
        let Some(path) = msg.header().path().map(|p| OwnedObjectPath::from(p.to_owned())) else { continue };
        let body = msg.body();
        let Ok((state, lease)) = body.deserialize::<(String, HashMap<String, OwnedVariant>)>() else {
            warn!("malformed DHCP event from {path}");
            continue;
        };
        let lease = lease
            .iter()
            .filter_map(|(k, v)| {
                let v = zbus::Variant::try_from(v).ok()?;
                Some((k.clone(), nm_dbus::from_variant(&v).ok()?))
            })
            .collect();
        if tx.send(Input::Dhcp(DhcpEvent { transaction: path, state, lease })).is_err() {
            break;
        }
    }
    Ok(())
}
