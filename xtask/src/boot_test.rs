//! `cargo xtask boot-test`: the Debian package on a real init. A Debian
//! tree made by debootstrap (cached in `/var/cache/nm-rs/boot-test`, with
//! network-manager for its `nmcli`) gets the package installed, then boots
//! with systemd as PID 1 under systemd-nspawn inside a lab namespace whose
//! veth leads to dnsmasq. Checked: every nm-rs unit active,
//! network-online.target reached (its time from boot is printed), the
//! uplink's DHCP address and default route, `nmcli` inside, the daemons'
//! logs in journald, `systemctl restart nm-core` leaving the address in
//! place; then the package removed and purged cleanly.
//!
//! Facts from `../shared/reference/boot-test-nspawn.md`: `--register=no
//! --keep-unit` (no host systemd), PID 1 is the nspawn process's child,
//! and nspawn's cgroups must live in a tree of our own.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nm_lab::Lab;
use tokio::process::{Child, Command};

use crate::util::header;

const CACHE: &str = "/var/cache/nm-rs/boot-test";
// libpam-systemd: polkitd (a dependency of network-manager) needs a logind.
const INCLUDE: &str = "systemd,systemd-sysv,dbus,iproute2,libpam-systemd,network-manager";
const BOOT_LIMIT: Duration = Duration::from_secs(90);
const STEP_LIMIT: Duration = Duration::from_secs(30);
const PROFILE_UUID: &str = "5b1e0f2e-8e1a-4c47-9f5e-0b00700b0071";

/// Apt's first Debian mirror and the host's release (the tree matches it).
fn mirror_and_suite() -> (String, String) {
    let sources = fs::read_to_string("/etc/apt/sources.list.d/debian.sources")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| l.strip_prefix("URIs:").map(|u| u.split_whitespace().next().map(str::to_string)))
        })
        .flatten()
        .or_else(|| {
            fs::read_to_string("/etc/apt/sources.list").ok().and_then(|t| {
                t.lines()
                    .map(str::trim)
                    .filter(|l| l.starts_with("deb ") && !l.contains("security"))
                    .find_map(|l| l.split_whitespace().find(|w| w.starts_with("http")).map(str::to_string))
            })
        })
        .unwrap_or_else(|| "http://deb.debian.org/debian".into());
    let suite = fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| l.strip_prefix("VERSION_CODENAME=").map(|s| s.trim_matches('"').to_string()))
        })
        .unwrap_or_else(|| "bookworm".into());
    (sources, suite)
}

async fn run_checked(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd.stdin(Stdio::null()).output().await.with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The cached base tree, made once (atomically: built beside, renamed in).
async fn base_tree() -> Result<PathBuf> {
    let (mirror, suite) = mirror_and_suite();
    let tree = Path::new(CACHE).join(format!("{suite}-minbase-nm"));
    if tree.join("usr/bin/nmcli").exists() {
        return Ok(tree);
    }
    let building = Path::new(CACHE).join(format!("{suite}.building"));
    let _ = fs::remove_dir_all(&building);
    fs::create_dir_all(CACHE)?;
    header(&format!("debootstrap {suite} from {mirror} into {} (cached for later runs)", tree.display()));
    let started = Instant::now();
    run_checked(
        Command::new("debootstrap")
            .args(["--variant=minbase", &format!("--include={INCLUDE}"), &suite])
            .arg(&building)
            .arg(&mirror),
        "debootstrap",
    )
    .await?;
    fs::rename(&building, &tree)?;
    eprintln!("debootstrap took {:.0} s", started.elapsed().as_secs_f64());
    Ok(tree)
}

/// Everything one run made on the host, undone on drop: the overlay root,
/// the cgroup trees nspawn used, the work directory.
struct Run {
    dir: PathBuf,
    root: PathBuf,
    mounted: bool,
    cgroups: Vec<PathBuf>,
    nspawn_state_existed: bool,
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.mounted {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.root).status();
        }
        for top in &self.cgroups {
            remove_cgroup_tree(top);
        }
        if !self.nspawn_state_existed {
            let _ = fs::remove_dir_all("/run/systemd/nspawn");
        }
        if std::env::var_os("NM_RS_KEEP_BOOT_TEST").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("kept {}", self.dir.display());
        }
    }
}

/// The processes left in a cgroup tree (a container that did not power off).
fn cgroup_pids(dir: &Path) -> Vec<i32> {
    let mut pids: Vec<i32> = fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())) {
            pids.extend(cgroup_pids(&e.path()));
        }
    }
    pids
}

