//! Properties that must hold for every input, not just the examples in the unit
//! tests (proptest; a failure prints the smallest input it could shrink to):
//! - text fitting: a fitted field never draws outside its box unless the order
//!   is flagged (overflow), and never loses a character;
//! - masking: a name always hides a character, a phone at least six digits, and
//!   neither ever shows a character the input did not show in that place;
//! - memo ordering: the effective memo is the newest, ties to the later one;
//! - wave ordering: the queue a wave prints from is urgent first, then payment
//!   time, then id, whatever offsets the shop wrote the times in.

use proptest::prelude::*;
use serde_json::{Value, json};
use station::config::Config;
use station::order::Order;
use station::order::validate::{Origin, validate};
use station::render::fonts::FontChain;
use station::render::layout::{Align, TextBox, VAlign, place_text};
use station::render::mask::{MaskLevel, mask_name, mask_phone};
use station::store::Store;

const FIXTURE: &str = include_str!("data/orders-200.json");

/// The first fixture order, parsed once: every property starts from it.
fn fixture_order() -> Value {
    static FIRST: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
        let all: Value = serde_json::from_str(FIXTURE).unwrap();
        all[0].clone()
    });
    FIRST.clone()
}

// ---------------------------------------------------------------------------
// Text fitting
// ---------------------------------------------------------------------------

/// Pieces of label text: hanzi (common and Ext-B), Latin words, digits, CJK
/// punctuation, emoji (the emoji font's) with ZWJ, spaces, newlines,
/// controls and long unbreakable runs.
fn text_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[\u{4e00}-\u{9fa5}]{1,6}",
        1 => Just("𠮷𫖯".to_string()),
        3 => "[A-Za-z]{1,12}",
        2 => "[0-9]{1,8}",
        1 => prop::sample::select(vec!["（", "）", "，", "。", "《", "》", "-", "#", "/"])
            .prop_map(str::to_string),
        1 => prop::sample::select(vec!["😀", "👨\u{200d}👩\u{200d}👧", "🚚", "\u{fe0f}"])
            .prop_map(str::to_string),
        3 => Just(" ".to_string()),
        1 => Just("\n".to_string()),
        1 => prop::sample::select(vec!["\t", "\u{200b}", "\u{202e}", "\r\n", "\u{7}"])
            .prop_map(str::to_string),
        1 => "[A-Z0-9]{20,40}",
        1 => "[\u{4e00}-\u{9fa5}]{20,60}",
    ]
}

fn label_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::collection::vec(text_piece(), 1..24).prop_map(|v| v.concat()),
        // Short narrow text: it fits boxes a hanzi never would.
        1 => "[il1.:|]{1,4}",
    ]
}

fn text_box() -> impl Strategy<Value = TextBox> {
    (
        // Narrow boxes often: that is where the edges are.
        (
            0.0f32..60.0,
            0.0f32..100.0,
            prop_oneof![1.0f32..4.0, 1.0f32..100.0],
            1.0f32..50.0,
        ),
        (4.0f32..28.0, 0.3f32..1.2, prop::option::of(1usize..6)),
        (
            prop::sample::select(vec![Align::Left, Align::Center, Align::Right]),
            prop::sample::select(vec![VAlign::Top, VAlign::Middle, VAlign::Bottom]),
            any::<bool>(),
        ),
    )
        .prop_map(
            |((x, y, w, h), (size_pt, min_share, max_lines), (align, valign, invert))| TextBox {
                x,
                y,
                w,
                h,
                size_pt,
                min_pt: (size_pt * min_share).max(3.0),
                max_lines,
                align,
                valign,
                invert,
            },
        )
}

