//! nm-system-settings: the system profiles (NetworkManager keyfiles and TOML
//! under /etc, /run and /usr/lib) and the hostname on the system bus as
//! `org.freedesktop.NetworkManagerSystemSettings`. The service is the
//! library; this is its system scope.

use nm_runtime::Paths;
use nm_system_settings::{Config, Scope, scope};

const CLI: nm_runtime::DaemonCli = nm_runtime::DaemonCli {
    name: "nm-system-settings",
    version: env!("CARGO_PKG_VERSION"),
    about: "nm-rs system settings service",
    switches: &[],
    values: &[],
};

fn main() -> anyhow::Result<()> {
    nm_runtime::run_daemon(run(CLI.parse()))
}

async fn run(args: nm_runtime::Args) -> anyhow::Result<()> {
    let paths = Paths::new(args.common.root.as_deref());
    let config: Config = nm_runtime::load_config(&paths, args.common.config.as_deref())?;
    let scope = Scope::system(&paths, scope::effective_uid());
    nm_system_settings::serve(scope, paths, config).await
}
