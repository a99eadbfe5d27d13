//! Secret agents and wired 802.1X, for real: hostapd (`driver=wired`, its
//! EAP server) on the far end of a veth, Debian's wpa_supplicant on the lab
//! bus driven by nm-core, Debian's nmcli (`--ask` through a pty) as the
//! agent. Needs root.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nm_lab::{DaemonHandle, Hostapd, Lab, Output};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zbus::OwnedVariant;

const STEP: Duration = Duration::from_secs(40);
const PASSWORD: &str = "correct-horse";

struct Dot1x {
    lab: Lab,
    hostapd: Hostapd,
    _supplicant: DaemonHandle,
    _settings: DaemonHandle,
    core: DaemonHandle,
}

impl Dot1x {
    async fn start() -> Dot1x {
        let lab = Lab::builder().uplinks(1).dnsmasq(false).ipv6(false).supplicant(true).build().expect("lab");
        lab.write_core_config("carrier-grace-ms = 300\ncarrier-wait-ms = 2000\n").expect("config");
        let hostapd = lab.hostapd(0, &[("alice", PASSWORD)]).expect("hostapd");
        let supplicant = lab.wpa_supplicant().spawn().await.expect("wpa_supplicant on the lab bus");
        let settings = lab.spawn_daemon("nm-system-settings", &[]).await.expect("nm-system-settings");
        let core = lab.spawn_daemon("nm-core", &[]).await.expect("nm-core");
        Dot1x { lab, hostapd, _supplicant: supplicant, _settings: settings, core }
    }

    fn eth(&self) -> String {
        self.lab.uplinks()[0].client_if.clone()
    }

    fn log(&self) -> String {
        self.core.log()
    }

    async fn nmcli(&self, args: &[&str]) -> Output {
        self.lab.command("nmcli").args(args).timeout(STEP).output().await.expect("nmcli runs")
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.nmcli(args).await;
        assert!(
            out.success(),
            "nmcli {args:?} failed ({:?}):\n{}{}\n--- nm-core ---\n{}\n--- hostapd ---\n{}",
            out.status,
            out.stdout,
            out.stderr,
            nm_lab::tail(&self.log(), 40),
            nm_lab::tail(&self.hostapd.log(), 20)
        );
        out.stdout
    }

    /// A static ethernet profile with EAP-MD5 as alice (autoconnect off).
    async fn add(&self, name: &str, addr: &str, secret: &[&str]) {
        let eth = self.eth();
        let mut args = nm_lab::add_ethernet(
            &eth,
            name,
            &[
                ("ipv4.method", "manual"),
                ("ipv4.addresses", addr),
                ("ipv6.method", "disabled"),
                ("connection.autoconnect", "no"),
                ("802-1x.eap", "md5"),
                ("802-1x.identity", "alice"),
            ],
        );
        args.extend_from_slice(secret);
        self.ok(&args).await;
    }