/// The characters a reader sees: no whitespace, no ignorables, no missing glyphs.
fn visible(text: &str) -> String {
    FontChain::embedded()
        .runs(text)
        .runs
        .iter()
        .flat_map(|r| r.text.chars())
        .filter(|c| !c.is_whitespace())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fitted_text_stays_in_its_box_or_is_flagged(text in label_text(), b in text_box()) {
        // The renderer trims, and draws nothing for empty text.
        let text = text.trim();
        prop_assume!(!text.is_empty());
        let placed = place_text(text, &b);
        let f = &placed.fitted;
        const EPS: f32 = 1e-3;
        prop_assert!(f.size_pt <= b.size_pt + EPS, "grew: {} > {}", f.size_pt, b.size_pt);
        prop_assert!(
            f.size_pt + EPS >= b.min_pt.min(b.size_pt),
            "shrank below min_pt: {} < {}", f.size_pt, b.min_pt
        );
        if f.overflow {
            // Flagged only after shrinking as far as allowed.
            prop_assert!(f.size_pt <= b.min_pt + EPS, "overflow at {} pt", f.size_pt);
        }
        // Never outside the box, flagged or not (overflowing text once ran
        // over the sender's block).
        for run in &placed.runs {
            prop_assert!(
                run.x + EPS >= b.x && run.x + run.width <= b.x + b.w + EPS,
                "run {:?} spans x {}..{}, box {}..{} ({:?})",
                run.text, run.x, run.x + run.width, b.x, b.x + b.w, f
            );
            prop_assert!(
                run.top + EPS >= b.y && run.top + run.line_h <= b.y + b.h + EPS,
                "run {:?} spans y {}..{}, box {}..{} ({:?})",
                run.text, run.top, run.top + run.line_h, b.y, b.y + b.h, f
            );
        }
        if let Some(m) = b.max_lines {
            prop_assert!(f.lines.len() <= m);
        }
        let drawn: String = placed.runs.iter().map(|r| r.text.as_str()).collect();
        if f.overflow {
            // Cut, and flagged for a person: what is drawn is the text's start.
            let shown = visible(drawn.trim_end_matches('…'));
            prop_assert!(visible(text).starts_with(&shown), "{shown:?} is not the start of {text:?}");
        } else {
            // Every visible character is drawn, in order.
            prop_assert_eq!(visible(&drawn), visible(text));
        }
    }
}

// ---------------------------------------------------------------------------
// Masking (GB/T 41833-2022)
// ---------------------------------------------------------------------------

fn name_unit() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[\u{4e00}-\u{9fa5}]",
        1 => prop::sample::select(vec!["𠮷", "㙟", "䶮", "ア", "김"]).prop_map(str::to_string),
        4 => "[A-Za-z]",
        1 => prop::sample::select(vec!["e\u{301}", "n\u{303}", "👩\u{200d}💻", "👍🏽"])
            .prop_map(str::to_string),
        1 => prop::sample::select(vec![" ", "·", ".", "•", "*", "＊"]).prop_map(str::to_string),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop::collection::vec(name_unit(), 1..9).prop_map(|v| v.concat())
}

fn is_star(c: char) -> bool {
    matches!(c, '*' | '＊' | '×')
}

/// Characters of a name that identify someone: not stars, spaces or dots.
fn revealing(s: &str) -> usize {
    s.chars()
        .filter(|&c| !is_star(c) && !c.is_whitespace() && !"·.•‧・･．".contains(c))
        .count()
}

fn is_subsequence(small: &str, big: &str) -> bool {
    let mut it = big.chars();
    small.chars().all(|c| it.any(|b| b == c))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_masked_name_hides_at_least_one_character(name in name()) {
        for level in [MaskLevel::Standard, MaskLevel::Strict] {
            let masked = mask_name(&name, level);
            prop_assert!(masked.contains('*'), "{name:?} → {masked:?} ({level:?})");
            let shown: String = masked.chars().filter(|&c| c != '*').collect();
            prop_assert!(
                is_subsequence(&shown, &name),
                "{name:?} → {masked:?}: shows what the name did not"
            );
            let already_masked = name.chars().any(is_star);
            if revealing(&name) > 0 && !already_masked {
                prop_assert!(
                    revealing(&masked) < revealing(&name),
                    "{name:?} → {masked:?} hides no character"
                );
            }
        }
        prop_assert!(
            revealing(&mask_name(&name, MaskLevel::Strict))
                <= revealing(&mask_name(&name, MaskLevel::Standard))
        );
    }
}

fn digits(n: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    prop::collection::vec(0u8..10, n).prop_map(|d| d.iter().map(|x| (b'0' + x) as char).collect())
}

