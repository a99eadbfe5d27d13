//! The keyfile reader must never panic, whatever the file holds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Keyfiles are read as UTF-8 text; other bytes are rejected before parse.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = nm_model::keyfile::parse(text);
    }
});
