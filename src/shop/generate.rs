//! Seeded, realistic order generator: the synthetic Double 11 that feeds the shop
//! simulator, the demo and the tests.
//!
//! This module owns the data tables (names, places, catalog, memo phrases) and the
//! rules that turn a seed into orders. [`generate`] returns orders that satisfy the
//! Shop API v1 contract; [`generate_json`] returns the same orders as raw JSON with a
//! chosen fraction broken in exactly one field each, for exercising the validator.
//! Chinese text, characters outside the BMP, emoji, landlines and masked phones are
//! the normal case here, at roughly the rates a real shop sees, not a separate list.
//!
//! Determinism: one seed gives one output. Taking orders off the queue and breaking
//! them draw from their own random streams, so raising `off_queue_rate` or
//! `invalid_rate` changes only the orders picked and leaves every other order as is.

use crate::order::{
    Buyer, Flag, Item, Memo, Options, Order, Recipient, Refund, Service, Shipping, Status,
};
use chrono::{DateTime, Duration, FixedOffset, TimeZone};
use rand::rngs::Xoshiro256PlusPlus;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use serde_json::Value;
use std::collections::HashSet;
use tables::*;

/// A named algorithm rather than `StdRng`, whose algorithm rand may change between
/// releases: a seed written in a test or a demo script should keep meaning the same orders.
type Rng = Xoshiro256PlusPlus;

/// Salts that give the off-queue and breakage passes streams of their own.
const OFF_QUEUE_SALT: u64 = 0x6f66_665f_7175_6575;
const BREAK_SALT: u64 = 0x6272_6561_6b5f_6f6e;
const REPEAT_SALT: u64 = 0x7265_7065_6174_6564;

#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub count: usize,
    pub seed: u64,
    /// Fraction of orders that deliberately break the contract (for the demo's "bad
    /// ones set aside"); only [`generate_json`] applies it.
    pub invalid_rate: f64,
    /// Fraction of orders that are paid but not on the yellow pull flag (red = waiting
    /// for customer service, none = not reviewed yet) or still awaiting payment.
    pub off_queue_rate: f64,
    /// Base payment time (the first hour of Double 11 by default). Output is always in
    /// +08:00, the offset the shop platform speaks.
    pub start: DateTime<FixedOffset>,
    /// Fraction of orders whose buyer placed one or two more orders to the same
    /// recipient (合并发货 material): most of those go to the very same
    /// address (some written with full-width digits or spaces), some to
    /// another address or with another courier asked for.
    pub repeat_buyer_rate: f64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            count: 500,
            seed: 11,
            invalid_rate: 0.0,
            off_queue_rate: 0.0,
            start: beijing().with_ymd_and_hms(2026, 11, 11, 0, 0, 0).unwrap(),
            repeat_buyer_rate: 0.0,
        }
    }
}

fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset")
}

/// Valid orders (paid, refund none, yellow flag, except the `off_queue_rate` picked
/// ones), deterministic for a given seed, in no particular order.
pub fn generate(opts: &GenerateOptions) -> Vec<Order> {
    let mut rng = Rng::seed_from_u64(opts.seed);
    let start = opts.start.with_timezone(&beijing());
    let mut ids = HashSet::with_capacity(opts.count);
    let mut orders: Vec<Order> = (0..opts.count)
        .map(|_| order(&mut rng, start, &mut ids))
        .collect();
    let mut side = Rng::seed_from_u64(opts.seed ^ OFF_QUEUE_SALT);
    for (o, off) in orders
        .iter_mut()
        .zip(pick(&mut side, opts.count, opts.off_queue_rate))
    {
        if off {
            take_off_queue(&mut side, o);
        }
    }
    repeat_buyers(
        &mut Rng::seed_from_u64(opts.seed ^ REPEAT_SALT),
        &mut orders,
        opts.repeat_buyer_rate,
    );
    orders
}

