//! nm-user-settings: one user's private profiles on the system bus as
//! `org.freedesktop.NetworkManagerUserSettings`, for nm-core to merge with
//! the system's. Runs as that user (a systemd user unit). The service is
//! nm-system-settings' library in its user scope: the same interfaces, the
//! user's own folders and files, writes and secrets for the user and root;
//! secrets in the user's keyring (Secret Service) when one runs.

use anyhow::Context;
use nm_runtime::Paths;
use nm_system_settings::{Config, Scope, UserDirs, scope};

/// nm-rs user settings service.
///
/// Profiles live in $XDG_CONFIG_HOME/nm-rs/connections (default
/// ~/.config/nm-rs/connections), unsaved ones in
/// $XDG_RUNTIME_DIR/nm-rs/connections; the configuration file is
/// $XDG_CONFIG_HOME/nm-rs/nm-rs.toml unless --config names another. With
/// --root, these paths are taken under that directory as every other path.
///
/// Secrets the service keeps go to the user's keyring through the Secret
/// Service (org.freedesktop.secrets on the session bus named by
/// DBUS_SESSION_BUS_ADDRESS, or $XDG_RUNTIME_DIR/bus) when one runs and its
/// default collection is unlocked, and into the 0600 profile file otherwise.
const CLI: nm_runtime::DaemonCli = nm_runtime::DaemonCli {
    name: "nm-user-settings",
    version: env!("CARGO_PKG_VERSION"),
    about: "nm-rs user settings service (a user's profiles on the bus as org.freedesktop.NetworkManagerUserSettings)",
    switches: &[("allow-root", "Run even as root (the service belongs to a user; root only for tests)")],
    values: &[],
};

fn main() -> anyhow::Result<()> {
    nm_runtime::run_daemon(run(CLI.parse()))
}

async fn run(args: nm_runtime::Args) -> anyhow::Result<()> {
    let uid = scope::effective_uid();
    scope::check_user_service_uid(uid, args.switch("allow-root")).map_err(anyhow::Error::msg)?;
    let dirs = UserDirs::from_env(|name| std::env::var_os(name)).map_err(anyhow::Error::msg)?;
    let paths = Paths::new(args.common.root.as_deref());
    let config_file = args.common.config.clone().unwrap_or_else(|| paths.path(&dirs.config_file));
    let config: Config = nm_runtime::load_config(&paths, Some(&config_file))
        .with_context(|| format!("loading {}", config_file.display()))?;
    // The Secret Service's socket is found under the root like every path.
    let runtime_bus = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .filter(|d| d.is_absolute())
        .map(|d| paths.path(d.join("bus")));
    let session_bus =
        scope::session_bus_address(std::env::var_os("DBUS_SESSION_BUS_ADDRESS"), runtime_bus, |p| p.exists());
    let scope = Scope::user(&paths, uid, &dirs, session_bus);
    nm_system_settings::serve(scope, paths, config).await
}
