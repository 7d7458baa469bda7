//! The values a template can print: one `DocContext` per document, built from an order.
//!
//! This module owns what the templates see. Everything is pre-formatted as strings here
//! (money, dates, masked names), so templates only place text and never compute; and a
//! value that must not be printed is left out of the context entirely rather than
//! blanked, so that no template, however it is edited, can print it. That is how
//! `hide_prices` works: with it set, no price, amount or total exists in the context.

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use crate::order::{Item, Order};
use crate::render::Sender;
use crate::render::mask::{self, MaskLevel};

/// What one document (a waybill or a packing slip for one order) is made from.
#[derive(Clone, Debug)]
pub struct DocInput<'a> {
    pub order: &'a Order,
    /// The allocated tracking number (运单号); `None` for documents that do not need one.
    pub tracking_no: Option<&'a str>,
    pub courier_code: Option<&'a str>,
    /// The courier's name as printed (中通).
    pub courier_name: Option<&'a str>,
    pub sender: &'a Sender,
    /// The routing its e-waybill service returned with the number (三段码,
    /// 大头笔, 集包地); `None` for a pool's number.
    pub routing: Option<&'a crate::render::Routing>,
    /// The order's slot (格位) in its wave, 1…N, for sorting after a batch pick.
    pub slot: Option<u64>,
    /// Every order of a merged parcel (合并发货), the lead first; empty for
    /// a parcel of one order (`order` is then that order, else the parcel's
    /// combined order, `parcel::combined`).
    pub merged: &'a [MergedOrder],
    /// When the wave was printed, already formatted in local time ("2026-11-11 09:30").
    pub printed_at: String,
    /// The wave's name or number, when the document belongs to one.
    pub wave: Option<&'a str>,
    /// Whether prices are hidden; callers pass `order.options.hide_prices`. Either flag
    /// hides them, so a caller cannot un-hide what the shop asked to hide.
    pub hide_prices: bool,
    pub shop_name: &'a str,
    /// How much of the recipient the waybill hides (GB/T 41833-2022 by default).
    pub mask: MaskLevel,
    /// The warehouse's time zone (`time_zone` in the config): order and memo
    /// times are printed in it.
    pub time_zone: chrono_tz::Tz,
}

impl<'a> DocInput<'a> {
    /// An input with the order's own `hide_prices` and no courier, tracking number or wave.
    pub fn new(
        order: &'a Order,
        sender: &'a Sender,
        shop_name: &'a str,
        printed_at: String,
    ) -> Self {
        DocInput {
            order,
            tracking_no: None,
            courier_code: None,
            courier_name: None,
            sender,
            routing: None,
            slot: None,
            merged: &[],
            printed_at,
            wave: None,
            hide_prices: order.options.hide_prices,
            shop_name,
            mask: MaskLevel::Standard,
            time_zone: chrono_tz::Asia::Shanghai,
        }
    }
}

/// One order of a merged parcel, as its slip lists it: the id and what the
/// packer must see of each (memo, gift card, buyer's message).
#[derive(Clone, Debug, Serialize)]
pub struct MergedOrder {
    pub id: String,
    pub memo: Option<String>,
    pub gift_message: Option<String>,
    pub buyer_message: Option<String>,
    pub total_qty: u64,
}

impl MergedOrder {
    pub fn of(order: &Order) -> MergedOrder {
        let some = |s: &Option<String>| s.clone().filter(|s| !s.trim().is_empty());
        MergedOrder {
            id: order.id.clone(),
            memo: order
                .effective_memo()
                .map(|m| m.text.clone())
                .filter(|t| !t.trim().is_empty()),
            gift_message: some(&order.options.gift_message),
            buyer_message: some(&order.buyer.message),
            total_qty: order.total_qty(),
        }
    }
}

