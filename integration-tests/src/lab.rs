//! The lab itself: temp dir, lab root, namespaces, uplinks, bus, dnsmasq.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::LabError;
use crate::bus::{Bus, default_policy_dir};
use crate::command::LabCommand;
use crate::daemon::{DaemonHandle, DaemonSpec, bin_dir, well_known_name};
use crate::dnsmasq::{self, Dnsmasq};
use crate::names::Names;
use crate::polkit::PolkitSpec;
use crate::process::{euid, ip, kill_netns_processes};

/// Most uplinks one lab may have (interface names and 198.18.<i>.0/24 must fit).
const MAX_UPLINKS: usize = 64;

/// Environment variables that must not leak from the test runner into lab
/// processes: a daemon that saw `NOTIFY_SOCKET` or `JOURNAL_STREAM` would talk
/// to the host's systemd or journal, and a session bus is none of its business.
pub const SCRUBBED_ENV: &[&str] = &[
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "JOURNAL_STREAM",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "DBUS_SESSION_BUS_ADDRESS",
    "DBUS_STARTER_ADDRESS",
    "DBUS_STARTER_BUS_TYPE",
];

/// One uplink: a veth pair between the client namespace (`client_if`, left
/// down for the daemons to manage) and the server namespace (`server_if`, up,
/// with the addresses below, served by dnsmasq).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uplink {
    pub index: usize,
    pub client_if: String,
    pub server_if: String,
    /// `198.18.<index>.1`, prefix 24 (RFC 2544 benchmark space: never routed).
    pub server_v4: Ipv4Addr,
    pub prefix_v4: u8,
    /// The DHCPv4 pool, `.100` to `.199`.
    pub dhcp_range: (Ipv4Addr, Ipv4Addr),
    /// `fd4c:6162:0:<index>::1`, prefix 64.
    pub server_v6: Ipv6Addr,
    /// The server's link-local address, the source of its router
    /// advertisements: `fe80::1`.
    pub server_ll6: Ipv6Addr,
    /// The DHCPv6 pool, `::100` to `::1ff`.
    pub dhcp6_range: (Ipv6Addr, Ipv6Addr),
}

impl Uplink {
    /// The names and addresses of uplink `index` of the lab `names`.
    pub fn new(names: &Names, index: usize) -> Result<Uplink, LabError> {
        let octet = u8::try_from(index)
            .ok()
            .filter(|_| index < MAX_UPLINKS)
            .ok_or_else(|| LabError::Invalid(format!("at most {MAX_UPLINKS} uplinks per lab")))?;
        let seg = u16::from(octet);
        let v6 = |host: u16| Ipv6Addr::new(0xfd4c, 0x6162, 0, seg, 0, 0, 0, host);
        Ok(Uplink {
            index,
            client_if: names.ifname('c', index)?,
            server_if: names.ifname('s', index)?,
            server_v4: Ipv4Addr::new(198, 18, octet, 1),
            prefix_v4: 24,
            dhcp_range: (Ipv4Addr::new(198, 18, octet, 100), Ipv4Addr::new(198, 18, octet, 199)),
            server_v6: v6(1),
            server_ll6: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
            dhcp6_range: (v6(0x100), v6(0x1ff)),
        })
    }
}

/// Options of a lab; [`Lab::builder`].
#[derive(Debug, Clone)]
pub struct LabBuilder {
    uplinks: usize,
    dnsmasq: bool,
    ipv6: bool,
    policy_dirs: Vec<PathBuf>,
    polkit: bool,
    supplicant: bool,
    dnsmasq_opts: dnsmasq::Options,
}

impl Default for LabBuilder {
    fn default() -> Self {
        LabBuilder {
            uplinks: 1,
            dnsmasq: true,
            ipv6: true,
            policy_dirs: vec![default_policy_dir()],
            polkit: false,
            supplicant: false,
            dnsmasq_opts: dnsmasq::Options::default(),
        }
    }
}

