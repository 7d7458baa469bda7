//! Picking (配货): a wave's pick list (拣货单) and slots (格位) for sorting
//! after a batch pick (二次分拣).
//!
//! A wave's orders are picked together: the pick list sums each SKU over the
//! wave and sorts the lines by shelf so the walk is one pass; unknown SKUs go
//! last under "未设库位". Every order of the wave has a slot, its place in the
//! wave (1…N), printed big on its slip and waybill; the pick list ends with
//! the slot table, so a picker with a cart of mixed goods puts each item in
//! its order's slot.
//!
//! *Invariants:* the pick list's quantities are exactly the sum of the wave's
//! printed orders' items; a slot number is the order's position in its wave
//! (`wave_orders.seq + 1`), so a reprint or a resumed wave keeps it.

use crate::config::Config;
use crate::order::Order;
use crate::render::layout::context::{PickRow, PicklistContext, SlotRow};
use anyhow::{Context, Result};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

/// The shelf of a SKU without one.
pub const NO_LOCATION: &str = "未设库位";

/// Where SKUs are shelved: exact SKUs, then the longest matching prefix.
#[derive(Clone, Debug, Default)]
pub struct Locations {
    exact: HashMap<String, String>,
    /// Longest first.
    prefixes: Vec<(String, String)>,
}

impl Locations {
    /// From `[[locations]]` and `[picking] locations_csv` (the entries win for the same SKU).
    pub fn from_config(config: &Config) -> Result<Locations> {
        let mut l = Locations::default();
        let csv = config.picking.locations_csv.trim();
        if !csv.is_empty() {
            let text = std::fs::read_to_string(csv)
                .with_context(|| format!("picking.locations_csv: cannot read {csv}"))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim().trim_start_matches('\u{feff}');
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let Some((sku, location)) = line.split_once(',') else {
                    anyhow::bail!(crate::error::UsageError(format!(
                        "{csv}:{}: expected `sku,location`, got {line:?}",
                        n + 1
                    )));
                };
                let (sku, location) = (
                    sku.trim().trim_matches('"'),
                    location.trim().trim_matches('"'),
                );
                if n == 0 && sku.eq_ignore_ascii_case("sku") {
                    continue;
                }
                l.exact.insert(sku.to_string(), location.to_string());
            }
        }
        for e in &config.locations {
            match (e.sku.trim(), e.prefix.trim()) {
                (sku, _) if !sku.is_empty() => {
                    l.exact.insert(sku.to_string(), e.location.clone());
                }
                (_, prefix) if !prefix.is_empty() => {
                    l.prefixes.push((prefix.to_string(), e.location.clone()))
                }
                _ => anyhow::bail!(crate::error::UsageError(format!(
                    "[[locations]] for {:?} needs `sku` (one SKU) or `prefix` (every SKU starting with it)",
                    e.location
                ))),
            }
        }
        l.prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        Ok(l)
    }

    pub fn of(&self, sku: &str) -> Option<&str> {
        self.exact.get(sku).map(String::as_str).or_else(|| {
            self.prefixes
                .iter()
                .find(|(p, _)| sku.starts_with(p.as_str()))
                .map(|(_, l)| l.as_str())
        })
    }
}

