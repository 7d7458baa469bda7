//! Waybill API v1 over HTTP (`docs/COURIERS.md`): the station's client.
//!
//! Retries 429 (honouring `Retry-After`), 503/5xx, timeouts and connection
//! errors with backoff until the operation's deadline; never other 4xx. A
//! retried take is safe: every parcel carries its request id.

use super::{Address, Answer, Routing, ServiceError, ServiceFuture, TakeRequest, WaybillService};
use crate::config::{Courier, Secret};
use rand::RngExt as _;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::Instant;

/// How long to try.
#[derive(Clone, Copy, Debug)]
pub struct Patience {
    pub request_timeout: Duration,
    /// One operation (a take of up to 10 parcels, a cancel) with its retries.
    pub total: Duration,
}

impl Default for Patience {
    fn default() -> Patience {
        Patience {
            request_timeout: Duration::from_secs(10),
            total: Duration::from_secs(60),
        }
    }
}

/// A client of one courier's Waybill API v1 service.
pub struct V1 {
    http: reqwest::Client,
    base: String,
    courier: String,
    token: Secret,
    token_env: String,
    patience: Patience,
}

#[derive(Deserialize)]
struct TakeAnswer {
    waybills: Vec<WireResult>,
}

#[derive(Deserialize)]
struct WireResult {
    request_id: String,
    waybill_no: Option<String>,
    routing: Option<Routing>,
    error: Option<WireError>,
}

