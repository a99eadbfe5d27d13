//! `cargo xtask bench link-order`: writes `link-order/daemons.order`, the
//! functions the daemons run, scenario by scenario, which release builds
//! hand to the linker (crates/nm-link-order).
//!
//! The three daemons run under callgrind (`NMRS_WRAP` in the nmrs adapter)
//! through the peer-bench scenarios the issues measure: DHCP cold start
//! first (its functions lead the list, so that the smallest set of pages
//! holds them), then down/up through nmcli, a static `nmcli connection up`,
//! and 300 links. callgrind names every function that ran, per binary;
//! their symbol names are the linker's, since symbol names do not depend on
//! the link (the build script only adds linker arguments).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use nm_link_order::ORDER_FILE;

use super::peers::{BINARIES, Env, Row, Step, Suite, run_suite};
use crate::util::{cargo, check, header, target_dir, workspace_root};

/// Where callgrind writes, in the run's directory.
const PROFILES: &str = "callgrind";
/// The helper runs as this user in the lab (the adapter's default).
const HELPER_UID: u32 = 65534;
/// Names the scenario in the profiles' file names (valgrind's `%q{…}`).
const STEP_VAR: &str = "NMRS_PROFILE_STEP";

/// The scenarios, in the order their functions are listed. Each names its
/// profiles (`NMRS_PROFILE_STEP`, in callgrind's file name), so the list
/// does not depend on which daemon happened to exit first.
fn steps() -> Vec<Step> {
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
    vec![
        Step::new("bench-dhcp-nmrs.sh", args(&["-n", "1", "nmrs"])).with_env(STEP_VAR, "1-dhcp"),
        Step::new("bench-reactivate.sh", args(&["-n", "2", "-v", "noping", "nmrs"])).with_env(STEP_VAR, "2-reactivate"),
        Step::new("bench-static-up.sh", args(&["-n", "2", "nmrs"])).with_env(STEP_VAR, "3-static"),
        Step::new("bench-scale-links.sh", args(&["-n", "1", "-l", "300", "nmrs"])).with_env(STEP_VAR, "4-links"),
    ]
}

pub fn link_order(build: bool) -> Result<ExitCode> {
    if Command::new("valgrind").arg("--version").output().is_err() {
        bail!("valgrind is missing (Debian package valgrind)");
    }
    let daemons = ["nmrs".to_string()];
    let suite = Suite { name: "link-order", steps: steps(), daemons: &daemons, build, render, env: callgrind_env };
    let outcome = run_suite(suite)?;
    let profiles = collect_profiles(&outcome.dir.join(PROFILES))?;
    if profiles.is_empty() {
        bail!("no callgrind output in {}", outcome.dir.join(PROFILES).display());
    }
    let names = executed_functions(profiles.iter().map(String::as_str), BINARIES);
    // The binaries just profiled carry the names the relinked ones will
    // (the link does not rename): count each one's listed functions now,
    // for the file's record that `stale` compares later builds with.
    let release = target_dir().join("release");
    let mut found = Vec::new();
    for b in BINARIES {
        let n = listed_in(&release.join(b), &names)?;
        eprintln!("    {b}: {n} of its functions are in the list");
        if n == 0 {
            bail!("none of {b}'s functions is in the list: the profile and the build differ");
        }
        found.push((b.to_string(), n));
    }
    let order = workspace_root().join(ORDER_FILE);
    fs::write(&order, order_file(&names, &found)).with_context(|| format!("writing {}", order.display()))?;
    eprintln!("\n{} functions from {} profiles written to {}", names.len(), profiles.len(), order.display());

    // The build script sees the new list and relinks.
    let packages: Vec<&str> = BINARIES.iter().flat_map(|b| ["-p", b]).collect();
    header(&format!("cargo build --release {}   (relinks in the new order)", packages.join(" ")));
    let mut cmd = cargo();
    cmd.args(["build", "--release"]).args(&packages);
    check(cmd)?;
    Ok(outcome.code)
}

/// The scripts' own table says little under valgrind: only what failed.
fn render(rows: &[Row]) -> String {
    let mut out = String::from("link-order: scenario results under callgrind (times are valgrind's)\n");
    for r in rows.iter().filter(|r| r.value.is_none()) {
        let _ = writeln!(out, "  FAIL {} {}: {}", r.daemon, r.metric, r.note);
    }
    out
}

