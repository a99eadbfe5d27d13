//! nm-core driven by Debian's real `nmcli` and `nm-online` on the lab bus,
//! with the kernel's state read back with `ip` after every step. Needs root.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use nm_lab::{DaemonHandle, Lab, Output};
use zbus::OwnedObjectPath;

/// nmcli's own waits are 90 s (up) and 10 s (down); nothing here should
/// take more than a few seconds.
const STEP: Duration = Duration::from_secs(20);

struct Core {
    lab: Lab,
    settings: Option<DaemonHandle>,
    core: Option<DaemonHandle>,
}

impl Core {
    /// A lab with `uplinks` veth pairs (no dnsmasq needed for static
    /// profiles), nm-system-settings and nm-core managing the uplinks.
    async fn start(uplinks: usize, extra_config: &str) -> Core {
        Self::start_on(Lab::builder().uplinks(uplinks).dnsmasq(false).build().expect("lab"), extra_config).await
    }

    async fn start_on(lab: Lab, extra_config: &str) -> Core {
        lab.write_core_config(&format!("carrier-grace-ms = 300\ncarrier-wait-ms = 2000\n{extra_config}"))
            .expect("config");
        let mut c = Core { lab, settings: None, core: None };
        c.settings = Some(c.lab.spawn_daemon("nm-system-settings", &[]).await.expect("nm-system-settings"));
        c.core = Some(c.lab.spawn_daemon("nm-core", &[]).await.expect("nm-core"));
        c
    }

    /// Like [`Core::start`], with dnsmasq on the far side and the real
    /// nm-dhcp-helper running as nobody with only its two capabilities.
    async fn start_with_dhcp() -> (Core, DaemonHandle) {
        Self::start_with_dhcp_lab(Lab::builder().uplinks(1).build().expect("lab")).await
    }

    async fn start_with_dhcp_lab(lab: Lab) -> (Core, DaemonHandle) {
        lab.write_core_config("carrier-grace-ms = 300\ncarrier-wait-ms = 2000\n").expect("config");
        let state = lab.root_path("/var/lib/NetworkManager");
        std::fs::create_dir_all(&state).expect("state dir");
        std::os::unix::fs::chown(&state, Some(nm_lab::NOBODY), Some(nm_lab::NOBODY)).expect("chown the state dir");
        let helper = unprivileged_helper(&lab).await;
        let mut c = Core { lab, settings: None, core: None };
        c.settings = Some(c.lab.spawn_daemon("nm-system-settings", &[]).await.expect("nm-system-settings"));
        c.core = Some(c.lab.spawn_daemon("nm-core", &[]).await.expect("nm-core"));
        (c, helper)
    }

    async fn restart_core(&mut self) {
        if let Some(mut old) = self.core.take() {
            let status = old.stop().await.expect("SIGTERM stops nm-core");
            assert!(status.success(), "nm-core exits cleanly on SIGTERM: {status:?}");
        }
        self.core = Some(self.lab.spawn_daemon("nm-core", &[]).await.expect("nm-core again"));
    }

    fn log(&self) -> String {
        self.core.as_ref().map(|d| d.log()).unwrap_or_default()
    }

    /// A proxy for one of nm-core's objects on the lab bus.
    async fn proxy(&self, path: &str, iface: &'static str) -> zbus::Proxy<'static> {
        let bus = self.lab.bus().await.expect("bus");
        let path = zbus::OwnedObjectPath::try_from(path.to_string()).expect("object path");
        zbus::Proxy::new(&bus, "org.freedesktop.NetworkManager", path, iface).await.expect("proxy")
    }

    /// A `u` property of a device, read now (`Properties.Get`, not a
    /// proxy's cache, which follows signals a moment later).
    async fn device_u32(&self, path: &str, name: &str) -> u32 {
        let bus = self.lab.bus().await.expect("bus");
        let reply = bus
            .call_method(
                Some("org.freedesktop.NetworkManager"),
                path,
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &("org.freedesktop.NetworkManager.Device", name),
            )
            .await
            .unwrap_or_else(|e| panic!("Get {name} of {path}: {e}"));
        let value: zbus::OwnedVariant = reply.body().deserialize().expect("a variant");
        u32::try_from(value).unwrap_or_else(|e| panic!("{name} of {path} is no u: {e}"))
    }

    async fn nmcli(&self, args: &[&str]) -> Output {
        self.lab.command("nmcli").args(args).timeout(STEP).output().await.expect("nmcli runs")
    }

    /// nmcli's stdout, run to the end from a synchronous check (`until`).
    fn nmcli_now(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("nmcli")
            .args(args)
            .env("DBUS_SYSTEM_BUS_ADDRESS", self.lab.bus_address())
            .output()
            .expect("nmcli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// nmcli that must succeed; returns stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.nmcli(args).await;
        assert!(
            out.success(),
            "nmcli {args:?} failed ({:?}):\n{}{}\n--- nm-core log ---\n{}",
            out.status,
            out.stdout,
            out.stderr,
            nm_lab::tail(&self.log(), 40)
        );
        out.stdout
    }

    /// `nmcli connection add` of the ethernet DHCP profile "dyn" on `eth`
    /// (IPv6 off), with `extra` property-value pairs.
    async fn add_dhcp_profile(&self, eth: &str, extra: &[(&str, &str)]) {
        let mut props = vec![("ipv4.method", "auto")];
        props.extend_from_slice(extra);
        props.push(("ipv6.method", "disabled"));
        self.ok(&nm_lab::add_ethernet(eth, "dyn", &props)).await;
    }

    fn ip(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("ip")
            .arg("-n")
            .arg(self.lab.client_netns())
            .args(args)
            .output()
            .expect("ip runs");
        assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn server_ip(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("ip")
            .arg("-n")
            .arg(self.lab.server_netns().expect("server namespace"))
            .args(args)
            .output()
            .expect("ip runs");
        assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The DHCPv6 lease's address on `dev`: a /128 in `range`; with
    /// `past_dad`, only one past duplicate address detection.
    fn dhcp6_address(&self, dev: &str, range: (Ipv6Addr, Ipv6Addr), past_dad: bool) -> Option<Ipv6Addr> {
        let mut args = vec!["-6", "-o", "addr", "show", "dev", dev, "scope", "global"];
        if past_dad {
            args.push("-tentative");
        }
        self.ip(&args)
            .split_whitespace()
            .filter_map(|w| w.strip_suffix("/128")?.parse::<Ipv6Addr>().ok())
            .find(|a| (range.0..=range.1).contains(a))
    }

    fn uplink(&self, i: usize) -> String {
        self.lab.uplinks()[i].client_if.clone()
    }

    fn resolv(&self) -> String {
        std::fs::read_to_string(self.lab.root_path("/etc/resolv.conf")).unwrap_or_default()
    }

    /// Waits (by polling the kernel, bounded) until `check` holds.
    async fn until(&self, what: &str, check: impl Fn(&Core) -> bool) {
        let deadline = Instant::now() + STEP;
        while !check(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", nm_lab::tail(&self.log(), 40));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Until `nmcli device status` shows `dev` in one of `states` (a
    /// property write is answered before nm-core acts on it).
    async fn until_state(&self, dev: &str, states: &[&str]) {
        let deadline = Instant::now() + STEP;
        loop {
            let devices = self.ok(&["-t", "device", "status"]).await;
            if states.contains(&self.device_state(&devices, dev).as_str()) {
                return;
            }
            assert!(Instant::now() < deadline, "{dev} not {states:?}: {devices}\n{}", nm_lab::tail(&self.log(), 40));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn device_state(&self, out: &str, dev: &str) -> String {
        out.lines()
            .find(|l| l.starts_with(&format!("{dev}:")))
            .map(|l| l.split(':').nth(2).unwrap_or("").to_string())
            .unwrap_or_default()
    }
}

fn static_profile(name: &str, ifname: &str, addr: &str, gw: &str, dns: &str) -> Vec<String> {
    nm_lab::add_ethernet(
        ifname,
        name,
        &[
            ("ipv4.method", "manual"),
            ("ipv4.addresses", addr),
            ("ipv4.gateway", gw),
            ("ipv4.dns", dns),
            ("ipv6.method", "disabled"),
            ("connection.autoconnect", "no"),
        ],
    )
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[tokio::test]
async fn nmcli_commands_work_and_the_kernel_agrees() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);

    let status = c.ok(&["general", "status"]).await;
    assert!(status.contains("disconnected") || status.contains("connected"), "{status}");
    let devices = c.ok(&["-t", "device", "status"]).await;
    assert!(devices.contains(&format!("{eth}:ethernet:")), "{devices}");

    // connection add: a keyfile appears, nmcli sees the profile.
    let add: Vec<String> = static_profile("office", &eth, "192.0.2.10/24", "192.0.2.1", "192.0.2.53");
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    let out = c.ok(&add).await;
    assert!(out.contains("successfully added"), "{out}");
    assert!(c.lab.root_path("/etc/NetworkManager/system-connections/office.nmconnection").exists());
    let show = c.ok(&["-t", "-f", "NAME,TYPE", "connection", "show"]).await;
    assert!(show.contains("office:802-3-ethernet"), "{show}");
    let fields = c.ok(&["-t", "-f", "ipv4.addresses,ipv4.gateway,ipv4.dns", "connection", "show", "office"]).await;
    assert!(fields.contains("ipv4.addresses:192.0.2.10/24"), "{fields}");
    assert!(fields.contains("ipv4.gateway:192.0.2.1"), "{fields}");
    assert!(fields.contains("ipv4.dns:192.0.2.53"), "{fields}");

    // connection up: the address, the prefix route and the default route
    // with the ethernet metric are in the kernel; the resolver has the server.
    let out = c.ok(&["connection", "up", "office"]).await;
    assert!(out.contains("successfully activated"), "{out}");
    let addr = c.ip(&["-4", "addr", "show", "dev", &eth]);
    assert!(addr.contains("192.0.2.10/24"), "{addr}");
    let routes = c.ip(&["-4", "route", "show", "dev", &eth]);
    assert!(routes.contains("default via 192.0.2.1 proto static metric 100"), "{routes}");
    assert!(routes.contains("192.0.2.0/24 proto kernel scope link metric 100"), "{routes}");
    assert!(c.resolv().contains("nameserver 192.0.2.53"), "{}", c.resolv());
    let devices = c.ok(&["-t", "device", "status"]).await;
    assert_eq!(c.device_state(&devices, &eth), "connected", "{devices}");
    let show = c.ok(&["device", "show", &eth]).await;
    assert!(show.contains("192.0.2.10/24") && show.contains("192.0.2.1"), "{show}");
    let active = c.ok(&["-t", "-f", "NAME,DEVICE", "connection", "show", "--active"]).await;
    assert!(active.contains(&format!("office:{eth}")), "{active}");

    // modify: the keyfile changes; a re-up applies the new address.
    c.ok(&["connection", "modify", "office", "ipv4.addresses", "192.0.2.11/24", "ipv4.dns", "192.0.2.54"]).await;
    let file = std::fs::read_to_string(c.lab.root_path("/etc/NetworkManager/system-connections/office.nmconnection"))
        .expect("keyfile");
    assert!(file.contains("address1=192.0.2.11/24,192.0.2.1"), "{file}");
    c.ok(&["connection", "up", "office"]).await;
    let addr = c.ip(&["-4", "addr", "show", "dev", &eth]);
    assert!(addr.contains("192.0.2.11/24") && !addr.contains("192.0.2.10/24"), "{addr}");
    assert!(c.resolv().contains("nameserver 192.0.2.54"), "{}", c.resolv());

    // down: the configuration leaves the kernel.
    c.ok(&["connection", "down", "office"]).await;
    let addr = c.ip(&["-4", "addr", "show", "dev", &eth]);
    assert!(!addr.contains("192.0.2.11"), "{addr}");
    assert!(!c.ip(&["-4", "route"]).contains("default"), "no default route after down");

    // device connect picks the profile; device disconnect takes it down.
    c.ok(&["device", "connect", &eth]).await;
    assert!(c.ip(&["-4", "addr", "show", "dev", &eth]).contains("192.0.2.11/24"));
    c.ok(&["device", "disconnect", &eth]).await;
    assert!(!c.ip(&["-4", "addr", "show", "dev", &eth]).contains("192.0.2.11/24"));
    let devices = c.ok(&["-t", "device", "status"]).await;
    assert_eq!(c.device_state(&devices, &eth), "disconnected", "{devices}");

    // delete of an active profile: deactivated first, then gone.
    c.ok(&["connection", "up", "office"]).await;
    c.ok(&["connection", "delete", "office"]).await;
    assert!(!c.lab.root_path("/etc/NetworkManager/system-connections/office.nmconnection").exists());
    assert!(!c.ip(&["-4", "addr", "show", "dev", &eth]).contains("192.0.2.11"));
    assert!(!c.ok(&["connection", "show"]).await.contains("office"));

    // nm-online -s: start-up is complete.
    let online =
        c.lab.command("nm-online").args(["-s", "-q", "-t", "10"]).timeout(STEP).output().await.expect("nm-online");
    assert!(online.success(), "nm-online -s: {:?} {}", online.status, online.stderr);
}

#[tokio::test]
async fn device_connect_without_a_profile_completes_one() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    // No profile: nmcli falls back to AddAndActivateConnection, whose
    // partial profile nm-core completes (type, uuid, interface-name, auto).
    // The lab has no DHCP helper: the activation waits for one (up to the
    // DHCP timeout, as for a server that does not answer), so nmcli is told
    // not to wait for it.
    let out = c.nmcli(&["--wait", "2", "device", "connect", &eth]).await;
    let profiles = c.ok(&["-t", "-f", "NAME,TYPE", "connection", "show"]).await;
    assert!(profiles.contains(&format!("{eth}:802-3-ethernet")), "{profiles}\n{}{}", out.stdout, out.stderr);
}

#[tokio::test]
async fn monitor_prints_state_changes() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let add = static_profile("mon", &eth, "192.0.2.20/24", "192.0.2.1", "192.0.2.53");
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    c.ok(&add).await;
    let mut monitor = c.lab.std_command("nmcli");
    monitor.arg("monitor").stdout(std::process::Stdio::piped());
    let mut child = tokio::process::Command::from(monitor).kill_on_drop(true).spawn().expect("nmcli monitor");
    let stdout = child.stdout.take().expect("stdout");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let seen = seen.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                let mut s = seen.lock().expect("lock");
                s.push_str(&l);
                s.push('\n');
            }
        })
    };
    // nmcli monitor prints only changes, and only once its client is up:
    // switch the profile until a whole activation has been printed.
    let deadline = Instant::now() + STEP;
    let printed = |what: &str| seen.lock().expect("lock").contains(what);
    while !printed(&format!("{eth}: connected")) {
        assert!(Instant::now() < deadline, "nmcli monitor printed no activation:\n{}", seen.lock().expect("lock"));
        c.ok(&["connection", "up", "mon"]).await;
        c.ok(&["connection", "down", "mon"]).await;
    }
    let text = seen.lock().expect("lock").clone();
    assert!(text.contains(&format!("{eth}: using connection 'mon'")) || text.contains("connecting"), "{text}");
    reader.abort();
    let _ = child.kill().await;
}

/// A static autoconnect profile for uplink `i`, addressed on its server's subnet.
/// nm-dhcp-helper as its unit runs it: nobody, with only its two capabilities.
async fn unprivileged_helper(lab: &Lab) -> DaemonHandle {
    lab.daemon("nm-dhcp-helper")
        .uid(nm_lab::NOBODY)
        .caps(["net_raw", "net_bind_service"])
        .spawn()
        .await
        .expect("nm-dhcp-helper")
}

fn uplink_profile(c: &Core, i: usize) -> String {
    let u = &c.lab.uplinks()[i];
    let o = u.server_v4.octets();
    format!(
        "[connection]\nid=uplink{i}\nuuid=75706c69-6e6b-4000-8000-{i:012x}\ntype=ethernet\ninterface-name={}\n\n[ethernet]\n\n\
         [ipv4]\naddress1={}.{}.{}.10/24,{}\ndns={};\nmethod=manual\n\n[ipv6]\naddr-gen-mode=default\nmethod=disabled\n\n[proxy]\n",
        u.client_if, o[0], o[1], o[2], u.server_v4, u.server_v4
    )
}

async fn two_uplinks_up() -> Core {
    let lab = Lab::builder().uplinks(2).dnsmasq(false).build().expect("lab");
    lab.write_core_config("carrier-grace-ms = 300\ncarrier-wait-ms = 2000\n").expect("config");
    let mut c = Core { lab, settings: None, core: None };
    for i in 0..2 {
        let text = uplink_profile(&c, i);
        c.lab.write_profile(&format!("uplink{i}.nmconnection"), &text).expect("profile");
    }
    c.settings = Some(c.lab.spawn_daemon("nm-system-settings", &[]).await.expect("nm-system-settings"));
    c.core = Some(c.lab.spawn_daemon("nm-core", &[]).await.expect("nm-core"));
    let online =
        c.lab.command("nm-online").args(["-s", "-q", "-t", "10"]).timeout(STEP).output().await.expect("nm-online");
    assert!(online.success(), "nm-online -s: {:?}\n{}", online.status, nm_lab::tail(&c.log(), 30));
    c
}

fn default_routes(c: &Core) -> Vec<String> {
    c.ip(&["-4", "route", "show", "default"]).lines().map(str::to_string).collect()
}

#[tokio::test]
async fn two_uplinks_get_metrics_100_and_101_and_fail_over_by_themselves() {
    let c = two_uplinks_up().await;
    let (eth0, eth1) = (c.uplink(0), c.uplink(1));
    c.until("two default routes", |c| default_routes(c).len() == 2).await;
    let routes = default_routes(&c).join("\n");
    assert!(routes.contains(&format!("default via 198.18.0.1 dev {eth0} proto static metric 100")), "{routes}");
    assert!(routes.contains(&format!("default via 198.18.1.1 dev {eth1} proto static metric 101")), "{routes}");
    assert!(
        c.resolv().contains("nameserver 198.18.0.1") && c.resolv().contains("nameserver 198.18.1.1"),
        "{}",
        c.resolv()
    );

    // The far end of uplink 0 goes down: after the grace period its
    // configuration leaves the kernel and the device is unavailable.
    let far0 = c.lab.uplinks()[0].server_if.clone();
    c.server_ip(&["link", "set", &far0, "down"]);
    c.until("uplink 0 deconfigured", |c| !c.ip(&["-4", "addr", "show", "dev", &eth0]).contains("198.18.0.10")).await;
    let routes = default_routes(&c).join("\n");
    assert!(!routes.contains(&eth0) && routes.contains(&eth1), "{routes}");
    let devices = c.ok(&["-t", "device", "status"]).await;
    assert_eq!(c.device_state(&devices, &eth0), "unavailable", "{devices}");
    assert_eq!(c.device_state(&devices, &eth1), "connected", "{devices}");
    assert!(!c.resolv().contains("198.18.0.1"), "{}", c.resolv());

    // It comes back: reactivated without anybody asking.
    c.server_ip(&["link", "set", &far0, "up"]);
    c.until("uplink 0 back", |c| default_routes(c).len() == 2).await;
    let devices = c.ok(&["-t", "device", "status"]).await;
    assert_eq!(c.device_state(&devices, &eth0), "connected", "{devices}");
}

#[tokio::test]
async fn a_restart_takes_everything_back_without_deleting_anything() {
    let mut c = two_uplinks_up().await;
    c.until("two default routes", |c| default_routes(c).len() == 2).await;
    let before = c.ok(&["-t", "-f", "NAME,UUID,DEVICE", "connection", "show", "--active"]).await;

    // `ip monitor` runs throughout and must record no deletion.
    let monitor = KernelMonitor::start(&c, &["address", "route", "link"]);

    c.restart_core().await;
    let online =
        c.lab.command("nm-online").args(["-s", "-q", "-t", "10"]).timeout(STEP).output().await.expect("nm-online");
    assert!(online.success(), "nm-online -s after restart");
    let after = c.ok(&["-t", "-f", "NAME,UUID,DEVICE", "connection", "show", "--active"]).await;
    assert_eq!(sorted(&before), sorted(&after), "the same active connections after the restart");
    let routes = default_routes(&c).join("\n");
    assert!(routes.contains("metric 100") && routes.contains("metric 101"), "{routes}");

    let deletions = monitor.deletions().await;
    assert!(deletions.is_empty(), "the restart deleted: {deletions:?}\n{}", nm_lab::tail(&c.log(), 30));
}

/// `ip monitor` in the lab's client namespace, recording what it sees
/// until [`KernelMonitor::deletions`].
struct KernelMonitor {
    child: tokio::process::Child,
    record: tokio::task::JoinHandle<String>,
}

impl KernelMonitor {
    /// Starts recording `objects` (`address`, `route`, `link`).
    fn start(c: &Core, objects: &[&str]) -> KernelMonitor {
        let mut monitor = std::process::Command::new("ip");
        monitor.args(["-n", c.lab.client_netns(), "monitor"]).args(objects);
        monitor.stdout(std::process::Stdio::piped());
        let mut child = tokio::process::Command::from(monitor).kill_on_drop(true).spawn().expect("ip monitor");
        let mut stdout = child.stdout.take().expect("stdout");
        let record = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut out = String::new();
            let _ = stdout.read_to_string(&mut out).await;
            out
        });
        KernelMonitor { child, record }
    }

    /// Stops recording; the deletions it saw.
    async fn deletions(mut self) -> Vec<String> {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        let recorded = self.record.await.expect("monitor output");
        recorded.lines().filter(|l| l.starts_with("Deleted")).map(str::to_string).collect()
    }
}

