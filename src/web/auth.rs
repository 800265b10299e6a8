//! Who is asking: the session cookie (or an API token on /api/), its CSRF token checked on
//! every POST before any handler runs, logging in (with failed logins slowed per account)
//! and out. Session ids and passwords never reach a log, an error or the store (the store
//! keeps a session id's SHA-256 only).

use std::sync::Arc;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use axum::body::Body;
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Form;
use sha2::{Digest, Sha256};

use super::{layout, WebError, WebState};
use crate::people::{self, Password, Role};
use crate::store::User;

/// The session cookie: a random id whose SHA-256 finds the session in the store.
pub const SESSION_COOKIE: &str = "mailrules_session";
/// The login form's own CSRF token (double submit: cookie and field must match), since there
/// is no session yet to hold it.
pub const LOGIN_COOKIE: &str = "mailrules_login";
/// Failed logins of one account allowed before the next attempt has to wait.
pub const FREE_FAILURES: u32 = 5;
/// The longest wait between attempts (seconds).
const MAX_WAIT: i64 = 15 * 60;
/// The largest form a POST may carry (a long reply fits easily).
const MAX_FORM: usize = 1 << 20;

/// The person behind a request, as the middleware found them.
#[derive(Debug, Clone)]
pub struct Person {
    pub user: User,
    /// The token this session's forms carry (empty for an API token).
    pub csrf: String,
    /// The hash of the session id (None for an API token).
    pub session: Option<String>,
}

impl Person {
    /// Refuses a person whose role is below `needed`.
    pub fn require(&self, needed: Role) -> Result<(), WebError> {
        if self.user.role < needed {
            return Err(WebError::Forbidden {
                email: self.user.email.clone(),
                role: self.user.role,
                needed,
            });
        }
        Ok(())
    }

    pub fn may(&self, role: Role) -> bool {
        self.user.role >= role
    }
}

impl FromRequestParts<Arc<WebState>> for Person {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &Arc<WebState>,
    ) -> Result<Person, WebError> {
        parts
            .extensions
            .get::<Person>()
            .cloned()
            .ok_or_else(|| WebError::LoginRequired {
                api: parts.uri.path().starts_with("/api/"),
                next: parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_else(|| "/tasks".into()),
            })
    }
}

/// Runs before every handler: finds the person (session cookie, or a bearer token on the
/// API), and refuses a POST whose `csrf` field is not this session's token (the login form:
/// not its cookie's) with 403 before anything can change.
pub async fn authenticate(
    State(state): State<Arc<WebState>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    let open = matches!(path.as_str(), "/healthz" | "/metrics") || path.starts_with("/static/");
    if open {
        return next.run(request).await;
    }
    let person = match identify(&state, request.headers(), &path).await {
        Ok(person) => person,
        Err(e) => return e.into_response(),
    };
    let mut request = request;
    if request.method() == Method::POST {
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
            return WebError::BadRequest("the form is too large".into()).into_response();
        };
        let sent = form_field(&bytes, "csrf").unwrap_or_default();
        let expected = if path == "/login" {
            cookie(&parts.headers, LOGIN_COOKIE)
        } else {
            match &person {
                Some(p) => Some(p.csrf.clone()),
                None => {
                    return WebError::LoginRequired {
                        api: path.starts_with("/api/"),
                        next: "/tasks".into(),
                    }
                    .into_response()
                }
            }
        };
        let valid = expected.is_some_and(|e| !e.is_empty() && same_secret(&e, &sent));
        if !valid {
            tracing::warn!("web: refused a POST to {path} without a valid CSRF token");
            return WebError::Csrf.into_response();
        }
        request = Request::from_parts(parts, Body::from(bytes));
    }
    if let Some(person) = person {
        request.extensions_mut().insert(person);
    }
    next.run(request).await
}

