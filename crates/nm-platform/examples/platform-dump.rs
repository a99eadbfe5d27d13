//! Prints what nm-platform sees in the current network namespace, with the
//! time, CPU and memory the start cost; `--watch` then prints events.
//!
//! ```sh
//! cargo build --release -p nm-platform --example platform-dump
//! ip netns exec NS target/release/examples/platform-dump [--watch] [--quiet]
//! ```

use std::time::Instant;

use nm_platform::{Platform, RouteFilter};

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn rss_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let watch = args.iter().any(|a| a == "--watch");
    let quiet = args.iter().any(|a| a == "--quiet");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let (cpu0, t0) = (cpu_seconds(), Instant::now());
        let (platform, mut events) = Platform::new().await?;
        let (elapsed, cpu) = (t0.elapsed(), cpu_seconds() - cpu0);
        let links = platform.links();
        if !quiet {
            for l in &links {
                println!(
                    "{:>4} {:<16} {:?} mtu {} up {} carrier {} driver {:?} physical {} master {:?}",
                    l.ifindex, l.name, l.kind, l.mtu, l.admin_up, l.carrier, l.driver, l.physical, l.master
                );
                for a in platform.addresses(l.ifindex) {
                    println!(
                        "       {}/{} valid {:?} preferred {:?} flags {:#x}",
                        a.addr, a.prefix, a.valid_lft, a.preferred_lft, a.flags
                    );
                }
            }
        }
        let t1 = Instant::now();
        let routes = platform.routes(RouteFilter::main()).await?;
        let route_time = t1.elapsed();
        if !quiet {
            for r in &routes {
                println!("route {r:?}");
            }
        }
        println!(
            "Platform::new: {} links in {elapsed:?}, CPU {:.1} ms; routes(main): {} in {route_time:?}; RSS {} KiB (peak {} KiB)",
            links.len(),
            cpu * 1e3,
            routes.len(),
            rss_kib("VmRSS:"),
            rss_kib("VmHWM:"),
        );
        if watch {
            while let Some(e) = events.recv().await {
                println!("{e:?}");
            }
        }
        Ok::<_, nm_platform::PlatformError>(())
    })?;
    Ok(())
}
