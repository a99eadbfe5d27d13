//! The a{sa{sv}} converter must never panic, whatever a bus client sends.
//! nm-model decodes the bytes into a settings dictionary itself
//! (`dbus_dict::fuzz_entry`), so the decoding stays next to the code it feeds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nm_model::dbus_dict::fuzz_entry(data);
});
