//! The rules for taking an order in, whether it came from `pull` or `import`.
//!
//! This module decides; it does not store. [`decide`] is a pure function of the
//! order as stored and the version that just arrived, so every rule below has a
//! unit test and the store only carries out the verdict in one transaction.
//!
//! The rules:
//! - a new order joins the queue when it is paid, has no refund, and carries the
//!   pull flag; a new order that does not is not stored at all;
//! - a newer version of an order not yet printed replaces it, and the order
//!   leaves the queue (or rejoins it) according to the same test;
//! - a newer version of an order already printed is compared with *what was
//!   printed*: refund, closing or no longer paid → **intercept** (拦截); recipient
//!   or items changed → **changed-after-print** (needs a new label); otherwise it
//!   stays printed. The mark is recomputed from (printed, newest), so a refund
//!   that is withdrawn clears the intercept again;
//! - an older or equal version never overwrites a newer one (pages overlap).

use crate::order::{Flag, Order, Refund, Status};
use std::fmt;

/// Where an order stands in the station.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Valid, paid, on the pull flag, not printed: waiting for a wave.
    Queued,
    /// Not printed and no longer eligible (flag moved, refund, closed, or its
    /// newest version was rejected). Kept for history; never printed as is.
    LeftQueue,
    Printed,
    /// Printed, then the recipient or items changed: the label is wrong.
    ChangedAfterPrint,
    /// Printed, then refunded, closed or no longer paid: do not ship.
    Intercept,
    /// Printed and verified at a packing bench; waits for the courier.
    Packed,
    /// Scanned into a closed handover batch: the courier has it. The shop's
    /// shipment and done flag wait in the outbox.
    HandedOver,
    /// Handed over, and the shop acknowledged the shipment and the done flag.
    Shipped,
    /// An item was missing at packing (缺货): set aside, its number voided, the
    /// shop told with the exception flag. Back on the pull flag, it queues again.
    OutOfStock,
}