fn sorted(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

#[tokio::test]
async fn foreign_routes_are_left_alone_and_do_not_slow_the_api() {
    let mut c = two_uplinks_up().await;
    let eth0 = c.uplink(0);
    c.until("uplink 0 up", |c| c.ip(&["-4", "addr", "show", "dev", &eth0]).contains("198.18.0.10")).await;
    // 200,000 routes in table 1000 on the managed link, added while nmcli keeps asking.
    const N: u32 = 200_000;
    let batch: String = (0..N)
        .map(|i| {
            format!("route add 10.{}.{}.0/24 dev {eth0} table 1000\n", 64 + (i >> 16), (i >> 8) & 0xff)
                .replace(".0/24", &format!(".{}/32", i & 0xff))
        })
        .collect();
    let batch_file = c.lab.dir().join("routes.batch");
    std::fs::write(&batch_file, batch).expect("batch file");
    let mut adder = tokio::process::Command::new("ip");
    adder.args(["-n", c.lab.client_netns(), "-batch"]).arg(&batch_file);
    let mut adder = adder.spawn().expect("ip -batch");
    let mut slowest = Duration::ZERO;
    let mut asked = 0;
    loop {
        let t = Instant::now();
        c.ok(&["general", "status"]).await;
        slowest = slowest.max(t.elapsed());
        asked += 1;
        if let Ok(Some(status)) = adder.try_wait() {
            assert!(status.success(), "ip -batch failed");
            break;
        }
    }
    let t = Instant::now();
    c.ok(&["device", "show", &eth0]).await;
    let after = t.elapsed();
    assert!(asked > 1, "nmcli answered while the routes were added");
    assert!(slowest < Duration::from_secs(2), "nmcli general status took {slowest:?} while routes were added");
    assert!(after < Duration::from_secs(1), "nmcli device show took {after:?} with 200,000 foreign routes");

    // A restart of nm-core (which takes its own configuration back) touches
    // none of them either. (Taking the link's last IPv4 address away would:
    // the kernel then flushes every route through the link, whoever made it.)
    c.restart_core().await;
    let online =
        c.lab.command("nm-online").args(["-s", "-q", "-t", "10"]).timeout(STEP).output().await.expect("nm-online");
    assert!(online.success(), "nm-online -s after restart");
    let count = c.ip(&["-4", "route", "show", "table", "1000"]).lines().count();
    assert_eq!(count, N as usize, "every foreign route is still there");
}

#[tokio::test]
async fn bad_input_gets_networkmanager_errors_and_changes_nothing() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let bus = c.lab.bus().await.expect("bus");
    let nm = |path: &'static str, iface: &'static str| {
        let bus = bus.clone();
        async move { zbus::Proxy::new(&bus, "org.freedesktop.NetworkManager", path, iface).await.expect("proxy") }
    };
    let error_name = |e: zbus::Error| match e {
        zbus::Error::MethodError(name, msg, _) => {
            format!("{} {}", name.as_str(), msg.unwrap_or_default())
        }
        other => format!("{other}"),
    };
    let manager = nm("/org/freedesktop/NetworkManager", "org.freedesktop.NetworkManager").await;
    let root = zbus::ObjectPath::try_from("/").expect("path");
    let nowhere = zbus::ObjectPath::try_from("/org/freedesktop/NetworkManager/Settings/999").expect("path");

    let e = manager
        .call::<_, _, zbus::OwnedObjectPath>("ActivateConnection", &(&nowhere, &root, &root))
        .await
        .expect_err("unknown profile");
    assert!(error_name(e).starts_with("org.freedesktop.NetworkManager.UnknownConnection"));
    let e = manager
        .call::<_, _, ()>(
            "DeactivateConnection",
            &(zbus::ObjectPath::try_from("/org/freedesktop/NetworkManager/ActiveConnection/77").expect("path"),),
        )
        .await
        .expect_err("not active");
    assert!(error_name(e).starts_with("org.freedesktop.NetworkManager.ConnectionNotActive"));

    // A profile for a device that does not exist.
    c.ok(&nm_lab::add_ethernet(
        "nosuchdev0",
        "ghost",
        &[("ipv4.method", "manual"), ("ipv4.addresses", "192.0.2.9/24")],
    ))
    .await;
    let out = c.nmcli(&["connection", "up", "ghost"]).await;
    assert!(!out.success());
    assert!(out.stderr.contains("No suitable device found"), "{}", out.stderr);

    // Malformed dictionaries: nothing is written.
    let settings = nm("/org/freedesktop/NetworkManager/Settings", "org.freedesktop.NetworkManager.Settings").await;
    let files_before =
        std::fs::read_dir(c.lab.root_path("/etc/NetworkManager/system-connections")).expect("dir").count();
    let mut dict: std::collections::HashMap<&str, std::collections::HashMap<&str, zbus::Variant<'_>>> =
        Default::default();
    dict.entry("connection").or_default().insert("id", zbus::Variant::from("typeless"));
    dict.entry("connection").or_default().insert("uuid", zbus::Variant::from("0e3f0c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6"));
    let e = settings.call::<_, _, zbus::OwnedObjectPath>("AddConnection", &(&dict,)).await.expect_err("no type");
    let e = error_name(e);
    assert!(
        e.starts_with(
            "org.freedesktop.NetworkManager.Settings.Connection.MissingProperty connection.type: property is missing"
        ),
        "{e}"
    );
    dict.entry("connection").or_default().insert("type", zbus::Variant::from("802-3-ethernet"));
    dict.entry("connection").or_default().insert("autoconnect", zbus::Variant::from("yes"));
    let e = settings.call::<_, _, zbus::OwnedObjectPath>("AddConnection", &(&dict,)).await.expect_err("wrong type");
    let e = error_name(e);
    assert!(
        e.starts_with("org.freedesktop.NetworkManager.Settings.Connection.InvalidProperty connection.autoconnect:"),
        "{e}"
    );
    // nmcli sends a profile it could not complete (here: manual without
    // an address) as it is, without a uuid; the answer names the real fault.
    let out = c
        .nmcli(&["connection", "add", "type", "ethernet", "ifname", &eth, "con-name", "bad", "ipv4.method", "manual"])
        .await;
    assert!(
        !out.success() && out.stderr.contains("ipv4.addresses: this property cannot be empty for 'method=manual'"),
        "{}",
        out.stderr
    );
    let files_after =
        std::fs::read_dir(c.lab.root_path("/etc/NetworkManager/system-connections")).expect("dir").count();
    assert_eq!(files_before, files_after, "nothing written for refused input");

    // Disconnecting a device that is not active.
    let dev_path = c.ok(&["-g", "GENERAL.DBUS-PATH", "device", "show", &eth]).await;
    let dev_path = zbus::ObjectPath::try_from(dev_path.trim().to_string()).expect("device path");
    let device =
        zbus::Proxy::new(&bus, "org.freedesktop.NetworkManager", dev_path, "org.freedesktop.NetworkManager.Device")
            .await
            .expect("proxy");
    let e = device.call::<_, _, ()>("Disconnect", &()).await.expect_err("not active");
    assert!(error_name(e).starts_with("org.freedesktop.NetworkManager.Device.NotActive"));
    let out = c.nmcli(&["connection", "up", "no-such-profile"]).await;
    assert_eq!(out.status.code(), Some(10), "{}", out.stderr);
    assert!(c.ip(&["-4", "addr", "show", "dev", &eth]).lines().all(|l| !l.contains("inet ")), "nothing was configured");
}

/// A stand-in for nm-dispatcher on the lab bus that records each `Action`.
struct FakeDispatcher {
    seen: tokio::sync::mpsc::UnboundedSender<(String, String, usize)>,
}

type VarDict = std::collections::HashMap<String, zbus::OwnedVariant>;

#[zbus::interface(name = "org.freedesktop.nm_dispatcher")]
impl FakeDispatcher {
    #[allow(clippy::too_many_arguments)]
    fn action(
        &self,
        action: String,
        connection: std::collections::HashMap<String, VarDict>,
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
        debug: bool,
    ) -> Vec<(String, u32, String)> {
        let _ = (connection, connection_properties, device_proxy_properties, device_ip6_config);
        let _ = (device_dhcp4_config, device_dhcp6_config, connectivity_state, vpn_ip_iface);
        let _ = (vpn_proxy_properties, vpn_ip4_config, vpn_ip6_config, debug);
        let iface = device_properties
            .get("interface")
            .and_then(|v| zbus::Variant::try_from(v).ok())
            .and_then(|v| String::try_from(v).ok())
            .unwrap_or_default();
        let addresses = device_ip4_config
            .get("addresses")
            .and_then(|v| zbus::Variant::try_from(v).ok())
            .and_then(|v| Vec::<Vec<u32>>::try_from(v).ok())
            .map_or(0, |a| a.len());
        let _ = self.seen.send((action, iface, addresses));
        vec![]
    }
}

/// Checkpoints, as nmstate and Cockpit use them: a rollback puts back the
/// profile each device had up, with its settings then, leaves other new
/// profiles alone unless asked; overlapping checkpoints are refused; the
/// rollback timeout (set at creation or adjusted later) rolls back by
/// itself, deleting the profiles made since when the flag says so.
#[tokio::test]
async fn checkpoints_roll_back_by_request_and_by_timeout() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let manager = c.proxy("/org/freedesktop/NetworkManager", "org.freedesktop.NetworkManager").await;
    let error_name = |e: zbus::Error| match e {
        zbus::Error::MethodError(name, _, _) => name.as_str().to_string(),
        other => format!("{other}"),
    };
    let addresses = |c: &Core| inet_lines(&c.ip(&["-4", "addr", "show", "dev", &eth]));
    let has = |c: &Core, a: &str| addresses(c).iter().any(|l| l.contains(a));
    let props = [("ipv4.method", "manual"), ("ipv4.addresses", "192.0.2.70/24"), ("connection.autoconnect", "no")];
    c.ok(&nm_lab::add_ethernet(&eth, "cp-a", &props)).await;
    c.ok(&["connection", "up", "cp-a"]).await;
    let dev_path = c.ok(&["-g", "GENERAL.DBUS-PATH", "device", "show", &eth]).await.trim().to_string();
    let dev = zbus::OwnedObjectPath::try_from(dev_path.clone()).expect("path");
    let none: Vec<zbus::OwnedObjectPath> = vec![];

    let cp: zbus::OwnedObjectPath =
        manager.call("CheckpointCreate", &(&none, 0u32, 0u32)).await.expect("a checkpoint of every device");
    let listed: Vec<zbus::OwnedObjectPath> = manager.get_property("Checkpoints").await.expect("Checkpoints");
    assert_eq!(listed, vec![cp.clone()]);
    let checkpoint = c.proxy(cp.as_str(), "org.freedesktop.NetworkManager.Checkpoint").await;
    let covered: Vec<zbus::OwnedObjectPath> = checkpoint.get_property("Devices").await.expect("Devices");
    assert!(covered.contains(&dev), "{covered:?}");
    assert!(checkpoint.get_property::<i64>("Created").await.expect("Created") > 0);
    let e = manager
        .call::<_, _, zbus::OwnedObjectPath>("CheckpointCreate", &(vec![dev.clone()], 0u32, 0u32))
        .await
        .expect_err("overlapping");
    assert_eq!(error_name(e), "org.freedesktop.NetworkManager.InvalidArguments");

    // The change that "cut the host off", and a new profile.
    c.ok(&["connection", "modify", "cp-a", "ipv4.addresses", "192.0.2.71/24"]).await;
    c.ok(&["connection", "up", "cp-a"]).await;
    c.ok(&nm_lab::add_ethernet(&eth, "cp-new", &[("connection.autoconnect", "no")])).await;
    assert!(has(&c, "192.0.2.71/24"));
    let results: std::collections::HashMap<String, u32> =
        manager.call("CheckpointRollback", &(&cp,)).await.expect("rollback");
    assert_eq!(results.get(&dev_path), Some(&0), "{results:?}");
    c.until("the checkpoint's address", |c| has(c, "192.0.2.70/24") && !has(c, "192.0.2.71/24")).await;
    assert_eq!(c.ok(&["-g", "ipv4.addresses", "connection", "show", "cp-a"]).await.trim(), "192.0.2.70/24");
    assert!(c.ok(&["-g", "NAME", "connection", "show"]).await.lines().any(|l| l == "cp-new"), "kept without the flag");
    let listed: Vec<zbus::OwnedObjectPath> = manager.get_property("Checkpoints").await.expect("Checkpoints");
    assert!(listed.is_empty(), "a rolled back checkpoint is gone: {listed:?}");
    let e = manager.call::<_, _, ()>("CheckpointDestroy", &(&cp,)).await.expect_err("gone");
    assert_eq!(error_name(e), "org.freedesktop.NetworkManager.InvalidArguments");

    // By timeout, with new profiles deleted: a checkpoint without one gets
    // one by CheckpointAdjustRollbackTimeout.
    let cp: zbus::OwnedObjectPath =
        manager.call("CheckpointCreate", &(vec![dev.clone()], 0u32, 0x2u32)).await.expect("checkpoint");
    c.ok(&["connection", "down", "cp-a"]).await;
    c.ok(&nm_lab::add_ethernet(&eth, "cp-newer", &[("connection.autoconnect", "no")])).await;
    manager.call::<_, _, ()>("CheckpointAdjustRollbackTimeout", &(&cp, 1u32)).await.expect("adjust");
    // The checkpoint goes last, after the rollback: wait for that.
    let deadline = Instant::now() + STEP;
    while !manager.get_property::<Vec<zbus::OwnedObjectPath>>("Checkpoints").await.expect("list").is_empty() {
        assert!(Instant::now() < deadline, "no rollback by timeout\n{}", nm_lab::tail(&c.log(), 20));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(has(&c, "192.0.2.70/24"), "{:?}", addresses(&c));
    let active = c.ok(&["-g", "NAME", "connection", "show", "--active"]).await;
    assert!(active.lines().any(|l| l == "cp-a"), "{active}");
    let names = c.ok(&["-g", "NAME", "connection", "show"]).await;
    assert!(!names.lines().any(|l| l == "cp-newer") && names.lines().any(|l| l == "cp-new"), "{names}");
}

/// A DHCPDISCOVER from the far end of the lab's uplink `i` (a client
/// there), and the offered address with the server that offered it.
fn offer_at_far_end(lab: &Lab, i: usize) -> Option<(std::net::Ipv4Addr, std::net::Ipv4Addr)> {
    use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, OptionCode};
    use dhcproto::{Decodable, Encodable, Encoder};
    let netns = lab.server_netns().expect("server namespace").to_string();
    let ifname = lab.uplinks()[i].server_if.clone();
    nm_lab::in_netns(&netns, move || {
        let sock = nm_lab::udp_on_link(&ifname, 68);
        let mut discover = Message::default();
        discover.set_flags(Flags::default().set_broadcast()).set_chaddr(&[2, 0, 0, 0, 0x42, 1]);
        discover.opts_mut().insert(DhcpOption::MessageType(MessageType::Discover));
        let mut buf = Vec::new();
        discover.encode(&mut Encoder::new(&mut buf)).expect("encode");
        let deadline = Instant::now() + STEP;
        let mut answer = [0u8; 1500];
        while Instant::now() < deadline {
            // Again at every read timeout: dnsmasq may not listen yet.
            sock.send_to(&buf, (std::net::Ipv4Addr::BROADCAST, 67)).expect("send");
            let Ok((n, _)) = sock.recv_from(&mut answer) else { continue };
            let Ok(offer) = Message::from_bytes(&answer[..n]) else { continue };
            if offer.xid() == discover.xid() && offer.opts().msg_type() == Some(MessageType::Offer) {
                let server = match offer.opts().get(OptionCode::ServerIdentifier) {
                    Some(DhcpOption::ServerIdentifier(s)) => *s,
                    _ => offer.siaddr(),
                };
                return Some((offer.yiaddr(), server));
            }
        }
        None
    })
    .join()
    .expect("the far end's client")
}

/// `ipv4.method shared`: the device takes 10.42.0.1/24, dnsmasq offers
/// leases from it to the far end, IPv4 forwarding is on and the device's
/// nftables table masquerades its network; all of it goes at down.
#[tokio::test]
async fn a_shared_connection_serves_leases_and_nats() {
    let mut c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let shared = [("ipv4.method", "shared"), ("ipv6.method", "disabled"), ("connection.autoconnect", "no")];
    c.ok(&nm_lab::add_ethernet(&eth, "share", &shared)).await;
    c.ok(&["connection", "up", "share"]).await;
    let v4 = inet_lines(&c.ip(&["-4", "addr", "show", "dev", &eth]));
    assert!(v4.len() == 1 && v4[0].contains("10.42.0.1/24"), "{v4:?}");
    let (offered, server) = offer_at_far_end(&c.lab, 0).expect("an offer from the shared device");
    assert_eq!(server, std::net::Ipv4Addr::new(10, 42, 0, 1));
    assert!(offered.octets()[..3] == [10, 42, 0] && offered.octets()[3] >= 10, "{offered}");
    let netns = c.lab.client_netns().to_string();
    let forward = std::process::Command::new("ip")
        .args(["netns", "exec", &netns, "cat", "/proc/sys/net/ipv4/ip_forward"])
        .output()
        .expect("cat");
    assert_eq!(String::from_utf8_lossy(&forward.stdout).trim(), "1");
    let table = format!("nm-shared-{eth}");
    let nft = |args: &[&str]| {
        std::process::Command::new("ip").args(["netns", "exec", &netns, "nft"]).args(args).output().expect("nft")
    };
    let rules = nft(&["list", "table", "ip", &table]);
    let rules = String::from_utf8_lossy(&rules.stdout).into_owned();
    assert!(rules.contains("ip saddr 10.42.0.0/24 ip daddr != 10.42.0.0/24 masquerade"), "{rules}");
    // A restart of nm-core shares the device again as it was.
    c.restart_core().await;
    c.until("nm-core's start-up", |c| c.log().contains("start-up complete")).await;
    let v4 = inet_lines(&c.ip(&["-4", "addr", "show", "dev", &eth]));
    assert!(v4.len() == 1 && v4[0].contains("10.42.0.1/24"), "{v4:?}");
    let (_, server) = offer_at_far_end(&c.lab, 0).expect("an offer after the restart");
    assert_eq!(server, std::net::Ipv4Addr::new(10, 42, 0, 1));
    let pid_file = c.lab.root_path(format!("/run/nm-dnsmasq-{eth}.pid"));
    let pid: u32 = std::fs::read_to_string(&pid_file).expect("dnsmasq's pid file").trim().parse().expect("a pid");
    assert!(nm_lab::pid_running(pid), "dnsmasq runs");
    c.ok(&["connection", "down", "share"]).await;
    assert!(!nft(&["list", "table", "ip", &table]).status.success(), "the table goes at down");
    assert!(inet_lines(&c.ip(&["-4", "addr", "show", "dev", &eth])).is_empty());
    assert!(!nm_lab::pid_running(pid), "dnsmasq is gone");
}

/// A stand-in for systemd-resolved: records what it is told, per call.
struct FakeResolved {
    calls: tokio::sync::mpsc::UnboundedSender<String>,
}

#[zbus::interface(name = "org.freedesktop.resolve1.Manager")]
impl FakeResolved {
    #[zbus(name = "SetLinkDNS")]
    fn set_link_dns(&self, ifindex: i32, servers: Vec<(i32, Vec<u8>)>) {
        let _ = self.calls.send(format!("dns {ifindex} {servers:?}"));
    }
    fn set_link_domains(&self, ifindex: i32, domains: Vec<(String, bool)>) {
        let _ = self.calls.send(format!("domains {ifindex} {domains:?}"));
    }
    fn set_link_default_route(&self, ifindex: i32, default_route: bool) {
        let _ = self.calls.send(format!("default-route {ifindex} {default_route}"));
    }
    fn revert_link(&self, ifindex: i32) {
        let _ = self.calls.send(format!("revert {ifindex}"));
    }
}

/// With /etc/resolv.conf leading to systemd-resolved's stub, DNS goes to
/// resolved per link, as NetworkManager does by itself then: servers of
/// both families, search and routing-only domains, the default-route flag;
/// the link reverted at down; the stub untouched, DnsManager.Mode says so.
#[tokio::test]
async fn dns_goes_to_systemd_resolved_when_resolv_conf_is_its() {
    let policy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bus-policy");
    let lab = Lab::builder().uplinks(1).dnsmasq(false).policy_dir(policy).build().expect("lab");
    let resolv = lab.root_path("/etc/resolv.conf");
    let _ = std::fs::remove_file(&resolv);
    std::os::unix::fs::symlink("../run/systemd/resolve/stub-resolv.conf", &resolv).expect("the stub symlink");
    let (tx, mut calls) = tokio::sync::mpsc::unbounded_channel();
    let _resolved = zbus::connection::Builder::address(lab.bus_address())
        .serve_at("/org/freedesktop/resolve1", FakeResolved { calls: tx })
        .name("org.freedesktop.resolve1")
        .build()
        .await
        .expect("the fake resolved owns its name");
    let c = Core::start_on(lab, "").await;
    let eth = c.uplink(0);
    let link = c.ip(&["-o", "link", "show", "dev", &eth]).split(':').next().unwrap_or_default().to_string();
    let props = [
        ("ipv4.method", "manual"),
        ("ipv4.addresses", "192.0.2.90/24"),
        ("ipv4.gateway", "192.0.2.1"),
        ("ipv4.dns", "192.0.2.53"),
        ("ipv4.dns-search", "lab.test,~corp.test"),
        ("ipv6.method", "manual"),
        ("ipv6.addresses", "2001:db8::90/64"),
        ("ipv6.dns", "2001:db8::53"),
        ("connection.autoconnect", "no"),
    ];
    c.ok(&nm_lab::add_ethernet(&eth, "resolved", &props)).await;
    c.ok(&["connection", "up", "resolved"]).await;
    let mut next = async || tokio::time::timeout(STEP, calls.recv()).await.expect("a call").expect("call");
    assert_eq!(
        next().await,
        format!("dns {link} [(2, [192, 0, 2, 53]), (10, [32, 1, 13, 184, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 83])]")
    );
    assert_eq!(next().await, format!("domains {link} [(\"lab.test\", false), (\"corp.test\", true)]"));
    assert_eq!(next().await, format!("default-route {link} true"));
    c.ok(&["connection", "down", "resolved"]).await;
    assert_eq!(next().await, format!("revert {link}"));
    assert!(std::fs::symlink_metadata(&resolv).expect("resolv.conf").file_type().is_symlink(), "the stub stays");
    let manager =
        c.proxy("/org/freedesktop/NetworkManager/DnsManager", "org.freedesktop.NetworkManager.DnsManager").await;
    assert_eq!(manager.get_property::<String>("Mode").await.expect("Mode"), "systemd-resolved");
}

