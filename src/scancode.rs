//! What a barcode scanner typed, made into the code it read: one place used
//! by the bench, the handover and the CLI.
//!
//! A USB scanner is a keyboard. It types into whatever input method is
//! active, so the same label arrives as `SF1234`, `ＳＦ１２３４` (full-width,
//! a Chinese IME in full-width mode), ` SF1234\r\n`, `SF1234\t` (Tab as the
//! suffix) or `]C1SF1234` (an AIM symbology identifier, when the scanner is
//! set to send one). [`normalize`] turns all of them into `SF1234`:
//!
//! - NFKC: full-width letters, digits and punctuation become ASCII;
//! - a leading AIM identifier (`]` + symbology letter + modifier) is dropped;
//! - whitespace and control characters are removed (a code has none; a
//!   scanner's CR, LF or Tab suffix, or a stray space, is not part of it).
//!
//! Letters swallowed by Pinyin composition cannot be recovered here: what is
//! left (Chinese characters where a code was expected) is [`looks_garbled`],
//! and the bench says "切换到英文半角输入" instead of a wrong-item STOP. The
//! bench page reads the scanner's keystrokes itself, so there it rarely
//! gets that far.

use unicode_normalization::UnicodeNormalization as _;

/// The code a scanner read, from what it typed.
pub fn normalize(raw: &str) -> String {
    // Removing a space can let NFKC compose what it separated, and NFKC can
    // make a new space or identifier: repeat until nothing changes (normalizing
    // a normalized code changes nothing; the fuzz target checks it). After the
    // first pass every change shortens the code, so this ends.
    let mut code = raw.to_string();
    for _ in 0..=raw.chars().count() + 1 {
        let cleaned: String = code
            .nfkc()
            .filter(|c| !c.is_whitespace() && !c.is_control())
            .collect();
        let next = strip_aim(&cleaned).to_string();
        if next == code {
            break;
        }
        code = next;
    }
    code
}

/// `]C1SF1234` → `SF1234`: an AIM symbology identifier is `]`, a symbology
/// letter and one modifier character (ISO/IEC 15424); no code starts with one.
fn strip_aim(mut code: &str) -> &str {
    while let [b']', s, m, _, ..] = code.as_bytes()
        && s.is_ascii_alphabetic()
        && m.is_ascii_alphanumeric()
    {
        code = &code[3..];
    }
    code
}

/// The same code in upper case, when it has lower-case letters: tracking
/// numbers and order ids are upper case, and a scanner with Caps Lock on (or
/// a Shift eaten by an input method) sends them in lower case.
pub fn upper_variant(code: &str) -> Option<String> {
    // Normalized again: an upper-case letter can compose with a mark that
    // follows it (I + U+0307 is İ), which the lower-case one did not.
    code.bytes()
        .any(|b| b.is_ascii_lowercase())
        .then(|| normalize(&code.to_ascii_uppercase()))
}

/// Whether a normalized scanned `code` is the stored code `stored` (a SKU,
/// a barcode, a tracking number as the shop or the pool wrote it). Stored
/// codes are compared normalized too, so a SKU written with a space or in
/// full-width characters still matches what the scanner sends for it.
pub fn matches(stored: &str, code: &str) -> bool {
    stored == code || normalize(stored) == code
}

/// Whether a code that matched nothing looks like an input method's doing
/// (letters or digits turned into Chinese characters) rather than a real
/// code: then the operator must switch the keyboard to English half-width.
pub fn looks_garbled(code: &str) -> bool {
    !code.is_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_codes_are_compared_normalized() {
        assert!(matches("HM UMB 02", &normalize("HM UMB 02")));
        assert!(matches("ＨＭ－ＵＭＢ－０２", &normalize("HM-UMB-02")));
        assert!(matches("HM-UMB-02", "HM-UMB-02"));
        assert!(!matches("HM-UMB-02", "HM-UMB-03"));
    }

    #[test]
    fn what_scanners_type_becomes_the_code() {
        for raw in [
            "SF1234567890",
            "ＳＦ１２３４５６７８９０",
            "  SF1234567890\r\n",
            "SF1234567890\t",
            "]C1SF1234567890",
            "]c0SF1234567890",
            "］Ｃ１ＳＦ１２３４５６７８９０",
            "SF 1234567890",
        ] {
            assert_eq!(normalize(raw), "SF1234567890", "{raw:?}");
        }
        assert_eq!(normalize("９９１４０００００００１"), "991400000001");
        assert_eq!(normalize("HM-UMB-02"), "HM-UMB-02");
        assert_eq!(normalize("ＨＭ－ＵＭＢ－０２"), "HM-UMB-02");
        assert_eq!(normalize("\r\n\t "), "");
        // Not an AIM identifier: kept as typed.
        assert_eq!(normalize("]C"), "]C");
        assert_eq!(normalize("A]C1"), "A]C1");
    }

    #[test]
    fn lower_case_and_garbled_codes_are_told_apart() {
        assert_eq!(upper_variant("sf12"), Some("SF12".into()));
        assert_eq!(upper_variant("SF12"), None);
        // Found by the fuzz target: the upper case composes where the lower did not.
        let code = normalize("ai\u{307}");
        assert_eq!(upper_variant(&code), Some("A\u{130}".into()));
        assert!(looks_garbled("是否12"));
        assert!(!looks_garbled("SF12"));
    }

    #[test]
    fn normalizing_twice_changes_nothing() {
        for raw in ["]C1ＳＦ１２", "a\u{0301}b", "ﬁ ﬂ", "①②", "]E0]C1X"] {
            let once = normalize(raw);
            assert_eq!(normalize(&once), once, "{raw:?}");
        }
    }
}