/// Make `round(count × rate)` buyers order again: each picked order gets one
/// or two later orders of the same buyer. Most go to the same recipient
/// (one in four with the address typed differently: full-width digits, a
/// space), one in seven to another address, one in seven asks for another
/// courier.
fn repeat_buyers(rng: &mut Rng, orders: &mut [Order], rate: f64) {
    let count = orders.len();
    let buyers = (count as f64 * rate.clamp(0.0, 1.0)).round() as usize;
    let mut free = rand::seq::index::sample(rng, count, (buyers * 3).min(count)).into_vec();
    for _ in 0..buyers {
        let Some(lead) = free.pop() else { break };
        for _ in 0..rng.random_range(1..=2) {
            let Some(again) = free.pop() else { break };
            let first = orders[lead].clone();
            let o = &mut orders[again];
            o.buyer.nick = first.buyer.nick.clone();
            o.shipping = first.shipping.clone();
            match rng.random_range(0..28) {
                // Another address: the same person, elsewhere.
                0..=3 => {
                    o.recipient.name = first.recipient.name.clone();
                    o.recipient.phone = first.recipient.phone.clone();
                }
                // Another courier asked for.
                4..=7 => {
                    o.recipient = first.recipient.clone();
                    o.shipping.courier = match first.shipping.courier.as_deref() {
                        Some("SF") => Some("YTO".into()),
                        _ => Some("SF".into()),
                    };
                }
                // The same address, typed with full-width digits and a space.
                8..=13 => {
                    o.recipient = first.recipient.clone();
                    o.recipient.address = o
                        .recipient
                        .address
                        .chars()
                        .map(|c| match c {
                            '0'..='9' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
                            c => c,
                        })
                        .collect::<String>()
                        .replacen('号', "号 ", 1);
                }
                _ => o.recipient = first.recipient.clone(),
            }
        }
    }
}

/// The orders of [`generate`] as raw JSON, with `invalid_rate` of them broken in one
/// field each: the kinds of breakage a validator must reject and name.
pub fn generate_json(opts: &GenerateOptions) -> Vec<Value> {
    let orders = generate(opts);
    let mut side = Rng::seed_from_u64(opts.seed ^ BREAK_SALT);
    let broken = pick(&mut side, orders.len(), opts.invalid_rate);
    orders
        .iter()
        .zip(broken)
        .enumerate()
        .map(|(i, (o, broken))| {
            let mut v = serde_json::to_value(o).expect("an Order always serializes");
            if broken {
                break_one(&mut side, &mut v, i);
            }
            v
        })
        .collect()
}

/// Marks exactly `round(count × rate)` distinct positions, so a demo that asks for 4%
/// gets 4% rather than whatever a coin per order happened to give.
fn pick(rng: &mut Rng, count: usize, rate: f64) -> Vec<bool> {
    let n = (count as f64 * rate.clamp(0.0, 1.0)).round() as usize;
    let mut marks = vec![false; count];
    for i in rand::seq::index::sample(rng, count, n) {
        marks[i] = true;
    }
    marks
}

fn one<T: Copy>(rng: &mut Rng, xs: &[T]) -> T {
    *xs.choose(rng).expect("data tables are never empty")
}

fn secs(rng: &mut Rng, range: std::ops::Range<i64>) -> Duration {
    Duration::seconds(rng.random_range(range))
}

fn order(rng: &mut Rng, start: DateTime<FixedOffset>, ids: &mut HashSet<String>) -> Order {
    // Taobao order numbers are 19 digits; the loop only repeats on a (rare) collision.
    let id = loop {
        let n: u64 = rng.random_range(1_000_000_000_000_000_000..5_000_000_000_000_000_000);
        if ids.insert(n.to_string()) {
            break n.to_string();
        }
    };
    // Squaring a uniform draw crowds payments into the first minutes, like the
    // midnight rush of Double 11, with a tail over the next six hours.
    let u: f64 = rng.random();
    let paid_at = start + Duration::seconds((u * u * 6.0 * 3600.0) as i64);
    // Many carts are filled the evening before and paid at midnight.
    let created_at = paid_at - secs(rng, 10..3 * 3600);
    let place = one(rng, PLACES);
    let recipient = recipient(rng, place);
    let memos = memos(rng, paid_at, &recipient);
    let updated_at = memos.last().map_or(paid_at, |m| m.at) + secs(rng, 5..300);
    let newest = memos.last().map_or("", |m| m.text.as_str());
    let express = rng.random_bool(0.05);
    let courier = if express || newest == "发顺丰" || rng.random_bool(0.02) {
        Some("SF".to_string())
    } else if newest.starts_with("改发中通") {
        Some("ZTO".to_string())
    } else {
        None
    };
    Order {
        id,
        version: version_for(&memos),
        status: Status::Paid,
        refund: Refund::None,
        flag: Flag::Yellow,
        created_at,
        paid_at: Some(paid_at),
        updated_at,
        buyer: Buyer {
            nick: nick(rng),
            message: rng
                .random_bool(0.15)
                .then(|| one(rng, MESSAGES).to_string()),
        },
        recipient,
        items: items(rng),
        shipping: Shipping {
            courier,
            service: Some(if express {
                Service::Express
            } else {
                Service::Standard
            }),
        },
        memos,
        options: Options {
            hide_prices: rng.random_bool(0.03),
            gift_message: rng
                .random_bool(0.03)
                .then(|| one(rng, GIFT_MESSAGES).to_string()),
            invoice_title: rng
                .random_bool(0.02)
                .then(|| one(rng, INVOICE_TITLES).to_string()),
        },
    }
}