/// A stand-in for systemd-logind: hands out sleep delay locks, each the
/// write end of a pipe whose read end (sent to the test) reads end-of-file
/// once nm-core lets the lock go.
struct FakeLogind {
    locks: tokio::sync::mpsc::UnboundedSender<std::io::PipeReader>,
}

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl FakeLogind {
    fn inhibit(&self, what: String, who: String, why: String, mode: String) -> zbus::fdo::Result<zbus::OwnedFd> {
        assert_eq!((what.as_str(), mode.as_str()), ("sleep", "delay"), "{who}: {why}");
        let (reader, writer) = std::io::pipe().map_err(|e| zbus::fdo::Error::Failed(e.to_string()))?;
        let _ = self.locks.send(reader);
        Ok(zbus::OwnedFd::from(std::os::fd::OwnedFd::from(writer)))
    }

    #[zbus(signal)]
    async fn prepare_for_sleep(emitter: &zbus::object_server::SignalEmitter<'_>, start: bool) -> zbus::Result<()>;
}

/// Networking off, `Manager.Sleep` and logind's suspend all put nm-core to
/// sleep as NetworkManager goes: activations end, managed devices go down
/// and unmanaged, the state is ASLEEP; waking brings them back by
/// autoconnect. Before a suspend the delay lock goes only once the devices
/// are down.
#[tokio::test]
async fn sleep_and_networking_off_take_the_devices_down_and_waking_brings_them_back() {
    let logind_policy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bus-policy");
    let lab = Lab::builder().uplinks(1).dnsmasq(false).policy_dir(logind_policy).build().expect("lab");
    let c = Core::start_on(lab, "").await;
    let eth = c.uplink(0);
    c.ok(&nm_lab::add_ethernet(&eth, "nap", &[("ipv4.method", "manual"), ("ipv4.addresses", "192.0.2.40/24")])).await;
    c.until_state(&eth, &["connected"]).await;
    let asleep = |c: &Core| {
        let link = c.ip(&["-o", "link", "show", "dev", &eth]);
        inet_lines(&c.ip(&["-4", "addr", "show", "dev", &eth])).is_empty() && !link.contains(",UP")
    };
    let awake =
        |c: &Core| inet_lines(&c.ip(&["-4", "addr", "show", "dev", &eth])).iter().any(|l| l.contains("192.0.2.40/24"));

    c.ok(&["networking", "off"]).await;
    c.until_state(&eth, &["unmanaged"]).await;
    assert!(asleep(&c), "down and without addresses");
    assert_eq!(c.ok(&["-t", "-f", "STATE", "general"]).await.trim(), "asleep");
    let manager = c.proxy("/org/freedesktop/NetworkManager", "org.freedesktop.NetworkManager").await;
    match manager.call::<_, _, ()>("Enable", &(false,)).await {
        Err(zbus::Error::MethodError(name, _, _)) => {
            assert_eq!(name.as_str(), "org.freedesktop.NetworkManager.AlreadyEnabledOrDisabled")
        }
        other => panic!("disabling twice: {other:?}"),
    }
    c.ok(&["networking", "on"]).await;
    c.until_state(&eth, &["connected"]).await;
    c.until("the address back", awake).await;

    // logind comes after nm-core: no lock yet, the first suspend still
    // puts it to sleep; on resume it takes a lock for the next one.
    let (tx, mut locks) = tokio::sync::mpsc::unbounded_channel();
    let logind = zbus::connection::Builder::address(c.lab.bus_address())
        .serve_at("/org/freedesktop/login1", FakeLogind { locks: tx })
        .name("org.freedesktop.login1")
        .build()
        .await
        .expect("the fake logind owns its name");
    let emitter = zbus::object_server::SignalEmitter::new(&logind, "/org/freedesktop/login1").expect("emitter");
    FakeLogind::prepare_for_sleep(&emitter, true).await.expect("signal");
    c.until_state(&eth, &["unmanaged"]).await;
    FakeLogind::prepare_for_sleep(&emitter, false).await.expect("signal");
    let lock = tokio::time::timeout(STEP, locks.recv()).await.expect("a lock on resume").expect("lock");
    c.until_state(&eth, &["connected"]).await;
    c.until("the address back", awake).await;
    FakeLogind::prepare_for_sleep(&emitter, true).await.expect("signal");
    let released = tokio::task::spawn_blocking(move || {
        let mut lock = lock;
        std::io::Read::read(&mut lock, &mut [0u8; 1])
    });
    let read = tokio::time::timeout(STEP, released).await.expect("the lock is let go").expect("reader");
    assert_eq!(read.expect("end of file"), 0);
    assert!(asleep(&c), "everything is down before the lock goes");
    manager.call::<_, _, ()>("Sleep", &(false,)).await.expect("Sleep(false) wakes");
    c.until_state(&eth, &["connected"]).await;
    match manager.call::<_, _, ()>("Sleep", &(false,)).await {
        Err(zbus::Error::MethodError(name, _, _)) => {
            assert_eq!(name.as_str(), "org.freedesktop.NetworkManager.AlreadyAsleepOrAwake")
        }
        other => panic!("waking twice: {other:?}"),
    }
}

#[tokio::test]
async fn the_dispatcher_hears_pre_up_up_pre_down_down() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let (tx, mut calls) = tokio::sync::mpsc::unbounded_channel();
    let _dispatcher = zbus::connection::Builder::address(c.lab.bus_address())
        .serve_at("/org/freedesktop/nm_dispatcher", FakeDispatcher { seen: tx })
        .name("org.freedesktop.nm_dispatcher")
        .build()
        .await
        .expect("the fake dispatcher owns its name");
    let add = static_profile("disp", &eth, "192.0.2.30/24", "192.0.2.1", "192.0.2.53");
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    c.ok(&add).await;
    c.ok(&["connection", "up", "disp"]).await;
    c.ok(&["connection", "down", "disp"]).await;
    // up and down are not waited for by nm-core: wait for their calls here.
    let mut seen = Vec::new();
    while seen.len() < 4 {
        match tokio::time::timeout(STEP, calls.recv()).await {
            // Host-wide actions (connectivity-change, hostname) come too.
            Ok(Some(call)) if call.1.is_empty() => {}
            Ok(Some(call)) => seen.push(call),
            _ => panic!("dispatcher calls so far: {seen:?}"),
        }
    }
    let actions: Vec<&str> = seen.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(actions, ["pre-up", "up", "pre-down", "down"]);
    assert!(seen.iter().all(|(_, i, _)| i == &eth), "{seen:?}");
    assert_eq!(seen[1].2, 1, "up carries the IPv4 address: {seen:?}");
}

#[tokio::test]
async fn ipv6_mtu_cloned_mac_and_never_default_reach_the_kernel() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let mac_of = |c: &Core| {
        let link = c.ip(&["link", "show", "dev", &eth]);
        link.split_whitespace().skip_while(|w| *w != "link/ether").nth(1).unwrap_or_default().to_string()
    };
    let initial = mac_of(&c);
    c.ok(&nm_lab::add_ethernet(
        &eth,
        "v6",
        &[
            ("ipv4.method", "manual"),
            ("ipv4.addresses", "192.0.2.40/24"),
            ("ipv4.gateway", "192.0.2.1"),
            ("ipv4.never-default", "yes"),
            ("ipv6.method", "manual"),
            ("ipv6.addresses", "2001:db8::5/64"),
            ("ipv6.gateway", "2001:db8::1"),
            ("ethernet.mtu", "1400"),
            ("ethernet.cloned-mac-address", "02:00:00:00:00:42"),
            ("connection.autoconnect", "no"),
        ],
    ))
    .await;
    c.ok(&["connection", "up", "v6"]).await;
    let link = c.ip(&["link", "show", "dev", &eth]);
    assert!(link.contains("mtu 1400") && link.contains("link/ether 02:00:00:00:00:42"), "{link}");
    let addr6 = c.ip(&["-6", "addr", "show", "dev", &eth]);
    assert!(addr6.contains("2001:db8::5/64"), "{addr6}");
    let routes6 = c.ip(&["-6", "route", "show", "dev", &eth]);
    assert!(routes6.contains("default via 2001:db8::1 proto static metric 100"), "{routes6}");
    assert!(routes6.contains("2001:db8::/64 proto kernel metric 100"), "{routes6}");
    // never-default: the IPv4 address but no IPv4 default route.
    assert!(c.ip(&["-4", "addr", "show", "dev", &eth]).contains("192.0.2.40/24"));
    assert!(!c.ip(&["-4", "route"]).contains("default"), "never-default keeps the default route out");
    let show = c.ok(&["-t", "device", "show", &eth]).await;
    assert!(show.contains("IP6.ADDRESS[1]:2001:db8::5/64"), "{show}");
    assert!(show.contains("IP6.GATEWAY:2001:db8::1"), "{show}");
    // The link-local address shows beside the profile's once it is usable.
    c.until("the link-local address in IP6Config", |c| {
        c.nmcli_now(&["-t", "-f", "IP6.ADDRESS", "device", "show", &eth]).contains("IP6.ADDRESS[2]:fe80::")
    })
    .await;
    // An address added by hand shows beside the profile's, and goes.
    c.ip(&["addr", "add", "192.0.2.99/24", "dev", &eth]);
    let ip4 = |c: &Core| c.nmcli_now(&["-t", "-f", "IP4.ADDRESS", "device", "show", &eth]);
    c.until("the hand-made address in IP4Config", |c| ip4(c).contains("IP4.ADDRESS[2]:192.0.2.99/24")).await;
    c.ip(&["addr", "del", "192.0.2.99/24", "dev", &eth]);
    c.until("the hand-made address gone from IP4Config", |c| !ip4(c).contains("192.0.2.99")).await;
    assert!(ip4(&c).contains("IP4.ADDRESS[1]:192.0.2.40/24"), "the profile's stays");

    // ipv6.method disabled switches IPv6 off on the link, and back on at down.
    c.ok(&["connection", "modify", "v6", "ipv6.method", "disabled", "ipv6.addresses", "", "ipv6.gateway", ""]).await;
    c.ok(&["connection", "up", "v6"]).await;
    let sysctl = format!("/proc/sys/net/ipv6/conf/{eth}/disable_ipv6");
    let read = |c: &Core| {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", c.lab.client_netns(), "cat", &sysctl])
            .output()
            .expect("cat");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(read(&c), "1");
    c.ok(&["connection", "down", "v6"]).await;
    assert_eq!(read(&c), "0");
    assert_eq!(mac_of(&c), initial, "the device's own MAC address is back after down");
    let link = c.ip(&["link", "show", "dev", &eth]);
    assert!(link.contains("mtu 1500"), "the MTU it had is back after down: {link}");

    // random: a new locally administered address at each activation;
    // stable: the same one each time; both go at down.
    let local = |m: &str| u8::from_str_radix(&m[..2], 16).is_ok_and(|b| b & 0x03 == 0x02);
    c.ok(&["connection", "modify", "v6", "ethernet.cloned-mac-address", "random"]).await;
    c.ok(&["connection", "up", "v6"]).await;
    let first = mac_of(&c);
    c.ok(&["connection", "up", "v6"]).await;
    let second = mac_of(&c);
    assert!(local(&first) && local(&second) && first != second && first != initial, "{first} {second}");
    c.ok(&["connection", "modify", "v6", "ethernet.cloned-mac-address", "stable"]).await;
    c.ok(&["connection", "up", "v6"]).await;
    let first = mac_of(&c);
    c.ok(&["connection", "down", "v6"]).await;
    assert_eq!(mac_of(&c), initial);
    c.ok(&["connection", "up", "v6"]).await;
    assert!(local(&first) && first != initial && mac_of(&c) == first, "{first} then {}", mac_of(&c));
}

#[tokio::test]
async fn unsaved_profiles_and_temporary_changes_live_in_run() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let etc = c.lab.root_path("/etc/NetworkManager/system-connections");
    let run = c.lab.root_path("/run/NetworkManager/system-connections");
    c.ok(&["connection", "add", "type", "ethernet", "ifname", &eth, "con-name", "mem", "save", "no"]).await;
    assert!(run.join("mem.nmconnection").exists(), "save no keeps the profile in /run");
    assert!(!etc.join("mem.nmconnection").exists());
    let listed = c.ok(&["-t", "-f", "NAME", "connection", "show"]).await;
    assert!(listed.lines().any(|l| l == "mem"), "{listed}");

    c.ok(&["connection", "add", "type", "ethernet", "ifname", &eth, "con-name", "disk"]).await;
    c.ok(&["connection", "modify", "--temporary", "disk", "connection.autoconnect-priority", "7"]).await;
    let in_run = std::fs::read_to_string(run.join("disk.nmconnection")).expect("a /run copy");
    assert!(in_run.contains("autoconnect-priority=7"), "{in_run}");
    assert!(!std::fs::read_to_string(etc.join("disk.nmconnection")).expect("/etc").contains("autoconnect-priority"));
    assert_eq!(c.ok(&["-g", "connection.autoconnect-priority", "connection", "show", "disk"]).await.trim(), "7");
    // A saved change goes to /etc and the in-memory copy goes away.
    c.ok(&["connection", "modify", "disk", "connection.autoconnect-priority", "9"]).await;
    assert!(!run.join("disk.nmconnection").exists());
    assert!(std::fs::read_to_string(etc.join("disk.nmconnection")).expect("/etc").contains("autoconnect-priority=9"));
}

#[tokio::test]
async fn managed_can_be_switched_and_the_hostname_goes_through_settings() {
    // The lab's uplinks are left unmanaged by configuration, then taken over.
    let c = Core::start(1, "unmanaged = [\"interface-name:nmt*\"]").await;
    let eth = c.uplink(0);
    let devices = c.ok(&["-t", "device", "status"]).await;
    assert_eq!(c.device_state(&devices, &eth), "unmanaged", "{devices}");
    c.ok(&["device", "set", &eth, "managed", "yes"]).await;
    c.until_state(&eth, &["disconnected", "unavailable"]).await;
    c.ok(&["device", "set", &eth, "managed", "no"]).await;
    c.until_state(&eth, &["unmanaged"]).await;

    // With a profile to autoconnect, taking the device over activates it
    // and letting it go ends the activation (objects come and go on the bus
    // while nmcli's property write is answered: it used to hang nm-core);
    // the kernel keeps the configuration, as with NetworkManager.
    c.ok(&nm_lab::add_ethernet(&eth, "auto-on", &[("ipv4.method", "manual"), ("ipv4.addresses", "192.0.2.61/24")]))
        .await;
    c.ok(&["device", "set", &eth, "managed", "yes"]).await;
    c.until_state(&eth, &["connected"]).await;
    c.ok(&["device", "set", &eth, "managed", "no"]).await;
    c.until_state(&eth, &["unmanaged"]).await;
    assert!(c.ip(&["-4", "addr", "show", "dev", &eth]).contains("192.0.2.61/24"), "the kernel keeps it");
    // While unmanaged someone else configures it; taken over again, the
    // device starts clean: only the profile's address.
    c.ip(&["addr", "add", "192.0.2.99/24", "dev", &eth]);
    c.ok(&["device", "set", &eth, "managed", "yes"]).await;
    c.until_state(&eth, &["connected"]).await;
    let v4 = inet_lines(&c.ip(&["-4", "addr", "show", "dev", &eth]));
    assert!(v4.len() == 1 && v4[0].contains("192.0.2.61/24"), "{v4:?}");
    // An address added by hand to an active device goes with the
    // activation, as with NetworkManager: a device that is down has none.
    c.ip(&["addr", "add", "192.0.2.98/24", "dev", &eth]);
    c.ok(&["connection", "down", "auto-on"]).await;
    let v4 = inet_lines(&c.ip(&["-4", "addr", "show", "dev", &eth]));
    assert!(v4.is_empty(), "{v4:?}");
    let v6 = c.ip(&["-6", "addr", "show", "dev", &eth]);
    assert!(v6.contains("inet6 fe80::"), "the link-local address stays: {v6}");

    // The radio switches are kept and reported, with no radio hardware.
    c.ok(&["radio", "wifi", "off"]).await;
    assert_eq!(c.ok(&["radio", "wifi"]).await.trim(), "disabled");
    c.ok(&["radio", "wifi", "on"]).await;
    assert_eq!(c.ok(&["radio", "wifi"]).await.trim(), "enabled");

    c.ok(&["general", "hostname", "lab-host"]).await;
    assert_eq!(std::fs::read_to_string(c.lab.root_path("/etc/hostname")).expect("hostname file"), "lab-host\n");
    assert_eq!(c.ok(&["general", "hostname"]).await.trim(), "lab-host");
    // An empty name clears the static hostname (the file goes).
    c.ok(&["general", "hostname", ""]).await;
    assert!(!c.lab.root_path("/etc/hostname").exists());
    let out = c.nmcli(&["general", "hostname", "bad_name!"]).await;
    assert!(!out.success() && out.stderr.contains("not a valid hostname"), "{}", out.stderr);
}

/// NetworkManager's auto-default: a managed ethernet device that no profile
/// may use gets "Wired connection 1" (in memory, DHCP, the lowest priority,
/// flagged NM_GENERATED), a device with a profile of its own gets none, and
/// deleting it records the device, so that a restart makes no other.
#[tokio::test]
async fn a_device_without_a_profile_gets_wired_connection_1_until_the_user_deletes_it() {
    let lab = Lab::builder().uplinks(2).dnsmasq(false).build().expect("lab");
    let own = lab.uplinks()[1].client_if.clone();
    let text = format!(
        "[connection]\nid=own\nuuid=6f776e00-0000-4000-8000-000000000001\ntype=ethernet\ninterface-name={own}\n\
         autoconnect=false\n\n[ipv4]\nmethod=disabled\n\n[ipv6]\nmethod=disabled\n"
    );
    lab.write_profile("own.nmconnection", &text).expect("profile");
    let mut c = Core::start_on(lab, "no-auto-default = []").await;
    let eth = c.uplink(0);
    let deadline = Instant::now() + STEP;
    let listed = loop {
        let out = c.ok(&["-t", "-f", "NAME,FILENAME,DBUS-PATH", "connection", "show"]).await;
        if out.contains("Wired connection 1") {
            break out;
        }
        assert!(Instant::now() < deadline, "no auto-default profile: {out}\n{}", nm_lab::tail(&c.log(), 40));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!listed.contains("Wired connection 2"), "none for the device with a profile: {listed}");
    let line = listed.lines().find(|l| l.starts_with("Wired connection 1:")).expect("its line");
    assert!(line.contains("/run/NetworkManager/system-connections/"), "in memory only: {line}");
    let props = ["connection.interface-name", "connection.autoconnect-priority", "ipv4.method", "ipv6.method"];
    let got = c.ok(&["-g", &props.join(","), "connection", "show", "Wired connection 1"]).await;
    assert_eq!(got.lines().collect::<Vec<_>>(), [eth.as_str(), "-999", "auto", "auto"]);
    let path = line.rsplit(':').next().expect("its path");
    let settings = c.proxy(path, "org.freedesktop.NetworkManager.Settings.Connection").await;
    assert_eq!(settings.get_property::<u32>("Flags").await.expect("Flags"), 0x1 | 0x2, "UNSAVED | NM_GENERATED");

    c.ok(&["connection", "delete", "Wired connection 1"]).await;
    let state = std::fs::read_to_string(c.lab.root_path("/var/lib/NetworkManager/no-auto-default.state"))
        .expect("the state file");
    assert!(state.lines().any(|l| l == format!("interface-name:={eth}")), "{state}");
    c.restart_core().await;
    let online =
        c.lab.command("nm-online").args(["-s", "-q", "-t", "10"]).timeout(STEP).output().await.expect("nm-online");
    assert!(online.success(), "nm-online -s: {:?} {}", online.status, online.stderr);
    let after = c.ok(&["-t", "-f", "NAME", "connection", "show"]).await;
    assert_eq!(after.trim(), "own", "no other auto-default after the user deleted it");
}

/// A profile's `match` setting (NetworkManager's) decides which devices it
/// may use when it names no interface: autoconnect puts it only where its
/// patterns hold, `up` on another device is refused, and `match.driver`
/// and `match.kernel-command-line` narrow as they say.
#[tokio::test]
async fn the_match_setting_decides_where_a_profile_goes() {
    let c = Core::start(2, "").await;
    let (c0, c1) = (c.uplink(0), c.uplink(1));
    let base = ["ipv6.method", "disabled", "connection.interface-name", ""];
    let add = |name: &'static str, addr: &'static str, more: Vec<String>| {
        let mut args: Vec<String> = ["connection", "add", "type", "ethernet", "con-name", name]
            .into_iter()
            .chain(["ipv4.method", "manual", "ipv4.addresses", addr])
            .chain(base)
            .map(String::from)
            .collect();
        args.extend(more);
        args
    };
    // Only c1 fits: the first device in every other order, c0, must not
    // get it.
    let only_c1 = add("m1", "10.61.0.1/24", vec!["match.interface-name".into(), format!("nmt* !{c0}")]);
    c.ok(&only_c1.iter().map(String::as_str).collect::<Vec<_>>()).await;
    c.until("m1's address on c1", |c| c.ip(&["-4", "-o", "addr", "show", "dev", &c1]).contains("10.61.0.1/24")).await;
    assert!(!c.ip(&["-4", "-o", "addr", "show", "dev", &c0]).contains("10.61.0.1"), "m1 stays off c0");
    let got = c.ok(&["-g", "match.interface-name", "connection", "show", "m1"]).await;
    assert_eq!(got.trim(), format!("nmt*,!{c0}"), "nmcli reads the list back");
    let refused = c.nmcli(&["connection", "up", "m1", "ifname", &c0]).await;
    assert!(!refused.success() && refused.stderr.contains("not compatible"), "{refused:?}");
    assert!(!c.ip(&["-4", "-o", "addr", "show", "dev", &c0]).contains("10.61.0.1"), "nothing changed on c0");

    // The driver fits (the lab's uplinks are veths), the name only c0.
    let by_driver = add(
        "m2",
        "10.62.0.1/24",
        vec!["match.driver".into(), "veth".into(), "match.interface-name".into(), format!("!{c1}")],
    );
    let mut args: Vec<&str> = by_driver.iter().map(String::as_str).collect();
    args.extend(["connection.autoconnect", "no"]);
    c.ok(&args).await;
    c.ok(&["connection", "up", "m2"]).await;
    assert!(c.ip(&["-4", "-o", "addr", "show", "dev", &c0]).contains("10.62.0.1/24"), "m2 went to c0");
    c.ok(&["connection", "down", "m2"]).await;
    c.ok(&["connection", "modify", "m2", "match.driver", "e1000e"]).await;
    let no_driver = c.nmcli(&["connection", "up", "m2", "ifname", &c0]).await;
    assert!(!no_driver.success(), "no device has the driver e1000e: {no_driver:?}");

    // A word the kernel was not booted with.
    c.ok(&["connection", "modify", "m2", "match.driver", "", "match.kernel-command-line", "nm-rs.no-such-word"]).await;
    let no_word = c.nmcli(&["connection", "up", "m2", "ifname", &c0]).await;
    assert!(!no_word.success(), "the command line lacks the word: {no_word:?}");
    c.ok(&["connection", "modify", "m2", "match.kernel-command-line", "!nm-rs.no-such-word"]).await;
    c.ok(&["connection", "up", "m2", "ifname", &c0]).await;
    assert!(c.ip(&["-4", "-o", "addr", "show", "dev", &c0]).contains("10.62.0.1/24"), "m2 on c0 again");
}

/// `connection.multi-connect multiple`: one profile active on both devices
/// at once (autoconnect puts it on each), `down` ends both; `single` (the
/// default) moves it from one device to the other.
#[tokio::test]
async fn multi_connect_lets_one_profile_run_on_two_devices() {
    let mut c = Core::start(2, "").await;
    let (c0, c1) = (c.uplink(0), c.uplink(1));
    let has = |c: &Core, dev: &str| c.ip(&["-4", "-o", "addr", "show", "dev", dev]).contains("10.91.0.1/24");
    c.ok(&[
        "connection",
        "add",
        "type",
        "ethernet",
        "con-name",
        "mc",
        "connection.interface-name",
        "",
        "connection.multi-connect",
        "multiple",
        "ipv4.method",
        "manual",
        "ipv4.addresses",
        "10.91.0.1/24",
        "ipv6.method",
        "disabled",
    ])
    .await;
    c.until("mc on both devices", |c| has(c, &c0) && has(c, &c1)).await;
    let active = c.ok(&["-t", "-f", "NAME,DEVICE", "connection", "show", "--active"]).await;
    assert_eq!(sorted(&active), sorted(&format!("mc:{c0}\nmc:{c1}\n")), "two activations of one profile");
    // A restart of nm-core takes both back.
    c.restart_core().await;
    let online =
        c.lab.command("nm-online").args(["-s", "-q", "-t", "10"]).timeout(STEP).output().await.expect("nm-online");
    assert!(online.success(), "nm-online -s: {online:?}");
    let active = c.ok(&["-t", "-f", "NAME,DEVICE", "connection", "show", "--active"]).await;
    assert_eq!(sorted(&active), sorted(&format!("mc:{c0}\nmc:{c1}\n")), "both taken back");
    assert!(has(&c, &c0) && has(&c, &c1), "nothing taken down");

    c.ok(&["connection", "down", "mc"]).await;
    c.until("mc gone from both", |c| !has(c, &c0) && !has(c, &c1)).await;

    c.ok(&["connection", "modify", "mc", "connection.multi-connect", "single"]).await;
    c.ok(&["connection", "up", "mc", "ifname", &c0]).await;
    c.ok(&["connection", "up", "mc", "ifname", &c1]).await;
    assert!(has(&c, &c1) && !has(&c, &c0), "a single-connect profile moved to c1");
    let active = c.ok(&["-t", "-f", "NAME,DEVICE", "connection", "show", "--active"]).await;
    assert_eq!(active.trim(), format!("mc:{c1}"));
}