impl State {
    pub const ALL: [State; 9] = [
        State::Queued,
        State::LeftQueue,
        State::Printed,
        State::ChangedAfterPrint,
        State::Intercept,
        State::Packed,
        State::HandedOver,
        State::Shipped,
        State::OutOfStock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::LeftQueue => "left_queue",
            State::Printed => "printed",
            State::ChangedAfterPrint => "changed_after_print",
            State::Intercept => "intercept",
            State::Packed => "packed",
            State::HandedOver => "handed_over",
            State::Shipped => "shipped",
            State::OutOfStock => "out_of_stock",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether a label exists for this order and the parcel is still in the
    /// warehouse (so a change on the shop must be able to stop it).
    pub fn is_printed(self) -> bool {
        matches!(
            self,
            State::Printed | State::ChangedAfterPrint | State::Intercept | State::Packed
        )
    }

    /// Whether the parcel has left with the courier: intake never re-marks it
    /// (a refund now is after-sales, or an outbox alert), and pull stops asking.
    pub fn has_left(self) -> bool {
        matches!(self, State::HandedOver | State::Shipped)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the store holds about an order, as far as the rules need it.
#[derive(Clone, Debug)]
pub struct Stored {
    pub version: u64,
    pub state: State,
    /// The order as it was when its label was printed (only when printed).
    pub printed: Option<Order>,
    /// Why the order is in its state, when it is not plain.
    pub reason: Option<String>,
    /// The parcel was in a closed handover (its write-back is queued): it has
    /// left, even when an outbox alert turned it into an intercept afterwards.
    /// The store reads it for intercepted orders.
    pub handed_over: bool,
    /// The newest out-of-stock exception flag sent for the order, if any.
    /// The store reads it for out-of-stock orders.
    pub exception: Option<ExceptionFlag>,
}

/// Where the shop's exception flag (缺货) for an out-of-stock order stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExceptionFlag {
    /// Not yet acknowledged by the shop.
    Pending,
    /// Acknowledged; the order's version on the shop after the flag, if known.
    Acknowledged { version: Option<u64> },
}

impl ExceptionFlag {
    /// Whether the flag still holds the order against a copy at `version`:
    /// a copy from before the shop had the flag (still on the pull flag) must
    /// not queue it again; customer service's change after it may.
    fn holds(self, version: u64) -> bool {
        match self {
            ExceptionFlag::Pending => true,
            ExceptionFlag::Acknowledged {
                version: Some(acked),
            } => version <= acked,
            ExceptionFlag::Acknowledged { version: None } => false,
        }
    }
}

/// The reason given to an order the shop answered 404 for. Such an order may
/// come back at the same version (a glitch, a wrong shop for one pull), so
/// an equal version is not stale for it.
pub const GONE_REASON: &str = "the shop no longer has this order (404)";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Store it with this state; `reason` says why when the state is not plain.
    Store {
        state: State,
        reason: Option<String>,
    },
    /// A new order that is not for the warehouse (yet): nothing to store.
    NotEligible { reason: String },
    /// An older or equal version of what is stored: ignore.
    Stale,
}

/// Why an order is not printable now, or `None` when it is.
pub fn ineligible(order: &Order, pull_flag: Flag) -> Option<String> {
    if order.status != Status::Paid {
        return Some(format!("status is {}", order.status.as_str()));
    }
    if order.refund != Refund::None {
        return Some(format!("refund {}", order.refund.as_str()));
    }
    if order.flag != pull_flag {
        return Some(format!("flag is {} (pull flag is {pull_flag})", order.flag));
    }
    None
}

pub fn decide(stored: Option<&Stored>, incoming: &Order, pull_flag: Flag) -> Verdict {
    let Some(stored) = stored else {
        return match ineligible(incoming, pull_flag) {
            None => Verdict::Store {
                state: State::Queued,
                reason: None,
            },
            Some(reason) => Verdict::NotEligible { reason },
        };
    };
    // A handed-over parcel that an outbox alert turned into an intercept has
    // left: a withdrawn refund must not make it "printed" again, nor overwrite
    // the alert's reason.
    if stored.state == State::Intercept && stored.handed_over {
        if incoming.version <= stored.version {
            return Verdict::Stale;
        }
        return Verdict::Store {
            state: stored.state,
            reason: stored.reason.clone(),
        };
    }
    let gone = stored.reason.as_deref() == Some(GONE_REASON);
    if incoming.version < stored.version || (incoming.version == stored.version && !gone) {
        return Verdict::Stale;
    }
    if stored.state.has_left() {
        return Verdict::Store {
            state: stored.state,
            reason: stored.reason.clone(),
        };
    }
    if stored.state == State::OutOfStock {
        // Set aside until customer service puts it back on the pull flag; a
        // refund or a closed order ends it.
        let held = stored.exception.is_some_and(|e| e.holds(incoming.version));
        return match ineligible(incoming, pull_flag) {
            None if held => Verdict::Store {
                state: State::OutOfStock,
                reason: stored.reason.clone(),
            },
            None => Verdict::Store {
                state: State::Queued,
                reason: None,
            },
            Some(_) if incoming.flag != pull_flag && intercept_reason(incoming).is_none() => {
                Verdict::Store {
                    state: State::OutOfStock,
                    reason: stored.reason.clone(),
                }
            }
            Some(reason) => Verdict::Store {
                state: State::LeftQueue,
                reason: Some(reason),
            },
        };
    }
    match (&stored.printed, stored.state.is_printed()) {
        (Some(printed), true) => {
            if let Some(reason) = intercept_reason(incoming) {
                Verdict::Store {
                    state: State::Intercept,
                    reason: Some(reason),
                }
            } else if let Some(changed) = label_changes(printed, incoming) {
                Verdict::Store {
                    state: State::ChangedAfterPrint,
                    reason: Some(format!(
                        "{changed} changed since v{} was printed",
                        printed.version
                    )),
                }
            } else {
                // Nothing on the label or in the parcel changed: a packed
                // parcel stays packed.
                let state = match stored.state {
                    State::Packed => State::Packed,
                    _ => State::Printed,
                };
                Verdict::Store {
                    state,
                    reason: None,
                }
            }
        }
        _ => match ineligible(incoming, pull_flag) {
            None => Verdict::Store {
                state: State::Queued,
                reason: None,
            },
            Some(reason) => Verdict::Store {
                state: State::LeftQueue,
                reason: Some(reason),
            },
        },
    }
}

/// Why a printed parcel must not leave (拦截), or `None`.
pub fn intercept_reason(order: &Order) -> Option<String> {
    match (order.status, order.refund) {
        (_, Refund::Requested) => Some("refund requested".into()),
        (_, Refund::Refunded) => Some("refunded".into()),
        (Status::Closed, _) => Some("order closed".into()),
        (Status::Paid, _) => None,
        (other, _) => Some(format!("no longer paid (status {})", other.as_str())),
    }
}

/// Which parts of the label or the parcel content differ, named for the operator.
pub fn label_changes(printed: &Order, now: &Order) -> Option<String> {
    let (a, b) = (&printed.recipient, &now.recipient);
    let mut parts = Vec::new();
    for (name, x, y) in [
        ("recipient.name", &a.name, &b.name),
        ("recipient.phone", &a.phone, &b.phone),
        ("recipient.province", &a.province, &b.province),
        ("recipient.city", &a.city, &b.city),
        ("recipient.address", &a.address, &b.address),
    ] {
        if x != y {
            parts.push(name);
        }
    }
    if a.district != b.district {
        parts.push("recipient.district");
    }
    if a.postcode != b.postcode {
        parts.push("recipient.postcode");
    }
    if printed.items != now.items {
        parts.push("items");
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::validate::{Origin, validate};

    fn order(version: u64) -> Order {
        let v = serde_json::json!({
            "id": "T1", "version": version, "status": "paid", "refund": "none", "flag": "yellow",
            "created_at": "2026-11-11T00:00:00+08:00", "paid_at": "2026-11-11T00:01:00+08:00",
            "updated_at": "2026-11-11T00:02:00+08:00", "buyer": {"nick": "n"},
            "recipient": {"name": "王小明", "phone": "13812345678", "province": "浙江省",
                          "city": "杭州市", "address": "文三路1号"},
            "items": [{"sku": "A", "title": "伞", "qty": 1, "unit_price": "45.00"}], "memos": []
        });
        validate(&v, Origin::Page(1, 1)).unwrap()
    }

    fn store(state: State, o: &Order) -> Verdict {
        let stored = Stored {
            version: 1,
            state,
            printed: state.is_printed().then(|| order(1)),
            reason: None,
            handed_over: false,
            exception: None,
        };
        decide(Some(&stored), o, Flag::Yellow)
    }

    #[test]
    fn new_orders_join_the_queue_only_when_eligible() {
        assert_eq!(
            decide(None, &order(1), Flag::Yellow),
            Verdict::Store {
                state: State::Queued,
                reason: None
            }
        );
        let mut o = order(1);
        o.flag = Flag::Red;
        assert_eq!(
            decide(None, &o, Flag::Yellow),
            Verdict::NotEligible {
                reason: "flag is red (pull flag is yellow)".into()
            }
        );
        // The pull flag is configuration.
        assert_eq!(
            decide(None, &o, Flag::Red),
            Verdict::Store {
                state: State::Queued,
                reason: None
            }
        );
    }

    #[test]
    fn an_order_the_shop_lost_comes_back_at_the_same_version() {
        let gone = Stored {
            version: 1,
            state: State::LeftQueue,
            printed: None,
            reason: Some(GONE_REASON.into()),
            handed_over: false,
            exception: None,
        };
        assert_eq!(
            decide(Some(&gone), &order(1), Flag::Yellow),
            Verdict::Store {
                state: State::Queued,
                reason: None
            }
        );
    }

    #[test]
    fn stale_versions_never_overwrite() {
        assert_eq!(store(State::Queued, &order(1)), Verdict::Stale);
        let stored = Stored {
            version: 5,
            state: State::Queued,
            printed: None,
            reason: None,
            handed_over: false,
            exception: None,
        };
        assert_eq!(
            decide(Some(&stored), &order(3), Flag::Yellow),
            Verdict::Stale
        );
    }

    #[test]
    fn unprinted_orders_follow_the_newest_version() {
        let mut o = order(2);
        o.flag = Flag::Red;
        assert_eq!(
            store(State::Queued, &o),
            Verdict::Store {
                state: State::LeftQueue,
                reason: Some("flag is red (pull flag is yellow)".into())
            }
        );
        o.flag = Flag::Yellow;
        assert_eq!(
            store(State::LeftQueue, &o),
            Verdict::Store {
                state: State::Queued,
                reason: None
            }
        );
        o.refund = Refund::Requested;
        assert!(matches!(
            store(State::Queued, &o),
            Verdict::Store {
                state: State::LeftQueue,
                ..
            }
        ));
    }

    #[test]
    fn printed_orders_are_marked_against_what_was_printed() {
        let mut o = order(2);
        o.recipient.address = "文三路2号".into();
        assert_eq!(
            store(State::Printed, &o),
            Verdict::Store {
                state: State::ChangedAfterPrint,
                reason: Some("recipient.address changed since v1 was printed".into())
            }
        );
        o.refund = Refund::Requested;
        assert_eq!(
            store(State::Printed, &o),
            Verdict::Store {
                state: State::Intercept,
                reason: Some("refund requested".into())
            }
        );
        let mut o = order(3);
        o.status = Status::Closed;
        assert!(matches!(
            store(State::ChangedAfterPrint, &o),
            Verdict::Store {
                state: State::Intercept,
                ..
            }
        ));
        // A memo or flag change does not touch the label.
        let mut o = order(4);
        o.flag = Flag::Red;
        assert_eq!(
            store(State::Printed, &o),
            Verdict::Store {
                state: State::Printed,
                reason: None
            }
        );
        // A withdrawn refund clears the intercept.
        assert_eq!(
            store(State::Intercept, &order(5)),
            Verdict::Store {
                state: State::Printed,
                reason: None
            }
        );
    }

    #[test]
    fn a_packed_parcel_stays_packed_until_its_label_or_payment_changes() {
        let mut memo_only = order(2);
        memo_only.flag = Flag::Red;
        assert_eq!(
            store(State::Packed, &memo_only),
            Verdict::Store {
                state: State::Packed,
                reason: None
            }
        );
        let mut refunded = order(3);
        refunded.refund = Refund::Requested;
        assert!(matches!(
            store(State::Packed, &refunded),
            Verdict::Store {
                state: State::Intercept,
                ..
            }
        ));
        let mut moved = order(3);
        moved.recipient.city = "宁波市".into();
        assert!(matches!(
            store(State::Packed, &moved),
            Verdict::Store {
                state: State::ChangedAfterPrint,
                ..
            }
        ));
    }

    #[test]
    fn a_parcel_that_left_is_never_re_marked() {
        // After write-back the shop says shipped and green; later a refund is after-sales.
        let mut o = order(5);
        o.status = Status::Shipped;
        o.refund = Refund::Requested;
        for state in [State::HandedOver, State::Shipped] {
            assert_eq!(
                store(state, &o),
                Verdict::Store {
                    state,
                    reason: None
                }
            );
        }
    }

    #[test]
    fn a_handed_over_parcel_turned_intercept_keeps_its_alert() {
        let stored = Stored {
            version: 4,
            state: State::Intercept,
            printed: Some(order(1)),
            reason: Some("write-back alert: refund requested".into()),
            handed_over: true,
            exception: None,
        };
        // The refund withdrawn on the shop (v5, paid, yellow): still the alert.
        assert_eq!(
            decide(Some(&stored), &order(5), Flag::Yellow),
            Verdict::Store {
                state: State::Intercept,
                reason: stored.reason.clone()
            }
        );
        assert_eq!(
            decide(Some(&stored), &order(4), Flag::Yellow),
            Verdict::Stale
        );
        // Not handed over: the same copy clears an ordinary intercept.
        let bench = Stored {
            handed_over: false,
            ..stored
        };
        assert_eq!(
            decide(Some(&bench), &order(5), Flag::Yellow),
            Verdict::Store {
                state: State::Printed,
                reason: None
            }
        );
    }

    #[test]
    fn an_exception_flag_holds_copies_from_before_the_shop_had_it() {
        let stored = |exception| Stored {
            version: 2,
            state: State::OutOfStock,
            printed: Some(order(1)),
            reason: Some("缺货: A ×1".into()),
            handed_over: false,
            exception,
        };
        let held = Verdict::Store {
            state: State::OutOfStock,
            reason: Some("缺货: A ×1".into()),
        };
        let queued = Verdict::Store {
            state: State::Queued,
            reason: None,
        };
        let pending = stored(Some(ExceptionFlag::Pending));
        assert_eq!(decide(Some(&pending), &order(3), Flag::Yellow), held);
        // The shop had the flag at v4: v4 is from before customer service acted, v5 after.
        let acked = stored(Some(ExceptionFlag::Acknowledged { version: Some(4) }));
        assert_eq!(decide(Some(&acked), &order(4), Flag::Yellow), held);
        assert_eq!(decide(Some(&acked), &order(5), Flag::Yellow), queued);
        assert_eq!(decide(Some(&stored(None)), &order(3), Flag::Yellow), queued);
    }

    #[test]
    fn an_out_of_stock_order_waits_until_it_is_back_on_the_pull_flag() {
        let stored = Stored {
            version: 2,
            state: State::OutOfStock,
            printed: Some(order(1)),
            reason: Some("缺货: A ×1".into()),
            handed_over: false,
            exception: None,
        };
        let mut blue = order(3);
        blue.flag = Flag::Blue;
        assert_eq!(
            decide(Some(&stored), &blue, Flag::Yellow),
            Verdict::Store {
                state: State::OutOfStock,
                reason: Some("缺货: A ×1".into())
            }
        );
        // Customer service sorted it out: yellow again → queued, like a new version.
        assert_eq!(
            decide(Some(&stored), &order(4), Flag::Yellow),
            Verdict::Store {
                state: State::Queued,
                reason: None
            }
        );
        let mut refunded = order(4);
        refunded.flag = Flag::Blue;
        refunded.refund = Refund::Refunded;
        assert!(matches!(
            decide(Some(&stored), &refunded, Flag::Yellow),
            Verdict::Store {
                state: State::LeftQueue,
                ..
            }
        ));
    }
}
