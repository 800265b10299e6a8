//! Webhook deliveries: the HTTP client that sends a queued delivery (signed, with its
//! Idempotency-Key and the endpoint's headers read from the environment now), and the sender
//! that runs beside the mail outbox worker, several deliveries at once, each bounded by its
//! endpoint's timeout, so a hanging endpoint holds up nothing else.
//!
//! Like the mail worker it runs no SQL itself and never sends inside a transaction: it asks
//! the store (`Store::webhooks_due`, `outbox_mark_*`) between requests.

mod answer;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::task::JoinSet;

pub use answer::{
    answer_words, classify, excerpt, parse_retry_after, signature, wait_before_next, Outcome,
};

use crate::config::WebhookConfig;
use crate::store::{Store, StoreError, WebhookDelivery};

/// How many deliveries are in flight at once.
pub const MAX_IN_FLIGHT: usize = 16;
/// How many of them may go to one endpoint: one that hangs leaves room for the others.
pub const PER_ENDPOINT: usize = MAX_IN_FLIGHT / 2;
/// How many due deliveries one look at the store considers, to find some for an endpoint that
/// has room when the oldest all go to one that has none.
const LOOK_AHEAD: usize = 100;
/// How often an idle sender looks for deliveries that became due without being woken.
const POLL: Duration = Duration::from_secs(30);
/// How long a stopping sender waits for the deliveries in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How much of an answer's body is read: the excerpt needs only its start.
const ANSWER_BYTES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP client cannot be built (no TLS roots): nothing can be sent.
    #[error("cannot start the webhook client: {0}")]
    Client(String),
}

/// What one pass did (`mailrules outbox send`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WebhookReport {
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
    /// One line per delivery that did not succeed: `#ID to ENDPOINT: what happened`.
    pub errors: Vec<String>,
}

/// The configured endpoints and the one HTTP client they share.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    endpoints: Arc<HashMap<String, WebhookConfig>>,
}

impl Sender {
    pub fn new(endpoints: &[WebhookConfig]) -> Result<Sender, WebhookError> {
        let client = reqwest::Client::builder()
            // A redirect would carry the signed body (and the headers) somewhere not configured.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mailrules/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| WebhookError::Client(error_words(&e)))?;
        Ok(Sender {
            client,
            endpoints: Arc::new(
                endpoints
                    .iter()
                    .map(|e| (e.name.clone(), e.clone()))
                    .collect(),
            ),
        })
    }