/// Every memo is a change on the platform and bumps the version; the cap keeps the
/// numbers in the range real pulls show.
fn version_for(memos: &[Memo]) -> u64 {
    (1 + memos.len() as u64).min(3)
}

fn recipient(rng: &mut Rng, place: (&str, &str, &str, &str, &str)) -> Recipient {
    let (province, city, district, postcode, area) = place;
    let kind = rng.random_range(0..100);
    let name = match kind {
        0 => format!("{}{}", one(rng, SURNAMES), one(rng, RARE)),
        1 => one(rng, UYGHUR).to_string(),
        2 => one(rng, LATIN).to_string(),
        _ => {
            let mut name = one(rng, SURNAMES).to_string();
            for _ in 0..rng.random_range(1..=2) {
                name.push_str(one(rng, GIVEN));
            }
            name
        }
    };
    // Latin-named recipients mostly write their address in English too.
    let address = if kind == 2 || rng.random_bool(0.005) {
        let road = one(rng, ASCII_ROADS);
        let (room, building, no) = (
            rng.random_range(101..2000),
            rng.random_range(1..20),
            rng.random_range(1..800),
        );
        format!("Room {room}, Building {building}, No. {no} {road} Road")
    } else {
        let street = format!(
            "{}{}号{}{}栋{}单元{}{:02}室",
            one(rng, STREETS),
            rng.random_range(1..800),
            one(rng, COMPOUNDS),
            rng.random_range(1..30),
            rng.random_range(1..7),
            rng.random_range(1..33),
            rng.random_range(1..5)
        );
        if rng.random_bool(0.02) {
            long_address(rng, street)
        } else {
            street
        }
    };
    Recipient {
        name,
        phone: phone(rng, area),
        province: province.into(),
        city: city.into(),
        district: (!rng.random_bool(0.02)).then(|| district.into()),
        address,
        postcode: rng.random_bool(0.9).then(|| postcode.into()),
    }
}

/// A street address followed by the delivery instructions some buyers pour into the
/// address box, cut at about 300 characters as the shop's input field does.
fn long_address(rng: &mut Rng, street: String) -> String {
    let target = rng.random_range(120..300);
    let mut notes = String::new();
    while street.chars().count() + notes.chars().count() < target {
        notes.push_str(one(rng, DIRECTIONS));
        notes.push('，');
    }
    let notes: String = notes.chars().take(298 - street.chars().count()).collect();
    format!("{street}（{}）", notes.trim_end_matches('，'))
}

fn phone(rng: &mut Rng, area: &str) -> String {
    let prefix = one(rng, MOBILE_PREFIXES);
    match rng.random_range(0..100) {
        // A landline in the recipient's own city: 8 local digits after a 3-digit area
        // code, 7 or 8 after a 4-digit one, never starting with 0 or 1.
        0..3 => {
            let digits = if area.len() == 3 || rng.random_bool(0.5) {
                8
            } else {
                7
            };
            let low = 2 * 10u64.pow(digits - 1);
            format!("{area}-{}", rng.random_range(low..10u64.pow(digits)))
        }
        // A platform virtual number with an extension, as privacy orders carry.
        3 => format!(
            "147{:08}-{:04}",
            rng.random_range(0..100_000_000),
            rng.random_range(0..10_000)
        ),
        4 => format!("{prefix}****{:04}", rng.random_range(0..10_000)),
        _ => format!("{prefix}{:08}", rng.random_range(0..100_000_000)),
    }
}

fn nick(rng: &mut Rng) -> String {
    match rng.random_range(0..100) {
        0..3 => one(rng, EMOJI_NICKS).to_string(),
        // Zalgo text: every letter carries one or two combining marks (U+0300..U+036F).
        3 => "Zalgo".chars().fold(String::new(), |mut s, c| {
            s.push(c);
            for _ in 0..rng.random_range(1..=2) {
                s.extend(char::from_u32(rng.random_range(0x300..0x370)));
            }
            s
        }),
        4..40 => format!("tb{:010}", rng.random_range(0..10_000_000_000u64)),
        40..50 => one(rng, LATIN_NICKS).to_string(),
        _ => {
            let digits = if rng.random_bool(0.3) {
                rng.random_range(1..10_000).to_string()
            } else {
                String::new()
            };
            format!("{}{}{digits}", one(rng, NICK_ADJ), one(rng, NICK_NOUN))
        }
    }
}

