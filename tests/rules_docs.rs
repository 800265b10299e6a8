//! Every ```toml block of docs/rules.md must load as a complete rule file, so that the user
//! reference cannot drift from the rule language. A block marked ```toml fragment is skipped.

use std::path::PathBuf;

use mailrules::rules::RuleSet;

/// Every complete TOML block, padded with empty lines so that errors name the line of
/// docs/rules.md itself.
fn toml_blocks(doc: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut open: Option<String> = None;
    for (i, line) in doc.lines().enumerate() {
        let fence = line.trim();
        match open.take() {
            Some(text) if fence.starts_with("```") => blocks.push(text),
            Some(mut text) => {
                text.push_str(line);
                text.push('\n');
                open = Some(text);
            }
            // The block's first line is line i + 2 of the document.
            None if fence == "```toml" => open = Some("\n".repeat(i + 1)),
            None => {}
        }
    }
    blocks
}

#[test]
fn every_toml_example_in_the_reference_loads() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/rules.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let blocks = toml_blocks(&doc);
    assert!(
        blocks.len() >= 25,
        "only {} toml blocks found",
        blocks.len()
    );
    let mut failures = Vec::new();
    for text in &blocks {
        let name = PathBuf::from("docs/rules.md");
        if let Err(errors) = RuleSet::from_sources(&[(name, text.clone())]) {
            failures.push(errors.to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "examples in docs/rules.md do not load:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_reference_shows_every_condition_extractor_and_action() {
    let doc =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/rules.md"))
            .unwrap();
    let toml: String = toml_blocks(&doc).concat();
    let keys = [
        "from = ",
        "to = ",
        "subject = ",
        "body = ",
        "header = ",
        "has_attachment = ",
        "thread = ",
        "sender = ",
        "task_status = ",
        "any = ",
        "all = ",
        "not = ",
        "after = ",
        "between = ",
        "regex = ",
        "line = ",
        "header = \"",
        "type = ",
        "map = ",
        "default = ",
        "required = ",
        "from = \"subject\"",
        "from = \"from\"",
        "from = \"header:",
        "\"create_task\"",
        "\"comment\"",
        "\"set\"",
        "\"analytics\"",
        "\"reply\"",
        "\"notify\"",
        "\"ignore\"",
        "if_missing = ",
        "task = {",
        "task = \"",
        "priority = ",
        "continue = ",
        "mailbox = ",
        "[[trigger]]",
        "[[schedule]]",
        "[[field]]",
        "[[analytics]]",
        "contains = ",
        "is = ",
        "exists = ",
        "auto = ",
    ];
    let missing: Vec<&str> = keys.iter().copied().filter(|k| !toml.contains(k)).collect();
    assert!(
        missing.is_empty(),
        "docs/rules.md has no example of: {missing:?}"
    );
}
