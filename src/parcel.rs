//! Merged parcels (合并发货): one buyer's orders to one recipient, queued in
//! one wave, shipped as one parcel under one tracking number.
//!
//! A parcel is its first order in shipping order (the *lead*), which holds
//! the tracking number, and the orders that ride with it (its *members*),
//! whose rows in the wave carry the lead's number. Nothing else records a
//! parcel: the store answers "which orders ship under number N" and "which
//! number does order X ship under" from the waves ([`crate::store::Store::parcel_members`],
//! [`crate::store::Store::parcel_of`]).
//!
//! Invariants:
//! - orders merge only with the same buyer, the same recipient (name, phone,
//!   province, city, district and address after [`normalize`]), the same
//!   courier and service, the same urgency, and only when printed together;
//! - a member holds no live number of its own while it rides in a parcel
//!   (planning voids one it had);
//! - write-back stays per order: each order gets its own shipment naming the
//!   parcel's number, its own flag and memo.

use crate::config::Courier;
use crate::order::Order;
use std::collections::HashMap;
use unicode_normalization::UnicodeNormalization as _;

/// Text as the merge compares it: Unicode NFKC (full-width ＡＢＣ１２３ as
/// half-width, the ideographic space as a space), then no spaces at all.
pub fn normalize(s: &str) -> String {
    s.nfkc().filter(|c| !c.is_whitespace()).collect()
}

/// What orders must share to become one parcel.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MergeKey {
    buyer: String,
    name: String,
    phone: String,
    address: [String; 4],
    courier: String,
    service: Option<crate::order::Service>,
    urgent: bool,
}

impl MergeKey {
    pub fn of(order: &Order, courier: &str) -> MergeKey {
        let r = &order.recipient;
        MergeKey {
            buyer: order.buyer.nick.clone(),
            name: normalize(&r.name),
            phone: normalize(&r.phone).replace('-', ""),
            address: [
                normalize(&r.province),
                normalize(&r.city),
                normalize(r.district.as_deref().unwrap_or("")),
                normalize(&r.address),
            ],
            courier: courier.to_string(),
            service: order.shipping.service,
            urgent: order.is_urgent(),
        }
    }
}

/// Orders of a wave, grouped: each group is one parcel, its lead first; the
/// groups keep the lead's place in shipping order, the members follow their
/// lead. With `merge` off every order is a parcel of its own.
pub fn group<'c>(
    orders: Vec<(Order, &'c Courier)>,
    merge: bool,
) -> Vec<(Vec<String>, &'c Courier)> {
    let mut groups: Vec<(Vec<String>, &'c Courier)> = Vec::with_capacity(orders.len());
    let mut by_key: HashMap<MergeKey, usize> = HashMap::new();
    for (order, courier) in orders {
        if merge {
            let key = MergeKey::of(&order, &courier.code);
            if let Some(&g) = by_key.get(&key) {
                groups[g].0.push(order.id);
                continue;
            }
            by_key.insert(key, groups.len());
        }
        groups.push((vec![order.id], courier));
    }
    groups
}

/// The parcel as one order for its documents: the lead's recipient and
/// memos, every order's items in order; prices hidden if any order hides them.
pub fn combined(lead: &Order, members: &[&Order]) -> Order {
    let mut all = lead.clone();
    for m in members {
        all.items.extend(m.items.iter().cloned());
        all.options.hide_prices |= m.options.hide_prices;
    }
    all
}

pub use crate::render::layout::context::MergedOrder;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_width_and_spaces_do_not_split_a_recipient() {
        assert_eq!(
            normalize("文化路１７３号 阳光花园\u{3000}２５栋"),
            "文化路173号阳光花园25栋"
        );
        assert_eq!(normalize("Ａｐｔ．　３"), "Apt.3");
    }
}
