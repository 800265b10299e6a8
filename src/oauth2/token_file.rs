//! Writing a refresh token to its file: owner-only (0600) from the first byte, and atomically
//! (a temporary file beside it, synced, then renamed over it), so a crash never leaves a
//! half-written or world-readable token behind.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{OAuth2Error, Secret};

/// Replaces `path` with `value` and a newline.
pub fn write_secret(path: &Path, value: &Secret) -> Result<(), OAuth2Error> {
    let failed = |message: String| OAuth2Error::TokenFile {
        path: path.to_path_buf(),
        message,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| failed("it names no file".into()))?;
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(value.expose().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        // The rename itself survives a crash only once the directory is synced.
        std::fs::File::open(dir)?.sync_all()
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        failed(e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_token_file_is_replaced_whole_and_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gmail.refresh");
        std::fs::write(&path, "old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_secret(&path, &Secret::new("new-token")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new-token\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_file_that_cannot_be_written_is_named_in_the_error() {
        let error = write_secret(Path::new("/nonexistent-dir/x.refresh"), &Secret::new("tok"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("/nonexistent-dir/x.refresh"), "{error}");
        assert!(
            !error.contains("tok\n") && !error.contains("\"tok\""),
            "{error}"
        );
    }
}
