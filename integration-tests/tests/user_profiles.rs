//! A user's profiles in nm-core (the split design): nm-user-settings runs
//! as `nobody`; while it is on the bus its profiles are in nm-core's view
//! (and `nmcli`'s), belong to that user, can be activated; when it leaves
//! (logout) they vanish and what they activated goes down. Needs root.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nm_lab::{DaemonHandle, Lab, NOBODY, Output};

const STEP: Duration = Duration::from_secs(20);
const HOME: &str = "/home/nobody";

struct Setup {
    lab: Lab,
    _settings: DaemonHandle,
    core: DaemonHandle,
}

impl Setup {
    async fn nmcli(&self, args: &[&str]) -> Output {
        self.lab.command("nmcli").args(args).timeout(STEP).output().await.expect("nmcli runs")
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.nmcli(args).await;
        assert!(out.success(), "nmcli {args:?}: {}{}\n{}", out.stdout, out.stderr, nm_lab::tail(&self.core.log(), 30));
        out.stdout
    }

    fn addresses(&self) -> String {
        let out = std::process::Command::new("ip")
            .args(["-n", self.lab.client_netns(), "-4", "-o", "addr", "show", "dev", &self.uplink()])
            .output()
            .expect("ip runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn uplink(&self) -> String {
        self.lab.uplinks()[0].client_if.clone()
    }

    /// Waits (bounded, asking nmcli) until the profile list satisfies `check`.
    async fn until_profiles(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let list = self.ok(&["-t", "-f", "NAME", "connection", "show"]).await;
            if check(&list) {
                return list;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {list}\n{}", self.core.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn static_profile(id: &str, uuid: &str, ifname: &str, address: &str) -> String {
    format!(
        "[connection]\nid={id}\nuuid={uuid}\ntype=ethernet\ninterface-name={ifname}\nautoconnect=false\n\n\
         [ipv4]\naddress1={address}\nmethod=manual\n\n[ipv6]\nmethod=disabled\n"
    )
}

/// Writes a profile into nobody's folder, owned by nobody, 0600.
fn user_profile(dir: &Path, name: &str, text: &str) {
    let file = dir.join(name);
    fs::write(&file, text).expect("write");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).expect("chmod");
    std::os::unix::fs::chown(&file, Some(NOBODY), Some(NOBODY)).expect("chown");
}

fn nobodys_dirs(lab: &Lab) -> std::path::PathBuf {
    let mut dir = lab.root_path(HOME);
    for part in ["", ".config", "nm-rs", "connections"] {
        if !part.is_empty() {
            dir.push(part);
        }
        fs::create_dir_all(&dir).expect("mkdir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod");
        std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).expect("chown");
    }
    dir
}

#[tokio::test]
async fn a_users_profiles_come_and_go_with_the_users_service() {
    let lab = Lab::builder().uplinks(1).dnsmasq(false).build().expect("lab");
    // nobody's primary group may control the network (no polkit in this lab).
    lab.write_core_config("carrier-grace-ms = 300\ncarrier-wait-ms = 2000\nauth-group = \"nogroup\"\n")
        .expect("config");
    let eth = lab.uplinks()[0].client_if.clone();
    lab.write_profile(
        "system.nmconnection",
        &static_profile("system-net", "5c4e6f0a-0000-4000-8000-000000000001", &eth, "192.0.2.70/24"),
    )
    .expect("system profile");
    let settings = lab.spawn_daemon("nm-system-settings", &[]).await.expect("nm-system-settings");
    let core = lab.spawn_daemon("nm-core", &[]).await.expect("nm-core");
    let s = Setup { lab, _settings: settings, core };

    let dir = nobodys_dirs(&s.lab);
    user_profile(
        &dir,
        "mine.nmconnection",
        &static_profile("nobody-net", "5c4e6f0a-0000-4000-8000-000000000002", &eth, "192.0.2.77/24"),
    );
    // A user's profile with a system profile's uuid does not replace it.
    user_profile(
        &dir,
        "clash.nmconnection",
        &static_profile("impostor", "5c4e6f0a-0000-4000-8000-000000000001", &eth, "192.0.2.99/24"),
    );
    s.until_profiles("the system profile", |l| l.lines().any(|n| n == "system-net")).await;

    let mut user =
        s.lab.daemon("nm-user-settings").uid(NOBODY).env("HOME", HOME).spawn().await.expect("nm-user-settings");
    let list = s.until_profiles("the user's profile", |l| l.lines().any(|n| n == "nobody-net")).await;
    assert!(!list.lines().any(|n| n == "impostor"), "{list}");
    assert!(s.core.log().contains("ignoring it"), "the clash is logged:\n{}", s.core.log());
    let permissions = s.ok(&["-g", "connection.permissions", "connection", "show", "nobody-net"]).await;
    // (-g escapes the colon.)
    assert_eq!(permissions.trim().replace("\\:", ":"), "user:nobody", "a user's profile belongs to that user");

    // Another user does not see it; the user does.
    let seen_by = |uid: u32| {
        let cmd = s.lab.command("nmcli").uid(uid).args(["-t", "-f", "NAME", "connection", "show"]).timeout(STEP);
        async move { cmd.output().await.expect("nmcli runs").stdout }
    };
    // (libnm leaves out a profile whose GetSettings it may not call.)
    let other = seen_by(1).await;
    assert!(other.lines().any(|n| n == "system-net") && !other.contains("nobody-net"), "uid 1 sees: {other}");
    let mine = seen_by(NOBODY).await;
    assert!(mine.lines().any(|n| n == "nobody-net"), "nobody sees: {mine}");

    // Added while the service runs: picked up by its watcher, then by nm-core.
    user_profile(
        &dir,
        "later.nmconnection",
        &static_profile("nobody-later", "5c4e6f0a-0000-4000-8000-000000000003", &eth, "192.0.2.78/24"),
    );
    s.until_profiles("a profile the user added", |l| l.lines().any(|n| n == "nobody-later")).await;

    // The user activates their own profile.
    let up = s.lab.command("nmcli").uid(NOBODY).args(["connection", "up", "nobody-net"]).timeout(STEP).output().await;
    let up = up.expect("nmcli runs");
    assert!(up.success(), "nobody's up: {}{}\n{}", up.stdout, up.stderr, s.core.log());
    assert!(s.addresses().contains("inet 192.0.2.77/24"), "{}", s.addresses());

    // Logout: the service leaves; its profiles go, and their activation with them.
    let status = user.stop().await.expect("SIGTERM stops nm-user-settings");
    assert!(status.success(), "{status:?}");
    let list = s.until_profiles("the user's profiles to go", |l| !l.lines().any(|n| n.starts_with("nobody-"))).await;
    assert!(list.lines().any(|n| n == "system-net"), "system profiles stay: {list}");
    assert!(!s.addresses().contains("192.0.2.77"), "the user's activation went down: {}", s.addresses());
    let devices = s.ok(&["-t", "-f", "DEVICE,STATE", "device", "status"]).await;
    assert!(devices.lines().any(|l| l == format!("{eth}:disconnected")), "{devices}");

    // And come back at the next login.
    let _user = s.lab.daemon("nm-user-settings").uid(NOBODY).env("HOME", HOME).spawn().await.expect("again");
    s.until_profiles("the user's profiles again", |l| l.lines().any(|n| n == "nobody-net")).await;
    s.ok(&["connection", "up", "system-net"]).await;
    assert!(s.addresses().contains("inet 192.0.2.70/24"), "{}", s.addresses());
}

/// Only root may own nm-core's and the system settings' names (the shipped
/// bus policy); a user can't stand in for either.
#[tokio::test]
async fn nobody_but_root_owns_the_core_and_system_settings_names() {
    let lab = Lab::builder().uplinks(0).dnsmasq(false).build().expect("lab");
    for name in ["org.freedesktop.NetworkManager", "org.freedesktop.NetworkManagerSystemSettings"] {
        for uid in [NOBODY, 1] {
            let out = lab
                .command("busctl")
                .uid(uid)
                .args(["call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus"])
                .args(["RequestName", "su", name, "0"])
                .timeout(STEP)
                .output()
                .await
                .expect("busctl runs");
            assert!(!out.success(), "uid {uid} owned {name}: {}", out.stdout);
            assert!(
                out.stderr.contains("Access denied") || out.stderr.contains("not allowed to own"),
                "{}",
                out.stderr
            );
        }
        let out = lab
            .command("busctl")
            .args(["call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus"])
            .args(["RequestName", "su", name, "0"])
            .timeout(STEP)
            .output()
            .await
            .expect("busctl runs");
        assert!(out.success() && out.stdout.trim() == "u 1", "root owns {name}: {}{}", out.stdout, out.stderr);
    }
}