    /// One try of one delivery. Never fails: every problem is an [`Outcome`].
    pub async fn deliver(&self, delivery: &WebhookDelivery) -> Outcome {
        let Some(endpoint) = self.endpoints.get(&delivery.endpoint) else {
            return Outcome::Failed {
                error: format!(
                    "the configuration has no [[webhook]] named \"{}\" (add it, then `mailrules \
                     outbox retry {}`)",
                    delivery.endpoint, delivery.id
                ),
            };
        };
        // Read now, never stored: a missing variable keeps the delivery queued, never sends
        // an empty secret.
        let (secret, headers) = match (endpoint.secret(), endpoint.headers()) {
            (Ok(secret), Ok(headers)) => (secret, headers),
            (Err(e), _) | (_, Err(e)) => {
                return Outcome::Retry {
                    error: e.to_string(),
                    after: None,
                }
            }
        };
        let body = delivery.body.as_bytes().to_vec();
        // One value per name: an endpoint's own Content-Type (or Accept) replaces the default,
        // and the key and the signature are always mailrules' (config refuses them as headers).
        use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
        let mut map = HeaderMap::new();
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in headers {
            let (Ok(name), Ok(mut value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) else {
                return Outcome::Failed {
                    error: format!("header {name} cannot be sent as configured"),
                };
            };
            value.set_sensitive(true);
            map.insert(name, value);
        }
        let Ok(key) = HeaderValue::from_str(&delivery.idempotency_key) else {
            return Outcome::Failed {
                error: "the delivery's Idempotency-Key cannot be sent".into(),
            };
        };
        map.insert("idempotency-key", key);
        if let Some(secret) = secret {
            if let Ok(signed) = HeaderValue::from_str(&signature(secret.as_bytes(), &body)) {
                map.insert("x-mailrules-signature", signed);
            }
        }
        let request = self
            .client
            .post(&endpoint.url)
            .timeout(endpoint.timeout)
            .headers(map);
        let timeout = endpoint.timeout;
        let answer = async {
            let mut response = request.body(body).send().await?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut start = Vec::new();
            while start.len() < ANSWER_BYTES {
                match response.chunk().await? {
                    Some(chunk) => start.extend_from_slice(&chunk),
                    None => break,
                }
            }
            Ok::<_, reqwest::Error>((status, retry_after, start))
        };
        match answer.await {
            Ok((status, retry_after, start)) => {
                classify(status, retry_after.as_deref(), &start, Utc::now())
            }
            Err(e) if e.is_timeout() => Outcome::Retry {
                error: format!("no answer within {}", crate::text::duration(timeout)),
                after: None,
            },
            Err(e) => Outcome::Retry {
                error: error_words(&e),
                after: None,
            },
        }
    }

    /// Records one try's outcome; the text logged for it.
    fn record(
        &self,
        store: &Store,
        delivery: &WebhookDelivery,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> Result<Recorded, StoreError> {
        let max_attempts = self
            .endpoints
            .get(&delivery.endpoint)
            .map_or(1, |e| e.max_attempts);
        let first = self
            .endpoints
            .get(&delivery.endpoint)
            .map_or(POLL, |e| e.backoff);
        let attempts = delivery.attempts.saturating_add(1);
        Ok(match outcome {
            Outcome::Delivered { answer } => {
                store.webhook_mark_delivered(delivery.id, now, answer)?;
                Recorded::Delivered
            }
            Outcome::Retry { error, after } if attempts < max_attempts => {
                let wait = wait_before_next(first, attempts, *after);
                let at = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                store.outbox_mark_retry(delivery.id, error, at)?;
                Recorded::Retrying(at)
            }
            Outcome::Retry { error, .. } => {
                let error = format!("{error} (gave up after {attempts} tries)");
                store.outbox_mark_failed(delivery.id, &error)?;
                Recorded::Failed(error)
            }
            Outcome::Failed { error } => {
                store.outbox_mark_failed(delivery.id, error)?;
                Recorded::Failed(error.clone())
            }
        })
    }
}

enum Recorded {
    Delivered,
    Retrying(DateTime<Utc>),
    Failed(String),
}

/// The client's error in words, without the URL (a chat webhook's URL is its secret) and with
/// its causes: "error sending request: client error (Connect): tcp connect error: Connection
/// refused (os error 111)".
fn error_words(error: &reqwest::Error) -> String {
    let mut words = String::new();
    let mut cause: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = cause {
        let text = match e.downcast_ref::<reqwest::Error>() {
            Some(r) if r.url().is_some() => {
                let mut plain = reqwest::Error::to_string(r);
                if let Some(url) = r.url() {
                    plain = plain.replace(&format!(" for url ({url})"), "");
                }
                plain
            }
            _ => e.to_string(),
        };
        if !text.is_empty() && !words.contains(&text) {
            if !words.is_empty() {
                words.push_str(": ");
            }
            words.push_str(&text);
        }
        cause = e.source();
    }
    crate::text::single_line(&words)
}

/// Sends every delivery due now once, up to [`MAX_IN_FLIGHT`] at a time ([`PER_ENDPOINT`] to
/// one endpoint), and records each:
/// what `mailrules outbox send` does.
pub async fn send_due_once(
    store: &mut Store,
    endpoints: &[WebhookConfig],
) -> Result<WebhookReport, WebhookError> {
    let sender = Sender::new(endpoints)?;
    let mut report = WebhookReport::default();
    let mut done: Vec<i64> = Vec::new();
    let mut in_flight: JoinSet<(WebhookDelivery, Outcome)> = JoinSet::new();
    let mut busy = Busy::default();
    let started = Utc::now();
    loop {
        let free = MAX_IN_FLIGHT.saturating_sub(in_flight.len());
        let mut skip = busy.ids();
        skip.extend_from_slice(&done);
        let due = store.webhooks_due(started, &skip, LOOK_AHEAD)?;
        for delivery in pick(due, &busy, free) {
            busy.add(&delivery);
            let sender = sender.clone();
            in_flight.spawn(async move {
                let outcome = sender.deliver(&delivery).await;
                (delivery, outcome)
            });
        }
        let Some(joined) = in_flight.join_next().await else {
            return Ok(report);
        };
        let Ok((delivery, outcome)) = joined else {
            continue;
        };
        busy.remove(delivery.id);
        done.push(delivery.id);
        match sender.record(store, &delivery, &outcome, Utc::now())? {
            Recorded::Delivered => report.delivered += 1,
            Recorded::Retrying(at) => {
                report.retrying += 1;
                report.errors.push(format!(
                    "#{} to {}: {} (next try {})",
                    delivery.id,
                    delivery.endpoint,
                    outcome_error(&outcome),
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ));
            }
            Recorded::Failed(error) => {
                report.failed += 1;
                report.errors.push(format!(
                    "#{} to {}: {error} (gave up)",
                    delivery.id, delivery.endpoint
                ));
            }
        }
    }
}

fn outcome_error(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Delivered { answer } => answer,
        Outcome::Retry { error, .. } | Outcome::Failed { error } => error,
    }
}

/// The sender inside `mailrules run`: keeps up to [`MAX_IN_FLIGHT`] deliveries in flight
/// ([`PER_ENDPOINT`] to one endpoint),
/// takes new ones as soon as one finishes, when woken (`wake`: something was queued), when the
/// next retry is due, or every poll interval. On `shutdown` it gives the deliveries in flight
/// a few seconds to finish and records those that did.
///
/// Give it its own store connection, as the mail worker has.
pub async fn run_webhooks(
    store: Store,
    endpoints: Vec<WebhookConfig>,
    wake: Arc<tokio::sync::Notify>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), WebhookError> {
    let sender = Sender::new(&endpoints)?;
    let mut in_flight: JoinSet<(WebhookDelivery, Outcome)> = JoinSet::new();
    // Ids in flight, or tried and not yet recorded: none of them is started again.
    let mut busy = Busy::default();
    let mut unrecorded = Unrecorded::default();
    let mut store_failing = false;
    futures::pin_mut!(shutdown);
    loop {
        let round = unrecorded
            .record(&sender, &store, &mut busy)
            .and_then(|()| start_due(&store, &sender, &mut in_flight, &mut busy));
        let next_due = match round {
            Ok(next) => {
                if store_failing {
                    tracing::info!("webhooks: the store answers again; sending resumed");
                    store_failing = false;
                }
                next
            }
            Err(e) => {
                if !store_failing {
                    tracing::error!(error = %e, "webhooks: store error, trying again every round until it is fixed");
                    store_failing = true;
                }
                None
            }
        };
        // A due delivery that could not start waits for a slot: a finished delivery is what
        // makes room, and it wakes the loop.
        let now = Utc::now();
        let wait = match next_due {
            Some(at) if at <= now && !in_flight.is_empty() => POLL,
            Some(at) => (at - now).to_std().unwrap_or(Duration::ZERO),
            None => POLL,
        }
        .clamp(Duration::from_millis(200), POLL);
        tokio::select! {
            _ = &mut shutdown => break,
            Some(joined) = in_flight.join_next() => {
                if let Ok((delivery, outcome)) = joined {
                    unrecorded.0.push((delivery, outcome, Utc::now()));
                }
            }
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    // The deliveries in flight get a moment to finish and be recorded; one still waiting then
    // is dropped unrecorded and sent again, with the same Idempotency-Key, after the restart.
    let drain = async move {
        while let Some(joined) = in_flight.join_next().await {
            if let Ok((delivery, outcome)) = joined {
                unrecorded.0.push((delivery, outcome, Utc::now()));
            }
        }
        let _ = unrecorded.record(&sender, &store, &mut busy);
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::info!(
            "webhooks: stopping with deliveries still waiting for an answer; they are sent \
             again after the restart"
        );
    }
    Ok(())
}

/// Starts the due deliveries there is room for; when the next one not started is due.
fn start_due(
    store: &Store,
    sender: &Sender,
    in_flight: &mut JoinSet<(WebhookDelivery, Outcome)>,
    busy: &mut Busy,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let free = MAX_IN_FLIGHT.saturating_sub(in_flight.len());
    if free > 0 {
        let due = store.webhooks_due(Utc::now(), &busy.ids(), LOOK_AHEAD)?;
        for delivery in pick(due, busy, free) {
            busy.add(&delivery);
            let sender = sender.clone();
            in_flight.spawn(async move {
                let outcome = sender.deliver(&delivery).await;
                (delivery, outcome)
            });
        }
    }
    store.webhooks_next_due(&busy.ids())
}

/// Deliveries started and not yet recorded: never started twice at once.
#[derive(Debug, Default)]
struct Busy(Vec<(i64, String)>);

impl Busy {
    fn ids(&self) -> Vec<i64> {
        self.0.iter().map(|(id, _)| *id).collect()
    }
    fn add(&mut self, delivery: &WebhookDelivery) {
        self.0.push((delivery.id, delivery.endpoint.clone()));
    }
    fn remove(&mut self, id: i64) {
        self.0.retain(|(busy, _)| *busy != id);
    }
    fn to(&self, endpoint: &str) -> usize {
        self.0.iter().filter(|(_, e)| e == endpoint).count()
    }
}

/// Of the due deliveries (oldest first), the ones to start now: at most `free`, and none to an
/// endpoint that already has [`PER_ENDPOINT`] in flight.
fn pick(due: Vec<WebhookDelivery>, busy: &Busy, free: usize) -> Vec<WebhookDelivery> {
    let mut picked: Vec<WebhookDelivery> = Vec::new();
    for delivery in due {
        if picked.len() == free {
            break;
        }
        let starting = picked
            .iter()
            .filter(|p| p.endpoint == delivery.endpoint)
            .count();
        if busy.to(&delivery.endpoint) + starting < PER_ENDPOINT {
            picked.push(delivery);
        }
    }
    picked
}

/// Tries that finished and are not recorded yet (the store refused the write: disk full, a
/// lock held too long). They are kept here, not tried again, until the store takes them: a
/// full disk must not turn into a stream of repeats to the receiver. Only a crash in that
/// state sends one again (with the same Idempotency-Key).
#[derive(Default)]
struct Unrecorded(Vec<(WebhookDelivery, Outcome, DateTime<Utc>)>);

impl Unrecorded {
    /// Records them in order, each leaving `busy`; stops at the first store error.
    fn record(
        &mut self,
        sender: &Sender,
        store: &Store,
        busy: &mut Busy,
    ) -> Result<(), StoreError> {
        while let Some((delivery, outcome, at)) = self.0.first() {
            let recorded = sender.record(store, delivery, outcome, *at)?;
            log_outcome(delivery, outcome, recorded);
            busy.remove(delivery.id);
            self.0.remove(0);
        }
        Ok(())
    }
}

/// Says what a recorded try came to.
fn log_outcome(delivery: &WebhookDelivery, outcome: &Outcome, recorded: Recorded) {
    match recorded {
        Recorded::Delivered => {
            tracing::info!(id = delivery.id, endpoint = %delivery.endpoint, answer = %outcome_error(outcome), "webhook: delivered")
        }
        Recorded::Retrying(at) => tracing::info!(
            id = delivery.id,
            endpoint = %delivery.endpoint,
            error = %outcome_error(outcome),
            next_try = %at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "webhook: will retry"
        ),
        Recorded::Failed(error) => {
            tracing::warn!(id = delivery.id, endpoint = %delivery.endpoint, error = %error, "webhook: gave up")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: i64, endpoint: &str) -> WebhookDelivery {
        WebhookDelivery {
            id,
            endpoint: endpoint.into(),
            body: "{}".into(),
            idempotency_key: format!("k{id}"),
            attempts: 0,
        }
    }

    #[test]
    fn one_endpoint_never_takes_every_slot() {
        let due: Vec<WebhookDelivery> = (1..=10)
            .map(|id| delivery(id, "slow"))
            .chain([delivery(11, "fast")])
            .collect();
        let ids = |picked: Vec<WebhookDelivery>| picked.iter().map(|d| d.id).collect::<Vec<_>>();
        assert_eq!(
            ids(pick(due.clone(), &Busy::default(), MAX_IN_FLIGHT)),
            [1, 2, 3, 4, 5, 6, 7, 8, 11]
        );
        let mut busy = Busy::default();
        for d in &due[..PER_ENDPOINT] {
            busy.add(d);
        }
        assert_eq!(ids(pick(due[PER_ENDPOINT..].to_vec(), &busy, 8)), [11]);
        assert_eq!(ids(pick(due.clone(), &Busy::default(), 2)), [1, 2]);
    }
}
