//! Arbitrary bytes as `station.toml`, through `Config::load` exactly as the
//! command line loads it (file read, unknown keys pruned to warnings, the PIN
//! file-mode rule, `check`): a config or a `ConfigError`, never a panic. A
//! config that loads must answer the questions the station asks of it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use station::config::{Config, Overrides};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::OnceLock;

const CANARY: &str = "tok-CANARY-5f3a";

fn path() -> &'static PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            tempfile::tempdir_in("/dev/shm")
        } else {
            tempfile::tempdir()
        };
        DIR.get_or_init(|| base.unwrap())
            .path()
            .join("station.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    let path = path();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(data).unwrap();
    drop(f);
    let env = |k: &str| (k == "STATION_SHOP_TOKEN").then(|| CANARY.to_string());
    let loaded = match Config::load(Some(path), &env, &Overrides::default()) {
        Ok(l) => l,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let c = &loaded.config;
    let _ = c.tz();
    let _ = c.dispatch.cutoff_time();
    let _ = c.schedule.pull_every();
    let _ = c.schedule.auto_wave_every();
    for courier in &c.couriers {
        assert_eq!(
            c.courier(&courier.code).map(|k| &k.code),
            Some(&courier.code)
        );
    }
    // A loaded config must serialise (the token never does).
    let shown = serde_json::to_string(c).expect("config serialises");
    assert!(!shown.contains(CANARY), "the shop token was serialised");
    assert!(
        !format!("{c:?}").contains(CANARY),
        "the shop token is in Debug"
    );
});
