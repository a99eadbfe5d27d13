//! nmctl against nm-core (and nm-system-settings) in the lab: every
//! subcommand, `--json` parsed, the kernel read back with `ip`, errors
//! checked for their exit status and cause. Needs root.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use nm_lab::{DaemonHandle, Lab, Output};
use serde_json::Value as Json;
use tokio::io::{AsyncBufReadExt, BufReader};

const STEP: Duration = Duration::from_secs(30);

struct Nm {
    lab: Lab,
    _settings: Option<DaemonHandle>,
    core: Option<DaemonHandle>,
}

impl Nm {
    /// A lab with one uplink (no dnsmasq), its daemons not started yet.
    fn lab() -> Lab {
        let lab = Lab::builder().uplinks(1).dnsmasq(false).build().expect("lab");
        lab.write_core_config("carrier-grace-ms = 300\ncarrier-wait-ms = 2000\n").expect("config");
        lab
    }

    async fn start_in(lab: Lab) -> Nm {
        let settings = lab.spawn_daemon("nm-system-settings", &[]).await.expect("nm-system-settings");
        let core = lab.spawn_daemon("nm-core", &[]).await.expect("nm-core");
        Nm { lab, _settings: Some(settings), core: Some(core) }
    }

    async fn start() -> Nm {
        Self::start_in(Self::lab()).await
    }

    fn nmctl_path(lab: &Lab) -> PathBuf {
        lab.bin_dir().expect("bin dir").join("nmctl")
    }

    fn eth(&self) -> String {
        self.lab.uplinks()[0].client_if.clone()
    }

    fn log(&self) -> String {
        self.core.as_ref().map(|d| d.log()).unwrap_or_default()
    }

    async fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.lab.command(Self::nmctl_path(&self.lab)).args(args).timeout(STEP);
        for (k, v) in env {
            cmd = cmd.env(k, v);
        }
        cmd.output().await.expect("nmctl runs")
    }

    async fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[]).await
    }

    /// nmctl that must succeed; returns stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.success(),
            "nmctl {args:?} failed ({:?}):\n{}{}\n--- nm-core log ---\n{}",
            out.status,
            out.stdout,
            out.stderr,
            nm_lab::tail(&self.log(), 30)
        );
        assert!(out.stderr.is_empty(), "nmctl {args:?} wrote to stderr: {}", out.stderr);
        out.stdout
    }

    /// nmctl --json that must succeed; its output parsed.
    async fn json(&self, args: &[&str]) -> Json {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.ok(&all).await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("nmctl {args:?}: not JSON ({e}):\n{text}"))
    }

    /// nmctl that must fail with `code`, saying `cause` on stderr.
    async fn fails(&self, args: &[&str], code: i32, cause: &str) -> Output {
        let out = self.run(args).await;
        assert_eq!(out.status.code(), Some(code), "nmctl {args:?}: {out:?}");
        assert!(out.stderr.contains(cause), "nmctl {args:?}: stderr lacks {cause:?}: {}", out.stderr);
        assert!(out.stderr.starts_with("nmctl: error: "), "{}", out.stderr);
        out
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

    fn keyfile(&self, name: &str) -> PathBuf {
        self.lab.root_path(format!("/etc/NetworkManager/system-connections/{name}.nmconnection"))
    }

    async fn add_office(&self) {
        let eth = self.eth();
        let out = self
            .ok(&nm_lab::add_ethernet(
                &eth,
                "office",
                &[
                    ("ipv4.addresses", "192.0.2.10/24"),
                    ("gw4", "192.0.2.1"),
                    ("ipv4.dns", "192.0.2.53"),
                    ("ipv6.method", "disabled"),
                    ("autoconnect", "no"),
                ],
            ))
            .await;
        assert!(out.starts_with("Connection 'office' (") && out.trim_end().ends_with(") added."), "{out}");
    }
}

fn device<'a>(list: &'a Json, name: &str) -> &'a Json {
    list.as_array()
        .and_then(|l| l.iter().find(|d| d["device"] == name))
        .unwrap_or_else(|| panic!("{name} not in {list}"))
}

