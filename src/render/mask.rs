//! Masking of the recipient's name, phone and address on privacy waybills (隐私面单).
//!
//! GB/T 41833-2022 asks a waybill to hide at least one character of the recipient's
//! name, at least six digits of the phone number and the unit/room part of the address.
//! A waybill travels through many hands and ends up in a bin, so this module is the one
//! place that decides what is left readable; templates only ever see the masked strings.
//!
//! Three rules hold for every input, because a label that leaks is worse than a label
//! that looks odd:
//! - a non-empty name always loses at least one character, and keeps its length in
//!   (grapheme clusters) so the layout does not jump;
//! - a phone never shows a digit the input did not show, and when the input has at
//!   least eight digit positions it hides at least six of them (stars already in the
//!   input count as hidden positions);
//! - an address keeps the street and the building (the courier needs them to find the
//!   door) but loses the unit, floor and room; if none is recognised, the trailing
//!   digits of the last number are hidden instead.
//!
//! `MaskLevel::Strict` hides more for shops that ask for it. There is no "off" level:
//! privacy waybills are the rule, and a plain waybill would need a separate decision.

use serde::{Deserialize, Serialize};

/// How much to hide. Default is the standard's minimum; `Strict` hides more (configurable by shops).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskLevel {
    /// The minimum GB/T 41833-2022 asks for: 王*明, 138******78, room hidden.
    #[default]
    Standard,
    /// Keeps only the first character of a name, one fewer phone digit, and also hides the
    /// building number of the address.
    Strict,
    // Off is NOT offered: privacy waybills are the rule.
}

/// The character that replaces a hidden character or digit.
const STAR: char = '*';

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

/// Masks a recipient name.
///
/// A Chinese name keeps its first and last character (王*明, 欧**娜), a two-character name
/// keeps the first (王*), a one-character name is hidden completely. A name in parts (a
/// Uyghur name written with a middle dot, or a Latin name with spaces) keeps the first
/// character of each part, so no part is ever shown whole (艾***·热**, D**** K**).
/// `Strict` keeps only the very first character of the whole name.
///
/// Characters are counted as grapheme clusters (a scalar value plus any combining marks
/// that follow it), so 𠮷 outside the BMP or an accented letter counts as one character and
/// becomes one `*`.
pub fn mask_name(name: &str, level: MaskLevel) -> String {
    if name.is_empty() {
        return String::new();
    }
    let units = graphemes(name);
    let cjk = name.chars().any(is_cjk);
    // In a Chinese name a space is noise (王 小明 is still one name), so only the middle
    // dot splits it into parts; in a Latin name both spaces and dots separate parts.
    let roles: Vec<Role> = units
        .iter()
        .map(|u| {
            let c = u.chars().next().unwrap_or(' ');
            if is_name_dot(c) || (!cjk && c.is_whitespace()) {
                Role::Separator
            } else if c.is_whitespace() {
                Role::Space
            } else {
                Role::Char
            }
        })
        .collect();
    let mut parts: Vec<Vec<usize>> = vec![Vec::new()];
    for (i, role) in roles.iter().enumerate() {
        match role {
            Role::Separator => parts.push(Vec::new()),
            Role::Space => {}
            Role::Char => parts.last_mut().expect("starts with one part").push(i),
        }
    }
    parts.retain(|p| !p.is_empty());

    let mut hidden = vec![false; units.len()];
    // Standard's choice is made for both levels, so that Strict always hides a superset.
    match () {
        () if cjk && parts.len() == 1 => {
            let p = &parts[0];
            match p.len() {
                1 => hidden[p[0]] = true,
                2 => hidden[p[1]] = true,
                n => p[1..n - 1].iter().for_each(|&i| hidden[i] = true),
            }
        }
        () => {
            // Keeping the first character of every part and hiding the rest hides at
            // least half of a Latin name, and never shows a whole part; a one-letter part
            // (an initial) would be shown whole, so it is hidden.
            for p in &parts {
                let from = if p.len() == 1 { 0 } else { 1 };
                p[from..].iter().for_each(|&i| hidden[i] = true);
            }
        }
    }
    if level == MaskLevel::Strict {
        // Strict also hides every character but the first; a name in one-letter parts
        // (阿·买) stays fully hidden rather than showing its first character.
        let chars: Vec<usize> = parts.iter().flatten().copied().collect();
        let from = if chars.len() == 1 { 0 } else { 1 };
        chars.iter().skip(from).for_each(|&i| hidden[i] = true);
    }
    // A name made only of spaces or dots has no character to hide under the rules
    // above; hiding everything keeps the promise that something is always hidden.
    if !hidden.contains(&true) {
        hidden.iter_mut().for_each(|h| *h = true);
    }
    units
        .iter()
        .zip(&hidden)
        .map(|(u, &h)| if h { "*" } else { u })
        .collect()
}

/// What a unit of a name is for masking.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Separates the parts of a name (middle dot; in Latin names also a space).
    Separator,
    /// A space inside a Chinese name: kept as it is, belongs to no part.
    Space,
    /// A character of the name.
    Char,
}

/// The dots that separate the parts of a transliterated name (艾克拜尔·热合曼); shops and
/// platforms type several look-alikes, and a full stop is a common stand-in.
fn is_name_dot(c: char) -> bool {
    matches!(
        c,
        '\u{00B7}' | '\u{2022}' | '\u{2027}' | '\u{30FB}' | '\u{FF65}' | '\u{FF0E}' | '.'
    )
}

