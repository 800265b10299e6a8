//! What can go wrong answering a request, and the status code and page (or JSON for the API)
//! each becomes. Messages are for the person at the browser; a store failure is logged with
//! its detail and shown in the store's own words.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::people::Role;
use crate::rules::ChangeRefused;
use crate::store::{ChangeError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No session (or it expired): pages send the browser to the login form, the API says 401.
    #[error("log in first")]
    LoginRequired { api: bool, next: String },
    #[error("{email} is a {role}; this needs an {needed} (ask an admin for another role)")]
    Forbidden {
        email: String,
        role: Role,
        needed: Role,
    },
    #[error(
        "this form was not sent by this site or is out of date: reload the page and send it again"
    )]
    Csrf,
    #[error("there is no {0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// A change the rules or the store refused, in their words.
    #[error("not changed: {0}")]
    Refused(String),
    #[error("the rules do not load, so nothing can be changed until they are fixed:\n{0}")]
    RulesDoNotLoad(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the web server had a problem: {0}")]
    Internal(String),
}

impl From<ChangeError> for WebError {
    fn from(e: ChangeError) -> WebError {
        match e {
            ChangeError::UnknownTask(id) => WebError::NotFound(format!("task #{id}")),
            ChangeError::Refused(why) => WebError::Refused(why),
            ChangeError::Store(e) => WebError::Store(e),
        }
    }
}

impl From<ChangeRefused> for WebError {
    fn from(e: ChangeRefused) -> WebError {
        WebError::Refused(e.to_string())
    }
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::LoginRequired { api: true, .. } => StatusCode::UNAUTHORIZED,
            WebError::LoginRequired { api: false, .. } => StatusCode::SEE_OTHER,
            WebError::Forbidden { .. } | WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            WebError::RulesDoNotLoad(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Store(e) if e.is_environmental() => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Store(_) | WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The same error as the API answers it: JSON `{"error": "..."}`.
    pub fn into_json(self) -> Response {
        if matches!(self, WebError::Store(_) | WebError::Internal(_)) {
            tracing::error!("web: {self}");
        }
        let mut response = (
            self.status(),
            axum::Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if matches!(self, WebError::LoginRequired { .. }) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mailrules\""),
            );
        }
        response
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let WebError::LoginRequired { api, next } = &self {
            if *api {
                return self.into_json();
            }
            let target = format!("/login?next={}", super::layout::url_encode(next));
            return (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, target)],
                "log in first",
            )
                .into_response();
        }
        if matches!(self, WebError::Store(_) | WebError::Internal(_)) {
            tracing::error!("web: {self}");
        }
        let status = self.status();
        (status, super::layout::error_page(status, &self.to_string())).into_response()
    }
}