/// The template context of one document. Field names are the template variables.
#[derive(Clone, Debug, Serialize)]
pub struct DocContext {
    pub order_id: String,
    /// Local time (the configured time zone), "YYYY-MM-DD HH:MM"; absent for unpaid orders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<String>,
    pub created_at: String,
    pub buyer: BuyerContext,
    pub recipient: RecipientContext,
    /// The 大头笔: the e-waybill service's `short_address` when it gave one,
    /// else province and city without their suffixes, "浙江 杭州".
    pub sort_line: String,
    /// The 三段码 the e-waybill service gave ("571-W04 03"); empty for a pool's number.
    pub sort_code: String,
    /// The 集包地 the e-waybill service gave ("杭州转运中心"); empty for a pool's number.
    pub package_center: String,
    /// The order's slot (格位) in its wave, for sorting after a batch pick; absent outside a wave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<u64>,
    /// The orders of a merged parcel (合并发货), the lead first: `id`, `memo`,
    /// `gift_message`, `buyer_message`, `total_qty`; empty for one order.
    pub merged_orders: Vec<MergedOrder>,
    pub sender: SenderContext,
    pub items: Vec<ItemContext>,
    /// "晴雨两用折叠伞×1 中性笔×2", shortened for a one- or two-line box.
    pub item_summary: String,
    pub item_kinds: usize,
    pub total_qty: u64,
    /// "1.25" when every item has a weight, absent otherwise (a partial sum would lie).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_kg: Option<String>,
    /// The effective memo: newest wins, ties to the later one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memo: Option<MemoContext>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gift_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_title: Option<String>,
    /// 加急: express service or a purple flag.
    pub urgent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub courier_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub courier_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_no: Option<String>,
    pub printed_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wave: Option<String>,
    pub shop_name: String,
    pub hide_prices: bool,
    /// The goods total in yuan ("135.00"); absent when prices are hidden.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BuyerContext {
    pub nick: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RecipientContext {
    pub name_masked: String,
    pub phone_masked: String,
    /// Province, city, district and the street address with the unit/room part hidden.
    pub address_masked: String,
    /// `address_masked` without the buyer's instructions typed into the address
    /// (a waybill's `fallback` when the whole line does not fit).
    pub address_core_masked: String,
    /// The buyer's instructions typed into the address ("（放快递柜）", "送货前
    ///请电话联系"), phone numbers masked; absent when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    pub province: String,
    pub city: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SenderContext {
    pub name: String,
    pub phone: String,
    pub address: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ItemContext {
    pub sku: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
    pub qty: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub barcode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_g: Option<u64>,
    /// Unit price in yuan ("45.00"); absent when prices are hidden.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<String>,
    /// qty × unit price in yuan; absent when prices are hidden.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MemoContext {
    pub text: String,
    pub author: String,
    /// Local time, "YYYY-MM-DD HH:MM".
    pub date: String,
}

/// The context of one document.
pub fn context(input: &DocInput) -> DocContext {
    let order = input.order;
    let hide = input.hide_prices || order.options.hide_prices;
    let r = &order.recipient;
    let items: Vec<ItemContext> = order.items.iter().map(|i| item(i, hide)).collect();
    let total = (!hide).then(|| {
        // In u128 with checked steps: a valid order may carry 2^31 - 1 of an
        // item priced in the billions, which overflows u64.
        let cents: Option<u128> = order.items.iter().try_fold(0u128, |sum, i| {
            sum.checked_add(amount_cents(&i.unit_price, i.qty)?)
        });
        // The contract validates prices, so a bad one is a bug upstream; printing
        // nothing beats printing a wrong total.
        cents.map(yuan).unwrap_or_default()
    });
    // u64 grams × u32 qty fits in u128 with room for any number of items.
    let weight_g: Option<u128> = order
        .items
        .iter()
        .map(|i| i.weight_g.map(|w| u128::from(w) * u128::from(i.qty)))
        .sum();
    let district = r.district.clone().filter(|d| !d.trim().is_empty());
    let full = |street: &str| {
        [
            r.province.as_str(),
            r.city.as_str(),
            district.as_deref().unwrap_or(""),
            &mask::mask_address(street, input.mask),
        ]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
    };
    let address_masked = full(&r.address);
    let (core, note) = crate::render::address::split_instructions(&r.address);
    let address_core_masked = full(core);
    // Masked as a delivery note (in brackets): only phone numbers in it.
    let instructions = note.map(|n| {
        let masked = mask::mask_address(&format!("（{n}）"), input.mask);
        masked
            .strip_prefix('（')
            .and_then(|m| m.strip_suffix('）'))
            .unwrap_or(&masked)
            .to_string()
    });
    DocContext {
        order_id: order.id.clone(),
        paid_at: order.paid_at.map(|at| local(at, input.time_zone)),
        created_at: local(order.created_at, input.time_zone),
        buyer: BuyerContext {
            nick: order.buyer.nick.clone(),
            message: non_empty(order.buyer.message.as_deref()),
        },
        recipient: RecipientContext {
            name_masked: mask::mask_name(&r.name, input.mask),
            phone_masked: mask::mask_phone(&r.phone, input.mask),
            address_masked,
            address_core_masked,
            instructions,
            province: r.province.clone(),
            city: r.city.clone(),
            district,
            postcode: non_empty(r.postcode.as_deref()),
        },
        sort_line: match input.routing {
            Some(routing) if !routing.short_address.trim().is_empty() => {
                routing.short_address.clone()
            }
            _ => sort_line(&r.province, &r.city),
        },
        sort_code: input
            .routing
            .map(|x| x.sort_code.clone())
            .unwrap_or_default(),
        package_center: input
            .routing
            .map(|x| x.package_center.clone())
            .unwrap_or_default(),
        slot: input.slot,
        merged_orders: input.merged.to_vec(),
        sender: SenderContext {
            name: input.sender.name.clone(),
            phone: input.sender.phone.clone(),
            address: input.sender.address.clone(),
        },
        item_summary: item_summary(&order.items),
        item_kinds: order.items.len(),
        items,
        total_qty: order.total_qty(),
        weight_kg: weight_g.map(|g| {
            // Rounded to 10 g, which is what a parcel scale shows.
            let centi_kg = (g + 5) / 10;
            format!("{}.{:02}", centi_kg / 100, centi_kg % 100)
        }),
        memo: order.effective_memo().map(|m| MemoContext {
            text: m.text.clone(),
            author: m.author.clone(),
            date: local(m.at, input.time_zone),
        }),
        gift_message: non_empty(order.options.gift_message.as_deref()),
        invoice_title: non_empty(order.options.invoice_title.as_deref()),
        urgent: order.is_urgent(),
        courier_name: non_empty(input.courier_name),
        courier_code: non_empty(input.courier_code),
        tracking_no: non_empty(input.tracking_no),
        printed_at: input.printed_at.clone(),
        wave: non_empty(input.wave),
        shop_name: input.shop_name.to_string(),
        hide_prices: hide,
        total,
    }
}

fn item(i: &Item, hide: bool) -> ItemContext {
    ItemContext {
        sku: i.sku.clone(),
        title: i.title.clone(),
        spec: non_empty(i.spec.as_deref()),
        qty: i.qty,
        barcode: non_empty(i.barcode.as_deref()),
        weight_g: i.weight_g,
        unit_price: (!hide).then(|| {
            cents(&i.unit_price)
                .map(yuan)
                .unwrap_or_else(|| i.unit_price.clone())
        }),
        amount: (!hide)
            .then(|| amount_cents(&i.unit_price, i.qty).map(yuan))
            .flatten(),
    }
}

/// Blank strings count as absent, so `when = "gift_message"` does not draw an empty box.
fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Local warehouse time, in the configured time zone (Asia/Shanghai by
/// default): an order stamped in UTC or another offset prints as the
/// warehouse's clock shows it.
fn local(at: DateTime<FixedOffset>, tz: chrono_tz::Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

/// "12.50" → 1250. Money is a decimal string in the contract and never a float here.
fn cents(price: &str) -> Option<u128> {
    let (whole, frac) = price.trim().split_once('.').unwrap_or((price.trim(), ""));
    if frac.len() > 2 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: u128 = whole.parse().ok()?;
    let frac: u128 = format!("{frac:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(frac)
}

/// qty × unit price in cents; `None` for a price that is not one or an amount
/// beyond u128 (nothing beats printing a wrong amount).
fn amount_cents(price: &str, qty: u32) -> Option<u128> {
    cents(price)?.checked_mul(u128::from(qty))
}

fn yuan(cents: u128) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The 大头笔: province and city with their administrative suffixes dropped, the way
/// sorting centres write them ("浙江 杭州"). For the four municipalities the city
/// repeats the province ("北京 北京"), which is what couriers print too.
pub fn sort_line(province: &str, city: &str) -> String {
    fn short(s: &str) -> &str {
        let s = s.trim();
        // Longest suffixes first, so "自治区" is not cut to "自治".
        for suffix in [
            "维吾尔自治区",
            "壮族自治区",
            "回族自治区",
            "特别行政区",
            "自治区",
            "自治州",
            "地区",
            "省",
            "市",
            "盟",
        ] {
            if let Some(rest) = s.strip_suffix(suffix)
                && rest.chars().count() >= 2
            {
                return rest;
            }
        }
        s
    }
    format!("{} {}", short(province), short(city))
        .trim()
        .to_string()
}

/// Item titles with quantities, for the one or two lines a waybill has: each title
/// shortened to 8 characters and at most three items named, then "等N种".
pub fn item_summary(items: &[Item]) -> String {
    const TITLE_CHARS: usize = 8;
    const NAMED: usize = 3;
    let mut parts: Vec<String> = items
        .iter()
        .take(NAMED)
        .map(|i| {
            let title: String = i.title.chars().take(TITLE_CHARS).collect();
            let cut = if i.title.chars().count() > TITLE_CHARS {
                "…"
            } else {
                ""
            };
            format!("{title}{cut}×{}", i.qty)
        })
        .collect();
    if items.len() > NAMED {
        parts.push(format!("等{}种", items.len()));
    }
    parts.join(" ")
}

/// The handover manifest (交接单) of one courier's parcels in a wave.
#[derive(Clone, Debug, Serialize)]
pub struct ManifestContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub courier_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub courier_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wave: Option<String>,
    /// The handover batch id (交接批次), printed as text and as a QR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// Who handed the parcels over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    pub printed_at: String,
    pub shop_name: String,
    pub sender: SenderContext,
    pub parcels: Vec<ManifestRow>,
    pub parcel_count: usize,
    pub total_qty: u64,
}

/// One parcel on the manifest; names are masked like on the waybill.
#[derive(Clone, Debug, Serialize)]
pub struct ManifestRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_no: Option<String>,
    /// The parcel's order (a merged parcel's lead).
    pub order_id: String,
    /// How many orders the parcel holds (more than 1: a merged parcel, 合并发货).
    pub orders: usize,
    pub name_masked: String,
    pub city: String,
    pub total_qty: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_kg: Option<String>,
}

/// A manifest of the given documents; courier, wave, sender and time come from the first.
/// The handover module decides which parcels belong on it and sets `batch` and `operator`.
pub fn manifest_context(docs: &[DocInput]) -> ManifestContext {
    let first = docs.first();
    let parcels: Vec<ManifestRow> = docs
        .iter()
        .map(|d| {
            let c = context(d);
            ManifestRow {
                tracking_no: c.tracking_no,
                order_id: c.order_id,
                orders: d.merged.len().max(1),
                name_masked: c.recipient.name_masked,
                city: c.recipient.city,
                total_qty: c.total_qty,
                weight_kg: c.weight_kg,
            }
        })
        .collect();
    ManifestContext {
        courier_name: first.and_then(|d| non_empty(d.courier_name)),
        courier_code: first.and_then(|d| non_empty(d.courier_code)),
        wave: first.and_then(|d| non_empty(d.wave)),
        batch: None,
        operator: None,
        printed_at: first.map(|d| d.printed_at.clone()).unwrap_or_default(),
        shop_name: first.map(|d| d.shop_name.to_string()).unwrap_or_default(),
        sender: first
            .map(|d| SenderContext {
                name: d.sender.name.clone(),
                phone: d.sender.phone.clone(),
                address: d.sender.address.clone(),
            })
            .unwrap_or(SenderContext {
                name: String::new(),
                phone: String::new(),
                address: String::new(),
            }),
        parcel_count: parcels.len(),
        total_qty: parcels.iter().map(|p| p.total_qty).sum(),
        parcels,
    }
}

/// An order with every optional field set, so that its context shows every variable a
/// template may use (the load-time variable check is built from it).
pub(crate) fn sample_order() -> Order {
    serde_json::from_value(serde_json::json!({
        "id": "3158683449786907366", "version": 1, "status": "paid", "refund": "none",
        "flag": "purple", "created_at": "2026-11-11T01:42:57+08:00",
        "paid_at": "2026-11-11T02:17:51+08:00", "updated_at": "2026-11-11T02:19:20+08:00",
        "buyer": {"nick": "不吃香菜的仙人掌", "message": "请尽快发货"},
        "recipient": {"name": "孔子娥", "phone": "17869074391", "province": "广东省",
            "city": "佛山市", "district": "顺德区", "address": "科技园路32号紫薇苑18栋1单元2502室（放快递柜）",
            "postcode": "528300"},
        "items": [{"sku": "HM-UMB-02", "title": "晴雨两用折叠伞", "spec": "藏青", "qty": 1,
            "unit_price": "45.00", "barcode": "6923456032019", "weight_g": 330}],
        "shipping": {"courier": "ZTO", "service": "express"},
        "memos": [{"text": "送小样", "author": "小王", "at": "2026-11-11T03:38:05+08:00"}],
        "options": {"hide_prices": false, "gift_message": "生日快乐", "invoice_title": "某某公司"}
    }))
    .expect("the sample order matches the contract")
}

fn sample_input<'a>(order: &'a Order, sender: &'a Sender) -> DocInput<'a> {
    DocInput {
        order,
        tracking_no: Some("783100001234"),
        courier_code: Some("ZTO"),
        courier_name: Some("中通"),
        sender,
        routing: None,
        slot: Some(12),
        merged: &[],
        printed_at: "2026-11-11 09:00".into(),
        wave: Some("0001"),
        hide_prices: false,
        shop_name: "样例店",
        mask: MaskLevel::Standard,
        time_zone: chrono_tz::Asia::Shanghai,
    }
}

pub(crate) fn sample_context() -> DocContext {
    let order = sample_order();
    let sender = Sender::default();
    context(&sample_input(&order, &sender))
}

#[cfg(test)]
pub(crate) fn sample_context_hidden() -> DocContext {
    let order = sample_order();
    let sender = Sender::default();
    let mut input = sample_input(&order, &sender);
    input.hide_prices = true;
    context(&input)
}

pub(crate) fn sample_manifest() -> ManifestContext {
    let order = sample_order();
    let sender = Sender::default();
    ManifestContext {
        batch: Some("ZTO-20261111-01".into()),
        operator: Some("小王".into()),
        ..manifest_context(&[sample_input(&order, &sender)])
    }
}

/// A wave's pick list (拣货单): what to fetch, in walking order, then the slot
/// table for sorting after a batch pick (二次分拣). One template renders both
/// parts as two documents: `part` is "lines" for the first and "slots" for the
/// second, and `rows` holds that part's rows.
#[derive(Clone, Debug, Serialize)]
pub struct PicklistContext {
    pub wave: String,
    pub printed_at: String,
    pub shop_name: String,
    /// "lines" or "slots".
    pub part: String,
    /// This part's rows (`lines` or `slots`), for the items table's `rows = "rows"`.
    pub rows: Vec<serde_json::Value>,
    /// Both parts' rows, for building; a rendered part has only its `rows`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<PickRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<SlotRow>,
    pub line_count: usize,
    pub order_count: usize,
    pub total_qty: u64,
}

/// One SKU of a wave, summed over its orders.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PickRow {
    /// The shelf (库位), or "未设库位" for a SKU with none.
    pub location: String,
    pub sku: String,
    pub title: String,
    pub spec: String,
    /// What the item's barcode says (its barcode, else its SKU).
    pub barcode: String,
    pub qty: u64,
    /// How many of the wave's orders need it.
    pub orders: u64,
}

/// One order of a wave and its slot (格位) for sorting.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SlotRow {
    pub slot: u64,
    pub order_id: String,
    pub tracking_no: String,
    pub items: String,
    pub total_qty: u64,
}

impl PicklistContext {
    /// The two parts as the two documents the template renders.
    pub fn parts(&self) -> [PicklistContext; 2] {
        fn rows<T: Serialize>(list: &[T]) -> Vec<serde_json::Value> {
            list.iter()
                .map(|r| serde_json::to_value(r).expect("rows serialise"))
                .collect()
        }
        // Each part carries only its own rows: a 10,000-order wave's slot
        // table is converted for the template once, not three times.
        let with = |part: &str, rows: Vec<serde_json::Value>| PicklistContext {
            part: part.into(),
            rows,
            lines: Vec::new(),
            slots: Vec::new(),
            wave: self.wave.clone(),
            printed_at: self.printed_at.clone(),
            shop_name: self.shop_name.clone(),
            line_count: self.line_count,
            order_count: self.order_count,
            total_qty: self.total_qty,
        };
        [
            with("lines", rows(&self.lines)),
            with("slots", rows(&self.slots)),
        ]
    }
}

pub(crate) fn sample_picklist() -> PicklistContext {
    let lines = vec![PickRow {
        location: "A-03-2".into(),
        sku: "UMB-01".into(),
        title: "晴雨两用折叠伞".into(),
        spec: "藏青".into(),
        barcode: "6923456032019".into(),
        qty: 3,
        orders: 2,
    }];
    let slots = vec![SlotRow {
        slot: 1,
        order_id: "3158683449786907366".into(),
        tracking_no: "783100001234".into(),
        items: "晴雨两用折叠伞×1".into(),
        total_qty: 1,
    }];
    PicklistContext {
        wave: "1".into(),
        printed_at: "2026-11-11 09:00".into(),
        shop_name: "样例店".into(),
        part: "lines".into(),
        rows: serde_json::to_value(&lines)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default(),
        line_count: 1,
        order_count: 1,
        total_qty: 3,
        lines,
        slots,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_line_drops_suffixes() {
        assert_eq!(sort_line("浙江省", "杭州市"), "浙江 杭州");
        assert_eq!(sort_line("北京市", "北京市"), "北京 北京");
        assert_eq!(sort_line("新疆维吾尔自治区", "乌鲁木齐市"), "新疆 乌鲁木齐");
        assert_eq!(sort_line("内蒙古自治区", "锡林郭勒盟"), "内蒙古 锡林郭勒");
    }

    #[test]
    fn money_is_exact() {
        assert_eq!(cents("12.5"), Some(1250));
        assert_eq!(cents("0.05"), Some(5));
        assert_eq!(cents("45"), Some(4500));
        assert_eq!(cents("1.234"), None);
        assert_eq!(yuan(13505), "135.05");
        // 2^31 - 1 items at a price in the billions overflowed u64 (a panic
        // that stopped the whole wave); a price past u128 is no amount at all.
        assert_eq!(
            amount_cents("99999999999.99", i32::MAX as u32)
                .map(yuan)
                .as_deref(),
            Some("214748364699978525163.53")
        );
        assert_eq!(amount_cents(&"9".repeat(40), 2), None);
    }

    #[test]
    fn instructions_in_the_address_are_offered_apart_with_phones_masked() {
        let mut order = sample_order();
        order.recipient.address = "长江路100号15层1502室，送货前打电话13800138000".into();
        let sender = Sender::default();
        let c = context(&sample_input(&order, &sender));
        assert_eq!(
            c.recipient.instructions.as_deref(),
            Some("送货前打电话138******00")
        );
        let street = mask::mask_address("长江路100号15层1502室", MaskLevel::Standard);
        assert!(
            c.recipient.address_core_masked.ends_with(&street),
            "{} / {street}",
            c.recipient.address_core_masked
        );
        assert!(!c.recipient.address_core_masked.contains("送货"));
        // Without instructions the two forms are the same.
        order.recipient.address = "长江路100号15层1502室".into();
        let c = context(&sample_input(&order, &sender));
        assert_eq!(c.recipient.instructions, None);
        assert_eq!(c.recipient.address_core_masked, c.recipient.address_masked);
    }

    #[test]
    fn times_print_in_the_configured_time_zone() {
        let order = sample_order();
        let sender = Sender::default();
        let mut input = sample_input(&order, &sender);
        // Created 2026-11-11 01:42:57 +08:00, its memo at 03:38:05 +08:00.
        assert_eq!(context(&input).created_at, "2026-11-11 01:42");
        input.time_zone = chrono_tz::Asia::Urumqi; // UTC+6
        let c = context(&input);
        assert_eq!(c.created_at, "2026-11-10 23:42");
        assert_eq!(
            c.memo.as_ref().map(|m| m.date.as_str()),
            Some("2026-11-11 01:38")
        );
    }
}
