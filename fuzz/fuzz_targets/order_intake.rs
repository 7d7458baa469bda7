//! Arbitrary bytes through the path a pulled or imported order takes: JSON
//! (one value, an array, or JSON Lines, as `station import` reads a file) →
//! `order::validate` → `intake::decide` against every stored state, then the
//! per-document context a waybill is rendered from (masking, prices, memos).
//! Nothing may panic; a rejection must name the order or its position; a
//! valid order must survive the JSON round trip the store relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use station::config::Sender;
use station::intake::{self, GONE_REASON, State, Stored};
use station::order::validate::{Origin, is_valid_id, validate};
use station::order::{Flag, Order};
use station::render::layout::{DocInput, context, manifest_context};
use station::render::mask::MaskLevel;

fn records(text: &str) -> Vec<Value> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(values)) => values,
        Ok(one) => vec![one],
        Err(_) => text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
    }
}

fn stored_states(first: &Order) -> Vec<Stored> {
    let mut out = Vec::new();
    for state in State::ALL {
        for reason in [
            None,
            Some(GONE_REASON.to_string()),
            Some("flag moved".into()),
        ] {
            for version in [first.version, first.version.saturating_sub(1)] {
                out.push(Stored {
                    version,
                    state,
                    printed: state.is_printed().then(|| first.clone()),
                    reason: reason.clone(),
                    handed_over: false,
                    exception: None,
                });
            }
        }
    }
    out
}

fn check_context(order: &Order) {
    let sender = Sender {
        name: "仓库".into(),
        phone: "021-12345678".into(),
        address: "上海市浦东新区测试路1号".into(),
    };
    for mask in [MaskLevel::Standard, MaskLevel::Strict] {
        let mut input = DocInput::new(order, &sender, "测试小店", "2026-11-11 09:30".into());
        input.tracking_no = Some("9910000001");
        input.courier_code = Some("ZTO");
        input.courier_name = Some("中通");
        input.mask = mask;
        let doc = context(&input);
        // The waybill context must serialise (minijinja renders from it).
        serde_json::to_value(&doc).expect("context serialises");
        let _ = manifest_context(std::slice::from_ref(&input));
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut valid: Vec<Order> = Vec::new();
    for (n, raw) in records(text).iter().enumerate().take(16) {
        let origin = Origin::Record("fuzz.jsonl", n + 1);
        match validate(raw, origin) {
            Ok(order) => {
                // The store keeps the order as JSON and reads it back.
                let back: Order = serde_json::from_value(serde_json::to_value(&order).unwrap())
                    .expect("a valid order round-trips through JSON");
                assert_eq!(back, order);
                valid.push(order);
            }
            Err(r) => {
                assert!(!r.reason.is_empty());
                if r.by_position {
                    assert!(r.reason.contains(&r.key), "{r:?}");
                } else if is_valid_id(&r.key) {
                    assert!(r.reason.contains(&r.key), "{r:?}");
                }
            }
        }
    }
    let Some(first) = valid.first() else {
        return;
    };
    let states = stored_states(first);
    for order in &valid {
        let _ = order.effective_memo();
        let _ = order.is_urgent();
        let _ = order.total_qty();
        let _ = intake::intercept_reason(order);
        let _ = intake::label_changes(first, order);
        for flag in [Flag::Yellow, Flag::Purple] {
            let _ = intake::decide(None, order, flag);
            for stored in &states {
                let verdict = intake::decide(Some(stored), order, flag);
                if order.version < stored.version {
                    assert_eq!(
                        verdict,
                        intake::Verdict::Stale,
                        "an older version never wins"
                    );
                }
                if stored.state.has_left()
                    && let intake::Verdict::Store { state, .. } = &verdict
                {
                    assert_eq!(
                        *state, stored.state,
                        "a parcel that left is never re-marked"
                    );
                }
            }
        }
        check_context(order);
    }
});