/// An unmanaged device shows in IP4Config/IP6Config what the kernel has
/// on it, as NetworkManager shows `lo` or a container's bridge: nothing is
/// set, and what someone adds later shows too.
#[tokio::test]
async fn unmanaged_devices_show_the_kernels_addresses_and_routes() {
    let c = Core::start(1, "").await;
    let lo = c.ok(&["-t", "-f", "GENERAL.STATE,IP4.ADDRESS,IP6.ADDRESS", "device", "show", "lo"]).await;
    assert_eq!(lo, "GENERAL.STATE:10 (unmanaged)\nIP4.ADDRESS[1]:127.0.0.1/8\nIP6.ADDRESS[1]:::1/128\n");

    let br = format!("{}br", c.lab.names().base());
    c.ip(&["link", "add", &br, "type", "bridge"]);
    c.ip(&["addr", "add", "10.66.0.1/24", "dev", &br]);
    c.ip(&["link", "set", &br, "up"]);
    let show = |c: &Core| c.nmcli_now(&["-t", "-f", "IP4.ADDRESS,IP4.GATEWAY,IP4.ROUTE", "device", "show", &br]);
    c.until("the bridge's address shown", |c| show(c).contains("IP4.ADDRESS[1]:10.66.0.1/24")).await;
    c.ip(&["route", "add", "default", "via", "10.66.0.254", "dev", &br, "metric", "500"]);
    c.ip(&["addr", "add", "10.66.1.1/24", "dev", &br]);
    c.until("the second address and the gateway shown", |c| {
        let s = show(c);
        s.contains("IP4.ADDRESS[2]:10.66.1.1/24") && s.contains("IP4.GATEWAY:10.66.0.254")
    })
    .await;
    let routes = show(&c);
    assert!(routes.contains("dst = 0.0.0.0/0, nh = 10.66.0.254, mt = 500"), "{routes}");
    let state = c.ok(&["-t", "-f", "GENERAL.STATE", "device", "show", &br]).await;
    assert_eq!(state.trim(), "GENERAL.STATE:10 (unmanaged)", "shown, not taken");
    let kernel = c.ip(&["-4", "-o", "addr", "show", "dev", &br]);
    assert!(kernel.contains("10.66.0.1/24") && kernel.contains("10.66.1.1/24"), "nothing removed: {kernel}");
    c.ip(&["addr", "del", "10.66.1.1/24", "dev", &br]);
    c.until("the removed address gone", |c| !show(c).contains("10.66.1.1")).await;
    c.ip(&["link", "del", &br]);
}

/// Addresses someone else puts on an idle managed device show as
/// "connected (externally)": an in-memory profile named after the device
/// (flagged external), nothing changed in the kernel. When they go, the
/// activation and its profile go; a profile the user brings up replaces it.
#[tokio::test]
async fn addresses_made_by_someone_else_show_as_connected_externally() {
    let mut c = Core::start(1, "").await;
    let eth = c.uplink(0);
    c.until_state(&eth, &["disconnected"]).await;
    // (The route right after the address, as tools add them.)
    c.ip(&["addr", "add", "192.0.2.99/24", "dev", &eth]);
    c.ip(&["route", "add", "default", "via", "192.0.2.1", "dev", &eth, "metric", "700"]);
    c.until_state(&eth, &["connected (externally)"]).await;
    let shown = c.ok(&["-t", "-f", "GENERAL.CONNECTION,IP4.ADDRESS,IP4.GATEWAY", "device", "show", &eth]).await;
    assert_eq!(shown, format!("GENERAL.CONNECTION:{eth}\nIP4.ADDRESS[1]:192.0.2.99/24\nIP4.GATEWAY:192.0.2.1\n"));
    let routes = c.ok(&["-t", "-f", "IP4.ROUTE", "device", "show", &eth]).await;
    assert!(routes.contains("dst = 0.0.0.0/0, nh = 192.0.2.1, mt = 700"), "the kernel's routes as they are: {routes}");
    let listed = c.ok(&["-t", "-f", "NAME,DBUS-PATH", "connection", "show"]).await;
    let path = listed.lines().find_map(|l| l.strip_prefix(&format!("{eth}:"))).expect("its profile");
    let settings = c.proxy(path, "org.freedesktop.NetworkManager.Settings.Connection").await;
    let flags = settings.get_property::<u32>("Flags").await.expect("Flags");
    assert_eq!(flags, 0x1 | 0x2 | 0x4 | 0x8, "UNSAVED | NM_GENERATED | VOLATILE | EXTERNAL");
    // Nothing was touched: the kernel's own prefix route, no flags added.
    let addr = c.ip(&["-4", "addr", "show", "dev", &eth]);
    assert!(addr.contains("192.0.2.99/24") && !addr.contains("noprefixroute"), "{addr}");
    assert!(c.ip(&["-4", "route", "show", "dev", &eth]).contains("192.0.2.0/24 proto kernel"));

    c.ip(&["addr", "del", "192.0.2.99/24", "dev", &eth]);
    c.until_state(&eth, &["disconnected"]).await;
    let deadline = Instant::now() + STEP;
    while c.ok(&["-t", "-f", "NAME", "connection", "show"]).await.contains(&eth) {
        assert!(Instant::now() < deadline, "the external profile stays");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    c.ip(&["addr", "add", "192.0.2.98/24", "dev", &eth]);
    c.until_state(&eth, &["connected (externally)"]).await;
    // A restart finds it again from the kernel, with the same profile.
    c.restart_core().await;
    c.until_state(&eth, &["connected (externally)"]).await;
    assert_eq!(c.ok(&["-t", "-f", "NAME", "connection", "show"]).await, format!("{eth}\n"), "one profile");
    let own = [("ipv4.method", "manual"), ("ipv4.addresses", "192.0.2.97/24"), ("connection.autoconnect", "no")];
    c.ok(&nm_lab::add_ethernet(&eth, "own", &own)).await;
    c.ok(&["connection", "up", "own"]).await;
    let addr = c.ip(&["-4", "addr", "show", "dev", &eth]);
    assert!(addr.contains("192.0.2.97/24") && !addr.contains("192.0.2.98"), "{addr}");
    assert_eq!(c.ok(&["-t", "-f", "NAME", "connection", "show"]).await, "own\n", "the external profile went");
}

/// A device the user let go stays unmanaged across a restart of nm-core
/// (NetworkManager's `managed=false` record under /run), with what the
/// kernel has; taken back, it autoconnects again.
#[tokio::test]
async fn a_device_let_go_stays_unmanaged_across_a_restart() {
    let mut c = Core::start(1, "").await;
    let eth = c.uplink(0);
    c.ok(&nm_lab::add_ethernet(&eth, "kept", &[("ipv4.method", "manual"), ("ipv4.addresses", "192.0.2.66/24")])).await;
    c.until_state(&eth, &["connected"]).await;
    c.ok(&["device", "set", &eth, "managed", "no"]).await;
    c.until_state(&eth, &["unmanaged"]).await;
    c.restart_core().await;
    c.until("nm-core's start-up", |c| c.log().contains("start-up complete")).await;
    let devices = c.ok(&["-t", "device", "status"]).await;
    assert_eq!(c.device_state(&devices, &eth), "unmanaged", "{devices}");
    assert!(inet_lines(&c.ip(&["-4", "addr", "show", "dev", &eth])).iter().any(|l| l.contains("192.0.2.66/24")));
    c.ok(&["device", "set", &eth, "managed", "yes"]).await;
    c.until_state(&eth, &["connected"]).await;
}

#[tokio::test]
async fn reapply_changes_a_running_activation_without_taking_it_down() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let add = static_profile("live", &eth, "192.0.2.50/24", "192.0.2.1", "192.0.2.53");
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    c.ok(&add).await;
    c.ok(&["connection", "up", "live"]).await;
    c.ok(&["connection", "modify", "live", "ipv4.addresses", "192.0.2.50/24,192.0.2.51/24", "ipv4.dns", "192.0.2.99"])
        .await;
    c.ok(&["device", "reapply", &eth]).await;
    let addr = c.ip(&["-4", "addr", "show", "dev", &eth]);
    assert!(addr.contains("192.0.2.50/24") && addr.contains("192.0.2.51/24"), "{addr}");
    assert!(c.resolv().contains("nameserver 192.0.2.99"), "{}", c.resolv());
    // device modify changes the applied settings only.
    c.ok(&["device", "modify", &eth, "ipv4.addresses", "192.0.2.52/24"]).await;
    let addr = c.ip(&["-4", "addr", "show", "dev", &eth]);
    assert!(addr.contains("192.0.2.52/24") && !addr.contains("192.0.2.50/24"), "{addr}");
    assert!(c.ip(&["-4", "route"]).contains("default via 192.0.2.1"), "the default route stays");
    let devices = c.ok(&["-t", "device", "status"]).await;
    assert_eq!(c.device_state(&devices, &eth), "connected", "{devices}");

    // A route the kernel refuses (its gateway on no link) is left out with
    // a warning, as NetworkManager leaves it; the rest of the change holds.
    let out = c
        .nmcli(&[
            "device",
            "modify",
            &eth,
            "ipv4.addresses",
            "192.0.2.53/24",
            "ipv4.routes",
            "198.51.100.0/24 203.0.113.1",
        ])
        .await;
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    let addr = c.ip(&["-4", "addr", "show", "dev", &eth]);
    assert!(addr.contains("192.0.2.53/24") && !addr.contains("192.0.2.52/24"), "{addr}");
    let routes = c.ip(&["-4", "route"]);
    assert!(!routes.contains("198.51.100.0/24") && routes.contains("default via 192.0.2.1"), "{routes}");
    assert!(c.log().contains("route 198.51.100.0/24 left out"), "{}", c.log());
    let devices = c.ok(&["-t", "device", "status"]).await;
    assert_eq!(c.device_state(&devices, &eth), "connected", "{devices}");

    // So does an activation: the profile's own route is left out, not the profile.
    c.ok(&["connection", "modify", "live", "+ipv4.routes", "198.51.100.0/24 203.0.113.1"]).await;
    c.ok(&["connection", "up", "live"]).await;
    let addr = c.ip(&["-4", "addr", "show", "dev", &eth]);
    assert!(addr.contains("192.0.2.50/24") && addr.contains("192.0.2.51/24"), "{addr}");
}

/// Route attributes of `ipvX.routes` reach the kernel: `onlink` (a
/// gateway outside every subnet of the link), `src`, the TCP metrics and
/// their locks, and the typed routes (`blackhole`, `unreachable`), which
/// the kernel takes without a device; all go with the deactivation. (A
/// route type NetworkManager does not know nmcli refuses itself; the
/// daemons' check is `validate.rs`'s.)
#[tokio::test]
async fn route_attributes_reach_the_kernel() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let routes = "10.60.0.0/16 203.0.113.1 10 onlink=true, 10.61.0.0/16 192.0.2.1 src=192.0.2.20 initcwnd=20 window=65535 mtu=1300 lock-mtu=true, 10.62.0.0/16 type=blackhole, 10.63.0.0/16 type=unreachable";
    c.ok(&nm_lab::add_ethernet(
        &eth,
        "attrs",
        &[
            ("ipv4.method", "manual"),
            ("ipv4.addresses", "192.0.2.20/24"),
            ("ipv4.routes", routes),
            ("ipv6.method", "disabled"),
            ("connection.autoconnect", "no"),
        ],
    ))
    .await;
    c.ok(&["connection", "up", "attrs"]).await;
    // (Its activation says layer 2 and IPv4 are ready; IPv6 is off.)
    let dev_path = c.ok(&["-g", "GENERAL.DBUS-PATH", "device", "show", &eth]).await;
    let device = c.proxy(dev_path.trim(), "org.freedesktop.NetworkManager.Device").await;
    let active: zbus::OwnedObjectPath = device.get_property("ActiveConnection").await.expect("ActiveConnection");
    let active = c.proxy(active.as_str(), "org.freedesktop.NetworkManager.Connection.Active").await;
    assert_eq!(active.get_property::<u32>("StateFlags").await.expect("StateFlags"), 0x4 | 0x8);
    let table = c.ip(&["-4", "route", "show"]);
    assert!(
        table.contains(&format!("10.60.0.0/16 via 203.0.113.1 dev {eth} proto static metric 10 onlink")),
        "{table}"
    );
    let tcp = table.lines().find(|l| l.starts_with("10.61.0.0/16")).unwrap_or_default();
    assert!(tcp.contains("src 192.0.2.20") && tcp.contains("mtu lock 1300"), "{table}");
    assert!(tcp.contains("window 65535") && tcp.contains("initcwnd 20"), "{table}");
    assert!(table.contains("blackhole 10.62.0.0/16 proto static"), "{table}");
    assert!(table.contains("unreachable 10.63.0.0/16 proto static"), "{table}");
    c.ok(&["connection", "down", "attrs"]).await;
    let table = c.ip(&["-4", "route", "show"]);
    assert!(!["10.60.", "10.61.", "10.62.", "10.63."].iter().any(|r| table.contains(r)), "{table}");

    let out = c.nmcli(&["connection", "modify", "attrs", "ipv4.routes", "10.64.0.0/16 type=wormhole"]).await;
    assert!(!out.success() && out.stderr.contains("wormhole is not a valid route type"), "{}", out.stderr);
}

/// `ipvX.routing-rules` reach the kernel's rule list with the activation,
/// follow a reapply and go with the deactivation; other rules stay.
#[tokio::test]
async fn routing_rules_come_and_go_with_the_activation() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    c.ok(&nm_lab::add_ethernet(
        &eth,
        "ruled",
        &[
            ("ipv4.method", "manual"),
            ("ipv4.addresses", "192.0.2.10/24"),
            (
                "ipv4.routing-rules",
                "priority 5 from 192.0.2.10 table 100, priority 6 to 198.51.100.0/24 type blackhole",
            ),
            ("ipv6.method", "manual"),
            ("ipv6.addresses", "2001:db8::10/64"),
            ("ipv6.routing-rules", "priority 7 from 2001:db8::/64 table 200"),
            ("connection.autoconnect", "no"),
        ],
    ))
    .await;
    let rules = |c: &Core, v: &str| c.ip(&[v, "rule", "show"]);
    let foreign = rules(&c, "-4");
    c.ok(&["connection", "up", "ruled"]).await;
    let v4 = rules(&c, "-4");
    assert!(v4.contains("5:\tfrom 192.0.2.10 lookup 100 proto static"), "{v4}");
    assert!(v4.contains("6:\tfrom all to 198.51.100.0/24 blackhole proto static"), "{v4}");
    let v6 = rules(&c, "-6");
    assert!(v6.contains("7:\tfrom 2001:db8::/64 lookup 200 proto static"), "{v6}");

    c.ok(&["device", "modify", &eth, "ipv4.routing-rules", "priority 8 from 192.0.2.10 table 101"]).await;
    let v4 = rules(&c, "-4");
    assert!(v4.contains("8:\tfrom 192.0.2.10 lookup 101 proto static"), "{v4}");
    assert!(!v4.lines().any(|l| l.starts_with("5:") || l.starts_with("6:")), "the old rules go: {v4}");

    c.ok(&["connection", "down", "ruled"]).await;
    assert_eq!(rules(&c, "-4"), foreign, "only the kernel's own rules are left");
    assert!(!rules(&c, "-6").contains("lookup 200"), "{}", rules(&c, "-6"));
}

/// A bridge profile and a port: `connection up` of the port brings the
/// bridge up first (made in the kernel with the profile's settings), the
/// uplink becomes its port and traffic flows through it; `connection down`
/// of the bridge takes the port down first and deletes the bridge.
#[tokio::test]
async fn a_bridge_comes_with_its_port_and_goes_with_its_profile() {
    let mut c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let br = format!("{}br", &eth[..eth.len() - 2]);
    c.ok(&[
        "connection",
        "add",
        "type",
        "bridge",
        "ifname",
        &br,
        "con-name",
        "br-lab",
        "autoconnect",
        "no",
        "bridge.stp",
        "no",
        "ipv4.method",
        "manual",
        "ipv4.addresses",
        "198.18.0.77/24",
        "ipv6.method",
        "disabled",
    ])
    .await;
    c.ok(&[
        "connection",
        "add",
        "type",
        "bridge-slave",
        "ifname",
        &eth,
        "master",
        &br,
        "con-name",
        "br-port",
        "autoconnect",
        "no",
    ])
    .await;
    // A port of a bridge that is neither a profile nor a link is refused
    // in words (not an activation that vanishes before nmcli sees it).
    let orphan = ["connection", "add", "type", "bridge-slave", "ifname", &eth, "master", "nobr0", "con-name", "orphan"];
    c.ok(&[&orphan[..], &["autoconnect", "no"]].concat()).await;
    let out = c.nmcli(&["connection", "up", "orphan"]).await;
    assert!(!out.success(), "{}", out.stdout);
    assert!(out.stderr.contains("Master connection not found or invalid"), "{}", out.stderr);
    c.ok(&["connection", "up", "br-port"]).await;
    let link = c.ip(&["-d", "link", "show", "dev", &br]);
    assert!(link.contains("bridge forward_delay") && link.contains("stp_state 0"), "{link}");
    assert!(c.ip(&["link", "show", "dev", &eth]).contains(&format!("master {br}")), "the uplink is a port");
    assert!(c.ip(&["-4", "addr", "show", "dev", &br]).contains("198.18.0.77/24"));
    let devices = c.ok(&["-t", "-f", "DEVICE,TYPE,STATE,CONNECTION", "device"]).await;
    assert!(devices.contains(&format!("{br}:bridge:connected:br-lab")), "{devices}");
    assert!(devices.contains(&format!("{eth}:ethernet:connected:br-port")), "{devices}");
    let shown = c.ok(&["-t", "-f", "GENERAL.NM-TYPE,BRIDGE.SLAVES", "device", "show", &br]).await;
    assert_eq!(shown, format!("GENERAL.NM-TYPE:NMDeviceBridge\nBRIDGE.SLAVES:{eth}\n"));
    // Through the bridge to the far end of the uplink (the lab's own
    // namespaces).
    answers_through(&c, "198.18.0.1", &br).await;

    // A restart takes both back as they are.
    c.restart_core().await;
    c.until_state(&br, &["connected"]).await;
    c.until_state(&eth, &["connected"]).await;
    let devices = c.ok(&["-t", "-f", "DEVICE,CONNECTION", "device"]).await;
    assert!(devices.contains(&format!("{br}:br-lab")) && devices.contains(&format!("{eth}:br-port")), "{devices}");
    assert!(c.ip(&["link", "show", "dev", &eth]).contains(&format!("master {br}")));
    assert!(c.ip(&["-4", "addr", "show", "dev", &br]).contains("198.18.0.77/24"));

    c.ok(&["connection", "down", "br-lab"]).await;
    assert!(!c.ip(&["link", "show", "dev", &eth]).contains("master"), "the port is released");
    assert!(c.ip(&["link", "show", "type", "bridge"]).trim().is_empty(), "the bridge is gone");
    let active = c.ok(&["-t", "-f", "NAME", "connection", "show", "--active"]).await;
    assert!(!active.contains("br-lab") && !active.contains("br-port"), "{active}");

    // `device delete` takes a bridge down and away; an uplink is not nm-rs's to delete.
    c.ok(&["connection", "up", "br-lab"]).await;
    c.ok(&["device", "delete", &br]).await;
    assert!(c.ip(&["link", "show", "type", "bridge"]).trim().is_empty(), "the bridge is gone");
    let out = c.nmcli(&["device", "delete", &eth]).await;
    assert!(!out.success() && out.stderr.contains("not a software device"), "{}", out.stderr);
}

/// Every setting of a bridge profile and of its port reaches the kernel
/// (read back with `ip -d link`), on activation and again on `device
/// reapply`; VLAN filtering gives the bridge and the port their VLAN
/// tables where the kernel has it, and fails the activation in words
/// where it does not (this machine's kernel lacks
/// CONFIG_BRIDGE_VLAN_FILTERING), leaving no half-made bridge behind.
#[tokio::test]
async fn a_bridge_and_its_port_get_every_setting_of_their_profiles() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let br = format!("{}bo", &eth[..eth.len() - 2]);
    let bridge_settings = [
        ("bridge.stp", "no"),
        ("bridge.ageing-time", "10"),
        ("bridge.group-forward-mask", "8"),
        ("bridge.multicast-snooping", "no"),
        ("bridge.multicast-router", "enabled"),
        ("bridge.multicast-hash-max", "1024"),
        ("bridge.multicast-query-interval", "2000"),
        ("bridge.priority", "4096"),
        ("ipv4.method", "manual"),
        ("ipv4.addresses", "198.18.0.78/24"),
        ("ipv6.method", "disabled"),
        ("autoconnect", "no"),
    ];
    let mut add = vec!["connection", "add", "type", "bridge", "ifname", &br, "con-name", "br-opts"];
    add.extend(bridge_settings.iter().flat_map(|(k, v)| [*k, *v]));
    c.ok(&add).await;
    c.ok(&[
        "connection",
        "add",
        "type",
        "bridge-slave",
        "ifname",
        &eth,
        "master",
        &br,
        "con-name",
        "br-opts-port",
        "autoconnect",
        "no",
        "bridge-port.path-cost",
        "7",
        "bridge-port.priority",
        "10",
        "bridge-port.hairpin-mode",
        "yes",
    ])
    .await;
    c.ok(&["connection", "up", "br-opts-port"]).await;
    let bridge = c.ip(&["-d", "link", "show", "dev", &br]);
    for want in [
        "stp_state 0 ",
        "priority 4096 ",
        "ageing_time 1000 ",
        "group_fwd_mask 0x8 ",
        "mcast_snooping 0 ",
        "mcast_router 2 ",
        "mcast_hash_max 1024 ",
        "mcast_query_interval 2000 ",
        // What the profile leaves out is NetworkManager's default.
        "forward_delay 1500 ",
        "mcast_membership_interval 26000 ",
    ] {
        assert!(bridge.contains(want), "{want:?} not in {bridge}");
    }
    let port = c.ip(&["-d", "link", "show", "dev", &eth]);
    assert!(port.contains(&format!("master {br}")), "{port}");
    assert!(port.contains("priority 10 cost 7 hairpin on "), "{port}");

    // Changed profiles, reapplied to the running devices.
    c.ok(&["connection", "modify", "br-opts", "bridge.ageing-time", "20", "bridge.multicast-snooping", "yes"]).await;
    c.ok(&["device", "reapply", &br]).await;
    let bridge = c.ip(&["-d", "link", "show", "dev", &br]);
    assert!(bridge.contains("ageing_time 2000 ") && bridge.contains("mcast_snooping 1 "), "{bridge}");
    let modify =
        ["connection", "modify", "br-opts-port", "bridge-port.path-cost", "9", "bridge-port.hairpin-mode", "no"];
    c.ok(&modify).await;
    c.ok(&["device", "reapply", &eth]).await;
    let port = c.ip(&["-d", "link", "show", "dev", &eth]);
    assert!(port.contains("cost 9 hairpin off "), "{port}");

    // VLAN filtering: the bridge's own table and the port's.
    let kernel_filters_vlans = bridge.contains("vlan_protocol");
    c.ok(&["connection", "down", "br-opts"]).await;
    c.ok(&[
        "connection",
        "modify",
        "br-opts",
        "bridge.vlan-filtering",
        "yes",
        "bridge.vlan-default-pvid",
        "5",
        "bridge.vlans",
        "10-12, 20 untagged",
        "connection.autoconnect-slaves",
        "yes",
    ])
    .await;
    c.ok(&["connection", "modify", "br-opts-port", "bridge-port.vlans", "100 untagged, 200"]).await;
    let up = c.nmcli(&["connection", "up", "br-opts"]).await;
    if kernel_filters_vlans {
        assert!(up.success(), "{}{}", up.stdout, up.stderr);
        c.until_state(&eth, &["connected"]).await;
        let vlans = |dev: &str| {
            let out = std::process::Command::new("ip")
                .args(["netns", "exec", c.lab.client_netns(), "bridge", "-c", "vlan", "show", "dev", dev])
                .output()
                .expect("bridge runs");
            String::from_utf8_lossy(&out.stdout).split_whitespace().collect::<Vec<_>>().join(" ")
        };
        let own = vlans(&br);
        assert!(own.contains("5 PVID Egress Untagged 10-12 20 Egress Untagged"), "{own}");
        let port = vlans(&eth);
        assert!(port.contains("5 PVID Egress Untagged 100 Egress Untagged 200"), "{port}");
    } else {
        assert!(!up.success(), "{}", up.stdout);
        assert!(up.stderr.contains("The device could not be readied for configuration"), "{}", up.stderr);
        assert!(c.log().contains("Operation not supported"), "the kernel's refusal is logged");
        c.until("the half-made bridge deleted", |c| c.ip(&["link", "show", "type", "bridge"]).trim().is_empty()).await;
        let port = c.ip(&["link", "show", "dev", &eth]);
        assert!(!port.contains("master"), "the port left it: {port}");
    }
}