#[tokio::test]
async fn overview_general_device_and_connection_commands() {
    let nm = Nm::start().await;
    let eth = nm.eth();

    let general = nm.json(&["general"]).await;
    assert_eq!(general["version"], "1.42.4", "{general}");
    assert!(general["state_code"].as_u64().is_some() && general["networking_enabled"] == true, "{general}");
    let text = nm.ok(&["general"]).await;
    assert!(text.starts_with("STATE:") && text.contains("NETWORKING:    enabled"), "{text}");

    let devices = nm.json(&["device", "status"]).await;
    assert_eq!(device(&devices, &eth)["connection"], Json::Null, "{devices}");
    assert!(nm.ok(&["device"]).await.starts_with("DEVICE "), "table header");

    // add: a keyfile appears; nmcli's defaults (method manual with addresses).
    nm.add_office().await;
    let file = std::fs::read_to_string(nm.keyfile("office")).expect("keyfile written");
    assert!(file.contains("address1=192.0.2.10/24,192.0.2.1") && file.contains("method=manual"), "{file}");
    let show = nm.json(&["connection", "show", "office"]).await;
    assert_eq!(show["settings"]["ipv4"]["addresses"], serde_json::json!(["192.0.2.10/24"]), "{show}");
    assert_eq!(show["settings"]["ipv4"]["dns"], serde_json::json!(["192.0.2.53"]), "{show}");
    assert_eq!(show["settings"]["connection"]["autoconnect"], false, "{show}");
    assert_eq!(show["active"], Json::Null, "{show}");

    // up: waits for the activation; the kernel has the address and route.
    let out = nm.ok(&["connection", "up", "office"]).await;
    assert_eq!(out, format!("Connection 'office' activated on {eth}.\n"));
    assert!(nm.ip(&["-4", "addr", "show", "dev", &eth]).contains("192.0.2.10/24"));
    assert!(nm.ip(&["-4", "route"]).contains(&format!("default via 192.0.2.1 dev {eth} proto static metric 100")));

    let detail = nm.json(&["device", "show", &eth]).await;
    assert_eq!(detail["state_code"], 100, "{detail}");
    assert_eq!(detail["connection"], "office", "{detail}");
    assert_eq!(detail["ip4"]["addresses"], serde_json::json!(["192.0.2.10/24"]), "{detail}");
    assert_eq!(detail["ip4"]["gateway"], "192.0.2.1", "{detail}");
    let text = nm.ok(&["device", "show", &eth]).await;
    assert!(text.contains("IP4.ADDRESS[1]:") && text.contains("192.0.2.10/24"), "{text}");
    let all = nm.json(&["device", "show"]).await;
    assert!(all.as_array().is_some_and(|l| l.len() >= 2), "every device: {all}");

    // The overview: devices with addresses, the default route, DNS.
    let o = nm.json(&[]).await;
    assert_eq!(device(&o["devices"], &eth)["addresses"], serde_json::json!(["192.0.2.10/24"]), "{o}");
    assert_eq!(o["default_routes"][0]["gateway"], "192.0.2.1", "{o}");
    assert_eq!(o["default_routes"][0]["device"], eth.as_str(), "{o}");
    assert!(o["dns"].as_array().is_some_and(|d| d.iter().any(|s| s["server"] == "192.0.2.53")), "{o}");
    let text = nm.ok(&[]).await;
    assert!(text.starts_with("State: connected"), "{text}");
    assert!(text.contains(&format!("192.0.2.1 via {eth} metric 100")), "{text}");
    assert!(text.contains("192.0.2.53"), "{text}");

    // show: the list and the active profile's details.
    let list = nm.json(&["connection", "show"]).await;
    let office = list.as_array().and_then(|l| l.iter().find(|c| c["name"] == "office")).expect("office listed");
    assert_eq!(office["device"], eth.as_str(), "{list}");
    assert_eq!(office["active_state"], "activated", "{list}");
    let active = nm.json(&["connection", "show", "--active"]).await;
    assert!(active.as_array().is_some_and(|l| l.iter().all(|c| c["active_state"].is_string())), "{active}");
    let show = nm.json(&["connection", "show", "office"]).await;
    assert_eq!(show["active"]["devices"], serde_json::json!([eth]), "{show}");
    assert_eq!(show["active"]["ip4"]["addresses"], serde_json::json!(["192.0.2.10/24"]), "{show}");
    let text = nm.ok(&["connection", "show"]).await;
    assert!(text.starts_with("NAME ") && text.lines().any(|l| l.starts_with("office ") && l.ends_with(&eth)), "{text}");

    // modify (with + and -): the keyfile changes; a re-up applies it.
    nm.ok(&["connection", "modify", "office", "ipv4.addresses", "192.0.2.11/24", "+ipv4.dns", "192.0.2.54"]).await;
    let file = std::fs::read_to_string(nm.keyfile("office")).expect("keyfile");
    assert!(file.contains("address1=192.0.2.11/24,192.0.2.1") && file.contains("dns=192.0.2.53;192.0.2.54;"), "{file}");
    nm.ok(&["connection", "modify", "office", "-ipv4.dns", "192.0.2.53"]).await;
    let show = nm.json(&["connection", "show", "office"]).await;
    assert_eq!(show["settings"]["ipv4"]["dns"], serde_json::json!(["192.0.2.54"]), "{show}");
    // (On the device named: its objects are read before the activation.)
    let up = nm.json(&["connection", "up", "office", "--device", &eth]).await;
    assert_eq!(up["devices"], serde_json::json!([eth]), "{up}");
    let addr = nm.ip(&["-4", "addr", "show", "dev", &eth]);
    assert!(addr.contains("192.0.2.11/24") && !addr.contains("192.0.2.10/24"), "{addr}");

    // down: the configuration leaves the kernel.
    let down = nm.json(&["connection", "down", "office"]).await;
    assert_eq!(down["name"], "office", "{down}");
    assert!(!nm.ip(&["-4", "addr", "show", "dev", &eth]).contains("192.0.2.11"));

    // device connect picks the profile; device disconnect takes it down.
    let out = nm.ok(&["device", "connect", &eth]).await;
    assert_eq!(out, format!("Device '{eth}' connected ('office').\n"));
    assert!(nm.ip(&["-4", "addr", "show", "dev", &eth]).contains("192.0.2.11/24"));
    let d = nm.json(&["device", "disconnect", &eth]).await;
    assert_eq!(d["state_code"], 30, "{d}");
    assert!(!nm.ip(&["-4", "addr", "show", "dev", &eth]).contains("192.0.2.11/24"));

    // delete: the profile and its file are gone.
    let del = nm.json(&["connection", "delete", "office"]).await;
    assert_eq!(del["deleted"][0]["name"], "office", "{del}");
    assert!(!nm.keyfile("office").exists());
    nm.fails(&["connection", "show", "office"], 10, "no connection 'office'").await;
}