/// Splits a string into extended grapheme clusters (UAX #29): one visible
/// character of a name, with its combining marks, variation selectors,
/// skin tones and zero-width-joined followers, becomes exactly one `*`.
fn graphemes(s: &str) -> Vec<&str> {
    unicode_segmentation::UnicodeSegmentation::graphemes(s, true).collect()
}

/// Han ideographs (all planes, so 𠮷 and 㙟 count), kana and Hangul: scripts whose names
/// are written without spaces between given name and surname.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FA}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{AC00}'..='\u{D7AF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{3FFFF}')
}

// ---------------------------------------------------------------------------------------
// Phones
// ---------------------------------------------------------------------------------------

/// Masks a recipient phone number.
///
/// - A mobile number (11 digits starting with 1, optionally with +86/0086, spaces or
///   dashes) is normalised to its 11 digits and keeps the first 3 and last 2:
///   138******78; `Strict` keeps the last 1 only.
/// - A landline keeps its area code and the last 2 digits of an 8-digit local number, or
///   the last 1 of a 7-digit one (so six digits are always hidden): 0571-******66;
///   `Strict` keeps one digit fewer.
/// - A virtual number with an extension (14701641598-0564) masks the main number like a
///   mobile and keeps the extension: 147******98-0564.
/// - An already-masked number keeps its stars and gets the mask above on top
///   (139****0909 → 139******09).
/// - Anything else keeps its layout; all digits but the last 2 (`Strict`: 1) are hidden,
///   or all of them when there are fewer than 8 digit positions.
pub fn mask_phone(phone: &str, level: MaskLevel) -> String {
    let normalised = normalise_phone(phone.trim());
    match parse_phone(&normalised) {
        Some(parsed) => parsed.render(level),
        // The original text, not the normalised one, so that unrecognised input keeps
        // its letters and layout exactly.
        None => mask_loose(phone.trim(), level),
    }
}

/// One digit position of a phone number: `Some(digit)` when visible, `None` when hidden
/// (a star in the input, or hidden by us).
type Pos = Option<char>;

/// A phone number that was recognised.
struct ParsedPhone {
    main: MainNumber,
    /// The extension of a virtual number or a switchboard. It is printed as it came:
    /// the courier needs it to reach the recipient through the platform's relay, and on
    /// its own it identifies nobody.
    extension: Option<Vec<Pos>>,
}

enum MainNumber {
    Mobile(Vec<Pos>),
    Landline { area: Vec<Pos>, local: Vec<Pos> },
}

impl ParsedPhone {
    fn render(&self, level: MaskLevel) -> String {
        let strict = level == MaskLevel::Strict;
        let mut out = match &self.main {
            MainNumber::Mobile(digits) => {
                // Positions 3..9 hide six digits; Strict also hides position 9.
                let keep_tail = if strict { 1 } else { 2 };
                render_positions(digits, |i| i < 3 || i >= digits.len() - keep_tail)
            }
            MainNumber::Landline { area, local } => {
                // The local number has 7 or 8 digits; keeping len − 6 (Standard) leaves
                // six hidden, which is the standard's minimum for the whole number.
                let keep_tail = local.len() - 6 - usize::from(strict);
                let area = render_positions(area, |_| true);
                let local = render_positions(local, |i| i >= local.len() - keep_tail);
                format!("{area}-{local}")
            }
        };
        if let Some(ext) = &self.extension {
            out.push('-');
            out.push_str(&render_positions(ext, |_| true));
        }
        out
    }
}

/// Renders positions, showing a digit only where it was visible and `keep(i)` holds, so a
/// star in the input always stays a star.
fn render_positions(positions: &[Pos], keep: impl Fn(usize) -> bool) -> String {
    positions
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            Some(d) if keep(i) => *d,
            _ => STAR,
        })
        .collect()
}

/// Folds the many ways a phone is typed into one alphabet: full-width digits and
/// punctuation become ASCII, and every extension marker (转, 分机, ext, x, #, a comma used
/// as a dialling pause) becomes `#`.
fn normalise_phone(s: &str) -> String {
    let folded: String = s
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            '＊' | '×' => STAR,
            '＋' => '+',
            '－' | '—' | '–' | '‐' => '-',
            '（' => '(',
            '）' => ')',
            '，' | '＃' | '转' => '#',
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => c,
        })
        .collect();
    folded
        .replace("分机", "#")
        .replace("ext.", "#")
        .replace("ext", "#")
        .replace([',', 'x'], "#")
}

