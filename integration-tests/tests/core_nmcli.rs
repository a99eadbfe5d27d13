//! nm-core driven by Debian's real `nmcli` and `nm-online` on the lab bus,
//! with the kernel's state read back with `ip` after every step. Needs root.

use std::time::{Duration, Instant};

use nm_lab::{DaemonHandle, Lab, Output};

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
        let lab = Lab::builder()
            .uplinks(uplinks)
            .dnsmasq(false)
            .build()
            .expect("lab");
        lab.write_core_config(&format!(
            "carrier-grace-ms = 300\ncarrier-wait-ms = 2000\n{extra_config}"
        ))
        .expect("config");
        let mut c = Core {
            lab,
            settings: None,
            core: None,
        };
        c.settings = Some(
            c.lab
                .spawn_daemon("nm-system-settings", &[])
                .await
                .expect("nm-system-settings"),
        );
        c.core = Some(c.lab.spawn_daemon("nm-core", &[]).await.expect("nm-core"));
        c
    }

    async fn restart_core(&mut self) {
        if let Some(mut old) = self.core.take() {
            let status = old.stop().await.expect("SIGTERM stops nm-core");
            assert!(
                status.success(),
                "nm-core exits cleanly on SIGTERM: {status:?}"
            );
        }
        self.core = Some(
            self.lab
                .spawn_daemon("nm-core", &[])
                .await
                .expect("nm-core again"),
        );
    }

    fn log(&self) -> String {
        self.core.as_ref().map(|d| d.log()).unwrap_or_default()
    }

    async fn nmcli(&self, args: &[&str]) -> Output {
        self.lab
            .command("nmcli")
            .args(args)
            .timeout(STEP)
            .output()
            .await
            .expect("nmcli runs")
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

    fn ip(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("ip")
            .arg("-n")
            .arg(self.lab.client_netns())
            .args(args)
            .output()
            .expect("ip runs");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn server_ip(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("ip")
            .arg("-n")
            .arg(self.lab.server_netns().expect("server namespace"))
            .args(args)
            .output()
            .expect("ip runs");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
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
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                nm_lab::tail(&self.log(), 40)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
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
    [
        "connection",
        "add",
        "type",
        "ethernet",
        "ifname",
        ifname,
        "con-name",
        name,
        "ipv4.method",
        "manual",
        "ipv4.addresses",
        addr,
        "ipv4.gateway",
        gw,
        "ipv4.dns",
        dns,
        "ipv6.method",
        "disabled",
        "connection.autoconnect",
        "no",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[tokio::test]
async fn nmcli_commands_work_and_the_kernel_agrees() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);

    let status = c.ok(&["general", "status"]).await;
    assert!(
        status.contains("disconnected") || status.contains("connected"),
        "{status}"
    );
    let devices = c.ok(&["-t", "device", "status"]).await;
    assert!(devices.contains(&format!("{eth}:ethernet:")), "{devices}");

    // connection add: a keyfile appears, nmcli sees the profile.
    let add: Vec<String> =
        static_profile("office", &eth, "192.0.2.10/24", "192.0.2.1", "192.0.2.53");
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    let out = c.ok(&add).await;
    assert!(out.contains("successfully added"), "{out}");
    assert!(
        c.lab
            .root_path("/etc/NetworkManager/system-connections/office.nmconnection")
            .exists()
    );
    let show = c.ok(&["-t", "-f", "NAME,TYPE", "connection", "show"]).await;
    assert!(show.contains("office:802-3-ethernet"), "{show}");
    let fields = c
        .ok(&[
            "-t",
            "-f",
            "ipv4.addresses,ipv4.gateway,ipv4.dns",
            "connection",
            "show",
            "office",
        ])
        .await;
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
    assert!(
        routes.contains("default via 192.0.2.1 proto static metric 100"),
        "{routes}"
    );
    assert!(
        routes.contains("192.0.2.0/24 proto kernel scope link metric 100"),
        "{routes}"
    );
    assert!(
        c.resolv().contains("nameserver 192.0.2.53"),
        "{}",
        c.resolv()
    );
    let devices = c.ok(&["-t", "device", "status"]).await;
    assert_eq!(c.device_state(&devices, &eth), "connected", "{devices}");
    let show = c.ok(&["device", "show", &eth]).await;
    assert!(
        show.contains("192.0.2.10/24") && show.contains("192.0.2.1"),
        "{show}"
    );
    let active = c
        .ok(&["-t", "-f", "NAME,DEVICE", "connection", "show", "--active"])
        .await;
    assert!(active.contains(&format!("office:{eth}")), "{active}");

    // modify: the keyfile changes; a re-up applies the new address.
    c.ok(&[
        "connection",
        "modify",
        "office",
        "ipv4.addresses",
        "192.0.2.11/24",
        "ipv4.dns",
        "192.0.2.54",
    ])
    .await;
    let file = std::fs::read_to_string(
        c.lab
            .root_path("/etc/NetworkManager/system-connections/office.nmconnection"),
    )
    .expect("keyfile");
    assert!(file.contains("address1=192.0.2.11/24,192.0.2.1"), "{file}");
    c.ok(&["connection", "up", "office"]).await;
    let addr = c.ip(&["-4", "addr", "show", "dev", &eth]);
    assert!(
        addr.contains("192.0.2.11/24") && !addr.contains("192.0.2.10/24"),
        "{addr}"
    );
    assert!(
        c.resolv().contains("nameserver 192.0.2.54"),
        "{}",
        c.resolv()
    );

    // down: the configuration leaves the kernel.
    c.ok(&["connection", "down", "office"]).await;
    let addr = c.ip(&["-4", "addr", "show", "dev", &eth]);
    assert!(!addr.contains("192.0.2.11"), "{addr}");
    assert!(
        !c.ip(&["-4", "route"]).contains("default"),
        "no default route after down"
    );

    // device connect picks the profile; device disconnect takes it down.
    c.ok(&["device", "connect", &eth]).await;
    assert!(
        c.ip(&["-4", "addr", "show", "dev", &eth])
            .contains("192.0.2.11/24")
    );
    c.ok(&["device", "disconnect", &eth]).await;
    assert!(
        !c.ip(&["-4", "addr", "show", "dev", &eth])
            .contains("192.0.2.11/24")
    );
    let devices = c.ok(&["-t", "device", "status"]).await;
    assert_eq!(c.device_state(&devices, &eth), "disconnected", "{devices}");

    // delete of an active profile: deactivated first, then gone.
    c.ok(&["connection", "up", "office"]).await;
    c.ok(&["connection", "delete", "office"]).await;
    assert!(
        !c.lab
            .root_path("/etc/NetworkManager/system-connections/office.nmconnection")
            .exists()
    );
    assert!(
        !c.ip(&["-4", "addr", "show", "dev", &eth])
            .contains("192.0.2.11")
    );
    assert!(!c.ok(&["connection", "show"]).await.contains("office"));

    // nm-online -s: start-up is complete.
    let online = c
        .lab
        .command("nm-online")
        .args(["-s", "-q", "-t", "10"])
        .timeout(STEP)
        .output()
        .await
        .expect("nm-online");
    assert!(
        online.success(),
        "nm-online -s: {:?} {}",
        online.status,
        online.stderr
    );
}

#[tokio::test]
async fn device_connect_without_a_profile_completes_one() {
    let c = Core::start(1, "").await;
    let eth = c.uplink(0);
    // No profile: nmcli falls back to AddAndActivateConnection, whose
    // partial profile nm-core completes (type, uuid, interface-name, auto).
    let out = c.nmcli(&["device", "connect", &eth]).await;
    let profiles = c.ok(&["-t", "-f", "NAME,TYPE", "connection", "show"]).await;
    assert!(
        profiles.contains(&format!("{eth}:802-3-ethernet")),
        "{profiles}\n{}{}",
        out.stdout,
        out.stderr
    );
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
    let mut child = tokio::process::Command::from(monitor)
        .kill_on_drop(true)
        .spawn()
        .expect("nmcli monitor");
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
        assert!(
            Instant::now() < deadline,
            "nmcli monitor printed no activation:\n{}",
            seen.lock().expect("lock")
        );
        c.ok(&["connection", "up", "mon"]).await;
        c.ok(&["connection", "down", "mon"]).await;
    }
    let text = seen.lock().expect("lock").clone();
    assert!(
        text.contains(&format!("{eth}: using connection 'mon'")) || text.contains("connecting"),
        "{text}"
    );
    reader.abort();
    let _ = child.kill().await;
}
