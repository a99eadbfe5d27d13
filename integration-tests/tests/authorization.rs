//! Who may change what in nm-core (issue 7): Debian's real `nmcli` run as
//! root and as unprivileged users (`setpriv`), without polkit (only root,
//! or members of `auth-group`), and with Debian's real polkitd on the lab
//! bus, given the project's actions file and a rules file of this test's.
//! Every refusal is checked to change nothing (profiles, kernel, state).
//! Needs root.

use std::time::Duration;

use futures_util::StreamExt;
use nm_lab::{DaemonHandle, Lab, NOBODY, Output};

const STEP: Duration = Duration::from_secs(20);
/// uid 1: `daemon` on Debian, in no group but its own.
const DAEMON: u32 = 1;

struct Core {
    lab: Lab,
    _settings: DaemonHandle,
    core: DaemonHandle,
}

impl Core {
    async fn start(lab: Lab, extra_config: &str) -> Core {
        lab.write_core_config(&format!("carrier-grace-ms = 300\ncarrier-wait-ms = 2000\n{extra_config}"))
            .expect("config");
        let settings = lab.spawn_daemon("nm-system-settings", &[]).await.expect("nm-system-settings");
        let core = lab.spawn_daemon("nm-core", &[]).await.expect("nm-core");
        Core { lab, _settings: settings, core }
    }

    async fn nmcli_as(&self, uid: u32, args: &[&str]) -> Output {
        let mut cmd = self.lab.command("nmcli").args(args).timeout(STEP);
        if uid != 0 {
            cmd = cmd.uid(uid);
        }
        cmd.output().await.expect("nmcli runs")
    }

    /// nmcli as `uid` that must succeed; returns stdout.
    async fn ok_as(&self, uid: u32, args: &[&str]) -> String {
        let out = self.nmcli_as(uid, args).await;
        assert!(
            out.success(),
            "nmcli {args:?} as uid {uid} failed ({:?}):\n{}{}\n--- nm-core log ---\n{}",
            out.status,
            out.stdout,
            out.stderr,
            nm_lab::tail(&self.core.log(), 40)
        );
        out.stdout
    }