#[tokio::test]
async fn import_export_and_edit_in_the_editor() {
    let nm = Nm::start().await;
    let eth = nm.eth();
    let dir = nm.lab.dir().join("nmctl");
    std::fs::create_dir_all(&dir).expect("dir");

    // import: a keyfile made by hand.
    let source = dir.join("lab.nmconnection");
    let uuid = "4f3c9a52-6c0e-4c35-9d7e-5d1b0b7f1e01";
    let text = format!(
        "[connection]\nid=lab\nuuid={uuid}\ntype=ethernet\nautoconnect=false\ninterface-name={eth}\n\n[ethernet]\n\n\
         [ipv4]\naddress1=198.51.100.7/24\nmethod=manual\n\n[ipv6]\nmethod=disabled\n\n[proxy]\n"
    );
    std::fs::write(&source, &text).expect("write");
    let src = source.to_string_lossy().into_owned();
    let out = nm.ok(&["connection", "import", &src]).await;
    assert_eq!(out, format!("Connection 'lab' ({uuid}) imported.\n"));
    assert!(nm.keyfile("lab").exists());

    // export: the same keyfile back; TOML too; to a private file.
    let exported = nm.ok(&["connection", "export", "lab"]).await;
    assert_eq!(exported, text);
    let toml = nm.ok(&["connection", "export", "--format", "toml", uuid]).await;
    assert!(toml.contains("198.51.100.7/24"), "{toml}");
    let out_file = dir.join("out.nmconnection");
    nm.ok(&["connection", "export", "lab", "--output", &out_file.to_string_lossy()]).await;
    assert_eq!(std::fs::read_to_string(&out_file).expect("exported file"), text);
    assert_eq!(std::fs::metadata(&out_file).expect("meta").permissions().mode() & 0o777, 0o600);

    // An import of a broken file names the file and the line.
    let broken = dir.join("broken.nmconnection");
    std::fs::write(&broken, text.replace("address1=198.51.100.7/24", "address1=198.51.100.700/24")).expect("write");
    let out = nm.fails(&["connection", "import", &broken.to_string_lossy()], 2, "line 11: ").await;
    assert!(out.stderr.contains(&*broken.to_string_lossy()), "{}", out.stderr);

    // edit: the editor is run directly on a 0600 temp file; a sed script
    // stands in for a person.
    let editor = dir.join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nstat -c %a \"$1\" > \"$(dirname \"$0\")/mode\"\nsed -i 's/198.51.100.7/198.51.100.8/' \"$1\"\n",
    )
    .expect("editor");
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let ed = editor.to_string_lossy().into_owned();
    let out = nm.run_env(&["connection", "edit", "lab"], &[("EDITOR", &ed), ("VISUAL", "")]).await;
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, format!("Connection 'lab' ({uuid}) updated.\n"));
    assert_eq!(std::fs::read_to_string(dir.join("mode")).expect("mode").trim(), "600");
    let show = nm.json(&["connection", "show", "lab"]).await;
    assert_eq!(show["settings"]["ipv4"]["addresses"], serde_json::json!(["198.51.100.8/24"]), "{show}");
    assert!(std::fs::read_to_string(nm.keyfile("lab")).expect("keyfile").contains("198.51.100.8/24"));

    // An edit that breaks the profile: nothing changes, the error names the
    // line, and the edited file is kept (its path in the message).
    let bad = dir.join("bad-editor.sh");
    std::fs::write(&bad, "#!/bin/sh\nsed -i 's/^method=manual/method=sideways/' \"$1\"\n").expect("editor");
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = nm.run_env(&["connection", "edit", "lab"], &[("VISUAL", &*bad.to_string_lossy())]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("ipv4.method") && out.stderr.contains("line 12"), "{}", out.stderr);
    let kept = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("your edits are kept in "))
        .unwrap_or_else(|| panic!("no kept file named: {}", out.stderr));
    assert!(std::fs::read_to_string(kept).expect("kept file").contains("method=sideways"));
    let _ = std::fs::remove_file(kept);
    let show = nm.json(&["connection", "show", "lab"]).await;
    assert_eq!(show["settings"]["ipv4"]["method"], "manual", "unchanged: {show}");

    // An editor that changes nothing changes nothing.
    let out = nm.run_env(&["connection", "edit", "lab"], &[("EDITOR", "true"), ("VISUAL", "")]).await;
    assert_eq!((out.status.code(), out.stdout.as_str()), (Some(0), "No changes.\n"), "{out:?}");
}

