//! Messages from files: `.eml` files, Maildir folders, directories of messages, mbox files and
//! standard input. Yields [`Incoming`] messages one by one, so a large mbox is never read whole.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use mail_parser::mailbox::mbox::MessageIterator;

use crate::pipeline::Incoming;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: no such file or directory")]
    Missing { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("standard input is empty: there is no message to ingest")]
    EmptyStdin,
}

/// What the command line's paths hold: the sources of mail, and the files of directories that
/// are not mail (a `manifest.tsv` beside `.eml` files), left out with a warning.
#[derive(Debug, Default)]
pub struct Expanded {
    pub sources: Vec<Source>,
    pub not_mail: Vec<PathBuf>,
}

/// One input named on the command line, resolved to what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    /// One message per file (an `.eml` file, or a file in a Maildir or plain directory).
    File(PathBuf),
    Mbox(PathBuf),
}

/// Expands the command line's paths: directories become their message files (Maildir `new/`
/// and `cur/`, else every regular file that holds mail, sorted), files that start with `From `
/// are mbox. A file named on the command line is taken as mail whatever it looks like.
pub fn expand(paths: &[PathBuf]) -> Result<Expanded, IngestError> {
    let mut out = Expanded::default();
    for path in paths {
        if path.as_os_str() == "-" {
            out.sources.push(Source::Stdin);
        } else if path.is_dir() {
            let (files, maildir) = message_files(path)?;
            for file in files {
                // A Maildir holds one message per file; elsewhere a file may be an mbox, or
                // not mail at all, which takes opening it to tell.
                if maildir {
                    out.sources.push(Source::File(file));
                } else {
                    match classify(file.clone())? {
                        Some(source) => out.sources.push(source),
                        None => out.not_mail.push(file),
                    }
                }
            }
        } else if path.exists() {
            let source = classify(path.clone())?.unwrap_or(Source::File(path.clone()));
            out.sources.push(source);
        } else {
            return Err(IngestError::Missing { path: path.clone() });
        }
    }
    Ok(out)
}

/// The message files of a directory, and whether it is a Maildir.
fn message_files(dir: &Path) -> Result<(Vec<PathBuf>, bool), IngestError> {
    let maildir_parts: Vec<PathBuf> = ["new", "cur"]
        .iter()
        .map(|d| dir.join(d))
        .filter(|d| d.is_dir())
        .collect();
    let maildir = !maildir_parts.is_empty();
    let dirs = if !maildir {
        vec![dir.to_path_buf()]
    } else {
        maildir_parts
    };
    let mut files = Vec::new();
    for d in dirs {
        let entries = std::fs::read_dir(&d).map_err(|source| IngestError::Read {
            path: d.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| IngestError::Read {
                path: d.clone(),
                source,
            })?;
            let path = entry.path();
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            // The entry's type comes with the directory listing; only a link takes a stat.
            let is_file = match entry.file_type() {
                Ok(t) if t.is_symlink() => path.is_file(),
                Ok(t) => t.is_file(),
                Err(_) => path.is_file(),
            };
            if is_file && !hidden {
                files.push(path);
            }
        }
    }
    // Maildir names start with the delivery time, so name order is arrival order.
    // The keys are taken once per file: `Path::file_name` walks the path's components, and
    // comparing by it took a twentieth of a 20,000-message ingest before the first message.
    files.sort_by_cached_key(|p| (p.file_name().map(|n| n.to_os_string()), p.clone()));
    Ok((files, maildir))
}

/// An mbox (it starts with `From `), one message (`.eml`, or it starts with a header field
/// such as `Return-Path:` or `Subject:`), or `None`: not mail.
fn classify(path: PathBuf) -> Result<Option<Source>, IngestError> {
    let mut head = [0u8; 1024];
    let mut file = File::open(&path).map_err(|source| IngestError::Read {
        path: path.clone(),
        source,
    })?;
    let n = read_up_to(&mut file, &mut head).map_err(|source| IngestError::Read {
        path: path.clone(),
        source,
    })?;
    let head = &head[..n];
    if head.starts_with(b"From ") {
        return Ok(Some(Source::Mbox(path)));
    }
    let eml = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("eml"));
    if eml || starts_with_header_field(head) {
        Ok(Some(Source::File(path)))
    } else {
        Ok(None)
    }
}

