//! The web (`mailrules serve`, and `mailrules run` with `[web]`): the router, the shared
//! state, listening and stopping with the daemon's one `Shutdown`. The web is a layer above
//! the store: every page reads through store methods and every change goes through the same
//! store operations as the command line (`apply_change`, `queue_answer`); it runs no SQL.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::config::{Config, WebConfig};
use crate::daemon::Shutdown;

mod api;
mod auth;
mod chart;
mod error;
mod layout;
mod metrics;
mod pages;
mod state;

pub use error::WebError;
pub use metrics::{install as install_metrics, APPLY_SECONDS};
pub use state::{DaemonLink, WebState};

/// Why the web could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {message} (another program may use the port; change [web] listen)")]
    Bind { addr: SocketAddr, message: String },
    #[error("the web server stopped: {0}")]
    Serve(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Every route of team.md's table, and the forms' targets.
pub fn router(state: Arc<WebState>) -> Router {
    Router::new()
        .route("/", get(pages::queue::home))
        .route("/healthz", get(pages::admin::healthz))
        .route("/metrics", get(metrics::render))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/tasks", get(pages::queue::queue))
        .route("/tasks/rows", get(pages::queue_rows::rows))
        .route("/tasks/{id}", get(pages::task::show))
        .route("/tasks/{id}/status", post(pages::task_actions::status))
        .route("/tasks/{id}/assignee", post(pages::task_actions::assignee))
        .route("/tasks/{id}/fields", post(pages::task_actions::fields))
        .route("/tasks/{id}/note", post(pages::task_actions::note))
        .route("/tasks/{id}/reply", post(pages::task_actions::reply))
        .route("/tasks/{id}/close", post(pages::task_actions::close))
        .route("/analytics", get(pages::analytics::index))
        .route("/analytics/{table}", get(pages::analytics::table))
        .route("/messages", get(pages::messages::list))
        .route("/messages/{id}", get(pages::messages::show))
        .route("/messages/{id}/raw", get(pages::messages::raw))
        .route(
            "/messages/{id}/attachments/{number}",
            get(pages::messages::attachment),
        )
        .route("/messages/{id}/retry", post(pages::messages::retry))
        .route("/outbox", get(pages::admin::outbox))
        .route("/mailboxes", get(pages::admin::mailboxes))
        .route("/rules", get(pages::admin::rules))
        .route("/users", get(pages::admin::users))
        .route("/api/tasks", get(api::tasks))
        .route("/api/tasks/{id}", get(api::task))
        .route("/api/version", get(api::version))
        .route("/static/{file}", get(layout::asset))
        .fallback(layout::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn(layout::security_headers))
        .with_state(state)
}

/// Listens on `[web] listen` (the defaults when the section is absent).
pub async fn bind(web: &WebConfig) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(web.listen)
        .await
        .map_err(|e| ServeError::Bind {
            addr: web.listen,
            message: e.to_string(),
        })
}

/// Serves the web on `listener` until `shutdown`. `daemon` links the daemon when it runs in
/// this process (`run`), so that /mailboxes and /metrics can tell whether each mailbox is up
/// and a reply wakes the outbox sender.
pub async fn serve(
    config: Arc<Config>,
    listener: tokio::net::TcpListener,
    shutdown: Shutdown,
    daemon: Option<DaemonLink>,
) -> Result<(), ServeError> {
    metrics::install();
    let state = Arc::new(WebState::new(config, daemon)?);
    let app = router(state);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!("web: listening on http://{addr}");
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
        .map_err(|e| ServeError::Serve(e.to_string()))
}
