//! The arguments of the team's commands: `task …` (working tasks by hand) and `message …`
//! (every message's fate), parsed by clap and dispatched from `cli::main`.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Tasks, newest first.
    #[command(
        after_help = "Example:\n  mailrules task list --open --assignee anna@acme.example --limit 50"
    )]
    List {
        /// Only tasks (or messages) with this status.
        #[arg(long)]
        status: Option<String>,
        /// Only tasks whose status is not a `closed = true` one.
        #[arg(long)]
        open: bool,
        /// Only tasks assigned to this address.
        #[arg(long, value_name = "EMAIL")]
        assignee: Option<String>,
        /// Only tasks whose field NAME has VALUE.
        #[arg(long, value_name = "NAME=VALUE")]
        field: Option<String>,
        /// Text in the title, the description or a comment.
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
        /// At most this many (with --offset: a page of them).
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// Skip the first N tasks (with --limit: pages).
        #[arg(long, value_name = "N", default_value_t = 0)]
        offset: u64,
        /// One JSON document on stdout instead of the table (keys in the docs).
        #[arg(long)]
        json: bool,
    },
    /// One task with its fields, comments and analytics rows.
    #[command(after_help = "Example:\n  mailrules task show 42 --json")]
    Show {
        /// The task (or message) number.
        id: i64,
        /// Also show automatic comments (written by rules and triggers).
        #[arg(long)]
        all: bool,
        /// One JSON document on stdout instead of the table (keys in the docs).
        #[arg(long)]
        json: bool,
    },
    /// Change a task by hand: its status, assignee or fields (checked like a rule's).
    #[command(
        after_help = "Example:\n  mailrules task set 42 --status \"Завершенная\" --field \"Причина отказа=Дорого\" --as anna@acme.example"
    )]
    Set {
        /// The task (or message) number.
        id: i64,
        /// Only tasks (or messages) with this status.
        #[arg(long)]
        status: Option<String>,
        /// An address, or `none` to take the assignee off.
        #[arg(long)]
        assignee: Option<String>,
        /// `NAME=VALUE` (an empty value clears the field); may be repeated.
        #[arg(long = "field", value_name = "NAME=VALUE")]
        fields: Vec<String>,
        /// Who makes the change (default: $MAILRULES_USER).
        #[arg(long = "as", value_name = "EMAIL")]
        author: Option<String>,
    },
    /// Add an internal note to a task (not mailed); `-` reads it from standard input.
    #[command(after_help = "Example:\n  mailrules task comment 42 \"Позвонила клиенту\"")]
    Comment {
        /// The task (or message) number.
        id: i64,
        /// The text, or `-` to read it from standard input (UTF-8).
        text: String,
        /// Who makes the change (else `$MAILRULES_USER`).
        #[arg(long = "as", value_name = "EMAIL")]
        author: Option<String>,
    },
    /// Close a task: its status becomes the first status declared `closed = true`.
    #[command(after_help = "Example:\n  mailrules task close 42")]
    Close {
        /// The task (or message) number.
        id: i64,
        /// Who makes the change (else `$MAILRULES_USER`).
        #[arg(long = "as", value_name = "EMAIL")]
        author: Option<String>,
    },
    /// Answer the task's requester by mail (through the outbox); `-` reads the text from
    /// standard input.
    #[command(after_help = "Example:\n  mailrules task reply 42 - < answer.txt")]
    Reply {
        /// The task (or message) number.
        id: i64,
        /// The text, or `-` to read it from standard input (UTF-8).
        text: String,
        /// A copy to this address; may be repeated.
        #[arg(long, value_name = "ADDR")]
        cc: Vec<String>,
        /// Who makes the change (else `$MAILRULES_USER`).
        #[arg(long = "as", value_name = "EMAIL")]
        author: Option<String>,
        /// One JSON document on stdout instead of the table (keys in the docs).
        #[arg(long)]
        json: bool,
    },
    /// Everything that happened to a task and who did it, oldest first.
    #[command(after_help = "Example:\n  mailrules task history 42")]
    History {
        /// The task (or message) number.
        id: i64,
        /// One JSON document on stdout instead of the table (keys in the docs).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MessageCommand {
    /// Every message and its fate (applied, ignored, failed), newest first.
    #[command(after_help = "Example:\n  mailrules message list --status failed --limit 20")]
    List {
        /// Only these; `duplicate`: messages delivered again after they were processed.
        #[arg(long, value_enum)]
        status: Option<FateArg>,
        /// Only messages that acted on this task.
        #[arg(long)]
        task: Option<i64>,
        /// At most this many, newest first.
        #[arg(long)]
        limit: Option<u32>,
        /// One JSON document on stdout instead of the table (keys in the docs).
        #[arg(long)]
        json: bool,
    },
    /// One message: headers, fate, rule, task, error, attachments.
    #[command(after_help = "Example:\n  mailrules message show 12 --raw > original.eml")]
    Show {
        /// The task (or message) number.
        id: i64,
        /// Write its original bytes as they came (escaped on a terminal).
        #[arg(long)]
        raw: bool,
        /// One JSON document on stdout instead of the table (keys in the docs).
        #[arg(long)]
        json: bool,
    },
    /// Write the message's N-th attachment (from 1) to stdout, or to a file.
    #[command(after_help = "Example:\n  mailrules message attachment 12 1 -o invoice.pdf")]
    Attachment {
        /// The task (or message) number.
        id: i64,
        /// Which attachment, from 1 (as `message show` numbers them).
        number: usize,
        /// Write it to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Delete the original bytes of mail received longer ago than `keep_mail` now (the daemon
    /// does it every hour); the messages' records stay.
    #[command(after_help = "Example:\n  mailrules message prune")]
    Prune {
        /// The time to count from (RFC 3339), instead of the clock.
        #[arg(long)]
        at: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FateArg {
    Applied,
    Ignored,
    Failed,
    Duplicate,
}

impl From<FateArg> for crate::store::MessageFate {
    fn from(fate: FateArg) -> Self {
        match fate {
            FateArg::Applied => Self::Applied,
            FateArg::Ignored => Self::Ignored,
            FateArg::Failed => Self::Failed,
            FateArg::Duplicate => Self::Duplicate,
        }
    }
}