fn items(rng: &mut Rng) -> Vec<Item> {
    let n = match rng.random_range(0..100) {
        0..55 => 1,
        55..75 => 2,
        75..85 => 3,
        _ => rng.random_range(4..=8),
    };
    CATALOG
        .sample(rng, n)
        .map(|&(sku, title, spec, price, barcode, weight)| Item {
            sku: sku.into(),
            title: title.into(),
            spec: (!spec.is_empty()).then(|| spec.into()),
            qty: match rng.random_range(0..100) {
                0..70 => 1,
                70..90 => 2,
                90..97 => 3,
                97..99 => rng.random_range(4..=10),
                _ => one(rng, &[20, 50, 100, 999]),
            },
            unit_price: price.into(),
            barcode: Some(barcode.into()),
            weight_g: Some(weight),
        })
        .collect()
}

/// Seller memos for about a quarter of the orders, oldest first, each a few minutes
/// to hours after payment. Some stories hold two memos that disagree, where the newer
/// one is the one that counts.
fn memos(rng: &mut Rng, paid_at: DateTime<FixedOffset>, to: &Recipient) -> Vec<Memo> {
    use Flag::{Purple, Red, Yellow};
    if !rng.random_bool(0.25) {
        return Vec::new();
    }
    let change_address = |rng: &mut Rng| {
        let (province, city, district, _, _) = one(rng, PLACES);
        let city = if city == province { "" } else { city };
        let street = format!(
            "{}{}号{}{}栋{}01室",
            one(rng, STREETS),
            rng.random_range(1..800),
            one(rng, COMPOUNDS),
            rng.random_range(1..30),
            rng.random_range(2..30)
        );
        format!(
            "改地址: {province}{city}{district}{street} {} {}",
            to.name, to.phone
        )
    };
    let story: Vec<(String, Flag)> = match rng.random_range(0..100) {
        0..25 => vec![("发顺丰".into(), Red)],
        25..38 => vec![("赠品:小样两份".into(), Red)],
        38..48 => vec![(format!("送贺卡:{}", one(rng, GIFT_MESSAGES)), Red)],
        48..58 => vec![("加急，今天必须发出".into(), Purple)],
        58..68 => vec![(change_address(rng), Red)],
        68..76 => vec![("不要放发票".into(), Red)],
        76..88 => vec![
            ("缺货，等到货再发".into(), Red),
            ("已到货，可以发".into(), Yellow),
        ],
        88..95 => vec![
            ("发顺丰".into(), Red),
            ("改发中通，顾客不要顺丰了".into(), Red),
        ],
        _ => vec![(change_address(rng), Red), (change_address(rng), Red)],
    };
    let mut at = paid_at;
    story
        .into_iter()
        .map(|(text, flag)| {
            at += secs(rng, 60..3 * 3600);
            Memo {
                text,
                author: one(rng, AUTHORS).to_string(),
                at,
                flag: Some(flag),
            }
        })
        .collect()
}

/// Moves an order off the warehouse queue the ways a shop does: not paid yet, held
/// on red for customer service, or paid but not reviewed (no flag).
fn take_off_queue(rng: &mut Rng, o: &mut Order) {
    match rng.random_range(0..3) {
        0 => {
            o.status = Status::AwaitingPayment;
            o.paid_at = None;
            o.flag = Flag::None;
            o.memos.clear();
            o.updated_at = o.created_at + secs(rng, 1..600);
        }
        1 => {
            o.flag = Flag::Red;
            let at = o.updated_at + secs(rng, 60..1800);
            let (text, author) = (one(rng, HOLD_REASONS), one(rng, AUTHORS));
            o.memos.push(Memo {
                text: text.to_string(),
                author: author.to_string(),
                at,
                flag: Some(Flag::Red),
            });
            o.updated_at = at + secs(rng, 5..300);
        }
        _ => o.flag = Flag::None,
    }
    o.version = version_for(&o.memos);
}

