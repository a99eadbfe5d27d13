//! Suspend and resume through systemd-logind, as NetworkManager does: a
//! "delay" inhibitor lock is held while awake, so that before the machine
//! suspends nm-core is told (`PrepareForSleep(true)`), takes every device
//! down and only then lets the lock go; on resume (`PrepareForSleep(false)`)
//! it takes a new lock and wakes (the devices come back and autoconnect,
//! DHCP asks anew instead of trusting a lease that may have ended).
//!
//! Without logind on the bus nothing happens: the signal never comes, and
//! the lock is not needed.

use futures_util::StreamExt;
use tracing::{debug, info, warn};
use zbus::Connection as Bus;
use zbus::OwnedFd;

use crate::api::EngineHandle;
use crate::engine::Call;

const LOGIND: &str = "org.freedesktop.login1";
const LOGIND_PATH: &str = "/org/freedesktop/login1";
const LOGIND_MANAGER: &str = "org.freedesktop.login1.Manager";

/// A delay lock on sleep; closing the descriptor releases it.
async fn take_lock(bus: &Bus) -> Option<OwnedFd> {
    let reply = bus
        .call_method(
            Some(LOGIND),
            LOGIND_PATH,
            Some(LOGIND_MANAGER),
            "Inhibit",
            &("sleep", "NetworkManager", "NetworkManager needs to turn off networks", "delay"),
        )
        .await;
    match reply.and_then(|m| m.body().deserialize::<OwnedFd>()) {
        Ok(fd) => Some(fd),
        Err(e) => {
            debug!("no sleep delay lock from logind: {e}");
            None
        }
    }
}

/// Follows logind's PrepareForSleep until the bus goes.
pub async fn watch(bus: Bus, engine: EngineHandle) -> zbus::Result<()> {
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(LOGIND)
        .path(LOGIND_PATH)
        .interface(LOGIND_MANAGER)
        .member("PrepareForSleep")
        .build()?;
    let mut signals = zbus::MessageStream::for_match_rule(rule, &bus, None).await?;
    let mut lock = take_lock(&bus).await;
    while let Some(msg) = signals.next().await {
        let Ok(msg) = msg else { continue };
        let Ok(sleep) = msg.body().deserialize::<bool>() else {
            warn!("PrepareForSleep without its boolean: ignored");
            continue;
        };
        if !sleep && lock.is_none() {
            lock = take_lock(&bus).await;
        }
        info!("logind: {}", if sleep { "the machine is about to sleep" } else { "the machine woke up" });
        match engine.call(|reply| Call::Sleep { sleep, reply }).await {
            Ok(()) => {}
            // A second signal for the same state (or Sleep called already).
            Err(e) => debug!("{}: {e:?}", if sleep { "sleep" } else { "wake" }),
        }
        if sleep {
            // Everything is down: suspend may go on.
            lock = None;
        }
    }
    Ok(())
}
