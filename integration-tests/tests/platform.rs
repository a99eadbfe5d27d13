//! nm-platform against the real kernel (needs root). Every netlink socket is
//! opened on a thread that entered the lab's client namespace first; the
//! kernel's state is read back with `ip -n <ns> -j`.

use std::future::Future;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use nm_lab::Lab;
use nm_platform::{
    Address, Family, Link, LinkDetails, LinkKind, MacvlanOptions, NewLink, Platform, PlatformEvent, PlatformOptions,
    RTPROT_DHCP, RTPROT_KERNEL, RTPROT_STATIC, Route, RouteFilter, TunOptions, VxlanOptions,
};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

const WAIT: Duration = Duration::from_secs(5);

/// Runs `f` on a new thread that has entered network namespace `netns`,
/// on a current-thread runtime of its own. Panics (before `f` runs) if the
/// thread is not in that namespace afterwards.
fn in_netns<F, Fut, T>(netns: &str, f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let path = format!("/run/netns/{netns}");
    let thread = std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).expect("open the namespace");
        // SAFETY: a valid namespace fd; CLONE_NEWNET affects this thread only.
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        let now = std::fs::metadata("/proc/thread-self/ns/net").expect("own netns");
        let want = ns.metadata().expect("netns file");
        assert_eq!((now.dev(), now.ino()), (want.dev(), want.ino()), "not in {path}");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(f())
    });
    thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn lab() -> Lab {
    Lab::builder().uplinks(2).dnsmasq(false).build().expect("lab")
}

/// `ip -n <ns> <args>`, checked; stdout.
fn ip(ns: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("ip").args(["-n", ns]).args(args).output().expect("run ip");
    assert!(out.status.success(), "ip -n {ns} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 from ip")
}

/// `ip -n <ns> -j <args>` as JSON.
fn ip_json(ns: &str, args: &[&str]) -> Value {
    let mut all = vec!["-j"];
    all.extend_from_slice(args);
    let text = ip(ns, &all);
    if text.trim().is_empty() {
        return Value::Array(Vec::new());
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("ip {args:?}: {e}: {text}"))
}

