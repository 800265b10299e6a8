//! The real [`BatchSink`]: the same pipeline as `ingest` (parse, rules, store), plus loading
//! the rules directory again on request.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::sink::{BatchSink, Incoming, MailboxCursor, Outcome, SinkError};
use crate::automation::{ScheduleFiring, Which};
use crate::pipeline::Pipeline;
use crate::rules::RuleSet;

pub struct PipelineSink {
    pipeline: Pipeline,
    rules_dir: PathBuf,
}

impl PipelineSink {
    pub fn new(pipeline: Pipeline, rules_dir: PathBuf) -> PipelineSink {
        PipelineSink {
            pipeline,
            rules_dir,
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
        batch: Vec<Incoming>,
        cursor: Option<&MailboxCursor>,
    ) -> Result<Vec<Outcome>, SinkError> {
        self.pipeline
            .process_batch(batch, cursor)
            .map_err(|e| SinkError(e.to_string()))
    }

    fn run_schedules(&mut self, now: DateTime<Utc>) -> Result<Vec<ScheduleFiring>, SinkError> {
        self.pipeline
            .run_schedules(now, Which::Due)
            .map_err(|e| SinkError(e.to_string()))
    }

    fn reload_rules(&mut self) -> Result<String, Vec<String>> {
        match RuleSet::load_dir(&self.rules_dir) {
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
