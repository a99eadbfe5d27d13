// Release builds: functions in the order they run (crates/nm-link-order).
fn main() {
    nm_link_order::apply();
}
