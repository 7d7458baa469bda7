//! The checks every request passes before it reaches a route, and the security
//! headers on every answer.
//!
//! - `Host` must be a name the station answers to. A page on an attacker's
//!   domain that re-points its DNS at 127.0.0.1 (DNS rebinding) still sends its
//!   own name as `Host`, so it is refused.
//! - A state-changing request (anything but GET/HEAD/OPTIONS) must carry an
//!   `Origin` that is `http(s)://` plus an allowed host, so a page elsewhere
//!   cannot make a bench scan, reprint or close a batch (CSRF). A request with
//!   no `Origin` is refused too: browsers always send it on POST, and a script
//!   can add it.

use super::{ApiError, AppState};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// The page may load only its own script, style and API; no inline script, no
/// framing, no plugins.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The hosts (`name:port`, lower case) and origins the server answers to.
#[derive(Clone, Debug)]
pub struct Allowed {
    hosts: Vec<String>,
    origins: Vec<String>,
}

impl Allowed {
    /// The listen address (unless it is 0.0.0.0 or ::, which no browser types),
    /// `localhost:PORT` when listening on loopback, and the configured names.
    pub fn new(
        addr: SocketAddr,
        configured: &[String],
    ) -> Result<Allowed, crate::config::ConfigError> {
        let mut hosts = Vec::new();
        if !addr.ip().is_unspecified() {
            hosts.push(addr.to_string());
        }
        if addr.ip().is_loopback() || addr.ip().is_unspecified() {
            hosts.push(format!("localhost:{}", addr.port()));
        }
        for h in configured {
            let h = h.trim().to_ascii_lowercase();
            if h.is_empty() || h.contains('/') || h.contains(char::is_whitespace) {
                return Err(crate::config::ConfigError::Invalid {
                    origin: "settings".into(),
                    message: format!(
                        "serve.allowed_hosts: {h:?} is not a host name with a port like \"station.lan:8080\""
                    ),
                });
            }
            hosts.push(h);
        }
        hosts.dedup();
        let origins = hosts
            .iter()
            .flat_map(|h| [format!("http://{h}"), format!("https://{h}")])
            .collect();
        Ok(Allowed { hosts, origins })
    }

    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    fn host_ok(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        // A browser leaves out the port when it is the scheme's default.
        self.hosts.iter().any(|h| {
            *h == host
                || h.strip_suffix(":80") == Some(host.as_str())
                || h.strip_suffix(":443") == Some(host.as_str())
        })
    }

    fn origin_ok(&self, origin: &str) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        self.origins.iter().any(|o| {
            *o == origin
                || o.strip_suffix(":80") == Some(origin.as_str())
                || o.strip_suffix(":443") == Some(origin.as_str())
        })
    }
}

/// Every request runs in a span naming its method and path, so what it logs
/// (a refusal, a failed scan) says which request it belongs to.
pub async fn check(state: State<Arc<AppState>>, req: Request, next: Next) -> Response {
    use tracing::Instrument as _;
    // At WARN, so the warnings it holds carry it under the default filter.
    let span = tracing::warn_span!("request", method = %req.method(), path = %req.uri().path());
    guard(state, req, next).instrument(span).await
}

async fn guard(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let allowed = &state.allowed;
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    let refused = match host {
        None => Some(ApiError::new(
            StatusCode::FORBIDDEN,
            "refused: the request has no Host header",
            "拒绝：请求没有 Host",
        )),
        Some(h) if !allowed.host_ok(&h) => Some(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "refused: this station answers to {} only, not {h:?}; to open it under another name add that name to serve.allowed_hosts",
                allowed.hosts.join(", ")
            ),
            format!(
                "拒绝：本工作站只接受 {}，不接受 {h:?}；如需用其他地址访问，请加到 serve.allowed_hosts",
                allowed.hosts.join(", ")
            ),
        )),
        Some(_) => None,
    };
    let refused = refused.or_else(|| {
        let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        if safe {
            return None;
        }
        match req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            Some(o) if allowed.origin_ok(o) => None,
            o => Some(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "refused: a change must come from the bench page itself (Origin {}), not from {}",
                    allowed.origins[..].first().map(String::as_str).unwrap_or("?"),
                    o.map_or("a request without Origin".to_string(), |o| format!("{o:?}"))
                ),
                "拒绝：只接受来自本工作站页面的操作（跨站请求）".to_string(),
            )),
        }
    });
    let mut resp = match refused {
        Some(e) => {
            tracing::warn!("{}", e.message);
            e.into_response()
        }
        None => next.run(req).await,
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_answers_to_its_address_and_localhost_only() {
        let a = Allowed::new("127.0.0.1:8080".parse().unwrap(), &[]).unwrap();
        assert!(a.host_ok("127.0.0.1:8080"));
        assert!(a.host_ok("LOCALHOST:8080"));
        assert!(!a.host_ok("localhost:8081"));
        assert!(!a.host_ok("evil.example:8080"));
        assert!(!a.host_ok("127.0.0.1"));
        assert!(a.origin_ok("http://127.0.0.1:8080"));
        assert!(a.origin_ok("http://localhost:8080"));
        assert!(!a.origin_ok("http://evil.example:8080"));
        assert!(!a.origin_ok("null"));
    }

    #[test]
    fn configured_names_are_added_and_checked() {
        let a = Allowed::new(
            "0.0.0.0:80".parse().unwrap(),
            &["Station.LAN:80".into(), "192.168.1.20:80".into()],
        )
        .unwrap();
        assert!(!a.host_ok("0.0.0.0:80"));
        assert!(a.host_ok("station.lan"));
        assert!(a.host_ok("station.lan:80"));
        assert!(a.origin_ok("http://station.lan"));
        assert!(a.host_ok("192.168.1.20:80"));
        assert!(!a.host_ok("192.168.1.21:80"));
        assert!(Allowed::new("127.0.0.1:1".parse().unwrap(), &["http://x/".into()]).is_err());
    }

    #[test]
    fn ipv6_loopback_is_bracketed() {
        let a = Allowed::new("[::1]:8080".parse().unwrap(), &[]).unwrap();
        assert!(a.host_ok("[::1]:8080"));
        assert!(a.host_ok("localhost:8080"));
    }
}
