//! Couriers' e-waybill services (电子面单): tracking numbers and routing codes
//! asked per parcel, and numbers given back.
//!
//! A courier's numbers come from one of two sources (`[[couriers]] source`):
//! - `pool` — a range or a file the courier issued; a number is drawn inside
//!   the wave's plan transaction (`store::tracking`), no call needed;
//! - `service` — the courier's (or the platform's) e-waybill service, reached
//!   through the [`WaybillService`] trait. [`api::V1`] speaks the station's
//!   Waybill API v1 (`docs/COURIERS.md`); a real courier's API (Cainiao's
//!   `cainiao.waybill.ii.get`, SF's, JD's) is another implementation of the
//!   same trait — the mapping is written down in `docs/COURIERS.md`.
//!
//! [`take`] turns a wave's parcels into numbers: each parcel's request is
//! committed under a request id before the call (the service's idempotency
//! key), numbers are committed with their routing as answers arrive, and a
//! number voided later is given back through [`cancel`] by the outbox worker.
//! `sim` is the Waybill API simulator (demo and tests).
//!
//! *Invariants:* a parcel never holds two numbers of one request id and a
//! number the service issued is never lost (request committed first, same id
//! on every retry); the token goes only into the `Authorization` header.

pub mod api;
pub mod cancel;
pub mod sim;
pub mod take;

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use thiserror::Error;

pub use crate::render::Routing;

/// A future a [`WaybillService`] returns (the trait is used as `dyn`).
pub type ServiceFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ServiceError>> + Send + 'a>>;

/// An address as the service takes it (sender or recipient), unmasked: the
/// courier needs the real one.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Address {
    pub name: String,
    pub phone: String,
    pub province: String,
    pub city: String,
    pub district: String,
    pub address: String,
}

/// One parcel to number.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Parcel {
    /// The idempotency key: the same id always gets the same number back.
    pub request_id: String,
    pub order_ids: Vec<String>,
    pub recipient: Address,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_g: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// One call's worth: up to [`MAX_PARCELS_PER_CALL`] parcels of one courier.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TakeRequest {
    pub courier: String,
    pub sender: Address,
    pub parcels: Vec<Parcel>,
}

/// The most parcels one call may carry (Waybill API v1, and Cainiao's
/// `trade_order_info_dtos`).
pub const MAX_PARCELS_PER_CALL: usize = 10;

/// What the service said about one parcel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Taken {
        request_id: String,
        number: String,
        routing: Routing,
    },
    /// This parcel alone was refused: `unreachable` (超区), `bad_address`, `bad_request`.
    Refused {
        request_id: String,
        code: String,
        message: String,
    },
}

impl Answer {
    pub fn request_id(&self) -> &str {
        match self {
            Answer::Taken { request_id, .. } | Answer::Refused { request_id, .. } => request_id,
        }
    }
}

#[derive(Debug, Error)]
pub enum ServiceError {
    #[error(
        "{courier}'s e-waybill service has no numbers left (quota_exhausted, balance {balance}): top up the branch's balance (面单余额) with the courier, then run the command again{}",
        if message.is_empty() { String::new() } else { format!(" ({message})") }
    )]
    QuotaExhausted {
        courier: String,
        balance: String,
        message: String,
    },
    #[error(
        "{courier}'s e-waybill service at {url} refused the token (401): put the service's token in the environment variable {token_env}"
    )]
    Unauthorized {
        courier: String,
        url: String,
        token_env: String,
    },
    #[error(
        "{courier}'s e-waybill service has no token: set the environment variable {token_env} (named by token_env in its [[couriers]] entry)"
    )]
    NoToken { courier: String, token_env: String },
    #[error("{courier}'s e-waybill service refused {what}: HTTP {status} {code}: {message}")]
    Refused {
        courier: String,
        what: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error(
        "gave up on {what} at {courier}'s e-waybill service {url} after {elapsed_secs} s (last problem: {last}): check that it is up and service_url is right; orders of other couriers can print meanwhile with `station print --courier CODE`"
    )]
    GaveUp {
        courier: String,
        what: String,
        url: String,
        elapsed_secs: u64,
        last: String,
    },
    #[error(
        "{courier}'s e-waybill service at {url} answered {what} with something that is not Waybill API v1 ({message}): check service_url"
    )]
    Malformed {
        courier: String,
        url: String,
        what: String,
        message: String,
    },
}

impl ServiceError {
    /// The error code the service gave, if it gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ServiceError::Refused { code, .. } => Some(code),
            ServiceError::QuotaExhausted { .. } => Some("quota_exhausted"),
            ServiceError::Unauthorized { .. } => Some("unauthorized"),
            _ => None,
        }
    }

    /// Worth trying again later (the service was down or slow), as opposed
    /// to a refusal that will not change by itself.
    pub fn is_transient(&self) -> bool {
        matches!(self, ServiceError::GaveUp { .. })
    }
}

/// The adapter boundary: what the station needs of an e-waybill service.
/// Waybill API v1 is [`api::V1`]; a courier's own API implements the same three calls.
pub trait WaybillService: Send + Sync {
    /// Take numbers for up to [`MAX_PARCELS_PER_CALL`] parcels: one answer per
    /// parcel, in request order. A repeated request id gets the same number.
    fn take<'a>(&'a self, request: &'a TakeRequest) -> ServiceFuture<'a, Vec<Answer>>;
    /// Give a number back (回收). `Ok` also when it was already cancelled.
    fn cancel<'a>(&'a self, number: &'a str, reason: &'a str) -> ServiceFuture<'a, ()>;
    /// Numbers the branch can still take (面单余额).
    fn balance(&self) -> ServiceFuture<'_, u64>;
}

/// The service of a courier configured with `source = "service"`.
pub fn service_for(
    courier: &crate::config::Courier,
    policy: api::Patience,
) -> Result<Box<dyn WaybillService>, ServiceError> {
    Ok(Box::new(api::V1::new(courier, policy)?))
}
