//! What every nm-rs daemon shares: logging (journald when stderr is the
//! journal), `sd_notify`, clean stop on SIGTERM/SIGINT, the command line
//! and its `--root` prefix for every path, the TOML configuration, and atomic file writes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::de::DeserializeOwned;

mod cli;
pub use cli::{Args, Cli, CommonArgs, DaemonCli};

/// Maps the absolute paths a daemon uses into its `--root`.
#[derive(Debug, Clone)]
pub struct Paths {
    root: PathBuf,
}

impl Paths {
    pub fn new(root: Option<&Path>) -> Self {
        Paths { root: root.map_or_else(|| PathBuf::from("/"), Path::to_path_buf) }
    }

    /// `abs` (an absolute path such as `/etc/hostname`) under the root.
    pub fn path(&self, abs: impl AsRef<Path>) -> PathBuf {
        let abs = abs.as_ref();
        self.root.join(abs.strip_prefix("/").unwrap_or(abs))
    }
}

/// Runs a daemon's main future: logging set up, on a single-threaded
/// runtime (each daemon is one event loop, DESIGN.md §3).
pub fn run_daemon<F: std::future::Future<Output = anyhow::Result<()>>>(main: F) -> anyhow::Result<()> {
    init_logging();
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(main)
}

/// Logs to journald when stderr is connected to the journal (systemd sets
/// `JOURNAL_STREAM` to its device and inode), to stderr otherwise. The
/// filter comes from `NM_RS_LOG`: a level and/or `target=level` directives
/// (e.g. `debug`, `info,nm_system_settings=trace`). `Targets` rather than
/// `EnvFilter`: no regular-expression engine in every daemon.
pub fn init_logging() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let default = || Targets::new().with_default(tracing::Level::INFO);
    let filter = match std::env::var("NM_RS_LOG") {
        Ok(spec) => spec.parse::<Targets>().unwrap_or_else(|e| {
            eprintln!("NM_RS_LOG={spec:?} is not a log filter ({e}); logging at info");
            default()
        }),
        Err(_) => default(),
    };
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let _ = LOG_FILTER.set(handle);
    let registry = tracing_subscriber::registry().with(filter);
    if stderr_is_journal()
        && let Ok(layer) = tracing_journald::layer()
    {
        registry.with(layer).init();
        return;
    }
    // Colour only for a person at a terminal, not in log files.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(io::stderr)
        .with_target(false)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()));
    registry.with(fmt).init();
}

/// The running filter, for [`set_log_level`].
static LOG_FILTER: std::sync::OnceLock<
    tracing_subscriber::reload::Handle<tracing_subscriber::filter::Targets, tracing_subscriber::Registry>,
> = std::sync::OnceLock::new();

/// Logs from `level` up from now on, for every target (NetworkManager's
/// `SetLogging`); `false` before [`init_logging`].
pub fn set_log_level(level: tracing::level_filters::LevelFilter) -> bool {
    LOG_FILTER.get().is_some_and(|h| h.reload(tracing_subscriber::filter::Targets::new().with_default(level)).is_ok())
}

fn stderr_is_journal() -> bool {
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.split_once(':') else {
        return false;
    };
    let Ok(meta) = fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// Tells systemd the daemon is ready (a no-op without systemd).
pub fn notify_ready(status: &str) {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status(status)]);
}

pub fn notify_stopping() {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
}

/// Pings systemd's watchdog at half its interval, when one is configured.
pub fn spawn_watchdog() {
    let Some(interval) = sd_notify::watchdog_enabled().filter(|d| !d.is_zero()) else {
        return;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval / 2);
        loop {
            tick.tick().await;
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        }
    });
}

/// Gives freed heap back to the system now and then. glibc keeps what a
/// burst (a large D-Bus reply, parsing many files) freed, fragmented, so
/// the resident size stays at the burst's peak; trimming costs little on a
/// small heap.
pub fn spawn_heap_trimmer(every: std::time::Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            trim_heap();
        }
    });
}

/// Returns freed heap to the system at once (after a known burst).
pub fn trim_heap() {
    // SAFETY: malloc_trim only walks glibc's own heap and takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, stopping"),
        _ = int.recv() => tracing::info!("SIGINT received, stopping"),
    }
    Ok(())
}

/// The default configuration file, relative to the root.
pub const CONFIG_FILE: &str = "/etc/NetworkManager/nm-rs.toml";

/// Loads the configuration: the main file (absent means defaults) and then
/// every `conf.d/*.toml` beside it in name order, later tables merging into
/// earlier ones key by key.
pub fn load_config<T: DeserializeOwned>(paths: &Paths, file: Option<&Path>) -> anyhow::Result<T> {
    load_config_over(paths, file, toml::Table::new())
}