/// Recognises mobile, landline and extension numbers; `None` sends the input to the
/// layout-keeping fallback.
fn parse_phone(s: &str) -> Option<ParsedPhone> {
    // Split into groups of digit positions, remembering the separator before each group.
    let mut groups: Vec<(char, Vec<Pos>)> = Vec::new();
    let mut extension: Option<Vec<Pos>> = None;
    let mut in_extension = false;
    let mut sep = ' ';
    let mut plus = false;
    for c in s.chars() {
        let pos = match c {
            '0'..='9' => Some(Some(c)),
            STAR => Some(None),
            _ => None,
        };
        if let Some(pos) = pos {
            if in_extension {
                extension.get_or_insert_with(Vec::new).push(pos);
            } else if sep != '\0' {
                groups.push((sep, vec![pos]));
                sep = '\0';
            } else {
                groups.last_mut()?.1.push(pos);
            }
            continue;
        }
        match c {
            '+' if groups.is_empty() && !plus => plus = true,
            '#' if !in_extension && !groups.is_empty() => in_extension = true,
            ' ' | '\t' | '-' | '.' | '/' | '(' | ')' if !in_extension => {
                // A dash wins over a space so "138 - 0564" still reads as dash-separated.
                if sep != '-' {
                    sep = if c == '-' { '-' } else { ' ' };
                }
            }
            ' ' | '\t' | '-' | '.' if in_extension && extension.is_none() => {}
            _ => return None,
        }
    }
    if in_extension && !matches!(&extension, Some(e) if (1..=6).contains(&e.len())) {
        return None;
    }

    // Drop the country code: +86, 0086, or 86 glued to a mobile number. Its digits must be
    // visible, because a starred prefix cannot be told apart from part of the number.
    let mut flat_groups: Vec<(char, Vec<Pos>)> = groups;
    let strip = |groups: &mut Vec<(char, Vec<Pos>)>, n: usize| -> Option<()> {
        let first = &mut groups.first_mut()?.1;
        if first.len() < n {
            return None;
        }
        first.drain(..n);
        if first.is_empty() {
            groups.remove(0);
        }
        Some(())
    };
    let all: Vec<Pos> = flat_groups.iter().flat_map(|g| g.1.clone()).collect();
    let starts = |prefix: &str| {
        all.len() >= prefix.len() && prefix.chars().zip(&all).all(|(p, d)| *d == Some(p))
    };
    if plus {
        if !starts("86") || flat_groups[0].1.len() < 2 {
            return None;
        }
        strip(&mut flat_groups, 2)?;
    } else if starts("0086") && flat_groups[0].1.len() >= 4 {
        strip(&mut flat_groups, 4)?;
    } else if all.len() == 13 && starts("861") && flat_groups[0].1.len() >= 2 {
        strip(&mut flat_groups, 2)?;
    }

    if let Some(main) = parse_main(&flat_groups) {
        return Some(ParsedPhone { main, extension });
    }
    // Without an explicit marker, a short group after a dash is an extension: this is how
    // platforms print virtual numbers (14701641598-0564) and switchboards (0571-88886666-123).
    if extension.is_none() && flat_groups.len() >= 2 {
        let (last_sep, last) = flat_groups.last()?;
        if *last_sep == '-' && (1..=6).contains(&last.len()) {
            let main = parse_main(&flat_groups[..flat_groups.len() - 1])?;
            return Some(ParsedPhone {
                main,
                extension: Some(last.clone()),
            });
        }
    }
    None
}

/// Recognises the main number from its groups: a mobile number or a landline.
fn parse_main(groups: &[(char, Vec<Pos>)]) -> Option<MainNumber> {
    let all: Vec<Pos> = groups.iter().flat_map(|g| g.1.clone()).collect();
    // A starred first digit is still read as a mobile number: the mobile mask shows at most
    // five of eleven positions whatever the number really is.
    if all.len() == 11 && matches!(all[0], Some('1') | None) {
        return Some(MainNumber::Mobile(all));
    }
    if all.first() != Some(&Some('0')) {
        return None;
    }
    // The area code is the first group when it was written apart; otherwise 010 and 02x
    // are the three-digit codes and every other code has four digits.
    let area_len = match groups.first() {
        Some((_, g)) if groups.len() >= 2 && (3..=4).contains(&g.len()) => g.len(),
        _ if matches!(all.get(1), Some(Some('1' | '2'))) => 3,
        _ => 4,
    };
    let local = all.get(area_len..)?;
    if !(7..=8).contains(&local.len()) {
        return None;
    }
    Some(MainNumber::Landline {
        area: all[..area_len].to_vec(),
        local: local.to_vec(),
    })
}

