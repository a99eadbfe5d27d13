//! nm-dhcp-helper: the daemon lives in the library (`lib.rs`).

fn main() -> anyhow::Result<()> {
    nm_dhcp_helper::main()
}
