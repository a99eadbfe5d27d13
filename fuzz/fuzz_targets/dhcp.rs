//! nm-dhcp-helper must never panic, whatever arrives on the link: arbitrary
//! bytes drive one client's state machine (decoding every packet) through
//! server replies, ARP, timer ticks on a virtual clock and stops
//! (`fuzzing::fuzz_entry`, next to the code it feeds).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nm_dhcp_helper::fuzzing::fuzz_entry(data);
});