/// The fallback for anything not recognised: keeps the input's layout and hides every
/// digit except the last 2 (`Strict`: 1) positions, or all when there are fewer than 8.
fn mask_loose(s: &str, level: MaskLevel) -> String {
    let is_position = |c: char| is_digit(c) || c == STAR || c == '＊';
    let total = s.chars().filter(|&c| is_position(c)).count();
    let keep = match (total >= 8, level) {
        (false, _) => 0,
        (true, MaskLevel::Standard) => 2,
        (true, MaskLevel::Strict) => 1,
    };
    let mut seen = 0;
    s.chars()
        .map(|c| {
            if !is_position(c) {
                return c;
            }
            seen += 1;
            if seen > total - keep { c } else { STAR }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------------

/// Masks the street part of a recipient address (province, city and district are separate
/// fields and are not masked).
///
/// The unit (单元), floor (层/楼/F) and room (室/号房, or a bare number right after a
/// building, floor or unit: 15号楼2484) are hidden; the street and its number stay because
/// the courier needs them. `Strict` also hides the building (栋/幢/号楼/座, the 号 after a
/// 弄, "Building N"). English addresses are read through their keywords (Room, Apt, Unit,
/// Floor, Building, No.). Chinese dash notation 18-2-2502 is building-unit-room. When no
/// unit/floor/room is recognised, the trailing digits of the last number are hidden (two
/// of them; `Strict`: all). A run of seven or more digits is taken for a phone number
/// and masked like one, because buyers do type phones into the address. Text in
/// parentheses is the buyer's delivery note: only phone numbers in it are masked.
///
/// A whole hidden number becomes at least two stars, so a one-digit unit does not give
/// away that it is a single digit (1单元 → **单元).
pub fn mask_address(address: &str, level: MaskLevel) -> String {
    let strict = level == MaskLevel::Strict;
    let chars: Vec<char> = address.chars().collect();
    let in_remark = remark_flags(&chars);
    let chinese = chars.iter().any(|&c| is_cjk(c));
    let mut toks = address_tokens(&chars, &in_remark);

    // A 号 right after a lane (333弄3号) numbers a building, not a street.
    for i in 1..toks.len() {
        if toks[i].part == Part::Street
            && toks[i - 1].part == Part::Lane
            && gap_is_separator(&chars, toks[i - 1].after, toks[i].start)
        {
            toks[i].part = Part::Building;
        }
    }
    // A bare number right after a building, floor or unit is the room (15号楼2484,
    // C座6层307). Only in Chinese addresses: in "Block 3, 8 Main St" the 8 is the street.
    for i in 1..toks.len() {
        let prev = toks[i - 1].part;
        if chinese
            && !toks[i].in_remark
            && toks[i].part == Part::Other
            && toks[i].digits > 0
            && matches!(prev, Part::Building | Part::Unit | Part::Floor)
            && gap_is_separator(&chars, toks[i - 1].after, toks[i].start)
        {
            toks[i].part = Part::Room;
        }
    }
    if chinese {
        mark_dash_chains(&chars, &mut toks);
    }

    let mut actions: Vec<Action> = toks
        .iter()
        .map(|t| match t.part {
            Part::Unit | Part::Floor | Part::Room => Action::HideAll,
            Part::Building if strict => Action::HideAll,
            Part::Phone => Action::Phone,
            _ => Action::Keep,
        })
        .collect();
    let household_hidden = toks
        .iter()
        .any(|t| matches!(t.part, Part::Unit | Part::Floor | Part::Room));
    if !household_hidden {
        // Nothing says which part is the household, so the end of the last number goes:
        // in a Chinese address the most specific number comes last.
        let last = toks.iter().rposition(|t| {
            !t.in_remark && t.part != Part::Phone && (t.digits > 0 || t.part == Part::Building)
        });
        if let Some(i) = last {
            // A number of one or two digits is hidden whole, like any hidden number.
            if toks[i].digits <= 2 || strict {
                actions[i] = Action::HideAll;
            } else if actions[i] == Action::Keep {
                actions[i] = Action::HideTrailingDigits(2);
            }
        }
    }

    let mut out = String::with_capacity(address.len());
    let mut cursor = 0;
    for (t, action) in toks.iter().zip(&actions) {
        out.extend(&chars[cursor..t.start]);
        let text = &chars[t.start..t.end];
        match action {
            Action::Keep => out.extend(text),
            Action::HideAll => out.extend(std::iter::repeat_n(STAR, text.len().max(2))),
            Action::Phone => out.push_str(&mask_phone(&text.iter().collect::<String>(), level)),
            Action::HideTrailingDigits(n) => {
                let digits = text.iter().filter(|c| is_digit(**c)).count();
                let mut seen = 0;
                for &c in text {
                    if is_digit(c) {
                        seen += 1;
                        out.push(if seen > digits.saturating_sub(*n) {
                            STAR
                        } else {
                            c
                        });
                    } else {
                        out.push(c);
                    }
                }
            }
        }
        cursor = t.end;
    }
    out.extend(&chars[cursor..]);
    out
}

/// What a number in an address stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// Not recognised.
    Other,
    /// The street number (32号, No. 375): kept.
    Street,
    /// A lane (弄, 巷): kept; the 号 after it is a building.
    Lane,
    /// 栋, 幢, 号楼, 座, Building: hidden by `Strict`.
    Building,
    /// 单元, Unit: hidden.
    Unit,
    /// 层, 楼, 16F, Floor: hidden.
    Floor,
    /// 室, 号房, Room, Apt, or a bare number after a building: hidden.
    Room,
    /// Seven or more digits in a row: masked as a phone number.
    Phone,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Keep,
    HideAll,
    HideTrailingDigits(usize),
    Phone,
}

/// A number (or a building letter such as the C of C座) in an address.
struct Tok {
    start: usize,
    end: usize,
    /// Just after the suffix that classified it (after 单元 in 1单元), so that the gap to
    /// the next number can be checked.
    after: usize,
    digits: usize,
    part: Part,
    in_remark: bool,
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || ('０'..='９').contains(&c)
}

fn is_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || ('０'..='９').contains(&c)
        || ('Ａ'..='Ｚ').contains(&c)
        || ('ａ'..='ｚ').contains(&c)
}

/// Chinese numerals, recognised only right before a unit, floor, room or building word
/// (二单元, 十八栋), because elsewhere they are part of names (五一街道).
fn is_chinese_numeral(c: char) -> bool {
    "〇零一二三四五六七八九十百两".contains(c)
}

/// Marks the characters inside parentheses (the buyer's delivery note); an unclosed
/// parenthesis runs to the end.
fn remark_flags(chars: &[char]) -> Vec<bool> {
    let mut depth = 0usize;
    chars
        .iter()
        .map(|&c| match c {
            '(' | '（' => {
                depth += 1;
                true
            }
            ')' | '）' => {
                let inside = depth > 0;
                depth = depth.saturating_sub(1);
                inside
            }
            _ => depth > 0,
        })
        .collect()
}

/// Whether only separators stand between two numbers, so the second continues the first.
fn gap_is_separator(chars: &[char], from: usize, to: usize) -> bool {
    from <= to
        && chars[from..to]
            .iter()
            .all(|c| matches!(c, ' ' | ',' | '-' | '－' | '—' | '–' | '，'))
}

/// Finds and classifies the numbers of an address.
fn address_tokens(chars: &[char], in_remark: &[bool]) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let numeral = is_chinese_numeral(chars[i]);
        if !is_alnum(chars[i]) && !numeral {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len()
            && if numeral {
                is_chinese_numeral(chars[i])
            } else {
                is_alnum(chars[i])
            }
        {
            i += 1;
        }
        let end = i;
        let text = &chars[start..end];
        let digits = text.iter().filter(|c| is_digit(**c)).count();
        let (suffix, after) = suffix_part(chars, end);
        let household = matches!(
            suffix,
            Part::Building | Part::Unit | Part::Floor | Part::Room
        );
        let part = if digits == text.len() && digits >= 7 {
            Part::Phone
        } else if in_remark[start] {
            Part::Other
        } else if numeral || digits == 0 {
            // A Chinese numeral or a letter (C座, A栋) only counts before a household word;
            // otherwise it is a word (五一街道, Keyuan) and not a number at all.
            if household && (numeral || text.len() <= 2) {
                suffix
            } else {
                continue;
            }
        } else if suffix != Part::Other {
            suffix
        } else if matches!(text.last(), Some('F' | 'f' | 'Ｆ'))
            && text[..text.len() - 1].iter().all(|c| is_digit(*c))
        {
            Part::Floor
        } else {
            keyword_before(chars, start)
        };
        toks.push(Tok {
            start,
            end,
            after: if suffix == Part::Other { end } else { after },
            digits,
            part,
            in_remark: in_remark[start],
        });
    }
    toks
}

