//! Shared helpers for the end-to-end tests: the real `station` binary, the real
//! simulator (`station shop-sim`) on a loopback port, and temp directories.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_station");

/// A command's `--json` output, or a panic showing what it printed instead.
pub fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Every item code of an order (its barcode, else its SKU), as many times as ordered.
pub fn item_codes(order: &Value) -> Vec<String> {
    let mut codes = Vec::new();
    for i in order["items"].as_array().unwrap() {
        let code = i["barcode"].as_str().or(i["sku"].as_str()).unwrap();
        for _ in 0..i["qty"].as_u64().unwrap() {
            codes.push(code.to_string());
        }
    }
    codes
}

/// The public fixtures, copied into the repo: 200 valid orders and 20 invalid ones.
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Start a `station` simulator command and wait for its first stdout line,
/// "… listening on http://ADDR …": the child and that URL.
fn start_listening(cmd: &mut Command) -> (Child, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (child, url)
}

/// A running `station shop-sim`, killed on drop.
pub struct Sim {
    pub child: Child,
    pub url: String,
    pub token: String,
}

impl Sim {
    /// Start the simulator serving `orders` (a file) with extra flags (faults).
    pub fn start(orders: &Path, token: &str, extra: &[&str]) -> Sim {
        let (child, url) = start_listening(
            Command::new(BIN)
                .args([
                    "shop-sim",
                    "--listen",
                    "127.0.0.1:0",
                    "--token",
                    token,
                    "--orders",
                ])
                .arg(orders)
                .args(extra),
        );
        Sim {
            child,
            url,
            token: token.into(),
        }
    }

    fn admin(&self) -> admin_http::Client {
        admin_http::Client::new(&self.url, &self.token)
    }

    /// Customer service changes an order on the shop (admin endpoint).
    pub fn mutate(&self, id: &str, body: Value) -> Value {
        self.admin()
            .send("POST", &format!("/admin/orders/{id}/mutate"), Some(body))
    }

    /// The shipments the shop recorded.
    pub fn shipments(&self) -> Value {
        self.admin().send("GET", "/admin/shipments", None)
    }

    /// The order as the shop holds it now (the Shop API's own GET).
    pub fn order(&self, id: &str) -> Value {
        self.admin().send("GET", &format!("/v1/orders/{id}"), None)
    }

    pub fn log(&self) -> Value {
        self.admin().send("GET", "/admin/log", None)
    }