/// `NMRS_WRAP` for the adapter: every daemon under callgrind, one file per
/// process in the run's `callgrind/` (owned by the helper's user, which
/// writes there too).
fn callgrind_env(dir: &Path) -> Result<Env> {
    let out = dir.join(PROFILES);
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    std::os::unix::fs::chown(&out, Some(HELPER_UID), Some(HELPER_UID))
        .with_context(|| format!("chown {}", out.display()))?;
    fs::set_permissions(&out, fs::Permissions::from_mode(0o700))?;
    let wrap = format!(
        "valgrind -q --tool=callgrind --demangle=no --dump-line=no --callgrind-out-file={}/%q{{{STEP_VAR}}}.%p",
        out.display()
    );
    Ok(vec![("NMRS_WRAP".into(), wrap)])
}

/// The profiles' texts in scenario order (`1-dhcp.PID`, …), and within one
/// by the program they profiled (callgrind's `cmd:` line).
fn collect_profiles(dir: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = e?.path();
        let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let step =
            path.file_name().and_then(|n| n.to_str()).and_then(|n| n.split('.').next()).unwrap_or("").to_string();
        let program = text
            .lines()
            .find_map(|l| l.strip_prefix("cmd:"))
            .and_then(|c| c.split_whitespace().next())
            .unwrap_or("")
            .to_string();
        files.push(((step, program), text));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files.into_iter().map(|(_, text)| text).collect())
}