    fn addresses(&self) -> String {
        let out = std::process::Command::new("ip")
            .args(["-n", self.lab.client_netns(), "-4", "addr", "show", "dev", &self.eth()])
            .output()
            .expect("ip runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `nmcli --ask connection up NAME` on a pty (`script`), answering each
    /// password prompt with the next of `passwords` and every identity
    /// prompt (pre-filled with the profile's) with Enter. Returns the exit
    /// status, the whole terminal output and how many password prompts came.
    async fn ask_up(&self, name: &str, passwords: &[&str]) -> (bool, String, usize) {
        let mut cmd = tokio::process::Command::new("ip");
        cmd.args(["netns", "exec", self.lab.client_netns(), "script", "-qfec"])
            .arg(format!("nmcli --ask connection up {name}"))
            .arg("/dev/null")
            .envs(self.lab.client_env())
            .env("TERM", "dumb")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("script runs");
        let mut stdin = child.stdin.take().expect("stdin");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut seen = String::new();
        let (mut prompts, mut identities) = (0usize, 0usize);
        let deadline = Instant::now() + STEP;
        let mut buf = [0u8; 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let n = match tokio::time::timeout(left, stdout.read(&mut buf)).await {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => panic!("reading nmcli's terminal: {e}"),
                Err(_) => {
                    panic!("nmcli --ask did not finish:\n{seen}\n--- nm-core ---\n{}", nm_lab::tail(&self.log(), 40))
                }
            };
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            while seen.matches("(802-1x.identity):").count() > identities {
                identities += 1;
                stdin.write_all(b"\n").await.expect("answering the identity prompt");
            }
            while seen.matches("(802-1x.password):").count() > prompts {
                let answer = passwords.get(prompts).copied().unwrap_or("");
                prompts += 1;
                stdin.write_all(format!("{answer}\n").as_bytes()).await.expect("typing the password");
            }
        }
        let status = tokio::time::timeout(STEP, child.wait()).await.expect("nmcli exits").expect("wait");
        drop(stdin);
        (status.success(), seen, prompts)
    }

    /// No file under the lab root that others may read holds `secret`.
    fn assert_no_readable_file_has(&self, secret: &str) {
        fn walk(dir: &Path, secret: &str, bad: &mut Vec<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else { return };
            for e in entries.flatten() {
                let Ok(meta) = std::fs::symlink_metadata(e.path()) else { continue };
                if meta.is_dir() {
                    walk(&e.path(), secret, bad);
                } else if meta.is_file()
                    && meta.permissions().mode() & 0o004 != 0
                    && std::fs::read(e.path()).is_ok_and(|b| String::from_utf8_lossy(&b).contains(secret))
                {
                    bad.push(e.path().display().to_string());
                }
            }
        }
        let mut bad = Vec::new();
        walk(self.lab.root(), secret, &mut bad);
        assert!(bad.is_empty(), "world-readable files hold the secret: {bad:?}");
    }

    fn assert_secret_nowhere(&self, shown: &str) {
        assert!(!shown.contains(PASSWORD), "nmcli connection show prints the secret:\n{shown}");
        assert!(!self.log().contains(PASSWORD), "nm-core's log holds the secret");
        self.assert_no_readable_file_has(PASSWORD);
    }
}

#[tokio::test]
async fn stored_password_authenticates_and_stays_secret() {
    let c = Dot1x::start().await;
    c.add("office-8021x", "192.0.2.10/24", &["802-1x.password", PASSWORD]).await;
    let out = c.ok(&["connection", "up", "office-8021x"]).await;
    assert!(out.contains("successfully activated"), "{out}");
    let hostapd = c.hostapd.log();
    assert!(hostapd.contains("CTRL-EVENT-EAP-SUCCESS"), "hostapd saw no authentication:\n{hostapd}");
    assert!(hostapd.contains("authorizing port"), "{hostapd}");
    assert!(c.addresses().contains("192.0.2.10/24"), "{}", c.addresses());
    assert!(c.log().contains("from the settings service"), "{}", nm_lab::tail(&c.log(), 30));

    let shown = c.ok(&["connection", "show", "office-8021x"]).await;
    assert!(shown.contains("802-1x.identity:") && shown.contains("alice"), "{shown}");
    c.assert_secret_nowhere(&shown);
    // The profile file holds it (system-owned), private to root.
    let file = c.lab.root_path("/etc/NetworkManager/system-connections/office-8021x.nmconnection");
    let mode = std::fs::metadata(&file).expect("keyfile").permissions().mode();
    assert_eq!(mode & 0o077, 0, "{file:?} mode {mode:o}");

    // A wrong stored password: authentication fails, nobody has a new one.
    c.ok(&["connection", "down", "office-8021x"]).await;
    c.ok(&["connection", "modify", "office-8021x", "802-1x.password", "wrong-horse"]).await;
    let started = Instant::now();
    let out = c.nmcli(&["connection", "up", "office-8021x"]).await;
    assert!(!out.success(), "a wrong password must not activate:\n{}", out.stdout);
    assert!(started.elapsed() < Duration::from_secs(20), "failing took {:?}", started.elapsed());
    assert!(out.stderr.contains("Secrets were required"), "{}", out.stderr);
    assert!(c.hostapd.log().contains("CTRL-EVENT-EAP-FAILURE"), "{}", c.hostapd.log());
    assert!(!c.addresses().contains("192.0.2.10"), "{}", c.addresses());
    assert!(!c.log().contains("wrong-horse"), "nm-core's log holds the secret");
}

#[tokio::test]
async fn agent_owned_password_comes_from_nmcli_ask() {
    let c = Dot1x::start().await;
    c.add("lab-8021x", "192.0.2.20/24", &["802-1x.password-flags", "1"]).await;

    // (c) No --ask: nmcli's agent cannot prompt; no secrets, promptly.
    let started = Instant::now();
    let out = c.nmcli(&["connection", "up", "lab-8021x"]).await;
    assert!(!out.success(), "activated without a password:\n{}", out.stdout);
    assert!(out.stderr.contains("Secrets were required, but not provided"), "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(15), "failing took {:?}", started.elapsed());
    let reason = c.ok(&["-t", "-f", "GENERAL.STATE", "device", "show", &c.eth()]).await;
    assert!(!reason.contains("connected (") || reason.contains("disconnected"), "{reason}");

    // (b) --ask: the prompt comes, the typed password authenticates.
    let (ok, terminal, prompts) = c.ask_up("lab-8021x", &[PASSWORD]).await;
    assert!(ok, "nmcli --ask failed:\n{terminal}\n--- nm-core ---\n{}", nm_lab::tail(&c.log(), 40));
    assert_eq!(prompts, 1, "{terminal}");
    assert!(terminal.contains("successfully activated"), "{terminal}");
    assert!(c.hostapd.log().contains("CTRL-EVENT-EAP-SUCCESS"), "{}", c.hostapd.log());
    assert!(c.addresses().contains("192.0.2.20/24"), "{}", c.addresses());
    assert!(c.log().contains("from secret agent 'nmcli-connect'"), "{}", nm_lab::tail(&c.log(), 30));
    c.ok(&["connection", "down", "lab-8021x"]).await;

    // A wrong password first: the agent is asked again (REQUEST_NEW).
    let (ok, terminal, prompts) = c.ask_up("lab-8021x", &["wrong-horse", PASSWORD]).await;
    assert!(ok, "nmcli --ask failed:\n{terminal}\n--- nm-core ---\n{}", nm_lab::tail(&c.log(), 40));
    assert_eq!(prompts, 2, "{terminal}");
    assert!(c.hostapd.log().contains("CTRL-EVENT-EAP-FAILURE"), "{}", c.hostapd.log());
    assert!(c.addresses().contains("192.0.2.20/24"), "{}", c.addresses());

    // (d) Never shown, logged, or written where others read.
    let shown = c.ok(&["connection", "show", "lab-8021x"]).await;
    c.assert_secret_nowhere(&shown);
    assert!(!c.log().contains("wrong-horse"));
    let file =
        std::fs::read_to_string(c.lab.root_path("/etc/NetworkManager/system-connections/lab-8021x.nmconnection"))
            .expect("keyfile");
    assert!(!file.contains(PASSWORD), "an agent-owned secret was saved:\n{file}");
}

/// A secret agent of our own on the lab bus: answers with the password.
struct TestAgent {
    asked: std::sync::Arc<std::sync::Mutex<Vec<(String, u32)>>>,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.SecretAgent")]
impl TestAgent {
    fn get_secrets(
        &self,
        _connection: HashMap<String, HashMap<String, OwnedVariant>>,
        _connection_path: zbus::OwnedObjectPath,
        setting_name: String,
        _hints: Vec<String>,
        flags: u32,
    ) -> HashMap<String, HashMap<String, OwnedVariant>> {
        self.asked.lock().unwrap().push((setting_name.clone(), flags));
        let mut s = HashMap::new();
        s.insert("password".to_string(), OwnedVariant::try_from(zbus::Variant::from(PASSWORD)).unwrap());
        HashMap::from([(setting_name, s)])
    }
    fn cancel_get_secrets(&self, _connection_path: zbus::OwnedObjectPath, _setting_name: String) {}
    fn save_secrets(
        &self,
        _connection: HashMap<String, HashMap<String, OwnedVariant>>,
        _connection_path: zbus::OwnedObjectPath,
    ) {
    }
    fn delete_secrets(
        &self,
        _connection: HashMap<String, HashMap<String, OwnedVariant>>,
        _connection_path: zbus::OwnedObjectPath,
    ) {
    }
}

async fn agent_manager(
    bus: &zbus::Connection,
    method: &str,
    body: &(impl zbus::export::serde::Serialize + zbus::zvariant::DynamicType),
) -> zbus::Result<()> {
    bus.call_method(
        Some("org.freedesktop.NetworkManager"),
        "/org/freedesktop/NetworkManager/AgentManager",
        Some("org.freedesktop.NetworkManager.AgentManager"),
        method,
        body,
    )
    .await
    .map(drop)
}

#[tokio::test]
async fn an_agent_is_registered_asked_and_dropped_when_it_leaves() {
    let c = Dot1x::start().await;
    c.add("agent-8021x", "192.0.2.30/24", &["802-1x.password-flags", "1"]).await;

    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let agent = c.lab.bus().await.expect("agent's bus connection");
    agent
        .object_server()
        .at("/org/freedesktop/NetworkManager/SecretAgent", TestAgent { asked: asked.clone() })
        .await
        .expect("agent object");
    agent_manager(&agent, "RegisterWithCapabilities", &("org.nmrs.test-agent", 0u32)).await.expect("register");
    let again = agent_manager(&agent, "Register", &("org.nmrs.test-agent",)).await.unwrap_err();
    assert!(again.to_string().contains("already registered"), "{again}");
    let other = c.lab.bus().await.expect("second connection");
    let bad = agent_manager(&other, "Register", &("a/b",)).await.unwrap_err();
    assert!(bad.to_string().contains("InvalidIdentifier"), "{bad}");
    let none = agent_manager(&other, "Unregister", &()).await.unwrap_err();
    assert!(none.to_string().contains("NotRegistered"), "{none}");

    // Registered first, our agent is asked first (interactively: a user
    // asked for the activation) and its password authenticates.
    let out = c.ok(&["connection", "up", "agent-8021x"]).await;
    assert!(out.contains("successfully activated"), "{out}");
    let calls = asked.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].0, "802-1x");
    assert_ne!(calls[0].1 & 0x1, 0, "ALLOW_INTERACTION for a user's activation: {calls:?}");
    assert!(c.log().contains("from secret agent 'org.nmrs.test-agent'"), "{}", nm_lab::tail(&c.log(), 30));
    c.ok(&["connection", "down", "agent-8021x"]).await;

    // The agent's name leaves the bus: it is dropped, nobody has the secret.
    drop(agent);
    let deadline = Instant::now() + STEP;
    while !c.log().contains("secret agent removed (left the bus)") {
        assert!(Instant::now() < deadline, "agent not dropped:\n{}", nm_lab::tail(&c.log(), 30));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = c.nmcli(&["connection", "up", "agent-8021x"]).await;
    assert!(!out.success(), "{}", out.stdout);
    assert!(out.stderr.contains("Secrets were required"), "{}", out.stderr);
    assert_eq!(asked.lock().unwrap().len(), 1);
    c.assert_secret_nowhere(&c.ok(&["connection", "show", "agent-8021x"]).await);
}
