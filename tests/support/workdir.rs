//! A scratch directory with a config, a store and the shipped rules, and a way to run the
//! built `mailrules` binary against it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Workdir {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

/// The project root (where Cargo.toml, rules/ and fixtures/ are).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(path: &str) -> PathBuf {
    root().join("fixtures").join(path)
}

impl Workdir {
    /// A workdir whose config uses the shipped rules/ directory.
    pub fn with_shipped_rules() -> Workdir {
        let rules = root().join("rules");
        Workdir::new(&format!("rules = {:?}\n", rules.display().to_string()))
    }

    /// A workdir with its own rules directory holding `files` (name, text).
    pub fn with_rules(files: &[(&str, &str)]) -> Workdir {
        let w = Workdir::new("rules = \"rules\"\n");
        std::fs::create_dir_all(w.dir.path().join("rules")).unwrap();
        for (name, text) in files {
            w.write_rule(name, text);
        }
        w
    }

    fn new(rules_line: &str) -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mailrules.toml");
        let text = format!(
            "store = \"store.db\"\n{rules_line}unmatched = \"thread\"\n\n[staff]\ndomains = [\"acme.example\"]\n\n[smtp]\nhost = \"127.0.0.1\"\nport = 2525\ntls = \"none\"\nfrom = \"Поддержка ACME <support@acme.example>\"\n"
        );
        std::fs::write(&config, text).unwrap();
        Workdir { dir, config }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write_rule(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join("rules").join(name), text).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailrules"));
        cmd.arg("--config").arg(&self.config).args(args);
        cmd.env_remove("MAILRULES_CONFIG")
            .env("MAILRULES_LOG", "warn");
        cmd
    }

    /// Runs `mailrules ARGS` and returns its output, whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs `mailrules ARGS`, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "mailrules {args:?} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `mailrules ARGS --json` and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        let text = self.ok(&args);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}\n{text}"))
    }

    /// Runs `mailrules ingest PATH --json`.
    pub fn ingest(&self, path: &Path) -> serde_json::Value {
        self.json(&["ingest", path.to_str().unwrap()])
    }
}