/// A profile's `ethtool` setting: stored typed (nmcli shows it back), the
/// offload features set on the device while it is up (read with
/// ethtool(8); `feature-tso` stands for the kernel's four TCP segmentation
/// features), changed by `device reapply`, and the device's own values
/// back when it goes down. A setting the device lacks (ring sizes on a
/// veth) is a warning, not a failure.
#[tokio::test]
async fn ethtool_features_follow_the_profile_and_go_back_afterwards() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let features = |c: &Core| {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", c.lab.client_netns(), "ethtool", "-k", &eth])
            .output()
            .expect("ethtool runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let before = features(&c);
    assert!(before.contains("tx-tcp-segmentation: on") && before.contains("tx-checksum-sctp: on"), "{before}");
    let add = nm_lab::add_ethernet(
        &eth,
        "offload",
        &[
            ("ipv4.method", "manual"),
            ("ipv4.addresses", "198.18.0.79/24"),
            ("ipv6.method", "disabled"),
            ("connection.autoconnect", "no"),
            ("ethtool.feature-tso", "off"),
            ("ethtool.feature-tx-checksum-sctp", "off"),
            ("ethtool.ring-rx", "512"),
        ],
    );
    c.ok(&add).await;
    let shown = c
        .ok(&[
            "-g",
            "ethtool.feature-tso,ethtool.feature-tx-checksum-sctp,ethtool.ring-rx",
            "connection",
            "show",
            "offload",
        ])
        .await;
    assert_eq!(shown.trim(), "off\noff\n512");
    let keyfile =
        std::fs::read_to_string(c.lab.root_path("/etc/NetworkManager/system-connections/offload.nmconnection"))
            .expect("keyfile");
    assert!(
        keyfile.contains("[ethtool]\nfeature-tso=false\nfeature-tx-checksum-sctp=false\nring-rx=512\n"),
        "{keyfile}"
    );

    // A channel count, as a later NetworkManager writes it (nmcli 1.42
    // does not know the option).
    let path = c.lab.root_path("/etc/NetworkManager/system-connections/offload.nmconnection");
    std::fs::write(&path, keyfile.replace("[ethtool]\n", "[ethtool]\nchannels-rx=2\n")).expect("keyfile");
    c.ok(&["connection", "load", path.to_str().expect("a path")]).await;
    c.ok(&["connection", "up", "offload"]).await;
    let up = features(&c);
    for kernel in
        ["tx-tcp-segmentation", "tx-tcp-ecn-segmentation", "tx-tcp-mangleid-segmentation", "tx-tcp6-segmentation"]
    {
        assert!(up.contains(&format!("{kernel}: off")), "{kernel} in {up}");
    }
    assert!(up.contains("tx-checksum-sctp: off") && up.contains("tx-checksum-ip-generic: on"), "{up}");
    assert!(c.log().contains("ethtool"), "the ring sizes the veth lacks are a warning");
    let channels = |c: &Core| {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", c.lab.client_netns(), "ethtool", "-l", &eth])
            .output()
            .expect("ethtool runs");
        String::from_utf8_lossy(&out.stdout).split_whitespace().collect::<Vec<_>>().join(" ")
    };
    // (veth has a channel per CPU; with one CPU, 2 is refused, a warning.)
    let two_cpus = std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2);
    if two_cpus {
        assert!(channels(&c).contains("Current hardware settings: RX: 2"), "{}", channels(&c));
    }

    c.ok(&["connection", "modify", "offload", "ethtool.feature-tso", "on"]).await;
    c.ok(&["device", "reapply", &eth]).await;
    let reapplied = features(&c);
    assert!(
        reapplied.contains("tx-tcp-segmentation: on") && reapplied.contains("tx-checksum-sctp: off"),
        "{reapplied}"
    );

    c.ok(&["connection", "down", "offload"]).await;
    let after = features(&c);
    assert!(after.contains("tx-tcp-segmentation: on") && after.contains("tx-checksum-sctp: on"), "{after}");
    assert!(channels(&c).contains("Current hardware settings: RX: 1"), "{}", channels(&c));
}

/// A profile's `tc` setting: stored in NetworkManager's keyfile form and
/// shown back by nmcli, its qdiscs put on the device on `up` (its own
/// root and ingress qdiscs replaced; read with tc(8)) and again on `device
/// reapply`; a filter whose action names a missing device fails the
/// activation in words.
#[tokio::test]
async fn traffic_control_of_a_profile_reaches_the_device() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let qdiscs = |c: &Core| {
        let out = std::process::Command::new("tc")
            .args(["-n", c.lab.client_netns(), "qdisc", "show", "dev", &eth])
            .output()
            .expect("tc runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let add = nm_lab::add_ethernet(
        &eth,
        "shaped",
        &[
            ("ipv4.method", "manual"),
            ("ipv4.addresses", "198.18.0.80/24"),
            ("ipv6.method", "disabled"),
            ("connection.autoconnect", "no"),
            ("tc.qdiscs", "root handle 1: tbf rate 125000 burst 5000 latency 50000, ingress"),
        ],
    );
    c.ok(&add).await;
    let shown = c.ok(&["-g", "tc.qdiscs", "connection", "show", "shaped"]).await;
    // (nmcli -g escapes the colon.)
    assert_eq!(shown.trim(), "root handle 1\\: tbf burst 5000 latency 50000 rate 125000, ingress");
    let keyfile =
        std::fs::read_to_string(c.lab.root_path("/etc/NetworkManager/system-connections/shaped.nmconnection"))
            .expect("keyfile");
    assert!(
        keyfile
            .contains("[tc]\nqdisc.root=handle 1: tbf burst 5000 latency 50000 rate 125000\nqdisc.ffff:fff1=ingress\n"),
        "{keyfile}"
    );

    c.ok(&["connection", "up", "shaped"]).await;
    let up = qdiscs(&c);
    assert!(up.contains("qdisc tbf 1: root") && up.contains("rate 1Mbit burst 5000b"), "{up}");
    assert!(up.contains("qdisc ingress ffff: parent ffff:fff1"), "{up}");

    c.ok(&["connection", "modify", "shaped", "tc.qdiscs", "root handle 2: pfifo"]).await;
    c.ok(&["device", "reapply", &eth]).await;
    let reapplied = qdiscs(&c);
    assert!(reapplied.contains("qdisc pfifo 2: root") && !reapplied.contains("ingress"), "{reapplied}");

    c.ok(&["connection", "modify", "shaped", "tc.tfilters", "root matchall action mirred egress redirect dev nosuch0"])
        .await;
    let out = c.nmcli(&["connection", "up", "shaped"]).await;
    assert!(!out.success(), "{}", out.stdout);
    assert!(out.stderr.contains("The device could not be readied for configuration"), "{}", out.stderr);
    assert!(c.log().contains("mirred: no device 'nosuch0'"), "the reason is logged");
}

/// A VPN keyfile from NetworkManager (plugin data in `[vpn]`, secrets in
/// `[vpn-secrets]`) is shown whole by nmcli (the secrets only with `-s`),
/// a change made with nmcli keeps its data and secrets in the file, and
/// activating it is refused in NetworkManager's words for a plugin that is
/// not installed (nm-rs has none).
#[tokio::test]
async fn a_vpn_profile_is_kept_whole_and_refused_in_words() {
    let c = Core::start(1, "").await;
    let file = c.lab.root_path("/etc/NetworkManager/system-connections/work.nmconnection");
    let text = "[connection]\nid=work\nuuid=0d5a9a47-6d65-4e8f-9b3c-2f1e0a9b8c7d\ntype=vpn\nautoconnect=false\n\n\
                [vpn]\ngateway=vpn.example.com\npassword-flags=0\nservice-type=org.freedesktop.NetworkManager.openvpn\n\
                user-name=alice\n\n[vpn-secrets]\npassword=s3cret\n\n[ipv4]\nmethod=auto\n";
    write_keyfile(&file, text);
    c.ok(&["connection", "reload"]).await;
    let shown = c.ok(&["-g", "vpn.service-type,vpn.user-name,vpn.data", "connection", "show", "work"]).await;
    assert_eq!(
        shown.trim(),
        "org.freedesktop.NetworkManager.openvpn\nalice\ngateway = vpn.example.com, password-flags = 0"
    );
    assert_eq!(c.ok(&["-s", "-g", "vpn.secrets", "connection", "show", "work"]).await.trim(), "password = s3cret");
    assert!(!c.ok(&["-g", "vpn.secrets", "connection", "show", "work"]).await.contains("s3cret"));

    c.ok(&["connection", "modify", "work", "ipv4.dns", "192.0.2.53"]).await;
    let stored = std::fs::read_to_string(&file).expect("keyfile");
    for line in ["gateway=vpn.example.com", "[vpn-secrets]\npassword=s3cret", "dns=192.0.2.53;"] {
        assert!(stored.contains(line), "{line:?} in {stored}");
    }
    let out = c.nmcli(&["connection", "up", "work"]).await;
    assert!(!out.success());
    assert!(
        out.stderr.contains("The VPN service 'org.freedesktop.NetworkManager.openvpn' was not installed."),
        "{}",
        out.stderr
    );
}

/// A keyfile with what nm-rs does not know (a key of a later
/// NetworkManager, a setting nm-rs has no schema for, `[.nmmeta]`) keeps
/// all of it through `nmcli connection modify`, though nmcli never sees it.
#[tokio::test]
async fn a_change_made_with_nmcli_keeps_what_nm_rs_does_not_know() {
    let c = Core::start(1, "").await;
    let file = c.lab.root_path("/etc/NetworkManager/system-connections/later.nmconnection");
    let text = "[connection]\nid=later\nuuid=1d5a9a47-6d65-4e8f-9b3c-2f1e0a9b8c7d\ntype=ethernet\nautoconnect=false\n\
                future-key=abc\n\n[ethernet]\n\n[sriov]\ntotal-vfs=4\nvf.0=mac=00:11:22:33:44:55\n\n\
                [future]\nknob=1\n\n[ipv4]\nmethod=auto\n\n[.nmmeta]\nnm-generated=true\n";
    write_keyfile(&file, text);
    c.ok(&["connection", "reload"]).await;
    assert_eq!(c.ok(&["-g", "sriov.total-vfs", "connection", "show", "later"]).await.trim(), "4");
    c.ok(&["connection", "modify", "later", "ipv4.dns", "192.0.2.53"]).await;
    let stored = std::fs::read_to_string(&file).expect("keyfile");
    for line in [
        "future-key=abc",
        "total-vfs=4\nvf.0=mac=00:11:22:33:44:55",
        "[future]\nknob=1",
        "[.nmmeta]\nnm-generated=true",
        "dns=192.0.2.53;",
    ] {
        assert!(stored.contains(line), "{line:?} in {stored}");
    }
}

/// `ipv6.token` (with EUI-64 addresses) reaches the kernel as the link's
/// token while the profile is up (`ip token`), and goes with it; without
/// EUI-64 it is refused in NetworkManager's words.
#[tokio::test]
async fn an_ipv6_token_is_the_links_while_its_profile_is_up() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let token =
        |c: &Core| c.ip(&["token", "get", "dev", &eth]).split_whitespace().nth(1).unwrap_or_default().to_string();
    assert_eq!(token(&c), "::");
    let add = nm_lab::add_ethernet(
        &eth,
        "tokened",
        &[
            ("ipv4.method", "disabled"),
            ("ipv6.method", "auto"),
            ("ipv6.addr-gen-mode", "eui64"),
            ("ipv6.token", "::0:5"),
            ("connection.autoconnect", "no"),
        ],
    );
    c.ok(&add).await;
    assert_eq!(c.ok(&["-g", "ipv6.token", "connection", "show", "tokened"]).await.trim(), "\\:\\:5");
    c.ok(&["connection", "up", "tokened"]).await;
    assert_eq!(token(&c), "::5");
    c.ok(&["connection", "down", "tokened"]).await;
    assert_eq!(token(&c), "::", "the link's own identifiers again");

    let out = c.nmcli(&["connection", "modify", "tokened", "ipv6.addr-gen-mode", "stable-privacy"]).await;
    assert!(!out.success(), "{}", out.stdout);
    assert!(out.stderr.contains("ipv6.token: only makes sense with EUI64 address generation mode"), "{}", out.stderr);
}

/// `802-3-ethernet.accept-all-mac-addresses`: the link is promiscuous
/// while the profile is up (the kernel's PROMISC flag) and as before
/// afterwards.
#[tokio::test]
async fn accept_all_mac_addresses_makes_the_link_promiscuous_while_up() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let promisc = |c: &Core| c.ip(&["link", "show", "dev", &eth]).contains("PROMISC");
    assert!(!promisc(&c));
    let add = nm_lab::add_ethernet(
        &eth,
        "all-macs",
        &[
            ("ipv4.method", "manual"),
            ("ipv4.addresses", "198.18.0.82/24"),
            ("ipv6.method", "disabled"),
            ("802-3-ethernet.accept-all-mac-addresses", "true"),
            ("connection.autoconnect", "no"),
        ],
    );
    c.ok(&add).await;
    // nmcli shows it too (Device.InterfaceFlags' PROMISC bit).
    let shown = |c: &Core| c.nmcli_now(&["-g", "INTERFACE-FLAGS.PROMISC", "device", "show", &eth]).trim().to_string();
    assert_eq!(shown(&c), "no");
    c.ok(&["connection", "up", "all-macs"]).await;
    assert!(promisc(&c), "{}", c.ip(&["link", "show", "dev", &eth]));
    c.until("INTERFACE-FLAGS.PROMISC yes", |c| shown(c) == "yes").await;
    c.ok(&["connection", "down", "all-macs"]).await;
    assert!(!promisc(&c), "{}", c.ip(&["link", "show", "dev", &eth]));
    c.until("INTERFACE-FLAGS.PROMISC no", |c| shown(c) == "no").await;
}

/// `ipv4.dhcp-fqdn` goes to the DHCP server as option 81 (the name whole,
/// not cut at the first dot as a host name is), and NetworkManager's rules
/// about it hold (a qualified name, not with dhcp-hostname).
#[tokio::test]
async fn a_dhcp_fqdn_reaches_the_server_whole() {
    let (c, _helper) = Core::start_with_dhcp().await;
    let eth = c.uplink(0);
    c.add_dhcp_profile(&eth, &[("ipv4.dhcp-fqdn", "box7.lab.test"), ("connection.autoconnect", "no")]).await;
    c.ok(&["connection", "up", "dyn"]).await;
    let log = || std::fs::read_to_string(c.lab.dnsmasq_log().expect("dnsmasq log")).unwrap_or_default();
    c.until("dnsmasq logging the name", |_| log().contains("client provides name: box7.lab.test")).await;
    let out = c.nmcli(&["connection", "modify", "dyn", "ipv4.dhcp-hostname", "box7"]).await;
    assert!(!out.success());
    assert!(
        out.stderr.contains("ipv4.dhcp-fqdn: property cannot be set when dhcp-hostname is also set"),
        "{}",
        out.stderr
    );
}

/// `ipv6.dhcp-duid` decides the DUID DHCPv6 identifies the machine by
/// (dnsmasq logs it): `ll` from the device's MAC, or the DUID given.
#[tokio::test]
async fn the_dhcpv6_duid_is_the_one_the_profile_asks_for() {
    let (c, _helper) = Core::start_with_dhcp().await;
    let eth = c.uplink(0);
    let far = c.lab.uplinks()[0].server_if.clone();
    let mac = c.ip(&["-j", "link", "show", "dev", &eth]);
    let mac: serde_json::Value = serde_json::from_str(&mac).expect("ip -j");
    let mac = mac[0]["address"].as_str().expect("a MAC").to_string();
    let add = nm_lab::add_ethernet(
        &eth,
        "duid",
        &[
            ("ipv4.method", "disabled"),
            ("ipv6.method", "dhcp"),
            ("ipv6.dhcp-duid", "ll"),
            ("connection.autoconnect", "no"),
        ],
    );
    c.ok(&add).await;
    c.ok(&["connection", "up", "duid"]).await;
    let log = || std::fs::read_to_string(c.lab.dnsmasq_log().expect("dnsmasq log")).unwrap_or_default();
    let reply = |duid: &str| {
        let log = log();
        log.lines().any(|l| l.contains(&format!("DHCPREPLY({far})")) && l.trim_end().ends_with(duid))
    };
    let ll = format!("00:03:00:01:{mac}");
    c.until("a reply to the DUID-LL", |_| reply(&ll)).await;
    let given = "00:02:00:00:ab:11:01:02";
    c.ok(&["connection", "modify", "duid", "ipv6.dhcp-duid", given]).await;
    c.ok(&["connection", "up", "duid"]).await;
    c.until("a reply to the DUID given", |_| reply(given)).await;
    let out = c.nmcli(&["connection", "modify", "duid", "ipv6.dhcp-duid", "00:01"]).await;
    assert!(!out.success());
}

/// A host's NetworkManager.conf keeps working: `[keyfile]
/// unmanaged-devices` leaves a device alone, a `conf.d` file's `[main]
/// dns=none` leaves the resolver file alone, and with Debian's ifupdown
/// plugin settings an interface /etc/network/interfaces configures is
/// left to ifupdown.
#[tokio::test]
async fn networkmanager_conf_keeps_working() {
    let lab = Lab::builder().uplinks(3).dnsmasq(false).build().expect("lab");
    let left_alone = lab.uplinks()[1].client_if.clone();
    let etc = lab.root_path("/etc/NetworkManager");
    std::fs::create_dir_all(etc.join("conf.d")).expect("conf.d");
    std::fs::write(
        etc.join("NetworkManager.conf"),
        format!("[main]\nplugins=keyfile\n\n[keyfile]\nunmanaged-devices=interface-name:{left_alone}\n"),
    )
    .expect("NetworkManager.conf");
    std::fs::write(etc.join("conf.d/90-dns.conf"), "[main]\ndns=none\n").expect("conf.d file");
    // Debian's default: what ifupdown configures is ifupdown's.
    let ifupdown = lab.uplinks()[2].client_if.clone();
    std::fs::write(
        etc.join("conf.d/80-ifupdown.conf"),
        "[main]\nplugins=ifupdown,keyfile\n[ifupdown]\nmanaged=false\n",
    )
    .expect("conf.d file");
    let network = lab.root_path("/etc/network");
    std::fs::create_dir_all(&network).expect("/etc/network");
    std::fs::write(
        network.join("interfaces"),
        format!("auto lo\niface lo inet loopback\n\nallow-hotplug {ifupdown}\niface {ifupdown} inet dhcp\n"),
    )
    .expect("interfaces");
    let c = Core::start_on(lab, "").await;
    let eth = c.uplink(0);
    c.until_state(&left_alone, &["unmanaged"]).await;
    c.until_state(&ifupdown, &["unmanaged"]).await;
    c.ok(&static_profile("conf-test", &eth, "198.18.0.83/24", "198.18.0.1", "192.0.2.53")
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>())
        .await;
    c.ok(&["connection", "up", "conf-test"]).await;
    assert!(c.ip(&["-4", "addr", "show", "dev", &eth]).contains("198.18.0.83/24"), "the other device is managed");
    assert!(!c.resolv().contains("192.0.2.53"), "dns=none: {}", c.resolv());
}

