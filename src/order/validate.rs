//! Checking one incoming order, as raw JSON, against the Shop API v1 contract.
//!
//! The walker reports *every* broken field with its JSON path ("items[2].qty must
//! be ≥ 1, got 0"), then the order is decoded into the typed [`Order`]. Validation
//! never panics and never gives up on the batch: it returns a [`Rejection`] that
//! the store keeps and `station status` lists.

use super::{Flag, Order, Refund, Status};
use chrono::DateTime;
use serde_json::{Map, Value};
use std::fmt::Write as _;

/// Why an incoming order was set aside. `key` is the order id when the payload
/// carried a usable one, else a position ("page 3 position 17").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub key: String,
    /// The version the payload claimed, if it had a readable one.
    pub version: Option<u64>,
    /// True when `key` is a position, not an id: the payload had no usable id.
    pub by_position: bool,
    /// One line naming the order and every broken field.
    pub reason: String,
}

/// Where an order came from, for errors about payloads without a usable id.
#[derive(Clone, Copy, Debug)]
pub enum Origin<'a> {
    /// List page (1-based) and position within it (1-based).
    Page(u32, usize),
    /// A file and the 1-based record number within it.
    Record(&'a str, usize),
    /// A single order read by id (`GET /v1/orders/{id}`).
    Direct,
}

impl std::fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Page(p, i) => write!(f, "page {p} position {i}"),
            Origin::Record(file, i) => write!(f, "{file} record {i}"),
            Origin::Direct => f.write_str("a direct read"),
        }
    }
}

pub const MAX_ID_LEN: usize = 64;

pub fn is_valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A decimal string in yuan with at most two decimals: `^[0-9]+(\.[0-9]{1,2})?$`.
pub fn is_valid_price(s: &str) -> bool {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| (1..=2).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()))
}

/// Validate one raw order. `Ok` carries the typed order; `Err` a rejection whose
/// reason names the order and each broken field.
pub fn validate(raw: &Value, origin: Origin<'_>) -> Result<Order, Rejection> {
    let Some(obj) = raw.as_object() else {
        return Err(Rejection {
            key: origin.to_string(),
            version: None,
            by_position: true,
            reason: format!("{origin}: not a JSON object (got {})", kind(raw)),
        });
    };
    let mut c = Checker::default();
    c.check_order(obj);
    let raw_id = obj.get("id").and_then(Value::as_str);
    let (key, by_position) = match raw_id {
        Some(id) if !id.is_empty() && id.len() <= 256 => (id.to_string(), false),
        _ => (origin.to_string(), true),
    };
    let version = obj.get("version").and_then(Value::as_u64);
    let who = match raw_id {
        Some(id) if is_valid_id(id) => format!("order {id}"),
        Some(id) if !id.is_empty() && id.len() <= 256 => format!("order {id:?}"),
        _ => format!("order at {origin}"),
    };
    if c.errors.is_empty() {
        match serde_json::from_value::<Order>(raw.clone()) {
            Ok(order) => return Ok(order),
            // The walker should have caught everything serde refuses; if it did
            // not, still reject with serde's own words rather than lose the order.
            Err(e) => c.errors.push(format!("does not decode: {e}")),
        }
    }
    Err(Rejection {
        key,
        version,
        by_position,
        reason: format!("{who}: {}", c.errors.join("; ")),
    })
}

#[derive(Default)]
struct Checker {
    errors: Vec<String>,
}

impl Checker {
    fn err(&mut self, path: &str, problem: impl std::fmt::Display) {
        self.errors.push(format!("{path} {problem}"));
    }

