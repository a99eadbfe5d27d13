//! nm-dhcp-helper in the lab (needs root): run as `nobody` with only
//! CAP_NET_RAW and CAP_NET_BIND_SERVICE, driven over the lab bus as root the
//! way nm-core drives it, against dnsmasq and against a hostile server the
//! test makes. The test plays nm-core's part where the kernel matters: it
//! puts the leased address on the interface (renewals are unicast from it).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode, UnknownOption};
use dhcproto::{Decodable, Encodable, Encoder, Name};
use futures_util::StreamExt;
use nm_lab::{DaemonHandle, Lab, NOBODY};
use zbus::message::Type;
use zbus::{Connection, MatchRule, MessageStream, OwnedObjectPath, OwnedVariant, Variant};

const NAME: &str = "org.freedesktop.nm_dhcp_helper";
const PATH: &str = "/org/freedesktop/nm_dhcp_helper";
const TRANSACTION: &str = "org.freedesktop.nm_dhcp_helper.Transaction";
const UUID: &str = "5b0c2a62-1e8f-4a59-8d5e-2f6f3b7f0c11";
/// CAP_NET_BIND_SERVICE (10) and CAP_NET_RAW (13), as /proc shows them.
const HELPER_CAPS: &str = "0000000000002400";

type Lease = HashMap<String, OwnedVariant>;