    /// nmcli as `uid` that must fail, saying `needle` on stderr; returns stderr.
    async fn refused_as(&self, uid: u32, args: &[&str], needle: &str) -> String {
        let out = self.nmcli_as(uid, args).await;
        assert!(!out.success(), "nmcli {args:?} as uid {uid} should be refused:\n{}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(needle), "nmcli {args:?} as uid {uid}: expected {needle:?} in:\n{}", out.stderr);
        out.stderr
    }

    /// `nmcli connection down` reports a failed deactivation but exits 0
    /// (Debian's nmcli 1.42): the refusal is checked by its words.
    async fn down_refused_as(&self, uid: u32, name: &str, needle: &str) {
        let out = self.nmcli_as(uid, &["connection", "down", name]).await;
        let said = format!("{}{}", out.stdout, out.stderr);
        assert!(said.contains("deactivation failed") && said.contains(needle), "down {name} as uid {uid}:\n{said}");
    }

    async fn profiles(&self) -> String {
        self.ok_as(0, &["-t", "-f", "NAME", "connection", "show"]).await
    }

    async fn networking(&self) -> String {
        self.ok_as(0, &["networking"]).await.trim().to_string()
    }

    fn addr(&self) -> String {
        let eth = &self.lab.uplinks()[0].client_if;
        let out = std::process::Command::new("ip")
            .args(["-n", self.lab.client_netns(), "-4", "addr", "show", "dev", eth])
            .output()
            .expect("ip runs");
        assert!(out.status.success(), "ip: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn eth(&self) -> String {
        self.lab.uplinks()[0].client_if.clone()
    }

    /// `nmcli connection add` of a static ethernet profile, plus `extra`.
    fn add_args(&self, name: &str, addr: &str, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = nm_lab::add_ethernet(
            &self.eth(),
            name,
            &[
                ("ipv4.method", "manual"),
                ("ipv4.addresses", addr),
                ("ipv6.method", "disabled"),
                ("connection.autoconnect", "no"),
            ],
        )
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    async fn add_as(&self, uid: u32, name: &str, addr: &str, extra: &[&str]) -> Output {
        let args = self.add_args(name, addr, extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.nmcli_as(uid, &args).await
    }

    /// `busctl call` on nm-core as `uid`.
    async fn busctl_as(&self, uid: u32, path: &str, iface: &str, method: &str, args: &[&str]) -> Output {
        let mut cmd = self
            .lab
            .command("busctl")
            .args(["--system", "call", "org.freedesktop.NetworkManager", path, iface, method])
            .args(args)
            .timeout(STEP);
        if uid != 0 {
            cmd = cmd.uid(uid);
        }
        cmd.output().await.expect("busctl runs")
    }

    async fn profile_path(&self, name: &str) -> String {
        let uuid = self.ok_as(0, &["-g", "connection.uuid", "connection", "show", name]).await;
        let out = self
            .busctl_as(
                0,
                "/org/freedesktop/NetworkManager/Settings",
                "org.freedesktop.NetworkManager.Settings",
                "GetConnectionByUuid",
                &["s", uuid.trim()],
            )
            .await;
        assert!(out.success(), "GetConnectionByUuid: {}", out.stderr);
        // `o "/org/freedesktop/NetworkManager/Settings/N"`
        out.stdout.trim().trim_start_matches("o ").trim_matches('"').to_string()
    }
}

#[tokio::test]
async fn without_polkit_only_root_may_change_anything() {
    let c = Core::start(Lab::builder().uplinks(1).dnsmasq(false).build().expect("lab"), "").await;

    let out = c.add_as(0, "R", "192.0.2.10/24", &[]).await;
    assert!(out.success(), "root's add: {}", out.stderr);
    let before = c.profiles().await;

    // add: refused, no profile appears.
    let out = c.add_as(NOBODY, "N", "192.0.2.20/24", &[]).await;
    assert!(!out.success(), "nobody's add must fail:\n{}", out.stdout);
    assert!(
        out.stderr.contains(
            "Not authorized to modify network connections for all users \
             (org.freedesktop.NetworkManager.settings.modify.system): polkit is not running and only root may"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(c.profiles().await, before);
    assert!(!c.lab.root_path("/etc/NetworkManager/system-connections/N.nmconnection").exists());

    // up: refused, nothing reaches the kernel.
    c.refused_as(NOBODY, &["connection", "up", "R"], "Not authorized to control networking").await;
    assert!(!c.addr().contains("192.0.2.10"), "{}", c.addr());

    // root's up works.
    c.ok_as(0, &["connection", "up", "R"]).await;
    assert!(c.addr().contains("192.0.2.10/24"), "{}", c.addr());

    // down and delete: refused, the profile stays active and listed.
    c.down_refused_as(NOBODY, "R", "Not authorized to control networking").await;
    c.refused_as(DAEMON, &["connection", "delete", "R"], "Not authorized to modify network connections").await;
    assert_eq!(c.profiles().await, before);
    assert!(c.addr().contains("192.0.2.10/24"), "{}", c.addr());

    // networking off: refused, networking stays on and the address stays.
    c.refused_as(NOBODY, &["networking", "off"], "Not authorized to enable/disable networking").await;
    assert_eq!(c.networking().await, "enabled");
    assert!(c.addr().contains("192.0.2.10/24"), "{}", c.addr());

    // What clients are told matches: nobody may do nothing, root everything.
    let perms = c.ok_as(NOBODY, &["-t", "-f", "PERMISSION,VALUE", "general", "permissions"]).await;
    assert!(perms.contains("org.freedesktop.NetworkManager.network-control:no"), "{perms}");
    assert!(!perms.contains(":yes"), "{perms}");
    let perms = c.ok_as(0, &["-t", "-f", "PERMISSION,VALUE", "general", "permissions"]).await;
    assert!(perms.contains("org.freedesktop.NetworkManager.network-control:yes"), "{perms}");
    assert!(!perms.contains(":no"), "{perms}");

    // root's delete and networking off/on work.
    c.ok_as(0, &["networking", "off"]).await;
    assert_eq!(c.networking().await, "disabled");
    c.ok_as(0, &["networking", "on"]).await;
    c.ok_as(0, &["connection", "delete", "R"]).await;
    assert!(!c.profiles().await.lines().any(|l| l == "R"));
}

#[tokio::test]
async fn without_polkit_auth_group_members_may() {
    // nobody's primary group is nogroup (by NSS); daemon is not in it.
    let id = std::process::Command::new("id").args(["-gn", "nobody"]).output().expect("id");
    assert_eq!(String::from_utf8_lossy(&id.stdout).trim(), "nogroup", "this test needs nobody's group to be nogroup");
    let lab = Lab::builder().uplinks(1).dnsmasq(false).build().expect("lab");
    let c = Core::start(lab, "auth-group = \"nogroup\"").await;

    let out = c.add_as(NOBODY, "G", "192.0.2.30/24", &[]).await;
    assert!(out.success(), "a member's add: {}\n{}", out.stderr, nm_lab::tail(&c.core.log(), 30));
    c.ok_as(NOBODY, &["connection", "up", "G"]).await;
    assert!(c.addr().contains("192.0.2.30/24"), "{}", c.addr());

    // Not a member: refused, with the reason.
    c.down_refused_as(DAEMON, "G", "polkit is not running and uid 1 is not in group 'nogroup'").await;
    assert!(c.addr().contains("192.0.2.30/24"), "{}", c.addr());

    let perms = c.ok_as(NOBODY, &["-t", "-f", "PERMISSION,VALUE", "general", "permissions"]).await;
    assert!(perms.contains("org.freedesktop.NetworkManager.settings.modify.system:yes"), "{perms}");
    let perms = c.ok_as(DAEMON, &["-t", "-f", "PERMISSION,VALUE", "general", "permissions"]).await;
    assert!(perms.contains("org.freedesktop.NetworkManager.settings.modify.system:no"), "{perms}");

    c.ok_as(NOBODY, &["networking", "off"]).await;
    assert_eq!(c.networking().await, "disabled");
    c.ok_as(NOBODY, &["networking", "on"]).await;
    c.ok_as(NOBODY, &["connection", "delete", "G"]).await;
}

/// The test's polkit rules: for nobody and daemon, network-control YES,
/// settings.modify.system NO, enable-disable-network a challenge
/// (AUTH_ADMIN); everything else falls to the actions file's `allow_any`.
const RULES: &str = r#"
polkit.addRule(function(action, subject) {
    if (subject.user != "nobody" && subject.user != "daemon") {
        return polkit.Result.NOT_HANDLED;
    }
    if (action.id == "org.freedesktop.NetworkManager.network-control") {
        return polkit.Result.YES;
    }
    if (action.id == "org.freedesktop.NetworkManager.settings.modify.system") {
        return polkit.Result.NO;
    }
    if (action.id == "org.freedesktop.NetworkManager.enable-disable-network") {
        return polkit.Result.AUTH_ADMIN;
    }
    return polkit.Result.NOT_HANDLED;
});
"#;

fn actions_file() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../polkit/org.freedesktop.NetworkManager.policy")
}

#[tokio::test]
async fn polkit_is_asked_yes_no_and_challenge() {
    let lab = Lab::builder().uplinks(1).dnsmasq(false).polkit(true).build().expect("lab");
    let c = Core::start(lab, "").await;

    // polkit arriving makes nm-core emit CheckPermissions.
    let bus = c.lab.bus().await.expect("lab bus");
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.freedesktop.NetworkManager")
        .member("CheckPermissions")
        .build()
        .expect("match rule");
    let mut check_permissions = zbus::MessageStream::for_match_rule(rule, &bus, None).await.expect("subscribe");
    let polkitd =
        c.lab.polkitd().action_file(actions_file()).rule("50-nm-rs-test.rules", RULES).spawn().await.expect("polkitd");
    tokio::time::timeout(STEP, check_permissions.next())
        .await
        .expect("CheckPermissions when polkit appears")
        .expect("a signal")
        .expect("a message");

    // GetPermissions: yes, no, auth as polkit says (and the defaults'
    // allow_any for the rest: sleep-wake no, settings.modify.own auth).
    let perms = c.ok_as(NOBODY, &["-t", "-f", "PERMISSION,VALUE", "general", "permissions"]).await;
    for want in [
        "org.freedesktop.NetworkManager.network-control:yes",
        "org.freedesktop.NetworkManager.settings.modify.system:no",
        "org.freedesktop.NetworkManager.enable-disable-network:auth",
        "org.freedesktop.NetworkManager.settings.modify.own:auth",
        "org.freedesktop.NetworkManager.sleep-wake:no",
    ] {
        assert!(perms.lines().any(|l| l == want), "{want} in:\n{perms}\n{}", nm_lab::tail(&polkitd.log(), 20));
    }

    let out = c.add_as(0, "R", "192.0.2.40/24", &[]).await;
    assert!(out.success(), "root's add: {}", out.stderr);
    let before = c.profiles().await;

    // yes: nobody may activate.
    c.ok_as(NOBODY, &["connection", "up", "R"]).await;
    assert!(c.addr().contains("192.0.2.40/24"), "{}", c.addr());

    // no: nobody may not add a profile for everyone.
    c.refused_as(
        NOBODY,
        &c.add_args("N", "192.0.2.41/24", &[]).iter().map(String::as_str).collect::<Vec<_>>(),
        "Not authorized to modify network connections for all users \
         (org.freedesktop.NetworkManager.settings.modify.system): polkit refused uid 65534",
    )
    .await;
    assert_eq!(c.profiles().await, before);

    // challenge: no agent answers, so networking stays on.
    c.refused_as(
        NOBODY,
        &["networking", "off"],
        "Not authorized to enable/disable networking (org.freedesktop.NetworkManager.enable-disable-network): \
         authentication is required",
    )
    .await;
    assert_eq!(c.networking().await, "enabled");
    assert!(c.addr().contains("192.0.2.40/24"), "{}", c.addr());

    // connection.permissions: a profile of nobody's is nobody's (and root's).
    let out = c.add_as(0, "P", "192.0.2.42/24", &["connection.permissions", "user:nobody"]).await;
    assert!(out.success(), "root's add of P: {}", out.stderr);
    let path = c.profile_path("P").await;
    assert!(path.starts_with("/org/freedesktop/NetworkManager/Settings/"), "{path}");
    let out = c
        .busctl_as(
            DAEMON,
            "/org/freedesktop/NetworkManager",
            "org.freedesktop.NetworkManager",
            "ActivateConnection",
            &["ooo", &path, "/", "/"],
        )
        .await;
    assert!(!out.success(), "daemon may not activate nobody's profile: {}", out.stdout);
    assert!(out.stderr.contains("Connection 'P' is not available to user 'daemon'"), "{}", out.stderr);
    assert!(!c.addr().contains("192.0.2.42"), "{}", c.addr());
    let out =
        c.busctl_as(DAEMON, &path, "org.freedesktop.NetworkManager.Settings.Connection", "GetSettings", &[]).await;
    assert!(!out.success(), "daemon may not read nobody's profile: {}", out.stdout);
    assert!(out.stderr.contains("is not available to user 'daemon'"), "{}", out.stderr);

    c.ok_as(NOBODY, &["connection", "up", "P"]).await;
    assert!(c.addr().contains("192.0.2.42/24"), "{}", c.addr());

    // Root is never asked.
    c.ok_as(0, &["networking", "off"]).await;
    assert_eq!(c.networking().await, "disabled");
    c.ok_as(0, &["networking", "on"]).await;
    drop(polkitd);
}