    fn check_order(&mut self, o: &Map<String, Value>) {
        match o.get("id") {
            Some(Value::String(id)) if is_valid_id(id) => {}
            Some(Value::String(id)) => self.err(
                "id",
                format!("must be 1..64 characters of A-Z a-z 0-9 _ -, got {id:?}"),
            ),
            v => self.want(v, "id", "a string"),
        }
        match o.get("version") {
            Some(v) if v.as_u64().is_some_and(|n| n >= 1) => {}
            Some(v) if v.is_number() => {
                self.err("version", format!("must be an integer ≥ 1, got {v}"))
            }
            v => self.want(v, "version", "an integer ≥ 1"),
        }
        self.enumerated(
            o.get("status"),
            "status",
            |s| Status::parse(s).is_some(),
            "awaiting_payment, paid, shipped, completed, closed",
        );
        self.enumerated(
            o.get("refund"),
            "refund",
            |s| Refund::parse(s).is_some(),
            "none, requested, refunded",
        );
        self.flag(o.get("flag"), "flag", false);
        self.time(o.get("created_at"), "created_at", false);
        self.time(o.get("updated_at"), "updated_at", false);
        self.time(o.get("paid_at"), "paid_at", true);
        if o.get("status").and_then(Value::as_str) == Some("paid")
            && o.get("paid_at").is_some_and(Value::is_null)
        {
            self.err("paid_at", "must be set for a paid order, got null");
        }

        if let Some(buyer) = self.object(o.get("buyer"), "buyer", true) {
            self.string(buyer.get("nick"), "buyer.nick", false, false);
            self.string(buyer.get("message"), "buyer.message", true, true);
        }
        if let Some(r) = self.object(o.get("recipient"), "recipient", true) {
            for field in ["name", "phone", "province", "city", "address"] {
                self.string(r.get(field), &format!("recipient.{field}"), false, false);
            }
            self.string(r.get("district"), "recipient.district", true, true);
            self.string(r.get("postcode"), "recipient.postcode", true, true);
        }
        match o.get("items") {
            Some(Value::Array(items)) if items.is_empty() => {
                self.err("items", "must hold at least one item, got []")
            }
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    self.item(item, &format!("items[{i}]"));
                }
            }
            v => self.want(v, "items", "an array of items"),
        }
        if let Some(s) = self.object(o.get("shipping"), "shipping", false) {
            self.string(s.get("courier"), "shipping.courier", true, true);
            match s.get("service") {
                None | Some(Value::Null) => {}
                Some(Value::String(v)) if v == "standard" || v == "express" => {}
                v => self.want(v, "shipping.service", "one of standard, express, null"),
            }
        }
        match o.get("memos") {
            Some(Value::Array(memos)) => {
                for (i, m) in memos.iter().enumerate() {
                    let path = format!("memos[{i}]");
                    if let Some(m) = self.object(Some(m), &path, true) {
                        self.string(m.get("text"), &format!("{path}.text"), false, true);
                        self.string(m.get("author"), &format!("{path}.author"), false, true);
                        self.time(m.get("at"), &format!("{path}.at"), false);
                        if m.contains_key("flag") {
                            self.flag(m.get("flag"), &format!("{path}.flag"), false);
                        }
                    }
                }
            }
            v => self.want(v, "memos", "an array of memos"),
        }
        if let Some(opts) = self.object(o.get("options"), "options", false) {
            match opts.get("hide_prices") {
                None | Some(Value::Bool(_)) => {}
                v => self.want(v, "options.hide_prices", "true or false"),
            }
            self.string(opts.get("gift_message"), "options.gift_message", true, true);
            self.string(
                opts.get("invoice_title"),
                "options.invoice_title",
                true,
                true,
            );
        }
    }

    fn item(&mut self, item: &Value, path: &str) {
        let Some(it) = self.object(Some(item), path, true) else {
            return;
        };
        self.string(it.get("sku"), &format!("{path}.sku"), false, false);
        self.string(it.get("title"), &format!("{path}.title"), false, true);
        self.string(it.get("spec"), &format!("{path}.spec"), true, true);
        self.string(it.get("barcode"), &format!("{path}.barcode"), true, true);
        match it.get("qty") {
            // u32: anything a warehouse could pack; 2^31 and above is a data error.
            Some(v)
                if v.as_u64()
                    .is_some_and(|n| n >= 1 && n <= u64::from(i32::MAX as u32)) => {}
            Some(v) if v.as_u64().is_some_and(|n| n >= 1) => {
                self.err(&format!("{path}.qty"), format!("must be < 2^31, got {v}"))
            }
            Some(v) if v.is_i64() => {
                self.err(&format!("{path}.qty"), format!("must be ≥ 1, got {v}"))
            }
            v => self.want(v, &format!("{path}.qty"), "an integer ≥ 1"),
        }
        match it.get("unit_price") {
            Some(Value::String(p)) if is_valid_price(p) => {}
            Some(Value::String(p)) => self.err(
                &format!("{path}.unit_price"),
                format!(
                    "must be a yuan amount like \"12.50\" (digits, at most 2 decimals), got {p:?}"
                ),
            ),
            v => self.want(
                v,
                &format!("{path}.unit_price"),
                "a decimal string like \"12.50\"",
            ),
        }
        match it.get("weight_g") {
            None | Some(Value::Null) => {}
            Some(v) if v.as_u64().is_some() => {}
            v => self.want(v, &format!("{path}.weight_g"), "an integer ≥ 0 or null"),
        }
    }

    /// Report a missing or wrongly typed field.
    fn want(&mut self, v: Option<&Value>, path: &str, what: &str) {
        match v {
            None => self.err(path, format!("is required ({what})")),
            Some(v) => self.err(path, format!("must be {what}, got {}", show(v))),
        }
    }

    fn object<'v>(
        &mut self,
        v: Option<&'v Value>,
        path: &str,
        required: bool,
    ) -> Option<&'v Map<String, Value>> {
        match v {
            Some(Value::Object(m)) => Some(m),
            None if !required => None,
            v => {
                self.want(v, path, "an object");
                None
            }
        }
    }

    fn string(&mut self, v: Option<&Value>, path: &str, nullable: bool, may_be_empty: bool) {
        match v {
            None | Some(Value::Null) if nullable => {}
            Some(Value::String(s)) if may_be_empty || !s.trim().is_empty() => {}
            Some(Value::String(_)) => self.err(path, "must not be empty"),
            v => self.want(
                v,
                path,
                if nullable {
                    "a string or null"
                } else {
                    "a string"
                },
            ),
        }
    }

    fn enumerated(
        &mut self,
        v: Option<&Value>,
        path: &str,
        ok: impl Fn(&str) -> bool,
        one_of: &str,
    ) {
        match v {
            Some(Value::String(s)) if ok(s) => {}
            v => self.want(v, path, &format!("one of {one_of}")),
        }
    }

    fn flag(&mut self, v: Option<&Value>, path: &str, nullable: bool) {
        if nullable && v.is_none_or(Value::is_null) {
            return;
        }
        self.enumerated(
            v,
            path,
            |s| Flag::parse(s).is_some(),
            "none, red, yellow, green, blue, purple",
        );
    }

    fn time(&mut self, v: Option<&Value>, path: &str, nullable: bool) {
        match v {
            Some(Value::Null) if nullable => {}
            Some(Value::String(s)) if DateTime::parse_from_rfc3339(s).is_ok() => {}
            v => self.want(
                v,
                path,
                "an RFC 3339 time with offset like \"2026-11-11T00:12:16+08:00\"",
            ),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A short rendering of an offending value for an error message.
fn show(v: &Value) -> String {
    let mut s = String::new();
    match v {
        Value::Object(_) | Value::Array(_) => s.push_str(kind(v)),
        other => {
            let text = other.to_string();
            let cut: String = text.chars().take(60).collect();
            let _ = write!(s, "{cut}");
            if cut.len() < text.len() {
                s.push('…');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({
            "id": "T123", "version": 2, "status": "paid", "refund": "none", "flag": "yellow",
            "created_at": "2026-11-11T00:00:00+08:00", "paid_at": "2026-11-11T00:01:00+08:00",
            "updated_at": "2026-11-11T00:02:00+08:00",
            "buyer": {"nick": "小太阳☀️"},
            "recipient": {"name": "王小明", "phone": "13812345678", "province": "浙江省",
                          "city": "杭州市", "district": "西湖区", "address": "文三路1号"},
            "items": [{"sku": "A", "title": "伞", "qty": 1, "unit_price": "45.00"},
                      {"sku": "B", "title": "笔", "qty": 2, "unit_price": "8"},
                      {"sku": "C", "title": "本", "qty": 1, "unit_price": "128.0"}],
            "shipping": {"courier": null, "service": "standard"},
            "memos": [], "options": {"hide_prices": false}
        })
    }

    fn reason(v: Value) -> String {
        validate(&v, Origin::Page(1, 1)).unwrap_err().reason
    }

    #[test]
    fn a_good_order_decodes() {
        let o = validate(&good(), Origin::Page(1, 1)).unwrap();
        assert_eq!(o.id, "T123");
        assert_eq!(o.items[1].qty, 2);
    }

    #[test]
    fn reasons_name_the_order_and_the_field() {
        let mut v = good();
        v["items"][2]["qty"] = json!(0);
        assert_eq!(reason(v), "order T123: items[2].qty must be ≥ 1, got 0");

        let mut v = good();
        v["items"][0]["unit_price"] = json!(39.9);
        assert!(reason(v).contains("items[0].unit_price must be a decimal string"));

        let mut v = good();
        v["items"][0]["unit_price"] = json!("12.345");
        assert!(reason(v).contains("items[0].unit_price must be a yuan amount"));

        let mut v = good();
        v["items"][0]["unit_price"] = json!("-45.00");
        assert!(reason(v).contains("\"-45.00\""));

        let mut v = good();
        v["recipient"]["phone"] = json!(13812345678u64);
        assert_eq!(
            reason(v),
            "order T123: recipient.phone must be a string, got 13812345678"
        );

        let mut v = good();
        v.as_object_mut().unwrap().remove("recipient");
        assert!(reason(v).contains("recipient is required"));

        let mut v = good();
        v["flag"] = json!("orange");
        assert!(reason(v).contains("flag must be one of none, red"));

        let mut v = good();
        v["memos"] = json!([{"text": "x", "author": "小王", "at": "2026-11-11T00:00:00+08:00", "flag": "orange"}]);
        assert!(reason(v).contains("memos[0].flag"));

        let mut v = good();
        v["items"] = json!([]);
        assert!(reason(v).contains("items must hold at least one item"));

        let mut v = good();
        v["items"][0]["qty"] = json!(2147483648u64);
        assert!(reason(v).contains("items[0].qty"));
    }

    #[test]
    fn bad_ids_are_keyed_by_their_text_and_position_when_missing() {
        let mut v = good();
        v["id"] = json!("bad/id#2333");
        let r = validate(&v, Origin::Page(1, 1)).unwrap_err();
        assert_eq!(r.key, "bad/id#2333");
        assert!(r.reason.starts_with("order \"bad/id#2333\": id must be"));

        let mut v = good();
        v.as_object_mut().unwrap().remove("id");
        let r = validate(&v, Origin::Page(3, 17)).unwrap_err();
        assert_eq!(r.key, "page 3 position 17");

        let r = validate(&json!("garbage"), Origin::Page(2, 5)).unwrap_err();
        assert_eq!(
            r.reason,
            "page 2 position 5: not a JSON object (got a string)"
        );
    }

    #[test]
    fn prices() {
        for ok in ["0", "0.00", "12.5", "128.0", "45.00"] {
            assert!(is_valid_price(ok), "{ok}");
        }
        for bad in ["", ".5", "1.", "12.345", "-1", "1e3", "１２", " 1", "1,00"] {
            assert!(!is_valid_price(bad), "{bad}");
        }
    }
}