/// [`load_config`] on top of `base` (settings taken from elsewhere, e.g.
/// NetworkManager.conf): the files' keys win.
pub fn load_config_over<T: DeserializeOwned>(
    paths: &Paths,
    file: Option<&Path>,
    base: toml::Table,
) -> anyhow::Result<T> {
    let main = file.map_or_else(|| paths.path(CONFIG_FILE), Path::to_path_buf);
    let mut merged = base;
    let mut files = vec![main.clone()];
    if let Some(dir) = main.parent().map(|d| d.join("conf.d"))
        && let Ok(entries) = fs::read_dir(&dir)
    {
        let mut extra: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        extra.sort();
        files.extend(extra);
    }
    for f in files {
        let text = match fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", f.display())),
        };
        let table: toml::Table = toml::from_str(&text).with_context(|| format!("parsing {}", f.display()))?;
        merge(&mut merged, table);
    }
    T::deserialize(toml::Value::Table(merged)).context("invalid configuration")
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// Writes `path` so that a crash leaves the old or the new file, never half
/// of one: a temporary file in the same directory, fsync, rename, fsync of
/// the directory. The file gets `mode`; the directory is created (0755).
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().ok_or_else(|| io::Error::other("path has no directory"))?;
    fs::create_dir_all(dir)?;
    let name = path.file_name().ok_or_else(|| io::Error::other("path has no file name"))?.to_string_lossy();
    // A leading dot keeps watchers (ours and NetworkManager's) from reading it.
    let mut tmp;
    let mut n = 0u32;
    let mut file = loop {
        tmp = dir.join(format!(".{name}.tmp{}-{n}", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp) {
            Ok(f) => break f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            Err(e) => return Err(e),
        }
    };
    let result = (|| {
        file.write_all(contents)?;
        // The umask may have narrowed the mode; set it exactly.
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Replaces `path` by rename, without fsync: for runtime state under /run
/// (a tmpfs that a crash empties anyway) and caches whose loss costs only
/// time (DHCP leases), where a reader must never see half a file but
/// durability buys nothing.
pub fn write_replace(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().ok_or_else(|| io::Error::other("path has no directory"))?;
    fs::create_dir_all(dir)?;
    let name = path.file_name().ok_or_else(|| io::Error::other("path has no file name"))?.to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
    let result = file.write_all(contents).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes a file and makes the removal durable.
pub fn remove_durable(path: &Path) -> io::Result<()> {
    fs::remove_file(path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nm-runtime-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn root_prefixes_absolute_paths() {
        let p = Paths::new(Some(Path::new("/tmp/lab")));
        assert_eq!(p.path("/etc/hostname"), PathBuf::from("/tmp/lab/etc/hostname"));
        assert_eq!(Paths::new(None).path("/etc/hostname"), PathBuf::from("/etc/hostname"));
    }

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let d = tempdir("atomic");
        let f = d.join("sub/a.nmconnection");
        write_atomic(&f, b"one", 0o600).unwrap();
        write_atomic(&f, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"two");
        assert_eq!(fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
        let leftovers: Vec<_> = fs::read_dir(d.join("sub")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file stays behind");
        fs::remove_dir_all(d).unwrap();
    }

    #[derive(serde::Deserialize, Default, Debug)]
    #[serde(default)]
    struct Cfg {
        a: Inner,
    }
    #[derive(serde::Deserialize, Default, Debug)]
    #[serde(default)]
    struct Inner {
        x: u32,
        y: u32,
    }

    #[test]
    fn config_merges_conf_d() {
        let d = tempdir("config");
        let paths = Paths::new(Some(&d));
        let main = paths.path(CONFIG_FILE);
        let c: Cfg = load_config(&paths, None).unwrap();
        assert_eq!(c.a.x, 0);
        fs::create_dir_all(main.parent().unwrap().join("conf.d")).unwrap();
        fs::write(&main, "[a]\nx = 1\ny = 2\n").unwrap();
        fs::write(main.parent().unwrap().join("conf.d/10-y.toml"), "[a]\ny = 5\n").unwrap();
        let c: Cfg = load_config(&paths, None).unwrap();
        assert_eq!((c.a.x, c.a.y), (1, 5));
        fs::write(&main, "[a]\nx = \"no\"\n").unwrap();
        assert!(load_config::<Cfg>(&paths, None).is_err());
        fs::remove_dir_all(d).unwrap();
    }
}