/// Breaks one contract field of a serialized valid order. `i` keeps broken ids unique.
fn break_one(rng: &mut Rng, v: &mut Value, i: usize) {
    let k = rng.random_range(0..v["items"].as_array().map_or(1, Vec::len));
    let price = v["items"][k]["unit_price"]
        .as_str()
        .unwrap_or("0.00")
        .to_string();
    match rng.random_range(0..9) {
        0 => v["items"][k]["qty"] = 0.into(),
        // Three decimals: a price the shop could not have sent in yuan.
        1 => v["items"][k]["unit_price"] = format!("{price}5").into(),
        // A float where the contract wants a decimal string (money is never a float).
        2 => v["items"][k]["unit_price"] = price.parse::<f64>().unwrap_or(0.0).into(),
        3 => v["items"][k]["unit_price"] = format!("-{price}").into(),
        4 => {
            if let Some(o) = v.as_object_mut() {
                o.remove("recipient");
            }
        }
        5 => v["flag"] = "orange".into(),
        6 => v["items"] = Value::Array(Vec::new()),
        7 => v["id"] = format!("a.b+c@{i}").into(),
        // The phone as a number, as a spreadsheet export leaves it (landlines lose
        // their leading zero, which is why the contract makes it a string).
        _ => {
            let phone = v["recipient"]["phone"].as_str().unwrap_or("0");
            let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
            v["recipient"]["phone"] = digits.parse::<u64>().unwrap_or(0).into();
        }
    }
}

/// The data the generator draws from. Kept as dense tables, one entry or one short
/// row per line, which rustfmt would otherwise spread over hundreds of lines.
#[rustfmt::skip]
mod tables {
    pub const SURNAMES: &[&str] = &[
        "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
        "何", "林", "罗", "郑", "梁", "谢", "宋", "唐", "韩", "冯", "邓", "曹", "彭", "田", "欧阳",
    ];
    pub const GIVEN: &[&str] = &[
        "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
        "超", "秀", "霞", "平", "桂", "英", "华", "玉", "鹏", "辉", "婷", "宇", "浩", "欣", "怡", "涵",
    ];
    /// Characters many label fonts lack: Ext-A (㙟, 䶮), Ext-B outside the BMP (𠮷), and
    /// rare-but-BMP ones that people really carry on their ID cards.
    pub const RARE: &[&str] = &["㙟", "䶮", "𠮷", "堃", "喆", "昇"];
    pub const UYGHUR: &[&str] = &["艾克拜尔·热合曼", "古丽娜尔·阿不都拉", "买买提·吐尔逊", "阿依古丽·艾力"];
    pub const LATIN: &[&str] = &["David Kim", "Anna Schmidt", "Tom Lee", "Maria Garcia"];
    pub const MOBILE_PREFIXES: &[&str] = &[
        "130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158",
        "159", "166", "176", "177", "180", "181", "186", "187", "188", "189", "191", "198", "199",
    ];

    /// Real (province, city, district, postcode, telephone area code) combinations.
    pub const PLACES: &[(&str, &str, &str, &str, &str)] = &[
        ("北京市", "北京市", "朝阳区", "100020", "010"),
        ("北京市", "北京市", "海淀区", "100080", "010"),
        ("上海市", "上海市", "浦东新区", "200120", "021"),
        ("上海市", "上海市", "徐汇区", "200030", "021"),
        ("天津市", "天津市", "南开区", "300100", "022"),
        ("重庆市", "重庆市", "渝中区", "400010", "023"),
        ("广东省", "广州市", "天河区", "510630", "020"),
        ("广东省", "深圳市", "南山区", "518052", "0755"),
        ("广东省", "佛山市", "顺德区", "528300", "0757"),
        ("浙江省", "杭州市", "西湖区", "310012", "0571"),
        ("浙江省", "金华市", "义乌市", "322000", "0579"),
        ("浙江省", "宁波市", "鄞州区", "315100", "0574"),
        ("江苏省", "南京市", "鼓楼区", "210008", "025"),
        ("江苏省", "苏州市", "姑苏区", "215000", "0512"),
        ("福建省", "厦门市", "思明区", "361001", "0592"),
        ("福建省", "福州市", "鼓楼区", "350001", "0591"),
        ("山东省", "青岛市", "市南区", "266001", "0532"),
        ("四川省", "成都市", "武侯区", "610041", "028"),
        ("湖北省", "武汉市", "洪山区", "430070", "027"),
        ("河南省", "郑州市", "金水区", "450000", "0371"),
        ("陕西省", "西安市", "雁塔区", "710061", "029"),
        ("辽宁省", "沈阳市", "和平区", "110001", "024"),
        ("吉林省", "长春市", "朝阳区", "130012", "0431"),
        ("黑龙江省", "哈尔滨市", "南岗区", "150001", "0451"),
        ("河北省", "石家庄市", "长安区", "050011", "0311"),
        ("甘肃省", "兰州市", "城关区", "730030", "0931"),
        ("新疆维吾尔自治区", "喀什地区", "喀什市", "844000", "0998"),
        ("新疆维吾尔自治区", "乌鲁木齐市", "天山区", "830002", "0991"),
        ("内蒙古自治区", "呼和浩特市", "赛罕区", "010020", "0471"),
        ("广西壮族自治区", "南宁市", "青秀区", "530022", "0771"),
        ("宁夏回族自治区", "银川市", "兴庆区", "750001", "0951"),
        ("西藏自治区", "拉萨市", "城关区", "850000", "0891"),
    ];
    pub const STREETS: &[&str] = &[
        "人民路", "中山路", "解放路", "建设路", "文化路", "学府路", "科技园路", "幸福街", "长江路",
        "滨江大道", "文三路",
    ];
    pub const COMPOUNDS: &[&str] = &["阳光花园", "紫薇苑", "锦绣江南", "世纪华庭", "万科城", "绿城桂花苑"];
    pub const ASCII_ROADS: &[&str] = &["Keyuan", "Zhongshan", "Nanjing", "Wensan"];
    pub const DIRECTIONS: &[&str] = &[
        "请放到门口快递柜", "如快递柜已满请放在一楼保安亭", "小区门禁需要刷卡，按门铃报房号即可",
        "送货前请务必提前半小时电话联系", "不要放驿站，驿站太远老人取不了",
        "保安亭电话白天有人接，晚上请联系收件人", "谢谢师傅",
    ];

