//! The command line (clap). `crate::command()` hands it to xtask, which
//! makes the shell completions and the man pages from it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const LONG_ABOUT: &str = "\
nmctl shows and steers network devices and connection profiles through \
NetworkManager's public D-Bus API, so it works against nm-rs and against \
NetworkManager alike. Without a command it prints an overview: every device \
with its state, connection and addresses, the default routes and the name \
servers.

Tables are coloured when standard output is a terminal and NO_COLOR is unset. \
With --json every command prints one JSON document instead (monitor prints \
one per line); errors still go to standard error as text.

Exit status:
  0   success
  1   failure (the daemon refused, the bus failed, …)
  2   invalid arguments or property values
  3   timed out (--wait, wait-online --timeout)
  4   an activation failed (the reason is printed)
  8   NetworkManager is not running
  10  no such connection or device";

#[derive(Parser, Debug)]
#[command(name = "nmctl", version, about = "Control NetworkManager (and nm-rs) from the command line", long_about = LONG_ABOUT)]
pub struct Cli {
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    /// Seconds to wait for an activation or deactivation to finish (default
    /// 90 for up/connect, 10 for down/disconnect; 0 returns at once).
    #[arg(short, long, global = true, value_name = "SECONDS")]
    pub wait: Option<u64>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// NetworkManager's overall state.
    #[command(visible_alias = "g")]
    General,
    /// Network devices: list, details, connect, disconnect.
    #[command(visible_alias = "d")]
    Device {
        #[command(subcommand)]
        action: Option<DeviceAction>,
    },
    /// Connection profiles: list, details, add, modify, up, down, delete, import, export, edit.
    #[command(visible_alias = "c")]
    Connection {
        #[command(subcommand)]
        action: Option<ConnectionAction>,
    },
    /// Print changes of devices, connections and the overall state until interrupted.
    #[command(visible_alias = "m")]
    Monitor,
    /// Wait until the network is online (for network-online.target).
    ///
    /// Online means: NetworkManager's start-up is complete (what `nm-online -s`
    /// waits for) and a device other than loopback is connected, with an IPv4
    /// and/or IPv6 address when --ipv4/--ipv6 ask. With --interface, each
    /// named device must be connected instead (start-up need not be complete).
    /// NetworkManager not yet on the bus is waited for too. Exits 0 when
    /// online, 3 after --timeout naming what is missing.
    WaitOnline(WaitOnline),
}

#[derive(Subcommand, Debug)]
pub enum DeviceAction {
    /// One line per device (the default).
    Status,
    /// Details of one device, or of all.
    Show { device: Option<String> },
    /// Activate the best profile for a device (one is made when none fits) and wait.
    Connect { device: String },
    /// Deactivate a device and keep it from connecting by itself.
    Disconnect { device: String },
}

#[derive(Subcommand, Debug)]
pub enum ConnectionAction {
    /// List profiles, or show one (by name, UUID or D-Bus path).
    Show {
        /// Only active profiles.
        #[arg(long)]
        active: bool,
        connection: Option<String>,
    },
    /// Add a profile from `setting.property value` pairs, e.g.
    /// `type ethernet ifname eth0 con-name office ipv4.method manual ipv4.addresses 192.0.2.10/24`.
    #[command(long_about = ADD_ABOUT)]
    Add {
        /// Keep the profile in memory only (lost at reboot).
        #[arg(long)]
        temporary: bool,
        /// Pairs of `[+|-]setting.property value` (aliases: type, con-name, ifname, autoconnect, ip4, gw4, ip6, gw6).
        #[arg(value_name = "PROPERTY VALUE", num_args = 0.., allow_hyphen_values = true, trailing_var_arg = true)]
        properties: Vec<String>,
    },
    /// Change properties of a profile: `+prop value` appends to a list, `-prop value` removes, an empty value resets.
    Modify {
        /// Change the profile in memory only.
        #[arg(long)]
        temporary: bool,
        connection: String,
        #[arg(value_name = "PROPERTY VALUE", num_args = 1.., allow_hyphen_values = true, trailing_var_arg = true)]
        properties: Vec<String>,
    },
    /// Activate a profile and wait until it is up (or print why it failed).
    Up {
        connection: String,
        /// The device to activate it on (default: the one it names or fits).
        #[arg(long, visible_alias = "ifname")]
        device: Option<String>,
    },
    /// Deactivate a profile.
    Down { connection: String },
    /// Delete profiles.
    Delete {
        #[arg(required = true)]
        connections: Vec<String>,
    },
    /// Add a profile from a keyfile (`*.nmconnection`) or a `.toml` file.
    Import {
        file: PathBuf,
        /// The file's format (default: from its extension).
        #[arg(long, value_enum)]
        format: Option<Format>,
        #[arg(long)]
        temporary: bool,
    },
    /// Print a profile as a keyfile (or TOML) on standard output.
    Export {
        connection: String,
        #[arg(long, value_enum, default_value_t = Format::Keyfile)]
        format: Format,
        /// Write to this file (mode 0600) instead.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Edit a profile in $VISUAL or $EDITOR (default vi) as a keyfile (or TOML).
    Edit {
        connection: String,
        #[arg(long, value_enum, default_value_t = Format::Keyfile)]
        format: Format,
    },
}

const ADD_ABOUT: &str = "\
Add a profile from `setting.property value` pairs, as nmcli takes them:

  nmctl connection add type ethernet ifname eth0 con-name office \\
      ipv4.method manual ipv4.addresses 192.0.2.10/24 ipv4.gateway 192.0.2.1 ipv4.dns 192.0.2.53

Settings may be named by their keyfile names (ethernet, wifi). Lists take \
comma-separated items; routes read `DEST/PREFIX [NEXT-HOP] [METRIC] [attr=value…]`. \
Aliases: type, con-name, ifname, autoconnect, ip4, gw4, ip6, gw6. Options go \
before the pairs. Addresses without ipvX.method make it `manual`.";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// NetworkManager's keyfile (`*.nmconnection`).
    Keyfile,
    /// nm-rs's TOML form.
    Toml,
}

#[derive(Args, Debug)]
pub struct WaitOnline {
    /// Wait until this device is connected (repeatable). Without it, any
    /// device will do.
    #[arg(short, long = "interface", value_name = "IFACE")]
    pub interfaces: Vec<String>,
    /// Also require an IPv4 address.
    #[arg(long = "ipv4", short = '4')]
    pub ipv4: bool,
    /// Also require an IPv6 address.
    #[arg(long = "ipv6", short = '6')]
    pub ipv6: bool,
    /// Give up after this many seconds.
    #[arg(short, long, value_name = "SECONDS", default_value_t = 30)]
    pub timeout: u64,
    /// Only wait for NetworkManager's start-up to complete, like `nm-online -s`
    /// (succeeds even when nothing connected).
    #[arg(short = 's', long)]
    pub startup_only: bool,
}