/// Writes a profile file as an administrator would: 0600, root's.
fn write_keyfile(file: &std::path::Path, text: &str) {
    std::fs::write(file, text).expect("keyfile");
    std::fs::set_permissions(file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("0600");
}

/// Sends an LLDPDU out of `ifname` in namespace `netns`, as a switch port
/// would: chassis MAC 00:11:22:33:44:55, port `swp7`, `ttl` seconds.
fn send_lldp(netns: &str, ifname: &str, ttl: u16) {
    let tlv = |t: u16, v: &[u8]| [&((t << 9) | v.len() as u16).to_be_bytes()[..], v].concat();
    let frame = [
        &[0x01, 0x80, 0xc2, 0, 0, 0x0e, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xcc][..],
        &tlv(1, &[4, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55]),
        &tlv(2, b"\x05swp7"),
        &tlv(3, &ttl.to_be_bytes()),
        &tlv(4, b"uplink port"),
        &tlv(5, b"lab-switch"),
        &tlv(6, b"Switch OS 1.0"),
        &tlv(7, &[0, 0x14, 0, 0x04]),
        &tlv(127, &[0x00, 0x80, 0xc2, 1, 0, 10]),
        &[0, 0],
    ]
    .concat();
    let ifname = ifname.to_string();
    nm_lab::in_netns(netns, move || {
        let index = ifindex_of(&ifname);
        // SAFETY: a packet socket, its address and the frame are ours.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(fd >= 0);
            let mut addr: libc::sockaddr_ll = std::mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_ifindex = index;
            addr.sll_halen = 6;
            let sent = libc::sendto(
                fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                std::ptr::from_ref(&addr).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            libc::close(fd);
            assert_eq!(sent, frame.len() as isize, "{}", std::io::Error::last_os_error());
        }
    })
    .join()
    .expect("sent");
}

fn ifindex_of(name: &str) -> i32 {
    let c = std::ffi::CString::new(name).expect("a name");
    // SAFETY: a NUL-terminated name we own.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    assert!(index > 0, "no {name}");
    index as i32
}

/// `connection.lldp enable`: what the switch port at the far end of the
/// uplink says shows in `nmcli device lldp` (a neighbour saying TTL 0
/// leaves the list), and listening ends with the activation.
#[tokio::test]
async fn lldp_neighbours_show_while_the_profile_listens() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let far = c.lab.uplinks()[0].server_if.clone();
    let server = c.lab.server_netns().expect("server namespace").to_string();
    let add = nm_lab::add_ethernet(
        &eth,
        "listening",
        &[
            ("ipv4.method", "manual"),
            ("ipv4.addresses", "198.18.0.81/24"),
            ("ipv6.method", "disabled"),
            ("connection.lldp", "enable"),
            ("connection.autoconnect", "no"),
        ],
    );
    c.ok(&add).await;
    c.ok(&["connection", "up", "listening"]).await;
    // Device.InterfaceFlags says so while it listens (LLDP_CLIENT_ENABLED).
    let path = c.ok(&["-g", "GENERAL.DBUS-PATH", "device", "show", &eth]).await.trim().to_string();
    let flags = c.device_u32(&path, "InterfaceFlags").await;
    assert_eq!(flags & 0x20000, 0x20000, "LLDP_CLIENT_ENABLED in {flags:#x}");
    let lldp = |c: &Core| c.nmcli_now(&["-t", "device", "lldp", "list", "ifname", &eth]);
    send_lldp(&server, &far, 120);
    c.until("the neighbour in nmcli device lldp", |c| lldp(c).contains("CHASSIS-ID:00:11:22:33:44:55")).await;
    let shown = lldp(&c);
    for line in [
        "PORT-ID:swp7",
        "PORT-DESCRIPTION:uplink port",
        "SYSTEM-NAME:lab-switch",
        "SYSTEM-DESCRIPTION:Switch OS 1.0",
        "SYSTEM-CAPABILITIES:20 (mac-bridge,router)",
    ] {
        assert!(shown.contains(&format!("NEIGHBOR[0].{line}\n")), "{line:?} in {shown}");
    }
    send_lldp(&server, &far, 0);
    c.until("the neighbour gone (TTL 0)", |c| lldp(c).trim().is_empty()).await;
    // Refreshed with a TTL of 1 s, then silent: gone when the TTL runs out.
    send_lldp(&server, &far, 1);
    c.until("the neighbour back", |c| lldp(c).contains("swp7")).await;
    c.until("the neighbour expired", |c| lldp(c).trim().is_empty()).await;

    send_lldp(&server, &far, 120);
    c.until("the neighbour back", |c| lldp(c).contains("swp7")).await;
    c.ok(&["connection", "down", "listening"]).await;
    assert!(lldp(&c).trim().is_empty(), "no listening without the activation");
    let flags = c.device_u32(&path, "InterfaceFlags").await;
    assert_eq!(flags & 0x20000, 0, "no LLDP_CLIENT_ENABLED in {flags:#x} after the activation");
}

/// Sends one datagram from the client namespace to `to` and waits until
/// the kernel resolved its address on `dev` (no ping in the lab): the far
/// end answers ARP through that device.
async fn answers_through(c: &Core, to: &str, dev: &str) {
    let sent = std::process::Command::new("ip")
        .args(["netns", "exec", c.lab.client_netns(), "bash", "-c", &format!("echo x > /dev/udp/{to}/9")])
        .status()
        .expect("bash runs");
    assert!(sent.success());
    c.until(&format!("{to} answering ARP through {dev}"), |c| {
        c.ip(&["neigh", "show", to, "dev", dev]).contains("lladdr")
    })
    .await;
}

/// macvlan, vxlan, tun and veth profiles (`nmcli connection add type …`) make
/// their links when they go up, with the profile's settings, configure
/// them like any device, show them with their type, and delete them when
/// they go down.
#[tokio::test]
async fn macvlan_vxlan_and_tun_devices_come_and_go_with_their_profiles() {
    let mut c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let stem = &eth[..eth.len() - 2];
    let (mv, vx, tap, far_vx) = (format!("{stem}mv"), format!("{stem}vx"), format!("{stem}tp"), format!("{stem}fv"));
    let static4 =
        |addr| ["ipv4.method", "manual", "ipv4.addresses", addr, "ipv6.method", "disabled", "autoconnect", "no"];

    // macvlan in bridge mode on the uplink: the far end answers over it.
    let mut add = vec!["connection", "add", "type", "macvlan", "ifname", &mv, "con-name", "mv-lab", "dev", &eth];
    add.extend(["mode", "bridge"]);
    add.extend(static4("198.18.0.78/24"));
    c.ok(&add).await;
    c.ok(&["connection", "up", "mv-lab"]).await;
    let link = c.ip(&["-d", "link", "show", "dev", &mv]);
    assert!(link.contains(&format!("{mv}@{eth}")) && link.contains("macvlan mode bridge"), "{link}");
    assert!(c.ip(&["-4", "addr", "show", "dev", &mv]).contains("198.18.0.78/24"));
    let devices = c.ok(&["-t", "-f", "DEVICE,TYPE,STATE,CONNECTION", "device"]).await;
    assert!(devices.contains(&format!("{mv}:macvlan:connected:mv-lab")), "{devices}");
    let shown = c.ok(&["-t", "-f", "GENERAL.NM-TYPE", "device", "show", &mv]).await;
    assert_eq!(shown, "GENERAL.NM-TYPE:NMDeviceMacvlan\n");
    answers_through(&c, "198.18.0.1", &mv).await;
    // A restart takes it back as it is.
    c.restart_core().await;
    c.until_state(&mv, &["connected"]).await;
    assert!(c.ip(&["-4", "addr", "show", "dev", &mv]).contains("198.18.0.78/24"));
    c.ok(&["connection", "down", "mv-lab"]).await;
    assert!(c.ip(&["link", "show", "type", "macvlan"]).trim().is_empty(), "the macvlan is gone");
    assert!(c.ip(&["link", "show", "dev", &eth]).contains("UP"), "its parent stays");

    // A tap device for a user, with the profile's flags.
    let mut add = vec!["connection", "add", "type", "tun", "ifname", &tap, "con-name", "tap-lab", "mode", "tap"];
    add.extend(["owner", "65534", "tun.vnet-hdr", "yes"]);
    add.extend(static4("10.88.0.1/24"));
    c.ok(&add).await;
    c.ok(&["connection", "up", "tap-lab"]).await;
    let link = c.ip(&["-d", "link", "show", "dev", &tap]);
    assert!(link.contains("tun type tap") && link.contains("vnet_hdr on"), "{link}");
    // (ip names the owner when it can.)
    assert!(link.contains("persist on") && (link.contains("user nobody") || link.contains("user 65534")), "{link}");
    assert!(c.ip(&["-4", "addr", "show", "dev", &tap]).contains("10.88.0.1/24"));
    let shown = c.ok(&["-t", "-f", "GENERAL.TYPE,GENERAL.STATE", "device", "show", &tap]).await;
    assert_eq!(shown, "GENERAL.TYPE:tun\nGENERAL.STATE:100 (connected)\n");
    c.ok(&["connection", "down", "tap-lab"]).await;
    assert!(c.ip(&["link", "show", "type", "tun"]).trim().is_empty(), "the tap is gone");

    // A veth pair (`veth.peer`): the profile's end configured, its peer up
    // (a veth has a carrier only then); both go with the profile.
    let (va, vb) = (format!("{stem}va"), format!("{stem}vb"));
    let mut add = vec!["connection", "add", "type", "veth", "ifname", &va, "con-name", "veth-lab", "veth.peer", &vb];
    add.extend(static4("10.89.0.1/24"));
    c.ok(&add).await;
    c.ok(&["connection", "up", "veth-lab"]).await;
    let link = c.ip(&["-d", "link", "show", "dev", &va]);
    assert!(link.contains(&format!("{va}@{vb}")) && link.contains("veth"), "{link}");
    assert!(c.ip(&["-4", "addr", "show", "dev", &va]).contains("10.89.0.1/24"));
    assert!(c.ip(&["link", "show", "dev", &vb]).contains(",UP"), "its peer is up");
    let devices = c.ok(&["-t", "-f", "DEVICE,STATE,CONNECTION", "device"]).await;
    assert!(devices.contains(&format!("{va}:connected:veth-lab")), "{devices}");
    // As NetworkManager's: a veth device (libnm's NMDeviceVeth) whose Peer
    // is the other end's device, "/" for an end in another namespace.
    let shown = c.ok(&["-t", "-f", "GENERAL.TYPE,GENERAL.NM-TYPE", "device", "show", &va]).await;
    assert_eq!(shown, "GENERAL.TYPE:ethernet\nGENERAL.NM-TYPE:NMDeviceVeth\n");
    let manager = c.proxy("/org/freedesktop/NetworkManager", "org.freedesktop.NetworkManager").await;
    let mut peers = Vec::new();
    for name in [&va, &vb, &eth] {
        let path: OwnedObjectPath = manager.call("GetDeviceByIpIface", &(name.as_str(),)).await.expect("the device");
        let veth = c.proxy(path.as_str(), "org.freedesktop.NetworkManager.Device.Veth").await;
        peers.push((path, veth.get_property::<OwnedObjectPath>("Peer").await.expect("Peer")));
    }
    assert_eq!((&peers[0].1, &peers[1].1), (&peers[1].0, &peers[0].0), "each end is the other's peer");
    assert_eq!(peers[2].1.as_str(), "/", "the uplink's peer is in the lab's far namespace");
    let uplink = c.nmcli(&["device", "delete", &eth]).await;
    assert!(!uplink.success() && uplink.stderr.contains("not a software device nm-rs created"), "{uplink:?}");
    c.ok(&["device", "delete", &va]).await;
    let links = c.ip(&["link", "show"]);
    assert!(!links.contains(&va) && !links.contains(&vb), "the pair is gone: {links}");
    // An activation that fails (no DHCP server in 1 s) takes its pair too.
    c.ok(&["connection", "modify", "veth-lab", "ipv4.method", "auto", "ipv4.addresses", "", "ipv4.dhcp-timeout", "1"])
        .await;
    c.ok(&["connection", "modify", "veth-lab", "connection.autoconnect", "no"]).await;
    let failed = c.nmcli(&["connection", "up", "veth-lab"]).await;
    assert!(!failed.success() && failed.stderr.contains("IP configuration could not be reserved"), "{failed:?}");
    // (It goes right after the activation ends, which nmcli waits for.)
    c.until("the failed pair gone", |c| !c.ip(&["link", "show"]).contains(&va)).await;
    assert!(!c.ip(&["link", "show"]).contains(&vb), "its peer went with it");

    // VXLAN over the uplink to a tunnel end the test makes in the far
    // namespace (the lab's own): the overlay's far address answers.
    let mut add = vec!["connection", "add", "type", "ethernet", "ifname", &eth, "con-name", "underlay"];
    add.extend(static4("198.18.0.79/24"));
    c.ok(&add).await;
    c.ok(&["connection", "up", "underlay"]).await;
    let srv = c.lab.server_netns().expect("a server namespace").to_string();
    let srv_if = c.lab.uplinks()[0].server_if.clone();
    for cmd in [
        vec!["link", "add", &far_vx, "type", "vxlan", "id", "4242", "remote", "198.18.0.79", "local", "198.18.0.1"],
        vec!["addr", "add", "10.77.0.1/24", "dev", &far_vx],
        vec!["link", "set", &far_vx, "up"],
    ] {
        let mut full = vec!["-n", srv.as_str()];
        full.extend(cmd.iter().copied());
        if cmd[1] == "add" && cmd[0] == "link" {
            full.extend(["dstport", "8472", "dev", srv_if.as_str()]);
        }
        let ok = std::process::Command::new("ip").args(&full).status().expect("ip runs").success();
        assert!(ok, "ip {full:?}");
    }
    let mut add = vec!["connection", "add", "type", "vxlan", "ifname", &vx, "con-name", "vx-lab", "id", "4242"];
    add.extend(["remote", "198.18.0.1", "local", "198.18.0.79", "dev", &eth]);
    add.extend(static4("10.77.0.2/24"));
    c.ok(&add).await;
    c.ok(&["connection", "up", "vx-lab"]).await;
    let link = c.ip(&["-d", "link", "show", "dev", &vx]);
    assert!(link.contains("vxlan id 4242 remote 198.18.0.1 local 198.18.0.79"), "{link}");
    assert!(link.contains(&format!("dev {eth}")) && link.contains("dstport 8472"), "{link}");
    let shown = c.ok(&["-t", "-f", "GENERAL.NM-TYPE,GENERAL.CONNECTION", "device", "show", &vx]).await;
    assert_eq!(shown, "GENERAL.NM-TYPE:NMDeviceVxlan\nGENERAL.CONNECTION:vx-lab\n");
    answers_through(&c, "10.77.0.1", &vx).await;
    c.ok(&["device", "delete", &vx]).await;
    assert!(c.ip(&["link", "show", "type", "vxlan"]).trim().is_empty(), "the vxlan is gone");

    // A profile whose parent is missing says so, and nothing is made.
    let mut add = vec!["connection", "add", "type", "macvlan", "ifname", &mv, "con-name", "mv-orphan"];
    add.extend(["dev", "nosuch0", "mode", "vepa", "autoconnect", "no"]);
    c.ok(&add).await;
    let out = c.nmcli(&["connection", "up", "mv-orphan"]).await;
    assert!(!out.success() && out.stderr.contains("parent device 'nosuch0' not found"), "{}", out.stderr);
    assert!(c.ip(&["link", "show", "type", "macvlan"]).trim().is_empty());
}

/// `ipv4.method link-local`: nm-dhcp-helper probes for an address in
/// 169.254/16 (RFC 3927) and nm-core configures it with its prefix route;
/// an address another host answers for is not taken.
#[tokio::test]
async fn link_local_ipv4_is_probed_for_and_a_taken_address_avoided() {
    let (c, _helper) = Core::start_with_dhcp().await;
    let eth = c.uplink(0);
    c.ok(&nm_lab::add_ethernet(
        &eth,
        "ll",
        &[
            ("ipv4.method", "link-local"),
            ("ipv4.dad-timeout", "300"),
            ("ipv6.method", "disabled"),
            ("connection.autoconnect", "no"),
        ],
    ))
    .await;
    let ll_address = |c: &Core| {
        let addr = c.ip(&["-4", "-o", "addr", "show", "dev", &eth]);
        addr.split_whitespace().skip_while(|w| *w != "inet").nth(1).unwrap_or_default().to_string()
    };
    c.ok(&["connection", "up", "ll"]).await;
    let first = ll_address(&c);
    assert!(first.starts_with("169.254.") && first.ends_with("/16"), "{first}");
    assert!(c.ip(&["-4", "addr", "show", "dev", &eth]).contains("scope link"), "a link-local address");
    let routes = c.ip(&["-4", "route", "show", "dev", &eth]);
    assert!(routes.contains("169.254.0.0/16") && routes.contains("metric 100"), "{routes}");
    assert!(!routes.contains("default"), "{routes}");
    let shown = c.ok(&["-t", "-f", "IP4.ADDRESS,DHCP4", "device", "show", &eth]).await;
    assert_eq!(shown, format!("IP4.ADDRESS[1]:{first}\n"), "no DHCP4 options for a link-local address");
    c.ok(&["connection", "down", "ll"]).await;
    assert!(ll_address(&c).is_empty());

    // The far end takes that address: the probes find it, another is taken.
    let srv = c.lab.server_netns().expect("a server namespace").to_string();
    let srv_if = c.lab.uplinks()[0].server_if.clone();
    let taken = std::process::Command::new("ip")
        .args(["-n", &srv, "addr", "add", &first, "dev", &srv_if])
        .status()
        .expect("ip runs");
    assert!(taken.success());
    c.ok(&["connection", "up", "ll"]).await;
    let second = ll_address(&c);
    assert!(second.starts_with("169.254.") && second != first, "{first} then {second}");

    // IPv6 connection sharing is refused in words, and nothing changes.
    let sh = [("ipv4.method", "disabled"), ("ipv6.method", "shared"), ("connection.autoconnect", "no")];
    c.ok(&nm_lab::add_ethernet(&eth, "sh", &sh)).await;
    let out = c.nmcli(&["connection", "up", "sh"]).await;
    assert!(!out.success() && out.stderr.contains("ipv6.method 'shared'"), "{}", out.stderr);
    assert_eq!(ll_address(&c), second);
}

/// `ipv4.link-local enabled` (NetworkManager 1.40): a link-local address
/// beside the DHCP lease (and beside manual addresses), both in IP4Config;
/// a reapply without it takes only that address away, one with it brings
/// it back; deactivation takes everything.
#[tokio::test]
async fn link_local_ipv4_comes_beside_the_lease_when_enabled() {
    let (mut c, _helper) = Core::start_with_dhcp().await;
    let eth = c.uplink(0);
    let base = [("ipv4.link-local", "enabled"), ("ipv4.dad-timeout", "300"), ("ipv6.method", "disabled")];
    let mut both = base.to_vec();
    both.extend([("ipv4.method", "auto"), ("connection.autoconnect", "no")]);
    c.ok(&nm_lab::add_ethernet(&eth, "both", &both)).await;
    let inet = |c: &Core| {
        let out = c.ip(&["-4", "-o", "addr", "show", "dev", &eth]);
        let mut found: Vec<String> = out
            .lines()
            .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1).map(String::from))
            .collect();
        found.sort();
        found
    };
    let has_ll = |c: &Core| inet(c).iter().any(|a| a.starts_with("169.254.") && a.ends_with("/16"));
    c.ok(&["connection", "up", "both"]).await;
    assert!(inet(&c).iter().any(|a| a.starts_with("198.18.0.")), "the lease: {:?}", inet(&c));
    c.until("a link-local address beside the lease", has_ll).await;
    let shown = c.ok(&["-g", "IP4.ADDRESS", "device", "show", &eth]).await;
    for a in inet(&c) {
        assert!(shown.contains(&a), "{a} in IP4Config: {shown}");
    }
    assert!(!c.ok(&["-t", "-f", "DHCP4", "device", "show", &eth]).await.is_empty(), "the lease's options stay");

    c.ok(&["device", "modify", &eth, "ipv4.link-local", "disabled"]).await;
    let after = inet(&c);
    assert!(after.len() == 1 && after[0].starts_with("198.18.0."), "only the lease: {after:?}");
    c.ok(&["device", "modify", &eth, "ipv4.link-local", "enabled"]).await;
    c.until("the link-local address back", has_ll).await;

    // A restart of nm-core takes both back without deleting either.
    let before = inet(&c);
    let monitor = KernelMonitor::start(&c, &["address"]);
    c.restart_core().await;
    let online =
        c.lab.command("nm-online").args(["-s", "-q", "-t", "10"]).timeout(STEP).output().await.expect("nm-online");
    assert!(online.success(), "nm-online -s after restart");
    c.until("the link-local address in IP4Config again", |c| {
        let shown = c.nmcli_now(&["-g", "IP4.ADDRESS", "device", "show", &eth]);
        before.iter().all(|a| shown.contains(a.as_str()))
    })
    .await;
    let deletions = monitor.deletions().await;
    assert!(deletions.is_empty(), "the restart deleted: {deletions:?}\n{}", nm_lab::tail(&c.log(), 30));
    assert_eq!(inet(&c), before);

    c.ok(&["connection", "down", "both"]).await;
    assert!(inet(&c).is_empty(), "{:?}", inet(&c));

    // Beside manual addresses too.
    let mut manual = base.to_vec();
    manual.extend([("ipv4.method", "manual"), ("ipv4.addresses", "198.18.0.77/24"), ("connection.autoconnect", "no")]);
    c.ok(&nm_lab::add_ethernet(&eth, "manual-ll", &manual)).await;
    c.ok(&["connection", "up", "manual-ll"]).await;
    c.until("a link-local address beside 198.18.0.77", has_ll).await;
    assert!(inet(&c).contains(&"198.18.0.77/24".to_string()), "{:?}", inet(&c));
    // NetworkManager's rule: the method cannot say link-local while the
    // setting says disabled; the profile stays as it was.
    let out = c
        .nmcli(&["connection", "modify", "manual-ll", "ipv4.method", "link-local", "ipv4.link-local", "disabled"])
        .await;
    assert!(!out.success() && out.stderr.contains("cannot disable ipv4.link-local"), "{}", out.stderr);
    assert_eq!(c.ok(&["-g", "ipv4.method", "connection", "show", "manual-ll"]).await.trim(), "manual");
}

/// `connection.autoconnect-slaves yes`: bringing the bridge up brings its
/// port profiles up with it, even those that do not autoconnect.
#[tokio::test]
async fn a_bridge_brings_its_ports_up_when_asked_to() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let br = format!("{}br", &eth[..eth.len() - 2]);
    let mut add = vec!["connection", "add", "type", "bridge", "ifname", &br, "con-name", "br-all"];
    add.extend(["connection.autoconnect-slaves", "yes", "autoconnect", "no", "bridge.stp", "no"]);
    add.extend(["ipv4.method", "manual", "ipv4.addresses", "198.18.0.80/24", "ipv6.method", "disabled"]);
    c.ok(&add).await;
    let port = ["connection", "add", "type", "bridge-slave", "ifname", &eth, "master", &br, "con-name", "br-p"];
    c.ok(&[&port[..], &["autoconnect", "no"]].concat()).await;
    c.ok(&["connection", "up", "br-all"]).await;
    c.until_state(&eth, &["connected"]).await;
    assert!(c.ip(&["link", "show", "dev", &eth]).contains(&format!("master {br}")), "the port joined");
    let active = c.ok(&["-t", "-f", "NAME", "connection", "show", "--active"]).await;
    assert!(active.lines().any(|l| l == "br-p") && active.lines().any(|l| l == "br-all"), "{active}");
    c.ok(&["connection", "down", "br-all"]).await;
    assert!(c.ip(&["link", "show", "type", "bridge"]).trim().is_empty());
}

