//! nm-dhcp-helper's IPv4 link-local machine must never panic, whatever ARP
//! arrives on the link: arbitrary bytes drive it through packets, timer
//! ticks on a virtual clock and stops (`fuzzing::fuzz_entry_ll`, next to
//! the code it feeds), checking that what it binds is link-local.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nm_dhcp_helper::fuzzing::fuzz_entry_ll(data);
});