#[tokio::test]
async fn errors_exit_non_zero_naming_the_cause() {
    let nm = Nm::start().await;
    let eth = nm.eth();
    nm.fails(&["connection", "up", "nonesuch"], 10, "no connection 'nonesuch'").await;
    nm.fails(&["connection", "delete", "nonesuch"], 10, "no connection 'nonesuch'").await;
    nm.fails(&["device", "show", "nosuch0"], 10, "no device 'nosuch0'").await;
    nm.fails(&["device", "connect", "nosuch0"], 10, "no device 'nosuch0'").await;
    nm.add_office().await;
    nm.fails(&["connection", "up", "office", "--device", "nosuch0"], 10, "no device 'nosuch0'").await;
    nm.fails(
        &["connection", "modify", "office", "ipv4.addresses", "300.1.2.3/24"],
        2,
        "invalid value '300.1.2.3/24' for ipv4.addresses",
    )
    .await;
    nm.fails(&["connection", "modify", "office", "ipv4.bogus", "1"], 2, "unknown property 'ipv4.bogus'").await;
    nm.fails(
        &["connection", "modify", "office", "ipv4.addresses", ""],
        2,
        "ipv4.addresses: this property cannot be empty for 'method=manual'",
    )
    .await;
    nm.fails(&["connection", "add", "ifname", &eth], 2, "a connection type is needed").await;
    nm.fails(&["connection", "add", "type", "warp"], 2, "unknown connection type 'warp'").await;
    nm.fails(&["connection", "down", "office"], 10, "connection 'office' is not active").await;
    nm.fails(&["device", "disconnect", &eth], 1, "not active").await;
    // A JSON error is still text on stderr.
    let out = nm.fails(&["--json", "connection", "show", "nonesuch"], 10, "no connection 'nonesuch'").await;
    assert!(out.stdout.is_empty(), "{out:?}");

    // An activation that fails prints the reason: DHCP without a DHCP
    // client service on the bus.
    nm.ok(&nm_lab::add_ethernet(
        &eth,
        "dhcp",
        &[
            ("ipv4.method", "auto"),
            ("ipv4.may-fail", "no"),
            ("ipv4.dhcp-timeout", "2"),
            ("ipv6.method", "disabled"),
            ("autoconnect", "no"),
        ],
    ))
    .await;
    let out = nm.fails(&["connection", "up", "dhcp"], 4, "activation of 'dhcp' failed: ").await;
    // Without a DHCP client service the lease never comes.
    assert!(out.stderr.trim_end().ends_with("(IP_CONFIG_UNAVAILABLE)"), "the reason's name: {}", out.stderr);
    assert!(!nm.ip(&["-4", "addr", "show", "dev", &eth]).contains("inet "), "nothing applied");

    // --wait 0 returns once the activation is asked for; wait-online then
    // waits for it.
    let out = nm.ok(&["--wait", "0", "connection", "up", "office"]).await;
    assert!(out.starts_with("Connection 'office' is activating"), "{out}");
    nm.ok(&["wait-online", "--interface", &eth, "--ipv4", "--timeout", "10"]).await;
    assert!(nm.ip(&["-4", "addr", "show", "dev", &eth]).contains("192.0.2.10/24"));
}