/// A bridge with DHCP through its port: the lease comes as soon as the
/// port forwards (the first DISCOVER may leave before; DHCP asks again
/// when the bridge's carrier comes rather than seconds later), and the
/// bridge made again has the same address (its MAC is fixed at creation).
#[tokio::test]
async fn a_bridge_takes_its_lease_through_its_port() {
    let (c, _helper) = Core::start_with_dhcp().await;
    let eth = c.uplink(0);
    let br = format!("{}br", &eth[..eth.len() - 2]);
    c.ok(&[
        "connection",
        "add",
        "type",
        "bridge",
        "ifname",
        &br,
        "con-name",
        "brd",
        "autoconnect",
        "no",
        "bridge.stp",
        "no",
        "ipv6.method",
        "disabled",
    ])
    .await;
    c.ok(&[
        "connection",
        "add",
        "type",
        "ethernet",
        "slave-type",
        "bridge",
        "master",
        &br,
        "ifname",
        &eth,
        "con-name",
        "brd-port",
        "autoconnect",
        "no",
    ])
    .await;
    // (addresses without their lifetimes, MAC) once the bridge is up: well
    // before the client's first retransmission (4 s).
    let up = async |c: &Core| {
        let started = Instant::now();
        c.ok(&["connection", "up", "brd-port"]).await;
        c.until_state(&br, &["connected"]).await;
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert!(c.ip(&["-4", "route", "show", "default"]).contains(&format!("dev {br}")));
        let addr: Vec<String> = inet_lines(&c.ip(&["-4", "addr", "show", "dev", &br]))
            .iter()
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
            .collect();
        let mac = c.ip(&["link", "show", "dev", &br]).lines().nth(1).unwrap_or_default().to_string();
        (addr, mac)
    };
    let first = up(&c).await;
    assert!(first.0.iter().any(|a| a.starts_with("198.18.0.")), "{first:?}");
    c.ok(&["connection", "down", "brd"]).await;
    assert!(c.ip(&["link", "show", "type", "bridge"]).trim().is_empty());
    assert_eq!(up(&c).await, first, "made again: same MAC, same lease");
}

#[tokio::test]
async fn connection_show_names_each_profiles_file() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let add = static_profile("filed", &eth, "192.0.2.60/24", "192.0.2.1", "192.0.2.53");
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    c.ok(&add).await;
    let filename_of =
        |shown: &str| shown.lines().find_map(|l| l.strip_prefix("filed:")).map(str::to_string).unwrap_or_default();
    let file = filename_of(&c.ok(&["-t", "-f", "NAME,FILENAME", "connection", "show"]).await);
    let file = file.as_str();
    assert!(file.ends_with("/etc/NetworkManager/system-connections/filed.nmconnection"), "{file}");
    assert!(std::path::Path::new(file).is_file(), "{file} is the profile's file");
    assert!(std::fs::read_to_string(file).unwrap_or_default().contains("id=filed"), "{file}");
    // An unsaved change moves the profile to the runtime folder, and says so.
    c.ok(&["connection", "modify", "--temporary", "filed", "ipv4.dns", "192.0.2.54"]).await;
    let moved = filename_of(&c.ok(&["-t", "-f", "NAME,FILENAME", "connection", "show"]).await);
    assert!(moved.ends_with("/run/NetworkManager/system-connections/filed.nmconnection"), "{moved}");
    assert!(std::path::Path::new(&moved).is_file(), "{moved}");
}

/// The `inet` lines of `ip -4 addr show`.
fn inet_lines(text: &str) -> Vec<String> {
    text.lines().filter(|l| l.trim_start().starts_with("inet ")).map(str::to_string).collect()
}

/// At equal `dns-priority` the resolver asks the servers of the device
/// with the best default route first, whatever came up first (as
/// NetworkManager orders them); a lower priority still goes first.
#[tokio::test]
async fn the_default_route_device_is_asked_first() {
    let c = Core::start(2, "").await;
    let (eth0, eth1) = (c.uplink(0), c.uplink(1));
    for args in [
        static_profile("first-up", &eth1, "192.0.2.20/24", "192.0.2.1", "192.0.2.201"),
        static_profile("best", &eth0, "198.51.100.20/24", "198.51.100.1", "198.51.100.201"),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        c.ok(&args).await;
    }
    c.ok(&["connection", "modify", "best", "ipv4.route-metric", "50"]).await;
    c.ok(&["connection", "up", "first-up"]).await;
    c.ok(&["connection", "up", "best"]).await;
    let routes = c.ip(&["-4", "route", "show", "default"]);
    assert!(routes.contains(&format!("dev {eth0} proto static metric 50")), "{routes}");
    let servers =
        |c: &Core| c.resolv().lines().filter(|l| l.starts_with("nameserver")).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(servers(&c), ["nameserver 198.51.100.201", "nameserver 192.0.2.201"], "{}", c.resolv());
    c.ok(&["connection", "modify", "first-up", "ipv4.dns-priority", "50"]).await;
    c.ok(&["device", "reapply", &eth1]).await;
    assert_eq!(servers(&c), ["nameserver 192.0.2.201", "nameserver 198.51.100.201"], "{}", c.resolv());
}

/// A stand-in for nm-dhcp-helper: `Start` returns a transaction whose
/// events the test sends by hand, so nm-core's side of DHCP is tested
/// without a DHCP server.
struct FakeHelper {
    started: tokio::sync::mpsc::UnboundedSender<(u32, VarDict)>,
}

#[zbus::interface(name = "org.freedesktop.nm_dhcp_helper")]
impl FakeHelper {
    fn start(&self, ifindex: u32, options: VarDict) -> zbus::OwnedObjectPath {
        let _ = self.started.send((ifindex, options));
        zbus::OwnedObjectPath::try_from("/org/freedesktop/nm_dhcp_helper/Transaction/1").expect("path")
    }
}

struct FakeTransaction;