    pub const NICK_ADJ: &[&str] = &["快乐的", "不吃香菜的", "安静的", "会飞的", "爱吃草莓的", "小小"];
    pub const NICK_NOUN: &[&str] = &["蜗牛", "仙人掌", "企鹅", "柠檬", "兔子", "月亮", "猫"];
    pub const LATIN_NICKS: &[&str] = &["coco-li", "sunny2019", "kevin.zhang", "lucky_star88", "Lily的小店"];
    /// Emoji as shops really see them: a ZWJ family, a flag (two regional indicators), a
    /// skin-tone ZWJ sequence and a variation selector, each one "character" on screen.
    pub const EMOJI_NICKS: &[&str] = &[
        "奶茶续命🧋", "🍓草莓酱", "一家三口👨‍👩‍👧", "🇨🇳中国加油", "喵喵😺", "小太阳☀️", "👩🏽‍💻程序媛",
    ];
    pub const MESSAGES: &[&str] = &[
        "请尽快发货，谢谢", "放门卫室就行", "颜色要和图片一样哦", "不要放发票", "送人的，别放价格单",
        "周末不在家，放快递柜", "能发顺丰吗？",
    ];

    /// The shop's catalog: sku, title, spec ("" for none), unit price, EAN-13 barcode
    /// (692 = China), weight in grams. The same SKUs and barcodes as the shared fixtures,
    /// so a bench demo can mix generated and fixture orders.
    pub const CATALOG: &[(&str, &str, &str, &str, &str, u64)] = &[
        ("ST-GEL-01", "晨光中性笔0.5mm签字笔学生考试用 12支/盒", "黑色 0.5mm", "19.90", "6923456000001", 180),
        ("ST-GEL-02", "晨光中性笔0.5mm签字笔学生考试用 12支/盒", "蓝色 0.5mm", "19.90", "6923456000018", 180),
        ("ST-NOTE-01", "国誉Campus活页本", "B5 80页", "24.50", "6923456001008", 320),
        ("ST-NOTE-02", "国誉Campus活页本", "A5 60页", "16.80", "6923456001015", 210),
        ("ST-POST-01", "3M便利贴654", "黄色 100张", "6.50", "6923456002005", 60),
        ("ST-STPL", "得力订书机0326", "", "12.00", "6923456003002", 150),
        ("ST-JUICE-01", "百乐Juice果汁笔", "黑色 0.5", "8.00", "6923456004009", 12),
        ("ST-MARK-01", "Touch双头马克笔学生美术专用", "48色", "39.00", "6923456005006", 650),
        ("ST-TAPE-01", "和纸胶带手账素材", "樱花款 3卷", "9.90", "6923456006003", 45),
        ("ST-ERASE", "辉柏嘉橡皮擦 2块装", "", "4.50", "6923456028005", 30),
        ("CL-TEE-01", "纯棉圆领短袖T恤男女同款宽松打底衫", "白色 M", "39.00", "6923456008007", 220),
        ("CL-TEE-03", "纯棉圆领短袖T恤男女同款宽松打底衫", "黑色 L", "39.00", "6923456008021", 230),
        ("CL-HOOD-02", "加绒连帽卫衣秋冬款", "燕麦色 L", "129.00", "6923456009011", 620),
        ("CL-JEAN-02", "高腰直筒牛仔裤", "深蓝 28", "159.00", "6923456010017", 570),
        ("CL-SCRF-01", "羊毛混纺围巾", "驼色", "89.00", "6923456011007", 200),
        ("CL-SOCK-01", "运动袜5双装", "均码 白色", "25.90", "6923456012004", 160),
        ("CL-DOWN-01", "轻薄羽绒服短款", "黑色 M", "399.00", "6923456013001", 480),
        ("CL-CAP-01", "棒球帽可调节", "黑色 均码", "49.00", "6923456029002", 120),
        ("CS-LIP-01", "丝绒哑光口红", "#999 正红", "320.00", "6923456014008", 60),
        ("CS-LIP-03", "丝绒哑光口红", "#520 豆沙", "320.00", "6923456014022", 60),
        ("CS-MASK", "玻尿酸补水面膜 10片装", "", "79.00", "6923456015005", 350),
        ("CS-SUN", "清爽防晒霜SPF50+ PA++++ 50ml", "", "128.00", "6923456017009", 90),
        ("CS-SERUM", "修护精华液30ml", "", "268.00", "6923456018006", 120),
        ("CS-HAND", "护手霜礼盒 30g×3", "", "59.00", "6923456030008", 150),
        ("HM-CUP-01", "316不锈钢保温杯500ml", "白色", "89.00", "6923456022003", 380),
        ("HM-CASE-02", "手机壳防摔", "iPhone 15 Pro 磨砂黑", "29.90", "6923456023017", 40),
        ("HM-CABLE", "Type-C数据线快充1m", "", "19.90", "6923456024007", 35),
        ("HM-TOWEL-01", "纯棉毛巾 3条装", "灰色", "35.00", "6923456025004", 300),
        ("HM-SLIP-02", "居家防滑拖鞋", "粉色 36-37", "24.60", "6923456026018", 380),
        ("HM-UMB-01", "晴雨两用折叠伞", "黑色", "45.00", "6923456032002", 330),
        ("GF-CARD", "手写贺卡", "", "0.00", "6923456033009", 15),
    ];

