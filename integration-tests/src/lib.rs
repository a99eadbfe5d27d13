//! `nm_lab`: the lab kit the end-to-end tests and `cargo xtask lab` stand on.
//!
//! A [`Lab`] is a small, real network with a private system bus:
//!
//! - a temp directory (`/tmp/nmt<pid>x<n>`, mode 0755 so unprivileged test
//!   users can reach the bus socket) holding everything the lab writes;
//! - **the lab root** ([`Lab::root`]), a directory inside it that mirrors the
//!   host (`<root>/etc/NetworkManager/system-connections`, …); daemons get
//!   `--root <root>`;
//! - a private `dbus-daemon` configured like Debian's system bus (deny-own,
//!   deny-send by default) that includes the project's own `dbus-policy/`
//!   directory, so the policies we ship are exercised by every test;
//! - a client network namespace where daemons and clients run, and — when the
//!   lab has uplinks — a server namespace joined to it by veth pairs, with
//!   dnsmasq (`--no-ping`) serving DHCPv4, router advertisements, DHCPv6 and
//!   DNS on the far side of every uplink;
//! - on request, a user's session bus ([`Lab::session_bus_for`]) with
//!   gnome-keyring's Secret Service on it ([`SessionBus::secret_service`]).
//!
//! Every name carries the test process's pid and a per-process counter
//! (`nmt<pid>x<n>`), so tests run in parallel. Everything is torn down in
//! `Drop` — also while unwinding from a panic — and only by what the lab
//! recorded: processes are killed by their PID, namespaces deleted by name.
//! Nothing in the root network namespace is ever changed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), nm_lab::LabError> {
//! let lab = nm_lab::Lab::builder().uplinks(1).build()?;
//! let daemon = lab.spawn_daemon("nm-system-settings", &[]).await?;
//! let out = lab.command("busctl").args(["list"]).output().await?;
//! assert!(out.stdout.contains("org.freedesktop.NetworkManagerSystemSettings"));
//! drop(daemon);
//! # Ok(()) }
//! ```

mod bus;
mod command;
mod daemon;
mod dnsmasq;
mod dot1x;
mod error;
mod lab;
mod names;
mod netns;
pub mod polkit;
mod process;
mod session;

pub use bus::{bus_config, default_policy_dir};
pub use command::{LabCommand, Output};
pub use daemon::{DaemonHandle, DaemonSpec, KNOWN_DAEMONS, default_bin_dir, well_known_name};
pub use dot1x::{Hostapd, SUPPLICANT_NAME};
pub use error::LabError;
pub use lab::{Lab, LabBuilder, SCRUBBED_ENV, Uplink};
pub use names::{IFNAMSIZ_MAX, Names};
pub use netns::{in_netns, udp_on_link};
pub use polkit::PolkitSpec;
pub use process::pid_running;
pub use session::{GNOME_KEYRING_DAEMON, SECRETS_NAME, SecretService, SessionBus, session_bus_config};

/// Uid of the unprivileged user (`nobody`) tests use for "not root" callers.
pub const NOBODY: u32 = 65534;

/// The last `lines` lines of `text` (for error messages that quote a log).
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

/// The arguments of `nmcli connection add` (nmctl takes the same) for an
/// ethernet profile `name` bound to `ifname`, with property-value pairs.
pub fn add_ethernet<'a>(ifname: &'a str, name: &'a str, props: &[(&'a str, &'a str)]) -> Vec<&'a str> {
    let mut args = vec!["connection", "add", "type", "ethernet", "ifname", ifname, "con-name", name];
    args.extend(props.iter().flat_map(|(property, value)| [*property, *value]));
    args
}

#[cfg(test)]
mod tests {
    use super::{add_ethernet, tail};

    #[test]
    fn ethernet_profiles_are_added_with_their_properties() {
        assert_eq!(
            add_ethernet("eth0", "p", &[("ipv4.method", "auto")]),
            ["connection", "add", "type", "ethernet", "ifname", "eth0", "con-name", "p", "ipv4.method", "auto"]
        );
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a\nb", 5), "a\nb");
        assert_eq!(tail("", 3), "");
    }
}