/// Phone numbers as buyers and platforms write them: mobiles, landlines, with a
/// country code, separators, an extension, stars already in them, full-width
/// digits; and arbitrary text.
fn phone() -> impl Strategy<Value = String> {
    let mobile = ("1[3-9]", digits(9..10)).prop_map(|(a, b)| format!("{a}{b}"));
    let landline = (
        prop::sample::select(vec!["010", "021", "0571", "0755", "0898"]),
        digits(7..9),
    )
        .prop_map(|(a, l)| format!("{a}-{l}"));
    let other = digits(1..16);
    let main = prop_oneof![4 => mobile, 3 => landline, 2 => other];
    (
        main,
        prop::sample::select(vec!["", "+86 ", "+86-", "0086", "86", "（+86）"]),
        prop::sample::select(vec!["", " ", "-"]),
        prop::option::of((
            prop::sample::select(vec!["-", "转", "分机", " ext ", "x", "#", ",", "，"]),
            digits(1..7),
        )),
        prop::collection::vec(any::<prop::sample::Index>(), 0..5),
        any::<bool>(),
    )
        .prop_map(|(main, cc, sep, ext, stars, wide)| {
            // A separator after the 3rd and 7th character, the way people group.
            let mut s: String = main
                .chars()
                .enumerate()
                .flat_map(|(i, c)| {
                    let gap = (i == 3 || i == 7) && !main.contains('-');
                    gap.then_some(sep)
                        .into_iter()
                        .flat_map(str::chars)
                        .chain([c])
                })
                .collect();
            // Stars where the shop already masked digits.
            let mut chars: Vec<char> = s.chars().collect();
            for i in stars {
                let i = i.index(chars.len());
                if chars[i].is_ascii_digit() {
                    chars[i] = '*';
                }
            }
            s = chars.into_iter().collect();
            let mut out = format!("{cc}{s}");
            if let Some((marker, n)) = ext {
                out.push_str(marker);
                out.push_str(&n);
            }
            if wide {
                out = out
                    .chars()
                    .map(|c| match c {
                        '0'..='9' => char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap(),
                        '*' => '＊',
                        c => c,
                    })
                    .collect();
            }
            out
        })
}

fn any_phone() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => phone(),
        1 => "[0-9０-９*＊ +()\\-#转xX]{0,24}",
        1 => any::<String>(),
    ]
}

