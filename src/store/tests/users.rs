//! Staff accounts in the store: what is kept (hashes only), and the checks the web relies on.

use super::*;
use crate::people::{Password, Role};

fn password(text: &str) -> Password {
    Password::new(text.to_string()).unwrap()
}

#[test]
fn an_account_keeps_only_hashes_and_its_password_verifies() {
    let store = Store::open_in_memory().unwrap();
    assert!(!store.users_exist().unwrap());
    let anna = store
        .user_add(
            "anna@acme.example",
            Some("Анна"),
            Role::Agent,
            &password("s3cret pass"),
        )
        .unwrap();
    assert_eq!(anna.email, "anna@acme.example");
    assert_eq!(anna.role, Role::Agent);
    assert!(!anna.token);
    assert!(store.users_exist().unwrap());

    let stored: String = store
        .conn
        .query_row("SELECT password_hash FROM users", [], |r| r.get(0))
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains("s3cret"));

    let found = store
        .verify_password("Anna@Acme.example", &password("s3cret pass"))
        .unwrap();
    assert_eq!(found.map(|u| u.email).as_deref(), Some("anna@acme.example"));
    assert_eq!(
        store
            .verify_password("anna@acme.example", &password("s3cret"))
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .verify_password("bob@acme.example", &password("s3cret pass"))
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .verify_password("not an address", &password("x"))
            .unwrap(),
        None
    );
}

#[test]
fn a_second_account_with_the_same_email_is_refused() {
    let store = Store::open_in_memory().unwrap();
    store
        .user_add("anna@acme.example", None, Role::Viewer, &password("a"))
        .unwrap();
    let err = store
        .user_add("anna@acme.example", None, Role::Admin, &password("b"))
        .unwrap_err();
    assert!(matches!(err, StoreError::UserExists(_)), "{err}");
    assert!(err.to_string().contains("user passwd"), "{err}");
    assert_eq!(store.user_list().unwrap()[0].role, Role::Viewer);
}

#[test]
fn a_new_password_replaces_the_old_one() {
    let store = Store::open_in_memory().unwrap();
    store
        .user_add("anna@acme.example", None, Role::Agent, &password("old"))
        .unwrap();
    store
        .user_set_password("anna@acme.example", &password("new"))
        .unwrap();
    assert!(store
        .verify_password("anna@acme.example", &password("old"))
        .unwrap()
        .is_none());
    assert!(store
        .verify_password("anna@acme.example", &password("new"))
        .unwrap()
        .is_some());
    let err = store
        .user_set_password("bob@acme.example", &password("x"))
        .unwrap_err();
    assert!(err.to_string().contains("user list"), "{err}");
}

#[test]
fn a_token_names_its_user_and_a_new_one_revokes_the_old() {
    let store = Store::open_in_memory().unwrap();
    store
        .user_add("anna@acme.example", None, Role::Admin, &password("a"))
        .unwrap();
    store
        .user_add("bob@acme.example", None, Role::Viewer, &password("b"))
        .unwrap();
    let first = store.user_new_token("anna@acme.example").unwrap();
    let user = store.verify_token(first.expose()).unwrap().unwrap();
    assert_eq!(
        (user.email.as_str(), user.role),
        ("anna@acme.example", Role::Admin)
    );
    assert!(user.token);
    let token_hash: String = store
        .conn
        .query_row(
            "SELECT token_hash FROM users WHERE token_hash IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!token_hash.contains(first.expose()));

    let second = store.user_new_token("anna@acme.example").unwrap();
    assert!(store.verify_token(first.expose()).unwrap().is_none());
    assert!(store.verify_token(second.expose()).unwrap().is_some());
    // Bob has no token: Anna's secret under Bob's id is nothing.
    let bob = store.user("bob@acme.example").unwrap().unwrap();
    let forged = second
        .expose()
        .replacen(&format!("_{}_", user.id), &format!("_{}_", bob.id), 1);
    assert!(store.verify_token(&forged).unwrap().is_none());
    assert!(store.verify_token("garbage").unwrap().is_none());
    assert!(matches!(
        store.user_new_token("carol@acme.example"),
        Err(StoreError::UnknownUser(_))
    ));
}

#[test]
fn removing_an_account_ends_its_token() {
    let store = Store::open_in_memory().unwrap();
    store
        .user_add("anna@acme.example", None, Role::Agent, &password("a"))
        .unwrap();
    let token = store.user_new_token("anna@acme.example").unwrap();
    store.user_remove("anna@acme.example").unwrap();
    assert!(store.verify_token(token.expose()).unwrap().is_none());
    assert!(store.user("anna@acme.example").unwrap().is_none());
    assert!(!store.users_exist().unwrap());
    assert!(matches!(
        store.user_remove("anna@acme.example"),
        Err(StoreError::UnknownUser(_))
    ));
}
