//! `serve` over TLS, so PINs and session cookies never cross the warehouse
//! network in clear: a certificate from PEM files (`[serve] tls_cert`,
//! `tls_key`), or, with `tls = "self-signed"`, one made at first start and
//! kept for the next, whose SHA-256 fingerprint `serve` prints for the benches
//! to check. Plain HTTP is allowed on a loopback address only.

use crate::config::{ConfigError, ServeConfig};
use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How `serve` speaks to the benches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// Made at first start when `cert` does not exist yet, then reused.
    SelfSigned {
        cert: PathBuf,
        key: PathBuf,
    },
}

impl Mode {
    /// The mode `[serve]` asks for. A self-signed certificate without paths
    /// is kept in `station-tls/` beside the database.
    pub fn from_config(serve: &ServeConfig, state_dir: &Path) -> Mode {
        let given = |p: &str| (!p.trim().is_empty()).then(|| PathBuf::from(p.trim()));
        let beside_db = state_dir.join("station-tls");
        match (
            serve.tls.as_str(),
            given(&serve.tls_cert),
            given(&serve.tls_key),
        ) {
            ("self-signed", cert, key) => Mode::SelfSigned {
                cert: cert.unwrap_or_else(|| beside_db.join("cert.pem")),
                key: key.unwrap_or_else(|| beside_db.join("key.pem")),
            },
            ("off", _, _) => Mode::Plain,
            (_, Some(cert), Some(key)) => Mode::Files { cert, key },
            _ => Mode::Plain,
        }
    }

    /// Plain HTTP to anything but loopback would carry PINs and cookies in
    /// clear: refused, with what to set instead.
    pub fn check_address(&self, listen: SocketAddr) -> Result<(), ConfigError> {
        if *self == Mode::Plain && !listen.ip().is_loopback() {
            return Err(ConfigError::Invalid {
                origin: "settings".into(),
                message: format!(
                    "serve would listen on {listen} without TLS, and the benches' PINs and session cookies would cross the network in clear: set [serve] tls = \"self-signed\" (or tls_cert and tls_key to your certificate's PEM files), or listen on 127.0.0.1"
                ),
            });
        }
        Ok(())
    }
}

/// A certificate ready to serve with.
pub struct Loaded {
    pub server: Arc<rustls::ServerConfig>,
    /// SHA-256 of the certificate, as `AB:CD:…` (what browsers show).
    pub fingerprint: String,
    pub cert_path: PathBuf,
    /// Made by this start (a self-signed certificate that did not exist yet).
    pub made: bool,
}

/// Load the certificate of `mode` (making a self-signed one first when it
/// does not exist yet, valid for `names`); `None` for plain HTTP.
pub fn load(mode: &Mode, names: &[String]) -> Result<Option<Loaded>> {
    let (cert, key, made) = match mode {
        Mode::Plain => return Ok(None),
        Mode::Files { cert, key } => (cert, key, false),
        Mode::SelfSigned { cert, key } => {
            let made = !cert.exists();
            if made {
                make_self_signed(cert, key, names)?;
            }
            (cert, key, made)
        }
    };
    let cert_pem = std::fs::read(cert)
        .with_context(|| format!("cannot read serve.tls_cert {}", cert.display()))?;
    let key_pem = std::fs::read(key)
        .with_context(|| format!("cannot read serve.tls_key {}", key.display()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .ok()
        .filter(|c| !c.is_empty())
        .with_context(|| {
            format!(
                "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                cert.display()
            )
        })?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        anyhow::anyhow!(
            "{} holds no PEM private key the station can use: {e}",
            key.display()
        )
    })?;
    let fingerprint = fingerprint(&chain[0]);
    crate::shop::client::install_crypto();
    let mut server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .with_context(|| {
            format!(
                "{} and {} are not a certificate and its private key",
                cert.display(),
                key.display()
            )
        })?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(Loaded {
        server: Arc::new(server),
        fingerprint,
        cert_path: cert.clone(),
        made,
    }))
}