#[derive(Deserialize, Default)]
struct WireError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl V1 {
    pub fn new(courier: &Courier, patience: Patience) -> Result<V1, ServiceError> {
        if courier.token.is_empty() {
            return Err(ServiceError::NoToken {
                courier: courier.code.clone(),
                token_env: courier.token_env.clone(),
            });
        }
        let base = courier.service_url.trim_end_matches('/').to_string();
        let malformed = |message: String| ServiceError::Malformed {
            courier: courier.code.clone(),
            url: base.clone(),
            what: "the address".into(),
            message,
        };
        reqwest::Url::parse(&base).map_err(|e| malformed(e.to_string()))?;
        let http = crate::shop::client::http()
            .timeout(patience.request_timeout)
            .connect_timeout(patience.request_timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("station/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| malformed(e.to_string()))?;
        Ok(V1 {
            http,
            base,
            courier: courier.code.clone(),
            token: courier.token.clone(),
            token_env: courier.token_env.clone(),
            patience,
        })
    }

    fn malformed(&self, what: &str, message: impl Into<String>) -> ServiceError {
        ServiceError::Malformed {
            courier: self.courier.clone(),
            url: self.base.clone(),
            what: what.into(),
            message: message.into(),
        }
    }

    /// One operation: the request, retried on passing faults until the deadline.
    async fn call(
        &self,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Value, ServiceError> {
        let deadline = Instant::now() + self.patience.total;
        let mut attempt: u32 = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let outcome = build()
                .bearer_auth(self.token.expose())
                .timeout(
                    self.patience
                        .request_timeout
                        .min(left)
                        .max(Duration::from_millis(1)),
                )
                .send()
                .await;
            let (problem, floor) = match outcome {
                Ok(resp) if resp.status().is_success() => match resp.bytes().await {
                    Ok(body) => {
                        return serde_json::from_slice(&body)
                            .map_err(|e| self.malformed(what, e.to_string()));
                    }
                    Err(_) => ("the answer was cut off".to_string(), None),
                },
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = crate::shop::client::retry_after(&resp);
                    let body: Value = resp.json().await.unwrap_or(Value::Null);
                    let code = body["error"]["code"].as_str().unwrap_or("").to_string();
                    let message = body["error"]["message"].as_str().unwrap_or("").to_string();
                    match status {
                        StatusCode::UNAUTHORIZED => {
                            return Err(ServiceError::Unauthorized {
                                courier: self.courier.clone(),
                                url: self.base.clone(),
                                token_env: self.token_env.clone(),
                            });
                        }
                        StatusCode::CONFLICT if code == "quota_exhausted" => {
                            // The balance is asked for by `take_now`.
                            return Err(ServiceError::QuotaExhausted {
                                courier: self.courier.clone(),
                                balance: "unknown".into(),
                                message,
                            });
                        }
                        StatusCode::TOO_MANY_REQUESTS => (format!("HTTP 429 {code}"), retry_after),
                        s if s.is_server_error() => (format!("HTTP {} {code}", s.as_u16()), None),
                        s => {
                            return Err(ServiceError::Refused {
                                courier: self.courier.clone(),
                                what: what.into(),
                                status: s.as_u16(),
                                code,
                                message,
                            });
                        }
                    }
                }
                Err(e) if e.is_timeout() => ("timed out".to_string(), None),
                Err(e) => (format!("cannot connect: {}", e.without_url()), None),
            };
            // Equal-jitter backoff from 100 ms to 5 s; Retry-After is a floor.
            let step = Duration::from_millis(100)
                .saturating_mul(1 << attempt.min(6))
                .min(Duration::from_secs(5));
            let wait = (step / 2 + (step / 2).mul_f64(rand::rng().random_range(0.0..=1.0)))
                .max(floor.unwrap_or_default());
            attempt += 1;
            if Instant::now() + wait >= deadline {
                return Err(ServiceError::GaveUp {
                    courier: self.courier.clone(),
                    what: what.into(),
                    url: self.base.clone(),
                    elapsed_secs: self.patience.total.as_secs(),
                    last: problem,
                });
            }
            tracing::warn!(
                "{} e-waybill service, {what}: {problem}; retrying in {} ms",
                self.courier,
                wait.as_millis()
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn balance_now(&self) -> Result<u64, ServiceError> {
        let url = format!("{}/v1/balance", self.base);
        let courier = self.courier.clone();
        let body = self
            .call("the balance", || {
                self.http.get(&url).query(&[("courier", &courier)])
            })
            .await?;
        body["available"]
            .as_u64()
            .ok_or_else(|| self.malformed("the balance", "no `available` count"))
    }

    async fn take_now(&self, request: &TakeRequest) -> Result<Vec<Answer>, ServiceError> {
        let url = format!("{}/v1/waybills", self.base);
        let what = format!("numbers for {} parcels", request.parcels.len());
        let body = match self
            .call(&what, || self.http.post(&url).json(request))
            .await
        {
            Err(ServiceError::QuotaExhausted {
                courier, message, ..
            }) => {
                // Say how many are left: the operator tops up by that much.
                let balance = match self.balance_now().await {
                    Ok(n) => n.to_string(),
                    Err(_) => "unknown".into(),
                };
                return Err(ServiceError::QuotaExhausted {
                    courier,
                    balance,
                    message,
                });
            }
            other => other?,
        };
        let answer: TakeAnswer =
            serde_json::from_value(body).map_err(|e| self.malformed(&what, e.to_string()))?;
        if answer.waybills.len() != request.parcels.len() {
            return Err(self.malformed(
                &what,
                format!(
                    "{} results for {} parcels",
                    answer.waybills.len(),
                    request.parcels.len()
                ),
            ));
        }
        answer
            .waybills
            .into_iter()
            .zip(&request.parcels)
            .map(|(r, p)| {
                if r.request_id != p.request_id {
                    return Err(self.malformed(
                        &what,
                        format!(
                            "results out of order: {} where {} was asked",
                            r.request_id, p.request_id
                        ),
                    ));
                }
                match (r.waybill_no, r.error) {
                    (Some(number), None) if !number.trim().is_empty() => Ok(Answer::Taken {
                        request_id: r.request_id,
                        number,
                        routing: r.routing.unwrap_or_default(),
                    }),
                    (_, Some(e)) => Ok(Answer::Refused {
                        request_id: r.request_id,
                        code: e.code,
                        message: e.message,
                    }),
                    _ => Err(self.malformed(&what, "a result with neither waybill_no nor error")),
                }
            })
            .collect()
    }

    async fn cancel_now(&self, number: &str, reason: &str) -> Result<(), ServiceError> {
        let url = format!("{}/v1/waybills/{number}/cancel", self.base);
        let body = json!({"courier": self.courier, "reason": reason});
        self.call(&format!("cancelling {number}"), || {
            self.http.post(&url).json(&body)
        })
        .await?;
        Ok(())
    }
}

impl WaybillService for V1 {
    fn take<'a>(&'a self, request: &'a TakeRequest) -> ServiceFuture<'a, Vec<Answer>> {
        Box::pin(self.take_now(request))
    }

    fn cancel<'a>(&'a self, number: &'a str, reason: &'a str) -> ServiceFuture<'a, ()> {
        Box::pin(self.cancel_now(number, reason))
    }

    fn balance(&self) -> ServiceFuture<'_, u64> {
        Box::pin(self.balance_now())
    }
}

/// The sender as the service takes it: the configured `[sender]` (one address line).
pub fn sender_address(sender: &crate::render::Sender) -> Address {
    Address {
        name: sender.name.clone(),
        phone: sender.phone.clone(),
        address: sender.address.clone(),
        ..Address::default()
    }
}
