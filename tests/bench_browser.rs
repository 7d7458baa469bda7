//! End to end in a real browser: the bench page of the real `station serve`,
//! driven in headless Debian Chromium through chromedriver (fantoccini, plain
//! WebDriver; nothing downloads a browser), against the real simulator.
//!
//! The scanner is simulated the way a HID scanner works: keystrokes into the
//! focused input, then Enter. Function keys drive the rest.

mod common;

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

const ENTER: &str = "\u{E007}";
const F2: &str = "\u{E032}";
const F3: &str = "\u{E033}";
const F4: &str = "\u{E034}";
const F6: &str = "\u{E036}";
const F7: &str = "\u{E037}";
const F9: &str = "\u{E039}";
const F10: &str = "\u{E03A}";
const F1: &str = "\u{E031}";

fn tools() -> bool {
    let have = |t: &str| {
        Command::new(t)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let ok = have(CHROMIUM) && have(CHROMEDRIVER);
    assert!(
        ok || std::env::var_os("STATION_REQUIRE_TOOLS").is_none(),
        "install chromium chromium-driver (Debian packages) for the browser test"
    );
    if !ok {
        eprintln!("skipped the browser test: install chromium chromium-driver");
    }
    ok
}

/// A running chromedriver on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        use std::os::unix::process::CommandExt as _;
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            // Its own process group, with the browsers it starts, so that a
            // failing test takes them all down (see Drop).
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver and every Chromium process it started (a test that
        // panicked never closed its session).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--autoplay-policy=no-user-gesture-required",
                format!("--user-data-dir={}", profile.display()),
                "--window-size=1280,1000",
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromium session")
}

/// The page's answer to one scan or key: what the banner says.
#[derive(Debug)]
struct Shown {
    verdict: String,
    code: String,
    text: String,
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

/// Wait until the page has finished `n` scans/keys in all and is idle.
async fn settle(c: &Client, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = js(
            c,
            "return [document.body.dataset.scans, document.body.dataset.busy];",
        )
        .await;
        if v[0].as_str().and_then(|s| s.parse::<u64>().ok()) == Some(n) && v[1] == "0" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the page did not finish job {n}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn jobs_done(c: &Client) -> u64 {
    js(c, "return document.body.dataset.scans;")
        .await
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn shown(c: &Client) -> Shown {
    let v = js(
        c,
        "return [document.getElementById('feedback').dataset.verdict || '', document.body.dataset.code || '', document.getElementById('feedback').innerText];",
    )
    .await;
    Shown {
        verdict: v[0].as_str().unwrap().into(),
        code: v[1].as_str().unwrap().into(),
        text: v[2].as_str().unwrap().into(),
    }
}

/// Type into the focused scan input and press Enter, as a scanner does.
async fn scan(c: &Client, code: &str) -> Shown {
    let n = jobs_done(c).await;
    let input = c.active_element().await.unwrap();
    assert_eq!(
        input.attr("id").await.unwrap().as_deref(),
        Some("scan"),
        "the scan input keeps focus"
    );
    input.send_keys(&format!("{code}{ENTER}")).await.unwrap();
    settle(c, n + 1).await;
    shown(c).await
}

/// Scan as a scanner does under a Chinese input method: its keys arrive as
/// "Process" key events (the IME is composing) while the field fills with the
/// IME's Chinese, and the Enter that ends the code is taken by the IME.
async fn ime_scan(c: &Client, code: &str) -> Shown {
    let n = jobs_done(c).await;
    let script = r#"
        const input = document.getElementById('scan');
        const key = (k, code, shift) => input.dispatchEvent(new KeyboardEvent('keydown',
            { key: k, code, shiftKey: shift, isComposing: true, bubbles: true, cancelable: true }));
        for (const ch of arguments[0]) {
            if (/[0-9]/.test(ch)) key('Process', 'Digit' + ch, false);
            else if (/[A-Za-z]/.test(ch)) key('Process', 'Key' + ch.toUpperCase(), ch !== ch.toLowerCase());
            else if (ch === '-') key('Process', 'Minus', false);
        }
        input.value = '是否一二三';
        key('Enter', 'Enter', false);
        return input.value;
    "#;
    let left = c
        .execute(script, vec![Value::String(code.to_string())])
        .await
        .unwrap();
    assert_eq!(left, "", "the field is cleared once the code is sent");
    settle(c, n + 1).await;
    shown(c).await
}

/// Press a function key (it runs as one job, after the scans before it).
async fn key(c: &Client, k: &str) -> Shown {
    let n = jobs_done(c).await;
    c.active_element()
        .await
        .unwrap()
        .send_keys(k)
        .await
        .unwrap();
    settle(c, n + 1).await;
    shown(c).await
}

/// With STATION_BENCH_SCREENSHOTS=DIR, save what the bench shows as DIR/NAME.png.
async fn snap(c: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("STATION_BENCH_SCREENSHOTS") {
        let png = c.screenshot().await.unwrap();
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).unwrap();
    }
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

const NICK: &str = r#"<img src=x onerror="window.__xss=1">买家"#;
const MESSAGE: &str = "<script>window.__xss=2</script>请发顺丰";
const MEMO: &str = r#"<b>改地址</b><img src=x onerror=window.__xss=3>"#;

#[test]
fn a_bench_packs_stops_intercepts_and_hands_over_in_a_real_browser() {
    if !tools() {
        return;
    }
    // Four fixture orders: A packs (its first item has no barcode: the SKU is
    // scanned), B gets a wrong item and a wrong waybill first, C is refunded on
    // the shop after print, D carries markup in its nick, message and memo.
    let all = read_json(&data("orders-200.json"));
    let pick = |i: usize| all[i].clone();
    let mut a = pick(3);
    a["items"][0]["barcode"] = Value::Null;
    let b = pick(5);
    // C is urgent and carries a gift card: once intercepted, neither
    // "pack first" nor "put in the parcel" may show.
    let mut c_ = pick(0);
    c_["shipping"]["service"] = json!("express");
    c_["options"]["gift_message"] = json!("新年快乐");
    let mut d = pick(7);
    d["buyer"]["nick"] = json!(NICK);
    d["buyer"]["message"] = json!(MESSAGE);
    d["memos"] =
        json!([{"text": MEMO, "author": "客服<i>阿珍</i>", "at": "2026-11-11T09:00:00+08:00"}]);
    // E: urgent, wants an invoice and a gift card, and its one item is not on
    // the shelf (F3, 缺货).
    let mut e = pick(6);
    e["shipping"]["service"] = json!("express");
    e["options"]["invoice_title"] = json!("杭州某某科技有限公司");
    e["options"]["gift_message"] = json!("生日快乐 <3");
    // F: eight different items, for the screen check at 1366×768.
    let mut f = pick(9);
    let mut seen = std::collections::BTreeSet::new();
    let eight: Vec<Value> = all
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o["items"].as_array().unwrap().clone())
        .filter(|i| i["barcode"].is_string() && seen.insert(i["sku"].to_string()))
        .take(8)
        .map(|mut i| {
            i["qty"] = json!(1);
            i
        })
        .collect();
    f["items"] = json!(eight);
    for o in [&a, &b, &c_, &d, &e, &f] {
        assert!(
            o["shipping"]["courier"].is_null(),
            "fixture orders ship with the default courier"
        );
    }
    let st = Station::new();
    let orders = st.write("orders.json", &json!([a, b, c_, d, e, f]).to_string());
    let sim = Sim::start(&orders, "tok-browser", &[]);
    let pulled = st.pull(&sim, &[]);
    ok(&pulled);
    let printed: Value = serde_json::from_str(&ok(&st
        .cmd()
        .args(["--json", "print", "--out", "labels"])
        .output()
        .unwrap()))
    .unwrap();
    let waybill = |o: &Value| {
        printed["orders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["order_id"] == o["id"])
            .unwrap_or_else(|| panic!("order {} printed: {printed}", o["id"]))["tracking_no"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (wa, wb, wc, wd, we) = (
        waybill(&a),
        waybill(&b),
        waybill(&c_),
        waybill(&d),
        waybill(&e),
    );
    let id = |o: &Value| o["id"].as_str().unwrap().to_string();
    st.write("station.toml", &operators_toml(&[("小王", "2468")]));
    let serve = Serve::start(&st, Some(&sim));
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let manifest = rt.block_on(async {
        let c = browser(&driver, profile.path()).await;
        c.goto(&serve.url).await.unwrap();
        // Sign in by keyboard: name, Tab, PIN, Tab, bench, Enter.
        let deadline = Instant::now() + Duration::from_secs(10);
        while js(&c, "return document.body.dataset.ready || '';").await != "1" {
            assert!(Instant::now() < deadline, "the page did not load");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            c.find(Locator::Id("login"))
                .await
                .unwrap()
                .is_displayed()
                .await
                .unwrap()
        );
        let focused = c.active_element().await.unwrap();
        assert_eq!(
            focused.attr("id").await.unwrap().as_deref(),
            Some("login-name")
        );
        focused
            .send_keys("小王\u{E004}1111\u{E004}1号台\u{E007}")
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while text(&c, "#login-error").await.is_empty() {
            assert!(Instant::now() < deadline, "no answer to a wrong PIN");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(text(&c, "#login-error").await.contains("PIN"));
        // The PIN field was cleared and has focus: type the right one.
        c.active_element()
            .await
            .unwrap()
            .send_keys(&format!("2468{ENTER}"))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !c
            .find(Locator::Id("work"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
        {
            assert!(Instant::now() < deadline, "sign-in did not reach the bench");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(text(&c, "#who").await, "小王 · 1号台");

        // A: slip (typed by the scanner under a Chinese IME), items (one by
        // SKU), waybill → packed, all green.
        let s = ime_scan(&c, &id(&a)).await;
        assert_eq!(
            (s.verdict.as_str(), s.code.as_str()),
            ("ok", "order_opened"),
            "{s:?}"
        );
        assert_eq!(text(&c, "#order-id").await, id(&a));
        assert_eq!(text(&c, "#order-tracking").await, wa);
        assert_eq!(text(&c, "#order-shop").await, "已向店铺核对");
        let codes = item_codes(&a);
        assert_eq!(codes[0], a["items"][0]["sku"].as_str().unwrap());
        for (i, code) in codes.iter().enumerate() {
            let s = scan(&c, code).await;
            assert_eq!(s.verdict, "ok", "item {code}: {s:?}");
            let want = if i + 1 == codes.len() {
                "items_complete"
            } else {
                "item_ok"
            };
            assert_eq!(s.code, want);
        }
        let ticks = c
            .find_all(Locator::Css("#items-body tr.done"))
            .await
            .unwrap();
        assert_eq!(
            ticks.len(),
            a["items"].as_array().unwrap().len(),
            "every line ticked"
        );
        let s = scan(&c, &wa).await;
        assert_eq!(
            (s.verdict.as_str(), s.code.as_str()),
            ("ok", "packed"),
            "{s:?}"
        );
        assert!(s.text.contains("通过"), "{s:?}");
        assert_eq!(
            js(&c, "return document.body.dataset.lastSound;").await,
            "ok"
        );
        let bg = js(
            &c,
            "return getComputedStyle(document.getElementById('feedback')).backgroundColor;",
        )
        .await;
        assert_eq!(bg, "rgb(27, 138, 47)", "green");
        snap(&c, "bench-ok").await;

        // E: the slip notes show (urgent, invoice, gift card in its own box);
        // then F3, its item is out of stock: set aside, its number voided.
        let s = scan(&c, &id(&e)).await;
        assert_eq!(s.code, "order_opened", "{s:?}");
        assert!(
            c.find(Locator::Id("order-urgent"))
                .await
                .unwrap()
                .is_displayed()
                .await
                .unwrap()
        );
        assert!(text(&c, "#order-urgent").await.contains("加急"));
        assert_eq!(
            text(&c, "#invoice-title").await,
            "需开发票 · 抬头 杭州某某科技有限公司"
        );
        assert_eq!(text(&c, "#gift-message").await, "生日快乐 <3");
        snap(&c, "bench-slip-notes").await;
        let s = key(&c, F3).await;
        assert!(s.text.contains("缺货"), "{s:?}");
        let s = scan(&c, "CL-SOCK-01").await;
        assert_eq!(
            (s.verdict.as_str(), s.code.as_str()),
            ("short", "out_of_stock"),
            "{s:?}"
        );
        assert!(
            s.text.contains("缺货已登记") && s.text.contains(&we),
            "{s:?}"
        );
        assert_eq!(
            js(&c, "return document.getElementById('order-panel').hidden;").await,
            true,
            "the order left the bench"
        );
        snap(&c, "bench-out-of-stock").await;

        // F7: where is E? Set aside, its number void.
        key(&c, F7).await;
        assert_eq!(js(&c, "return document.body.dataset.mode;").await, "search");
        let s = scan(&c, &id(&e)).await;
        assert_eq!(s.code, "found", "{s:?}");
        assert_eq!(text(&c, "#search-results .story-state").await, "缺货");
        let numbers = text(&c, "#search-results .story-tracking").await;
        assert!(
            numbers.contains(&we) && numbers.contains("作废"),
            "{numbers}"
        );
        assert!(
            text(&c, "#search-results .timeline")
                .await
                .contains("bench.out_of_stock")
        );
        // D by its nick: markup in the nick and the memo is text there too.
        let s = scan(&c, NICK).await;
        assert_eq!(s.code, "found", "{s:?}");
        assert_eq!(
            text(&c, "#search-results [data-field=memo] dd").await,
            format!("{MEMO} · 客服<i>阿珍</i>")
        );
        assert_eq!(
            text(&c, "#search-results [data-field=buyer] dd").await,
            NICK
        );
        snap(&c, "search-markup-as-text").await;
        let injected = js(
            &c,
            "return document.querySelectorAll('#work img, #work script, #work b, #work i').length;",
        )
        .await;
        assert_eq!(injected, 0, "no element came from the data");
        assert_eq!(js(&c, "return typeof window.__xss;").await, "undefined");

        // F10: today's report counts E out of stock and A packed at 1号台.
        key(&c, F10).await;
        assert_eq!(js(&c, "return document.body.dataset.mode;").await, "report");
        assert_eq!(
            text(&c, "#report-body [data-figure=out_of_stock] dd").await,
            "1"
        );
        assert_eq!(text(&c, "#report-body [data-figure=packed] dd").await, "1");
        snap(&c, "report").await;
        key(&c, F10).await;
        assert_eq!(js(&c, "return document.body.dataset.mode;").await, "bench");

        // B: its slip is scanned while the station is unreachable (the first
        // two requests fail, as while `serve` restarts): the page tries again
        // and the scan lands, instead of being lost.
        js(
            &c,
            "window.__fails = 2; window.__fetch = window.fetch; \
             window.fetch = (p, o) => (p === '/api/scan' && window.__fails-- > 0) \
               ? Promise.reject(new TypeError('Failed to fetch')) : window.__fetch(p, o); \
             return 0;",
        )
        .await;
        let s = scan(&c, &id(&b)).await;
        assert_eq!(s.code, "order_opened", "{s:?}");
        assert_eq!(
            js(
                &c,
                "const n = window.__fails; window.fetch = window.__fetch; return n;"
            )
            .await,
            -1,
            "two failed tries, then the scan went through"
        );
        // B: a wrong item and a wrong waybill are STOP (red, long low beep).
        let s = scan(&c, &item_codes(&a)[1]).await;
        assert_eq!(
            (s.verdict.as_str(), s.code.as_str()),
            ("stop", "wrong_item"),
            "{s:?}"
        );
        assert!(
            s.text.contains("停") && s.text.contains("不是订单"),
            "{s:?}"
        );
        assert_eq!(
            js(&c, "return document.body.dataset.lastSound;").await,
            "stop"
        );
        let bg = js(
            &c,
            "return getComputedStyle(document.getElementById('feedback')).backgroundColor;",
        )
        .await;
        assert_eq!(bg, "rgb(196, 0, 0)", "red");
        snap(&c, "bench-stop").await;
        // Typed faster than the page answers: every item of B in one burst of
        // keys. The page queues the scans and answers each in turn; none is
        // lost or merged.
        let n = jobs_done(&c).await;
        let codes = item_codes(&b);
        eprintln!("B: {} item scans in one burst", codes.len());
        let burst: String = codes.iter().map(|code| format!("{code}{ENTER}")).collect();
        c.active_element()
            .await
            .unwrap()
            .send_keys(&burst)
            .await
            .unwrap();
        settle(&c, n + codes.len() as u64).await;
        let s = shown(&c).await;
        assert_eq!(
            (s.verdict.as_str(), s.code.as_str()),
            ("ok", "items_complete"),
            "{s:?}"
        );
        let s = scan(&c, &wa).await;
        assert_eq!(
            (s.verdict.as_str(), s.code.as_str()),
            ("stop", "wrong_waybill"),
            "{s:?}"
        );
        let s = scan(&c, &wb).await;
        assert_eq!(s.code, "packed", "{s:?}");

        // C: refunded on the shop after print → INTERCEPT when its slip is scanned.
        // (The admin helper blocks on its own runtime: call it off this one.)
        std::thread::scope(|s| {
            s.spawn(|| sim.mutate(&id(&c_), json!({"refund": "requested"})));
        });
        let s = scan(&c, &id(&c_)).await;
        assert_eq!(
            (s.verdict.as_str(), s.code.as_str()),
            ("intercept", "intercept"),
            "{s:?}"
        );
        assert!(s.text.contains("拦截 — 不要发货"), "{s:?}");
        assert_eq!(
            js(&c, "return document.body.dataset.lastSound;").await,
            "intercept"
        );
        assert_eq!(text(&c, "#order-state").await, "拦截");
        assert_eq!(text(&c, "#order-reason").await, "买家申请退款");
        for hidden in ["order-urgent", "gift-box"] {
            assert!(
                !c.find(Locator::Id(hidden))
                    .await
                    .unwrap()
                    .is_displayed()
                    .await
                    .unwrap(),
                "#{hidden} shows on an intercepted order"
            );
        }
        snap(&c, "bench-intercept").await;

        // English by F9, and back.
        key(&c, F9).await;
        assert!(shown(&c).await.text.contains("INTERCEPT — do not ship"));
        assert_eq!(text(&c, "#order-state").await, "intercept");
        key(&c, F9).await;

        // D: markup from the shop shows as text, and nothing it says runs.
        let s = scan(&c, &id(&d)).await;
        assert_eq!(s.code, "order_opened", "{s:?}");
        assert_eq!(text(&c, "#buyer-nick").await, NICK);
        assert_eq!(text(&c, "#buyer-message").await, MESSAGE);
        assert_eq!(text(&c, "#memo").await, format!("{MEMO} · 客服<i>阿珍</i>"));
        let injected = js(
            &c,
            "return document.querySelectorAll('#work img, #work script, #work b, #work i').length;",
        )
        .await;
        assert_eq!(injected, 0, "no element came from the data");
        assert_eq!(js(&c, "return typeof window.__xss;").await, "undefined");
        snap(&c, "bench-markup-as-text").await;

        // D changes its address on the shop after print: its waybill is STOP
        // with a one-key reprint (F2), and the new label packs it.
        for code in item_codes(&d) {
            assert_eq!(scan(&c, &code).await.verdict, "ok");
        }
        std::thread::scope(|s| {
            s.spawn(|| {
                sim.mutate(
                    &id(&d),
                    json!({"address": "文三路 88 号 华星科技大厦 12 楼"}),
                )
            });
        });
        let s = scan(&c, &wd).await;
        assert_eq!(
            (s.verdict.as_str(), s.code.as_str()),
            ("stop", "changed_after_print"),
            "{s:?}"
        );
        // No bench printer here: F2 makes the new label and says it did not
        // print (no server file path), in the bench's colour for "act".
        let s = key(&c, F2).await;
        assert_eq!(s.verdict, "stop", "F2 without a printer: {s:?}");
        assert!(s.text.contains("没有设置打印机"), "{s:?}");
        assert!(!s.text.contains(".pdf"), "{s:?}");
        let new_wd = text(&c, "#order-tracking").await;
        assert_ne!(new_wd, wd, "a changed order gets a new number");
        assert!(s.text.contains(&new_wd), "{s:?}");
        for code in item_codes(&d) {
            assert_eq!(scan(&c, &code).await.verdict, "ok");
        }
        let s = scan(&c, &wd).await;
        assert_eq!(s.verdict, "stop", "the old label is void: {s:?}");
        let s = scan(&c, &new_wd).await;
        assert_eq!(s.code, "packed", "{s:?}");

        // F, eight items, on a 1366×768 and a 1920×1080 bench monitor: after
        // two scans, the verdict and every item still to scan are on the
        // screen (above the key strip, no scrolling), first, with the next step.
        let codes = item_codes(&f);
        assert_eq!(codes.len(), 8);
        for (w, h) in [(1366, 768), (1920, 1080)] {
            c.set_window_size(w, h).await.unwrap();
            if w == 1366 {
                assert_eq!(scan(&c, &id(&f)).await.code, "order_opened");
                let next = text(&c, "#next").await;
                assert!(next.contains("扫商品") && next.contains('8'), "{next}");
                for code in &codes[..2] {
                    assert_eq!(scan(&c, code).await.verdict, "ok");
                }
            }
            let next = text(&c, "#next").await;
            assert!(next.contains("扫商品") && next.contains('6'), "{next}");
            let seen = js(
                &c,
                r#"
                const limit = document.getElementById('help').getBoundingClientRect().top;
                const inside = (e) => { const r = e.getBoundingClientRect();
                    return r.height > 0 && r.top >= 0 && r.bottom <= limit + 0.5; };
                const rows = [...document.querySelectorAll('#items-body tr')];
                const firstDone = rows.findIndex((r) => r.classList.contains('done'));
                const todo = rows.filter((r) => !r.classList.contains('done'));
                return {
                  todo: todo.length,
                  todo_visible: todo.every(inside),
                  todo_first: firstDone === -1 || rows.slice(firstDone).every((r) => r.classList.contains('done')),
                  verdict: inside(document.getElementById('verdict')),
                  next: inside(document.getElementById('next')),
                  order: inside(document.getElementById('order-id')),
                  scrolls: document.scrollingElement.scrollHeight > innerHeight + 1,
                  width: innerWidth, height: innerHeight,
                };"#,
            )
            .await;
            snap(&c, &format!("bench-8-items-{w}x{h}")).await;
            assert_eq!(seen["todo"], 6, "{w}×{h}: {seen}");
            for k in ["todo_visible", "todo_first", "verdict", "next", "order"] {
                assert_eq!(seen[k], true, "{w}×{h}: {k}: {seen}");
            }
            assert_eq!(seen["scrolls"], false, "{w}×{h}: the page scrolls: {seen}");
        }
        c.set_window_size(1280, 1000).await.unwrap();

        // Handover: F4, courier code, parcels; C (intercepted) is refused.
        key(&c, F4).await;
        assert_eq!(
            js(&c, "return document.body.dataset.mode;").await,
            "handover"
        );
        let s = scan(&c, "ZTO").await;
        assert_eq!(s.code, "batch_open", "{s:?}");
        let s = scan(&c, &wa).await;
        assert_eq!(
            (s.verdict.as_str(), s.code.as_str()),
            ("ok", "accepted"),
            "{s:?}"
        );
        let s = scan(&c, &wb).await;
        assert_eq!(s.code, "accepted", "{s:?}");
        assert_eq!(text(&c, "#handover-count").await, "2");
        let waiting = text(&c, "#handover-waiting").await;
        assert!(
            waiting.contains(&new_wd),
            "D is packed for ZTO and not scanned: {waiting}"
        );
        assert!(!waiting.contains(&wa), "{waiting}");
        let s = scan(&c, &wd).await;
        assert_eq!(
            (s.verdict.as_str(), s.code.as_str()),
            ("stop", "voided"),
            "{s:?}"
        );
        let s = scan(&c, &wb).await;
        assert_eq!(
            (s.verdict.as_str(), s.code.as_str()),
            ("stop", "duplicate"),
            "{s:?}"
        );
        let s = scan(&c, &wc).await;
        assert_eq!(s.code, "intercept", "{s:?}");
        assert_ne!(s.verdict, "ok");
        assert_eq!(text(&c, "#handover-count").await, "2");
        // F6 asks to confirm; F6 again closes.
        let s = key(&c, F6).await;
        assert!(s.text.contains("再按一次 F6"), "{s:?}");
        let s = key(&c, F6).await;
        assert_eq!(
            (s.verdict.as_str(), s.code.as_str()),
            ("ok", "closed"),
            "{s:?}"
        );
        let manifest = text(&c, "#handover-manifest").await;
        assert!(manifest.ends_with(".pdf"), "{manifest}");
        assert!(s.text.contains(&manifest), "{s:?}");
        snap(&c, "handover-closed").await;

        // A comes back (退货登记, F1) at 1366×768: its waybill shows what
        // the parcel held; a code not in it is a STOP; its items, reason 2
        // (质量问题), F3 damaged, F6 records it.
        c.set_window_size(1366, 768).await.unwrap();
        key(&c, F1).await;
        assert_eq!(js(&c, "return document.body.dataset.mode;").await, "returns");
        assert!(text(&c, "#hint").await.contains("退货登记"));
        let s = scan(&c, &wc).await;
        assert_eq!((s.verdict.as_str(), s.code.as_str()), ("stop", "return_refused"), "C never left: {s:?}");
        let s = scan(&c, &wa).await;
        assert_eq!(s.code, "return_parcel", "{s:?}");
        let panel = text(&c, "#ret-parcel").await;
        assert!(panel.contains(&id(&a)) && panel.contains(&wa), "{panel}");
        let s = scan(&c, "NOT-IN-THIS-PARCEL").await;
        assert_eq!((s.verdict.as_str(), s.code.as_str()), ("stop", "return_unknown_item"), "{s:?}");
        let codes = item_codes(&a);
        for code in &codes {
            let s = scan(&c, code).await;
            assert_eq!((s.verdict.as_str(), s.code.as_str()), ("ok", "return_item"), "{s:?}");
        }
        let s = scan(&c, &codes[0]).await;
        assert_eq!(s.code, "return_too_many", "one more than the parcel held: {s:?}");
        scan(&c, "2").await;
        assert_eq!(text(&c, "#ret-reason").await, "质量问题");
        key(&c, F3).await;
        assert_eq!(text(&c, "#ret-condition").await, "破损");
        let visible = js(
            &c,
            "const r = document.getElementById('ret-items').getBoundingClientRect(); return r.bottom <= window.innerHeight;",
        )
        .await;
        assert_eq!(visible, true, "the returned parcel's items fit at 1366×768");
        snap(&c, "returns").await;
        let s = key(&c, F6).await;
        assert_eq!((s.verdict.as_str(), s.code.as_str()), ("ok", "returned"), "{s:?}");
        assert!(s.text.contains("退货 #1 已登记") && s.text.contains(&id(&a)), "{s:?}");
        key(&c, F1).await;
        assert_eq!(js(&c, "return document.body.dataset.mode;").await, "bench");
        c.close().await.unwrap();
        manifest
    });
    // The return as recorded: who, where, what, and the memo the shop gets.
    let story: Value = serde_json::from_str(&ok(&st
        .cmd()
        .args(["--json", "show", &id(&a)])
        .output()
        .unwrap()))
    .unwrap();
    let returned = story[0]["returns"].as_array().unwrap();
    let back: u64 = returned.iter().map(|r| r["qty"].as_u64().unwrap()).sum();
    assert_eq!(back as usize, item_codes(&a).len(), "{story}");
    assert!(
        returned.iter().all(|r| r["operator"] == "小王"
            && r["bench"] == "1号台"
            && r["condition"] == "damaged"
            && r["reason"] == "质量问题"),
        "{story}"
    );

    let path = std::path::Path::new(&manifest);
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        st.dir.path().join(path)
    };
    assert!(path.exists(), "manifest {} exists", path.display());
    let status = st.status();
    assert_eq!(
        status["counts"]["handed_over"].as_u64().unwrap_or(0)
            + status["counts"]["shipped"].as_u64().unwrap_or(0),
        2,
        "{status}"
    );
    assert_eq!(status["counts"]["intercept"], 1, "{status}");
    // Every bench action carries the operator and the bench.
    let store = st.store();
    let scans: Vec<_> = store
        .events(None)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "bench.scan")
        .collect();
    assert!(scans.len() > 10);
    let handover: Vec<_> = store
        .events(None)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "bench.handover")
        .map(|e| e.detail)
        .collect();
    assert_eq!(handover.len(), 7, "open, 5 scans, close: {handover:?}");
    assert!(
        handover
            .iter()
            .all(|d| d.starts_with("bench 1号台: handover batch ZTO-")),
        "{handover:?}"
    );
    assert!(
        scans
            .iter()
            .all(|e| e.operator == "小王" && e.detail.starts_with("bench 1号台"))
    );
}
