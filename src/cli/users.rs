//! `user add | list | remove | passwd | token`: staff accounts (team.md, "People").
//!
//! Input is checked (email, name, role, password) before the store is touched; the password
//! is read last, after the checks a person could otherwise type it for in vain.

use std::path::Path;
use std::process::ExitCode;

use super::table::Table;
use crate::people::{self, Role};
use crate::store::StoreError;

pub fn add(
    config_path: &Path,
    email: &str,
    name: Option<&str>,
    role: Role,
) -> anyhow::Result<ExitCode> {
    let email = people::normalize_email(email)?;
    let name = name.map(people::clean_name).transpose()?;
    let store = super::open_store(&super::load_config(config_path)?)?;
    if store.user(&email)?.is_some() {
        return Err(StoreError::UserExists(email).into());
    }
    let password = super::prompt::password(&email)?;
    let user = store.user_add(&email, name.as_deref(), role, &password)?;
    println!("added {} ({})", user.email, user.role);
    Ok(ExitCode::SUCCESS)
}

pub fn list(config_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let store = super::open_store(&super::load_config(config_path)?)?;
    let users = store.user_list()?;
    if json {
        super::print_json(&users)?;
        return Ok(ExitCode::SUCCESS);
    }
    if users.is_empty() {
        println!("no users (`mailrules user add EMAIL` adds one)");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&["EMAIL", "NAME", "ROLE", "TOKEN", "CREATED"]);
    for u in &users {
        table.row(vec![
            u.email.clone(),
            u.name.clone().unwrap_or_default(),
            u.role.to_string(),
            if u.token { "yes" } else { "-" }.to_string(),
            u.created_at.clone(),
        ]);
    }
    print!("{}", table.render());
    Ok(ExitCode::SUCCESS)
}

pub fn remove(config_path: &Path, email: &str) -> anyhow::Result<ExitCode> {
    let email = people::normalize_email(email)?;
    let store = super::open_store(&super::load_config(config_path)?)?;
    store.user_remove(&email)?;
    println!("removed {email}");
    Ok(ExitCode::SUCCESS)
}

pub fn passwd(config_path: &Path, email: &str) -> anyhow::Result<ExitCode> {
    let email = people::normalize_email(email)?;
    let store = super::open_store(&super::load_config(config_path)?)?;
    if store.user(&email)?.is_none() {
        return Err(StoreError::UnknownUser(email).into());
    }
    let password = super::prompt::password(&email)?;
    store.user_set_password(&email, &password)?;
    println!("changed the password of {email}");
    Ok(ExitCode::SUCCESS)
}

/// Prints the new token alone on stdout, so `TOKEN=$(mailrules user token …)` takes it whole.
pub fn token(config_path: &Path, email: &str) -> anyhow::Result<ExitCode> {
    let email = people::normalize_email(email)?;
    let store = super::open_store(&super::load_config(config_path)?)?;
    let token = store.user_new_token(&email)?;
    println!("{}", token.expose());
    Ok(ExitCode::SUCCESS)
}

/// The `--role` values, as clap lists them in its errors.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    Viewer,
    Agent,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Agent => Role::Agent,
            RoleArg::Admin => Role::Admin,
        }
    }
}
