//! `cargo xtask completions|man --out DIR`: nmctl's shell completions and
//! man pages, generated from its clap definitions (`nmctl::command()`), so
//! they never drift from the command line.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap_complete::Shell;

/// `nmctl.bash`, `_nmctl` (zsh), `nmctl.fish`, … into `out`.
pub fn completions(out: &Path) -> Result<ExitCode> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Elvish, Shell::PowerShell] {
        let mut cmd = nmctl::command();
        let path = clap_complete::generate_to(shell, &mut cmd, "nmctl", out)
            .with_context(|| format!("writing {shell} completions into {}", out.display()))?;
        eprintln!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `nmctl.1` and one page per subcommand (`nmctl-connection-add.1`, …).
pub fn man(out: &Path) -> Result<ExitCode> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let cmd = nmctl::command();
    clap_mangen::generate_to(cmd, out).with_context(|| format!("writing man pages into {}", out.display()))?;
    let mut pages: Vec<String> = std::fs::read_dir(out)
        .with_context(|| format!("reading {}", out.display()))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("nmctl") && n.ends_with(".1"))
        .collect();
    pages.sort();
    for p in pages {
        eprintln!("{}", out.join(p).display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_and_man_pages_are_written() {
        let dir = std::env::temp_dir().join(format!("xtask-docs-{}", std::process::id()));
        completions(&dir).expect("completions");
        man(&dir).expect("man");
        let bash = std::fs::read_to_string(dir.join("nmctl.bash")).expect("bash completions");
        assert!(bash.contains("wait-online") && bash.contains("--json"), "bash completions name the commands");
        let page = std::fs::read_to_string(dir.join("nmctl.1")).expect("nmctl.1");
        assert!(page.contains("Exit status"), "the man page carries the long help");
        assert!(dir.join("nmctl-connection-add.1").exists());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
