//! `nm-platform`: the kernel through rtnetlink.
//!
//! A [`Platform`] holds a cache of links and addresses, filled by a dump and
//! kept current by a background task that reads link and address events
//! (an overrun of the event socket is answered by a full re-dump, the
//! difference sent as events, then [`PlatformEvent::Resynced`]). Routes are
//! not cached and their events are not subscribed to: a host may hold
//! hundreds of thousands of routes that are none of our business, so route
//! dumps are filtered in the kernel (`NETLINK_GET_STRICT_CHK` with table,
//! interface and protocol in the request) and again while parsing.
//!
//! The operations: link up/down, MTU, MAC; addresses with lifetimes
//! (add = create or replace); routes replaced or deleted with metric,
//! table and protocol.
//!
//! Two sockets, both bound to the network namespace of the thread that
//! calls [`Platform::new`]: one only listens (`RTNLGRP_LINK`,
//! `RTNLGRP_IPV4_IFADDR`, `RTNLGRP_IPV6_IFADDR`), the other sends requests
//! one at a time. Messages are built with `netlink-packet-route` and read
//! by this crate's own parser, which looks only at the attributes nm-rs
//! uses and never panics on what the kernel sends.
//!
//! ```no_run
//! # async fn demo() -> Result<(), nm_platform::PlatformError> {
//! use nm_platform::{Platform, PlatformEvent, RouteFilter};
//! let (platform, mut events) = Platform::new().await?;
//! for link in platform.links() {
//!     println!("{} {:?} up={}", link.name, link.kind, link.admin_up);
//! }
//! let main_routes = platform.routes(RouteFilter::main()).await?;
//! while let Some(event) = events.recv().await {
//!     if let PlatformEvent::LinkChanged(link) = event {
//!         println!("{} carrier={}", link.name, link.carrier);
//!     }
//! }
//! # let _ = main_routes; Ok(()) }
//! ```

mod build;
mod cache;
mod error;
pub mod ethtool;
pub mod lldp;
mod parse;
mod platform;
mod socket;
mod sysfs;
mod tun;
mod types;

pub use error::PlatformError;
pub use platform::{Platform, PlatformOptions};
pub use types::{
    Address, BridgeOptions, BridgePortOptions, BridgeVlan, FR_ACT_TO_TBL, Family, IFA_F_DADFAILED, IFA_F_NOPREFIXROUTE,
    IFA_F_PERMANENT, IFA_F_TENTATIVE, Link, LinkDetails, LinkKind, MacvlanOptions, NewLink, PlatformEvent, Qdisc,
    QdiscOptions, RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE, RT_TABLE_LOCAL, RT_TABLE_MAIN, RTAX_ADVMSS,
    RTAX_CWND, RTAX_INITCWND, RTAX_INITRWND, RTAX_MTU, RTAX_WINDOW, RTN_BLACKHOLE, RTN_LOCAL, RTN_PROHIBIT, RTN_THROW,
    RTN_UNICAST, RTN_UNREACHABLE, RTPROT_BOOT, RTPROT_DHCP, RTPROT_KERNEL, RTPROT_RA, RTPROT_STATIC, RaFlags, Route,
    RouteFilter, Rule, TcAction, TcFilter, TcpMetrics, TunOptions, VxlanOptions, macvlan_mode,
};
