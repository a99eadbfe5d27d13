//! nm-dhcp-helper's DHCPv6 client in the lab (needs root): the helper runs
//! as `nobody` with only CAP_NET_RAW and CAP_NET_BIND_SERVICE and is driven
//! over the lab bus as root, the way nm-core drives it, against dnsmasq's
//! stateful DHCPv6 on uplink 0.

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use nm_lab::{DaemonHandle, Lab, NOBODY};
use zbus::message::Type;
use zbus::{Connection, MatchRule, MessageStream, OwnedObjectPath, OwnedVariant, Variant};

const NAME: &str = "org.freedesktop.nm_dhcp_helper";
const PATH: &str = "/org/freedesktop/nm_dhcp_helper";
const TRANSACTION: &str = "org.freedesktop.nm_dhcp_helper.Transaction";
/// A DUID-UUID (RFC 6355), as nm-core passes.
const DUID: [u8; 18] =
    [0, 4, 0x5b, 0x0c, 0x2a, 0x62, 0x1e, 0x8f, 0x4a, 0x59, 0x8d, 0x5e, 0x2f, 0x6f, 0x3b, 0x7f, 0x0c, 0x11];

type Lease = HashMap<String, OwnedVariant>;

async fn helper(lab: &Lab) -> DaemonHandle {
    lab.daemon("nm-dhcp-helper")
        .uid(NOBODY)
        .caps(["net_raw", "net_bind_service"])
        .env("NM_RS_LOG", "debug")
        .spawn()
        .await
        .expect("nm-dhcp-helper owns its name")
}

