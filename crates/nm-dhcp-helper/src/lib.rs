//! nm-dhcp-helper: DHCPv4 and DHCPv6 client transactions for nm-core on the system bus
//! as `org.freedesktop.nm_dhcp_helper`. It parses packets from anyone on the
//! link, so it runs as its own user with only CAP_NET_RAW and
//! CAP_NET_BIND_SERVICE, never changes the host (nm-core applies leases),
//! and never hands a string to a shell.
//!
//! - `machine.rs`: the RFC 2131 state machine, pure (state, input, now);
//!   `machine6.rs` the RFC 8415 one (DHCPv6, `Start` with family "ipv6").
//! - `packet.rs` / `packet6.rs`: messages built and read by dhcproto, with the checks.
//! - `sanitize.rs`: what a server's strings must look like to be passed on.
//! - `lease.rs` / `lease6.rs`: the lease, its `a{sv}`, the options view, the
//!   lease file (v4 only).
//! - `frame.rs` / `net.rs`: IPv4/UDP headers, the raw and UDP sockets.
//! - `service.rs` / `transaction.rs` / `transaction6.rs`: the bus objects and
//!   the per-transaction tasks.
//! - `privileges.rs`: `--user`, the drop from root to a user and two
//!   capabilities when no service manager did it.
//! - `fuzzing.rs` (feature `fuzzing`, for `fuzz/`): the machine driven by
//!   arbitrary bytes on a virtual clock.
//!
//! The daemon is this library; `main.rs` only calls [`main`], so the fuzz
//! target can reach the pure modules without a second copy of them.

mod arp;
mod frame;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod lease;
mod lease6;
mod machine;
mod machine6;
mod machine_ll;
mod net;
mod packet;
mod packet6;
mod privileges;
mod sanitize;
mod service;
mod transaction;
mod transaction6;
mod transaction_ll;

use anyhow::Context;
use nm_runtime::Paths;
use tracing::{info, warn};

use crate::service::{BUS_NAME, Manager, PATH, Shared};

/// FNV-1a (32 bits): a stable, non-cryptographic hash for identities that
/// must stay the same across restarts (the DHCPv6 IAID, the IPv4
/// link-local candidates).
pub(crate) fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

const CLI: nm_runtime::DaemonCli = nm_runtime::DaemonCli {
    name: "nm-dhcp-helper",
    version: env!("CARGO_PKG_VERSION"),
    about: "nm-rs DHCPv4 and DHCPv6 client service",
    switches: &[],
    values: &[(
        "user",
        "user",
        "Started as root, become USER (a name, UID or UID:GID) with only CAP_NET_RAW and CAP_NET_BIND_SERVICE",
    )],
};

/// The daemon (the binary is only this call).
pub fn main() -> anyhow::Result<()> {
    nm_runtime::run_daemon(run(CLI.parse()))
}

/// The effective capabilities as /proc shows them (for the start-up log).
fn effective_caps() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("CapEff:").map(|v| v.trim().to_owned())))
        .unwrap_or_else(|| "?".into())
}

async fn run(args: nm_runtime::Args) -> anyhow::Result<()> {
    // First, while the process has one thread (the runtime is
    // current-thread and has started none): capabilities are per thread.
    if let Some(spec) = args.value("user") {
        let spec = spec.to_str().ok_or_else(|| anyhow::anyhow!("--user {spec:?}: not a user name"))?;
        privileges::become_user(privileges::resolve(spec)?)?;
    }
    let paths = Paths::new(args.common.root.as_deref());
    // SAFETY: getuid(2) cannot fail.
    let uid = unsafe { libc::getuid() };
    info!(uid, cap_eff = %effective_caps(), "nm-dhcp-helper starting");
    if uid == 0 {
        warn!("running as root: a DHCP client needs only CAP_NET_RAW and CAP_NET_BIND_SERVICE (--user, or its unit)");
    }
    let shared = Shared::new(paths);
    let bus = zbus::connection::Builder::system()
        .serve_at(PATH, Manager { shared: shared.clone() })
        .build()
        .await
        .context("connecting to the system bus")?;
    tokio::spawn(service::follow_owners(bus.clone(), shared.clone()));
    bus.request_name(BUS_NAME).await.with_context(|| format!("owning {BUS_NAME}"))?;
    nm_runtime::notify_ready("serving DHCPv4");
    nm_runtime::spawn_watchdog();
    info!("ready on the bus as {BUS_NAME}");
    nm_runtime::shutdown_signal().await?;
    // Leases are not released on the way out: nm-core keeps the addresses
    // (NetworkManager does the same) and the next start does INIT-REBOOT.
    nm_runtime::notify_stopping();
    Ok(())
}
