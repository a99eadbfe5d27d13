//! Called from the daemons' `build.rs`: in release builds, asks the linker
//! to place the functions listed in `link-order/daemons.order` first in
//! `.text`, in the list's order (scenario by scenario).
//!
//! Why: a daemon's resident code is not the code it runs but every page the
//! kernel maps around each page it runs (fault-around maps 64 KiB at a
//! time). The functions nm-core, nm-system-settings and nm-dhcp-helper run
//! are scattered across their 2-4 MB of code, so nearly all of it ends up
//! resident; listed together they fill a fraction of it (issue 4's PSS and
//! RSS figures in ARCHITECTURE.md, "Link order").
//!
//! The list is the output of `cargo xtask link-order`, which runs the
//! daemons under callgrind through the benchmark scenarios. A stale list
//! costs memory, never correctness: a name that no longer exists is
//! skipped, a function missing from it lands after the listed ones.
//!
//! Only LLD reads a symbol ordering file; Rust's x86_64 Linux target links
//! with its bundled LLD since 1.90. Other targets, older compilers and
//! `NM_RS_LINK_ORDER=off` leave the link as it is.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment switch: `off` links without the order.
pub const SWITCH: &str = "NM_RS_LINK_ORDER";
/// The list, relative to the workspace root.
pub const ORDER_FILE: &str = "link-order/daemons.order";
/// The first Rust release whose x86_64-unknown-linux-gnu target links with
/// its own LLD by default.
const FIRST_LLD_RELEASE: (u32, u32) = (1, 90);
const LLD_TARGET: &str = "x86_64-unknown-linux-gnu";

/// For a daemon's `build.rs`: prints the cargo instructions.
pub fn apply() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let order = workspace_root(&manifest_dir).join(ORDER_FILE);
    println!("cargo::rerun-if-changed={}", order.display());
    println!("cargo::rerun-if-env-changed={SWITCH}");
    let rustc_version = std::env::var("RUSTC").ok().and_then(|rustc| version_of(&rustc));
    let decision = decide(&Inputs {
        profile: std::env::var("PROFILE").unwrap_or_default(),
        target: std::env::var("TARGET").unwrap_or_default(),
        switch: std::env::var(SWITCH).ok(),
        rustc_version,
        order_exists: order.is_file(),
    });
    match decision {
        Decision::Link => {
            println!("cargo::rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", order.display());
            // Names of functions that changed since the list was made are
            // expected: no warning for each.
            println!("cargo::rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
        }
        Decision::Skip(why) => println!("cargo::warning=linking without {ORDER_FILE}: {why}"),
        Decision::Quiet => {}
    }
}

#[derive(Debug, Clone)]
struct Inputs {
    profile: String,
    target: String,
    switch: Option<String>,
    rustc_version: Option<(u32, u32)>,
    order_exists: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Link,
    /// Not ordered although a release build could be: said as a warning.
    Skip(&'static str),
    /// Not ordered, and nothing worth saying (debug builds, switched off).
    Quiet,
}

fn decide(i: &Inputs) -> Decision {
    if i.profile != "release" || i.switch.as_deref() == Some("off") {
        return Decision::Quiet;
    }
    if i.target != LLD_TARGET {
        return Decision::Quiet;
    }
    match i.rustc_version {
        Some(v) if v >= FIRST_LLD_RELEASE => {}
        Some(_) => return Decision::Skip("this rustc links with the system linker, which cannot order symbols"),
        None => return Decision::Skip("the rustc version is unknown"),
    }
    if !i.order_exists {
        return Decision::Skip("the file is missing");
    }
    Decision::Link
}

/// The workspace root: the nearest ancestor holding the order file's folder,
/// else the manifest's grandparent (crates/NAME).
fn workspace_root(manifest_dir: &Path) -> PathBuf {
    let folder = Path::new(ORDER_FILE).parent().unwrap_or(Path::new(""));
    manifest_dir
        .ancestors()
        .find(|d| d.join(folder).is_dir())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest_dir.join("../.."))
}

/// (major, minor) from `rustc -V`: "rustc 1.95.0 (59807616e 2026-04-14)".
fn version_of(rustc: &str) -> Option<(u32, u32)> {
    let out = Command::new(rustc).arg("-V").output().ok()?;
    parse_version(&String::from_utf8_lossy(&out.stdout))
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release() -> Inputs {
        Inputs {
            profile: "release".into(),
            target: LLD_TARGET.into(),
            switch: None,
            rustc_version: Some((1, 95)),
            order_exists: true,
        }
    }

    #[test]
    fn release_builds_on_the_lld_target_are_ordered() {
        assert_eq!(decide(&release()), Decision::Link);
    }

    #[test]
    fn debug_builds_and_the_switch_leave_the_link_alone() {
        assert_eq!(decide(&Inputs { profile: "debug".into(), ..release() }), Decision::Quiet);
        assert_eq!(decide(&Inputs { switch: Some("off".into()), ..release() }), Decision::Quiet);
        assert_eq!(decide(&Inputs { target: "aarch64-unknown-linux-gnu".into(), ..release() }), Decision::Quiet);
    }

    #[test]
    fn old_compilers_and_a_missing_list_say_why() {
        assert!(matches!(decide(&Inputs { rustc_version: Some((1, 88)), ..release() }), Decision::Skip(_)));
        assert!(matches!(decide(&Inputs { rustc_version: None, ..release() }), Decision::Skip(_)));
        assert!(matches!(decide(&Inputs { order_exists: false, ..release() }), Decision::Skip(_)));
    }

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("rustc 1.95.0 (59807616e 2026-04-14)"), Some((1, 95)));
        assert_eq!(parse_version("rustc 1.96.0-nightly (abc 2026-05-01)"), Some((1, 96)));
        assert_eq!(parse_version("rustc"), None);
        assert_eq!(parse_version("rustc x.y"), None);
    }
}
