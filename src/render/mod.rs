//! Turning orders into printable documents (waybills, packing slips, manifests).
//!
//! Groundwork for the documents issue: fonts with a per-character fallback chain
//! and text measuring (`fonts`), and barcodes drawn as vector shapes snapped to
//! printer dots (`barcode`), templates laid out into pages (`layout`), privacy
//! masking (`mask`) and the PDF bytes written out (`pdf`). Architecture
//! invariant: render never touches the store and knows no configuration type:
//! it is handed what it prints (`Sender` lives here, and `config` reuses it).

pub mod address;
pub mod barcode;
pub mod fonts;
pub mod layout;
pub mod mask;
pub mod pdf;
pub mod raster;
pub mod thermal;

use serde::{Deserialize, Serialize};

/// Who ships: printed in the 寄件人 block of every waybill (`[sender]` in the config).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sender {
    pub name: String,
    pub phone: String,
    pub address: String,
}

/// The routing an e-waybill service returns with a number, printed on the
/// waybill as given so the courier's sorting centres can route the parcel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Routing {
    /// 三段码: destination centre, branch, courier route ("571-W04 03"), printed largest.
    pub sort_code: String,
    /// 大头笔: the big destination text ("杭州 西湖").
    pub short_address: String,
    /// 集包地: the consolidation point ("杭州转运中心").
    pub package_center: String,
}

impl Sender {
    /// The fields a courier needs that are empty (`name`, `phone`, `address`).
    pub fn missing(&self) -> Vec<&'static str> {
        [
            ("name", &self.name),
            ("phone", &self.phone),
            ("address", &self.address),
        ]
        .into_iter()
        .filter(|(_, v)| v.trim().is_empty())
        .map(|(k, _)| k)
        .collect()
    }

    /// A sample sender for the demo and the benchmarks (never for a real wave).
    pub fn sample() -> Sender {
        Sender {
            name: "山海小铺 发货仓".into(),
            phone: "0571-88886666".into(),
            address: "浙江省杭州市余杭区仓前街道 示例路 1 号 3 号库".into(),
        }
    }
}