/// Ends what is left of the container (only processes in this run's own
/// cgroup tree), then removes the tree.
fn remove_cgroup_tree(top: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = cgroup_pids(top);
        if pids.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in pids {
            // SAFETY: kill(2) with a pid read from our own cgroup; no memory is involved.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    remove_empty_cgroups(top);
}

/// cgroup directories can only be removed empty and bottom-up.
fn remove_empty_cgroups(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_cgroups(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

impl Run {
    fn new(base: &Path) -> Result<Run> {
        let dir = std::env::temp_dir().join(format!("nm-rs-boot-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let root = dir.join("root");
        for d in [dir.join("upper"), dir.join("work"), root.clone()] {
            fs::create_dir_all(&d)?;
        }
        let tag = format!("nm-rs-boot-{}", std::process::id());
        let cgroups = ["systemd", "unified"]
            .iter()
            .map(|h| Path::new("/sys/fs/cgroup").join(h).join(&tag))
            .filter(|p| p.parent().is_some_and(Path::exists))
            .collect();
        let mut run =
            Run { dir, root, mounted: false, cgroups, nspawn_state_existed: Path::new("/run/systemd/nspawn").exists() };
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            base.display(),
            run.dir.join("upper").display(),
            run.dir.join("work").display()
        );
        let status = std::process::Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(&run.root)
            .status()
            .context("mounting the overlay root")?;
        if !status.success() {
            bail!("mounting the overlay root failed");
        }
        run.mounted = true;
        Ok(run)
    }

    /// `systemd-nspawn ARGS`, started from a shell that first moves itself
    /// into this run's cgroup trees.
    fn nspawn(&self, args: &[String]) -> Command {
        let mut script = String::from("set -e\n");
        for cg in &self.cgroups {
            script.push_str(&format!("mkdir -p '{0}'\necho $$ > '{0}/cgroup.procs'\n", cg.display()));
        }
        script.push_str("exec systemd-nspawn \"$@\"\n");
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script).arg("nspawn").args(args).kill_on_drop(true);
        cmd
    }

    /// A command in the (not booted) tree.
    async fn in_tree(&self, binds: &[(PathBuf, &str)], command: &[&str]) -> Result<String> {
        let mut args: Vec<String> = vec!["-q".into(), "-D".into(), self.root.display().to_string()];
        args.extend(["--register=no".into(), "--keep-unit".into(), "--resolv-conf=off".into()]);
        for (from, to) in binds {
            args.push(format!("--bind-ro={}:{to}", from.display()));
        }
        args.extend(command.iter().map(|s| s.to_string()));
        run_checked(&mut self.nspawn(&args), &command.join(" ")).await
    }

    fn write(&self, abs: &str, text: &str, mode: u32) -> Result<()> {
        let path = self.root.join(abs.trim_start_matches('/'));
        if let Some(d) = path.parent() {
            fs::create_dir_all(d)?;
        }
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
        Ok(())
    }
}

/// The booted container: its nspawn process and PID 1.
struct Booted {
    nspawn: Child,
    pid1: u32,
}

impl Booted {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.pid1.to_string(), "-a"]).args(args);
        cmd
    }

    async fn run(&self, args: &[&str]) -> Result<String> {
        let mut cmd = self.command(args);
        tokio::time::timeout(STEP_LIMIT, run_checked(&mut cmd, &args.join(" ")))
            .await
            .with_context(|| format!("{} took more than {STEP_LIMIT:?}", args.join(" ")))?
    }

    /// Output even on failure (for `is-active` and friends).
    async fn output(&self, args: &[&str]) -> String {
        match tokio::time::timeout(STEP_LIMIT, self.command(args).stdin(Stdio::null()).output()).await {
            Ok(Ok(o)) => String::from_utf8_lossy(&o.stdout).into_owned(),
            _ => String::new(),
        }
    }

    async fn monotonic(&self, unit: Option<&str>, property: &str) -> Result<u64> {
        let mut args = vec!["systemctl", "show", "-P", property];
        args.extend(unit);
        let v = self.run(&args).await?;
        v.trim().parse().with_context(|| format!("{property} of {unit:?}: {v:?}"))
    }
}