#[tokio::test]
async fn without_networkmanager_commands_say_so() {
    let lab = Nm::lab();
    // `connection up` and `down` learn it from their first read.
    for args in [&["device"][..], &["connection", "up", "office"], &["connection", "down", "office"]] {
        let out = lab.command(Nm::nmctl_path(&lab)).args(args).output().await.expect("nmctl runs");
        assert_eq!(out.status.code(), Some(8), "{args:?}: {out:?}");
        assert_eq!(out.stderr, "nmctl: error: NetworkManager is not running\n", "{args:?}");
    }
}

#[tokio::test]
async fn monitor_prints_changes_until_killed() {
    let nm = Nm::start().await;
    let eth = nm.eth();
    nm.add_office().await;
    for json in [false, true] {
        let mut cmd = nm.lab.std_command(Nm::nmctl_path(&nm.lab));
        if json {
            cmd.arg("--json");
        }
        cmd.arg("monitor").stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let mut child = tokio::process::Command::from(cmd).kill_on_drop(true).spawn().expect("monitor starts");
        let pid = child.id().expect("pid");
        let mut err = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let ready = tokio::time::timeout(STEP, err.next_line()).await.expect("monitor ready in time");
        assert_eq!(ready.expect("stderr").as_deref(), Some("Monitoring NetworkManager; Ctrl-C stops."));

        let action = if json { "down" } else { "up" };
        nm.ok(&["connection", action, "office"]).await;
        let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
        // Both changes, in whichever order the daemon sends them.
        let (profile_line, device_line) = if json {
            (
                serde_json::json!({"event": "connection-state", "connection": "office", "state": "deactivated"}),
                serde_json::json!({"event": "device", "device": eth, "state": "disconnected", "state_code": 30}),
            )
        } else {
            (Json::from("connection 'office': activated"), Json::from(format!("{eth}: connected")))
        };
        // A JSON line matches when it has every field of the wanted one.
        let matches = |got: &Json, want: &Json| match want.as_object() {
            Some(fields) => fields.iter().all(|(k, v)| &got[k] == v),
            None => got == want,
        };
        let mut seen: Vec<Json> = Vec::new();
        while !(seen.iter().any(|l| matches(l, &profile_line)) && seen.iter().any(|l| matches(l, &device_line))) {
            let line = tokio::time::timeout(STEP, out.next_line())
                .await
                .unwrap_or_else(|_| panic!("no expected line; saw {seen:?}"))
                .expect("stdout")
                .unwrap_or_else(|| panic!("monitor ended; saw {seen:?}"));
            seen.push(if json {
                serde_json::from_str::<Json>(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            } else {
                Json::from(line)
            });
        }
        // Ended by its PID, as everything a test starts.
        // SAFETY: kill(2) on the PID of our own child, which has not been reaped.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
        let status = tokio::time::timeout(STEP, child.wait()).await.expect("monitor ends").expect("wait");
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGTERM), "{status:?}");
    }
}