/// Starts the helper as nobody with the two capabilities. The lease
/// directory must be writable by the helper's user.
async fn helper(lab: &Lab) -> DaemonHandle {
    let state = lab.root_path("/var/lib/NetworkManager");
    std::os::unix::fs::chown(&state, Some(NOBODY), Some(NOBODY)).expect("chown the lab's state dir");
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

/// Brings the client uplink up (nm-core's job) and returns its ifindex.
fn client_link(lab: &Lab) -> (String, u32) {
    let ifname = lab.uplinks()[0].client_if.clone();
    ip(lab.client_netns(), &["link", "set", &ifname, "up"]);
    let line = ip(lab.client_netns(), &["-o", "link", "show", "dev", &ifname]);
    let index = line.split(':').next().and_then(|n| n.trim().parse().ok()).expect("ifindex");
    (ifname, index)
}

/// Every Event of the helper, subscribed before anything starts.
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

async fn state(bus: &Connection, path: &OwnedObjectPath) -> zbus::Result<String> {
    let reply = bus
        .call_method(Some(NAME), path, Some("org.freedesktop.DBus.Properties"), "Get", &(TRANSACTION, "State"))
        .await?;
    let v: OwnedVariant = reply.body().deserialize()?;
    Ok(String::try_from(v).unwrap_or_default())
}

/// The next Event of `path` within `within`.
async fn next_event(
    stream: &mut MessageStream,
    path: &OwnedObjectPath,
    within: Duration,
    helper: &DaemonHandle,
) -> (String, Lease) {
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
    match tokio::time::timeout(within, wait).await {
        Ok(e) => e,
        Err(_) => panic!("no Event within {within:?}; helper log:\n{}", nm_lab::tail(&helper.log(), 40)),
    }
}

async fn expect_event(
    stream: &mut MessageStream,
    path: &OwnedObjectPath,
    want: &str,
    within: Duration,
    helper: &DaemonHandle,
) -> Lease {
    let (state, lease) = next_event(stream, path, within, helper).await;
    assert_eq!(state, want, "lease {lease:?}\nhelper log:\n{}", nm_lab::tail(&helper.log(), 40));
    lease
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

fn in_pool(address: &str) -> bool {
    let a: Ipv4Addr = address.parse().expect("an address");
    let o = a.octets();
    o[..3] == [198, 18, 0] && (100..=199).contains(&o[3])
}

fn dnsmasq_log(lab: &Lab) -> String {
    std::fs::read_to_string(lab.dnsmasq_log().expect("dnsmasq log")).unwrap_or_default()
}

/// dnsmasq's log once `check` holds of it (dnsmasq writes its log a little
/// after it answers, so a client can be done before the log is).
async fn dnsmasq_log_until(lab: &Lab, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = dnsmasq_log(lab);
        if check(&log) {
            return log;
        }
        assert!(Instant::now() < deadline, "dnsmasq's log: no {what}:\n{}", nm_lab::tail(&log, 30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Status lines of a process (Uid, CapEff, …).
fn proc_status(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status")
}

#[tokio::test]
async fn bound_by_dnsmasq_as_nobody_then_init_reboot_and_release() {
    let lab = Lab::builder().uplinks(1).ipv6(false).build().expect("lab");
    let helper = helper(&lab).await;
    let status = proc_status(helper.pid());
    assert!(status.lines().any(|l| l.starts_with("Uid:") && l.contains("65534")), "{status}");
    let cap_eff = status.lines().find(|l| l.starts_with("CapEff:")).expect("CapEff");
    assert!(cap_eff.ends_with(HELPER_CAPS), "{cap_eff}");

    let (ifname, ifindex) = client_link(&lab);
    let bus = lab.bus().await.expect("bus");
    let mut stream = events(&bus).await;

    // Only root may call (the bus policy refuses anyone else).
    let as_nobody = lab
        .command("busctl")
        .uid(NOBODY)
        .args(["call", NAME, PATH, NAME, "Start", "ua{sv}", &ifindex.to_string(), "0"])
        .output()
        .await
        .expect("busctl");
    assert!(!as_nobody.success() && as_nobody.stderr.contains("denied"), "{}", as_nobody.stderr);
    // Bad options are refused with InvalidArgs.
    let err = start(&bus, ifindex, vec![("timeout", Variant::from("soon"))]).await.expect_err("typed");
    assert!(err.to_string().contains("InvalidArgs"), "{err}");
    let err = start(&bus, ifindex, vec![("lease-file", Variant::from("/etc/passwd"))]).await.expect_err("path");
    assert!(err.to_string().contains("InvalidArgs"), "{err}");
    assert!(start(&bus, 999_999, vec![]).await.is_err(), "no such interface");

    let t0 = Instant::now();
    let path = start(&bus, ifindex, vec![("uuid", Variant::from(UUID)), ("hostname", Variant::from("labbox.example"))])
        .await
        .expect("Start");
    assert!(path.as_str().starts_with("/org/freedesktop/nm_dhcp_helper/Transaction/"), "{path}");
    let lease = expect_event(&mut stream, &path, "bound", Duration::from_secs(15), &helper).await;
    eprintln!("bound after {:?}", t0.elapsed());
    let address = s(&lease, "address");
    assert!(in_pool(&address), "{lease:?}");
    assert_eq!(u(&lease, "prefix"), 24);
    assert_eq!(list(&lease, "routers"), ["198.18.0.1"]);
    assert_eq!(list(&lease, "dns"), ["198.18.0.1"]);
    assert_eq!(s(&lease, "domain-name"), "lab.test");
    assert_eq!(s(&lease, "server-id"), "198.18.0.1");
    assert_eq!(u(&lease, "lease-time"), 3600);
    assert!(u(&lease, "renewal-time") > 0 && u(&lease, "rebinding-time") > u(&lease, "renewal-time"));
    let opts = options(&lease);
    assert_eq!(opts["ip_address"], address);
    assert_eq!(opts["subnet_mask"], "255.255.255.0");
    assert_eq!(opts["routers"], "198.18.0.1");
    assert_eq!(opts["domain_name_servers"], "198.18.0.1");
    assert_eq!(opts["dhcp_lease_time"], "3600");
    assert_eq!(opts["dhcp_server_identifier"], "198.18.0.1");
    assert_eq!(opts["requested_rfc3442_classless_static_routes"], "1");
    assert!(opts["dhcp_client_identifier"].starts_with("01:"), "{opts:?}");
    assert!(opts["expiry"].parse::<u64>().is_ok(), "{opts:?}");
    assert_eq!(state(&bus, &path).await.expect("State"), "bound");

    // The host name goes out as NetworkManager sends it: up to the first dot.
    dnsmasq_log_until(&lab, "host name", |log| log.contains("client provides name: labbox")).await;
    // The lease is kept per interface and profile, 0600, the helper's own.
    let file = lab.root_path(format!("/var/lib/NetworkManager/nm-rs-dhcp-{ifname}-{UUID}.lease"));
    let meta = std::fs::metadata(&file).expect("lease file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), NOBODY);
    assert!(std::fs::read_to_string(&file).expect("read").contains(&format!("ADDRESS={address}")));

    // Stop without release keeps the lease; a new Start does INIT-REBOOT
    // (REQUEST without DISCOVER) and gets the same address back.
    stop(&bus, &path, false).await.expect("Stop");
    assert!(state(&bus, &path).await.is_err(), "the object is gone after Stop");
    let discovers = dnsmasq_log(&lab).matches("DHCPDISCOVER").count();
    let path = start(&bus, ifindex, vec![("uuid", Variant::from(UUID))]).await.expect("Start again");
    let lease = expect_event(&mut stream, &path, "bound", Duration::from_secs(15), &helper).await;
    assert_eq!(s(&lease, "address"), address);
    assert_eq!(dnsmasq_log(&lab).matches("DHCPDISCOVER").count(), discovers, "INIT-REBOOT sends no DISCOVER");

    // nm-core's part: the address on the link. Then Stop(release): a
    // DHCPRELEASE reaches the server, the event says so, the file goes.
    ip(lab.client_netns(), &["addr", "add", &format!("{address}/24"), "dev", &ifname]);
    stop(&bus, &path, true).await.expect("Stop(release)");
    let released = expect_event(&mut stream, &path, "release", Duration::from_secs(5), &helper).await;
    assert_eq!(s(&released, "address"), address);
    assert!(!file.exists(), "released leases are forgotten");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !dnsmasq_log(&lab).contains("DHCPRELEASE") {
        assert!(Instant::now() < deadline, "no DHCPRELEASE at dnsmasq:\n{}", nm_lab::tail(&dnsmasq_log(&lab), 20));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(helper);
}

/// The value of a /proc status line (`CapEff:\t0000…` -> `0000…`).
fn status_field<'a>(status: &'a str, field: &str) -> &'a str {
    status.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':')).map(str::trim).unwrap_or_default()
}

/// Started as root with `--user` (as an init without systemd starts it),
/// the helper makes itself what setpriv made it above: nobody, no groups,
/// the two capabilities in every set that matters and no way to more. Then
/// it still gets its lease. A `--user` it cannot become stops it before it
/// owns its name, saying why.
#[tokio::test]
async fn started_as_root_with_user_it_drops_to_that_user_and_two_capabilities() {
    let lab = Lab::builder().uplinks(1).ipv6(false).build().expect("lab");
    let state = lab.root_path("/var/lib/NetworkManager");
    std::os::unix::fs::chown(&state, Some(NOBODY), Some(NOBODY)).expect("chown the lab's state dir");

    let mut refused =
        lab.daemon("nm-dhcp-helper").args(["--user", "no-such-user-here"]).no_bus_name().spawn().await.expect("start");
    let exit = refused.wait(Duration::from_secs(10)).await.expect("exits");
    assert!(!exit.success(), "{exit:?}");
    assert!(refused.log().contains("no such user"), "{}", refused.log());

    let helper = lab
        .daemon("nm-dhcp-helper")
        .args(["--user", &NOBODY.to_string()])
        .env("NM_RS_LOG", "debug")
        .spawn()
        .await
        .expect("nm-dhcp-helper owns its name");
    let status = proc_status(helper.pid());
    let nobody = format!("{NOBODY}\t{NOBODY}\t{NOBODY}\t{NOBODY}");
    assert_eq!(status_field(&status, "Uid"), nobody, "{status}");
    assert_eq!(status_field(&status, "Gid"), nobody, "{status}");
    assert_eq!(status_field(&status, "Groups"), "", "{status}");
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(status_field(&status, set), HELPER_CAPS, "{set}: {status}");
    }
    for set in ["CapInh", "CapAmb"] {
        assert_eq!(status_field(&status, set), "0000000000000000", "{set}: {status}");
    }
    assert_eq!(status_field(&status, "NoNewPrivs"), "1", "{status}");

    let (ifname, ifindex) = client_link(&lab);
    let bus = lab.bus().await.expect("bus");
    let mut stream = events(&bus).await;
    let path = start(&bus, ifindex, vec![("uuid", Variant::from(UUID))]).await.expect("Start");
    let lease = expect_event(&mut stream, &path, "bound", Duration::from_secs(15), &helper).await;
    assert!(in_pool(&s(&lease, "address")), "{lease:?}");
    let file = lab.root_path(format!("/var/lib/NetworkManager/nm-rs-dhcp-{ifname}-{UUID}.lease"));
    assert_eq!(std::fs::metadata(&file).expect("lease file").uid(), NOBODY, "written as nobody");
    drop(helper);
}

#[tokio::test]
async fn short_leases_renew_by_unicast() {
    // dnsmasq's shortest lease is two minutes; T1 of 3 s makes renewals come
    // quickly, T2 stays far.
    let lab = Lab::builder()
        .uplinks(1)
        .ipv6(false)
        .dhcp_lease("2m")
        .dnsmasq_arg("--dhcp-option=option:T1,3")
        .dnsmasq_arg("--dhcp-option=option:T2,100")
        .build()
        .expect("lab");
    let helper = helper(&lab).await;
    let (ifname, ifindex) = client_link(&lab);
    let bus = lab.bus().await.expect("bus");
    let mut stream = events(&bus).await;
    let path = start(&bus, ifindex, vec![("uuid", Variant::from(UUID))]).await.expect("Start");
    let lease = expect_event(&mut stream, &path, "bound", Duration::from_secs(15), &helper).await;
    assert_eq!(u(&lease, "lease-time"), 120);
    assert_eq!(u(&lease, "renewal-time"), 3);
    let address = s(&lease, "address");
    ip(lab.client_netns(), &["addr", "add", &format!("{address}/24"), "dev", &ifname]);

    for _ in 0..2 {
        let renewed = expect_event(&mut stream, &path, "renew", Duration::from_secs(10), &helper).await;
        assert_eq!(s(&renewed, "address"), address);
        assert_eq!(u(&renewed, "lease-time"), 120);
    }
    // The renewals were unicast REQUESTs from the leased address.
    let requests = |log: &str| log.lines().filter(|l| l.contains("DHCPREQUEST") && l.contains(&address)).count();
    let log = dnsmasq_log_until(&lab, "three REQUESTs from the address", |log| requests(log) >= 3).await;
    assert!(!log.contains("DHCPNAK"), "{}", nm_lab::tail(&log, 30));
    stop(&bus, &path, false).await.expect("Stop");
    drop(helper);
}

#[tokio::test]
async fn dnsmasq_gone_rebind_then_expire_then_back() {
    let mut lab = Lab::builder()
        .uplinks(1)
        .ipv6(false)
        .dhcp_lease("2m")
        .dnsmasq_arg("--dhcp-option=option:T1,3")
        .dnsmasq_arg("--dhcp-option=option:T2,6")
        .build()
        .expect("lab");
    let helper = helper(&lab).await;
    let (ifname, ifindex) = client_link(&lab);
    let bus = lab.bus().await.expect("bus");
    let mut stream = events(&bus).await;
    let path = start(&bus, ifindex, vec![("uuid", Variant::from(UUID))]).await.expect("Start");
    let lease = expect_event(&mut stream, &path, "bound", Duration::from_secs(15), &helper).await;
    let bound_at = Instant::now();
    let address = s(&lease, "address");
    ip(lab.client_netns(), &["addr", "add", &format!("{address}/24"), "dev", &ifname]);
    lab.stop_dnsmasq();

    // T1 passes quietly (the unicast goes nowhere), T2 announces rebinding,
    // the end of the lease announces expiry.
    let rebind = expect_event(&mut stream, &path, "rebind", Duration::from_secs(15), &helper).await;
    assert_eq!(s(&rebind, "address"), address);
    assert_eq!(state(&bus, &path).await.expect("State"), "rebinding");
    let expired = expect_event(&mut stream, &path, "expire", Duration::from_secs(130), &helper).await;
    assert_eq!(s(&expired, "address"), address);
    let lived = bound_at.elapsed();
    assert!(lived >= Duration::from_secs(115) && lived <= Duration::from_secs(125), "expired after {lived:?}");
    // nm-core's part: the address goes.
    ip(lab.client_netns(), &["addr", "del", &format!("{address}/24"), "dev", &ifname]);
    assert_eq!(state(&bus, &path).await.expect("State"), "selecting");

    // dnsmasq back: the next DISCOVER gets a lease without anyone acting.
    lab.start_dnsmasq().expect("dnsmasq again");
    let again = expect_event(&mut stream, &path, "bound", Duration::from_secs(15), &helper).await;
    assert!(in_pool(&s(&again, "address")), "{again:?}");
    stop(&bus, &path, false).await.expect("Stop");
    drop(helper);
}

#[tokio::test]
async fn a_transaction_without_a_server_times_out() {
    let lab = Lab::builder().uplinks(1).ipv6(false).dnsmasq(false).build().expect("lab");
    let helper = helper(&lab).await;
    let (_, ifindex) = client_link(&lab);
    let bus = lab.bus().await.expect("bus");
    let mut stream = events(&bus).await;
    let t0 = Instant::now();
    let path = start(&bus, ifindex, vec![("timeout", Variant::from(3u32))]).await.expect("Start");
    let lease = expect_event(&mut stream, &path, "timeout", Duration::from_secs(10), &helper).await;
    assert!(lease.is_empty());
    assert!(t0.elapsed() >= Duration::from_secs(3));
    // The transaction is over and gone.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(state(&bus, &path).await.is_err());
    drop(helper);
}

// ---------------------------------------------------------------------------
// Address conflict detection (RFC 5227, `acd-timeout`).

/// Plays another host on the link that has `address` (with `mac`): on
/// `ifname` in `netns`, answers every ARP request for it from someone else,
/// probes included, as RFC 826 and 5227 say a host does, until `done`.
/// Returns how many it answered.
fn arp_holder(
    netns: &str,
    ifname: &str,
    address: Ipv4Addr,
    mac: [u8; 6],
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u32> {
    let ifname = std::ffi::CString::new(ifname).expect("interface name");
    nm_lab::in_netns(netns, move || {
        // SAFETY: a NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(ifname.as_ptr()) } as i32;
        assert!(ifindex > 0, "if_nametoindex: {}", std::io::Error::last_os_error());
        let proto = (libc::ETH_P_ARP as u16).to_be();
        // SAFETY: socket(2) with constant arguments, owned at once.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, i32::from(proto)) };
        assert!(fd >= 0, "ARP socket: {}", std::io::Error::last_os_error());
        // SAFETY: a fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_ll is plain data.
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_protocol = proto;
        sa.sll_ifindex = ifindex;
        let sa_len = size_of::<libc::sockaddr_ll>() as u32;
        // SAFETY: binding to a sockaddr_ll of the right size.
        let r = unsafe { libc::bind(fd.as_raw_fd(), (&sa as *const libc::sockaddr_ll).cast(), sa_len) };
        assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
        let tv = libc::timeval { tv_sec: 0, tv_usec: 100_000 };
        // SAFETY: a timeval option.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as u32,
            );
        }
        let mut answered = 0;
        let mut buf = [0u8; 1500];
        while !done.load(Ordering::Relaxed) {
            // SAFETY: a live buffer of the stated size.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            let Ok(n) = usize::try_from(n) else { continue };
            let p = &buf[..n];
            if n < 28 || p[..8] != [0, 1, 8, 0, 6, 4, 0, 1] || p[24..28] != address.octets() || p[8..14] == mac {
                continue;
            }
            let mut reply = vec![0, 1, 8, 0, 6, 4, 0, 2];
            reply.extend_from_slice(&mac);
            reply.extend_from_slice(&address.octets());
            reply.extend_from_slice(&p[8..18]);
            let mut to = sa;
            to.sll_halen = 6;
            to.sll_addr[..6].copy_from_slice(&p[8..14]);
            // SAFETY: a live buffer and a sockaddr_ll of the right size.
            unsafe {
                libc::sendto(
                    fd.as_raw_fd(),
                    reply.as_ptr().cast(),
                    reply.len(),
                    0,
                    (&to as *const libc::sockaddr_ll).cast(),
                    sa_len,
                );
            }
            answered += 1;
        }
        answered
    })
}

/// The values `State` takes on `path`, up to and including `last`.
async fn states_until(stream: &mut MessageStream, path: &OwnedObjectPath, last: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let wait = async {
        while let Some(msg) = stream.next().await {
            let msg = msg.expect("message");
            if msg.header().path().map(|p| p.as_str()) != Some(path.as_str()) {
                continue;
            }
            let Ok((_, changed, _)) = msg.body().deserialize::<(String, Lease, Vec<String>)>() else { continue };
            if let Some(state) = changed.get("State").and_then(|v| String::try_from(v.try_clone().ok()?).ok()) {
                let done = state == last;
                seen.push(state);
                if done {
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
    seen
}

#[tokio::test]
async fn an_address_in_use_is_declined_and_another_taken() {
    const CLIENT_MAC: &str = "02:00:00:00:00:77";
    const TAKEN: &str = "198.18.0.77";
    const HOLDER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x99];
    // dnsmasq (with --no-ping) offers the client an address another host
    // on the link already has.
    let lab = Lab::builder()
        .uplinks(1)
        .ipv6(false)
        .dnsmasq_arg(&format!("--dhcp-host={CLIENT_MAC},{TAKEN}"))
        .build()
        .expect("lab");
    let helper = helper(&lab).await;
    let ifname = lab.uplinks()[0].client_if.clone();
    ip(lab.client_netns(), &["link", "set", "dev", &ifname, "address", CLIENT_MAC]);
    let (_, ifindex) = client_link(&lab);
    // Another host on the link has the address (not the server itself:
    // dnsmasq's unicast OFFER to it would stay on the server).
    let server_ns = lab.server_netns().expect("server netns").to_owned();
    let done = Arc::new(AtomicBool::new(false));
    let holder =
        arp_holder(&server_ns, &lab.uplinks()[0].server_if, TAKEN.parse().expect("address"), HOLDER_MAC, done.clone());

    let bus = lab.bus().await.expect("bus");
    let mut stream = events(&bus).await;
    let t0 = Instant::now();
    let path = start(&bus, ifindex, vec![("uuid", Variant::from(UUID)), ("acd-timeout", Variant::from(300u32))])
        .await
        .expect("Start");

    // The probe is answered: the client declines the address at the server.
    let deadline = Instant::now() + Duration::from_secs(5);
    let declined = |log: &str| log.lines().any(|l| l.contains("DHCPDECLINE") && l.contains(TAKEN));
    while !declined(&dnsmasq_log(&lab)) {
        assert!(
            Instant::now() < deadline,
            "no DHCPDECLINE at dnsmasq:\n{}\nhelper log:\n{}",
            nm_lab::tail(&dnsmasq_log(&lab), 20),
            nm_lab::tail(&helper.log(), 30)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = helper.log();
    assert!(
        log.lines().any(|l| l.contains("address conflict") && l.contains(TAKEN) && l.contains("02:00:00:00:00:99")),
        "the helper names the address and the other host:\n{}",
        nm_lab::tail(&log, 30)
    );
    assert_eq!(state(&bus, &path).await.expect("State"), "init", "waiting before discovering again");
    let file = lab.root_path(format!("/var/lib/NetworkManager/nm-rs-dhcp-{ifname}-{UUID}.lease"));
    assert!(!file.exists(), "a declined lease is not saved");

    // RFC 2131 §3.1.5: ten seconds later the client discovers again; dnsmasq
    // does not offer a declined address, the pool's is checked and taken.
    // The first event of the transaction is that lease: the taken address
    // was never announced as bound.
    let lease = expect_event(&mut stream, &path, "bound", Duration::from_secs(20), &helper).await;
    let address = s(&lease, "address");
    assert!(in_pool(&address) && address != TAKEN, "{lease:?}");
    assert!(t0.elapsed() >= Duration::from_secs(10), "bound after {:?}", t0.elapsed());
    assert!(std::fs::read_to_string(&file).expect("lease file").contains(&format!("ADDRESS={address}")));
    done.store(true, Ordering::Relaxed);
    assert!(holder.join().expect("ARP holder") >= 1, "the probe was answered");
    stop(&bus, &path, false).await.expect("Stop");
    drop(helper);
}

#[tokio::test]
async fn a_free_address_is_bound_after_the_check() {
    let lab = Lab::builder().uplinks(1).ipv6(false).build().expect("lab");
    let helper = helper(&lab).await;
    let (_, ifindex) = client_link(&lab);
    let bus = lab.bus().await.expect("bus");
    let mut stream = events(&bus).await;
    let rule = MatchRule::builder()
        .msg_type(Type::Signal)
        .interface("org.freedesktop.DBus.Properties")
        .member("PropertiesChanged")
        .build()
        .expect("match rule");
    let mut changes = MessageStream::for_match_rule(rule, &bus, None).await.expect("subscribe");
    let t0 = Instant::now();
    let path = start(&bus, ifindex, vec![("acd-timeout", Variant::from(600u32))]).await.expect("Start");
    let lease = expect_event(&mut stream, &path, "bound", Duration::from_secs(15), &helper).await;
    let took = t0.elapsed();
    assert!(in_pool(&s(&lease, "address")), "{lease:?}");
    assert!(took >= Duration::from_millis(600), "bound after {took:?}, before the check could end");
    let states = states_until(&mut changes, &path, "bound").await;
    assert_eq!(states.iter().rev().take(2).collect::<Vec<_>>(), ["bound", "checking"], "{states:?}");
    // Three probes, then one announcement, as the helper logs them.
    let log = helper.log();
    assert_eq!(log.matches("sent ARP probe").count(), 3, "{}", nm_lab::tail(&log, 30));
    assert_eq!(log.matches("sent ARP announcement").count(), 1, "{}", nm_lab::tail(&log, 30));
    assert!(!log.contains("address conflict"));
    stop(&bus, &path, false).await.expect("Stop");
    drop(helper);
}

// ---------------------------------------------------------------------------
// A hostile server.

/// Sends a hand-broken IPv4 frame to the link's broadcast MAC.
fn send_raw_frame(ifindex: i32, frame: &[u8]) {
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "packet socket: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = (libc::ETH_P_IP as u16).to_be();
    sa.sll_ifindex = ifindex;
    sa.sll_halen = 6;
    sa.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    // SAFETY: a live buffer and a sockaddr_ll of the right size.
    unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&sa as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as u32,
        );
    }
}

/// An IPv4/UDP frame from the server to port 68 with the given defects.
fn broken_frame(payload: &[u8], defect: u8) -> Vec<u8> {
    let total = (28 + payload.len()) as u16;
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 255, 255, 255, 255];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&67u16.to_be_bytes());
    p.extend_from_slice(&68u16.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    match defect {
        0 => p[0] = 0x4f,                                     // IHL past the packet's options
        1 => p[2..4].copy_from_slice(&9000u16.to_be_bytes()), // total length past the end
        2 => p[24..26].copy_from_slice(&3u16.to_be_bytes()),  // UDP length shorter than its header
        3 => p[6] = 0x20,                                     // a fragment
        4 => p.truncate(30),                                  // cut in the UDP header
        _ => p[10] = 0xde,                                    // IP checksum wrong
    }
    if defect != 5 && defect != 0 {
        let mut sum: u32 = 0;
        for c in p[..20].chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }
    p
}

fn encode(m: &Message) -> Vec<u8> {
    let mut buf = Vec::new();
    m.encode(&mut Encoder::new(&mut buf)).expect("encode");
    buf
}

/// What the hostile server puts in its OFFER and ACK besides a usable lease.
fn hostile_options(pwned: &str) -> Vec<DhcpOption> {
    let payload = format!("$(touch {pwned})");
    vec![
        DhcpOption::Hostname(payload.clone()),
        DhcpOption::DomainName(format!("`touch {pwned}`;reboot")),
        DhcpOption::DomainSearch(vec![
            Name::from_labels(vec![payload.as_bytes(), b"test"]).expect("any bytes make a wire label"),
            Name::from_labels(vec![&b"a\nb"[..], b"test"]).expect("label"),
        ]),
        DhcpOption::RootPath(format!("/srv/root;touch {pwned}")),
        DhcpOption::NisDomain(format!("nis|touch {pwned}")),
        DhcpOption::Message(format!("$(touch {pwned})")),
        DhcpOption::TFTPServerName(format!("tftp`touch {pwned}`").into_bytes()),
        DhcpOption::CaptivePortal(format!("http://portal/$(touch {pwned})")),
        DhcpOption::NetBiosScope("scope\u{1b}[31m".into()),
        DhcpOption::InterfaceMtu(20),
        DhcpOption::Unknown(UnknownOption::new(OptionCode::from(224), vec![0xff; 300])),
    ]
}

/// The BOOTP reply to a client message: usable lease, hostile strings.
fn hostile_reply(req: &Message, kind: MessageType, pwned: &str) -> Message {
    let offered = Ipv4Addr::new(198, 18, 0, 123);
    let mut m = Message::new_with_id(
        req.xid(),
        Ipv4Addr::UNSPECIFIED,
        offered,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        req.chaddr(),
    );
    m.set_opcode(Opcode::BootReply);
    let o = m.opts_mut();
    o.insert(DhcpOption::MessageType(kind));
    o.insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(198, 18, 0, 1)));
    o.insert(DhcpOption::AddressLeaseTime(600));
    o.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
    o.insert(DhcpOption::Router(vec![Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST]));
    o.insert(DhcpOption::DomainNameServer(vec![Ipv4Addr::new(198, 18, 0, 1)]));
    for opt in hostile_options(pwned) {
        o.insert(opt);
    }
    m
}

/// Everything broken the server sends before each answer.
fn garbage(req: &Message, pwned: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let good = encode(&hostile_reply(req, MessageType::Offer, pwned));
    // Truncated at every interesting length.
    for cut in [0, 1, 20, 100, 235, 239, 240, 241, 243, 260] {
        out.push(good[..cut.min(good.len())].to_vec());
    }
    // Noise, and noise after a valid header.
    let mut seed = u64::from(req.xid()) | 1;
    for n in 0..40 {
        let len = [3usize, 300, 576, 1400][n % 4];
        let mut p: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        if n % 2 == 0 && p.len() > 240 {
            p[..240].copy_from_slice(&good[..240]);
        }
        out.push(p);
    }
    // Option lengths running past the end; Rapid Commit and FQDN with
    // impossible lengths (the codec asserts on those in debug builds).
    for tail in [
        &[53u8, 1, 2, 12, 250, b'x'][..],
        &[53, 1, 2, 80, 5, 1, 2, 3, 4, 5, 255],
        &[53, 1, 2, 81, 1, 0, 255],
        &[53, 1, 2, 151, 0, 255],
        &[53, 1, 2, 121, 9, 33, 1, 2, 3, 4, 5, 6, 7, 8, 255],
        &[53, 1, 2, 119, 6, 0xc0, 0x00, 0xc0, 0x02, 0xc0, 0x04, 255],
        &[53, 1, 2, 52, 1, 3, 255],
    ] {
        let mut p = good[..240].to_vec();
        p.extend_from_slice(tail);
        out.push(p);
    }
    // Option overload: file and sname hold options with hostile content and
    // an option that runs off the end of the field.
    let mut p = good[..240].to_vec();
    p.extend_from_slice(&[53, 1, 2, 52, 1, 3, 54, 4, 198, 18, 0, 1, 51, 4, 0, 0, 2, 88, 255]);
    let host = format!("$(touch {pwned})");
    let mut file = vec![12u8, host.len() as u8];
    file.extend_from_slice(host.as_bytes());
    file.extend_from_slice(&[15, 200, b'a']);
    p[108..108 + file.len()].copy_from_slice(&file);
    p[44..50].copy_from_slice(&[15, 60, b'x', b';', b'y', 255]);
    out.push(p);
    // hlen far beyond chaddr's 16 bytes.
    let mut p = good.clone();
    p[2] = 255;
    out.push(p);
    // A long hostname split over many option instances (RFC 3396).
    let mut p = good[..240].to_vec();
    p.extend_from_slice(&[53, 1, 2]);
    for _ in 0..4 {
        p.push(12);
        p.push(250);
        p.extend_from_slice(&[b'a'; 250]);
    }
    p.push(255);
    out.push(p);
    out
}

#[tokio::test]
async fn a_hostile_server_changes_nothing() {
    let lab = Lab::builder().uplinks(1).ipv6(false).dnsmasq(false).build().expect("lab");
    let helper = helper(&lab).await;
    let (_, ifindex) = client_link(&lab);
    let pwned = lab.dir().join("pwned");
    let pwned_s = pwned.display().to_string();
    let server_if = lab.uplinks()[0].server_if.clone();
    let server_ns = lab.server_netns().expect("server netns").to_owned();
    let server_index: i32 = ip(&server_ns, &["-o", "link", "show", "dev", &server_if])
        .split(':')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .expect("server ifindex");

    // The server: answers every DISCOVER and REQUEST, each time after a
    // burst of broken packets, for at most 60 s or until told to stop.
    let done = Arc::new(AtomicBool::new(false));
    let done2 = done.clone();
    let pw = pwned_s.clone();
    let server = nm_lab::in_netns(&server_ns, move || {
        let sock = nm_lab::udp_on_link(&server_if, 67);
        let to = std::net::SocketAddrV4::new(Ipv4Addr::BROADCAST, 68);
        let start = Instant::now();
        let mut answered = 0;
        let mut buf = [0u8; 2048];
        while !done2.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(60) {
            let Ok((n, _)) = sock.recv_from(&mut buf) else { continue };
            let Ok(req) = Message::from_bytes(&buf[..n]) else { continue };
            let kind = match req.opts().msg_type() {
                Some(MessageType::Discover) => MessageType::Offer,
                Some(MessageType::Request) => MessageType::Ack,
                _ => continue,
            };
            for junk in garbage(&req, &pw) {
                let _ = sock.send_to(&junk, to);
            }
            let good = encode(&hostile_reply(&req, kind, &pw));
            for defect in 0..6 {
                send_raw_frame(server_index, &broken_frame(&good, defect));
            }
            // The same answer with another xid and another client's chaddr.
            let mut other = hostile_reply(&req, kind, &pw);
            other.set_xid(req.xid().wrapping_add(1));
            let _ = sock.send_to(&encode(&other), to);
            let mut other = hostile_reply(&req, kind, &pw);
            other.set_chaddr(&[2, 9, 9, 9, 9, 9]);
            let _ = sock.send_to(&encode(&other), to);
            let _ = sock.send_to(&good, to);
            answered += 1;
        }
        answered
    });

    let bus = lab.bus().await.expect("bus");
    let mut stream = events(&bus).await;
    let path = start(&bus, ifindex, vec![("uuid", Variant::from(UUID))]).await.expect("Start");
    let lease = expect_event(&mut stream, &path, "bound", Duration::from_secs(20), &helper).await;
    done.store(true, Ordering::Relaxed);
    let answered = server.join().expect("server thread");
    assert!(answered >= 2, "the server answered DISCOVER and REQUEST");

    // The usable part of the lease is there ...
    assert_eq!(s(&lease, "address"), "198.18.0.123");
    assert_eq!(u(&lease, "prefix"), 24);
    assert_eq!(list(&lease, "routers"), ["198.18.0.1"], "0.0.0.0 and the broadcast address are no routers");
    assert_eq!(list(&lease, "dns"), ["198.18.0.1"]);
    // ... and none of the hostile values.
    assert!(!lease.contains_key("hostname"));
    assert!(!lease.contains_key("domain-name"));
    assert!(!lease.contains_key("mtu"), "an MTU of 20 is refused");
    assert!(list(&lease, "search").is_empty());
    let everything = format!("{lease:?}");
    for bad in ["touch", "pwned", "$(", "`", ";", "|", "reboot", "\\u{1b}", "a\\nb"] {
        assert!(!everything.contains(bad), "{bad:?} reached the lease: {everything}");
    }
    let opts = options(&lease);
    for key in [
        "host_name",
        "domain_name",
        "domain_search",
        "root_path",
        "nis_domain",
        "tftp_server_name",
        "captive_portal",
        "netbios_scope",
        "dhcp_message",
        "interface_mtu",
    ] {
        assert!(!opts.contains_key(key), "{key} = {:?}", opts.get(key));
    }
    assert_eq!(opts["private_224"].len(), 300 * 3 - 1, "unknown private options are shown as hex");

    // The helper is alive, said what it dropped, and nothing ran.
    let mut helper = helper;
    assert!(helper.try_exit_status().is_none(), "helper died:\n{}", nm_lab::tail(&helper.log(), 40));
    assert!(helper.log().contains("dropped a value from the server"), "{}", nm_lab::tail(&helper.log(), 40));
    assert_eq!(state(&bus, &path).await.expect("State"), "bound");
    assert!(!pwned.exists(), "a hostile option was executed");
    stop(&bus, &path, false).await.expect("Stop");
    let status = helper.stop().await.expect("SIGTERM");
    assert!(status.success(), "{status}");
}