/// The symbol names of the functions that ran in `binaries`, each once:
/// profile by profile, those not listed yet in name order (so that two runs
/// of the same scenarios give the same list).
///
/// callgrind's format: `ob=(N) path` and `fn=(N) name` set the object and
/// function of the cost lines that follow; a name is spelled out at its
/// first use only (`fn=(N)` afterwards), also when first seen as a callee
/// (`cfn=`, `cob=`). Recursion levels carry a `'2` suffix.
pub fn executed_functions<'a>(profiles: impl Iterator<Item = &'a str>, binaries: &[&str]) -> Vec<String> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    for text in profiles {
        let mut objects = std::collections::HashMap::new();
        let mut functions = std::collections::HashMap::new();
        let mut in_binary = false;
        let mut new = std::collections::BTreeSet::new();
        for line in text.lines() {
            let Some((key, rest)) = line.split_once('=') else { continue };
            let (id, name) = match rest.split_once(' ') {
                Some((id, name)) => (id, Some(name)),
                None => (rest, None),
            };
            match key {
                "ob" | "cob" => {
                    if let Some(name) = name {
                        objects.insert(id.to_string(), name.to_string());
                    }
                    if key == "ob" {
                        let path = objects.get(id).map(String::as_str).unwrap_or("");
                        let file = path.rsplit('/').next().unwrap_or("");
                        in_binary = binaries.contains(&file);
                    }
                }
                "fn" | "cfn" => {
                    if let Some(name) = name {
                        functions.insert(id.to_string(), name.to_string());
                    }
                    if key == "fn"
                        && in_binary
                        && let Some(name) = functions.get(id)
                    {
                        let name = strip_recursion(name);
                        if seen.insert(name.to_string()) {
                            new.insert(name.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        order.extend(new);
    }
    order
}

/// `foo'2` (callgrind's second recursion level) is `foo`.
fn strip_recursion(name: &str) -> &str {
    match name.rsplit_once('\'') {
        Some((base, level)) if !level.is_empty() && level.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => name,
    }
}

/// The record line: how many listed functions each binary had.
const FOUND: &str = "# found:";

fn order_file(names: &[String], found: &[(String, usize)]) -> String {
    let mut out = String::from(
        "# Functions of nm-core, nm-system-settings and nm-dhcp-helper in the order the\n\
         # benchmark scenarios first ran them, for the linker of release builds\n\
         # (crates/nm-link-order). Written by `cargo xtask bench link-order`: run it\n\
         # again after changing the daemons (a changed type renames the functions\n\
         # generic over it; `bench core`/`bench dhcp` warn when names went missing).\n\
         # A name that no longer exists is skipped; an unlisted function goes after.\n",
    );
    let record: Vec<String> = found.iter().map(|(b, n)| format!("{b}={n}")).collect();
    let _ = writeln!(out, "{FOUND} {}", record.join(" "));
    for n in names {
        out.push_str(n);
        out.push('\n');
    }
    out
}

/// How many of `names` are functions of `binary`.
fn listed_in(binary: &Path, names: &[String]) -> Result<usize> {
    let listed: HashSet<&str> = names.iter().map(String::as_str).collect();
    Ok(symbols(binary)?.iter().filter(|s| listed.contains(s.as_str())).count())
}

/// Whether the list still fits the release binaries in `release`: each
/// binary must find as many listed functions as when the list was made.
/// A few missing names are enough to spread the running code again (nm-core
/// lost 26 of 1,554 and its resident code grew from 2.1 to 2.6 MB), so any
/// loss is reported; `None` when the list fits (or says nothing to compare).
pub(super) fn stale(release: &Path) -> Result<Option<String>> {
    let path = workspace_root().join(ORDER_FILE);
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(Some(format!("{} is missing", path.display())));
    };
    let names: Vec<String> = text.lines().filter(|l| !l.starts_with('#')).map(str::to_string).collect();
    let mut lost = Vec::new();
    for (binary, recorded) in recorded_counts(&text) {
        let file = release.join(&binary);
        if !file.is_file() {
            continue;
        }
        let now = listed_in(&file, &names)?;
        if now < recorded {
            lost.push(format!("{binary} finds {now} of the {recorded} functions it had"));
        }
    }
    Ok((!lost.is_empty()).then(|| {
        format!(
            "{ORDER_FILE} is stale ({}): resident code and start-up are measured without the full \
             order; run `cargo xtask bench link-order` and commit the list",
            lost.join(", ")
        )
    }))
}

/// The `# found: name=N …` record of an order file.
fn recorded_counts(text: &str) -> Vec<(String, usize)> {
    text.lines()
        .filter_map(|l| l.strip_prefix(FOUND))
        .flat_map(|rest| rest.split_whitespace())
        .filter_map(|pair| {
            let (b, n) = pair.split_once('=')?;
            Some((b.to_string(), n.parse().ok()?))
        })
        .collect()
}

/// The function symbols of an ELF file (`nm`).
fn symbols(binary: &Path) -> Result<Vec<String>> {
    let out = Command::new("nm").arg(binary).output().context("running nm (Debian package binutils)")?;
    if !out.status.success() {
        bail!("nm {} failed", binary.display());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, kind, name) = (f.next()?, f.next()?, f.next()?);
            matches!(kind, "t" | "T" | "w" | "W").then(|| name.to_string())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = "\
version: 1
cmd: /tmp/x/bin/nm-core --root /r
events: Ir
ob=(1) /usr/lib/x86_64-linux-gnu/libc.so.6
fn=(1) malloc
3 10
ob=(2) /tmp/x/bin/nm-core
fn=(2) _ZN7nm_core4main17h0123456789abcdefE
4 20
cob=(1)
cfn=(1)
calls=1 0
4 5
cfn=(3) _ZN7nm_core3run17hfedcba9876543210E
calls=1 0
5 7
fn=(3)
6 30
fn=(4) _ZN7nm_core3run17hfedcba9876543210E'2
7 1
ob=(1)
fn=(5) free
8 2
";

    #[test]
    fn functions_of_the_binaries_profile_by_profile_in_name_order() {
        let names = executed_functions([PROFILE, PROFILE].into_iter(), &["nm-core"]);
        assert_eq!(names, ["_ZN7nm_core3run17hfedcba9876543210E", "_ZN7nm_core4main17h0123456789abcdefE"]);
    }

    #[test]
    fn other_objects_are_left_out() {
        assert!(executed_functions([PROFILE].into_iter(), &["nm-dhcp-helper"]).is_empty());
    }

    #[test]
    fn recursion_levels_are_one_function() {
        assert_eq!(strip_recursion("f'2"), "f");
        assert_eq!(strip_recursion("f'"), "f'");
        assert_eq!(strip_recursion("f"), "f");
    }

    #[test]
    fn the_file_is_comments_then_names() {
        let text = order_file(&["a".into(), "b".into()], &[("nm-core".into(), 2)]);
        let names: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn the_file_records_what_each_binary_found() {
        let text = order_file(&["a".into()], &[("nm-core".into(), 1554), ("nm-dhcp-helper".into(), 935)]);
        assert_eq!(recorded_counts(&text), [("nm-core".to_string(), 1554), ("nm-dhcp-helper".to_string(), 935)]);
        assert!(recorded_counts("# found: nm-core=x\na\n").is_empty());
    }
}
