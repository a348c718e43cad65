//! Any bytes a client can POST to `/scep?operation=PKIOperation`: parsing must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    russet_certs::scep::fuzz_pki_operation(data);
});
