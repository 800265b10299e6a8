//! The real [`BatchSink`]: the same pipeline as `ingest` (parse, rules, store), plus loading
//! the rules directory again on request.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::sink::{Batch, BatchSink, MailboxCursor, Outcome, SinkError};
use crate::automation::{ScheduleFiring, Which};
use crate::pipeline::{Pipeline, Preparer};
use crate::rules::RuleSet;

/// How often the daemon drops the bytes that `keep_mail` no longer keeps: the retention is
/// counted in days, and each run is one index lookup when there is nothing to drop.
const DROP_EXPIRED_MAIL_EVERY: chrono::TimeDelta = chrono::TimeDelta::hours(1);

pub struct PipelineSink {
    pipeline: Pipeline,
    rules_dir: PathBuf,
    /// When `keep_mail` is next enforced (at the first schedule tick after the start).
    next_drop: Option<DateTime<Utc>>,
}

impl PipelineSink {
    pub fn new(pipeline: Pipeline, rules_dir: PathBuf) -> PipelineSink {
        PipelineSink {
            pipeline,
            rules_dir,
            next_drop: None,
        }
    }

    /// Webhook actions of `rules` whose endpoint the configuration does not have.
    fn unknown_webhooks(&self, rules: &RuleSet) -> Vec<crate::rules::RuleError> {
        let config = self.pipeline.config();
        let names: Vec<&str> = config.webhooks.iter().map(|w| w.name.as_str()).collect();
        rules.check_webhooks(&names)
    }

    /// Drops the bytes past `keep_mail` when it is time to. A store that cannot be written now
    /// is told in the log and tried again at the next tick; the schedules went on regardless.
    fn drop_expired_mail(&mut self, now: DateTime<Utc>) {
        if self.next_drop.is_some_and(|next| now < next) {
            return;
        }
        match self.pipeline.drop_expired_mail(now) {
            Ok(dropped) => {
                self.next_drop = Some(now + DROP_EXPIRED_MAIL_EVERY);
                if dropped > 0 {
                    tracing::info!(
                        "keep_mail: dropped the original bytes of {dropped} messages \
                         (their records stay)"
                    );
                }
            }
            Err(e) => tracing::warn!("keep_mail: cannot drop old mail bytes now: {e}"),
        }
    }
}

impl BatchSink for PipelineSink {
    fn mailbox_cursor(&mut self, mailbox: &str) -> Result<Option<MailboxCursor>, SinkError> {
        self.pipeline
            .store()
            .mailbox_cursor(mailbox)
            .map_err(|e| SinkError(e.to_string()))
    }

    fn process_batch(
        &mut self,
        batch: Batch,
        cursor: Option<&MailboxCursor>,
    ) -> Result<Vec<Outcome>, SinkError> {
        let started = std::time::Instant::now();
        let outcomes = match batch {
            Batch::Fetched(batch) => self.pipeline.process_batch(batch, cursor),
            Batch::Preparing(batch) => self.pipeline.process_preparing(batch, cursor),
        }
        .map_err(|e| SinkError(e.to_string()));
        // /metrics: how long a batch (one transaction) takes to apply.
        metrics::histogram!(crate::web::APPLY_SECONDS).record(started.elapsed().as_secs_f64());
        outcomes
    }

    fn preparer(&self) -> Option<Preparer> {
        Some(self.pipeline.preparer())
    }

    /// Runs the due schedules and, on the same tick and the same thread (the only writer),
    /// enforces `keep_mail`.
    fn run_schedules(&mut self, now: DateTime<Utc>) -> Result<Vec<ScheduleFiring>, SinkError> {
        let fired = self
            .pipeline
            .run_schedules(now, Which::Due)
            .map_err(|e| SinkError(e.to_string()));
        self.drop_expired_mail(now);
        fired
    }

    fn reload_rules(&mut self) -> Result<String, Vec<String>> {
        match RuleSet::load_dir(&self.rules_dir) {
            Ok(rules) if !self.unknown_webhooks(&rules).is_empty() => Err(self
                .unknown_webhooks(&rules)
                .iter()
                .map(ToString::to_string)
                .collect()),
            Ok(rules) => {
                let s = rules.summary();
                self.pipeline.set_rules(Arc::new(rules));
                Ok(format!(
                    "{} rules, {} triggers, {} schedules in {} files",
                    s.rules, s.triggers, s.schedules, s.files
                ))
            }
            Err(errors) => Err(errors.0.iter().map(|e| e.to_string()).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::config::Config;
    use crate::pipeline::Incoming;
    use crate::store::Store;

    #[test]
    fn the_daemons_schedule_tick_drops_the_bytes_past_keep_mail() {
        let config = Config::from_str(
            "keep_mail = \"30d\"\n[staff]\ndomains = [\"acme.example\"]\n",
            std::path::Path::new("mailrules.toml"),
        )
        .unwrap();
        let rules_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let rules = RuleSet::load_dir(&rules_dir).unwrap();
        let store = Store::open_in_memory().unwrap();
        let mut pipeline = Pipeline::new(Arc::new(config), Arc::new(rules), store);
        let day = |d: u32| Utc.with_ymd_and_hms(2026, 11, d, 12, 0, 0).unwrap();
        let mail = |id: &str| {
            let raw = format!(
                "From: c@client.example\r\nSubject: Помогите\r\nMessage-ID: <{id}>\r\n\r\nhi\r\n"
            );
            Incoming::new(raw.into_bytes(), "support", id.to_string())
        };
        pipeline.set_now(Some(day(1)));
        pipeline.process_batch(vec![mail("old@x")], None).unwrap();
        pipeline.set_now(Some(day(20)));
        pipeline.process_batch(vec![mail("new@x")], None).unwrap();
        let mut sink = PipelineSink::new(pipeline, rules_dir);
        let kept = |sink: &PipelineSink, id: i64| sink.pipeline.store().message_raw(id).unwrap();

        sink.run_schedules(day(30)).unwrap();
        assert!(kept(&sink, 1).is_some(), "29 days old: kept");
        sink.run_schedules(day(30) + chrono::TimeDelta::days(2))
            .unwrap();
        assert!(kept(&sink, 1).is_none(), "32 days old: dropped");
        assert!(kept(&sink, 2).is_some(), "14 days old: kept");
        let record = sink.pipeline.store().message(1).unwrap().unwrap();
        assert_eq!(record.summary.message_id.as_deref(), Some("old@x"));
    }
}