    pub const AUTHORS: &[&str] = &["客服阿珍", "小李", "小王", "张姐", "店长", "仓库老陈"];
    pub const GIFT_MESSAGES: &[&str] = &["生日快乐", "一周年快乐", "新婚快乐，百年好合", "祝妈妈身体健康"];
    pub const INVOICE_TITLES: &[&str] = &["杭州云栈科技有限公司", "上海木子文化传播有限公司", "个人"];
    pub const HOLD_REASONS: &[&str] = &["等顾客确认颜色再发", "地址不全，已联系买家", "买家要改规格，等回复"];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(count: usize, seed: u64) -> GenerateOptions {
        GenerateOptions {
            count,
            seed,
            ..GenerateOptions::default()
        }
    }

    fn ean13_ok(code: &str) -> bool {
        let d: Vec<u32> = code.chars().filter_map(|c| c.to_digit(10)).collect();
        let sum: u32 = d
            .iter()
            .enumerate()
            .map(|(i, x)| if i % 2 == 1 { 3 * x } else { *x })
            .sum();
        code.len() == 13 && d.len() == 13 && sum.is_multiple_of(10)
    }

    /// Paths of the leaves where two JSON values differ, named by field without array
    /// indices (".items.qty"); an array of another length or a missing key counts as
    /// one difference at that path.
    fn diff(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: HashSet<&String> = x.keys().chain(y.keys()).collect();
                for key in keys {
                    match (x.get(key), y.get(key)) {
                        (Some(p), Some(q)) => diff(p, q, format!("{path}.{key}"), out),
                        _ => out.push(format!("{path}.{key}")),
                    }
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (p, q) in x.iter().zip(y) {
                    diff(p, q, path.clone(), out);
                }
            }
            _ if a != b => out.push(path),
            _ => {}
        }
    }

    #[test]
    fn same_seed_same_orders_and_other_seeds_differ() {
        assert_eq!(generate(&opts(300, 7)), generate(&opts(300, 7)));
        assert_ne!(generate(&opts(300, 7)), generate(&opts(300, 8)));
    }

    #[test]
    fn every_barcode_is_a_valid_ean13_from_china() {
        for &(sku, .., barcode, _) in CATALOG {
            assert!(
                ean13_ok(barcode) && barcode.starts_with("692"),
                "{sku}: {barcode}"
            );
        }
        for o in generate(&opts(500, 1)) {
            for item in &o.items {
                assert!(ean13_ok(item.barcode.as_deref().unwrap()), "{}", o.id);
            }
        }
    }

    #[test]
    fn valid_orders_keep_the_contract() {
        let orders = generate(&opts(2000, 11));
        let ids: HashSet<&str> = orders.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids.len(), orders.len(), "ids are unique");
        for o in &orders {
            assert!(
                o.id.len() == 19 && o.id.bytes().all(|b| b.is_ascii_digit()),
                "{}",
                o.id
            );
            assert_eq!(
                (o.status, o.refund, o.flag),
                (Status::Paid, Refund::None, Flag::Yellow)
            );
            let paid = o.paid_at.unwrap();
            assert!(o.created_at < paid && paid < o.updated_at, "{}", o.id);
            assert_eq!(paid.offset().local_minus_utc(), 8 * 3600);
            assert!(
                o.memos.windows(2).all(|w| w[0].at <= w[1].at),
                "memos oldest first"
            );
            assert!(o.memos.iter().all(|m| paid < m.at && m.at < o.updated_at));
            assert!((1..=3).contains(&o.version) && (1..=8).contains(&o.items.len()));
            for item in &o.items {
                let (yuan, fen) = item.unit_price.split_once('.').unwrap();
                assert!(
                    item.qty >= 1 && !yuan.is_empty() && fen.len() == 2,
                    "{}",
                    o.id
                );
            }
            assert!(o.recipient.address.chars().count() <= 300, "{}", o.id);
        }
    }

    /// The edge cases are part of the normal mix: a large sample holds each of them.
    #[test]
    fn the_mix_holds_the_hard_cases() {
        let orders = generate(&opts(3000, 11));
        let has = |f: &dyn Fn(&Order) -> bool| orders.iter().any(f);
        assert!(
            has(&|o| o.recipient.name.chars().any(|c| c as u32 > 0xFFFF)),
            "Ext-B name"
        );
        assert!(has(&|o| o.recipient.name.contains('·')), "Uyghur name");
        assert!(has(&|o| o.recipient.phone.starts_with('0')), "landline");
        assert!(has(&|o| o.recipient.phone.contains('*')), "masked phone");
        assert!(has(&|o| o.recipient.district.is_none()), "missing district");
        assert!(
            has(&|o| o.recipient.address.chars().count() > 200),
            "long address"
        );
        assert!(
            has(&|o| o.buyer.nick.contains('\u{200D}')),
            "ZWJ emoji nick"
        );
        assert!(has(&|o| o.is_urgent()), "urgent order");
        assert!(
            has(&|o| o.memos.len() == 2 && o.memos[1].text.starts_with("改发中通")),
            "memos that disagree"
        );
    }

    #[test]
    fn orders_round_trip_through_json() {
        let o = opts(400, 3);
        let orders = generate(&o);
        let values = generate_json(&o);
        for (order, value) in orders.iter().zip(values) {
            let back: Order = serde_json::from_str(&value.to_string()).unwrap();
            assert_eq!(&back, order);
        }
    }

    #[test]
    fn invalid_rate_breaks_that_many_orders_in_one_field_each() {
        let o = GenerateOptions {
            invalid_rate: 0.1,
            ..opts(400, 5)
        };
        let valid = generate(&o);
        let mut broken = 0;
        let mut fields = HashSet::new();
        for (order, value) in valid.iter().zip(generate_json(&o)) {
            let mut paths = Vec::new();
            diff(
                &serde_json::to_value(order).unwrap(),
                &value,
                String::new(),
                &mut paths,
            );
            if !paths.is_empty() {
                assert_eq!(paths.len(), 1, "{}: {paths:?}", order.id);
                fields.insert(paths.remove(0));
                broken += 1;
            }
        }
        assert_eq!(broken, 40);
        let expected = [
            ".id",
            ".flag",
            ".recipient",
            ".recipient.phone",
            ".items",
            ".items.qty",
            ".items.unit_price",
        ];
        assert!(
            fields.iter().all(|f| expected.contains(&f.as_str())),
            "{fields:?}"
        );
        assert!(fields.len() >= 6, "the breakage kinds vary: {fields:?}");
    }

    #[test]
    fn off_queue_rate_moves_only_the_picked_orders() {
        let base = generate(&opts(500, 9));
        let off = generate(&GenerateOptions {
            off_queue_rate: 0.2,
            ..opts(500, 9)
        });
        let moved: Vec<_> = base
            .iter()
            .zip(&off)
            .filter(|(a, b)| a != b)
            .map(|(_, b)| b)
            .collect();
        assert_eq!(moved.len(), 100);
        for o in moved {
            assert_ne!(o.flag, Flag::Yellow, "{}", o.id);
            assert_eq!(o.status == Status::AwaitingPayment, o.paid_at.is_none());
        }
    }
}