/// The person a request's cookie or (on the API) bearer token names, if any.
async fn identify(
    state: &Arc<WebState>,
    headers: &HeaderMap,
    path: &str,
) -> Result<Option<Person>, WebError> {
    if path.starts_with("/api/") {
        if let Some(token) = bearer(headers) {
            let user = state
                .with_store(move |store, _| Ok(store.verify_token(&token)?))
                .await?;
            return match user {
                Some(user) => Ok(Some(Person {
                    user,
                    csrf: String::new(),
                    session: None,
                })),
                None => Err(WebError::LoginRequired {
                    api: true,
                    next: path.to_string(),
                }),
            };
        }
    }
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let hash = session_hash(&id);
    state
        .with_store(move |store, _| {
            let now = chrono::Utc::now().timestamp();
            Ok(store.session(&hash, now)?.map(|s| Person {
                user: s.user,
                csrf: s.csrf,
                session: Some(hash),
            }))
        })
        .await
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

/// A field of an `application/x-www-form-urlencoded` body, as sent (tokens are hex: no
/// decoding needed to compare them).
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 32 random bytes from the OS, hex: session ids and CSRF tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

/// What the store keeps of a session id.
pub fn session_hash(id: &str) -> String {
    hex(&Sha256::digest(id.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How long (seconds after the last failure) an account with `failures` failed logins must
/// wait before the next try: nothing for the first few, then doubling from 15 s to 15 min.
pub fn login_wait(failures: u32) -> i64 {
    if failures < FREE_FAILURES {
        return 0;
    }
    let doublings = (failures - FREE_FAILURES).min(10);
    (15i64 << doublings).min(MAX_WAIT)
}

/// Where to go after logging in: a path on this site only (no `//host`, no scheme), else the
/// queue. This is what keeps the login form from being an open redirect.
pub fn local_target(next: &str) -> String {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\');
    if local && next != "/login" {
        next.to_string()
    } else {
        "/tasks".to_string()
    }
}

/// Whether this request reached us over https (a proxy we were told about says so, or the
/// base URL is https): cookies are then `Secure`.
fn over_https(state: &WebState, headers: &HeaderMap) -> bool {
    if state.web.https_base() {
        return true;
    }
    state.web.behind_proxy
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

fn cookie_header(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

#[derive(Debug, serde::Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

/// GET /login: the form, with a fresh login CSRF token in its cookie and a hidden field.
pub async fn login_page(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    login_form(&state, &headers, StatusCode::OK, &query.next, None)
}

fn login_form(
    state: &WebState,
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    problem: Option<&str>,
) -> Response {
    // The token the browser already holds, when it has one: a second GET of /login (another
    // tab, or the browser following the redirect of its own /favicon.ico request to the
    // login page) must not replace the cookie behind a form already shown, or that form's
    // POST is refused as forged. The token only proves the POST came from our page.
    let token = cookie(headers, LOGIN_COOKIE)
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(random_token);
    let secure = over_https(state, headers);
    let set = cookie_header(LOGIN_COOKIE, &token, "/login", 3600, secure);
    let page = layout::login_page(&token, &local_target(next), problem);
    (status, [(header::SET_COOKIE, set)], page).into_response()
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

enum LoginOutcome {
    In { id: String },
    Wrong,
    Wait(i64),
}

/// POST /login (its CSRF token was checked by [`authenticate`]).
pub async fn login(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let email =
        people::normalize_email(&form.email).unwrap_or_else(|_| form.email.trim().to_lowercase());
    let password = Password::new(form.password);
    let lifetime = i64::try_from(state.web.session_lifetime.as_secs()).unwrap_or(i64::MAX / 2);
    let outcome = state
        .with_store(move |store, _| {
            let now = chrono::Utc::now().timestamp();
            if let Some(failed) = store.login_failures(&email)? {
                let until = failed.last_at + login_wait(failed.count);
                if now < until {
                    return Ok(LoginOutcome::Wait(until - now));
                }
            }
            let user = match &password {
                Ok(password) => store.verify_password(&email, password)?,
                Err(_) => None,
            };
            let Some(user) = user else {
                store.login_failed(&email, now)?;
                return Ok(LoginOutcome::Wrong);
            };
            store.login_succeeded(&email)?;
            // A new id at every login: an id planted before it is worth nothing.
            let id = random_token();
            store.session_create(
                &session_hash(&id),
                user.id,
                &random_token(),
                now,
                now + lifetime,
            )?;
            tracing::info!("web: {} logged in", user.email);
            Ok(LoginOutcome::In { id })
        })
        .await;
    match outcome {
        Ok(LoginOutcome::In { id }) => {
            let secure = over_https(&state, &headers);
            let session = cookie_header(SESSION_COOKIE, &id, "/", lifetime, secure);
            let gone = cookie_header(LOGIN_COOKIE, "", "/login", 0, secure);
            let mut response = (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, local_target(&form.next))],
            )
                .into_response();
            for value in [session, gone] {
                if let Ok(value) = value.parse() {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            response
        }
        Ok(LoginOutcome::Wrong) => {
            tracing::warn!("web: a failed login");
            login_form(
                &state,
                &headers,
                StatusCode::UNAUTHORIZED,
                &form.next,
                Some("Wrong email or password."),
            )
        }
        Ok(LoginOutcome::Wait(seconds)) => login_form(
            &state,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            &form.next,
            Some(&format!(
                "Too many failed logins for this account: try again in {seconds} seconds."
            )),
        ),
        Err(e) => e.into_response(),
    }
}

/// POST /logout: the session ends in the store and its cookie is cleared.
pub async fn logout(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    person: Person,
) -> Response {
    if let Some(hash) = person.session {
        if let Err(e) = state
            .with_store(move |store, _| Ok(store.session_delete(&hash)?))
            .await
        {
            return e.into_response();
        }
    }
    let gone = cookie_header(SESSION_COOKIE, "", "/", 0, over_https(&state, &headers));
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/login".to_string()),
            (header::SET_COOKIE, gone),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(local_target("/tasks/3?x=1"), "/tasks/3?x=1");
        for bad in [
            "https://evil.example/",
            "//evil.example/x",
            "/\\evil.example",
            "javascript:alert(1)",
            "",
            "/login",
            "/a\nb",
        ] {
            assert_eq!(local_target(bad), "/tasks", "{bad:?}");
        }
    }

    #[test]
    fn failed_logins_wait_longer_and_longer() {
        assert_eq!(login_wait(0), 0);
        assert_eq!(login_wait(FREE_FAILURES - 1), 0);
        assert_eq!(login_wait(FREE_FAILURES), 15);
        assert_eq!(login_wait(FREE_FAILURES + 1), 30);
        assert_eq!(login_wait(FREE_FAILURES + 100), MAX_WAIT);
    }

    #[test]
    fn tokens_are_random_and_hashes_hide_them() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(session_hash(&a), a);
        assert!(same_secret(&a, &a.clone()));
        assert!(!same_secret(&a, &b));
        assert!(!same_secret(&a, ""));
    }

    #[test]
    fn cookies_and_form_fields_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; mailrules_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
        assert_eq!(
            form_field(b"x=1&csrf=ff00&y=", "csrf").as_deref(),
            Some("ff00")
        );
        assert_eq!(form_field(b"x=1", "csrf"), None);
    }
}
