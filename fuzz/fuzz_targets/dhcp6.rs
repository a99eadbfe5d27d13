//! nm-dhcp-helper's DHCPv6 client must never panic, whatever arrives on the
//! link: arbitrary bytes drive one client's state machine (decoding every
//! packet) through server replies, timer ticks on a virtual clock and stops
//! (`fuzzing::fuzz_entry6`, next to the code it feeds).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nm_dhcp_helper::fuzzing::fuzz_entry6(data);
});
