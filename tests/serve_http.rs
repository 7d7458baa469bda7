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

struct Http {
    c: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Http {
    fn new(base: &str) -> Http {
        Http {
            c: reqwest::Client::new(),
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
    let store = station::store::Store::open(&st.db()).unwrap();
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
    });
    let store = station::store::Store::open(&st.db()).unwrap();
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