/// A phone's positions: `Some(digit)` shown (full-width folded), `None` hidden.
fn positions(s: &str) -> Vec<Option<char>> {
    s.chars()
        .filter_map(|c| match c {
            '0'..='9' => Some(Some(c)),
            '０'..='９' => Some(char::from_u32(c as u32 - '０' as u32 + '0' as u32)),
            c if is_star(c) => Some(None),
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn a_masked_phone_hides_six_digits_and_shows_nothing_new(phone in any_phone()) {
        let input = positions(&phone);
        for level in [MaskLevel::Standard, MaskLevel::Strict] {
            let masked = mask_phone(&phone, level);
            let out = positions(&masked);
            let shown = out.iter().filter(|p| p.is_some()).count();
            let given = input.iter().filter(|p| p.is_some()).count();
            prop_assert!(shown <= given, "{phone:?} → {masked:?} shows more digits");
            if input.len() >= 8 {
                prop_assert!(
                    shown + 6 <= input.len(),
                    "{phone:?} → {masked:?} hides fewer than six of {} positions", input.len()
                );
            } else {
                prop_assert_eq!(shown, 0, "{:?} → {:?}: a short number shows digits", phone, masked);
            }
            // Same places: the output's positions are the input's, less a country
            // code (86 / 0086) at the front; a shown digit is the digit that was there.
            let aligned = [0usize, 2, 4].iter().any(|&k| {
                input.len() >= k
                    && out.len() == input.len() - k
                    && out.iter().zip(&input[k..]).all(|(o, i)| o.is_none() || o == i)
            });
            prop_assert!(aligned, "{phone:?} → {masked:?}: digits moved or appeared");
            // Other characters never turn into digits.
            prop_assert!(
                !masked.chars().any(|c| c.is_numeric() && positions(&c.to_string()).is_empty()
                    && !phone.contains(c)),
                "{phone:?} → {masked:?}"
            );
        }
        let strict = positions(&mask_phone(&phone, MaskLevel::Strict));
        let standard = positions(&mask_phone(&phone, MaskLevel::Standard));
        prop_assert!(
            strict.iter().flatten().count() <= standard.iter().flatten().count(),
            "{phone:?}: strict shows more than standard"
        );
    }
}

// ---------------------------------------------------------------------------
// Memo ordering
// ---------------------------------------------------------------------------

/// Memo times within a few minutes of each other (so ties are common), each
/// written in its own UTC offset.
fn memo_times() -> impl Strategy<Value = Vec<(i64, i32)>> {
    prop::collection::vec((0i64..4, -12i32..=14), 0..8)
}

fn rfc3339(utc_secs: i64, offset_h: i32) -> String {
    rfc3339_ms(utc_secs * 1000, offset_h)
}

fn rfc3339_ms(utc_ms: i64, offset_h: i32) -> String {
    let offset = chrono::FixedOffset::east_opt(offset_h * 3600).unwrap();
    chrono::DateTime::from_timestamp_millis(utc_ms)
        .unwrap()
        .with_timezone(&offset)
        .to_rfc3339()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_newest_memo_wins_and_ties_go_to_the_later_one(times in memo_times()) {
        let base = 1_794_300_000i64; // 2026-11-11
        let mut raw = fixture_order();
        raw["memos"] = Value::Array(
            times
                .iter()
                .enumerate()
                .map(|(i, &(m, off))| json!({
                    "text": format!("memo {i}"),
                    "author": "客服",
                    "at": rfc3339(base + 60 * m, off),
                }))
                .collect(),
        );
        let order = validate(&raw, Origin::Direct).expect("valid order");
        // The model: scan in list order, a later memo replaces the pick when its
        // instant is not older.
        let mut pick: Option<usize> = None;
        for (i, &(m, _)) in times.iter().enumerate() {
            if pick.is_none_or(|p| m >= times[p].0) {
                pick = Some(i);
            }
        }
        let got = order.effective_memo().map(|m| m.text.clone());
        prop_assert_eq!(got, pick.map(|i| format!("memo {i}")));
    }
}

// ---------------------------------------------------------------------------
// Wave ordering
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct QueuedOrder {
    id: String,
    /// Milliseconds after a base instant, and the offset the shop wrote it in.
    paid: (i64, i32),
    express: bool,
    purple_flag_memo: bool,
}

fn queued_orders() -> impl Strategy<Value = Vec<QueuedOrder>> {
    prop::collection::vec(
        (
            "[A-Z0-9]{1,6}",
            (0i64..5, 0i64..3, -12i32..=14),
            prop::bool::weighted(0.25),
            prop::bool::weighted(0.15),
        ),
        1..14,
    )
    .prop_map(|v| {
        let mut seen = std::collections::HashSet::new();
        v.into_iter()
            .filter(|(id, ..)| seen.insert(id.clone()))
            .map(|(id, paid, express, purple_flag_memo)| QueuedOrder {
                id: format!("P{id}"),
                // Half-hour steps, and sub-second ones inside them.
                paid: (paid.0 * 1_800_000 + paid.1 * 300, paid.2),
                express,
                purple_flag_memo,
            })
            .collect()
    })
}

fn order_json(q: &QueuedOrder) -> Value {
    let base = 1_794_300_000i64;
    let mut raw = fixture_order();
    raw["id"] = json!(q.id);
    raw["paid_at"] = json!(rfc3339_ms(base * 1000 + q.paid.0, q.paid.1));
    raw["created_at"] = json!(rfc3339(base - 3600, 8));
    raw["updated_at"] = json!(rfc3339(base + 7 * 86_400, 8));
    raw["shipping"]["service"] = json!(if q.express { "express" } else { "standard" });
    if q.purple_flag_memo {
        raw["memos"] = json!([{
            "text": "加急", "author": "客服", "at": rfc3339(base, 8), "flag": "purple"
        }]);
    }
    raw
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_wave_prints_urgent_first_then_by_payment_time_then_id(orders in queued_orders()) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("orders.jsonl");
        let lines: String = orders.iter().map(|q| format!("{}\n", order_json(q))).collect();
        std::fs::write(&file, lines).unwrap();
        let mut store = Store::open(dir.path().join("station.db")).unwrap();
        let config = Config::default();
        let report = station::pull::import(&file, &mut store, &config, "prop").unwrap();
        prop_assert!(report.rejections.is_empty(), "{:?}", report.rejections);
        let got = store.queue().unwrap();

        let mut model: Vec<(bool, i64, String)> = orders
            .iter()
            .map(|q| {
                let order: Order = validate(&order_json(q), Origin::Direct).unwrap();
                prop_assert_eq!(order.is_urgent(), q.express || q.purple_flag_memo);
                Ok((!order.is_urgent(), q.paid.0, q.id.clone()))
            })
            .collect::<Result<_, TestCaseError>>()?;
        model.sort();
        let want: Vec<String> = model.into_iter().map(|(.., id)| id).collect();
        prop_assert_eq!(got, want);
    }
}