/// `AB:CD:…`: the certificate's SHA-256, as a browser's certificate viewer shows it.
pub fn fingerprint(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The names a self-signed certificate is made for: loopback, the listen
/// address, this machine's host name and the configured `allowed_hosts`.
pub fn names_for(listen: SocketAddr, allowed_hosts: &[String]) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    if let Some(host) = crate::store::host_name() {
        names.push(host);
    }
    for h in allowed_hosts {
        let h = h.trim().to_ascii_lowercase();
        let host = match h.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default().to_string(),
            None => h.rsplit_once(':').map_or(h.clone(), |(n, _)| n.to_string()),
        };
        if !host.is_empty() {
            names.push(host);
        }
    }
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// Make a self-signed certificate for `names` and write it and its key (the
/// key readable by its owner only). Each file is written whole under a
/// temporary name and then renamed, so a crash leaves no half file.
fn make_self_signed(cert: &Path, key: &Path, names: &[String]) -> Result<()> {
    let mut params = rcgen::CertificateParams::new(names.to_vec())
        .context("cannot make a certificate for these host names")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "station serve (self-signed)");
    let signing_key = rcgen::KeyPair::generate().context("cannot make a key pair")?;
    let made = params
        .self_signed(&signing_key)
        .context("cannot sign the certificate")?;
    write_whole(key, signing_key.serialize_pem().as_bytes(), 0o600)?;
    write_whole(cert, made.pem().as_bytes(), 0o644)?;
    Ok(())
}

fn write_whole(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::io::Write as _;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new(".")))
        .with_context(|| format!("cannot write beside {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.as_file().write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(tls: &str, cert: &str, key: &str) -> ServeConfig {
        ServeConfig {
            tls: tls.into(),
            tls_cert: cert.into(),
            tls_key: key.into(),
            ..ServeConfig::default()
        }
    }

    #[test]
    fn the_mode_follows_the_settings() {
        let db = Path::new("/srv/station");
        assert_eq!(Mode::from_config(&serve("", "", ""), db), Mode::Plain);
        assert_eq!(Mode::from_config(&serve("off", "", ""), db), Mode::Plain);
        assert_eq!(
            Mode::from_config(&serve("", "c.pem", "k.pem"), db),
            Mode::Files {
                cert: "c.pem".into(),
                key: "k.pem".into()
            }
        );
        assert_eq!(
            Mode::from_config(&serve("self-signed", "", ""), db),
            Mode::SelfSigned {
                cert: "/srv/station/station-tls/cert.pem".into(),
                key: "/srv/station/station-tls/key.pem".into()
            }
        );
        let lan: SocketAddr = "192.168.1.20:8443".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(Mode::Plain.check_address(lan).is_err());
        assert!(Mode::Plain.check_address(lo).is_ok());
        assert!(
            Mode::from_config(&serve("self-signed", "", ""), db)
                .check_address(lan)
                .is_ok()
        );
    }

    #[test]
    fn a_self_signed_certificate_is_made_once_and_its_key_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let mode = Mode::from_config(&serve("self-signed", "", ""), dir.path());
        let names = names_for(
            "0.0.0.0:8443".parse().unwrap(),
            &["station.lan:8443".into(), "[fd00::5]:8443".into()],
        );
        assert!(names.contains(&"station.lan".to_string()), "{names:?}");
        assert!(names.contains(&"fd00::5".to_string()), "{names:?}");
        let first = load(&mode, &names).unwrap().unwrap();
        assert!(first.made);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        let again = load(&mode, &names).unwrap().unwrap();
        assert!(!again.made, "the second start reuses the certificate");
        assert_eq!(again.fingerprint, first.fingerprint);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let key = dir.path().join("station-tls/key.pem");
            let m = std::fs::metadata(key).unwrap().permissions().mode();
            assert_eq!(m & 0o077, 0, "the key is its owner's only: {m:o}");
        }
    }

    #[test]
    fn files_that_are_not_a_certificate_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(&key, "not a key").unwrap();
        let mode = Mode::Files {
            cert: cert.clone(),
            key,
        };
        let err = format!("{:#}", load(&mode, &[]).err().unwrap());
        assert!(err.contains("cert.pem holds no PEM certificate"), "{err}");
    }
}