/// "A-03-2" before "A-10-1": digits compare as numbers, the rest as text.
pub fn shelf_order(a: &str, b: &str) -> Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let mut digit = None;
        for (i, c) in s.char_indices() {
            let d = c.is_ascii_digit();
            if digit.is_some_and(|x| x != d) {
                out.push((digit.unwrap_or(false), &s[start..i]));
                start = i;
            }
            digit = Some(d);
        }
        if start < s.len() {
            out.push((digit.unwrap_or(false), &s[start..]));
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(&cb) {
        let o = match (x, y) {
            ((true, p), (true, q)) => {
                let (p, q) = (p.trim_start_matches('0'), q.trim_start_matches('0'));
                p.len().cmp(&q.len()).then_with(|| p.cmp(q))
            }
            ((_, p), (_, q)) => p.cmp(q),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    ca.len().cmp(&cb.len()).then_with(|| a.cmp(b))
}

/// A wave's pick list, built one order at a time (a 10,000-order wave's
/// orders are never all held at once).
pub struct PickList<'l> {
    locations: &'l Locations,
    /// SKU → its line, and the last order (by position) counted for it.
    lines: BTreeMap<String, (PickRow, usize)>,
    slots: Vec<SlotRow>,
    total_qty: u64,
}

impl<'l> PickList<'l> {
    pub fn new(locations: &'l Locations) -> PickList<'l> {
        PickList {
            locations,
            lines: BTreeMap::new(),
            slots: Vec::new(),
            total_qty: 0,
        }
    }

    /// Add one printed order of the wave, with its slot and number.
    pub fn add(&mut self, slot: u64, order: &Order, tracking_no: &str) {
        let n = self.slots.len();
        for item in &order.items {
            let qty = u64::from(item.qty);
            self.total_qty += qty;
            let (row, last) = self.lines.entry(item.sku.clone()).or_insert_with(|| {
                (
                    PickRow {
                        location: self
                            .locations
                            .of(&item.sku)
                            .unwrap_or(NO_LOCATION)
                            .to_string(),
                        sku: item.sku.clone(),
                        title: item.title.clone(),
                        spec: item.spec.clone().unwrap_or_default(),
                        barcode: item
                            .barcode
                            .clone()
                            .filter(|b| !b.trim().is_empty())
                            .unwrap_or_else(|| item.sku.clone()),
                        qty: 0,
                        orders: 0,
                    },
                    usize::MAX,
                )
            });
            row.qty += qty;
            // An order holding the SKU on two lines counts once.
            if *last != n {
                row.orders += 1;
                *last = n;
            }
        }
        self.slots.push(SlotRow {
            slot,
            order_id: order.id.clone(),
            tracking_no: tracking_no.to_string(),
            items: crate::render::layout::context::item_summary(&order.items),
            total_qty: order.total_qty(),
        });
    }

    /// The lines in walking order (shelves, "A-3" before "A-10", unknown
    /// last), the slot table by slot.
    pub fn finish(self, wave: &str, printed_at: String, shop_name: &str) -> PicklistContext {
        let mut lines: Vec<PickRow> = self.lines.into_values().map(|(r, _)| r).collect();
        lines.sort_by(|a, b| {
            let unknown = |r: &PickRow| r.location == NO_LOCATION;
            unknown(a)
                .cmp(&unknown(b))
                .then_with(|| shelf_order(&a.location, &b.location))
                .then_with(|| a.sku.cmp(&b.sku))
        });
        let mut slots = self.slots;
        slots.sort_by_key(|s| s.slot);
        PicklistContext {
            wave: wave.into(),
            printed_at,
            shop_name: shop_name.into(),
            part: "lines".into(),
            rows: Vec::new(),
            line_count: lines.len(),
            order_count: slots.len(),
            total_qty: self.total_qty,
            lines,
            slots,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shelves_sort_as_a_picker_walks() {
        let mut v = vec!["B-01", "A-10-1", "A-03-2", "A-3-10", "A-03-1"];
        v.sort_by(|a, b| shelf_order(a, b));
        assert_eq!(v, ["A-03-1", "A-03-2", "A-3-10", "A-10-1", "B-01"]);
    }

    #[test]
    fn exact_skus_win_over_the_longest_prefix() {
        let mut config = Config::default();
        for (sku, prefix, location) in [
            ("", "HM-", "B-01"),
            ("", "HM-CA", "B-02"),
            ("HM-CABLE", "", "C-09"),
        ] {
            config.locations.push(crate::config::Location {
                sku: sku.into(),
                prefix: prefix.into(),
                location: location.into(),
            });
        }
        let l = Locations::from_config(&config).unwrap();
        assert_eq!(l.of("HM-CABLE"), Some("C-09"));
        assert_eq!(l.of("HM-CASE"), Some("B-02"));
        assert_eq!(l.of("HM-X"), Some("B-01"));
        assert_eq!(l.of("UMB"), None);
    }
}
