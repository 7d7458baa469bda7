//! Taking numbers (取号) from e-waybill services for a wave or a reprint.
//!
//! 1. Every parcel's request is committed first (`Store::waybill_requests`):
//!    a parcel that already holds a number for its version asks for none, one
//!    whose earlier request was never answered asks again under the same id.
//! 2. Calls of up to 10 parcels go out, up to `max_in_flight` per courier at
//!    once, on a thread of their own (the caller may be inside a runtime).
//! 3. Each call's answers are committed as they arrive, on the caller's
//!    thread (`Store::record_waybill_answers`).
//!
//! A courier whose service fails a call (`quota_exhausted`, down, a refused
//! token) gets no further calls; what it answered before stays committed.

use super::{Address, Answer, MAX_PARCELS_PER_CALL, Parcel, ServiceError, TakeRequest, api};
use crate::config::{Config, Courier};
use crate::store::{Answered, Store};
use anyhow::Result;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A parcel the service refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub order_id: String,
    pub courier: String,
    pub code: String,
    pub message: String,
}

/// What a take did.
#[derive(Debug, Default)]
pub struct Took {
    /// Requests sent (new ones and unanswered earlier ones).
    pub asked: usize,
    /// Numbers that came back and were committed.
    pub taken: usize,
    pub refused: Vec<Refusal>,
    /// A courier whose service failed, with the error; its parcels without a
    /// number stay without one (the caller decides: a wave stops).
    pub failed: Vec<(String, ServiceError)>,
}

/// Take numbers for every parcel of a service courier among `parcels`
/// (order id, the courier it ships with); pool couriers are left alone.
pub fn take_numbers(
    store: &mut Store,
    config: &Config,
    parcels: &[(&str, &Courier)],
    operator: &str,
) -> Result<Took> {
    let wanted: Vec<(&str, &str)> = parcels
        .iter()
        .filter(|(_, c)| c.is_service())
        .map(|(id, c)| (*id, c.code.as_str()))
        .collect();
    let mut took = Took::default();
    if wanted.is_empty() {
        return Ok(took);
    }
    let pending = store.waybill_requests(&wanted, operator)?;
    took.asked = pending.len();
    if pending.is_empty() {
        return Ok(took);
    }
    // Calls, per courier, of up to ten parcels each.
    let sender = api::sender_address(&config.sender);
    let mut per_courier: BTreeMap<String, Vec<Parcel>> = BTreeMap::new();
    let mut order_of: BTreeMap<String, String> = BTreeMap::new();
    for p in &pending {
        let Some(stored) = store.order(&p.order_id)? else {
            continue;
        };
        let o = &stored.order;
        let r = &o.recipient;
        let weight_g = o
            .items
            .iter()
            .map(|i| i.weight_g.map(|w| w * u64::from(i.qty)))
            .sum::<Option<u64>>();
        order_of.insert(p.request_id.clone(), p.order_id.clone());
        per_courier
            .entry(p.courier.clone())
            .or_default()
            .push(Parcel {
                request_id: p.request_id.clone(),
                order_ids: vec![p.order_id.clone()],
                recipient: Address {
                    name: r.name.clone(),
                    phone: r.phone.clone(),
                    province: r.province.clone(),
                    city: r.city.clone(),
                    district: r.district.clone().unwrap_or_default(),
                    address: r.address.clone(),
                },
                weight_g,
                service: o.shipping.service.as_ref().map(|s| {
                    match s {
                        crate::order::Service::Standard => "standard",
                        crate::order::Service::Express => "express",
                    }
                    .to_string()
                }),
            });
    }
    let mut calls: Vec<(Arc<Lane>, TakeRequest)> = Vec::new();
    for (code, list) in per_courier {
        let Some(courier) = config.courier(&code) else {
            continue;
        };
        let service = match super::service_for(courier, api::Patience::default()) {
            Ok(s) => s,
            Err(e) => {
                took.failed.push((code, e));
                continue;
            }
        };
        let lane = Arc::new(Lane {
            courier: code.to_string(),
            service: Arc::from(service),
            permits: Arc::new(tokio::sync::Semaphore::new(courier.max_in_flight.max(1))),
            stopped: AtomicBool::new(false),
        });
        for chunk in list.chunks(MAX_PARCELS_PER_CALL) {
            calls.push((
                lane.clone(),
                TakeRequest {
                    courier: code.to_string(),
                    sender: sender.clone(),
                    parcels: chunk.to_vec(),
                },
            ));
        }
    }
    if calls.is_empty() {
        return Ok(took);
    }
    crate::crash::point("waybill.calling");
    let (tx, rx) = std::sync::mpsc::channel::<(String, Result<Vec<Answer>, ServiceError>)>();
    std::thread::scope(|s| -> Result<()> {
        s.spawn(move || run_calls(calls, tx));
        for (courier, result) in rx {
            match result {
                Ok(answers) => {
                    let recorded: Vec<Answered<'_>> = answers
                        .iter()
                        .map(|a| match a {
                            Answer::Taken {
                                request_id,
                                number,
                                routing,
                            } => Answered::Taken {
                                request_id,
                                number,
                                routing,
                            },
                            Answer::Refused {
                                request_id,
                                code,
                                message,
                            } => Answered::Refused {
                                request_id,
                                code,
                                message,
                            },
                        })
                        .collect();
                    store.record_waybill_answers(&recorded, operator)?;
                    for a in answers {
                        match a {
                            Answer::Taken { .. } => took.taken += 1,
                            Answer::Refused {
                                request_id,
                                code,
                                message,
                            } => took.refused.push(Refusal {
                                order_id: order_of.get(&request_id).cloned().unwrap_or_default(),
                                courier: courier.clone(),
                                code,
                                message,
                            }),
                        }
                    }
                }
                Err(e) => {
                    if !took.failed.iter().any(|(c, _)| *c == courier) {
                        took.failed.push((courier, e));
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok(took)
}

/// One courier's service and its limit of calls in flight.
struct Lane {
    courier: String,
    service: Arc<dyn super::WaybillService>,
    permits: Arc<tokio::sync::Semaphore>,
    /// Set once a call failed: no further calls to this service.
    stopped: AtomicBool,
}

type Outcome = (String, Result<Vec<Answer>, ServiceError>);

fn run_calls(calls: Vec<(Arc<Lane>, TakeRequest)>, tx: std::sync::mpsc::Sender<Outcome>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            for (lane, _) in calls {
                let _ = tx.send((
                    lane.courier.clone(),
                    Err(ServiceError::GaveUp {
                        courier: lane.courier.clone(),
                        what: "starting the calls".into(),
                        url: String::new(),
                        elapsed_secs: 0,
                        last: e.to_string(),
                    }),
                ));
            }
            return;
        }
    };
    runtime.block_on(async move {
        let mut set = tokio::task::JoinSet::new();
        for (lane, request) in calls {
            let tx = tx.clone();
            set.spawn(async move {
                let Ok(_permit) = lane.permits.clone().acquire_owned().await else {
                    return;
                };
                if lane.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let result = lane.service.take(&request).await;
                if result.is_err() {
                    lane.stopped.store(true, Ordering::SeqCst);
                }
                let _ = tx.send((lane.courier.clone(), result));
            });
        }
        while set.join_next().await.is_some() {}
    });
}
