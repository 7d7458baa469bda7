//! Bytes as what a scanner typed → `scancode::normalize`: no panic; the
//! result has no whitespace, control character or leading AIM identifier;
//! normalizing it again changes nothing; the upper-case variant exists only
//! for codes with lower-case ASCII letters, and is itself normalized.
#![no_main]

use libfuzzer_sys::fuzz_target;
use station::scancode::{looks_garbled, normalize, upper_variant};

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let code = normalize(&raw);
    assert!(
        !code.chars().any(|c| c.is_whitespace() || c.is_control()),
        "{raw:?} → {code:?}"
    );
    let b = code.as_bytes();
    assert!(
        !(b.len() > 3 && b[0] == b']' && b[1].is_ascii_alphabetic() && b[2].is_ascii_alphanumeric()),
        "{raw:?} → {code:?} keeps an AIM identifier"
    );
    assert_eq!(normalize(&code), code, "not idempotent on {raw:?}");
    match upper_variant(&code) {
        Some(up) => {
            assert!(code.bytes().any(|c| c.is_ascii_lowercase()));
            assert!(!up.bytes().any(|c| c.is_ascii_lowercase()), "{up:?}");
            assert_eq!(normalize(&up), up, "{up:?}");
        }
        None => assert!(!code.bytes().any(|c| c.is_ascii_lowercase())),
    }
    let _ = looks_garbled(&code);
});