/// Classifies a number by the word after it; returns the class and where the word ends.
fn suffix_part(chars: &[char], end: usize) -> (Part, usize) {
    let mut k = end;
    while k < chars.len() && chars[k] == ' ' {
        k += 1;
    }
    let rest = &chars[k..];
    // Longer words first: 号楼 is a building, 号房 a room, 号院 and 号门 keep like 号.
    const WORDS: &[(&str, Part)] = &[
        ("单元", Part::Unit),
        ("單元", Part::Unit),
        ("号楼", Part::Building),
        ("號樓", Part::Building),
        ("号樓", Part::Building),
        ("号房", Part::Room),
        ("號房", Part::Room),
        ("号院", Part::Street),
        ("号门", Part::Street),
        ("号", Part::Street),
        ("號", Part::Street),
        ("栋", Part::Building),
        ("棟", Part::Building),
        ("幢", Part::Building),
        ("座", Part::Building),
        ("层", Part::Floor),
        ("層", Part::Floor),
        ("楼", Part::Floor),
        ("樓", Part::Floor),
        ("室", Part::Room),
        ("房", Part::Room),
        ("户", Part::Room),
        ("弄", Part::Lane),
        ("巷", Part::Lane),
    ];
    for (word, part) in WORDS {
        let n = word.chars().count();
        if rest.len() >= n && word.chars().zip(rest).all(|(a, b)| a == *b) {
            return (*part, k + n);
        }
    }
    (Part::Other, end)
}

/// Classifies a number in an English address by the keyword before it (Room 585, Apt 5B,
/// Building 1, No. 375, #12).
fn keyword_before(chars: &[char], start: usize) -> Part {
    let mut k = start;
    let mut hash = false;
    while k > 0 && matches!(chars[k - 1], ' ' | '.' | ':' | '#') {
        hash |= chars[k - 1] == '#';
        k -= 1;
    }
    let end = k;
    while k > 0 && chars[k - 1].is_ascii_alphabetic() {
        k -= 1;
    }
    let word: String = chars[k..end]
        .iter()
        .collect::<String>()
        .to_ascii_lowercase();
    match word.as_str() {
        "room" | "rm" | "apt" | "apartment" | "flat" | "suite" | "ste" => Part::Room,
        "unit" => Part::Unit,
        "floor" | "fl" | "level" | "lvl" => Part::Floor,
        "building" | "bldg" | "block" | "blk" | "tower" => Part::Building,
        "no" | "number" => Part::Street,
        "" if hash => Part::Room,
        _ => Part::Other,
    }
}