    pub fn set_faults(&self, faults: Value) {
        self.admin().send("PUT", "/admin/faults", Some(faults));
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `station waybill-sim` (a courier's e-waybill service), killed on drop.
pub struct WaybillSim {
    pub child: Child,
    pub url: String,
    pub token: String,
}

impl WaybillSim {
    pub fn start(token: &str, extra: &[&str]) -> WaybillSim {
        let (child, url) = start_listening(
            Command::new(BIN)
                .args(["waybill-sim", "--listen", "127.0.0.1:0", "--token", token])
                .args(extra),
        );
        WaybillSim {
            child,
            url,
            token: token.into(),
        }
    }

    fn admin(&self) -> admin_http::Client {
        admin_http::Client::new(&self.url, &self.token)
    }

    /// Numbers issued, cancelled, used; balances; every number with its request id.
    pub fn state(&self) -> Value {
        self.admin().send("GET", "/admin/state", None)
    }

    pub fn set_balance(&self, courier: &str, available: u64) {
        self.admin().send(
            "PUT",
            "/admin/balance",
            Some(serde_json::json!({"courier": courier, "available": available})),
        );
    }

    pub fn set_unreachable(&self, courier: &str, places: &[&str]) {
        self.admin().send(
            "PUT",
            "/admin/unreachable",
            Some(serde_json::json!({"courier": courier, "places": places})),
        );
    }

    /// The courier scanned this parcel: the number can no longer be cancelled.
    pub fn mark_used(&self, number: &str) {
        self.admin().send(
            "POST",
            "/admin/used",
            Some(serde_json::json!({"number": number})),
        );
    }

    pub fn set_faults(&self, faults: Value) {
        self.admin().send("PUT", "/admin/faults", Some(faults));
    }

    /// A `[[couriers]]` entry taking `code`'s numbers from this service (token
    /// in `STATION_<CODE>_WAYBILL_TOKEN`, see [`WaybillSim::env`]).
    pub fn courier_toml(&self, code: &str, name: &str, fallback: &str) -> String {
        format!(
            "[[couriers]]\ncode = \"{code}\"\nname = \"{name}\"\nsource = \"service\"\nservice_url = \"{}\"\ntoken_env = \"STATION_{code}_WAYBILL_TOKEN\"\nfallback = \"{fallback}\"\n",
            self.url
        )
    }

    /// The environment variable and token a station needs for `code`.
    pub fn env(&self, code: &str) -> (String, String) {
        (format!("STATION_{code}_WAYBILL_TOKEN"), self.token.clone())
    }
}

impl Drop for WaybillSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A station invocation with a fresh environment (no inherited STATION_*).
/// The sender every test station ships from.
pub const SENDER: &str = "[sender]\nname = \"山海小铺\"\nphone = \"0571-88886666\"\naddress = \"浙江省杭州市余杭区 示例路 1 号\"\n";

pub struct Station {
    pub dir: tempfile::TempDir,
    /// Under `STATION_TEST_PG`: the station's own PostgreSQL database.
    pub pg: Option<pg::TestDb>,
}

impl Station {
    /// A station directory with a `station.toml` naming the sender (a
    /// waybill without one is refused). Its state is a SQLite file, or, when
    /// `STATION_TEST_PG` names a PostgreSQL server, a fresh database there.
    pub fn new() -> Station {
        let st = Station {
            dir: tempfile::tempdir().unwrap(),
            pg: pg::server_from_env().map(|base| pg::TestDb::create(&base)),
        };
        st.write("station.toml", "");
        st
    }

    /// Another station (its own directory and `station.toml`) on the same
    /// PostgreSQL database `db`: several stations sharing one server.
    pub fn on(db: &pg::TestDb) -> Station {
        let st = Station {
            dir: tempfile::tempdir().unwrap(),
            pg: Some(db.share()),
        };
        st.write("station.toml", "");
        st
    }

    /// The SQLite file. Tests that read the file itself call
    /// [`Station::sqlite_only`] first.
    pub fn db(&self) -> PathBuf {
        assert!(
            self.pg.is_none(),
            "this test reads the SQLite file: call sqlite_only() first"
        );
        self.dir.path().join("station.db")
    }

    /// The station's store, opened in the test (either engine).
    pub fn store(&self) -> station::store::Store {
        let db: station::store::Db = self.db_arg().to_str().unwrap().parse().unwrap();
        station::store::Store::open(db).unwrap()
    }

    /// What `--db` says: the SQLite file, or the PostgreSQL URL.
    pub fn db_arg(&self) -> std::ffi::OsString {
        match &self.pg {
            Some(db) => db.url.clone().into(),
            None => self.dir.path().join("station.db").into(),
        }
    }

    /// `true` on SQLite. On PostgreSQL, says the test is skipped and why
    /// (it inspects or damages the SQLite file itself) and returns `false`.
    pub fn sqlite_only(&self, why: &str) -> bool {
        if self.pg.is_some() {
            eprintln!("skipped on PostgreSQL: {why}");
            return false;
        }
        true
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("STATION_") {
                c.env_remove(k);
            }
        }
        c.env("STATION_OPERATOR", "测试员");
        c.arg("--db").arg(self.db_arg());
        c
    }

    /// `cmd` pointed at a simulator (its URL and token in the environment).
    pub fn cmd_with_shop(&self, sim: &Sim) -> Command {
        let mut c = self.cmd();
        c.env("STATION_SHOP_URL", &sim.url)
            .env("STATION_SHOP_TOKEN", &sim.token);
        c
    }

    /// `station pull` against a simulator.
    pub fn pull(&self, sim: &Sim, extra: &[&str]) -> Output {
        self.cmd()
            .args(["pull", "--shop-url", &sim.url])
            .args(extra)
            .env("STATION_SHOP_TOKEN", &sim.token)
            .output()
            .unwrap()
    }

    pub fn status(&self) -> Value {
        let out = self.cmd().args(["status", "--json"]).output().unwrap();
        assert!(
            out.status.success(),
            "status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status --json is one JSON object")
    }

    /// Write a file in the station's directory, readable by its owner only
    /// (a config holding PIN hashes must be; the station refuses it otherwise).
    /// A `station.toml` without a `[sender]` gets [`SENDER`].
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let p = self.dir.path().join(name);
        if name == "station.toml" && !text.contains("[sender]") {
            std::fs::write(&p, format!("{text}\n{SENDER}")).unwrap();
        } else {
            std::fs::write(&p, text).unwrap();
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }
}

pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How many `action` events (e.g. "print.printed") each order has.
pub fn events_per_order(
    store: &station::store::Store,
    action: &str,
) -> std::collections::HashMap<String, usize> {
    let mut per_order = std::collections::HashMap::new();
    for e in store.events(None).unwrap() {
        if e.action == action {
            *per_order.entry(e.order_id.unwrap()).or_default() += 1;
        }
    }
    per_order
}

/// An order's live (allocated) tracking numbers.
pub fn live_numbers(
    store: &station::store::Store,
    order_id: &str,
) -> Vec<station::store::TrackingNumber> {
    store
        .tracking_numbers(order_id)
        .unwrap()
        .into_iter()
        .filter(|t| t.state == "allocated")
        .collect()
}

/// Both fixture files as one JSON Lines file, optionally with extra lines.
pub fn fixture_lines(extra: &[Value]) -> String {
    let mut text = String::new();
    for name in ["orders-200.json", "orders-invalid.json"] {
        for v in read_json(&data(name)).as_array().unwrap() {
            text.push_str(&v.to_string());
            text.push('\n');
        }
    }
    for v in extra {
        text.push_str(&v.to_string());
        text.push('\n');
    }
    text
}

/// A tiny blocking HTTP client for the simulator's admin endpoints, built on
/// reqwest's async client with a private runtime (reqwest's `blocking` feature
/// is not enabled in this crate).
mod admin_http {
    use serde_json::Value;

    pub struct Client {
        base: String,
        token: String,
    }

    impl Client {
        pub fn new(base: &str, token: &str) -> Client {
            Client {
                base: base.into(),
                token: token.into(),
            }
        }

        pub fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let c = station::shop::client::http().build().unwrap();
                let url = format!("{}{}", self.base, path);
                let mut req = c
                    .request(method.parse().unwrap(), url)
                    .bearer_auth(&self.token);
                if let Some(b) = body {
                    req = req.json(&b);
                }
                let resp = req.send().await.unwrap();
                let status = resp.status();
                let v: Value = resp.json().await.unwrap_or(Value::Null);
                assert!(status.is_success(), "{method} {path}: {status} {v}");
                v
            })
        }
    }
}