impl LabBuilder {
    /// Number of veth pairs to the server namespace (default 1). With 0 the
    /// lab has no server namespace and no dnsmasq: only the client
    /// namespace and the bus.
    pub fn uplinks(mut self, n: usize) -> Self {
        self.uplinks = n;
        self
    }

    /// Whether to run dnsmasq on the server side (default yes).
    pub fn dnsmasq(mut self, on: bool) -> Self {
        self.dnsmasq = on;
        self
    }

    /// Whether the uplinks get IPv6 (addresses, RA, DHCPv6; default yes).
    pub fn ipv6(mut self, on: bool) -> Self {
        self.ipv6 = on;
        self
    }

    /// Router advertisements that let hosts make their own IPv6 addresses
    /// (SLAAC) besides DHCPv6 (default no: stateful DHCPv6 only).
    pub fn ipv6_slaac(mut self, on: bool) -> Self {
        self.dnsmasq_opts.slaac = on;
        self
    }

    /// dnsmasq's DHCP lease time (default `1h`; dnsmasq's least is `2m`).
    pub fn dhcp_lease(mut self, lease: &str) -> Self {
        self.dnsmasq_opts.lease = lease.to_owned();
        self
    }

    /// One more dnsmasq argument (e.g. `--dhcp-option=option:T1,5` for an
    /// early renewal).
    pub fn dnsmasq_arg(mut self, arg: &str) -> Self {
        self.dnsmasq_opts.extra.push(arg.to_owned());
        self
    }

    /// Includes another directory of bus policy files (after the project's).
    pub fn policy_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.policy_dirs.push(dir.into());
        self
    }

    /// Whether the bus carries polkit's own policy (a copy of the polkitd
    /// package's, so only user `polkitd` may own `org.freedesktop.PolicyKit1`),
    /// for [`Lab::polkitd`]. Default no.
    pub fn polkit(mut self, on: bool) -> Self {
        self.polkit = on;
        self
    }

    /// Whether the bus carries wpa_supplicant's own policy (a copy of the
    /// wpasupplicant package's), for [`Lab::wpa_supplicant`]. Default no.
    pub fn supplicant(mut self, on: bool) -> Self {
        self.supplicant = on;
        self
    }

    /// Brings the lab up. On error everything made so far is torn down.
    pub fn build(self) -> Result<Lab, LabError> {
        if euid() != 0 {
            return Err(LabError::NotRoot);
        }
        let (names, dir) = claim_names()?;
        let mut lab = Lab {
            client_netns: names.client_netns(),
            server_netns: None,
            root: dir.join("root"),
            dir,
            names,
            namespaces: Vec::new(),
            uplinks: Vec::new(),
            bus: None,
            dnsmasq: None,
            ipv6: self.ipv6,
            dnsmasq_opts: dnsmasq::Options { ipv6: self.ipv6, ..self.dnsmasq_opts },
        };
        // From here on, an early return drops `lab`, which tears down
        // whatever exists.
        lab.make_root()?;
        lab.add_netns(lab.names.client_netns())?;
        if self.uplinks > 0 {
            let srv = lab.names.server_netns();
            lab.add_netns(srv.clone())?;
            lab.server_netns = Some(srv);
            for i in 0..self.uplinks {
                lab.add_uplink(i)?;
            }
        }
        let mut policy_dirs = self.policy_dirs.clone();
        if self.polkit {
            policy_dirs.push(crate::polkit::bus_policy_dir(&lab.dir)?);
        }
        if self.supplicant {
            policy_dirs.push(crate::dot1x::bus_policy_dir(&lab.dir)?);
        }
        lab.bus = Some(Bus::start(&lab.dir.join("bus"), &policy_dirs)?);
        if self.dnsmasq
            && let Some(srv) = &lab.server_netns
        {
            lab.dnsmasq = Some(Dnsmasq::start(srv, &lab.uplinks, &lab.dnsmasq_opts, &lab.dir.join("dnsmasq"))?);
        }
        Ok(lab)
    }
}

