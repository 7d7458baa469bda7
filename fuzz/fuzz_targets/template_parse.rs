//! Arbitrary bytes as a layout template (`templates/*.toml`): `Template::parse`
//! must answer with a template or a `TemplateError` naming a line, never panic,
//! and a template that loads must render a fixed order (or a manifest) to a PDF
//! or a `RenderError` — never a panic, never a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use station::config::Sender;
use station::order::Order;
use station::order::validate::{Origin, validate};
use station::render::barcode::Dpi;
use station::render::layout::{
    ContextKind, DocInput, Template, manifest_context, render, render_manifest,
};
use std::sync::OnceLock;

const FIXTURE: &str = include_str!("../../tests/data/orders-200.json");

fn orders() -> &'static Vec<Order> {
    static ORDERS: OnceLock<Vec<Order>> = OnceLock::new();
    ORDERS.get_or_init(|| {
        let all: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
        let all = all.as_array().unwrap();
        // The first order and the one with the longest address.
        let longest = all
            .iter()
            .max_by_key(|o| o["recipient"]["address"].as_str().map_or(0, str::len))
            .unwrap();
        [&all[0], longest]
            .into_iter()
            .map(|v| validate(v, Origin::Direct).unwrap())
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let template = match Template::parse("fuzz", "fuzz.toml", src, Dpi(203)) {
        Ok(t) => t,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let (w, h) = template.page_mm();
    assert!(w.is_finite() && h.is_finite());
    let sender = Sender {
        name: "仓库".into(),
        phone: "021-12345678".into(),
        address: "上海市浦东新区测试路1号".into(),
    };
    let docs: Vec<DocInput> = orders()
        .iter()
        .map(|o| {
            let mut d = DocInput::new(o, &sender, "测试小店", "2026-11-11 09:30".into());
            d.tracking_no = Some("9910000001");
            d.courier_code = Some("ZTO");
            d.courier_name = Some("中通");
            d.wave = Some("wave-0001");
            d
        })
        .collect();
    let rendered = match template.context_kind() {
        ContextKind::Order => render(&template, &docs),
        ContextKind::Manifest => render_manifest(&template, &manifest_context(&docs)),
        ContextKind::Picklist => {
            let locations = station::picking::Locations::default();
            let mut list = station::picking::PickList::new(&locations);
            for (i, o) in orders().iter().enumerate() {
                list.add(i as u64 + 1, o, "9910000001");
            }
            let picklist = list.finish("1", "2026-11-11 09:30".into(), "测试小店");
            station::render::layout::render_picklist(&template, &picklist)
        }
    };
    if let Ok(r) = rendered {
        assert!(r.pdf.starts_with(b"%PDF"));
    }
});