fn ip(netns: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("ip").arg("-n").arg(netns).args(args).output().expect("ip runs");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Brings the client uplink up (nm-core's job), waits until its link-local
/// address has passed DAD (no event says so: a short poll with a deadline)
/// and returns its ifindex.
fn client_link(lab: &Lab) -> u32 {
    let ifname = lab.uplinks()[0].client_if.clone();
    let ns = lab.client_netns();
    ip(ns, &["link", "set", &ifname, "up"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let addrs = ip(ns, &["-6", "-o", "addr", "show", "dev", &ifname, "scope", "link"]);
        if addrs.lines().any(|l| l.contains("fe80::") && !l.contains("tentative")) {
            break;
        }
        assert!(Instant::now() < deadline, "no usable link-local address on {ifname}:\n{addrs}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let line = ip(ns, &["-o", "link", "show", "dev", &ifname]);
    line.split(':').next().and_then(|n| n.trim().parse().ok()).expect("ifindex")
}

async fn events(bus: &Connection) -> MessageStream {
    let rule =
        MatchRule::builder().msg_type(Type::Signal).interface(TRANSACTION).member("Event").build().expect("match rule");
    MessageStream::for_match_rule(rule, bus, None).await.expect("subscribe")
}

async fn start(bus: &Connection, ifindex: u32, opts: Vec<(&str, Variant<'_>)>) -> zbus::Result<OwnedObjectPath> {
    let map: HashMap<&str, Variant<'_>> = opts.into_iter().collect();
    let reply = bus.call_method(Some(NAME), PATH, Some(NAME), "Start", &(ifindex, map)).await?;
    reply.body().deserialize()
}

async fn stop(bus: &Connection, path: &OwnedObjectPath, release: bool) -> zbus::Result<()> {
    bus.call_method(Some(NAME), path, Some(TRANSACTION), "Stop", &(release,)).await.map(drop)
}

async fn expect_event(
    stream: &mut MessageStream,
    path: &OwnedObjectPath,
    want: &str,
    within: Duration,
    helper: &DaemonHandle,
    lab: &Lab,
) -> Lease {
    let wait = async {
        while let Some(msg) = stream.next().await {
            let msg = msg.expect("message");
            if msg.header().path().map(|p| p.as_str()) != Some(path.as_str()) {
                continue;
            }
            return msg.body().deserialize::<(String, Lease)>().expect("Event(s, a{sv})");
        }
        panic!("the bus went away");
    };
    let logs = || {
        format!(
            "helper log:\n{}\ndnsmasq log:\n{}",
            nm_lab::tail(&helper.log(), 40),
            nm_lab::tail(&dnsmasq_log(lab), 30)
        )
    };
    match tokio::time::timeout(within, wait).await {
        Ok((state, lease)) => {
            assert_eq!(state, want, "lease {lease:?}\n{}", logs());
            lease
        }
        Err(_) => panic!("no Event within {within:?}\n{}", logs()),
    }
}

fn s(lease: &Lease, key: &str) -> String {
    lease.get(key).and_then(|v| String::try_from(v.try_clone().ok()?).ok()).unwrap_or_default()
}

fn u(lease: &Lease, key: &str) -> u32 {
    lease.get(key).and_then(|v| u32::try_from(v.try_clone().ok()?).ok()).unwrap_or(0)
}

fn list(lease: &Lease, key: &str) -> Vec<String> {
    lease.get(key).and_then(|v| Vec::<String>::try_from(v.try_clone().ok()?).ok()).unwrap_or_default()
}

fn options(lease: &Lease) -> HashMap<String, String> {
    lease.get("options").and_then(|v| HashMap::<String, String>::try_from(v.try_clone().ok()?).ok()).unwrap_or_default()
}

fn dnsmasq_log(lab: &Lab) -> String {
    lab.dnsmasq_log().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default()
}

/// dnsmasq's log once it holds every one of `lines` (it writes its log a
/// little after it answers, so a client can be done before the log is).
async fn dnsmasq_logged(lab: &Lab, lines: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = dnsmasq_log(lab);
        if lines.iter().all(|l| log.contains(l)) {
            return log;
        }
        assert!(Instant::now() < deadline, "dnsmasq's log lacks one of {lines:?}:\n{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The DNS servers dnsmasq says it sent (`--log-dhcp`: "option: 23 dns-server  ADDR").
fn dnsmasq_dns(log: &str) -> Vec<Ipv6Addr> {
    log.lines()
        .filter_map(|l| l.split_once("dns-server").map(|(_, rest)| rest))
        .flat_map(|rest| rest.split([' ', ',']).filter_map(|w| w.trim().parse::<Ipv6Addr>().ok()))
        .collect()
}

fn duid() -> (&'static str, Variant<'static>) {
    ("duid", Variant::from(DUID.to_vec()))
}

#[tokio::test]
async fn managed_bound_by_dnsmasq_then_release() {
    let lab = Lab::builder().uplinks(1).build().expect("lab");
    let helper = helper(&lab).await;
    let ifindex = client_link(&lab);
    let bus = lab.bus().await.expect("bus");
    let mut stream = events(&bus).await;

    let t0 = Instant::now();
    let path = start(&bus, ifindex, vec![("family", Variant::from("ipv6")), duid(), ("timeout", Variant::from(30u32))])
        .await
        .expect("Start");
    let lease = expect_event(&mut stream, &path, "bound", Duration::from_secs(15), &helper, &lab).await;
    eprintln!("bound after {:?}: {lease:?}", t0.elapsed());
    assert_eq!(s(&lease, "family"), "ipv6");
    let address: Ipv6Addr = s(&lease, "address").parse().expect("an IPv6 address");
    let (lo, hi) = lab.uplinks()[0].dhcp6_range;
    assert!(address >= lo && address <= hi, "{address} outside {lo}..{hi}");
    assert_eq!(u(&lease, "prefix"), 128);
    let valid = u(&lease, "valid-lifetime");
    let preferred = u(&lease, "preferred-lifetime");
    assert!(valid > 0 && preferred <= valid, "{lease:?}");
    let (t1, t2) = (u(&lease, "renewal-time"), u(&lease, "rebinding-time"));
    assert!(t1 > 0 && t1 <= t2 && t2 <= valid, "T1 {t1} T2 {t2}");
    let log = dnsmasq_logged(&lab, &["DHCPSOLICIT", "DHCPREPLY", &address.to_string()]).await;
    let advertised = dnsmasq_dns(&log);
    assert!(!advertised.is_empty(), "dnsmasq logs the DNS servers it sends:\n{log}");
    let dns: Vec<Ipv6Addr> = list(&lease, "dns").iter().map(|a| a.parse().expect("an address")).collect();
    assert!(advertised.iter().any(|a| dns.contains(a)), "lease dns {dns:?}, dnsmasq sent {advertised:?}");
    let server_id = s(&lease, "server-id");
    assert!(server_id.len() >= 11 && server_id.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'), "{server_id}");
    let opts = options(&lease);
    assert_eq!(opts["ip6_address"], address.to_string());
    assert_eq!(opts["dhcp6_server_id"], server_id);
    assert!(opts["dhcp6_client_id"].starts_with("00:04:5b:0c"), "{opts:?}");
    assert!(opts["iaid"].starts_with("0x") && opts["iaid"].len() == 10, "{opts:?}");
    assert!(opts.contains_key("dhcp6_name_servers") && opts.contains_key("life_starts"), "{opts:?}");

    stop(&bus, &path, true).await.expect("Stop");
    let released = expect_event(&mut stream, &path, "release", Duration::from_secs(5), &helper, &lab).await;
    assert_eq!(s(&released, "address"), address.to_string());
    // dnsmasq logs the Release it got.
    dnsmasq_logged(&lab, &["DHCPRELEASE"]).await;
    assert!(helper.log().contains("sent RELEASE"), "{}", helper.log());
}

#[tokio::test]
async fn stateless_information_request() {
    let lab = Lab::builder().uplinks(1).build().expect("lab");
    let helper = helper(&lab).await;
    let ifindex = client_link(&lab);
    let bus = lab.bus().await.expect("bus");
    let mut stream = events(&bus).await;
    let path = start(&bus, ifindex, vec![("family", Variant::from("ipv6")), ("mode", Variant::from("other")), duid()])
        .await
        .expect("Start");
    let lease = expect_event(&mut stream, &path, "bound", Duration::from_secs(15), &helper, &lab).await;
    assert!(!lease.contains_key("address") && !lease.contains_key("prefix"), "{lease:?}");
    assert!(!list(&lease, "dns").is_empty(), "{lease:?}");
    assert!(u(&lease, "renewal-time") >= 600, "information refresh time {lease:?}");
    assert!(!options(&lease).contains_key("ip6_address"));
    dnsmasq_logged(&lab, &["DHCPINFORMATION-REQUEST"]).await;
    // Stop(false): nothing on the wire, the object goes.
    stop(&bus, &path, false).await.expect("Stop");
    assert!(!helper.log().contains("sent RELEASE"));
}

#[tokio::test]
async fn bad_ipv6_options_are_invalid_args() {
    let lab = Lab::builder().uplinks(1).build().expect("lab");
    let _helper = helper(&lab).await;
    let ifindex = client_link(&lab);
    let bus = lab.bus().await.expect("bus");
    for (what, opts) in [
        ("family ipv7", vec![("family", Variant::from("ipv7")), duid()]),
        ("no duid", vec![("family", Variant::from("ipv6"))]),
        ("short duid", vec![("family", Variant::from("ipv6")), ("duid", Variant::from(vec![0u8, 4, 1]))]),
        ("v4 key with ipv6", vec![("family", Variant::from("ipv6")), duid(), ("rapid-commit", Variant::from(true))]),
        ("mode with ipv4", vec![("mode", Variant::from("other"))]),
    ] {
        let err = start(&bus, ifindex, opts).await.expect_err(what);
        assert!(err.to_string().contains("InvalidArgs"), "{what}: {err}");
    }
}

async fn decline(bus: &Connection, path: &OwnedObjectPath, address: &str) -> zbus::Result<()> {
    bus.call_method(Some(NAME), path, Some(TRANSACTION), "Decline", &(address,)).await.map(drop)
}

/// nm-core's word that the leased address is in use on the link: the
/// server hears a Decline, and the client is bound to another address.
#[tokio::test]
async fn a_declined_address_is_told_to_the_server_and_replaced() {
    let lab = Lab::builder().uplinks(1).build().expect("lab");
    let helper = helper(&lab).await;
    let ifindex = client_link(&lab);
    let bus = lab.bus().await.expect("bus");
    let mut stream = events(&bus).await;
    let path = start(&bus, ifindex, vec![("family", Variant::from("ipv6")), duid()]).await.expect("Start");
    let lease = expect_event(&mut stream, &path, "bound", Duration::from_secs(15), &helper, &lab).await;
    let first = s(&lease, "address");

    let err = decline(&bus, &path, "198.51.100.7").await.expect_err("not an IPv6 address");
    assert!(err.to_string().contains("InvalidArgs"), "{err}");
    decline(&bus, &path, &first).await.expect("Decline");
    let again = expect_event(&mut stream, &path, "bound", Duration::from_secs(15), &helper, &lab).await;
    let second = s(&again, "address");
    assert_ne!(second, first, "another address after the Decline");
    dnsmasq_logged(&lab, &["DHCPDECLINE", &first]).await;
    assert!(helper.log().contains("sent DECLINE"), "{}", helper.log());

    // A DHCPv4 transaction has no Decline (it checks its addresses itself).
    let v4 = start(&bus, ifindex, vec![]).await.expect("Start v4");
    let err = decline(&bus, &v4, &second).await.expect_err("v4");
    assert!(err.to_string().contains("NotSupported"), "{err}");
    stop(&bus, &v4, false).await.expect("Stop v4");
    stop(&bus, &path, true).await.expect("Stop");
}
