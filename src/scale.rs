//! Weighing (称重): a parcel's weight as typed (`1.25kg`, `1250g`) or as a
//! bench scale sends it, and whether it matches the items it should hold.
//!
//! A scale on a serial port sends its reading continuously, one line at a
//! time, in one of a few common formats: `ST,GS,+0001.25kg` (stable, gross),
//! `US,GS,+0001.20kg` (unstable: the parcel is still moving), `+  1.250 kg`.
//! [`parse_line`] reads any of them; only a stable reading is used.

/// A weight in whole grams from what an operator types or passes with
/// `--weight`: `1.25kg`, `1.25 kg`, `1250g`, `1250 g`, or a bare number of
/// kilograms (`1.25`), as scales show them.
pub fn parse_weight(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase().replace(' ', "");
    let (number, grams_per_unit) = if let Some(n) = t.strip_suffix("kg") {
        (n, 1000.0)
    } else if let Some(n) = t.strip_suffix('g') {
        (n, 1.0)
    } else {
        (t.as_str(), 1000.0)
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a weight: give it like 1.25kg or 1250g"))?;
    let grams = (value * grams_per_unit).round();
    if !(1.0..=1_000_000.0).contains(&grams) {
        return Err(format!("{text:?}: a parcel weighs between 1 g and 1000 kg"));
    }
    Ok(grams as u64)
}

/// One reading of a scale's continuous output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    pub grams: u64,
    /// The scale says the weight is steady (no `US` unstable marker).
    pub stable: bool,
}

/// A line of a scale's output: `ST,GS,+0001.25kg`, `US,NT,+0001.20kg`,
/// `+  1.250 kg`, `1250 g`. `None` for what is not a reading (a blank line,
/// a negative or overloaded weight).
pub fn parse_line(line: &str) -> Option<Reading> {
    let line = line.trim_matches(|c: char| c.is_whitespace() || c.is_control());
    let mut stable = true;
    let mut rest = line;
    // The CAS/A&D style header: status (ST stable, US unstable, OL overload)
    // and kind (GS gross, NT net), comma separated.
    let parts: Vec<&str> = line.split(',').collect();
    if parts.len() >= 2 {
        match parts[0].trim() {
            "ST" => {}
            "US" => stable = false,
            _ => return None,
        }
        rest = parts[parts.len() - 1];
    }
    let rest = rest.trim().replace(' ', "");
    let rest = rest.strip_prefix('+').unwrap_or(&rest);
    if rest.starts_with('-') {
        return None;
    }
    let grams = parse_weight(rest).ok()?;
    Some(Reading { grams, stable })
}

/// How far a weighed parcel may be from the sum of its items' weights:
/// `pct` percent of that sum plus `grams` (packing, tape, a slip).
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    pub pct: u32,
    pub grams: u64,
}

impl Tolerance {
    /// Whether `measured` is within tolerance of `expected` grams.
    pub fn accepts(self, expected: u64, measured: u64) -> bool {
        // In u128: a catalogue's absurd weights must not overflow into a pass.
        let slack = u128::from(expected) * u128::from(self.pct) / 100 + u128::from(self.grams);
        u128::from(measured.abs_diff(expected)) <= slack
    }
}

/// "1.25 kg" or "850 g", for messages and the manifest.
pub fn shown(grams: u64) -> String {
    if grams >= 1000 {
        format!("{:.2} kg", grams as f64 / 1000.0)
    } else {
        format!("{grams} g")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_as_operators_type_them() {
        assert_eq!(parse_weight("1.25kg"), Ok(1250));
        assert_eq!(parse_weight(" 1.25 KG "), Ok(1250));
        assert_eq!(parse_weight("1250g"), Ok(1250));
        assert_eq!(parse_weight("1250 g"), Ok(1250));
        assert_eq!(parse_weight("0.3"), Ok(300));
        assert!(parse_weight("heavy").is_err());
        assert!(parse_weight("0g").is_err());
        assert!(parse_weight("-1kg").is_err());
        assert!(parse_weight("2000kg").is_err());
    }

    #[test]
    fn tolerance_is_percent_plus_grams_without_overflow() {
        let t = Tolerance { pct: 15, grams: 50 };
        assert!(t.accepts(1000, 1200));
        assert!(!t.accepts(1000, 1201));
        assert!(t.accepts(1000, 800));
        assert!(!t.accepts(1000, 799));
        let wide = Tolerance {
            pct: u32::MAX,
            grams: u64::MAX,
        };
        assert!(wide.accepts(u64::MAX, 1));
        assert!(!Tolerance { pct: 0, grams: 0 }.accepts(u64::MAX, 1));
    }

    #[test]
    fn scale_lines_in_the_common_formats() {
        let r = |grams, stable| Some(Reading { grams, stable });
        assert_eq!(parse_line("ST,GS,+0001.25kg\r\n"), r(1250, true));
        assert_eq!(parse_line("US,GS,+0001.20kg"), r(1200, false));
        assert_eq!(parse_line("ST,NT,+0000.85kg"), r(850, true));
        assert_eq!(parse_line("+  1.250 kg"), r(1250, true));
        assert_eq!(parse_line("1250 g"), r(1250, true));
        assert_eq!(parse_line("OL,GS,+9999.99kg"), None);
        assert_eq!(parse_line("ST,GS,-0000.10kg"), None);
        assert_eq!(parse_line(""), None);
    }

    #[test]
    fn tolerance_is_a_share_plus_a_margin() {
        let t = Tolerance { pct: 15, grams: 50 };
        assert!(t.accepts(1000, 1200)); // slack 200
        assert!(t.accepts(1000, 800));
        assert!(!t.accepts(1000, 1201));
        assert!(!t.accepts(1000, 640)); // one item of 350 g missing
        assert_eq!(shown(1250), "1.25 kg");
        assert_eq!(shown(850), "850 g");
    }
}
