//! nm-system-settings: the system profiles (NetworkManager keyfiles and TOML
//! under /etc, /run and /usr/lib) and the hostname on the system bus as
//! `org.freedesktop.NetworkManagerSystemSettings`. The service is the
//! library; this is its system scope.

use clap::Parser;
use nm_runtime::{CommonArgs, Paths};
use nm_system_settings::{Config, Scope, scope};

#[derive(Parser, Debug)]
#[command(version, about = "nm-rs system settings service")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> anyhow::Result<()> {
    nm_runtime::run_daemon(run(Args::parse()))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let paths = Paths::new(args.common.root.as_deref());
    let config: Config = nm_runtime::load_config(&paths, args.common.config.as_deref())?;
    let scope = Scope::system(&paths, scope::effective_uid());
    nm_system_settings::serve(scope, paths, config).await
}