/// Finds a lab name whose temp dir and namespaces are all free, and creates
/// the temp dir (0755: unprivileged test users must reach the bus socket).
/// Taken names are leftovers of a killed process that had our pid; they are
/// skipped, never removed.
fn claim_names() -> Result<(Names, PathBuf), LabError> {
    let tmp = std::env::temp_dir();
    for _ in 0..1000 {
        let names = Names::next();
        let taken =
            [names.client_netns(), names.server_netns()].iter().any(|ns| Path::new("/run/netns").join(ns).exists());
        if taken {
            continue;
        }
        let dir = tmp.join(names.base());
        match fs::create_dir(&dir) {
            Ok(()) => {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
                    .map_err(|e| LabError::io(format!("chmod {}", dir.display()), e))?;
                return Ok((names, dir));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(LabError::io(format!("creating {}", dir.display()), e)),
        }
    }
    Err(LabError::Invalid("no free lab name after 1000 tries".into()))
}

/// `host_path` as seen by a daemon started with `--root root`.
fn under_root(root: &Path, host_path: &Path) -> PathBuf {
    root.join(host_path.strip_prefix("/").unwrap_or(host_path))
}

/// A running lab. Dropping it tears everything down.
#[derive(Debug)]
pub struct Lab {
    names: Names,
    dir: PathBuf,
    root: PathBuf,
    client_netns: String,
    server_netns: Option<String>,
    /// Namespaces this lab created, in creation order.
    namespaces: Vec<String>,
    uplinks: Vec<Uplink>,
    bus: Option<Bus>,
    dnsmasq: Option<Dnsmasq>,
    ipv6: bool,
    dnsmasq_opts: dnsmasq::Options,
}

impl Lab {
    /// A lab with one uplink, dnsmasq and IPv6.
    pub fn new() -> Result<Lab, LabError> {
        LabBuilder::default().build()
    }

    pub fn builder() -> LabBuilder {
        LabBuilder::default()
    }

    /// This lab's names (`nmt<pid>x<n>`).
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The temp dir that holds everything (bus, logs, dnsmasq, the root).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The lab root: what daemons get as `--root`; paths inside mirror the
    /// host's (`<root>/etc/NetworkManager/system-connections`, …).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A host path inside the lab root: `root_path("/etc/hostname")` is
    /// `<root>/etc/hostname`.
    pub fn root_path(&self, host_path: impl AsRef<Path>) -> PathBuf {
        under_root(&self.root, host_path.as_ref())
    }

    /// Writes nm-core's configuration into the lab root: the lab's client
    /// uplinks are managed (veths are left alone by default), plus `extra`
    /// lines for the `[core]` table (e.g. `carrier-grace-ms = 200`).
    pub fn write_core_config(&self, extra: &str) -> Result<PathBuf, LabError> {
        let file = self.root_path("/etc/NetworkManager/nm-rs.toml");
        let managed: Vec<String> =
            self.uplinks().iter().map(|u| format!("\"interface-name:{}\"", u.client_if)).collect();
        // No "Wired connection N" on the lab's links unless a test asks
        // (as NetworkManager runs in the peers' lab: no-auto-default=*).
        let no_auto_default = if extra.contains("no-auto-default") { "" } else { "no-auto-default = [\"*\"]\n" };
        let text = format!("[core]\nmanaged = [{}]\n{no_auto_default}{extra}\n", managed.join(", "));
        if let Some(dir) = file.parent() {
            fs::create_dir_all(dir).map_err(|e| LabError::io(dir.display().to_string(), e))?;
        }
        fs::write(&file, text).map_err(|e| LabError::io(file.display().to_string(), e))?;
        Ok(file)
    }

    /// Writes a profile file (0600, root's) into the lab's
    /// `/etc/NetworkManager/system-connections`.
    pub fn write_profile(&self, name: &str, text: &str) -> Result<PathBuf, LabError> {
        let dir = self.root_path("/etc/NetworkManager/system-connections");
        fs::create_dir_all(&dir).map_err(|e| LabError::io(dir.display().to_string(), e))?;
        let file = dir.join(name);
        fs::write(&file, text).map_err(|e| LabError::io(file.display().to_string(), e))?;
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600))
            .map_err(|e| LabError::io(file.display().to_string(), e))?;
        Ok(file)
    }

    /// The address of the lab's system bus (`unix:path=…`).
    pub fn bus_address(&self) -> &str {
        self.bus.as_ref().map(|b| b.address.as_str()).unwrap_or("")
    }

    /// PID of the lab's dbus-daemon.
    pub fn bus_pid(&self) -> Option<u32> {
        self.bus.as_ref().map(Bus::pid)
    }

    /// dbus-daemon's own log (policy errors show here).
    pub fn bus_log(&self) -> Option<&Path> {
        self.bus.as_ref().map(|b| b.log.as_path())
    }

    /// Makes `binary` bus-activatable on the lab bus, the way a package's
    /// `/usr/share/dbus-1/system-services/<name>.service` does: the bus
    /// starts it on the first call to its name, in the client namespace
    /// with `--root <root>` and `args`. Its output goes to the bus log. The
    /// bus reloads its configuration, so the name is activatable on return.
    pub fn install_bus_service(&self, binary: &str, args: &[&str]) -> Result<PathBuf, LabError> {
        let name = well_known_name(binary)
            .ok_or_else(|| LabError::Invalid(format!("{binary} has no known bus name to activate")))?;
        let bus = self.bus.as_ref().ok_or_else(|| LabError::Invalid("this lab has no bus".into()))?;
        let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .ok_or_else(|| LabError::Invalid("ip(8) not found".into()))?;
        let program = bin_dir()?.join(binary);
        let mut exec =
            format!("{ip} netns exec {} {} --root {}", self.client_netns, program.display(), self.root.display());
        for a in args {
            exec.push(' ');
            exec.push_str(a);
        }
        let file = bus.service_dir.join(format!("{name}.service"));
        let text = format!("[D-BUS Service]\nName={name}\nExec={exec}\nUser=root\n");
        fs::write(&file, text).map_err(|e| LabError::io(file.display().to_string(), e))?;
        // As a package's postinst does (`systemctl reload dbus`): the bus
        // notices new files by itself only once its watches are set up, and
        // lists them as activatable only after reading them.
        let out = std::process::Command::new("busctl")
            .arg(format!("--address={}", bus.address))
            .args(["call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "ReloadConfig"])
            .output()
            .map_err(|e| LabError::io("running busctl", e))?;
        if !out.status.success() {
            return Err(LabError::Invalid(format!(
                "the bus did not reload its configuration: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(file)
    }

    /// The namespace daemons and clients run in.
    pub fn client_netns(&self) -> &str {
        &self.client_netns
    }

    /// The namespace dnsmasq runs in (none without uplinks).
    pub fn server_netns(&self) -> Option<&str> {
        self.server_netns.as_deref()
    }

    pub fn uplinks(&self) -> &[Uplink] {
        &self.uplinks
    }

    pub fn dnsmasq_pid(&self) -> Option<u32> {
        self.dnsmasq.as_ref().map(Dnsmasq::pid)
    }

    /// Whether dnsmasq (if the lab has one) is still running.
    pub fn dnsmasq_running(&mut self) -> bool {
        self.dnsmasq.as_mut().is_some_and(Dnsmasq::is_running)
    }

    /// Stops dnsmasq (SIGKILL to its PID, reaped): the DHCP server is gone.
    pub fn stop_dnsmasq(&mut self) {
        self.dnsmasq.take();
    }

    /// Starts dnsmasq again as the lab first did (its lease file and log
    /// are kept); nothing when it runs or the lab has no uplinks.
    pub fn start_dnsmasq(&mut self) -> Result<(), LabError> {
        if self.dnsmasq_running() {
            return Ok(());
        }
        if let Some(srv) = &self.server_netns {
            let d = Dnsmasq::start(srv, &self.uplinks, &self.dnsmasq_opts, &self.dir.join("dnsmasq"))?;
            self.dnsmasq = Some(d);
        }
        Ok(())
    }

    /// dnsmasq's log (every DHCP exchange, with `--log-dhcp`).
    pub fn dnsmasq_log(&self) -> Option<&Path> {
        self.dnsmasq.as_ref().map(|d| d.log.as_path())
    }

    /// dnsmasq's lease file.
    pub fn dnsmasq_leases(&self) -> Option<&Path> {
        self.dnsmasq.as_ref().map(|d| d.leases.as_path())
    }

    /// The directory the launcher takes binaries from.
    pub fn bin_dir(&self) -> Result<PathBuf, LabError> {
        bin_dir()
    }

    /// A new connection to the lab bus, as root.
    pub async fn bus(&self) -> Result<zbus::Connection, LabError> {
        zbus::connection::Builder::address(self.bus_address())
            .build()
            .await
            .map_err(|e| LabError::bus(format!("connecting to {}", self.bus_address()), e))
    }

    /// A daemon to start: `lab.daemon("nm-system-settings").uid(1000).spawn().await`.
    pub fn daemon(&self, binary: &str) -> DaemonSpec<'_> {
        DaemonSpec::new(self, binary)
    }

    /// Debian's real polkitd on the lab bus, with the actions and rules the
    /// test gives (see [`crate::polkit`]); the lab must be built with
    /// [`LabBuilder::polkit`].
    pub fn polkitd(&self) -> PolkitSpec<'_> {
        PolkitSpec::new(self)
    }

    /// Starts one of the project's daemons (`<bin dir>/<binary> --root <root>
    /// <extra_args>`) in the client namespace and waits until it owns its
    /// well-known name.
    pub async fn spawn_daemon(&self, binary: &str, extra_args: &[&str]) -> Result<DaemonHandle, LabError> {
        if well_known_name(binary).is_none() {
            return Err(LabError::Invalid(format!(
                "{binary} has no known bus name; use lab.daemon({binary:?}).bus_name(…)"
            )));
        }
        self.daemon(binary).args(extra_args).spawn().await
    }

    /// A client command to run in the client namespace on the lab bus.
    pub fn command(&self, program: impl Into<OsString>) -> LabCommand<'_> {
        LabCommand::new(self, program)
    }

    /// The environment every lab process gets.
    pub fn client_env(&self) -> Vec<(OsString, OsString)> {
        vec![
            ("DBUS_SYSTEM_BUS_ADDRESS".into(), self.bus_address().into()),
            ("NM_RS_ROOT".into(), self.root.clone().into()),
            ("NO_COLOR".into(), "1".into()),
        ]
    }

    /// A blocking command that runs `program` in the client namespace with
    /// the lab's environment (for interactive use, e.g. `cargo xtask lab`).
    pub fn std_command(&self, program: impl AsRef<OsStr>) -> std::process::Command {
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", &self.client_netns]).arg(program).envs(self.client_env());
        for key in SCRUBBED_ENV {
            cmd.env_remove(key);
        }
        cmd
    }

    pub(crate) fn set_client_env(&self, cmd: &mut tokio::process::Command) {
        cmd.envs(self.client_env());
        for key in SCRUBBED_ENV {
            cmd.env_remove(key);
        }
    }

    fn make_root(&self) -> Result<(), LabError> {
        let dirs = [
            ("etc/NetworkManager/system-connections", 0o700),
            ("etc/NetworkManager/conf.d", 0o755),
            ("run/NetworkManager", 0o755),
            ("var/lib/NetworkManager", 0o755),
            ("usr/lib/NetworkManager/system-connections", 0o755),
        ];
        for (rel, mode) in dirs {
            let path = self.root.join(rel);
            fs::create_dir_all(&path)
                .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(mode)))
                .map_err(|e| LabError::io(format!("creating {}", path.display()), e))?;
        }
        Ok(())
    }

    fn add_netns(&mut self, name: String) -> Result<(), LabError> {
        ip(["netns", "add", &name])?;
        self.namespaces.push(name.clone());
        ip(["-n", &name, "link", "set", "lo", "up"])?;
        Ok(())
    }

    fn add_uplink(&mut self, index: usize) -> Result<(), LabError> {
        let up = Uplink::new(&self.names, index)?;
        let srv = self.server_netns.clone().unwrap_or_default();
        let cli = &self.client_netns;
        // Made inside the client namespace with its peer placed straight into
        // the server namespace: the pair never exists in the root namespace.
        ip(["-n", cli, "link", "add", &up.client_if, "type", "veth", "peer", "name", &up.server_if, "netns", &srv])?;
        let sif = up.server_if.as_str();
        if self.ipv6 {
            // A fixed link-local address without DAD: dnsmasq can send router
            // advertisements at once instead of waiting for DAD.
            ip(["-n", &srv, "link", "set", sif, "addrgenmode", "none"])?;
            let ll = format!("{}/64", up.server_ll6);
            ip(["-n", &srv, "addr", "add", &ll, "dev", sif, "nodad"])?;
            let v6 = format!("{}/64", up.server_v6);
            ip(["-n", &srv, "addr", "add", &v6, "dev", sif, "nodad"])?;
            // A router forwards: its neighbour advertisements carry the
            // router flag. Without it the client's kernel takes the "router"
            // for a host at its first neighbour probe (about 5 s in) and
            // drops the default routes it learnt from the advertisements.
            let forwarding = format!("echo 1 > /proc/sys/net/ipv6/conf/{sif}/forwarding");
            ip(["netns", "exec", &srv, "sh", "-c", &forwarding])?;
        }
        let v4 = format!("{}/{}", up.server_v4, up.prefix_v4);
        ip(["-n", &srv, "addr", "add", &v4, "dev", sif])?;
        ip(["-n", &srv, "link", "set", sif, "up"])?;
        self.uplinks.push(up);
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Processes first (by PID, reaped), then whatever else still runs in
        // the lab's namespaces, then the namespaces, then files.
        self.dnsmasq.take();
        self.bus.take();
        for ns in &self.namespaces {
            let stray = kill_netns_processes(&Path::new("/run/netns").join(ns));
            if !stray.is_empty() {
                eprintln!("nm_lab: killed processes left in {ns}: {stray:?}");
            }
        }
        for ns in self.namespaces.drain(..).rev() {
            if let Err(e) = ip(["netns", "delete", &ns]) {
                eprintln!("nm_lab: could not delete namespace {ns}: {e}");
            }
        }
        let keep = std::thread::panicking() || std::env::var_os("NM_LAB_KEEP").is_some();
        if keep {
            eprintln!("nm_lab: kept {} for inspection", self.dir.display());
        } else if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("nm_lab: could not remove {}: {e}", self.dir.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uplink_addresses() {
        let names = Names::new(77, 3);
        let up = Uplink::new(&names, 2).unwrap();
        assert_eq!(up.client_if, "nmt77x3c2");
        assert_eq!(up.server_if, "nmt77x3s2");
        assert_eq!(up.server_v4, Ipv4Addr::new(198, 18, 2, 1));
        assert_eq!(up.dhcp_range.0, Ipv4Addr::new(198, 18, 2, 100));
        assert_eq!(up.server_v6.to_string(), "fd4c:6162:0:2::1");
        assert_eq!(up.dhcp6_range.1.to_string(), "fd4c:6162:0:2::1ff");
        assert!(Uplink::new(&names, MAX_UPLINKS).is_err());
    }

    #[test]
    fn root_paths_mirror_the_host() {
        let root = Path::new("/tmp/nmt1x0/root");
        assert_eq!(
            under_root(root, Path::new("/etc/NetworkManager/system-connections")),
            Path::new("/tmp/nmt1x0/root/etc/NetworkManager/system-connections")
        );
        assert_eq!(under_root(root, Path::new("etc/hostname")), Path::new("/tmp/nmt1x0/root/etc/hostname"));
    }
}
