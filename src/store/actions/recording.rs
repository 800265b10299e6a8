//! Recording a run's changes: each change's row in the task's history (with its author),
//! the task's `updated_at` and last mail (written together when both change), and field
//! changes, which write all three.

use super::MessageApply;
use crate::store::history::{self, Author, Event, Kind};
use crate::store::tasks;
use crate::store::StoreError;

impl MessageApply<'_> {
    /// Who makes the change being made now: the trigger running, else the run's author.
    pub(super) fn author_now(&self) -> String {
        match self.trail.last() {
            Some(trigger) if self.depth > 0 => format!("trigger:{trigger}"),
            _ => self.author.by(),
        }
    }

    /// Writes one change to its task's history.
    pub(in crate::store) fn record(
        &self,
        task: i64,
        kind: Kind,
        name: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<(), StoreError> {
        let by = self.author_now();
        let event = Event {
            task,
            by: &by,
            kind,
            name,
            from,
            to,
        };
        history::write_event(self.conn, &event, self.stamp)?;
        let Some(ours) = history::last_mail_by_us(&event) else {
            return Ok(());
        };
        if let Some((other, other_ours)) = self.last_mail.take() {
            if other != task {
                tasks::set_last_mail(self.conn, other, self.stamp, other_ours)?;
            }
        }
        let mut inserted = self.inserted.borrow_mut();
        if ours {
            // From now on the row's last mail is not what its insert wrote.
            inserted.retain(|t| *t != task);
        } else if inserted.contains(&task) {
            // The customer's mail at this time: written with the row (`tasks::insert`).
            return Ok(());
        }
        self.last_mail.set(Some((task, ours)));
        Ok(())
    }

    /// Marks the task changed now (`updated_at`), with its last mail when that is waiting.
    pub(super) fn touch_row(&self, task: i64) -> Result<(), StoreError> {
        match self.last_mail.get() {
            Some((waiting, ours)) if waiting == task => {
                self.last_mail.set(None);
                tasks::touch_with_last_mail(self.conn, task, self.stamp, ours)
            }
            _ => tasks::touch(self.conn, task, self.stamp),
        }
    }

    /// Writes the last mail that no change of the task's row took along.
    pub(super) fn flush_last_mail(&self) -> Result<(), StoreError> {
        match self.last_mail.take() {
            Some((task, ours)) => tasks::set_last_mail(self.conn, task, self.stamp, ours),
            None => Ok(()),
        }
    }

    /// Records, once per task, that a message came in on it (before what it does there).
    pub(super) fn note_message(&mut self, task: i64) -> Result<(), StoreError> {
        if self.depth > 0
            || !matches!(self.author, Author::Rule(_))
            || self.messaged.contains(&task)
        {
            return Ok(());
        }
        self.messaged.push(task);
        let record = self.record;
        // The resolved sender: the client, when staff forwarded the client's mail.
        let sender = Some(self.plan.sender.email.trim())
            .filter(|s| !s.is_empty())
            .or(record.from.as_deref());
        self.record(
            task,
            Kind::Message,
            None,
            sender,
            Some(record.subject.as_str()),
        )
    }

    /// Records a new task: its creation, first status and assignee (as written, so that
    /// creating a task reads nothing back).
    pub(super) fn note_created(
        &mut self,
        task: i64,
        title: &str,
        status: &str,
        assignee: Option<&str>,
    ) -> Result<(), StoreError> {
        self.record(task, Kind::Created, None, None, Some(title))?;
        self.record(task, Kind::Status, None, None, Some(status))?;
        if let Some(assignee) = assignee {
            self.record(task, Kind::Assignee, None, None, Some(assignee))?;
        }
        self.note_message(task)
    }

    /// Sets a field and records the change; the value before when it changed.
    pub(super) fn set_field(
        &mut self,
        task: i64,
        name: &str,
        value: &str,
    ) -> Result<Option<String>, StoreError> {
        let old = tasks::field_value(self.conn, task, name)?;
        if old == value {
            return Ok(None);
        }
        // Touched first: the field row is then written once, with the task's new time.
        self.touch_row(task)?;
        tasks::write_field(self.conn, task, name, value, self.stamp)?;
        self.record(task, Kind::Field, Some(name), Some(&old), Some(value))?;
        Ok(Some(old))
    }
}
