//! `station serve` over plain HTTP: the guards (Host, Origin), sign-in and its
//! cookie, the lockout, the security headers, and several benches at once.
//! The page itself is driven in a real browser by `tests/bench_browser.rs`.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A station with the first `n` fixture orders imported and printed, and two
/// operators.
fn printed_station(n: usize) -> (Station, Value) {
    let st = Station::new();
    let orders: Vec<Value> = read_json(&data("orders-200.json")).as_array().unwrap()[..n].to_vec();
    let file = st.write("orders.json", &Value::Array(orders).to_string());
    ok(&st.cmd().arg("import").arg(&file).output().unwrap());
    st.write(
        "station.toml",
        &operators_toml(&[("小王", "2468"), ("阿珍", "1357")]),
    );
    let printed: Value = serde_json::from_str(&ok(&st
        .cmd()
        .args(["--json", "print", "--out", "labels"])
        .output()
        .unwrap()))
    .unwrap();
    (st, printed)
}

#[derive(Clone)]
struct Http {
    c: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Http {
    fn new(base: &str) -> Http {
        Http {
            c: station::shop::client::http().build().unwrap(),
            base: base.into(),
            cookie: None,
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let mut req = self
            .c
            .request(method.parse().unwrap(), format!("{}{}", self.base, path));
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let h = resp.headers().clone();
        (status, h, resp.text().await.unwrap())
    }

    /// A request as the bench page sends it: with its own Origin.
    async fn page(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let origin = self.base.clone();
        let (s, _, text) = self.send(method, path, body, &[("Origin", &origin)]).await;
        (s, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn login(&mut self, name: &str, pin: &str, bench: &str) -> StatusCode {
        let origin = self.base.clone();
        let (s, h, _) = self
            .send(
                "POST",
                "/api/login",
                Some(json!({"name": name, "pin": pin, "bench": bench})),
                &[("Origin", &origin)],
            )
            .await;
        if s.is_success() {
            let set = h["set-cookie"].to_str().unwrap().to_string();
            self.cookie = Some(set.split(';').next().unwrap().to_string());
        }
        s
    }
}

#[test]
fn serve_refuses_foreign_hosts_and_origins_and_signs_in_with_a_pin() {
    let (st, _) = printed_station(3);
    let serve = Serve::start(&st, None);
    let port = serve.url.rsplit(':').next().unwrap().to_string();
    rt().block_on(async {
        let mut h = Http::new(&serve.url);

        // The page: served with a CSP that allows no inline script, and the
        // script never turns data into markup.
        let (s, headers, html) = h.send("GET", "/", None, &[]).await;
        assert_eq!(s, StatusCode::OK);
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(html.contains(r#"<script src="/bench.js" defer></script>"#));
        assert_eq!(html.matches("<script").count(), 1, "no inline script");
        let (s, headers, js) = h.send("GET", "/bench.js", None, &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/javascript")
        );
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
        ] {
            assert!(!js.contains(sink), "bench.js uses {sink}");
        }
        let (s, _, _) = h
            .send(
                "GET",
                "/localhost-page",
                None,
                &[("Host", &format!("localhost:{port}"))],
            )
            .await;
        assert_eq!(
            s,
            StatusCode::NOT_FOUND,
            "localhost:PORT is answered on loopback"
        );

        // DNS rebinding: another name pointing at 127.0.0.1 is refused.
        let (s, _, body) = h
            .send(
                "GET",
                "/",
                None,
                &[("Host", &format!("evil.example:{port}"))],
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
        assert!(body.contains("serve.allowed_hosts"), "{body}");
        let (s, _, _) = h
            .send("GET", "/api/me", None, &[("Host", "127.0.0.1:1")])
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);

        // CSRF: a change without our Origin is refused before it is read.
        let login = json!({"name": "小王", "pin": "2468", "bench": "1号台"});
        let (s, _, body) = h.send("POST", "/api/login", Some(login.clone()), &[]).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
        let (s, _, body) = h
            .send(
                "POST",
                "/api/login",
                Some(login.clone()),
                &[("Origin", "http://evil.example")],
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
        assert!(body.contains("Origin"), "{body}");

        // Sign-in.
        let (s, _) = h.page("GET", "/api/me", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(
            h.login("小王", "1111", "1号台").await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            h.login("nobody", "2468", "1号台").await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(h.login("小王", "2468", "").await, StatusCode::BAD_REQUEST);
        let (s, headers, _) = h
            .send("POST", "/api/login", Some(login), &[("Origin", &serve.url)])
            .await;
        assert_eq!(s, StatusCode::OK);
        let cookie = headers["set-cookie"].to_str().unwrap();
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Strict"), "{cookie}");
        h.cookie = Some(cookie.split(';').next().unwrap().to_string());
        let (s, me) = h.page("GET", "/api/me", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(me["operator"], "小王");
        assert_eq!(me["bench"], "1号台");
        assert!(
            me["couriers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["code"] == "ZTO")
        );

        // Signed in, but a page elsewhere still cannot scan through the cookie.
        let cookie = h.cookie.clone().unwrap();
        let (s, _, _) = h
            .send(
                "POST",
                "/api/scan",
                Some(json!({"code": "x"})),
                &[("Origin", "http://evil.example"), ("Cookie", &cookie)],
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        // A made-up cookie is nobody.
        let fake = Http {
            cookie: Some("station_session=00".into()),
            ..Http::new(&serve.url)
        };
        assert_eq!(
            fake.page("GET", "/api/bench", None).await.0,
            StatusCode::UNAUTHORIZED
        );

        // Sign-out ends the session.
        assert_eq!(
            h.page("POST", "/api/logout", None).await.0,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            h.page("GET", "/api/me", None).await.0,
            StatusCode::UNAUTHORIZED
        );

        // Five wrong PINs lock the name, even against the right PIN.
        let mut z = Http::new(&serve.url);
        for _ in 0..5 {
            assert_eq!(
                z.login("阿珍", "0000", "2号台").await,
                StatusCode::UNAUTHORIZED
            );
        }
        assert_eq!(
            z.login("阿珍", "1357", "2号台").await,
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            z.login("小王", "2468", "2号台").await,
            StatusCode::OK,
            "only that name"
        );
    });

    // Sign-ins and sign-outs are in the audit trail.
    let store = st.store();
    let actions: Vec<String> = store
        .events(None)
        .unwrap()
        .into_iter()
        .filter(|e| e.action.starts_with("bench.sign"))
        .map(|e| format!("{} {} {}", e.operator, e.action, e.detail))
        .collect();
    assert_eq!(
        actions,
        [
            "小王 bench.sign_in bench 1号台",
            "小王 bench.sign_out bench 1号台",
            "小王 bench.sign_in bench 2号台"
        ]
    );
}

#[test]
fn serve_will_not_start_without_operators_or_a_database() {
    let st = Station::new();
    let out = st
        .cmd()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "no database yet");
    let orders = st.write("orders.jsonl", &fixture_lines(&[]));
    ok(&st.cmd().arg("import").arg(&orders).output().unwrap());
    let out = st
        .cmd()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[[operators]]") && err.contains("hash-pin"),
        "{err}"
    );
    st.write(
        "station.toml",
        "[[operators]]\nname = \"小王\"\npin_hash = \"2468\"\n",
    );
    let out = st
        .cmd()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pin_hash"), "{err}");
}

/// SHA-256 of a certificate's DER, as `AB:CD:…`, computed here (not by the code
/// under test).
fn sha256_colons(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The DER of the first certificate in a PEM file.
fn pem_der(path: &std::path::Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject as _;
    rustls::pki_types::CertificateDer::pem_file_iter(path)
        .unwrap()
        .next()
        .expect("a certificate in the file")
        .unwrap()
        .to_vec()
}

/// An HTTPS client that trusts exactly the certificate in `cert_pem`.
fn pinned_client(cert_pem: &std::path::Path) -> reqwest::Client {
    station::shop::client::http()
        .tls_certs_only([
            reqwest::Certificate::from_pem(&std::fs::read(cert_pem).unwrap()).unwrap(),
        ])
        .tls_info(true)
        .build()
        .unwrap()
}

#[test]
fn serve_speaks_tls_off_loopback_and_any_serve_knows_a_benchs_session() {
    let (st, _) = printed_station(2);
    let toml = std::fs::read_to_string(st.dir.path().join("station.toml")).unwrap();
    // Plain HTTP only on loopback: PINs must not cross the network in clear.
    let out = st
        .cmd()
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("without TLS") && err.contains("tls = \"self-signed\""),
        "{err}"
    );
    st.write(
        "station.toml",
        &format!("{toml}\n[serve]\ntls = \"self-signed\"\n"),
    );
    let cert_file = st.dir.path().join("station-tls/cert.pem");
    assert!(!cert_file.exists());
    let a = Serve::start(&st, None);
    assert!(a.url.starts_with("https://127.0.0.1:"), "{}", a.url);
    // The fingerprint printed is the certificate's, made at this first start.
    let der = pem_der(&cert_file);
    assert_eq!(a.fingerprint.as_deref(), Some(sha256_colons(&der).as_str()));
    // A second serve on the same database reuses the certificate.
    let b = Serve::start(&st, None);
    assert_eq!(b.fingerprint, a.fingerprint);
    rt().block_on(async {
        // A bench that trusts exactly this certificate (pinned) reaches both.
        let pinned = || pinned_client(&cert_file);
        let mut at_a = Http {
            c: pinned(),
            base: a.url.clone(),
            cookie: None,
        };
        let origin = a.url.clone();
        let (status, headers, _) = at_a
            .send(
                "POST",
                "/api/login",
                Some(json!({"name": "小王", "pin": "2468", "bench": "1号台"})),
                &[("Origin", &origin)],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let cookie = headers["set-cookie"].to_str().unwrap().to_string();
        assert!(cookie.contains("; Secure"), "{cookie}");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        at_a.cookie = Some(cookie.split(';').next().unwrap().to_string());
        let resp = at_a
            .c
            .get(format!("{}/api/me", a.url))
            .header("Cookie", at_a.cookie.clone().unwrap())
            .send()
            .await
            .unwrap();
        let seen = resp
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|i| i.peer_certificate())
            .map(sha256_colons);
        assert_eq!(
            seen, a.fingerprint,
            "the bench sees the certificate serve named"
        );
        assert_eq!(resp.status(), StatusCode::OK);
        // The same browser's session, at the other serve (a load balancer
        // sends requests to either): known there, and signing out there ends it.
        let at_b = Http {
            c: pinned(),
            base: b.url.clone(),
            cookie: at_a.cookie.clone(),
        };
        let (status, me) = at_b.page("GET", "/api/me", None).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(
            (me["operator"].as_str(), me["bench"].as_str()),
            (Some("小王"), Some("1号台"))
        );
        let (status, _) = at_b.page("POST", "/api/logout", None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = at_a.page("GET", "/api/me", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "signed out everywhere");
        // Plain HTTP to the TLS port gets no answer a browser would take.
        let plain = station::shop::client::http().build().unwrap();
        let http_url = a.url.replacen("https://", "http://", 1);
        match plain.get(format!("{http_url}/api/me")).send().await {
            Err(_) => {}
            Ok(r) => assert!(
                !r.status().is_success(),
                "plain HTTP answered {}",
                r.status()
            ),
        }
        // A client that does not trust the certificate is refused.
        let stranger = station::shop::client::http()
            .tls_certs_only([])
            .build()
            .unwrap();
        assert!(
            stranger
                .get(format!("{}/healthz", a.url))
                .send()
                .await
                .is_err()
        );
    });
    // Sign in again, restart every serve: the session is in the database.
    let cookie = rt().block_on(async {
        let mut h = Http {
            c: pinned_client(&cert_file),
            base: a.url.clone(),
            cookie: None,
        };
        assert_eq!(h.login("阿珍", "1357", "2号台").await, StatusCode::OK);
        h.cookie.unwrap()
    });
    drop((a, b));
    let c = Serve::start(&st, None);
    rt().block_on(async {
        let h = Http {
            c: pinned_client(&cert_file),
            base: c.url.clone(),
            cookie: Some(cookie),
        };
        let (status, me) = h.page("GET", "/api/me", None).await;
        assert_eq!(status, StatusCode::OK, "a restart keeps the sign-in: {me}");
        assert_eq!(me["operator"], "阿珍");
    });
}

#[test]
fn two_benches_work_at_once_each_with_its_own_order() {
    let (st, printed) = printed_station(4);
    let serve = Serve::start(&st, None);
    let orders = printed["orders"].as_array().unwrap();
    let (a, b) = (
        orders[0]["order_id"].as_str().unwrap().to_string(),
        orders[1]["order_id"].as_str().unwrap().to_string(),
    );
    rt().block_on(async {
        let mut one = Http::new(&serve.url);
        let mut two = Http::new(&serve.url);
        assert_eq!(one.login("小王", "2468", "1号台").await, StatusCode::OK);
        assert_eq!(two.login("阿珍", "1357", "2号台").await, StatusCode::OK);
        let (r1, r2) = tokio::join!(
            one.page("POST", "/api/scan", Some(json!({"code": a}))),
            two.page("POST", "/api/scan", Some(json!({"code": b}))),
        );
        assert_eq!(r1.0, StatusCode::OK, "{}", r1.1);
        assert_eq!(r1.1["verdict"], "ok", "{}", r1.1);
        assert_eq!(r1.1["order"]["id"], a.as_str());
        assert_eq!(r2.1["verdict"], "ok", "{}", r2.1);
        assert_eq!(r2.1["order"]["id"], b.as_str());
        assert_eq!(
            one.page("GET", "/api/bench", None).await.1["id"],
            a.as_str()
        );
        assert_eq!(
            two.page("GET", "/api/bench", None).await.1["id"],
            b.as_str()
        );
        // An oversized "code" is refused before it reaches the database.
        let (s, body) = one
            .page("POST", "/api/scan", Some(json!({"code": "x".repeat(500)})))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");

        // Health and metrics, for a monitoring agent on this machine (no sign-in).
        let anon = Http::new(&serve.url);
        let (s, h, text) = anon.send("GET", "/metrics", None, &[]).await;
        assert_eq!(s, StatusCode::OK, "{text}");
        assert!(
            h["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        for line in [
            "station_scans_total{verdict=\"ok\"} 2",
            "station_scans_total{verdict=\"stop\"} 0",
            "station_scan_seconds_count 2",
            "station_scan_seconds_bucket{le=\"+Inf\"} 2",
            "station_waves{state=\"done\"} 1",
            "station_wave_orders_printed 4",
            "station_outbox_pending 0",
            "station_database_up 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        let (s, _, text) = anon.send("GET", "/healthz", None, &[]).await;
        assert_eq!(s, StatusCode::OK, "{text}");
        let health: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(health["ok"], true, "{health}");
        assert_eq!(health["database"], "ok", "{health}");
        assert_eq!(health["outbox_pending"], 0, "{health}");
    });
    let store = st.store();
    let scans: Vec<String> = store
        .events(None)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "bench.scan")
        .map(|e| format!("{} {}", e.operator, e.detail.split(':').next().unwrap()))
        .collect();
    assert!(scans.contains(&"小王 bench 1号台".to_string()), "{scans:?}");
    assert!(scans.contains(&"阿珍 bench 2号台".to_string()), "{scans:?}");
}

#[test]
fn out_of_stock_search_report_dispatch_and_queue_over_http() {
    let (st, printed) = printed_station(4);
    let serve = Serve::start(&st, None);
    let orders = printed["orders"].as_array().unwrap().clone();
    let field = |i: usize, k: &str| orders[i][k].as_str().unwrap().to_string();
    let (a, a_no) = (field(0, "order_id"), field(0, "tracking_no"));
    let (b, b_no) = (field(1, "order_id"), field(1, "tracking_no"));
    let store = st.store();
    let sku_of = |id: &str| store.order(id).unwrap().unwrap().order.items[0].sku.clone();
    let (a_sku, b_sku) = (sku_of(&a), sku_of(&b));
    drop(store);
    let status = st.status();
    rt().block_on(async {
        let mut h = Http::new(&serve.url);
        // Signed out, nothing is answered; a change needs the page's Origin.
        for path in [
            "/api/show?q=x",
            "/api/report",
            "/api/dispatch",
            "/api/queue",
        ] {
            assert_eq!(
                h.page("GET", path, None).await.0,
                StatusCode::UNAUTHORIZED,
                "{path}"
            );
        }
        assert_eq!(h.login("小王", "2468", "1号台").await, StatusCode::OK);
        let cookie = h.cookie.clone().unwrap();
        let (s, _, _) = h
            .send(
                "POST",
                "/api/short",
                Some(json!({"order_id": a, "sku": a_sku})),
                &[("Cookie", &cookie)],
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "no Origin, no change");

        // Out of stock (F3) on the order open at this bench: set aside,
        // number voided, exception flag queued.
        let (s, opened) = h.page("POST", "/api/scan", Some(json!({"code": a}))).await;
        assert_eq!(s, StatusCode::OK, "{opened}");
        let (s, short) = h
            .page(
                "POST",
                "/api/short",
                Some(json!({"order_id": a, "sku": a_sku})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{short}");
        assert_eq!(short["state"], "out_of_stock", "{short}");
        assert_eq!(short["voided"], a_no.as_str(), "{short}");
        assert_eq!(short["exception_flag"], "blue", "{short}");
        let memo = short["memo"].as_str().unwrap();
        assert!(
            memo.starts_with(&format!("缺货: {a_sku} ×1 · 小王 · ")),
            "{memo}"
        );
        let (s, body) = h
            .page(
                "POST",
                "/api/short",
                Some(json!({"order_id": a, "sku": a_sku})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "already set aside: {body}");
        let (s, opened) = h.page("POST", "/api/scan", Some(json!({"code": b}))).await;
        assert_eq!(s, StatusCode::OK, "{opened}");
        let (s, body) = h
            .page(
                "POST",
                "/api/short",
                Some(json!({"order_id": b, "sku": "NOPE-1"})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["error"].as_str().unwrap().contains(&b), "{body}");
        let (s, body) = h
            .page(
                "POST",
                "/api/short",
                Some(json!({"order_id": b, "sku": b_sku, "qty": 99})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "more than ordered: {body}");

        // Where is it? By order id, and by a tracking number.
        let (s, found) = h.page("GET", &format!("/api/show?q={a}"), None).await;
        assert_eq!(s, StatusCode::OK, "{found}");
        let story = &found[0];
        assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
        assert_eq!(story["id"], a.as_str());
        assert_eq!(story["state"], "out_of_stock");
        assert!(
            story["summary"].as_str().unwrap().contains("out of stock"),
            "{story}"
        );
        let numbers = story["tracking_numbers"].as_array().unwrap();
        assert!(
            numbers
                .iter()
                .any(|n| n["number"] == a_no.as_str() && n["state"] == "voided"),
            "{story}"
        );
        assert!(
            story["write_backs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w["kind"] == "exception" && w["state"] == "pending"),
            "no token, so it waits: {story}"
        );
        assert!(
            story["timeline"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "bench.out_of_stock"
                    && e["operator"] == "小王"
                    && e["detail"].as_str().unwrap().starts_with("bench 1号台: ")),
            "{story}"
        );
        let (_, by_number) = h.page("GET", &format!("/api/show?q={b_no}"), None).await;
        assert_eq!(by_number[0]["id"], b.as_str(), "{by_number}");
        assert_eq!(by_number[0]["state"], "printed");
        let (s, none) = h.page("GET", "/api/show?q=NO-SUCH-ORDER", None).await;
        assert_eq!((s, none), (StatusCode::OK, json!([])));
        assert_eq!(
            h.page("GET", "/api/show?q=", None).await.0,
            StatusCode::BAD_REQUEST
        );

        // The day report, as `station report --format json`.
        let (s, report) = h.page("GET", "/api/report", None).await;
        assert_eq!(s, StatusCode::OK, "{report}");
        assert_eq!(report["printed"], 4, "{report}");
        assert_eq!(report["out_of_stock"], json!([a]), "{report}");
        let not_handed: Vec<&str> = report["not_handed_over"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["order_id"].as_str().unwrap())
            .collect();
        assert!(not_handed.contains(&b.as_str()), "{report}");
        assert!(report["per_bench"].is_array() && report["dispatch"].is_object());
        let (s, old) = h.page("GET", "/api/report?date=2020-01-01", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            (old["date"].as_str(), old["printed"].as_u64()),
            (Some("2020-01-01"), Some(0))
        );
        let (s, body) = h.page("GET", "/api/report?date=2026-13-01", None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");

        // The dispatch warnings: the same as `station status` says.
        let (s, d) = h.page("GET", "/api/dispatch", None).await;
        assert_eq!(s, StatusCode::OK, "{d}");
        assert_eq!(d["cutoff"], "17:00");
        let ids = |v: &Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|w| w["order_id"].as_str().unwrap().to_string())
                .collect()
        };
        let without = |mut l: Vec<String>| {
            l.retain(|id| *id != a);
            l
        };
        for list in ["after_cutoff", "promise_broken", "promise_at_risk"] {
            assert_eq!(
                ids(&d[list]),
                without(ids(&status["dispatch"][list])),
                "{list}: {d}"
            );
        }

        // The queue: nothing waits (all printed), and without a token no
        // scheduled pull runs, which the page is told.
        let (s, q) = h.page("GET", "/api/queue", None).await;
        assert_eq!(s, StatusCode::OK, "{q}");
        assert_eq!(q["queued"], 0, "{q}");
        assert_eq!(q["pull_every_minutes"], 10, "{q}");
        assert_eq!(q["auto_wave_every_minutes"], 0, "{q}");
        assert!(
            q["inactive"]
                .as_str()
                .unwrap()
                .contains("STATION_SHOP_TOKEN"),
            "{q}"
        );
        assert!(q["last_pull"].is_null(), "{q}");
    });
    let status = st.status();
    assert_eq!(status["counts"]["out_of_stock"], 1, "{status}");
}

#[test]
fn serve_pulls_on_a_schedule_prints_an_auto_wave_and_survives_a_shop_outage() {
    let st = Station::new();
    // An empty database: every order comes from the scheduled pulls.
    let empty = st.write("empty.json", "[]");
    ok(&st.cmd().arg("import").arg(&empty).output().unwrap());
    let orders: Vec<Value> = read_json(&data("orders-200.json")).as_array().unwrap()[..5].to_vec();
    let ids: Vec<String> = orders
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect();
    let file = st.write("orders.json", &Value::Array(orders).to_string());
    let sim = Sim::start(&file, "tok-schedule", &[]);
    // A schedule "minute" of one second. Each phase runs its own `serve` with
    // only the turn it checks scheduled, and waits for what that turn does (a
    // deadline, not a guess at timing: a slow machine only waits longer).
    let serve_with = |schedule: &str, more: &str| {
        st.write(
            "station.toml",
            &format!(
                "[shop]\ntotal_timeout_secs = 2\nrequest_timeout_secs = 1\n\n[schedule]\n{schedule}\n\n{}\n{more}",
                operators_toml(&[("小王", "2468")])
            ),
        );
        Serve::start_env(&st, Some(&sim), &[("STATION_SCHEDULE_MINUTE_SECS", "1")])
    };
    let until = |h: &Http, what: &'static str, ok: fn(&Value) -> bool| {
        let h = h.clone();
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            loop {
                let (s, q) = h.page("GET", "/api/queue", None).await;
                assert_eq!(s, StatusCode::OK, "{q}");
                if ok(&q) {
                    return q;
                }
                assert!(std::time::Instant::now() < deadline, "{what}: {q}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    };

    // Scheduled pulls only: they bring the orders in, and they wait to be printed.
    let serve = serve_with("pull_every_minutes = 1\nauto_wave_every_minutes = 0", "");
    rt().block_on(async {
        let mut h = Http::new(&serve.url);
        assert_eq!(h.login("小王", "2468", "1号台").await, StatusCode::OK);
        let q = until(&h, "a scheduled pull", |q| q["queued"] == 5).await;
        assert_eq!(q["last_pull"]["ok"], true, "{q}");
        assert!(
            q["inactive"].is_null() && q["next_pull_at"].is_string() && q["next_wave_at"].is_null(),
            "{q}"
        );
        let (_, found) = h
            .page("GET", &format!("/api/show?q={}", ids[0]), None)
            .await;
        assert_eq!(found[0]["state"], "queued", "{found}");

        // The shop goes down: the pull fails, is shown, and serve goes on.
        std::thread::scope(|s| {
            s.spawn(|| sim.set_faults(json!({"unavailable_rate": 1.0})));
        });
        let q = until(&h, "a failed pull", |q| q["last_pull"]["ok"] == false).await;
        assert!(
            !q["last_pull"]["summary"].as_str().unwrap().is_empty(),
            "{q}"
        );
        assert_eq!(h.page("GET", "/api/me", None).await.0, StatusCode::OK);
        // ... and it comes back: the next pull is fine again.
        std::thread::scope(|s| {
            s.spawn(|| sim.set_faults(json!({})));
        });
        until(&h, "a pull after the outage", |q| {
            q["last_pull"]["ok"] == true
        })
        .await;
    });
    drop(serve);
    let pulled = st.status();
    assert_eq!(
        (
            pulled["counts"]["queued"].as_u64(),
            pulled["counts"]["printed"].as_u64()
        ),
        (Some(5), Some(0)),
        "pulled, nothing printed without the auto-wave: {pulled}"
    );

    // An auto-wave that fails (the sender has no phone or address, so no
    // waybill may print): shown on the page as failed, nothing printed, and
    // serve goes on.
    let serve = serve_with(
        "pull_every_minutes = 0\nauto_wave_every_minutes = 1",
        "[sender]\nname = \"山海小铺\"\n",
    );
    rt().block_on(async {
        let mut h = Http::new(&serve.url);
        // Another bench: 1号台's sign-in outlived the restart.
        assert_eq!(h.login("小王", "2468", "2号台").await, StatusCode::OK);
        let q = until(&h, "a failed auto-wave", |q| q["last_wave"].is_object()).await;
        assert_eq!(q["last_wave"]["ok"], false, "{q}");
        assert!(
            q["last_wave"]["summary"]
                .as_str()
                .unwrap()
                .contains("sender"),
            "{q}"
        );
        assert_eq!(q["queued"], 5, "{q}");
        assert_eq!(h.page("GET", "/api/me", None).await.0, StatusCode::OK);
    });
    drop(serve);
    assert!(!st.dir.path().join("labels/wave-0001").exists());

    // The auto-wave only: it prints what the pulls queued.
    let serve = serve_with("pull_every_minutes = 0\nauto_wave_every_minutes = 1", "");
    rt().block_on(async {
        let mut h = Http::new(&serve.url);
        assert_eq!(h.login("小王", "2468", "3号台").await, StatusCode::OK);
        let q = until(&h, "the auto-wave", |q| q["last_wave"].is_object()).await;
        assert_eq!(q["last_wave"]["ok"], true, "{q}");
        assert!(
            q["last_wave"]["summary"]
                .as_str()
                .unwrap()
                .contains("5 printed"),
            "{q}"
        );
        assert_eq!(q["queued"], 0, "{q}");
    });
    drop(serve);
    let status = st.status();
    assert_eq!(status["counts"]["printed"], 5, "{status}");
    assert!(st.dir.path().join("labels/wave-0001").is_dir());
    let store = st.store();
    let failures = store
        .events(None)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "schedule.pull_failed")
        .count();
    assert!(
        failures >= 1,
        "a failed scheduled pull is in the audit trail"
    );
}

#[test]
fn a_bench_acts_only_on_its_own_order_and_belongs_to_one_browser() {
    let (st, printed) = printed_station(4);
    let serve = Serve::start(&st, None);
    let orders = printed["orders"].as_array().unwrap();
    let a = orders[0]["order_id"].as_str().unwrap().to_string();
    let b = orders[1]["order_id"].as_str().unwrap().to_string();
    let all = read_json(&data("orders-200.json"));
    let sku_of = |id: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == id)
            .unwrap()["items"][0]["sku"]
            .as_str()
            .unwrap()
            .to_string()
    };
    rt().block_on(async {
        let mut one = Http::new(&serve.url);
        let mut two = Http::new(&serve.url);
        assert_eq!(one.login("小王", "2468", "1号台").await, StatusCode::OK);
        assert_eq!(two.login("阿珍", "1357", "2号台").await, StatusCode::OK);
        assert_eq!(
            one.page("POST", "/api/scan", Some(json!({"code": a})))
                .await
                .1["verdict"],
            "ok"
        );
        assert_eq!(
            two.page("POST", "/api/scan", Some(json!({"code": b})))
                .await
                .1["verdict"],
            "ok"
        );

        // Bench 2 cannot reprint or short bench 1's order, nor one it never opened.
        for (path, body) in [
            ("/api/reprint", json!({"order_id": a})),
            ("/api/short", json!({"order_id": a, "sku": sku_of(&a)})),
            ("/api/reprint", json!({"order_id": orders[2]["order_id"]})),
        ] {
            let (s, v) = two.page("POST", path, Some(body)).await;
            assert_eq!(s, StatusCode::CONFLICT, "{path}: {v}");
            assert!(v["error_zh"].as_str().unwrap().contains("不是本台"), "{v}");
        }
        // Its own order it can.
        let (s, v) = two
            .page(
                "POST",
                "/api/short",
                Some(json!({"order_id": b, "sku": sku_of(&b)})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = one
            .page("POST", "/api/reprint", Some(json!({"order_id": a})))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");

        // A second browser naming bench 1 is told who has it, and may take it over.
        let mut three = Http::new(&serve.url);
        assert_eq!(
            three.login("阿珍", "1357", "1号台").await,
            StatusCode::CONFLICT
        );
        let origin = serve.url.clone();
        let (s, _, text) = three
            .send(
                "POST",
                "/api/login",
                Some(json!({"name": "阿珍", "pin": "1357", "bench": "1号台"})),
                &[("Origin", &origin)],
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert!(text.contains("小王"), "{text}");
        let (s, h, _) = three
            .send(
                "POST",
                "/api/login",
                Some(json!({"name": "阿珍", "pin": "1357", "bench": "1号台", "take_over": true})),
                &[("Origin", &origin)],
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        three.cookie = Some(
            h["set-cookie"]
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_string(),
        );
        // The first browser is signed out, not silently sharing the bench.
        assert_eq!(
            one.page("GET", "/api/bench", None).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            three.page("GET", "/api/bench", None).await.0,
            StatusCode::OK
        );
        // The same browser signing in again keeps its bench.
        assert_eq!(three.login("阿珍", "1357", "1号台").await, StatusCode::OK);
    });
}

#[test]
fn a_scan_sent_again_with_its_id_is_answered_again_not_counted_twice() {
    let (st, printed) = printed_station(2);
    let serve = Serve::start(&st, None);
    let a = printed["orders"][0]["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    let all = read_json(&data("orders-200.json"));
    let order = all
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == a.as_str())
        .unwrap()
        .clone();
    let sku = order["items"][0]["sku"].as_str().unwrap().to_string();
    rt().block_on(async {
        let mut one = Http::new(&serve.url);
        assert_eq!(one.login("小王", "2468", "1号台").await, StatusCode::OK);
        let (s, v) = one
            .page(
                "POST",
                "/api/scan",
                Some(json!({"code": a, "scan_id": "s-1"})),
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::OK, Some("order_opened")),
            "{v}"
        );
        // The page lost the answer and sends the item scan again, same id.
        let item = json!({"code": sku, "scan_id": "s-2"});
        let (_, first) = one.page("POST", "/api/scan", Some(item.clone())).await;
        let (_, again) = one.page("POST", "/api/scan", Some(item)).await;
        assert_eq!(first["verdict"], "ok", "{first}");
        assert_eq!(first, again, "the repeat gets the first answer");
        let (_, bench) = one.page("GET", "/api/bench", None).await;
        assert_eq!(bench["items"][0]["scanned"], 1, "counted once: {bench}");
        // A new scan of the same item (a new id) is a new scan.
        let (_, next) = one
            .page(
                "POST",
                "/api/scan",
                Some(json!({"code": sku, "scan_id": "s-3"})),
            )
            .await;
        let qty = order["items"][0]["qty"].as_u64().unwrap();
        let (_, bench) = one.page("GET", "/api/bench", None).await;
        if qty >= 2 {
            assert_eq!(next["verdict"], "ok", "{next}");
            assert_eq!(bench["items"][0]["scanned"], 2, "{bench}");
        } else {
            assert_eq!(next["code"], "too_many", "{next}");
            assert_eq!(bench["items"][0]["scanned"], 1, "{bench}");
        }
    });
}

/// A pseudo-terminal standing in for a scale's serial port: the test writes
/// what the scale sends into the master side; `serve` opens the slave path.
struct FakeScale {
    master: std::fs::File,
    _slave: std::fs::File,
    path: String,
}

impl FakeScale {
    fn open() -> FakeScale {
        use std::os::fd::FromRawFd;
        let (mut master, mut slave) = (0, 0);
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: openpty writes two descriptors and the slave's name (at most
        // a few dozen bytes) into the buffers given; null termios/winsize are allowed.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                name.as_mut_ptr(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: the name is NUL-terminated by openpty.
        let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: both descriptors were just opened by openpty and are owned here.
        let (master, slave) = unsafe {
            (
                std::fs::File::from_raw_fd(master),
                std::fs::File::from_raw_fd(slave),
            )
        };
        FakeScale {
            master,
            _slave: slave,
            path,
        }
    }

    /// The scale's next line of continuous output.
    fn send(&mut self, line: &str) {
        use std::io::Write;
        self.master
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
    }
}

/// Weighing with a scale on a serial port (`[bench.scale]`, a pseudo-terminal
/// here): the page sees the live weight, a waybill scan packs with the steady
/// reading (a parcel too heavy for its items is a STOP naming both weights),
/// an unsteady reading is not taken, and another bench has no scale.
#[test]
fn a_bench_scale_on_a_serial_port_weighs_the_parcel() {
    let (st, printed) = printed_station(4);
    let mut scale = FakeScale::open();
    let config = format!(
        "{}\n[bench.scale]\ndevice = \"{}\"\nbench = \"1号台\"\nmax_age_ms = 60000\n",
        operators_toml(&[("小王", "2468"), ("阿珍", "1357")]),
        scale.path
    );
    st.write("station.toml", &config);
    let orders = read_json(&data("orders-200.json"));
    let order = |id: &str| {
        orders
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == id)
            .unwrap()
            .clone()
    };
    let serve = Serve::start(&st, None);
    rt().block_on(async {
        let mut h = Http::new(&serve.url);
        assert_eq!(h.login("小王", "2468", "1号台").await, StatusCode::OK);
        let (_, me) = h.page("GET", "/api/me", None).await;
        assert_eq!(me["scale"], true, "{me}");
        // Another bench of the same serve has no scale.
        let mut other = Http::new(&serve.url);
        assert_eq!(other.login("阿珍", "1357", "2号台").await, StatusCode::OK);
        let (_, me2) = other.page("GET", "/api/me", None).await;
        assert_eq!(me2["scale"], false, "{me2}");
        let (s, _) = other.page("GET", "/api/scale", None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        // Wait (by polling the page's own endpoint) until the scale's line arrived.
        let reading = |h: Http, want: Value| async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            loop {
                let (_, s) = h.page("GET", "/api/scale", None).await;
                if s["grams"] == want["grams"] && s["stable"] == want["stable"] {
                    return s;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "scale shows {s}, want {want}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        };
        let (_, before) = h.page("GET", "/api/scale", None).await;
        assert_eq!(before["grams"], Value::Null, "{before}");

        let pack = |h: Http, id: String| async move {
            let o = order(&id);
            let (_, out) = h.page("POST", "/api/scan", Some(json!({"code": id}))).await;
            assert_eq!(out["code"], "order_opened", "{out}");
            for i in o["items"].as_array().unwrap() {
                let code = i["barcode"].as_str().or(i["sku"].as_str()).unwrap();
                for _ in 0..i["qty"].as_u64().unwrap() {
                    let (_, out) = h
                        .page("POST", "/api/scan", Some(json!({"code": code})))
                        .await;
                    assert_eq!(out["verdict"], "ok", "{out}");
                }
            }
            o["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["weight_g"].as_u64().unwrap() * i["qty"].as_u64().unwrap())
                .sum::<u64>()
        };
        let parcel = |n: usize| {
            let p = &printed["orders"][n];
            (
                p["order_id"].as_str().unwrap().to_string(),
                p["tracking_no"].as_str().unwrap().to_string(),
            )
        };

        // A: the parcel weighs what its items do (plus the box): packed with it.
        let (a, a_no) = parcel(0);
        let expected = pack(h.clone(), a.clone()).await;
        let weight = expected + 40;
        scale.send(&format!("ST,GS,+{:08.3}kg", weight as f64 / 1000.0));
        let shown = reading(h.clone(), json!({"grams": weight, "stable": true})).await;
        assert_eq!(shown["problem"], Value::Null, "{shown}");
        let (_, out) = h
            .page("POST", "/api/scan", Some(json!({"code": a_no})))
            .await;
        assert_eq!(out["code"], "packed", "{out}");

        // B: something extra in the box: the scale's weight is a STOP.
        let (b, b_no) = parcel(1);
        let expected_b = pack(h.clone(), b.clone()).await;
        let heavy = expected_b * 2 + 300;
        scale.send(&format!("+ {:8.3} kg", heavy as f64 / 1000.0));
        reading(h.clone(), json!({"grams": heavy, "stable": true})).await;
        let (_, out) = h
            .page("POST", "/api/scan", Some(json!({"code": b_no})))
            .await;
        assert_eq!(out["code"], "weight_mismatch", "{out}");

        // C: still settling (unsteady): packed, but not with that weight.
        let (c, c_no) = parcel(2);
        pack(h.clone(), c.clone()).await;
        scale.send("US,GS,+0009.99kg");
        reading(h.clone(), json!({"grams": 9990, "stable": false})).await;
        let (_, out) = h
            .page("POST", "/api/scan", Some(json!({"code": c_no})))
            .await;
        assert_eq!(out["code"], "packed", "{out}");

        let show = |id: &str| -> Value {
            serde_json::from_str(&ok(&st
                .cmd()
                .args(["--json", "show", id])
                .output()
                .unwrap()))
            .unwrap()
        };
        assert_eq!(show(&a)[0]["packings"][0]["weight_g"], weight);
        assert_eq!(show(&b)[0]["state"], "printed");
        assert_eq!(show(&c)[0]["packings"][0]["weight_g"], Value::Null);
    });
}