/// PID 1 is the nspawn process's child, once it has exec'd systemd.
async fn find_pid1(nspawn_pid: u32) -> Result<u32> {
    let deadline = Instant::now() + STEP_LIMIT;
    loop {
        let children = fs::read_to_string(format!("/proc/{nspawn_pid}/task/{nspawn_pid}/children")).unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next().and_then(|p| p.parse::<u32>().ok())
            && fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "systemd")
        {
            return Ok(pid);
        }
        if Instant::now() > deadline {
            bail!("systemd-nspawn started no container");
        }
        // The child appears a few milliseconds after the fork; /proc has no event for it.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn run(no_build: bool) -> Result<()> {
    crate::util::require_root("the boot test")?;
    crate::test::ensure(&["systemd-container", "debootstrap", "dnsmasq-base", "dbus"])?;
    let started = Instant::now();
    let deb = crate::deb::build(None, false, no_build)?;
    let base = base_tree().await?;
    // Declared first, dropped last: the container's cgroups are emptied
    // before the lab's namespaces go.
    let lab = Lab::builder().uplinks(1).build().context("a lab with one uplink and dnsmasq")?;
    let run = Run::new(&base)?;
    let uplink = lab.uplinks()[0].client_if.clone();

    header("installing the package into the tree");
    run.write("/etc/NetworkManager/nm-rs.toml", &format!("[core]\nmanaged = [\"interface-name:{uplink}\"]\n"), 0o644)?;
    run.write(
        "/etc/NetworkManager/system-connections/uplink.nmconnection",
        &format!(
            "[connection]\nid=uplink\nuuid={PROFILE_UUID}\ntype=ethernet\ninterface-name={uplink}\n\n\
             [ipv4]\nmethod=auto\n\n[ipv6]\nmethod=disabled\n"
        ),
        0o600,
    )?;
    run.write("/etc/hostname", "nmrs-boot\n", 0o644)?;
    // A consumer of the network, as a real system has (a mount, a server):
    // network-online.target is only reached when something wants it.
    run.write(
        "/etc/systemd/system/needs-network.service",
        "[Unit]\nDescription=A service that needs the network\nWants=network-online.target\n\
         After=network-online.target\n\n[Service]\nType=oneshot\nExecStart=/bin/true\nRemainAfterExit=yes\n\n\
         [Install]\nWantedBy=multi-user.target\n",
        0o644,
    )?;
    let wants = run.root.join("etc/systemd/system/multi-user.target.wants");
    fs::create_dir_all(&wants)?;
    std::os::unix::fs::symlink("/etc/systemd/system/needs-network.service", wants.join("needs-network.service"))?;
    let out = run.in_tree(&[(deb.clone(), "/tmp/nm-rs.deb")], &["dpkg", "-i", "/tmp/nm-rs.deb"]).await?;
    eprint!("{out}");
    let enabled = run.in_tree(&[], &["systemctl", "is-enabled", "NetworkManager.service"]).await.unwrap_or_default();
    if enabled.trim() == "enabled" {
        bail!("the package left NetworkManager.service enabled");
    }

    header("booting it with systemd as PID 1");
    let console = run.dir.join("console.log");
    let args: Vec<String> = vec![
        "-D".into(),
        run.root.display().to_string(),
        "-b".into(),
        "--register=no".into(),
        "--keep-unit".into(),
        "--console=read-only".into(),
        "--resolv-conf=off".into(),
        "--capability=CAP_NET_ADMIN".into(),
        format!("--network-namespace-path=/run/netns/{}", lab.client_netns()),
    ];
    let log = fs::File::create(&console)?;
    let boot_started = Instant::now();
    let nspawn = run.nspawn(&args).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).spawn()?;
    let nspawn_pid = nspawn.id().context("nspawn's pid")?;
    let pid1 = find_pid1(nspawn_pid).await?;
    let booted = Booted { nspawn, pid1 };
    let result = check_booted(&booted, &uplink, boot_started).await;
    if result.is_err() {
        eprintln!("--- console ---\n{}", fs::read_to_string(&console).unwrap_or_default());
        eprintln!("--- journal ---\n{}", booted.output(&["journalctl", "-b", "--no-pager", "-n", "80"]).await);
    }
    let stopped = power_off(booted).await;
    result?;
    stopped?;

    header("removing and purging the package");
    run.in_tree(&[], &["dpkg", "-r", "nm-rs"]).await?;
    let diversions = run.in_tree(&[], &["dpkg-divert", "--list", "nm-rs"]).await?;
    if !diversions.trim().is_empty() {
        bail!("diversions left after removal:\n{diversions}");
    }
    run.in_tree(&[], &["test", "-f", "/usr/share/dbus-1/system-services/org.freedesktop.nm_dispatcher.service"])
        .await
        .context("network-manager's dispatcher activation file is back")?;
    let enabled = run.in_tree(&[], &["systemctl", "is-enabled", "NetworkManager.service"]).await?;
    if enabled.trim() != "enabled" {
        bail!("NetworkManager.service is not enabled again after removal: {enabled}");
    }
    run.in_tree(&[], &["dpkg", "--purge", "nm-rs"]).await?;
    if run.root.join("usr/libexec/nm-rs").exists() || run.root.join("var/lib/nm-rs").exists() {
        bail!("files left after purge");
    }
    eprintln!("boot test passed in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

async fn check_booted(b: &Booted, uplink: &str, boot_started: Instant) -> Result<()> {
    // systemctl answers once PID 1 listens on its private socket; until then
    // it prints nothing (or "offline"), and there is no event to wait on.
    let deadline = boot_started + BOOT_LIMIT;
    let state = loop {
        let out = tokio::time::timeout(BOOT_LIMIT, b.command(&["systemctl", "is-system-running", "--wait"]).output())
            .await
            .context("the boot did not finish")??;
        let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !state.is_empty() && state != "offline" {
            break state;
        }
        if Instant::now() > deadline {
            bail!("systemd in the container never answered");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("system state after {:.1} s: {state}", boot_started.elapsed().as_secs_f64());
    if state != "running" {
        eprintln!("{}", b.output(&["systemctl", "--failed", "--no-pager"]).await);
    }
    for unit in ["nm-system-settings.service", "nm-core.service", "nm-dhcp-helper.service", "nm-wait-online.service"] {
        let s = b.output(&["systemctl", "is-active", unit]).await;
        if s.trim() != "active" {
            let status = b.output(&["systemctl", "status", "--no-pager", "-l", unit]).await;
            bail!("{unit} is {}:\n{status}", s.trim());
        }
    }
    if b.output(&["systemctl", "is-active", "network-online.target"]).await.trim() != "active" {
        bail!("network-online.target was not reached");
    }
    let userspace = b.monotonic(None, "UserspaceTimestampMonotonic").await?;
    let online = b.monotonic(Some("network-online.target"), "ActiveEnterTimestampMonotonic").await?;
    println!("boot to network-online.target: {} ms", online.saturating_sub(userspace) / 1000);

    let addr = b.run(&["ip", "-4", "-o", "addr", "show", "dev", uplink]).await?;
    if !addr.contains("inet 198.18.0.") || !addr.contains("dynamic") {
        bail!("no DHCP address on {uplink}: {addr}");
    }
    let routes = b.run(&["ip", "-4", "route", "show", "default"]).await?;
    if !routes.contains(&format!("default via 198.18.0.1 dev {uplink} proto dhcp")) {
        bail!("no default route by DHCP: {routes}");
    }
    let resolv = b.run(&["cat", "/etc/resolv.conf"]).await?;
    if !resolv.contains("nameserver 198.18.0.1") {
        bail!("resolv.conf: {resolv}");
    }
    let devices = b.run(&["nmcli", "-t", "-f", "DEVICE,STATE,CONNECTION", "device", "status"]).await?;
    if !devices.lines().any(|l| l == format!("{uplink}:connected:uplink")) {
        bail!("nmcli inside: {devices}");
    }
    for (unit, line) in [
        ("nm-core", "ready on the bus"),
        ("nm-system-settings", "ready on the bus"),
        ("nm-dhcp-helper", "from 198.18.0.1"),
    ] {
        let journal = b.run(&["journalctl", "-b", "-u", unit, "--no-pager", "-o", "cat"]).await?;
        if !journal.contains(line) {
            bail!("journald has no \"{line}\" from {unit}:\n{journal}");
        }
    }
    let dispatcher = b.run(&["journalctl", "-b", "-u", "nm-dispatcher", "--no-pager", "-o", "cat"]).await?;
    if !dispatcher.contains("ready on the bus") {
        bail!("nm-dispatcher was not started by the bus:\n{dispatcher}");
    }

    // A restart of nm-core: the address never leaves (ip monitor runs across it).
    let before = addr.split_whitespace().skip_while(|w| *w != "inet").nth(1).unwrap_or_default().to_string();
    // One shell inside, so that the monitor ends with it.
    let script = "ip -o monitor address & m=$!; systemctl restart nm-core.service; \
                  systemctl is-active nm-core.service; kill $m";
    let seen = b.run(&["sh", "-c", script]).await?;
    let after = b.run(&["ip", "-4", "-o", "addr", "show", "dev", uplink]).await?;
    if !after.contains(&format!("inet {before}"))
        || seen.lines().any(|l| l.starts_with("Deleted") && l.contains(&before))
    {
        bail!("the address went during the restart: before {before}, after {after}\nip monitor:\n{seen}");
    }
    // The restarted nm-core takes the device back (its DHCP client asks the
    // server again, INIT-REBOOT); the address stays meanwhile.
    let deadline = Instant::now() + STEP_LIMIT;
    loop {
        let devices = b.run(&["nmcli", "-t", "-f", "DEVICE,STATE", "device", "status"]).await?;
        if devices.lines().any(|l| l == format!("{uplink}:connected")) {
            break;
        }
        if Instant::now() > deadline {
            bail!("after the restart: {devices}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn power_off(mut b: Booted) -> Result<()> {
    let _ = b.command(&["systemctl", "poweroff"]).stdin(Stdio::null()).output().await;
    match tokio::time::timeout(STEP_LIMIT, b.nspawn.wait()).await {
        Ok(status) => {
            status?;
            Ok(())
        }
        Err(_) => {
            let _ = b.nspawn.start_kill();
            let _ = b.nspawn.wait().await;
            bail!("the container did not power off within {STEP_LIMIT:?}")
        }
    }
}
