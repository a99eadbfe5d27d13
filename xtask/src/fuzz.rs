//! `cargo xtask fuzz`: each cargo-fuzz target under `fuzz/` for a while.
//!
//! cargo-fuzz needs nightly-only rustc flags (`-Zsanitizer=address`, …). The
//! toolchain here is stable, so the runs set `RUSTC_BOOTSTRAP=1`, which lets a
//! stable rustc accept them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::util::{cargo, check, header, status, succeeds, workspace_root};

pub fn run(seconds: u64, target: Option<&str>) -> Result<ExitCode> {
    let results = run_all(seconds, target)?;
    let failed: Vec<&str> = results.iter().filter(|(_, ok)| !ok).map(|(t, _)| t.as_str()).collect();
    for (t, ok) in &results {
        println!("{t}: {}", if *ok { "ok" } else { "FAILED" });
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("failing inputs are under fuzz/artifacts/");
        Ok(ExitCode::FAILURE)
    }
}

/// Runs each target (or just `only`) for `seconds`; returns (target, ok).
pub fn run_all(seconds: u64, only: Option<&str>) -> Result<Vec<(String, bool)>> {
    let all = targets()?;
    let chosen: Vec<String> = match only {
        Some(t) if all.iter().any(|a| a == t) => vec![t.to_owned()],
        Some(t) => bail!("no fuzz target {t}; there are: {}", all.join(", ")),
        None => all,
    };
    ensure_cargo_fuzz()?;
    let mut results = Vec::new();
    for t in chosen {
        header(&format!("cargo fuzz run {t} -- -max_total_time={seconds}"));
        let mut cmd = cargo();
        cmd.args(["fuzz", "run", &t, "--"]).arg(format!("-max_total_time={seconds}")).env("RUSTC_BOOTSTRAP", "1");
        results.push((t, status(cmd)?.success()));
    }
    Ok(results)
}

/// The targets: the files in `fuzz/fuzz_targets/`.
fn targets() -> Result<Vec<String>> {
    let dir: PathBuf = workspace_root().join("fuzz").join("fuzz_targets");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs")
            && let Some(stem) = path.file_stem()
        {
            names.push(stem.to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

fn ensure_cargo_fuzz() -> Result<()> {
    let cargo_bin = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    if succeeds(&cargo_bin, ["fuzz", "--version"]) {
        return Ok(());
    }
    header("cargo install cargo-fuzz --locked");
    let mut install = cargo();
    install.args(["install", "cargo-fuzz", "--locked"]);
    check(install)
}