/// `ip -n <ns> -batch -` fed with `commands`.
fn ip_batch(ns: &str, commands: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("ip")
        .args(["-n", ns, "-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run ip -batch");
    child.stdin.take().expect("stdin").write_all(commands.as_bytes()).expect("feed ip -batch");
    assert!(child.wait().expect("ip -batch").success(), "ip -batch failed");
}

/// The next event that `pred` accepts (earlier ones are dropped).
async fn wait_for(
    events: &mut UnboundedReceiver<PlatformEvent>,
    what: &str,
    pred: impl Fn(&PlatformEvent) -> bool,
) -> PlatformEvent {
    tokio::time::timeout(WAIT, async {
        loop {
            let e = events.recv().await.expect("event channel closed");
            if pred(&e) {
                return e;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
}

fn changed(ifindex: u32, pred: impl Fn(&Link) -> bool) -> impl Fn(&PlatformEvent) -> bool {
    move |e| matches!(e, PlatformEvent::LinkChanged(l) if l.ifindex == ifindex && pred(l))
}

fn mac_text(mac: &[u8]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn link_json(ns: &str, dev: &str) -> Value {
    ip_json(ns, &["link", "show", "dev", dev])[0].clone()
}

#[test]
fn discovers_links_and_follows_link_changes() {
    let lab = lab();
    let ns = lab.client_netns().to_owned();
    let c0 = lab.uplinks()[0].client_if.clone();
    let c1 = lab.uplinks()[1].client_if.clone();
    in_netns(&ns.clone(), move || async move {
        let (platform, mut events) = Platform::new().await.expect("platform");

        // Discovery: loopback and the two veths, as `ip` sees them.
        let lo = platform.link_by_name("lo").expect("lo");
        assert_eq!((lo.ifindex, &lo.kind, lo.admin_up), (1, &LinkKind::Loopback, true));
        assert!(!lo.physical);
        for name in [&c0, &c1] {
            let link = platform.link_by_name(name).expect("uplink discovered");
            let json = link_json(&ns, name);
            assert_eq!(u64::from(link.ifindex), json["ifindex"].as_u64().unwrap());
            assert_eq!(link.kind, LinkKind::Veth);
            assert_eq!(link.driver.as_deref(), Some("veth"));
            assert!(!link.physical && !link.admin_up && !link.carrier);
            assert_eq!(u64::from(link.mtu), json["mtu"].as_u64().unwrap());
            assert_eq!(mac_text(link.mac.as_deref().expect("mac")), json["address"].as_str().unwrap());
            assert_eq!(platform.link(link.ifindex), Some(link.clone()));
        }
        assert_eq!(platform.links().len(), 3, "{:#?}", platform.links());
        let idx = platform.link_by_name(&c0).unwrap().ifindex;

        // Up: the cache shows it as soon as the call returns, the event
        // follows; the carrier comes with the far end (already up).
        platform.set_link_up(idx, true).await.expect("up");
        assert!(platform.link(idx).unwrap().admin_up);
        let up = wait_for(&mut events, "admin up", changed(idx, |l| l.admin_up)).await;
        if !matches!(up, PlatformEvent::LinkChanged(l) if l.carrier) {
            wait_for(&mut events, "carrier", changed(idx, |l| l.carrier)).await;
        }
        let flags = link_json(&ns, &c0)["flags"].to_string();
        assert!(flags.contains("\"UP\"") && flags.contains("LOWER_UP"), "{flags}");

        platform.set_mtu(idx, 1400).await.expect("mtu");
        assert_eq!(platform.link(idx).unwrap().mtu, 1400);
        wait_for(&mut events, "MTU 1400", changed(idx, |l| l.mtu == 1400)).await;
        assert_eq!(link_json(&ns, &c0)["mtu"], 1400);

        let mac = [0x02, 0x4e, 0x4d, 0x00, 0x00, 0x07];
        platform.set_mac(idx, mac).await.expect("mac");
        wait_for(&mut events, "new MAC", changed(idx, move |l| l.mac.as_deref() == Some(&mac[..]))).await;
        assert_eq!(link_json(&ns, &c0)["address"], "02:4e:4d:00:00:07");

        platform.set_link_up(idx, false).await.expect("down");
        wait_for(&mut events, "admin down", changed(idx, |l| !l.admin_up && !l.carrier)).await;

        // Changes made by others arrive too.
        ip(&ns, &["link", "set", "dev", &c0, "mtu", "1300"]);
        wait_for(&mut events, "MTU 1300", changed(idx, |l| l.mtu == 1300)).await;

        // Errors carry the kernel's reason and name the link.
        let err = platform.set_mtu(idx, 10).await.expect_err("MTU 10");
        assert_eq!(err.errno(), Some(libc::EINVAL), "{err}");
        assert!(err.to_string().contains(&c0), "{err}");
        assert!(err.to_string().contains("minimum"), "the kernel's own words: {err}");
        assert!(platform.set_link_up(999_999, true).await.is_err());

        // Links come and go; each kind is recognised.
        ip(&ns, &["link", "add", "nmpv0", "type", "veth", "peer", "name", "nmpv1"]);
        ip(&ns, &["link", "add", "nmpbr", "type", "bridge"]);
        ip(&ns, &["link", "add", "nmpmv", "link", &c1, "type", "macvlan", "mode", "bridge"]);
        ip(&ns, &["link", "add", "nmpvx", "type", "vxlan", "id", "42", "dstport", "4789"]);
        ip(&ns, &["tuntap", "add", "dev", "nmptun", "mode", "tun"]);
        ip(&ns, &["link", "set", "dev", "nmpv1", "master", "nmpbr"]);
        let added = |name: &'static str, kind: LinkKind| move |e: &PlatformEvent| matches!(e, PlatformEvent::LinkAdded(l) if l.name == name && l.kind == kind);
        wait_for(&mut events, "veth", added("nmpv0", LinkKind::Veth)).await;
        wait_for(&mut events, "bridge", added("nmpbr", LinkKind::Bridge)).await;
        wait_for(&mut events, "macvlan", added("nmpmv", LinkKind::Macvlan)).await;
        wait_for(&mut events, "vxlan", added("nmpvx", LinkKind::Vxlan)).await;
        wait_for(&mut events, "tun", added("nmptun", LinkKind::Tun)).await;
        let br = platform.link_by_name("nmpbr").unwrap();
        assert_eq!(br.driver.as_deref(), Some("bridge"));
        let port = platform.link_by_name("nmpv1").unwrap();
        wait_for(&mut events, "bridge port", changed(port.ifindex, move |l| l.master == Some(br.ifindex))).await;
        assert_eq!(platform.link(port.ifindex).unwrap().master, Some(br.ifindex));
        // A port leaving its bridge is not the port going away.
        ip(&ns, &["link", "set", "dev", "nmpv1", "nomaster"]);
        wait_for(&mut events, "port released", changed(port.ifindex, |l| l.master.is_none())).await;
        assert!(platform.link(port.ifindex).is_some());

        ip(&ns, &["link", "del", "nmpv0"]);
        let gone = wait_for(
            &mut events,
            "veth removed",
            |e| matches!(e, PlatformEvent::LinkRemoved { name, .. } if name == "nmpv1"),
        )
        .await;
        let PlatformEvent::LinkRemoved { ifindex, .. } = gone else { unreachable!() };
        assert!(platform.link(ifindex).is_none());
        assert!(platform.link_by_name("nmpv0").is_none());

        // Only links of this namespace: a fresh platform sees what `ip` sees.
        let (again, _events) = Platform::new().await.expect("second platform");
        let names: Vec<String> = again.links().into_iter().map(|l| l.name).collect();
        let ip_names: Vec<String> = ip_json(&ns, &["link", "show"])
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ip_names);
        assert_eq!(again.links(), platform.links());
    });
}

/// The `addr_info` entry of `addr` on `dev`, if any.
fn ip_addr_info(ns: &str, dev: &str, addr: &str) -> Option<Value> {
    ip_json(ns, &["addr", "show", "dev", dev])[0]["addr_info"].as_array()?.iter().find(|a| a["local"] == addr).cloned()
}

fn lifetime(info: &Value, key: &str) -> u64 {
    info[key].as_u64().unwrap_or_else(|| panic!("no {key} in {info}"))
}

#[test]
fn addresses_with_lifetimes() {
    let lab = lab();
    let ns = lab.client_netns().to_owned();
    let c0 = lab.uplinks()[0].client_if.clone();
    in_netns(&ns.clone(), move || async move {
        let (platform, mut events) = Platform::new().await.expect("platform");
        let idx = platform.link_by_name(&c0).unwrap().ifindex;
        platform.set_link_up(idx, true).await.expect("up");

        let v4: IpAddr = "198.18.0.50".parse().unwrap();
        let mut a = Address::new(idx, v4, 24);
        a.valid_lft = Some(300);
        a.preferred_lft = Some(200);
        platform.add_address(&a).await.expect("add v4");
        let info = ip_addr_info(&ns, &c0, "198.18.0.50").expect("in the kernel");
        assert_eq!(info["prefixlen"], 24);
        assert_eq!(info["broadcast"], "198.18.0.255");
        let (valid, preferred) = (lifetime(&info, "valid_life_time"), lifetime(&info, "preferred_life_time"));
        assert!((295..=300).contains(&valid), "{info}");
        assert!((195..=200).contains(&preferred), "{info}");
        // In the cache when the call returns, then as an event.
        let cached = platform.addresses(idx).into_iter().find(|x| x.addr == v4).expect("cached");
        assert!(cached.valid_lft.is_some_and(|v| (295..=300).contains(&v)), "{cached:?}");
        assert!(!cached.noprefixroute);
        wait_for(&mut events, "address added", |e| matches!(e, PlatformEvent::AddressAdded(x) if x.addr == v4)).await;
        // The kernel made its prefix route.
        let main = platform.routes(RouteFilter { family: Some(Family::V4), ..RouteFilter::main() }).await.unwrap();
        assert!(
            main.iter().any(|r| r.dest == "198.18.0.0".parse::<IpAddr>().unwrap()
                && r.prefix == 24
                && r.protocol == RTPROT_KERNEL
                && r.oif == Some(idx)),
            "{main:#?}"
        );

        // Adding again replaces: new lifetimes, no error, still one address.
        a.valid_lft = Some(600);
        a.preferred_lft = None; // forever, capped at valid
        platform.add_address(&a).await.expect("refresh v4");
        let info = ip_addr_info(&ns, &c0, "198.18.0.50").unwrap();
        assert!((595..=600).contains(&lifetime(&info, "valid_life_time")), "{info}");
        assert!((595..=600).contains(&lifetime(&info, "preferred_life_time")), "{info}");
        wait_for(
            &mut events,
            "address refreshed",
            |e| matches!(e, PlatformEvent::AddressAdded(x) if x.addr == v4 && x.valid_lft.is_some_and(|v| v > 300)),
        )
        .await;
        assert_eq!(platform.addresses(idx).iter().filter(|x| x.addr == v4).count(), 1);

        // IPv6, forever, without a prefix route.
        let v6: IpAddr = "fd4c:6162:0:0::50".parse().unwrap();
        let mut b = Address::new(idx, v6, 64);
        b.noprefixroute = true;
        platform.add_address(&b).await.expect("add v6");
        let info = ip_addr_info(&ns, &c0, "fd4c:6162::50").expect("v6 in the kernel");
        assert_eq!(info["prefixlen"], 64);
        assert_eq!(info["noprefixroute"], true, "{info}");
        assert_eq!(info["valid_life_time"].as_u64(), Some(u64::from(u32::MAX)), "{info}");
        let added =
            wait_for(&mut events, "v6 added", |e| matches!(e, PlatformEvent::AddressAdded(x) if x.addr == v6)).await;
        let PlatformEvent::AddressAdded(seen) = added else { unreachable!() };
        assert!(seen.noprefixroute && seen.valid_lft.is_none() && seen.preferred_lft.is_none(), "{seen:?}");
        let v6_main = platform
            .routes(RouteFilter { family: Some(Family::V6), oif: Some(idx), ..RouteFilter::main() })
            .await
            .unwrap();
        assert!(!v6_main.iter().any(|r| r.dest == "fd4c:6162::".parse::<IpAddr>().unwrap()), "{v6_main:#?}");

        // Delete both; deleting again is not an error.
        platform.delete_address(&a).await.expect("delete v4");
        platform.delete_address(&b).await.expect("delete v6");
        assert!(ip_addr_info(&ns, &c0, "198.18.0.50").is_none());
        assert!(ip_addr_info(&ns, &c0, "fd4c:6162::50").is_none());
        wait_for(&mut events, "v4 removed", |e| matches!(e, PlatformEvent::AddressRemoved(x) if x.addr == v4)).await;
        wait_for(&mut events, "v6 removed", |e| matches!(e, PlatformEvent::AddressRemoved(x) if x.addr == v6)).await;
        assert!(!platform.addresses(idx).iter().any(|x| x.addr == v4 || x.addr == v6));
        platform.delete_address(&a).await.expect("deleting a missing address");

        // Impossible requests fail with the kernel's reason.
        let mut bad = Address::new(idx, "198.18.0.51".parse().unwrap(), 24);
        bad.valid_lft = Some(0);
        let err = platform.add_address(&bad).await.expect_err("valid lifetime 0");
        assert_eq!(err.errno(), Some(libc::EINVAL), "{err}");
    });
}

/// The routes of `table` as `ip -j route show table N` gives them, both
/// families (a family without that table has none).
fn ip_routes(ns: &str, table: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for fam in ["-4", "-6"] {
        let out = std::process::Command::new("ip")
            .args(["-n", ns, "-j", fam, "route", "show", "table", table])
            .output()
            .expect("run ip");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && stderr.contains("FIB table does not exist") {
            continue;
        }
        assert!(out.status.success(), "ip route show table {table}: {stderr}");
        let text = String::from_utf8_lossy(&out.stdout);
        if let Ok(Value::Array(v)) = serde_json::from_str(&text) {
            all.extend(v);
        }
    }
    all
}

#[test]
fn routes_replaced_and_deleted() {
    let lab = lab();
    let ns = lab.client_netns().to_owned();
    let c0 = lab.uplinks()[0].client_if.clone();
    in_netns(&ns.clone(), move || async move {
        let (platform, _events) = Platform::new().await.expect("platform");
        let idx = platform.link_by_name(&c0).unwrap().ifindex;
        platform.set_link_up(idx, true).await.expect("up");
        platform.add_address(&Address::new(idx, "198.18.0.50".parse().unwrap(), 24)).await.expect("address");

        let mut r = Route::new("10.99.0.0".parse().unwrap(), 16).via("198.18.0.1".parse().unwrap());
        r.oif = Some(idx);
        r.metric = 123;
        r.table = 1000;
        r.mtu = Some(1300);
        r.src = Some("198.18.0.50".parse().unwrap());
        platform.replace_route(&r).await.expect("replace");
        let routes = ip_routes(&ns, "1000");
        assert_eq!(routes.len(), 1, "{routes:?}");
        let j = &routes[0];
        assert_eq!(j["dst"], "10.99.0.0/16", "{j}");
        assert_eq!(j["gateway"], "198.18.0.1", "{j}");
        assert_eq!(j["dev"], c0.as_str(), "{j}");
        assert_eq!(j["metric"], 123, "{j}");
        assert_eq!(j["protocol"], "static", "{j}");
        assert_eq!(j["prefsrc"], "198.18.0.50", "{j}");
        assert!(j["metrics"].to_string().contains("1300"), "{j}");
        let table = RouteFilter { table: Some(1000), ..RouteFilter::default() };
        assert_eq!(platform.routes(table).await.unwrap(), vec![r.clone()]);

        // Same destination, table and metric: replaced, not added.
        let mut r2 = r.clone();
        r2.gateway = Some("198.18.0.2".parse().unwrap());
        r2.mtu = None;
        platform.replace_route(&r2).await.expect("replace again");
        let routes = ip_routes(&ns, "1000");
        assert_eq!(routes.len(), 1, "{routes:?}");
        assert_eq!(routes[0]["gateway"], "198.18.0.2");
        // Another metric is another route.
        let mut r3 = r2.clone();
        r3.metric = 124;
        platform.replace_route(&r3).await.expect("second metric");
        assert_eq!(ip_routes(&ns, "1000").len(), 2);

        // IPv6, another protocol.
        let mut r6 = Route::new("fd00:99::".parse().unwrap(), 64);
        r6.oif = Some(idx);
        r6.metric = 200;
        r6.table = 1000;
        r6.protocol = RTPROT_DHCP;
        platform.replace_route(&r6).await.expect("v6 route");
        let v6 = ip_json(&ns, &["-6", "route", "show", "table", "1000"]);
        assert_eq!(v6[0]["dst"], "fd00:99::/64", "{v6}");
        assert_eq!(v6[0]["protocol"], "dhcp", "{v6}");
        assert_eq!(v6[0]["metric"], 200, "{v6}");

        // Filters: protocol, family, interface.
        let dhcp = platform.routes(RouteFilter { protocol: Some(RTPROT_DHCP), ..table }).await.unwrap();
        assert_eq!(dhcp, vec![r6.clone()]);
        let v4 = platform.routes(RouteFilter { family: Some(Family::V4), ..table }).await.unwrap();
        assert_eq!(v4, vec![r2.clone(), r3.clone()]);
        let other_if = lab_other_ifindex(&platform, &c0);
        assert!(platform.routes(RouteFilter { oif: Some(other_if), ..table }).await.unwrap().is_empty());
        // A table that does not exist has no routes; neither has a missing interface.
        assert!(platform.routes(RouteFilter { table: Some(4242), ..RouteFilter::default() }).await.unwrap().is_empty());
        assert!(
            platform.routes(RouteFilter { oif: Some(999_999), ..RouteFilter::default() }).await.unwrap().is_empty()
        );

        // Delete: only the route named, and deleting again is fine. The
        // protocol is part of the match: a `static` delete leaves `dhcp` alone.
        platform.delete_route(&r2).await.expect("delete");
        let left = ip_routes(&ns, "1000");
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.iter().any(|j| j["metric"] == 124));
        platform.delete_route(&r2).await.expect("delete a missing route");
        let mut wrong_proto = r6.clone();
        wrong_proto.protocol = RTPROT_STATIC;
        platform.delete_route(&wrong_proto).await.expect("no such route");
        assert_eq!(ip_routes(&ns, "1000").len(), 2);
        platform.delete_route(&r3).await.expect("delete");
        platform.delete_route(&r6).await.expect("delete v6");
        assert!(ip_routes(&ns, "1000").is_empty());

        // A gateway that is not on any link: the kernel says why.
        let unreachable = Route::new("10.98.0.0".parse().unwrap(), 16).via("203.0.113.1".parse().unwrap());
        let err = platform.replace_route(&unreachable).await.expect_err("unreachable gateway");
        assert_eq!(err.errno(), Some(libc::ENETUNREACH), "{err}");
        assert!(err.to_string().contains("10.98.0.0/16"), "{err}");
    });
}

fn lab_other_ifindex(platform: &Platform, not: &str) -> u32 {
    platform.links().into_iter().find(|l| l.kind == LinkKind::Veth && l.name != not).expect("the other uplink").ifindex
}

#[test]
fn foreign_routes_cost_nothing() {
    const FOREIGN: usize = 20_000;
    let lab = lab();
    let ns = lab.client_netns().to_owned();
    let c1 = lab.uplinks()[1].client_if.clone();
    in_netns(&ns.clone(), move || async move {
        let (platform, mut events) = Platform::new().await.expect("platform");
        let idx = platform.link_by_name(&c1).unwrap().ifindex;
        platform.set_link_up(idx, true).await.expect("up");
        if !platform.link(idx).unwrap().carrier {
            wait_for(&mut events, "carrier", changed(idx, |l| l.carrier)).await;
        }
        while let Ok(e) = events.try_recv() {
            drop(e);
        }

        let mut batch = String::new();
        for i in 0..FOREIGN {
            batch += &format!("route add 10.{}.{}.0/24 dev {c1} table 2000 proto boot\n", 100 + i / 256, i % 256);
        }
        // The event task cannot run while this blocks the thread: whatever
        // the routes caused would wait in the socket.
        ip_batch(&ns, &batch);
        let n = ip(&ns, &["route", "show", "table", "2000"]).lines().count();
        assert_eq!(n, FOREIGN);

        // A change after the routes: once it returns, everything the kernel
        // announced before it has been read. Nothing came of the routes (no
        // overrun either); only our change, and perhaps the end of duplicate
        // address detection of the link-local address.
        platform.set_mtu(idx, 1280).await.expect("mtu");
        let mut seen = Vec::new();
        while let Ok(e) = events.try_recv() {
            seen.push(e);
        }
        let ours = |e: &PlatformEvent| matches!(e, PlatformEvent::LinkChanged(l) if l.ifindex == idx && l.mtu == 1280);
        let dad = |e: &PlatformEvent| matches!(e, PlatformEvent::AddressAdded(a) if matches!(a.addr, IpAddr::V6(v6) if v6.is_unicast_link_local()));
        assert_eq!(seen.iter().filter(|e| ours(e)).count(), 1, "{seen:#?}");
        assert!(seen.iter().all(|e| ours(e) || dad(e)), "{seen:#?}");

        let t = Instant::now();
        let main = platform.routes(RouteFilter::main()).await.expect("main routes");
        let main_time = t.elapsed();
        assert!(main.iter().all(|r| r.table == 254), "{main:#?}");
        assert!(main.len() < 10, "{main:#?}");
        let t = Instant::now();
        let foreign =
            platform.routes(RouteFilter { table: Some(2000), ..RouteFilter::default() }).await.expect("table 2000");
        let foreign_time = t.elapsed();
        assert_eq!(foreign.len(), FOREIGN);
        assert!(foreign.iter().all(|r| r.oif == Some(idx) && r.protocol == 3 && r.table == 2000));
        // A dump abandoned half-way (its caller gave up) does not disturb
        // the next request.
        let table = RouteFilter { table: Some(2000), ..RouteFilter::default() };
        let abandoned = tokio::time::timeout(Duration::from_micros(200), platform.routes(table)).await;
        assert!(abandoned.is_err(), "a dump of {FOREIGN} routes took less than 200 µs");
        assert_eq!(platform.routes(table).await.expect("after an abandoned dump").len(), FOREIGN);
        let statics = platform
            .routes(RouteFilter { table: Some(2000), protocol: Some(RTPROT_STATIC), ..RouteFilter::default() })
            .await
            .expect("static in table 2000");
        assert!(statics.is_empty());
        eprintln!(
            "with {FOREIGN} foreign routes: routes(main) {main_time:?} ({} routes), routes(table 2000) {foreign_time:?}",
            main.len()
        );
        assert!(main_time < Duration::from_millis(50), "routes(main) took {main_time:?}");
    });
}

#[test]
fn an_overrun_is_answered_by_a_resync() {
    let lab = lab();
    let ns = lab.client_netns().to_owned();
    let c0 = lab.uplinks()[0].client_if.clone();
    in_netns(&ns.clone(), move || async move {
        // A tiny queue: a burst of changes overruns it.
        let options = PlatformOptions { event_buffer: 4096 };
        let (platform, mut events) = Platform::with_options(options).await.expect("platform");
        let idx = platform.link_by_name(&c0).unwrap().ifindex;
        // While `ip` runs, this thread (and the event task with it) is blocked.
        let mut batch = String::new();
        for i in 0..200 {
            batch += &format!("link set dev {c0} mtu {}\n", 1300 + i);
        }
        batch += &format!("link add nmpov0 type veth peer name nmpov1\naddr add 198.18.0.77/24 dev {c0}\n");
        ip_batch(&ns, &batch);

        let mut before = Vec::new();
        tokio::time::timeout(WAIT, async {
            loop {
                match events.recv().await.expect("events") {
                    PlatformEvent::Resynced => break,
                    e => before.push(e),
                }
            }
        })
        .await
        .expect("no Resynced within 5 s");
        // The re-dump's difference came just before, and the cache is right.
        assert!(
            before.iter().any(|e| matches!(e, PlatformEvent::LinkChanged(l) if l.ifindex == idx && l.mtu == 1499)),
            "{before:#?}"
        );
        assert!(before.iter().any(|e| matches!(e, PlatformEvent::LinkAdded(l) if l.name == "nmpov0")), "{before:#?}");
        assert!(
            before.iter().any(
                |e| matches!(e, PlatformEvent::AddressAdded(a) if a.addr == "198.18.0.77".parse::<IpAddr>().unwrap())
            ),
            "{before:#?}"
        );
        assert_eq!(platform.link(idx).unwrap().mtu, 1499);
        let (fresh, _) = Platform::new().await.expect("a fresh platform");
        assert_eq!(platform.links(), fresh.links());
        for l in fresh.links() {
            assert_eq!(platform.addresses(l.ifindex), fresh.addresses(l.ifindex));
        }
        // And it goes on working.
        platform.set_mtu(idx, 1500).await.unwrap();
        wait_for(&mut events, "MTU 1500", changed(idx, |l| l.mtu == 1500)).await;
    });
}

#[test]
fn discovers_300_veths_quickly() {
    const PAIRS: usize = 300;
    let lab = Lab::builder().uplinks(1).dnsmasq(false).build().expect("lab");
    let ns = lab.client_netns().to_owned();
    let srv = lab.server_netns().expect("server namespace").to_owned();
    let mut batch = String::new();
    for i in 0..PAIRS {
        batch += &format!("link add nmpc{i} type veth peer name nmps{i} netns {srv}\n");
    }
    ip_batch(&ns, &batch);
    in_netns(&ns.clone(), move || async move {
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let (platform, _events) = Platform::new().await.expect("platform");
            times.push(t.elapsed());
            let veths = platform.links().iter().filter(|l| l.kind == LinkKind::Veth).count();
            assert_eq!(veths, PAIRS + 1);
        }
        times.sort();
        let median = times[times.len() / 2];
        eprintln!("Platform::new with {} veths: median {median:?} of {times:?}", PAIRS + 1);
        assert!(median < Duration::from_millis(100), "{times:?}");
    });
}

/// macvlan, vxlan and tun links made with their settings, which the cache
/// reads back from the kernel as made; a tun name in use is refused (the
/// kernel would attach to it instead).
#[test]
fn creates_macvlan_vxlan_and_tun_links_as_asked() {
    let lab = lab();
    let ns = lab.client_netns().to_owned();
    let c0 = lab.uplinks()[0].client_if.clone();
    let stem = c0[..c0.len() - 2].to_string();
    in_netns(&ns.clone(), move || async move {
        let (platform, _events) = Platform::new().await.expect("platform");
        let parent = platform.link_by_name(&c0).expect("uplink").ifindex;
        let macvlan = MacvlanOptions { parent, mode: nm_platform::macvlan_mode::PRIVATE, promiscuous: true };
        let vxlan = VxlanOptions {
            id: 99,
            remote: "198.18.0.1".parse().ok(),
            local: None,
            parent: Some(parent),
            port: 4789,
            source_ports: (0, 0),
            tos: 0,
            ttl: 32,
            learning: false,
            ageing: 120,
            limit: 0,
            proxy: false,
            rsc: false,
            l2miss: false,
            l3miss: false,
        };
        let tun =
            TunOptions { tap: false, owner: Some(65534), group: None, pi: false, vnet_hdr: false, multi_queue: true };
        let made = [
            (format!("{stem}m"), NewLink::Macvlan(macvlan), LinkKind::Macvlan, LinkDetails::Macvlan(macvlan)),
            (format!("{stem}v"), NewLink::Vxlan(vxlan.clone()), LinkKind::Vxlan, LinkDetails::Vxlan(vxlan)),
            (format!("{stem}t"), NewLink::Tun(tun), LinkKind::Tun, LinkDetails::Tun(tun)),
        ];
        for (name, what, kind, details) in &made {
            let link = platform.create_link(name, what).await.expect("create");
            assert_eq!((&link.kind, link.details.as_ref()), (kind, Some(details)), "{name}");
            assert!(platform.create_link(name, what).await.is_err(), "{name}: a name in use is refused");
        }
        let shown = ip(&ns, &["-d", "link", "show", "dev", &made[0].0]);
        assert!(shown.contains("macvlan mode private"), "{shown}");
        let shown = ip(&ns, &["-d", "link", "show", "dev", &made[1].0]);
        assert!(shown.contains("vxlan id 99 remote 198.18.0.1") && shown.contains("dstport 4789"), "{shown}");
        let shown = ip(&ns, &["-d", "link", "show", "dev", &made[2].0]);
        assert!(shown.contains("tun type tun pi off") && shown.contains("multi_queue"), "{shown}");
        for (name, ..) in &made {
            let ifindex = platform.link_by_name(name).expect("made").ifindex;
            platform.delete_link(ifindex).await.expect("delete");
            assert!(platform.link_by_name(name).is_none());
        }
    });
}

#[test]
fn creates_a_bridge_takes_ports_and_deletes_it() {
    let lab = lab();
    let ns = lab.client_netns().to_owned();
    let c0 = lab.uplinks()[0].client_if.clone();
    let bridge = format!("{}b", &c0[..c0.len() - 2]);
    in_netns(&ns.clone(), move || async move {
        let (platform, mut events) = Platform::new().await.expect("platform");
        let options =
            NewLink::Bridge(nm_platform::BridgeOptions { stp: false, forward_delay: 400, ..Default::default() });
        let br = platform.create_link(&bridge, &options).await.expect("create");
        assert_eq!((br.kind, br.name.as_str()), (LinkKind::Bridge, bridge.as_str()));
        let j = ip_json(&ns, &["-d", "link", "show", "dev", &bridge])[0].clone();
        let info = &j["linkinfo"]["info_data"];
        assert_eq!((info["stp_state"].as_u64(), info["forward_delay"].as_u64()), (Some(0), Some(400)), "{j}");
        assert!(platform.create_link(&bridge, &options).await.is_err(), "a name in use is refused");
        assert!(platform.create_link("no/slash", &options).await.is_err());

        let port = platform.link_by_name(&c0).expect("uplink").ifindex;
        platform.set_master(port, br.ifindex).await.expect("attach");
        wait_for(&mut events, "the port's master", changed(port, move |l| l.master == Some(br.ifindex))).await;
        assert_eq!(link_json(&ns, &c0)["master"], bridge.as_str());
        platform.set_master(port, 0).await.expect("release");
        wait_for(&mut events, "no master", changed(port, |l| l.master.is_none())).await;

        platform.delete_link(br.ifindex).await.expect("delete");
        assert!(platform.link_by_name(&bridge).is_none());
        platform.delete_link(br.ifindex).await.expect("deleting what is gone is no error");
        assert!(ip(&ns, &["link", "show", "type", "bridge"]).trim().is_empty());
    });
}

/// Offload features and channel counts through the ethtool ioctl, read
/// back with ethtool(8) on the lab's veth.
#[test]
fn sets_offload_features_and_channels() {
    use nm_platform::ethtool::{self, EthtoolBlock};
    let lab = lab();
    let ns = lab.client_netns().to_owned();
    let c0 = lab.uplinks()[0].client_if.clone();
    let ethtool_k = |ns: &str, dev: &str| {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", ns, "ethtool", "-k", dev])
            .output()
            .expect("ethtool runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dev = c0.clone();
    let before = in_netns(&ns, move || async move { ethtool::features(&dev).expect("features") });
    let tso = before.iter().find(|(n, _)| n == "tx-tcp-segmentation").expect("veth has TSO").1;
    assert!(tso.changeable && tso.active, "{tso:?}");
    assert!(ethtool_k(&ns, &c0).contains("tx-tcp-segmentation: on"));

    let dev = c0.clone();
    let missing = in_netns(&ns, move || async move {
        let wanted = vec![("tx-tcp-segmentation".to_string(), false), ("no-such-feature".to_string(), true)];
        ethtool::set_features(&dev, &wanted).expect("set")
    });
    assert_eq!(missing, vec!["no-such-feature".to_string()]);
    assert!(ethtool_k(&ns, &c0).contains("tx-tcp-segmentation: off"), "{}", ethtool_k(&ns, &c0));
    let dev = c0.clone();
    let after = in_netns(&ns, move || async move { ethtool::features(&dev).expect("features") });
    assert!(!after.iter().find(|(n, _)| n == "tx-tcp-segmentation").expect("still there").1.active);

    // veth has as many channels as the machine has CPUs, one in use.
    let dev = c0.clone();
    let (before, after) = in_netns(&ns, move || async move {
        let before = ethtool::block(&dev, EthtoolBlock::Channels).expect("channels");
        ethtool::set_block(&dev, EthtoolBlock::Channels, &[(4, before[0])]).expect("rx: all");
        (before, ethtool::block(&dev, EthtoolBlock::Channels).expect("channels"))
    });
    assert!(before[0] >= 1 && before[4] == 1, "{before:?}");
    assert_eq!(after[4], before[0], "{after:?}");
    let l = std::process::Command::new("ip").args(["netns", "exec", &ns, "ethtool", "-l", &c0]).output().unwrap();
    let l = String::from_utf8_lossy(&l.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(l.contains(&format!("Current hardware settings: RX: {} TX: 1", before[0])), "{l}");
}

/// Traffic control as a profile's `tc` setting asks: exactly the listed
/// qdiscs (the device's own root and ingress ones go first), read back
/// with tc(8); an empty list gives the device its default back.
#[test]
fn puts_exactly_the_given_qdiscs_on_a_device() {
    use nm_platform::{Qdisc, QdiscOptions};
    let lab = lab();
    let ns = lab.client_netns().to_owned();
    let c0 = lab.uplinks()[0].client_if.clone();
    let qdiscs = |ns: &str, dev: &str| {
        let out = std::process::Command::new("tc").args(["-n", ns, "qdisc", "show", "dev", dev]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let default = qdiscs(&ns, &c0);
    let tbf = Qdisc {
        kind: "tbf".into(),
        parent: 0xffff_ffff,
        handle: 0x0001_0000,
        options: QdiscOptions::Tbf { rate: 125_000, burst: 5000, limit: 0, latency: 50_000 },
    };
    let ingress =
        Qdisc { kind: "ingress".into(), parent: 0xffff_fff1, handle: 0xffff_0000, options: QdiscOptions::None };
    let pfifo = Qdisc { kind: "pfifo".into(), parent: 0xffff_ffff, handle: 0x0002_0000, options: QdiscOptions::None };
    let dev = c0.clone();
    in_netns(&ns, move || async move {
        let (platform, _events) = Platform::new().await.expect("platform");
        let ifindex = platform.link_by_name(&dev).expect("uplink").ifindex;
        platform.sync_tc(ifindex, &[tbf, ingress], &[]).await.expect("tbf and ingress");
    });
    let shown = qdiscs(&ns, &c0);
    assert!(shown.contains("qdisc tbf 1: root") && shown.contains("rate 1Mbit burst 5000b"), "{shown}");
    assert!(shown.contains("qdisc ingress ffff: parent ffff:fff1"), "{shown}");

    let dev = c0.clone();
    in_netns(&ns, move || async move {
        let (platform, _events) = Platform::new().await.expect("platform");
        let ifindex = platform.link_by_name(&dev).expect("uplink").ifindex;
        platform.sync_tc(ifindex, &[pfifo], &[]).await.expect("pfifo");
    });
    let shown = qdiscs(&ns, &c0);
    assert!(shown.contains("qdisc pfifo 2: root") && !shown.contains("tbf") && !shown.contains("ingress"), "{shown}");

    let dev = c0.clone();
    in_netns(&ns, move || async move {
        let (platform, _events) = Platform::new().await.expect("platform");
        let ifindex = platform.link_by_name(&dev).expect("uplink").ifindex;
        platform.sync_tc(ifindex, &[], &[]).await.expect("none");
    });
    assert_eq!(qdiscs(&ns, &c0), default, "the device's default is back");
}