#[zbus::interface(name = "org.freedesktop.nm_dhcp_helper.Transaction")]
impl FakeTransaction {
    fn stop(&self, release: bool) {
        let _ = release;
    }
    #[zbus(signal)]
    async fn event(emitter: &zbus::object_server::SignalEmitter<'_>, state: &str, lease: VarDict) -> zbus::Result<()>;
}

fn lease(address: &str, lease_time: u32) -> VarDict {
    let v = |x: zbus::Variant<'static>| zbus::OwnedVariant::try_from(x).expect("variant");
    let mut options = std::collections::HashMap::new();
    options.insert("ip_address".to_string(), address.to_string());
    options.insert("dhcp_lease_time".to_string(), lease_time.to_string());
    [
        ("address", v(zbus::Variant::from(address.to_string()))),
        ("prefix", v(zbus::Variant::from(24u32))),
        ("routers", v(zbus::Variant::from(vec!["198.18.0.1".to_string()]))),
        ("dns", v(zbus::Variant::from(vec!["198.18.0.1".to_string()]))),
        ("domain-name", v(zbus::Variant::from("lab.test".to_string()))),
        ("lease-time", v(zbus::Variant::from(lease_time))),
        ("options", v(zbus::Variant::from(options))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[tokio::test]
async fn a_dhcp_lease_is_applied_renewed_and_taken_away() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let (tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let helper = zbus::connection::Builder::address(c.lab.bus_address())
        .serve_at("/org/freedesktop/nm_dhcp_helper", FakeHelper { started: tx })
        .serve_at("/org/freedesktop/nm_dhcp_helper/Transaction/1", FakeTransaction)
        .name("org.freedesktop.nm_dhcp_helper")
        .build()
        .await
        .expect("the stand-in owns its name");
    c.ok(&nm_lab::add_ethernet(&eth, "dyn", &[("ipv6.method", "disabled"), ("connection.autoconnect", "no")])).await;

    // `connection up` waits for the lease; send it once Start was called.
    let emitter = zbus::object_server::SignalEmitter::new(&helper, "/org/freedesktop/nm_dhcp_helper/Transaction/1")
        .expect("emitter");
    let up = c.nmcli(&["connection", "up", "dyn"]);
    let serve = async {
        let (ifindex, options) =
            tokio::time::timeout(STEP, started.recv()).await.expect("Start within the step").expect("Start");
        assert!(ifindex > 0);
        assert!(options.contains_key("timeout") && options.contains_key("uuid"), "{options:?}");
        FakeTransaction::event(&emitter, "bound", lease("198.18.0.150", 120)).await.expect("bound");
    };
    let (out, ()) = tokio::join!(up, serve);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);

    let addr = c.ip(&["-4", "addr", "show", "dev", &eth]);
    assert!(addr.contains("198.18.0.150/24"), "{addr}");
    assert!(addr.contains("valid_lft 1") && !addr.contains("forever"), "the lease's lifetime: {addr}");
    let routes = c.ip(&["-4", "route", "show", "dev", &eth]);
    assert!(routes.contains("default via 198.18.0.1 proto dhcp metric 100"), "{routes}");
    assert!(c.resolv().contains("nameserver 198.18.0.1") && c.resolv().contains("search lab.test"), "{}", c.resolv());
    let show = c.ok(&["-f", "DHCP4", "device", "show", &eth]).await;
    assert!(show.contains("ip_address = 198.18.0.150"), "{show}");

    // A renewal with another address moves the configuration.
    FakeTransaction::event(&emitter, "renew", lease("198.18.0.151", 120)).await.expect("renew");
    c.until("the renewed address", |c| c.ip(&["-4", "addr", "show", "dev", &eth]).contains("198.18.0.151/24")).await;
    assert!(!c.ip(&["-4", "addr", "show", "dev", &eth]).contains("198.18.0.150"));
    // Expiry takes it away; the activation waits for a new lease.
    FakeTransaction::event(&emitter, "expire", VarDict::new()).await.expect("expire");
    c.until("the address removed", |c| !c.ip(&["-4", "addr", "show", "dev", &eth]).contains("198.18.0.151")).await;
    assert!(!c.ip(&["-4", "route"]).contains("default"));
    FakeTransaction::event(&emitter, "bound", lease("198.18.0.152", 120)).await.expect("bound again");
    c.until("the address back", |c| c.ip(&["-4", "addr", "show", "dev", &eth]).contains("198.18.0.152/24")).await;
}

/// A lease from the lab's dnsmasq, with the profile's own route through a
/// gateway in the leased network (reachable only once the lease is in).
#[tokio::test]
async fn dhcp_against_dnsmasq_through_the_unprivileged_helper() {
    let (c, _helper) = Core::start_with_dhcp().await;
    let eth = c.uplink(0);
    c.add_dhcp_profile(&eth, &[("ipv4.routes", "10.5.0.0/16 198.18.0.254 50")]).await;
    c.ok(&["connection", "up", "dyn"]).await;
    let addr = c.ip(&["-4", "addr", "show", "dev", &eth]);
    assert!(addr.contains("inet 198.18.0.1") && addr.contains("/24"), "an address from the pool: {addr}");
    assert!(!addr.contains("forever"), "the address carries the lease's lifetime: {addr}");
    let routes = c.ip(&["-4", "route", "show", "dev", &eth]);
    assert!(routes.contains("default via 198.18.0.1 proto dhcp metric 100"), "{routes}");
    assert!(routes.contains("198.18.0.0/24 proto kernel scope link"), "{routes}");
    assert!(routes.contains("10.5.0.0/16 via 198.18.0.254 proto static metric 50"), "{routes}");
    let resolv = c.resolv();
    assert!(resolv.contains("nameserver 198.18.0.1") && resolv.contains("lab.test"), "{resolv}");
    let dhcp = c.ok(&["-f", "DHCP4", "device", "show", &eth]).await;
    assert!(dhcp.contains("ip_address = 198.18.0.1"), "{dhcp}");
    assert!(dhcp.contains("dhcp_server_identifier = 198.18.0.1"), "{dhcp}");
    // Reapply keeps the lease's address and routes (the next renewal is
    // half an hour away) and changes what the profile says.
    c.ok(&["connection", "modify", "dyn", "ipv4.dns", "192.0.2.77"]).await;
    c.ok(&["device", "reapply", &eth]).await;
    assert_eq!(
        inet_lines(&c.ip(&["-4", "addr", "show", "dev", &eth])),
        inet_lines(&addr),
        "reapply keeps the lease's address"
    );
    let after = c.ip(&["-4", "route", "show", "dev", &eth]);
    assert!(after.contains("default via 198.18.0.1 proto dhcp metric 100"), "{after}");
    assert!(c.resolv().contains("nameserver 192.0.2.77"), "{}", c.resolv());
    // What the profile makes of the lease changes with it: the lease's
    // routes move to the new metric, the old ones go.
    c.ok(&["connection", "modify", "dyn", "ipv4.route-metric", "50"]).await;
    c.ok(&["device", "reapply", &eth]).await;
    let moved = c.ip(&["-4", "route", "show", "dev", &eth]);
    assert!(moved.contains("default via 198.18.0.1 proto dhcp metric 50"), "{moved}");
    assert!(!moved.contains("metric 100"), "{moved}");
    assert_eq!(inet_lines(&c.ip(&["-4", "addr", "show", "dev", &eth])), inet_lines(&addr), "the lease stays");
    c.ok(&["connection", "down", "dyn"]).await;
    assert!(!c.ip(&["-4", "addr", "show", "dev", &eth]).contains("198.18.0.1"), "down removes the lease's address");
}

/// `ipv6.method=auto` against router advertisements that allow SLAAC: the
/// kernel makes the address and the default route comes at the device's
/// metric (100, as NetworkManager's), both in IP6Config; `down` takes them
/// away again, and `manual` takes nothing from routers.
#[tokio::test]
async fn ipv6_auto_takes_the_router_advertisement_at_the_device_metric() {
    let lab = Lab::builder().uplinks(1).ipv6_slaac(true).build().expect("lab");
    let router = lab.uplinks()[0].server_ll6.to_string();
    let prefix = lab.uplinks()[0].server_v6.segments();
    let (c, _helper) = Core::start_with_dhcp_lab(lab).await;
    let eth = c.uplink(0);
    let sysctl = |key: &str| {
        let file = format!("/proc/sys/net/ipv6/conf/{eth}/{key}");
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", c.lab.client_netns(), "cat", &file])
            .output()
            .expect("cat");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let global = |c: &Core| c.ip(&["-6", "addr", "show", "dev", &eth, "scope", "global", "-tentative"]);
    // The first global /64 address in the router's prefix (dnsmasq's
    // `slaac` mode also says "managed": a DHCPv6 /128 comes beside it).
    let slaac = |c: &Core| {
        global(c)
            .split_whitespace()
            .filter_map(|w| w.strip_suffix("/64")?.parse::<std::net::Ipv6Addr>().ok())
            .find(|a| a.segments()[..4] == prefix[..4])
    };
    let default6 = |c: &Core| c.ip(&["-6", "route", "show", "default", "dev", &eth]);
    c.ok(&nm_lab::add_ethernet(
        &eth,
        "dual",
        &[("ipv4.method", "auto"), ("ipv6.method", "auto"), ("connection.autoconnect", "no")],
    ))
    .await;
    c.ok(&["connection", "up", "dual"]).await;
    assert_eq!(
        (sysctl("accept_ra"), sysctl("ra_defrtr_metric")),
        ("2".to_string(), "100".to_string()),
        "{}",
        nm_lab::tail(&c.log(), 30)
    );
    // Duplicate address detection first (link-local, then the new address): about two seconds.
    c.until("a SLAAC address", |c| slaac(c).is_some()).await;
    c.until("the router's default route", |c| default6(c).contains(&format!("via {router}"))).await;
    let route = default6(&c);
    assert!(route.contains("proto ra metric 100"), "{route}");
    let address = format!("{}/64", slaac(&c).expect("the SLAAC address"));
    // NetworkManager's default interface identifiers are stable privacy
    // (RFC 7217), not the MAC's (EUI-64: ….ff:fe…).
    assert_eq!(sysctl("addr_gen_mode"), "2");
    let eui64 = |a: std::net::Ipv6Addr| a.segments()[5] & 0x00ff == 0x00ff && a.segments()[6] >> 8 == 0xfe;
    assert!(!eui64(slaac(&c).expect("the SLAAC address")), "{address}");
    // The link-local one too, though the link was up before (the kernel
    // made it with the MAC's identifier then).
    let link_local = c.ip(&["-6", "-o", "addr", "show", "dev", &eth, "scope", "link"]);
    let ll: Vec<std::net::Ipv6Addr> =
        link_local.split_whitespace().filter_map(|w| w.strip_suffix("/64")?.parse().ok()).collect();
    assert!(ll.len() == 1 && !eui64(ll[0]), "{link_local}");
    let show = c.ok(&["-t", "-f", "IP6.ADDRESS,IP6.GATEWAY", "device", "show", &eth]).await;
    assert!(show.contains(&format!(":{address}")), "IP6Config lists the SLAAC address {address}:\n{show}");
    assert!(show.contains("IP6.ADDRESS[") && show.contains(":fe80::"), "and the link-local one:\n{show}");
    assert!(show.contains(&format!("IP6.GATEWAY:{router}")), "{show}");
    // The only IPv6 default route is the router's: this activation is the
    // IPv6 default one.
    let deadline = Instant::now() + STEP;
    while c.ok(&["-g", "GENERAL.DEFAULT6", "connection", "show", "dual"]).await.trim() != "yes" {
        assert!(Instant::now() < deadline, "GENERAL.DEFAULT6 never yes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    c.ok(&["connection", "down", "dual"]).await;
    assert_eq!(sysctl("accept_ra"), "0", "no more advertisements once down");
    assert!(slaac(&c).is_none(), "down removes the SLAAC address: {}", global(&c));
    assert!(default6(&c).is_empty(), "down removes the router's route: {}", default6(&c));

    // Up again on a link that stayed up: nm-core solicits the router (the
    // kernel would wait for its next unsolicited advertisement, minutes
    // away), so address and route are back within the DAD of the address.
    c.ok(&["connection", "up", "dual"]).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while slaac(&c).is_none() || default6(&c).is_empty() {
        assert!(Instant::now() < deadline, "no router answer 5 s after up:\n{}", nm_lab::tail(&c.log(), 30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(format!("{}/64", slaac(&c).expect("the SLAAC address")), address, "the same stable address again");
    c.ok(&["connection", "down", "dual"]).await;

    // `eui64` asks for the MAC's identifiers.
    c.ok(&["connection", "modify", "dual", "ipv6.addr-gen-mode", "eui64"]).await;
    c.ok(&["connection", "up", "dual"]).await;
    assert_eq!(sysctl("addr_gen_mode"), "0");
    c.until("an EUI-64 SLAAC address", |c| slaac(c).is_some_and(eui64)).await;
    c.ok(&["connection", "down", "dual"]).await;

    c.ok(&["connection", "modify", "dual", "ipv6.method", "manual", "ipv6.addresses", "2001:db8::9/64"]).await;
    c.ok(&["connection", "up", "dual"]).await;
    assert_eq!(sysctl("accept_ra"), "0", "manual takes nothing from routers");
    assert!(c.ip(&["-6", "addr", "show", "dev", &eth]).contains("2001:db8::9/64"));
}

/// `ipv6.method=auto` against a router that says "managed" (dnsmasq with a
/// DHCPv6 range and no SLAAC, the lab's default): as with NetworkManager,
/// the address comes by DHCPv6 (through the unprivileged nm-dhcp-helper)
/// and goes into the kernel as a /128 with the lease's lifetime; IP6Config
/// and DHCP6Config show it, the resolver gets the lease's DNS server, and
/// `down` takes the address away.
#[tokio::test]
async fn ipv6_auto_takes_its_address_by_dhcpv6_when_the_router_says_managed() {
    let lab = Lab::builder().uplinks(1).build().expect("lab");
    let range = lab.uplinks()[0].dhcp6_range;
    let (c, _helper) = Core::start_with_dhcp_lab(lab).await;
    let eth = c.uplink(0);
    let leased = |c: &Core| c.dhcp6_address(&eth, range, true);
    c.ok(&nm_lab::add_ethernet(
        &eth,
        "managed6",
        &[("ipv4.method", "auto"), ("ipv6.method", "auto"), ("connection.autoconnect", "no")],
    ))
    .await;
    c.ok(&["connection", "up", "managed6"]).await;
    // The router's advertisement comes after the link-local address's
    // duplicate address detection (about two seconds), the lease right after.
    c.until("an address by DHCPv6", |c| leased(c).is_some()).await;
    let address = leased(&c).expect("the DHCPv6 address");
    let line = c.ip(&["-6", "-o", "addr", "show", "dev", &eth, "to", &address.to_string()]);
    assert!(line.contains("valid_lft") && !line.contains("valid_lft forever"), "the lease's lifetime: {line}");
    let show = c.ok(&["-t", "-f", "IP6.ADDRESS,IP6.ROUTE,IP6.DNS,DHCP6", "device", "show", &eth]).await;
    assert!(show.contains(&format!(":{address}/128")), "IP6Config lists {address}/128:\n{show}");
    assert!(show.contains(&format!("ip6_address = {address}")), "DHCP6Config lists the lease:\n{show}");
    let dns = show
        .lines()
        .find_map(|l| l.strip_prefix("IP6.DNS[1]:"))
        .unwrap_or_else(|| panic!("the lease's DNS server in IP6Config:\n{show}"))
        .to_string();
    assert!(c.resolv().contains(&format!("nameserver {dns}")), "{}", c.resolv());

    assert!(show.contains("IP6.ROUTE") && show.contains("::/64, nh = ::"), "the router's on-link prefix:\n{show}");

    c.ok(&["connection", "down", "managed6"]).await;
    assert_eq!(leased(&c), None, "down removes the DHCPv6 address");
    let routes = c.ip(&["-6", "route", "show", "dev", &eth]);
    assert!(
        routes.lines().all(|l| l.starts_with("fe80::/64") || l.starts_with("multicast")),
        "down removes what routers gave, the on-link prefix too:\n{routes}"
    );
    let show = c.ok(&["-t", "-f", "GENERAL.STATE,DHCP6", "device", "show", &eth]).await;
    assert!(!show.contains("ip6_address"), "{show}");
}

/// A DHCPv6 address another host already has (its duplicate address
/// detection fails) is taken away and declined, and the device gets
/// another, as NetworkManager does.
#[tokio::test]
async fn a_dhcpv6_address_in_use_is_declined_and_another_taken() {
    let lab = Lab::builder().uplinks(1).build().expect("lab");
    let range = lab.uplinks()[0].dhcp6_range;
    let server_if = lab.uplinks()[0].server_if.clone();
    let (c, _helper) = Core::start_with_dhcp_lab(lab).await;
    let eth = c.uplink(0);
    // (the kernel marks an address whose DAD failed tentative too)
    let leased = |c: &Core| c.dhcp6_address(&eth, range, true);
    c.ok(&nm_lab::add_ethernet(
        &eth,
        "dup6",
        &[("ipv4.method", "disabled"), ("ipv6.method", "dhcp"), ("connection.autoconnect", "no")],
    ))
    .await;
    c.ok(&["connection", "up", "dup6"]).await;
    c.until("the first DHCPv6 address past DAD", |c| leased(c).is_some()).await;
    let first = leased(&c).expect("an address");
    c.ok(&["connection", "down", "dup6"]).await;
    // dnsmasq gives the same client the same address again; now the far
    // end has it too.
    c.server_ip(&["-6", "addr", "add", &format!("{first}/64"), "dev", &server_if, "nodad"]);
    c.ok(&["connection", "up", "dup6"]).await;
    c.until("another DHCPv6 address", |c| leased(c).is_some_and(|a| a != first)).await;
    // (dnsmasq writes its log a little after it answers.)
    let dnsmasq = |c: &Core| std::fs::read_to_string(c.lab.dnsmasq_log().expect("dnsmasq log")).unwrap_or_default();
    c.until("dnsmasq's log of the Decline", |c| dnsmasq(c).contains("DHCPDECLINE")).await;
    assert!(dnsmasq(&c).contains(&first.to_string()));
    assert!(c.log().contains("declining it"), "{}", c.log());
    let all = c.ip(&["-6", "-o", "addr", "show", "dev", &eth]);
    assert!(!all.contains(&format!("{first}/128")), "the address in use is gone: {all}");
    let show = c.ok(&["-t", "-f", "GENERAL.STATE", "device", "show", &eth]).await;
    assert!(show.contains("100 (connected)"), "{show}");
}

/// `ipv6.method=dhcp` without IPv4: DHCPv6 without waiting for a router,
/// and the activation waits for the lease (as NetworkManager's does), so
/// once `nmcli connection up` returns the address is in the kernel.
#[tokio::test]
async fn ipv6_method_dhcp_alone_activates_with_its_lease() {
    let lab = Lab::builder().uplinks(1).build().expect("lab");
    let range = lab.uplinks()[0].dhcp6_range;
    let (c, _helper) = Core::start_with_dhcp_lab(lab).await;
    let eth = c.uplink(0);
    c.ok(&nm_lab::add_ethernet(
        &eth,
        "dhcp6only",
        &[("ipv4.method", "disabled"), ("ipv6.method", "dhcp"), ("connection.autoconnect", "no")],
    ))
    .await;
    c.ok(&["connection", "up", "dhcp6only"]).await;
    let Some(address) = c.dhcp6_address(&eth, range, false) else {
        let out = c.ip(&["-6", "-o", "addr", "show", "dev", &eth, "scope", "global"]);
        panic!("no DHCPv6 address once activated: {out}\n{}", nm_lab::tail(&c.log(), 30))
    };
    let show = c.ok(&["-t", "-f", "GENERAL.STATE,IP6.ADDRESS", "device", "show", &eth]).await;
    assert!(show.contains("GENERAL.STATE:100 (connected)") && show.contains(&format!(":{address}/128")), "{show}");
    c.ok(&["connection", "down", "dhcp6only"]).await;
    assert!(!c.ip(&["-6", "addr", "show", "dev", &eth]).contains(&address.to_string()), "down removes it");
}

/// `ipv6.method=dhcp` with no DHCPv6 server and nothing else configured:
/// after `ipv6.dhcp-timeout` the activation fails, as NetworkManager's does.
#[tokio::test]
async fn ipv6_method_dhcp_without_a_server_fails_after_its_timeout() {
    let lab = Lab::builder().uplinks(1).ipv6(false).build().expect("lab");
    let (c, _helper) = Core::start_with_dhcp_lab(lab).await;
    let eth = c.uplink(0);
    c.ok(&nm_lab::add_ethernet(
        &eth,
        "nodhcp6",
        &[
            ("ipv4.method", "disabled"),
            ("ipv6.method", "dhcp"),
            ("ipv6.dhcp-timeout", "3"),
            ("connection.autoconnect", "no"),
        ],
    ))
    .await;
    let started = Instant::now();
    let out = c.nmcli(&["connection", "up", "nodhcp6"]).await;
    assert!(!out.success(), "no lease, no activation: {}{}", out.stdout, out.stderr);
    // The device's reason, as NetworkManager's nmcli prints it.
    assert!(out.stderr.contains("IP configuration could not be reserved"), "{}", out.stderr);
    assert!(started.elapsed() >= Duration::from_secs(3), "only after the timeout: {:?}", started.elapsed());
    let state = c.ok(&["-t", "-f", "GENERAL.STATE", "device", "show", &eth]).await;
    assert!(!state.contains("100"), "{state}");
}

/// `connection down` blocks only that profile: the device takes another
/// one that may autoconnect, as NetworkManager's does; deleting the active
/// profile does the same; `device disconnect` keeps the device down.
#[tokio::test]
async fn down_or_delete_lets_the_device_take_another_profile() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let has = |c: &Core, a: &str| c.ip(&["-4", "addr", "show", "dev", &eth]).contains(a);
    c.ok(&nm_lab::add_ethernet(&eth, "fallback", &[("ipv4.method", "manual"), ("ipv4.addresses", "192.0.2.70/24")]))
        .await;
    c.until("the fallback profile", |c| has(c, "192.0.2.70/24")).await;
    let manual = [("ipv4.method", "manual"), ("ipv4.addresses", "192.0.2.71/24"), ("connection.autoconnect", "no")];
    c.ok(&nm_lab::add_ethernet(&eth, "chosen", &manual)).await;
    c.ok(&["connection", "up", "chosen"]).await;
    assert!(has(&c, "192.0.2.71/24") && !has(&c, "192.0.2.70/24"));
    // The profile says when it was last activated.
    let stamp = c.ok(&["-g", "connection.timestamp", "connection", "show", "chosen"]).await;
    assert!(stamp.trim().parse::<u64>().is_ok_and(|t| t > 1_700_000_000), "{stamp}");

    c.ok(&["connection", "down", "chosen"]).await;
    c.until("the fallback after down", |c| has(c, "192.0.2.70/24")).await;
    c.until_state(&eth, &["connected"]).await;

    c.ok(&["connection", "up", "chosen"]).await;
    c.ok(&["connection", "delete", "chosen"]).await;
    c.until("the fallback after delete", |c| has(c, "192.0.2.70/24")).await;

    c.ok(&["device", "disconnect", &eth]).await;
    assert!(!has(&c, "192.0.2.70/24"), "disconnect keeps the device down");
    let devices = c.ok(&["-t", "device", "status"]).await;
    assert_eq!(c.device_state(&devices, &eth), "disconnected", "{devices}");
}

/// `nmcli connection load FILE`: a keyfile written into the profile
/// directory is there when the command returns; files elsewhere or
/// missing are refused and nothing changes.
#[tokio::test]
async fn connection_load_reads_the_named_files() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    let file = c.lab.root_path("/etc/NetworkManager/system-connections/loaded.nmconnection");
    let text = format!(
        "[connection]\nid=loaded\nuuid=6c6f6164-6564-4000-8000-000000000001\ntype=ethernet\n\
         interface-name={eth}\nautoconnect=false\n\n[ipv4]\nmethod=disabled\n\n[ipv6]\nmethod=ignore\n"
    );
    write_keyfile(&file, &text);
    let path = file.display().to_string();
    c.ok(&["connection", "load", &path]).await;
    assert!(c.ok(&["-t", "-f", "NAME", "connection", "show"]).await.lines().any(|l| l == "loaded"));

    let outside = c.lab.root_path("/outside.nmconnection");
    std::fs::copy(&file, &outside).expect("copy");
    // nmcli names each file that could not be loaded.
    for bad in [outside.display().to_string(), format!("{path}.missing")] {
        let out = c.nmcli(&["connection", "load", &bad]).await;
        let said = format!("{}{}", out.stdout, out.stderr);
        assert!(said.contains(&format!("Could not load file '{bad}'")), "{said}");
    }
    let names = c.ok(&["-t", "-f", "NAME", "connection", "show"]).await;
    assert_eq!(names.lines().filter(|l| *l == "loaded").count(), 1, "{names}");
}

/// `nmcli general logging` changes nm-core's log level (a debug line shows
/// up) and reports what was set; bad levels and domains are refused.
/// `nmcli general reload dns-rc` writes the resolver file again.
#[tokio::test]
async fn logging_and_reload_through_nmcli() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    // At ERR the activation's INFO lines stay out of the log; at DEBUG the
    // next one's DEBUG lines are in it (the lab runs nm-core at INFO).
    assert!(!c.log().contains("DEBUG"), "the lab's level is INFO");
    c.ok(&["general", "logging", "level", "ERR", "domains", "ALL"]).await;
    let quiet = [("ipv4.method", "manual"), ("ipv4.addresses", "192.0.2.79/24"), ("connection.autoconnect", "no")];
    c.ok(&nm_lab::add_ethernet(&eth, "quiet", &quiet)).await;
    c.ok(&["connection", "up", "quiet"]).await;
    assert!(!c.log().contains("activating 'quiet'"), "{}", nm_lab::tail(&c.log(), 10));
    c.ok(&["general", "logging", "level", "DEBUG", "domains", "ALL"]).await;
    let shown = c.ok(&["-t", "general", "logging"]).await;
    assert_eq!(shown.trim(), "DEBUG:ALL", "{shown}");
    let logged = [("ipv4.method", "manual"), ("ipv4.addresses", "192.0.2.80/24"), ("ipv4.dns", "192.0.2.53")];
    c.ok(&nm_lab::add_ethernet(&eth, "logged", &logged)).await;
    c.ok(&["connection", "up", "logged"]).await;
    assert!(c.log().contains("activating 'logged'") && c.log().contains("DEBUG"), "{}", nm_lab::tail(&c.log(), 10));
    let out = c.nmcli(&["general", "logging", "level", "LOUD"]).await;
    assert!(!out.success() && out.stderr.contains("Unknown log level"), "{}", out.stderr);
    let out = c.nmcli(&["general", "logging", "level", "INFO", "domains", "NOPE"]).await;
    assert!(!out.success() && out.stderr.contains("Unknown log domain"), "{}", out.stderr);
    assert_eq!(c.ok(&["-t", "general", "logging"]).await.trim(), "DEBUG:ALL", "nothing changed");

    c.until("the resolver", |c| c.resolv().contains("nameserver 192.0.2.53")).await;
    let resolv = c.lab.root_path("/etc/resolv.conf");
    std::fs::write(&resolv, "nameserver 203.0.113.1\n").expect("someone else's resolv.conf");
    c.ok(&["general", "reload", "dns-rc"]).await;
    assert!(c.resolv().contains("nameserver 192.0.2.53"), "{}", c.resolv());
    c.ok(&["general", "reload"]).await;

    // A resolver file that is a symlink (systemd-resolved's stub, say) is
    // its owner's: left as it is, while NetworkManager's copy in /run
    // follows the profiles, as with rc-manager=symlink.
    let stub = c.lab.root_path("/run/stub-resolv.conf");
    std::fs::write(&stub, "nameserver 127.0.0.53\n").expect("the stub");
    std::fs::remove_file(&resolv).expect("resolv.conf goes");
    std::os::unix::fs::symlink(&stub, &resolv).expect("resolv.conf is a symlink");
    c.ok(&["general", "reload", "dns-rc"]).await;
    c.ok(&["connection", "modify", "logged", "ipv4.dns", "192.0.2.54"]).await;
    c.ok(&["device", "reapply", &eth]).await;
    let copy = c.lab.root_path("/run/NetworkManager/resolv.conf");
    c.until("the runtime copy", |_| {
        std::fs::read_to_string(&copy).unwrap_or_default().contains("nameserver 192.0.2.54")
    })
    .await;
    assert!(std::fs::symlink_metadata(&resolv).expect("resolv.conf").file_type().is_symlink(), "still a symlink");
    assert_eq!(std::fs::read_to_string(&stub).expect("the stub"), "nameserver 127.0.0.53\n", "the stub untouched");
    let dns = c.proxy("/org/freedesktop/NetworkManager/DnsManager", "org.freedesktop.NetworkManager.DnsManager").await;
    assert_eq!(dns.get_property::<String>("RcManager").await.expect("RcManager"), "symlink");
}

/// nm-core started first, as it may be when its services start beside it:
/// it says start-up is not complete until nm-system-settings is there,
/// then waits for nm-dhcp-helper before DHCP; and when the helper restarts
/// under it, the lease is taken back without the address going.
#[tokio::test]
async fn nm_core_started_before_its_services_waits_for_them() {
    let lab = Lab::builder().uplinks(1).ipv6(false).build().expect("lab");
    lab.write_core_config("carrier-grace-ms = 300\ncarrier-wait-ms = 2000\nsettings-wait-ms = 60000\n")
        .expect("config");
    let state = lab.root_path("/var/lib/NetworkManager");
    std::fs::create_dir_all(&state).expect("state dir");
    std::os::unix::fs::chown(&state, Some(nm_lab::NOBODY), Some(nm_lab::NOBODY)).expect("chown the state dir");
    let eth = lab.uplinks()[0].client_if.clone();
    lab.write_profile(
        "dyn.nmconnection",
        &format!(
            "[connection]\nid=dyn\nuuid=64796e61-6d69-4300-8000-000000000001\ntype=ethernet\ninterface-name={eth}\n\n\
             [ipv4]\nmethod=auto\n\n[ipv6]\nmethod=disabled\n"
        ),
    )
    .expect("profile");
    let mut c = Core { lab, settings: None, core: None };
    c.core = Some(c.lab.spawn_daemon("nm-core", &[]).await.expect("nm-core"));
    let online = |t: &'static str| {
        let cmd = c.lab.command("nm-online").args(["-s", "-q", "-t", t]).timeout(STEP);
        async move { cmd.output().await.expect("nm-online") }
    };
    assert!(!online("0").await.success(), "start-up is not complete without the profiles");
    assert!(c.ok(&["-t", "-f", "NAME", "connection", "show"]).await.trim().is_empty(), "no profiles yet");

    c.settings = Some(c.lab.spawn_daemon("nm-system-settings", &[]).await.expect("nm-system-settings"));
    c.until("the activation waiting for the helper", |c| c.log().contains("waits for nm-dhcp-helper")).await;
    assert!(!c.ip(&["-4", "addr", "show", "dev", &eth]).contains("inet "), "no address without the helper");

    let mut helper = unprivileged_helper(&c.lab).await;
    c.until("the lease's address", |c| c.ip(&["-4", "addr", "show", "dev", &eth]).contains("inet 198.18.0.1")).await;
    assert!(
        online("10").await.success(),
        "start-up complete once the profile is active\n{}",
        nm_lab::tail(&c.log(), 30)
    );
    let addr = c.ip(&["-4", "-o", "addr", "show", "dev", &eth]);

    // The helper stops: the address stays (with its lease's lifetime); it
    // comes back: nm-core starts the transaction again, and the helper asks
    // for the same address (INIT-REBOOT from its lease file).
    let status = helper.stop().await.expect("SIGTERM stops nm-dhcp-helper");
    assert!(status.success(), "{status:?}");
    c.until("nm-core seeing the helper go", |c| c.log().contains("nm-dhcp-helper left the bus")).await;
    assert!(c.ip(&["-4", "addr", "show", "dev", &eth]).contains("inet 198.18.0.1"), "the address stays");
    let helper = unprivileged_helper(&c.lab).await;
    c.until("a second transaction", |c| c.log().matches("DHCPv4 started for 'dyn'").count() >= 2).await;
    let deadline = Instant::now() + STEP;
    while !helper.log().contains("bound") {
        assert!(Instant::now() < deadline, "the lease is bound again\n{}", nm_lab::tail(&helper.log(), 30));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ip_of = |line: &str| line.split_whitespace().nth(3).map(str::to_string);
    let again = c.ip(&["-4", "-o", "addr", "show", "dev", &eth]);
    assert_eq!(ip_of(&again), ip_of(&addr), "the same address, kept throughout");
    assert!(c.ok(&["-t", "-f", "GENERAL.STATE", "device", "show", &eth]).await.contains("100"), "still activated");
}

#[tokio::test]
async fn dhcp_with_address_conflict_detection_activates() {
    // ipv4.dad-timeout asks the helper to probe the offered address first
    // (RFC 5227); nobody else has it, so the activation goes on after that.
    let (c, helper) = Core::start_with_dhcp_lab(Lab::builder().uplinks(1).ipv6(false).build().expect("lab")).await;
    let eth = c.uplink(0);
    c.add_dhcp_profile(&eth, &[("ipv4.dad-timeout", "400")]).await;
    c.ok(&["connection", "up", "dyn"]).await;
    let addr = c.ip(&["-4", "addr", "show", "dev", &eth]);
    assert!(addr.contains("inet 198.18.0.1") && addr.contains("/24"), "an address from the pool: {addr}");
    let log = helper.log();
    assert!(log.contains("acd=Some(400ms)"), "nm-core asked for the check:\n{}", nm_lab::tail(&log, 20));
    assert!(!log.contains("address conflict"), "{}", nm_lab::tail(&log, 20));
}

fn valid_lft(addr: &str) -> Option<u32> {
    addr.split_whitespace().skip_while(|w| *w != "valid_lft").nth(1)?.trim_end_matches("sec").parse().ok()
}

#[tokio::test]
async fn a_lease_is_renewed_lost_and_found_again_without_anyone_acting() {
    // dnsmasq's shortest lease is two minutes: T1 of 3 s and T2 of 6 s make
    // renewal and rebinding quick; expiry takes the two minutes.
    let lab = Lab::builder()
        .uplinks(1)
        .ipv6(false)
        .dhcp_lease("2m")
        .dnsmasq_arg("--dhcp-option=option:T1,3")
        .dnsmasq_arg("--dhcp-option=option:T2,6")
        .build()
        .expect("lab");
    let (mut c, _helper) = Core::start_with_dhcp_lab(lab).await;
    let eth = c.uplink(0);
    c.add_dhcp_profile(&eth, &[]).await;
    c.ok(&["connection", "up", "dyn"]).await;
    let has_address = |c: &Core| c.ip(&["-4", "addr", "show", "dev", &eth]).contains("inet 198.18.0.1");
    assert!(has_address(&c));

    // A renewal reaches dnsmasq and refreshes the address's lifetime.
    let start = Instant::now();
    c.until("a renewal in dnsmasq's log", |c| {
        std::fs::read_to_string(c.lab.dnsmasq_log().expect("log")).unwrap_or_default().matches("DHCPACK").count() >= 2
    })
    .await;
    c.until("the lifetime refreshed", |c| {
        let lft = valid_lft(&c.ip(&["-4", "addr", "show", "dev", &eth])).unwrap_or(0);
        lft + start.elapsed().as_secs() as u32 > 121
    })
    .await;

    // dnsmasq goes: rebinding fails, the lease expires, the address goes.
    c.lab.stop_dnsmasq();
    let deadline = Instant::now() + Duration::from_secs(200);
    while has_address(&c) {
        assert!(Instant::now() < deadline, "the address outlived its lease\n{}", nm_lab::tail(&c.log(), 30));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(!c.ip(&["-4", "route"]).contains("default"), "its routes went with it");
    // dnsmasq is back: the address returns by itself.
    c.lab.start_dnsmasq().expect("dnsmasq again");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !has_address(&c) {
        assert!(Instant::now() < deadline, "no address after dnsmasq came back\n{}", nm_lab::tail(&c.log(), 30));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    c.until("the default route back", |c| {
        c.ip(&["-4", "route", "show", "dev", &eth]).contains("default via 198.18.0.1 proto dhcp metric 100")
    })
    .await;
}

type Interfaces = std::collections::HashMap<String, std::collections::HashMap<String, zbus::OwnedVariant>>;

/// An `InterfacesAdded` or `InterfacesRemoved` from nm-core.
struct Announcement {
    member: String,
    path: OwnedObjectPath,
    names: std::collections::BTreeSet<String>,
    /// The added interfaces' properties.
    props: Interfaces,
}

/// Reads announcements into `seen` until one satisfies `wanted`.
async fn announcement_where(
    stream: &mut zbus::MessageStream,
    seen: &mut Vec<Announcement>,
    log: &str,
    wanted: impl Fn(&Announcement) -> bool,
) -> usize {
    use futures_util::StreamExt;
    loop {
        let msg = tokio::time::timeout(STEP, stream.next())
            .await
            .unwrap_or_else(|_| panic!("no such announcement\n{}", nm_lab::tail(log, 40)))
            .expect("a message")
            .expect("a good message");
        let member = msg.header().member().map(|m| m.to_string()).unwrap_or_default();
        let a = match member.as_str() {
            "InterfacesAdded" => {
                let (path, props): (OwnedObjectPath, Interfaces) = msg.body().deserialize().expect("oa{sa{sv}}");
                Announcement { member, path, names: props.keys().cloned().collect(), props }
            }
            "InterfacesRemoved" => {
                let (path, names): (OwnedObjectPath, Vec<String>) = msg.body().deserialize().expect("oas");
                Announcement { member, path, names: names.into_iter().collect(), props: Interfaces::new() }
            }
            _ => continue,
        };
        seen.push(a);
        if wanted(&seen[seen.len() - 1]) {
            return seen.len() - 1;
        }
    }
}

/// As NetworkManager announces them: a new device is one `InterfacesAdded`
/// carrying all its interfaces (libnm takes a device's type from the first
/// announcement), its removal one `InterfacesRemoved`, and
/// `GetManagedObjects` lists exactly the objects and their interfaces.
#[tokio::test]
async fn objects_are_announced_whole_and_listed_as_networkmanager_does() {
    let c = Core::start(1, "").await;
    let bus = c.lab.bus().await.expect("lab bus");
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.freedesktop.DBus.ObjectManager")
        .build()
        .expect("match rule");
    let mut stream = zbus::MessageStream::for_match_rule(rule, &bus, None).await.expect("subscribe");
    let mut seen = Vec::new();

    let br = format!("{}br", c.lab.names().base());
    c.ip(&["link", "add", &br, "type", "bridge"]);
    let names_br = |a: &Announcement| {
        a.props
            .get("org.freedesktop.NetworkManager.Device")
            .and_then(|d| d.get("Interface"))
            .is_some_and(|i| i.try_clone().ok().and_then(|i| String::try_from(i).ok()).as_deref() == Some(br.as_str()))
    };
    let added = announcement_where(&mut stream, &mut seen, &c.log(), names_br).await;
    let path = seen[added].path.clone();
    let expected: std::collections::BTreeSet<String> = [
        "org.freedesktop.NetworkManager.Device",
        "org.freedesktop.NetworkManager.Device.Bridge",
        "org.freedesktop.NetworkManager.Device.Statistics",
    ]
    .map(String::from)
    .into();
    assert_eq!(seen[added].names, expected, "one announcement with every interface of {path}");

    let om = c.proxy("/org/freedesktop", "org.freedesktop.DBus.ObjectManager").await;
    let objects: std::collections::HashMap<OwnedObjectPath, Interfaces> =
        om.call("GetManagedObjects", &()).await.expect("GetManagedObjects");
    let listed: std::collections::BTreeSet<String> = objects[&path].keys().cloned().collect();
    assert_eq!(listed, expected);
    for (p, ifaces) in &objects {
        assert!(!ifaces.is_empty(), "{p} is listed without interfaces");
    }
    for p in ["/org/freedesktop/NetworkManager", "/org/freedesktop/NetworkManager/Settings"] {
        assert!(objects.keys().any(|o| o.as_str() == p), "{p} listed");
    }
    assert!(!objects.keys().any(|o| o.as_str() == "/org/freedesktop"), "the object manager is not one of its objects");

    c.ip(&["link", "del", &br]);
    let removed =
        announcement_where(&mut stream, &mut seen, &c.log(), |a| a.member == "InterfacesRemoved" && a.path == path)
            .await;
    assert_eq!(seen[removed].names, expected, "one withdrawal of every interface");
    let about_it: Vec<&str> = seen.iter().filter(|a| a.path == path).map(|a| a.member.as_str()).collect();
    assert_eq!(about_it, ["InterfacesAdded", "InterfacesRemoved"]);
    let objects: std::collections::HashMap<OwnedObjectPath, Interfaces> =
        om.call("GetManagedObjects", &()).await.expect("GetManagedObjects");
    assert!(!objects.contains_key(&path), "{path} no longer listed");
}
