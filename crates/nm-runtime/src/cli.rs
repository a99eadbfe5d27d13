//! The daemons' command line: `--root DIR`, `--config FILE`, a daemon's own
//! switches and valued options, `--help` and `--version`. A daemon's command line is two
//! options and a switch, written by a unit file or a test; a full argument
//! parser was a tenth of each daemon's code (and of its resident memory,
//! as every page of code is mapped), so this is a small one.

use std::ffi::OsString;
use std::path::PathBuf;

/// Options every daemon accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommonArgs {
    /// Prefix every file path with DIR (tests and the lab run daemons this way).
    pub root: Option<PathBuf>,
    /// The configuration file (default: /etc/NetworkManager/nm-rs.toml under the root).
    pub config: Option<PathBuf>,
}

/// A daemon's command line: its name, what it is, its own switches
/// (`--name` and what it does) and valued options (`--name VALUE`: the
/// name, what the value is, what it does).
#[derive(Debug, Clone, Copy)]
pub struct DaemonCli {
    pub name: &'static str,
    pub version: &'static str,
    pub about: &'static str,
    pub switches: &'static [(&'static str, &'static str)],
    pub values: &'static [(&'static str, &'static str, &'static str)],
}

/// What a command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cli {
    Run(Args),
    /// `--help` or `--version`: this text on stdout, and exit 0.
    Print(String),
}

/// The options of a command line that runs the daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    pub common: CommonArgs,
    switches: Vec<&'static str>,
    values: Vec<(&'static str, OsString)>,
}

impl Args {
    /// Whether the switch `name` (without its dashes) was given.
    pub fn switch(&self, name: &str) -> bool {
        self.switches.contains(&name)
    }

    /// The value of the option `name` (without its dashes); the last one
    /// given wins, as with `--root`.
    pub fn value(&self, name: &str) -> Option<&std::ffi::OsStr> {
        self.values.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v.as_os_str())
    }
}

impl DaemonCli {
    /// The process's own command line; prints help or the version and
    /// exits 0, or prints what is wrong and the usage and exits 2.
    pub fn parse(&self) -> Args {
        match self.parse_from(std::env::args_os().skip(1)) {
            Ok(Cli::Run(args)) => args,
            Ok(Cli::Print(text)) => {
                print!("{text}");
                std::process::exit(0);
            }
            Err(e) => {
                eprintln!("{}: {e}\n\n{}", self.name, self.usage());
                std::process::exit(2);
            }
        }
    }

    /// The arguments after the program name.
    pub fn parse_from(&self, args: impl IntoIterator<Item = OsString>) -> Result<Cli, String> {
        let mut out = Args::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let text = arg.to_str().ok_or_else(|| format!("unexpected argument {arg:?}"))?;
            let (option, inline) = match text.split_once('=') {
                Some((o, v)) if o.starts_with("--") => (o, Some(OsString::from(v))),
                _ => (text, None),
            };
            let mut value =
                |what: &str| inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{option} needs a {what}"));
            match option {
                "-h" | "--help" => return Ok(Cli::Print(self.help())),
                "-V" | "--version" => return Ok(Cli::Print(format!("{} {}\n", self.name, self.version))),
                "--root" => out.common.root = Some(PathBuf::from(value("directory")?)),
                "--config" => out.common.config = Some(PathBuf::from(value("file")?)),
                _ => {
                    let name = option.strip_prefix("--").unwrap_or_default();
                    if let Some((name, what, _)) = self.values.iter().find(|(n, ..)| *n == name) {
                        out.values.push((name, value(what)?));
                        continue;
                    }
                    let switch = self
                        .switches
                        .iter()
                        .find(|(n, _)| *n == name)
                        .filter(|_| inline.is_none())
                        .ok_or_else(|| format!("unexpected argument '{text}'"))?;
                    out.switches.push(switch.0);
                }
            }
        }
        Ok(Cli::Run(out))
    }

    fn usage(&self) -> String {
        format!("Usage: {} [OPTIONS]\n\nFor more information, try '--help'.", self.name)
    }

    fn help(&self) -> String {
        let mut lines = vec![
            ("--root <DIR>".to_string(), "Prefix every file path with DIR (tests and the lab run daemons this way)"),
            (
                "--config <FILE>".to_string(),
                "The configuration file (default: /etc/NetworkManager/nm-rs.toml under the root)",
            ),
        ];
        lines.extend(
            self.values.iter().map(|(name, value, what)| (format!("--{name} <{}>", value.to_uppercase()), *what)),
        );
        lines.extend(self.switches.iter().map(|(name, what)| (format!("--{name}"), *what)));
        lines.push(("-h, --help".into(), "Print help"));
        lines.push(("-V, --version".into(), "Print version"));
        // Long options line up after the room a short one takes ("-h, ").
        let labels: Vec<(String, &str)> = lines
            .into_iter()
            .map(|(o, what)| (if o.starts_with("--") { format!("      {o}") } else { format!("  {o}") }, what))
            .collect();
        let width = labels.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        let mut text = format!("{}\n\nUsage: {} [OPTIONS]\n\nOptions:\n", self.about, self.name);
        for (label, what) in labels {
            text.push_str(&format!("{label:<width$}  {what}\n"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLI: DaemonCli = DaemonCli {
        name: "nm-test",
        version: "1.2.3",
        about: "A test daemon",
        switches: &[("persist", "Stay")],
        values: &[("user", "user", "Run as USER")],
    };

    fn parse(args: &[&str]) -> Result<Cli, String> {
        CLI.parse_from(args.iter().map(OsString::from))
    }

    #[test]
    fn options_in_both_spellings_and_switches() {
        let Ok(Cli::Run(a)) = parse(&["--root", "/tmp/r", "--config=/etc/x.toml", "--persist"]) else { panic!("runs") };
        assert_eq!(a.common.root, Some(PathBuf::from("/tmp/r")));
        assert_eq!(a.common.config, Some(PathBuf::from("/etc/x.toml")));
        assert!(a.switch("persist"));
        assert!(!a.switch("other"));
        assert_eq!(a.value("user"), None);
        let Ok(Cli::Run(a)) = parse(&["--user", "nobody", "--user=65534:100"]) else { panic!("runs") };
        assert_eq!(a.value("user"), Some(std::ffi::OsStr::new("65534:100")));
        assert_eq!(parse(&[]), Ok(Cli::Run(Args::default())));
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        assert_eq!(parse(&["--root"]), Err("--root needs a directory".into()));
        assert_eq!(parse(&["--bogus"]), Err("unexpected argument '--bogus'".into()));
        assert_eq!(parse(&["stray"]), Err("unexpected argument 'stray'".into()));
        assert_eq!(parse(&["--persist=yes"]), Err("unexpected argument '--persist=yes'".into()));
        assert_eq!(parse(&["--user"]), Err("--user needs a user".into()));
        assert_eq!(parse(&["-"]), Err("unexpected argument '-'".into()));
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse(&["--version"]), Ok(Cli::Print("nm-test 1.2.3\n".into())));
        let Ok(Cli::Print(help)) = parse(&["--root", "/x", "-h"]) else { panic!("help") };
        assert!(help.starts_with("A test daemon\n\nUsage: nm-test [OPTIONS]\n"), "{help}");
        assert!(
            help.contains("      --root <DIR>")
                && help.contains("      --user <USER>")
                && help.contains("Run as USER\n")
                && help.contains("      --persist")
                && help.contains("  -h, --help")
        );
    }
}