/// Whether `head` begins with an RFC 5322 header field: a name of printable ASCII other than
/// `:` and space, then `:`.
fn starts_with_header_field(head: &[u8]) -> bool {
    let name_len = head
        .iter()
        .take_while(|&&b| b.is_ascii_graphic() && b != b':')
        .count();
    name_len > 0 && head.get(name_len) == Some(&b':')
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Reads the messages of `sources` lazily, in order.
pub fn read_all(
    sources: Vec<Source>,
) -> impl Iterator<Item = Result<Incoming, IngestError>> + Send {
    sources
        .into_iter()
        .flat_map(|source| -> Box<dyn Iterator<Item = _> + Send> {
            match source {
                Source::Stdin => {
                    let mut raw = Vec::new();
                    let result = match std::io::stdin().read_to_end(&mut raw) {
                        Ok(_) if raw.iter().all(u8::is_ascii_whitespace) => {
                            Err(IngestError::EmptyStdin)
                        }
                        Ok(_) => Ok(incoming(raw, "stdin".to_string())),
                        Err(source) => Err(IngestError::Read {
                            path: PathBuf::from("-"),
                            source,
                        }),
                    };
                    Box::new(std::iter::once(result))
                }
                Source::File(path) => {
                    let result = std::fs::read(&path)
                        .map(|raw| incoming(raw, path.display().to_string()))
                        .map_err(|source| IngestError::Read { path, source });
                    Box::new(std::iter::once(result))
                }
                Source::Mbox(path) => match File::open(&path) {
                    Err(source) => {
                        Box::new(std::iter::once(Err(IngestError::Read { path, source })))
                    }
                    Ok(file) => {
                        let name = path.display().to_string();
                        let messages = MessageIterator::new(BufReader::new(file));
                        Box::new(messages.enumerate().map(move |(i, m)| match m {
                            Ok(m) => Ok(incoming(m.unwrap_contents(), format!("{name}#{}", i + 1))),
                            Err(source) => Err(IngestError::Read {
                                path: path.clone(),
                                source,
                            }),
                        }))
                    }
                },
            }
        })
}

fn incoming(raw: Vec<u8>, source: String) -> Incoming {
    Incoming::new(raw, "cli", source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maildir_mbox_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("box");
        std::fs::create_dir_all(maildir.join("new")).unwrap();
        std::fs::create_dir_all(maildir.join("cur")).unwrap();
        std::fs::create_dir_all(maildir.join("tmp")).unwrap();
        std::fs::write(maildir.join("new/1"), "Subject: a\n\nx\n").unwrap();
        std::fs::write(maildir.join("cur/2:2,S"), "Subject: b\n\nx\n").unwrap();
        std::fs::write(maildir.join("tmp/3"), "Subject: half written\n").unwrap();
        let mbox = dir.path().join("mail.mbox");
        std::fs::write(
            &mbox,
            "From a@x Mon Jan  1 00:00:00 2026\nSubject: m1\n\n>From here\n\nFrom b@x Mon Jan  1 00:00:00 2026\nSubject: m2\n\ny\n",
        )
        .unwrap();
        let eml = dir.path().join("one.eml");
        std::fs::write(&eml, "Subject: e\n\nz\n").unwrap();

        let sources = expand(&[maildir, mbox, eml]).unwrap().sources;
        let messages: Vec<Incoming> = read_all(sources).map(Result::unwrap).collect();
        let subjects: Vec<String> = messages
            .iter()
            .map(|m| {
                String::from_utf8_lossy(&m.raw)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        assert_eq!(
            subjects,
            [
                "Subject: a",
                "Subject: b",
                "Subject: m1",
                "Subject: m2",
                "Subject: e"
            ]
        );
        assert!(String::from_utf8_lossy(&messages[2].raw).contains("\nFrom here"));
        assert!(messages[2].source.ends_with("mail.mbox#1"));
    }

    #[test]
    fn a_directory_gives_its_mail_and_names_what_is_not_mail() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.eml"), "Subject: a\n\nx\n").unwrap();
        std::fs::write(
            dir.path().join("b"),
            "Return-Path: <x@y>\nSubject: b\n\nx\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("manifest.tsv"), "file\tsubject\na.eml\ta\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "a note: not mail\n").unwrap();
        let expanded = expand(&[dir.path().to_path_buf()]).unwrap();
        let names = |paths: Vec<&PathBuf>| -> Vec<String> {
            paths
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        let sources: Vec<&PathBuf> = expanded
            .sources
            .iter()
            .map(|s| match s {
                Source::File(p) | Source::Mbox(p) => p,
                Source::Stdin => unreachable!("no stdin given"),
            })
            .collect();
        assert_eq!(names(sources), ["a.eml", "b"]);
        assert_eq!(
            names(expanded.not_mail.iter().collect()),
            ["manifest.tsv", "notes.txt"]
        );
        // Named on the command line, a file is taken as mail whatever it looks like.
        let named = expand(&[dir.path().join("notes.txt")]).unwrap();
        assert_eq!(named.sources.len(), 1);
    }

    #[test]
    fn a_missing_path_is_named() {
        let err = expand(&[PathBuf::from("/nonexistent/x.eml")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/nonexistent/x.eml: no such file or directory"
        );
    }
}
