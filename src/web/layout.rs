//! The frame every page shares (navigation, who is logged in, the logout form), the login and
//! error pages, the embedded static files, and the headers every answer carries: a
//! Content-Security-Policy that allows nothing from elsewhere and no inline script.

use axum::extract::{Path, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::auth::Person;
use super::WebError;
use crate::people::Role;

/// Only this server's own files; no inline script or style; images may be inline data (none
/// are, today) but never remote; no frames, plugins or foreign form targets.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; object-src 'none'; frame-src 'none'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const STYLE: &str = include_str!("assets/style.css");
const SCRIPT: &str = include_str!("assets/app.js");

/// Adds the security headers to every answer.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// GET /static/{file}: the stylesheet and the script, compiled into the binary.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Any other path: 404 for a person, the login form for nobody.
pub async fn not_found(_person: Person) -> WebError {
    WebError::NotFound("such page".into())
}

/// A page in the frame: navigation, the person, the logout form.
pub fn page(title: &str, person: &Person, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · mailrules" }
                link rel="stylesheet" href="/static/style.css";
                script src="/static/app.js" defer {}
            }
            body {
                nav #nav {
                    a.brand href="/tasks" { "mailrules" }
                    a href="/tasks" { "Queue" }
                    a href="/analytics" { "Analytics" }
                    a href="/messages" { "Messages" }
                    a href="/outbox" { "Outbox" }
                    a href="/mailboxes" { "Mailboxes" }
                    @if person.may(Role::Admin) {
                        a href="/rules" { "Rules" }
                        a href="/users" { "Users" }
                    }
                    span.who #who {
                        (person.user.email) " (" (person.user.role) ")"
                    }
                    form #logout-form method="post" action="/logout" {
                        input type="hidden" name="csrf" value=(person.csrf);
                        button type="submit" { "Log out" }
                    }
                }
                main #main {
                    (body)
                }
            }
        }
    }
}

/// The login form. `token` is also in the login cookie; `next` is already a local path.
pub fn login_page(token: &str, next: &str, problem: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Log in · mailrules" }
                link rel="stylesheet" href="/static/style.css";
            }
            body.login {
                main #main {
                    h1 { "mailrules" }
                    @if let Some(problem) = problem {
                        p.error #login-error role="alert" { (problem) }
                    }
                    form #login-form method="post" action="/login" {
                        input type="hidden" name="csrf" value=(token);
                        input type="hidden" name="next" value=(next);
                        label { "Email" input type="email" name="email" autocomplete="username" required autofocus; }
                        label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                        button type="submit" { "Log in" }
                    }
                }
            }
        }
    }
}

/// A page for an error, outside the frame (it may be shown to nobody in particular).
pub fn error_page(status: StatusCode, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (status.as_u16()) " · mailrules" }
                link rel="stylesheet" href="/static/style.css";
            }
            body {
                main #main {
                    h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                    p.error #error-message { (message) }
                    p { a href="/tasks" { "Back to the queue" } }
                }
            }
        }
    }
}

/// A stored time (RFC 3339, UTC) as people read it: `2026-12-01 18:59` with the exact time in
/// the element's `datetime` (and as its tooltip). Text that is not such a time is shown as it is.
pub fn when(at: &str) -> Markup {
    let short = chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| at.to_string());
    html! { time datetime=(at) title=(at) { (short) } }
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn url_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The hidden CSRF field every form of a session carries.
pub fn csrf_field(person: &Person) -> Markup {
    html! { input type="hidden" name="csrf" value=(person.csrf); }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(url_encode("/tasks?a=b c&d"), "/tasks%3Fa%3Db%20c%26d");
        assert_eq!(url_encode("é"), "%C3%A9");
    }

    #[test]
    fn the_policy_forbids_inline_script_and_foreign_loads() {
        assert!(CONTENT_SECURITY_POLICY.contains("default-src 'self'"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
    }
}
