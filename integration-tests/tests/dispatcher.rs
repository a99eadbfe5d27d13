//! nm-dispatcher end to end: nm-core (driven by the real nmcli) calls it,
//! the lab bus starts it by activation, and scripts in the lab root's
//! `dispatcher.d` record their arguments and environment to files. Needs root.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nm_lab::{DaemonHandle, Lab, Output};

const STEP: Duration = Duration::from_secs(20);

/// What scripts record: every call writes its environment to
/// `env.<action>` (whole, by rename), then appends `action iface` to
/// `calls`, so a test that sees the call reads the whole environment.
const RECORD: &str = r#"#!/bin/sh
out="$(dirname "$0")"
case "$out" in */pre-up.d|*/pre-down.d) out="$(dirname "$out")" ;; esac
out="$out/../out"
env > "$out/.env.$2.$$" && mv "$out/.env.$2.$$" "$out/env.$2"
echo "$2 $1" >> "$out/calls"
"#;

struct Setup {
    lab: Lab,
    helper: Option<DaemonHandle>,
    _settings: DaemonHandle,
    core: DaemonHandle,
    scripts: PathBuf,
    out: PathBuf,
}

impl Setup {
    /// nm-system-settings and nm-core, nm-dispatcher activatable on the bus
    /// (scripts time out after `timeout_ms`), and with `dhcp` dnsmasq and
    /// the helper.
    async fn start(lab: Lab, dhcp: bool, timeout_ms: u64) -> Setup {
        Self::start_with(lab, dhcp, timeout_ms, true).await
    }

    /// As [`Setup::start`]; `installed`: whether the dispatcher's bus
    /// service file is there from the start.
    async fn start_with(lab: Lab, dhcp: bool, timeout_ms: u64, installed: bool) -> Setup {
        lab.write_core_config(&format!(
            "carrier-grace-ms = 300\ncarrier-wait-ms = 2000\n[dispatcher]\nscript-timeout-ms = {timeout_ms}\n"
        ))
        .expect("config");
        let scripts = lab.root_path("/etc/NetworkManager/dispatcher.d");
        let out = lab.root_path("/etc/NetworkManager/out");
        for dir in [scripts.join("pre-up.d"), scripts.join("pre-down.d"), scripts.join("no-wait.d"), out.clone()] {
            std::fs::create_dir_all(&dir).expect("script folders");
        }
        if installed {
            lab.install_bus_service("nm-dispatcher", &[]).expect("activatable dispatcher");
        }
        let helper = if dhcp {
            let state = lab.root_path("/var/lib/NetworkManager");
            std::fs::create_dir_all(&state).expect("state dir");
            std::os::unix::fs::chown(&state, Some(nm_lab::NOBODY), Some(nm_lab::NOBODY)).expect("chown");
            Some(
                lab.daemon("nm-dhcp-helper")
                    .uid(nm_lab::NOBODY)
                    .caps(["net_raw", "net_bind_service"])
                    .spawn()
                    .await
                    .expect("nm-dhcp-helper"),
            )
        } else {
            None
        };
        let settings = lab.spawn_daemon("nm-system-settings", &[]).await.expect("nm-system-settings");
        let core = lab.spawn_daemon("nm-core", &[]).await.expect("nm-core");
        Setup { lab, helper, _settings: settings, core, scripts, out }
    }

    fn script(&self, name: &str, body: &str, mode: u32) -> PathBuf {
        let path = self.scripts.join(name);
        std::fs::write(&path, body).expect("script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("mode");
        path
    }

    fn uplink(&self) -> String {
        self.lab.uplinks()[0].client_if.clone()
    }

    fn logs(&self) -> String {
        let bus = self.lab.bus_log().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
        format!(
            "--- bus (nm-dispatcher) ---\n{}\n--- nm-core ---\n{}",
            nm_lab::tail(&bus, 30),
            nm_lab::tail(&self.core.log(), 30)
        )
    }

    async fn nmcli(&self, args: &[&str]) -> Output {
        self.lab.command("nmcli").args(args).timeout(STEP).output().await.expect("nmcli runs")
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.nmcli(args).await;
        assert!(out.success(), "nmcli {args:?}: {}{}\n{}", out.stdout, out.stderr, self.logs());
        out.stdout
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.out.join(name)).unwrap_or_default()
    }