/// Reads the northern dash notation building-unit-room (18-2-2502, 5-301): numbers joined
/// by single dashes whose last one is not followed by 号 (3-5号 is a street number range).
fn mark_dash_chains(chars: &[char], toks: &mut [Tok]) {
    let mut i = 0;
    while i < toks.len() {
        let mut j = i;
        while j + 1 < toks.len()
            && toks[j].end + 1 == toks[j + 1].start
            && matches!(chars[toks[j].end], '-' | '－' | '—' | '–')
            && toks[j].digits > 0
            && toks[j + 1].digits > 0
        {
            j += 1;
        }
        let chain = &toks[i..=j];
        let plain = chain[..chain.len() - 1]
            .iter()
            .all(|t| t.part == Part::Other && !t.in_remark);
        let last = chain[chain.len() - 1].part;
        if j > i && plain && matches!(last, Part::Other | Part::Room) {
            toks[i].part = Part::Building;
            for t in &mut toks[i + 1..j] {
                t.part = Part::Unit;
            }
            toks[j].part = Part::Room;
        }
        i = j + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::MaskLevel::{Standard, Strict};
    use super::*;

    // -- names ----------------------------------------------------------------------------

    #[test]
    fn names_follow_the_table() {
        let table: &[(&str, &str, &str)] = &[
            // (input, Standard, Strict)
            ("王小明", "王*明", "王**"),
            ("王明", "王*", "王*"),
            ("王", "*", "*"),
            ("欧阳娜娜", "欧**娜", "欧***"),
            ("尉迟兰兰", "尉**兰", "尉***"),
            ("孔子娥", "孔*娥", "孔**"),
            ("崔㙟", "崔*", "崔*"),
            ("𠮷田", "𠮷*", "𠮷*"),
            ("王𠮷明", "王*明", "王**"),
            ("艾克拜尔·热合曼", "艾***·热**", "艾***·***"),
            ("古丽娜尔·吐尔逊", "古***·吐**", "古***·***"),
            ("艾克拜尔.热合曼", "艾***.热**", "艾***.***"),
            ("阿·买", "*·*", "*·*"),
            ("David Kim", "D**** K**", "D**** ***"),
            ("J Smith", "* S****", "* *****"),
            ("Li", "L*", "L*"),
            ("王 小明", "王 *明", "王 **"),
            ("김민수", "김*수", "김**"),
            ("", "", ""),
            ("   ", "***", "***"),
            ("·", "*", "*"),
        ];
        for (input, standard, strict) in table {
            assert_eq!(mask_name(input, Standard), *standard, "standard {input:?}");
            assert_eq!(mask_name(input, Strict), *strict, "strict {input:?}");
        }
    }

    #[test]
    fn combining_marks_stay_with_their_letter() {
        // "José" with a combining acute accent is four characters, not five.
        assert_eq!(mask_name("Jose\u{301} Li", Standard), "J*** L*");
        assert_eq!(mask_name("Zoe\u{301}", Standard), "Z**");
    }

    #[test]
    fn every_name_hides_something_and_keeps_its_length() {
        let alphabet = ["王", "𠮷", "a", "Z", " ", "·", "é", "*", "김", "."];
        // Every string of up to five units over the alphabet: 111,110 names.
        let mut names = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..5 {
            let mut next = Vec::new();
            for prefix in &frontier {
                for unit in alphabet {
                    next.push(format!("{prefix}{unit}"));
                }
            }
            names.extend(next.iter().cloned());
            frontier = next;
        }
        for name in &names {
            for level in [Standard, Strict] {
                let masked = mask_name(name, level);
                let units = name.chars().count();
                assert_eq!(masked.chars().count(), units, "{name:?} → {masked:?}");
                if !name.is_empty() {
                    assert!(masked.contains('*'), "{name:?} → {masked:?}");
                }
            }
            // Strict hides everything Standard hides (the alphabet has no combining marks,
            // so characters line up one to one).
            let standard = mask_name(name, Standard);
            let strict = mask_name(name, Strict);
            for (a, b) in standard.chars().zip(strict.chars()) {
                assert!(a != '*' || b == '*', "{name:?}: {standard:?} vs {strict:?}");
            }
        }
    }

    // -- phones ---------------------------------------------------------------------------

    #[test]
    fn phones_follow_the_table() {
        let table: &[(&str, &str, &str)] = &[
            // Mobiles, plain and decorated.
            ("13812345678", "138******78", "138*******8"),
            ("17869074391", "178******91", "178*******1"),
            (" 13812345678 ", "138******78", "138*******8"),
            ("138 1234 5678", "138******78", "138*******8"),
            ("138-1234-5678", "138******78", "138*******8"),
            ("+86 138 1234 5678", "138******78", "138*******8"),
            ("+86-13812345678", "138******78", "138*******8"),
            ("(+86) 13812345678", "138******78", "138*******8"),
            ("008613812345678", "138******78", "138*******8"),
            ("8613812345678", "138******78", "138*******8"),
            ("１３８１２３４５６７８", "138******78", "138*******8"),
            // Landlines, as in the fixtures.
            ("0571-88886666", "0571-******66", "0571-*******6"),
            ("025-55956594", "025-******94", "025-*******4"),
            ("0592-36846954", "0592-******54", "0592-*******4"),
            ("0531-4129476", "0531-******6", "0531-*******"),
            ("0991-3244828", "0991-******8", "0991-*******"),
            ("057188886666", "0571-******66", "0571-*******6"),
            ("01012345678", "010-******78", "010-*******8"),
            ("(0571) 8888 6666", "0571-******66", "0571-*******6"),
            // Virtual numbers and switchboards keep their extension.
            ("14701641598-0564", "147******98-0564", "147*******8-0564"),
            ("14701641598转0564", "147******98-0564", "147*******8-0564"),
            ("14701641598 ext. 564", "147******98-564", "147*******8-564"),
            ("14701641598,0564", "147******98-0564", "147*******8-0564"),
            (
                "0571-88886666-123",
                "0571-******66-123",
                "0571-*******6-123",
            ),
            (
                "0571-88886666转123",
                "0571-******66-123",
                "0571-*******6-123",
            ),
            // Already masked input never gets a digit back.
            ("139****0909", "139******09", "139*******9"),
            ("139******09", "139******09", "139*******9"),
            ("1**********", "1**********", "1**********"),
            ("***********", "***********", "***********"),
            ("*3812345678", "*38******78", "*38*******8"),
            ("0571-****6666", "0571-******66", "0571-*******6"),
            // Anything else keeps its layout and hides all but the last two digits.
            ("400-820-8820", "***-***-**20", "***-***-***0"),
            ("88886666", "******66", "*******6"),
            ("+1 415 555 0100", "+* *** *** **00", "+* *** *** ***0"),
            ("1381234567", "********67", "*********7"),
            ("95555", "*****", "*****"),
            ("1234567", "*******", "*******"),
            ("tel: 13812345678", "tel: *********78", "tel: **********8"),
            ("n/a", "n/a", "n/a"),
            ("", "", ""),
        ];
        for (input, standard, strict) in table {
            assert_eq!(mask_phone(input, Standard), *standard, "standard {input:?}");
            assert_eq!(mask_phone(input, Strict), *strict, "strict {input:?}");
        }
    }

    #[test]
    fn fixture_phones_hide_six_digits() {
        let text = include_str!("../../tests/data/orders-200.json");
        let orders: serde_json::Value = serde_json::from_str(text).expect("fixture parses");
        let orders = orders.as_array().expect("a list of orders");
        assert!(!orders.is_empty());
        for order in orders {
            let phone = order["recipient"]["phone"].as_str().expect("phone");
            for level in [Standard, Strict] {
                let masked = mask_phone(phone, level);
                check_phone_property(phone, &masked);
                assert!(positions(phone) >= 8, "{phone}");
            }
        }
    }

    /// Digit positions (digits and stars) in a string.
    fn positions(s: &str) -> usize {
        s.chars()
            .filter(|&c| is_digit(c) || c == '*' || c == '＊')
            .count()
    }

    /// Digits shown in a string.
    fn visible(s: &str) -> usize {
        s.chars().filter(|&c| is_digit(c)).count()
    }

    fn check_phone_property(input: &str, output: &str) {
        assert!(
            visible(output) <= visible(input),
            "{input:?} → {output:?} shows more digits"
        );
        if positions(input) >= 8 {
            assert!(
                visible(output) + 6 <= positions(input),
                "{input:?} → {output:?} hides fewer than six"
            );
        }
    }

    #[test]
    fn no_phone_ever_shows_more_than_allowed() {
        // Digit strings of every length 0..=16 with several leading digits, each with
        // every window of stars, every single dash or space, and with prefixes and
        // extension markers: about 400,000 masked strings per level.
        let mut checked = 0usize;
        let fill = "38123456780571886";
        let prefixes = ["", "+86 ", "0086", "86", "(+86)", "+1 "];
        let infixes = ['-', ' ', '转', '#'];
        for len in 0..=16usize {
            for first in ['1', '0', '8', '4'] {
                let digits: Vec<char> = std::iter::once(first)
                    .chain(fill.chars())
                    .take(len)
                    .collect();
                let mut variants: Vec<Vec<char>> = vec![digits.clone()];
                for a in 0..len {
                    for b in a + 1..=len {
                        let mut v = digits.clone();
                        v[a..b].iter_mut().for_each(|c| *c = '*');
                        variants.push(v);
                    }
                }
                for v in variants {
                    let base: String = v.iter().collect();
                    let mut inputs = vec![base.clone()];
                    for at in 1..v.len() {
                        for infix in infixes {
                            let mut s: String = v[..at].iter().collect();
                            s.push(infix);
                            s.extend(&v[at..]);
                            inputs.push(s);
                        }
                    }
                    for prefix in prefixes {
                        inputs.push(format!("{prefix}{base}"));
                    }
                    for input in inputs {
                        let standard = mask_phone(&input, Standard);
                        let strict = mask_phone(&input, Strict);
                        check_phone_property(&input, &standard);
                        check_phone_property(&input, &strict);
                        assert!(visible(&strict) <= visible(&standard), "{input:?}");
                        checked += 2;
                    }
                }
            }
        }
        assert!(checked > 100_000, "only {checked} checked");
    }

    #[test]
    fn two_dashes_and_extensions_never_leak() {
        // Every way to put two dashes into a 15-digit string, which covers virtual numbers
        // with extensions of every length and landlines with extensions.
        for digits in ["147016415980564", "057188886666123", "1*******5980564"] {
            let v: Vec<char> = digits.chars().collect();
            for a in 1..v.len() {
                for b in a + 1..v.len() {
                    let mut s: String = v[..a].iter().collect();
                    s.push('-');
                    s.extend(&v[a..b]);
                    s.push('-');
                    s.extend(&v[b..]);
                    for level in [Standard, Strict] {
                        check_phone_property(&s, &mask_phone(&s, level));
                    }
                }
            }
        }
    }

    // -- addresses ------------------------------------------------------------------------

    #[test]
    fn addresses_follow_the_table() {
        let table: &[(&str, &str, &str)] = &[
            // 栋/单元/室, the most common style in the fixtures.
            (
                "科技园路32号紫薇苑18栋1单元2502室",
                "科技园路32号紫薇苑18栋**单元****室",
                "科技园路32号紫薇苑**栋**单元****室",
            ),
            // 座/层 and a bare room number.
            (
                "滨江大道773号科技大厦C座6层307",
                "滨江大道773号科技大厦C座**层***",
                "滨江大道773号科技大厦**座**层***",
            ),
            // 号楼 and a bare room number.
            (
                "江汉街道朝阳北路326号湖畔新村15号楼2484",
                "江汉街道朝阳北路326号湖畔新村15号楼****",
                "江汉街道朝阳北路326号湖畔新村**号楼****",
            ),
            // Shanghai lanes: the 号 after 弄 is the building.
            (
                "幸福街333弄3号237室",
                "幸福街333弄3号***室",
                "幸福街333弄**号***室",
            ),
            // English, by keywords.
            (
                "Room 585, Building 1, No. 375 Keyuan Road",
                "Room ***, Building 1, No. 375 Keyuan Road",
                "Room ***, Building **, No. 375 Keyuan Road",
            ),
            (
                "375 Keyuan Road Apt 5B",
                "375 Keyuan Road Apt **",
                "375 Keyuan Road Apt **",
            ),
            (
                "Flat #12, Block 3, 8 Main St",
                "Flat #**, Block 3, 8 Main St",
                "Flat #**, Block **, 8 Main St",
            ),
            // Other spellings of the household.
            (
                "中山路1号金茂大厦10F",
                "中山路1号金茂大厦***",
                "中山路1号金茂大厦***",
            ),
            (
                "人民路5号2幢1502号房",
                "人民路5号2幢****号房",
                "人民路5号**幢****号房",
            ),
            (
                "人民路5号十八栋二单元",
                "人民路5号十八栋**单元",
                "人民路5号**栋**单元",
            ),
            ("人民路5号3栋12楼", "人民路5号3栋**楼", "人民路5号**栋**楼"),
            (
                "和平路5号18-2-2502",
                "和平路5号18-**-****",
                "和平路5号**-**-****",
            ),
            (
                "和平路5号18-2502室",
                "和平路5号18-****室",
                "和平路5号**-****室",
            ),
            ("和平路3-5号", "和平路3-**号", "和平路3-**号"),
            // Nothing recognised: the last number loses its trailing digits.
            ("北京路152号", "北京路1**号", "北京路***号"),
            (
                "北京路152号软件园",
                "北京路1**号软件园",
                "北京路***号软件园",
            ),
            ("国贸大厦B座", "国贸大厦**座", "国贸大厦**座"),
            ("人民路", "人民路", "人民路"),
            ("", "", ""),
            // A phone typed into the address is masked like a phone.
            (
                "人民路1号3栋5室（电话13812345678）",
                "人民路1号3栋**室（电话138******78）",
                "人民路1号**栋**室（电话138*******8）",
            ),
        ];
        for (input, standard, strict) in table {
            assert_eq!(
                mask_address(input, Standard),
                *standard,
                "standard {input:?}"
            );
            assert_eq!(mask_address(input, Strict), *strict, "strict {input:?}");
        }
    }

    #[test]
    fn delivery_notes_are_left_alone() {
        let note = "（绿地中心旁边的世纪华庭南门进去左转第二个路口，放到一楼保安亭）";
        let input = format!("幸福街468号科技大厦B座16层215{note}");
        let expected = format!("幸福街468号科技大厦B座**层***{note}");
        assert_eq!(mask_address(&input, Standard), expected);
    }

    #[test]
    fn fixture_addresses_lose_their_household() {
        let text = include_str!("../../tests/data/orders-200.json");
        let orders: serde_json::Value = serde_json::from_str(text).expect("fixture parses");
        for order in orders.as_array().expect("a list of orders") {
            let address = order["recipient"]["address"].as_str().expect("address");
            for level in [Standard, Strict] {
                let masked = mask_address(address, level);
                assert_ne!(masked, address, "{address:?} unchanged");
                assert!(
                    masked.chars().filter(|c| c.is_ascii_digit()).count()
                        < address.chars().filter(|c| c.is_ascii_digit()).count(),
                    "{address:?} → {masked:?}"
                );
                // Every fixture address has a street number before its household, and the
                // street stays readable.
                let street: String = address.chars().take_while(|c| *c != '号').collect();
                if address.contains('号') && !address.contains('弄') {
                    assert!(masked.starts_with(&street), "{address:?} → {masked:?}");
                }
            }
        }
    }

    #[test]
    fn no_address_gains_a_digit() {
        // Every string of up to four pieces over an alphabet of address parts: no panic,
        // no digit appears that was not there, and Strict never shows more than Standard.
        let alphabet = [
            "1",
            "23",
            "号",
            "栋",
            "单元",
            "室",
            "-",
            "A",
            "（",
            "）",
            "一",
            "楼",
            " ",
            "弄",
            "Room ",
            "1381234567",
        ];
        let digits = |s: &str| s.chars().filter(|c| is_digit(*c)).count();
        let mut frontier = vec![String::new()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for prefix in &frontier {
                for piece in alphabet {
                    let input = format!("{prefix}{piece}");
                    let standard = mask_address(&input, Standard);
                    let strict = mask_address(&input, Strict);
                    assert!(
                        digits(&standard) <= digits(&input),
                        "{input:?} → {standard:?}"
                    );
                    assert!(
                        digits(&strict) <= digits(&standard),
                        "{input:?} → {strict:?}"
                    );
                    next.push(input);
                }
            }
            frontier = next;
        }
    }

    #[test]
    fn mask_level_reads_from_config() {
        assert_eq!(MaskLevel::default(), Standard);
        let level: MaskLevel = serde_json::from_str("\"strict\"").expect("parses");
        assert_eq!(level, Strict);
        assert_eq!(
            serde_json::to_string(&Standard).expect("writes"),
            "\"standard\""
        );
        assert!(serde_json::from_str::<MaskLevel>("\"off\"").is_err());
    }
}
