//! `/metrics`: Prometheus text through the `metrics` facade and its Prometheus exporter (no
//! listener of its own: it renders here). Counts come from the store at each scrape; the
//! apply histogram from the daemon's processing thread. Labels are statuses and configured
//! mailbox names only: never a subject, an address or body text.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::daemon::MailboxState;
use crate::web::WebState;

/// Seconds to apply one batch of messages (one transaction), a histogram.
pub const APPLY_SECONDS: &str = "mailrules_apply_seconds";
const MESSAGES_TOTAL: &str = "mailrules_messages_total";
const OUTBOX_TOTAL: &str = "mailrules_outbox_total";
const MAILBOX_UP: &str = "mailrules_mailbox_up";

/// The fates a message can have, always reported (0 when none).
const MESSAGE_STATUSES: [&str; 3] = ["applied", "ignored", "failed"];
/// The states of an outbox row, always reported.
const OUTBOX_STATUSES: [&str; 5] = ["queued", "sending", "sent", "failed", "suppressed"];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's metrics recorder (once; later calls do nothing). Without it the
/// `metrics` macros record nothing.
pub fn install() {
    HANDLE.get_or_init(|| {
        let buckets = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(APPLY_SECONDS.to_string()), &buckets)
            .ok()?;
        let handle = builder.install_recorder().ok()?;
        metrics::describe_histogram!(
            APPLY_SECONDS,
            metrics::Unit::Seconds,
            "Time to apply one batch of messages (one store transaction)."
        );
        metrics::describe_gauge!(MESSAGES_TOTAL, "Messages recorded in the store, by fate.");
        metrics::describe_gauge!(OUTBOX_TOTAL, "Outgoing mail in the outbox, by state.");
        metrics::describe_gauge!(
            MAILBOX_UP,
            "1 while the daemon in this process is logged in and watching the mailbox."
        );
        // Registered now, so that the histogram is listed before the first batch.
        let _registered = metrics::histogram!(APPLY_SECONDS);
        Some(handle)
    });
}

/// GET /metrics (no login).
pub async fn render(State(state): State<Arc<WebState>>) -> Response {
    let counts = state
        .with_store(|store, _| {
            Ok((
                store.message_status_counts()?,
                store.outbox_status_counts()?,
            ))
        })
        .await;
    let (messages, outbox) = match counts {
        Ok(counts) => counts,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read the store: {e}\n"),
            )
                .into_response()
        }
    };
    set_counts(MESSAGES_TOTAL, &MESSAGE_STATUSES, &messages);
    set_counts(OUTBOX_TOTAL, &OUTBOX_STATUSES, &outbox);
    let board = state.daemon.as_ref().map(|d| d.mailboxes.snapshot());
    for mailbox in &state.config.mailboxes {
        let up = board
            .as_ref()
            .and_then(|b| b.get(&mailbox.name))
            .is_some_and(|s| matches!(s.state, MailboxState::Watching { .. }));
        metrics::gauge!(MAILBOX_UP, "mailbox" => mailbox.name.clone()).set(if up {
            1.0
        } else {
            0.0
        });
    }
    let text = HANDLE
        .get()
        .and_then(Option::as_ref)
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Sets one gauge per known status (and per status the store has that we do not know).
fn set_counts(name: &'static str, known: &[&'static str], counts: &[(String, u64)]) {
    for status in known {
        let n = counts
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        metrics::gauge!(name, "status" => *status).set(n as f64);
    }
    for (status, n) in counts.iter().filter(|(s, _)| !known.contains(&s.as_str())) {
        metrics::gauge!(name, "status" => status.clone()).set(*n as f64);
    }
}