#[tokio::test]
async fn wait_online_succeeds_once_an_uplink_is_up_and_fails_with_a_reason() {
    let lab = Nm::lab();
    let eth = lab.uplinks()[0].client_if.clone();
    lab.write_profile(
        "uplink.nmconnection",
        &format!(
            "[connection]\nid=uplink\nuuid=7d3a0f64-2a7e-4c0b-b5f4-1f9c6d2e8a11\ntype=ethernet\ninterface-name={eth}\n\n\
             [ethernet]\n\n[ipv4]\naddress1=192.0.2.20/24,192.0.2.1\nmethod=manual\n\n[ipv6]\nmethod=disabled\n"
        ),
    )
    .expect("profile");
    // Started before NetworkManager is on the bus: it waits for the name.
    let mut cmd = lab.std_command(Nm::nmctl_path(&lab));
    cmd.args(["wait-online", "--timeout", "10"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let early = tokio::process::Command::from(cmd).kill_on_drop(true).spawn().expect("wait-online starts");
    let nm = Nm::start_in(lab).await;
    let out = tokio::time::timeout(STEP, early.wait_with_output()).await.expect("in time").expect("output");
    assert!(out.status.success(), "{out:?}\n{}", nm_lab::tail(&nm.log(), 30));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "online\n");
    assert!(nm.ip(&["-4", "addr", "show", "dev", &eth]).contains("192.0.2.20/24"));

    assert_eq!(nm.json(&["wait-online", "--timeout", "10", "--interface", &eth, "--ipv4"]).await["online"], true);
    assert_eq!(nm.ok(&["wait-online", "-s", "--timeout", "10"]).await, "online\n");
    nm.fails(
        &["wait-online", "--timeout", "1", "--ipv6"],
        3,
        &format!("timed out after 1 s: {eth} has no IPv6 address"),
    )
    .await;
    nm.fails(&["wait-online", "--timeout", "1", "-i", "nosuch0"], 3, "nosuch0 does not exist").await;

    // No uplink up: it gives up and says what it waited for.
    nm.ok(&["device", "disconnect", &eth]).await;
    nm.fails(
        &["wait-online", "--timeout", "2"],
        3,
        &format!("timed out after 2 s: no device is connected ({eth} is disconnected)"),
    )
    .await;
    nm.fails(&["wait-online", "--timeout", "1", "--interface", &eth], 3, &format!("{eth} is disconnected")).await;
}
