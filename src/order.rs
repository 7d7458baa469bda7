//! The order as the Shop API v1 contract defines it, and the rules the warehouse
//! applies to it.
//!
//! `Order` is the *validated* shape: it only ever comes out of
//! [`validate::validate`], so code downstream (store, render, bench) can rely on
//! every field the contract requires being present and well-formed. Raw JSON from
//! a shop or a file never reaches those modules as anything but a `serde_json::Value`.

pub mod validate;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A seller flag (旗帜). Its meaning is a shop convention; the station's pull and
/// done flags are configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flag {
    None,
    Red,
    Yellow,
    Green,
    Blue,
    Purple,
}

impl Flag {
    pub const ALL: [Flag; 6] = [
        Flag::None,
        Flag::Red,
        Flag::Yellow,
        Flag::Green,
        Flag::Blue,
        Flag::Purple,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Flag::None => "none",
            Flag::Red => "red",
            Flag::Yellow => "yellow",
            Flag::Green => "green",
            Flag::Blue => "blue",
            Flag::Purple => "purple",
        }
    }

    pub fn parse(s: &str) -> Option<Flag> {
        Flag::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Order status on the shop (等待买家付款, 买家已付款, 卖家已发货, 交易成功, 交易关闭).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    AwaitingPayment,
    Paid,
    Shipped,
    Completed,
    Closed,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::AwaitingPayment,
        Status::Paid,
        Status::Shipped,
        Status::Completed,
        Status::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::AwaitingPayment => "awaiting_payment",
            Status::Paid => "paid",
            Status::Shipped => "shipped",
            Status::Completed => "completed",
            Status::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refund {
    None,
    Requested,
    Refunded,
}

impl Refund {
    pub const ALL: [Refund; 3] = [Refund::None, Refund::Requested, Refund::Refunded];

    pub fn as_str(self) -> &'static str {
        match self {
            Refund::None => "none",
            Refund::Requested => "requested",
            Refund::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Refund> {
        Refund::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Standard,
    Express,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub version: u64,
    pub status: Status,
    pub refund: Refund,
    pub flag: Flag,
    pub created_at: DateTime<FixedOffset>,
    pub paid_at: Option<DateTime<FixedOffset>>,
    pub updated_at: DateTime<FixedOffset>,
    pub buyer: Buyer,
    pub recipient: Recipient,
    pub items: Vec<Item>,
    #[serde(default)]
    pub shipping: Shipping,
    pub memos: Vec<Memo>,
    #[serde(default)]
    pub options: Options,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Buyer {
    pub nick: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recipient {
    pub name: String,
    pub phone: String,
    pub province: String,
    pub city: String,
    #[serde(default)]
    pub district: Option<String>,
    pub address: String,
    #[serde(default)]
    pub postcode: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub sku: String,
    pub title: String,
    #[serde(default)]
    pub spec: Option<String>,
    pub qty: u32,
    /// Yuan as a decimal string with at most two decimals ("12.50"), exactly as
    /// the shop sent it; money is never a float here.
    pub unit_price: String,
    #[serde(default)]
    pub barcode: Option<String>,
    #[serde(default)]
    pub weight_g: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Shipping {
    #[serde(default)]
    pub courier: Option<String>,
    #[serde(default)]
    pub service: Option<Service>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Memo {
    pub text: String,
    pub author: String,
    pub at: DateTime<FixedOffset>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<Flag>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Options {
    #[serde(default)]
    pub hide_prices: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gift_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_title: Option<String>,
}

impl Order {
    /// The memo that counts: the newest `at` wins; on equal times the later one
    /// in the list (memos arrive oldest first).
    pub fn effective_memo(&self) -> Option<&Memo> {
        // `max_by_key` returns the last maximum, which is exactly the tie rule.
        self.memos.iter().max_by_key(|m| m.at)
    }

    /// Whether the order is urgent (加急): express service, or a purple flag on
    /// the order or on its effective memo.
    pub fn is_urgent(&self) -> bool {
        self.shipping.service == Some(Service::Express)
            || self.flag == Flag::Purple
            || self.effective_memo().and_then(|m| m.flag) == Some(Flag::Purple)
    }

    /// Whether the slip must show no prices: the shop's `hide_prices`, or the
    /// buyer's message or the effective memo asking for it (a gift: "送人，不要
    ///价格", or the tag "#无价格").
    pub fn wants_no_prices(&self) -> bool {
        const ASKS: [&str; 6] = [
            "不要价格",
            "不显示价格",
            "不要显示价格",
            "隐藏价格",
            "无价格",
            "不放价格",
        ];
        let asks = |t: &str| ASKS.iter().any(|w| t.contains(w));
        self.options.hide_prices
            || self.buyer.message.as_deref().is_some_and(asks)
            || self.effective_memo().is_some_and(|m| asks(&m.text))
    }

    pub fn total_qty(&self) -> u64 {
        self.items.iter().map(|i| u64::from(i.qty)).sum()
    }
}

/// Shop text made safe for a terminal: C0/C1 controls (but newline and tab)
/// and bidi formatting characters are shown escaped (`\u{1b}`), so an order
/// field can neither send escape sequences to the operator's terminal (clear
/// the screen, retitle the window, recolour) nor reorder a line it is on.
pub fn terminal_safe(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_safe_escapes_controls_and_bidi_only() {
        assert_eq!(terminal_safe("文三路 1 号\n\tB"), "文三路 1 号\n\tB");
        assert_eq!(
            terminal_safe("a\u{1b}[2Jb\u{7}\r\u{0}\u{9b}c\u{202e}d"),
            "a\\u{1b}[2Jb\\u{7}\\u{d}\\u{0}\\u{9b}c\\u{202e}d"
        );
    }

    fn memo(text: &str, at: &str) -> Memo {
        Memo {
            text: text.into(),
            author: "小王".into(),
            at: DateTime::parse_from_rfc3339(at).unwrap(),
            flag: None,
        }
    }

    #[test]
    fn newest_memo_wins_and_ties_go_to_the_later_one() {
        let memos = [
            memo("发顺丰", "2026-11-11T03:38:05+08:00"),
            memo("改发中通", "2026-11-11T04:04:42+08:00"),
            memo("旧的", "2026-11-10T04:04:42+08:00"),
            // Same instant as the second, written in another offset: later in the list wins.
            memo("同时, 后写", "2026-11-10T20:04:42+00:00"),
        ];
        let mut order = fixture_order();
        order.memos = memos.to_vec();
        assert_eq!(order.effective_memo().unwrap().text, "同时, 后写");
        // Order in the list does not matter otherwise: the newest instant wins.
        order.memos.reverse();
        assert_eq!(order.effective_memo().unwrap().text, "改发中通");
        order.memos.clear();
        assert!(order.effective_memo().is_none());
    }

    /// The first order of the repository's fixtures, as the shop sends it.
    fn fixture_order() -> Order {
        let all: Vec<serde_json::Value> =
            serde_json::from_str(include_str!("../tests/data/orders-200.json")).unwrap();
        serde_json::from_value(all[0].clone()).unwrap()
    }

    #[test]
    fn only_the_effective_memo_makes_an_order_urgent() {
        let mut order = fixture_order();
        order.flag = Flag::Yellow;
        order.shipping.service = None;
        let mut urgent = memo("加急", "2026-11-11T03:00:00+08:00");
        urgent.flag = Some(Flag::Purple);
        order.memos = vec![urgent.clone()];
        assert!(order.is_urgent());
        // A newer memo without the purple flag overrides it.
        order
            .memos
            .push(memo("不急了", "2026-11-11T05:00:00+08:00"));
        assert!(!order.is_urgent());
        // An older one does not.
        order.memos = vec![memo("旧的", "2026-11-10T05:00:00+08:00"), urgent];
        assert!(order.is_urgent());
    }
}