/// A running `station serve` on a loopback port, killed on drop.
pub struct Serve {
    pub child: Child,
    /// `http://127.0.0.1:PORT` (`https://` over TLS)
    pub url: String,
    /// Over TLS: the certificate's SHA-256 fingerprint `serve` printed.
    pub fingerprint: Option<String>,
}

impl Serve {
    /// Start `station serve --listen 127.0.0.1:0` in the station's directory
    /// (so its `station.toml` applies), re-reading orders from `sim` if given.
    pub fn start(st: &Station, sim: Option<&Sim>) -> Serve {
        Serve::start_env(st, sim, &[])
    }

    /// `start` with extra environment variables (e.g. the schedule's test knob).
    pub fn start_env(st: &Station, sim: Option<&Sim>, env: &[(&str, &str)]) -> Serve {
        Serve::spawn(st, sim, env, Stdio::inherit())
    }

    /// `start` with serve's log (stderr) written to `log`, for the test to read.
    pub fn start_logging_to(st: &Station, sim: Option<&Sim>, log: &Path) -> Serve {
        let file = std::fs::File::create(log).expect("create serve's log file");
        Serve::spawn(st, sim, &[], Stdio::from(file))
    }

    fn spawn(st: &Station, sim: Option<&Sim>, env: &[(&str, &str)], stderr: Stdio) -> Serve {
        let mut cmd = st.cmd();
        cmd.args(["serve", "--listen", "127.0.0.1:0"]);
        if let Some(sim) = sim {
            cmd.env("STATION_SHOP_TOKEN", &sim.token)
                .env("STATION_SHOP_URL", &sim.url);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start station serve");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .unwrap_or_else(|| panic!("serve did not start: {line:?}"))
            .to_string();
        // Over TLS the next line gives the certificate's fingerprint.
        let fingerprint = url.starts_with("https://").then(|| {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            line.trim()
                .rsplit_once(" SHA-256 fingerprint ")
                .unwrap_or_else(|| panic!("no fingerprint line: {line:?}"))
                .1
                .to_string()
        });
        // Whatever serve prints later goes on draining here, so it never
        // blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Serve {
            child,
            url,
            fingerprint,
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Argon2id hash of `pin`, made by `station operator hash-pin`.
pub fn hash_pin(pin: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(["operator", "hash-pin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{pin}").unwrap();
    let out = child.wait_with_output().unwrap();
    ok(&out).trim().to_string()
}

/// A `station.toml` with these operators (name, PIN) and everything else default.
pub fn operators_toml(ops: &[(&str, &str)]) -> String {
    let mut text = String::new();
    for (name, pin) in ops {
        text.push_str(&format!(
            "[[operators]]\nname = {name:?}\npin_hash = {:?}\n\n",
            hash_pin(pin)
        ));
    }
    text
}

/// Wait until a station started with `STATION_PAUSE_AT`/`STATION_PAUSE_DIR=dir`
/// reached its pause point (it writes `dir/reached`); fails if it ended first.
pub fn wait_paused(dir: &Path, child: &mut std::process::Child) {
    while !dir.join("reached").exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the station ended ({status}) before reaching its pause point");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Let a paused station go on.
pub fn release_pause(dir: &Path) {
    std::fs::write(dir.join("go"), "").unwrap();
}

/// PostgreSQL for the tests: `STATION_TEST_PG=postgres://user@host:port/db`
/// runs every end-to-end test that uses [`Station::new`] on a fresh database
/// of that server (created per station, dropped after), instead of SQLite.
pub mod pg {
    /// The server to use, from `STATION_TEST_PG`.
    pub fn server_from_env() -> Option<String> {
        std::env::var("STATION_TEST_PG")
            .ok()
            .filter(|s| !s.is_empty())
    }

    /// A server for tests that need PostgreSQL whatever the switch: the
    /// switch's, else the local one on 127.0.0.1:5432 if it answers. `None`
    /// (the test says "skipped") when there is none, unless
    /// `STATION_REQUIRE_POSTGRES` is set (CI), where that is a failure.
    pub fn server_or_skip(test: &str) -> Option<String> {
        let base = server_from_env()
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
        match postgres::Client::connect(&base, postgres::NoTls) {
            Ok(_) => Some(base),
            Err(e) => {
                assert!(
                    std::env::var_os("STATION_REQUIRE_POSTGRES").is_none(),
                    "{test}: STATION_REQUIRE_POSTGRES is set but PostgreSQL at {base} does not answer: {e}"
                );
                eprintln!("{test}: skipped: no PostgreSQL at {base} ({e})");
                None
            }
        }
    }

    /// A database of its own on the server, dropped when the test ends.
    pub struct TestDb {
        pub url: String,
        base: String,
        name: String,
        /// The one that created the database drops it.
        owner: bool,
    }

    impl TestDb {
        pub fn create(base: &str) -> TestDb {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let name = format!(
                "station_test_{}_{}_{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos()
            );
            let mut c = postgres::Client::connect(base, postgres::NoTls)
                .unwrap_or_else(|e| panic!("STATION_TEST_PG={base}: {e}"));
            c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
            let (head, _) = base.rsplit_once('/').expect("a URL ending in /dbname");
            let url = match base.split_once('?') {
                Some((_, q)) => format!("{head}/{name}?{q}"),
                None => format!("{head}/{name}"),
            };
            TestDb {
                url,
                base: base.to_string(),
                name,
                owner: true,
            }
        }

        /// The same database reached at another URL (through a [`Proxy`]),
        /// not dropped by this handle.
        pub fn via(&self, url: String) -> TestDb {
            TestDb {
                url,
                base: self.base.clone(),
                name: self.name.clone(),
                owner: false,
            }
        }

        /// The same database, not dropped by this handle.
        pub fn share(&self) -> TestDb {
            TestDb {
                url: self.url.clone(),
                base: self.base.clone(),
                name: self.name.clone(),
                owner: false,
            }
        }
    }

    impl Drop for TestDb {
        fn drop(&mut self) {
            if !self.owner {
                return;
            }
            if let Ok(mut c) = postgres::Client::connect(&self.base, postgres::NoTls) {
                let _ = c.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ));
            }
        }
    }

    /// A TCP relay between the stations and the PostgreSQL server that a
    /// test can take down (every open connection cut, new ones closed at
    /// once: the server is unreachable) and bring back: a database outage
    /// without touching the server.
    pub struct Proxy {
        pub port: u16,
        down: std::sync::Arc<std::sync::atomic::AtomicBool>,
        open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    }

    impl Proxy {
        /// Relay to the server `db` is on.
        pub fn to(db: &TestDb) -> Proxy {
            use std::net::{TcpListener, TcpStream};
            use std::sync::atomic::Ordering;
            let config: postgres::Config = db.url.parse().unwrap();
            let host = match &config.get_hosts()[0] {
                postgres::config::Host::Tcp(h) => h.clone(),
                other => panic!("a TCP host, not {other:?}"),
            };
            let port = config.get_ports().first().copied().unwrap_or(5432);
            let server = format!("{host}:{port}");
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let proxy = Proxy {
                port: listener.local_addr().unwrap().port(),
                down: Default::default(),
                open: Default::default(),
            };
            let (down, open) = (proxy.down.clone(), proxy.open.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    let Ok(client) = client else { continue };
                    // Under the lock `down` takes: no connection slips past it.
                    let mut list = open.lock().unwrap();
                    if down.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let Ok(upstream) = TcpStream::connect(&server) else {
                        continue;
                    };
                    list.push(client.try_clone().unwrap());
                    list.push(upstream.try_clone().unwrap());
                    for (mut from, mut to) in [
                        (client.try_clone().unwrap(), upstream.try_clone().unwrap()),
                        (upstream, client),
                    ] {
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut from, &mut to);
                            let _ = to.shutdown(std::net::Shutdown::Both);
                        });
                    }
                }
            });
            proxy
        }

        /// `db`'s URL through this relay.
        pub fn url(&self, db: &TestDb) -> String {
            let (scheme, rest) = db.url.split_once("://").unwrap();
            let (auth, after) = rest.split_once('@').unwrap();
            let path = &after[after.find('/').unwrap()..];
            format!("{scheme}://{auth}@127.0.0.1:{}{path}", self.port)
        }

        /// The database goes away: open connections cut, new ones refused.
        pub fn down(&self) {
            self.down.store(true, std::sync::atomic::Ordering::SeqCst);
            for s in self.open.lock().unwrap().drain(..) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }

        /// The database is back.
        pub fn up(&self) {
            self.down.store(false, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// A fake raw thermal printer (JetDirect port) on a loopback port, for
/// `printer::raw`: it keeps each connection's bytes as one job, answers ZPL's
/// `~HS` with the status a test sets, and can misbehave the ways real
/// printers do (reset a job part-way, stay silent when asked its status).
pub mod raw_printer {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};

    /// How the printer treats the next connections.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Mode {
        /// Read to the end, keep the job, close cleanly.
        Accept,
        /// Read this many bytes, then close with the rest unread: the kernel
        /// resets the connection (a printer switched off mid-job).
        ResetAfter(usize),
        /// Take jobs but never answer `~HS` (Zebra's behaviour when out of
        /// paper or with the head open).
        Silent,
    }

    #[derive(Default)]
    struct Shared {
        jobs: Vec<Vec<u8>>,
        resets: usize,
        status: Vec<u8>,
        mode: Option<Mode>,
    }

    pub struct FakePrinter {
        pub port: u16,
        shared: Arc<Mutex<Shared>>,
    }

    impl FakePrinter {
        /// Listening on 127.0.0.1, accepting, status all fine.
        pub fn start() -> FakePrinter {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let shared = Arc::new(Mutex::new(Shared {
                status: station::printer::raw::host_status_answer(false, false, false),
                ..Shared::default()
            }));
            let printer = FakePrinter {
                port: listener.local_addr().unwrap().port(),
                shared: shared.clone(),
            };
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    let Ok(conn) = conn else { continue };
                    let shared = shared.clone();
                    std::thread::spawn(move || serve(conn, &shared));
                }
            });
            printer
        }

        /// `socket://127.0.0.1:PORT`.
        pub fn uri(&self) -> String {
            format!("socket://127.0.0.1:{}", self.port)
        }

        pub fn set_mode(&self, mode: Mode) {
            self.shared.lock().unwrap().mode = Some(mode);
        }

        /// What `~HS` says from now on.
        pub fn set_status(&self, paper_out: bool, paused: bool, head_open: bool) {
            self.shared.lock().unwrap().status =
                station::printer::raw::host_status_answer(paper_out, paused, head_open);
        }

        /// The jobs received whole, in order (status queries are not jobs).
        pub fn jobs(&self) -> Vec<Vec<u8>> {
            self.shared.lock().unwrap().jobs.clone()
        }

        /// How many connections were reset part-way.
        pub fn resets(&self) -> usize {
            self.shared.lock().unwrap().resets
        }
    }

    /// A `socket://` address where nothing listens: connections are refused.
    pub fn refusing_uri() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("socket://127.0.0.1:{port}")
    }

    fn serve(mut conn: TcpStream, shared: &Mutex<Shared>) {
        let mode = shared.lock().unwrap().mode.unwrap_or(Mode::Accept);
        let mut job = Vec::new();
        let mut buf = [0u8; 8192];
        let mut answered = false;
        loop {
            let limit = match mode {
                Mode::ResetAfter(n) => n.saturating_sub(job.len()).min(buf.len()),
                _ => buf.len(),
            };
            // Closing with unread data makes the kernel send a reset instead of
            // the end of the stream; peek waits until there is some (the job
            // goes on past the limit), so the reset is certain, not a race.
            if limit == 0 && matches!(conn.peek(&mut buf[..1]), Ok(1..)) {
                shared.lock().unwrap().resets += 1;
                return;
            }
            let n = match conn.read(&mut buf[..limit]) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            job.extend_from_slice(&buf[..n]);
            if !answered && mode != Mode::Silent && job.windows(3).any(|w| w == b"~HS") {
                answered = true;
                let status = shared.lock().unwrap().status.clone();
                let _ = conn.write_all(&status);
            }
        }
        if job != b"~HS" && !job.is_empty() {
            shared.lock().unwrap().jobs.push(job);
        }
        // Dropping `conn` closes our side cleanly: the sender sees the end.
    }
}
