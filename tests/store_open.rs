//! Opening one store from many processes at once: systemd starting the daemon while someone
//! runs a command on a store that does not exist yet.

use std::process::Stdio;

use crate::support::workdir::Workdir;

#[test]
fn eight_commands_started_at_once_on_a_new_store_all_succeed() {
    const PROCESSES: usize = 8;
    for round in 0..5 {
        let w = Workdir::with_shipped_rules();
        let children: Vec<_> = (0..PROCESSES)
            .map(|_| {
                w.command(&["task", "list", "--json"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: `mailrules task list` failed ({:?}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            let tasks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(tasks, serde_json::json!([]), "round {round}");
        }
        // The store they made together takes mail like any other.
        let mail = w.path("new.eml");
        std::fs::write(
            &mail,
            "From: Иван <ivan@client.example>\r\nTo: support@acme.example\r\n\
             Subject: Не работает принтер\r\nMessage-ID: <p1@client.example>\r\n\r\nПомогите\r\n",
        )
        .unwrap();
        let result = w.ingest(&mail);
        assert_eq!(result["processed"], 1, "round {round}: {result}");
    }
}
