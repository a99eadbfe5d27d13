//! nm-platform's LLDP parser must never panic on what arrives from the
//! network: any bytes as a received frame. What it accepts keeps the frame
//! whole (`raw`, which clients read).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(n) = nm_platform::lldp::parse(data) {
        assert_eq!(n.raw, data);
    }
});
