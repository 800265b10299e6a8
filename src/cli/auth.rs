//! `mailrules auth MAILBOX` (or `--smtp`): the device-code sign-in that gets an OAuth2
//! account its first refresh token, written where `refresh_token_file` says (0600, atomically).

use std::path::Path;
use std::process::ExitCode;

use super::output::say;
use crate::config::OAuth2Config;
use crate::oauth2::{reauth_command, sign_in_with_device_code, DevicePrompt};

/// Signs in the mailbox `name`, or the `[smtp]` account when `smtp` is set.
pub fn auth(config_path: &Path, name: Option<&str>, smtp: bool) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let (account, command, oauth2): (String, String, &OAuth2Config) = match (name, smtp) {
        (_, true) => {
            let Some(smtp) = &config.smtp else {
                anyhow::bail!("the configuration has no [smtp] section");
            };
            let Some(oauth2) = &smtp.oauth2 else {
                anyhow::bail!(
                    "[smtp] does not sign in with OAuth2 (set auth = \"oauth2\" and [smtp.oauth2])"
                );
            };
            ("[smtp]".into(), "mailrules auth --smtp".into(), oauth2)
        }
        (Some(name), false) => {
            let Some(mailbox) = config.mailboxes.iter().find(|m| m.name == name) else {
                let known: Vec<&str> = config.mailboxes.iter().map(|m| m.name.as_str()).collect();
                anyhow::bail!(
                    "no mailbox \"{name}\" in {}; configured: {}",
                    config.path.display(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                );
            };
            let Some(oauth2) = &mailbox.oauth2 else {
                anyhow::bail!(
                    "mailbox \"{name}\" signs in with a password; set auth = \"oauth2\" and a \
                     [mailbox.oauth2] table to use OAuth2"
                );
            };
            (format!("mailbox \"{name}\""), reauth_command(name), oauth2)
        }
        (None, false) => anyhow::bail!("name the mailbox to sign in (or --smtp)"),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut shown = Ok(());
    let written = runtime.block_on(sign_in_with_device_code(
        &account,
        &command,
        oauth2,
        |prompt: &DevicePrompt| shown = show(&account, prompt),
    ))?;
    shown?;
    say!(
        "ok: signed in; the refresh token for {account} is in {} (readable by you only)",
        written.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

fn show(account: &str, prompt: &DevicePrompt) -> std::io::Result<()> {
    say!("To sign in {account}, open")?;
    say!("  {}", prompt.verification_uri)?;
    say!("and enter the code")?;
    say!("  {}", prompt.user_code)?;
    if let Some(complete) = &prompt.verification_uri_complete {
        say!("(or open {complete}, which has the code filled in)")?;
    }
    say!(
        "The code is valid for {}; waiting for the sign-in…",
        crate::text::duration(prompt.expires_in)
    )
}