    /// Waits (bounded, polling the file the scripts write) until `check` holds.
    async fn until(&self, what: &str, check: impl Fn(&Setup) -> bool) {
        let deadline = Instant::now() + STEP;
        while !check(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn env(&self, action: &str) -> Vec<(String, String)> {
        self.read(&format!("env.{action}"))
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect()
    }
}

fn var<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Opens the FIFO for writing (which waits for its reader) and writes a line.
async fn release(fifo: &Path) {
    let fifo = fifo.to_path_buf();
    let write = tokio::task::spawn_blocking(move || std::fs::write(&fifo, "go\n"));
    tokio::time::timeout(STEP, write).await.expect("a script reads the FIFO").expect("join").expect("write");
}

/// Payloads in DHCP options: the helper drops what is not a name or safe
/// text; what it passes (`&`, `*`, spaces) must stay inert.
fn hostile_lab(pwned: &Path) -> Lab {
    let p = pwned.display();
    Lab::builder()
        .uplinks(1)
        .dnsmasq_arg(&format!("--dhcp-option-force=12,$(touch {p})"))
        .dnsmasq_arg(&format!("--dhcp-option-force=17,x & touch {p} & *"))
        // Renewal after 3 s, so that dhcp4-change comes within the test
        // (as in core_nmcli: dnsmasq's shortest lease, short T1 and T2).
        .dhcp_lease("2m")
        .dnsmasq_arg("--dhcp-option=option:T1,3")
        .dnsmasq_arg("--dhcp-option=option:T2,6")
        .build()
        .expect("lab")
}

#[tokio::test]
async fn scripts_run_for_every_action_with_networkmanagers_arguments_and_environment() {
    let pwned = std::env::temp_dir().join(format!("nm-rs-pwned-{}", std::process::id()));
    let _ = std::fs::remove_file(&pwned);
    let s = Setup::start(hostile_lab(&pwned), true, 1500).await;
    let eth = s.uplink();
    s.script("10-record", RECORD, 0o755);
    s.script("pre-up.d/10-record", RECORD, 0o755);
    s.script("pre-down.d/10-record", RECORD, 0o755);
    let refused_marker = s.out.join("refused-ran");
    let marker = format!("#!/bin/sh\ntouch {}\n", refused_marker.display());
    s.script("20-group-writable", &marker, 0o775);
    let foreign = s.script("21-not-root", &marker, 0o755);
    std::os::unix::fs::chown(&foreign, Some(nm_lab::NOBODY), None).expect("chown");
    // Hangs on `up`: killed at the limit (1.5 s), the next script still runs.
    s.script(
        "30-hang",
        &format!(
            "#!/bin/sh\n[ \"$2\" = up ] || exit 0\necho $$ > {}\nexec sleep 600\n",
            s.out.join("hang.pid").display()
        ),
        0o755,
    );
    // Not waited for: blocks on a FIFO, yet 40-after runs while it does.
    let fifo = s.out.join("fifo");
    mkfifo(&fifo);
    s.script(
        "no-wait.d/35-nowait",
        &format!(
            "#!/bin/sh\n[ \"$2\" = up ] || exit 0\nread x < {}\necho released > {}\n",
            fifo.display(),
            s.out.join("nowait.done").display()
        ),
        0o755,
    );
    symlink("no-wait.d/35-nowait", s.scripts.join("35-nowait")).expect("symlink");
    s.script("40-after", &format!("#!/bin/sh\necho \"$2\" >> {}\n", s.out.join("after").display()), 0o755);

    s.ok(&nm_lab::add_ethernet(&eth, "dyn", &[("ipv4.method", "auto"), ("ipv6.method", "disabled")])).await;
    let uuid = s.ok(&["-g", "connection.uuid", "connection", "show", "dyn"]).await.trim().to_string();
    s.ok(&["connection", "up", "dyn"]).await;

    // up: the hanging script was killed, 40-after ran, the no-wait one still blocks.
    s.until("40-after to run for up", |s| s.read("after").lines().any(|l| l == "up")).await;
    assert!(!s.out.join("nowait.done").exists(), "the no-wait script is still blocked, and was not waited for");
    let hang_pid: u32 = s.read("hang.pid").trim().parse().expect("the hanging script wrote its pid");
    assert!(!nm_lab::pid_running(hang_pid), "the hanging script was killed at the limit");
    release(&fifo).await;
    s.until("the no-wait script to finish", |s| s.out.join("nowait.done").exists()).await;

    let up = s.env("up");
    assert_eq!(var(&up, "NM_DISPATCHER_ACTION"), Some("up"));
    assert_eq!(var(&up, "DEVICE_IFACE"), Some(eth.as_str()));
    assert_eq!(var(&up, "DEVICE_IP_IFACE"), Some(eth.as_str()));
    assert_eq!(var(&up, "CONNECTION_ID"), Some("dyn"));
    assert_eq!(var(&up, "CONNECTION_UUID"), Some(uuid.as_str()));
    let file = var(&up, "CONNECTION_FILENAME").unwrap_or_default();
    assert!(file.ends_with("/NetworkManager/system-connections/dyn.nmconnection"), "CONNECTION_FILENAME {file:?}");
    assert!(
        var(&up, "CONNECTION_DBUS_PATH").is_some_and(|p| p.starts_with("/org/freedesktop/NetworkManager/Settings/"))
    );
    let address = var(&up, "IP4_ADDRESS_0").unwrap_or_default();
    assert!(address.starts_with("198.18.0.") && address.ends_with("/24 198.18.0.1"), "IP4_ADDRESS_0={address}\n{up:?}");
    assert_eq!(var(&up, "IP4_NUM_ADDRESSES"), Some("1"));
    assert_eq!(var(&up, "IP4_GATEWAY"), Some("198.18.0.1"));
    assert!(var(&up, "IP4_NUM_ROUTES").is_some());
    assert!(var(&up, "IP4_NAMESERVERS").is_some_and(|n| n.contains("198.18.0.1")), "{up:?}");
    assert!(var(&up, "DHCP4_IP_ADDRESS").is_some_and(|a| address.starts_with(&format!("{a}/"))), "{up:?}");
    assert_eq!(var(&up, "DHCP4_DHCP_SERVER_IDENTIFIER"), Some("198.18.0.1"));
    // The payloads: the one with `$( )` never got past the helper; the one
    // that did is a value like any other, and nothing ran.
    assert_eq!(var(&up, "DHCP4_ROOT_PATH"), Some(format!("x & touch {} & *", pwned.display()).as_str()));
    assert!(up.iter().all(|(_, v)| !v.contains("$(")), "{up:?}");
    let helper_log = s.helper.as_ref().map(|h| h.log()).unwrap_or_default();
    assert!(
        helper_log.lines().any(|l| l.contains("dropped a value from the server") && l.contains("option=12")),
        "the server did send the host name payload, and the helper dropped it:\n{helper_log}"
    );
    let resolv = std::fs::read_to_string(s.lab.root_path("/etc/resolv.conf")).unwrap_or_default();
    assert!(!resolv.contains("touch") && resolv.contains("nameserver 198.18.0.1"), "{resolv}");
    assert!(!pwned.exists(), "a DHCP string was executed");

    let pre_up = s.env("pre-up");
    assert!(var(&pre_up, "IP4_ADDRESS_0").is_some(), "pre-up scripts see the addresses: {pre_up:?}");
    assert_eq!(var(&pre_up, "CONNECTION_ID"), Some("dyn"));

    // connectivity-change came with the activation; dhcp4-change with the
    // renewal; reapply with `device reapply`.
    // (NONE at start-up, then FULL once the uplink is up.)
    s.until("connectivity-change to FULL", |s| {
        var(&s.env("connectivity-change"), "CONNECTIVITY_STATE") == Some("FULL")
    })
    .await;
    assert_eq!(var(&s.env("connectivity-change"), "DEVICE_IFACE"), None);
    s.until("dhcp4-change", |s| s.read("calls").lines().any(|l| l == format!("dhcp4-change {eth}"))).await;
    let renewed = s.env("dhcp4-change");
    assert_eq!(var(&renewed, "DHCP4_IP_ADDRESS"), var(&up, "DHCP4_IP_ADDRESS"), "{renewed:?}");
    assert_eq!(var(&renewed, "IP4_ADDRESS_0"), Some(address), "{renewed:?}");
    s.ok(&["device", "reapply", &eth]).await;
    s.until("reapply", |s| s.read("calls").lines().any(|l| l == format!("reapply {eth}"))).await;
    assert_eq!(var(&s.env("reapply"), "CONNECTION_UUID"), Some(uuid.as_str()));

    s.ok(&["connection", "down", "dyn"]).await;
    s.until("down", |s| s.read("calls").lines().any(|l| l.starts_with("down "))).await;
    let calls: Vec<String> = s.read("calls").lines().map(str::to_string).collect();
    let order: Vec<&str> = calls.iter().map(|l| l.split(' ').next().unwrap_or_default()).collect();
    let pos = |a: &str| order.iter().position(|x| *x == a).unwrap_or_else(|| panic!("{a} missing: {calls:?}"));
    assert!(pos("pre-up") < pos("up") && pos("up") < pos("pre-down") && pos("pre-down") < pos("down"), "{calls:?}");
    assert!(
        calls
            .iter()
            .filter(|l| !l.starts_with("connectivity-change") && !l.starts_with("hostname"))
            .all(|l| l.ends_with(&format!(" {eth}"))),
        "argv[1] is the interface: {calls:?}"
    );
    assert_eq!(var(&s.env("down"), "CONNECTION_ID"), Some("dyn"));
    assert_eq!(var(&s.env("down"), "IP4_ADDRESS_0"), None, "no IP data once down");

    assert!(!refused_marker.exists(), "a refused script ran");
    let bus_log = s.lab.bus_log().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
    assert!(bus_log.contains("20-group-writable: writable by group or other"), "{}", s.logs());
    assert!(bus_log.contains("21-not-root: not owned by root"), "{}", s.logs());
    assert!(bus_log.contains("30-hang' timed out"), "{}", s.logs());
}

#[tokio::test]
async fn pre_up_holds_the_device_in_ip_check_and_hostname_changes_are_dispatched() {
    let lab = Lab::builder().uplinks(1).dnsmasq(false).build().expect("lab");
    let s = Setup::start(lab, false, 60_000).await;
    let eth = s.uplink();
    let fifo = s.out.join("pre-up.fifo");
    mkfifo(&fifo);
    s.script("pre-up.d/10-block", &format!("#!/bin/sh\nread x < {}\n", fifo.display()), 0o755);
    s.script("10-record", RECORD, 0o755);
    s.ok(&nm_lab::add_ethernet(
        &eth,
        "st",
        &[
            ("ipv4.method", "manual"),
            ("ipv4.addresses", "192.0.2.40/24"),
            ("ipv4.gateway", "192.0.2.1"),
            ("ipv6.method", "disabled"),
            ("connection.autoconnect", "no"),
        ],
    ))
    .await;
    let up = s.lab.command("nmcli").args(["connection", "up", "st"]).timeout(STEP).output();
    // IP_CHECK (80) while the pre-up script blocks; nm-core keeps answering.
    let hold = async {
        let deadline = Instant::now() + STEP;
        loop {
            let state = s.ok(&["-g", "GENERAL.STATE", "device", "show", &eth]).await;
            if state.starts_with("80 ") {
                break;
            }
            assert!(!state.starts_with("100 "), "activated before pre-up finished: {state}");
            assert!(Instant::now() < deadline, "never reached IP_CHECK: {state}\n{}", s.logs());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        release(&fifo).await;
    };
    let (out, ()) = tokio::join!(up, hold);
    let out = out.expect("nmcli runs");
    assert!(out.success(), "{}{}\n{}", out.stdout, out.stderr, s.logs());
    assert!(s.ok(&["-g", "GENERAL.STATE", "device", "show", &eth]).await.starts_with("100 "));
    s.until("up", |s| s.read("calls").lines().any(|l| l == format!("up {eth}"))).await;

    let hostname_calls = |s: &Setup| s.read("calls").lines().filter(|l| *l == "hostname none").count();
    let before = hostname_calls(&s);
    s.ok(&["general", "hostname", "dispatched.lab.test"]).await;
    s.until("hostname", |s| hostname_calls(s) > before).await;
    let env = s.env("hostname");
    assert_eq!(var(&env, "NM_DISPATCHER_ACTION"), Some("hostname"));
    assert_eq!(var(&env, "DEVICE_IFACE"), None, "{env:?}");
}

/// Without a dispatcher nm-core makes no calls; one installed later (the
/// bus reloads its service files) is found without restarting nm-core.
#[tokio::test]
async fn a_dispatcher_installed_later_is_found() {
    let lab = Lab::builder().uplinks(1).dnsmasq(false).build().expect("lab");
    let s = Setup::start_with(lab, false, 60_000, false).await;
    let eth = s.uplink();
    s.script("10-record", RECORD, 0o755);
    s.ok(&nm_lab::add_ethernet(
        &eth,
        "later",
        &[
            ("ipv4.method", "manual"),
            ("ipv4.addresses", "192.0.2.41/24"),
            ("ipv6.method", "disabled"),
            ("connection.autoconnect", "no"),
        ],
    ))
    .await;
    s.ok(&["connection", "up", "later"]).await;
    s.ok(&["connection", "down", "later"]).await;
    assert_eq!(s.read("calls"), "", "no dispatcher, no scripts");

    // As after a package install: the file, then the bus reloads (and says so).
    s.lab.install_bus_service("nm-dispatcher", &[]).expect("install the dispatcher");
    s.ok(&["connection", "up", "later"]).await;
    s.until("up", |s| s.read("calls").lines().any(|l| l == format!("up {eth}"))).await;
}
