//! The table of public error codes (STYLE.md "Errors"): each has one HTTP status and a stable
//! JSON body `{"code", "message", "field"}`. Internal causes are logged, never sent.

use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    ValidationFailed,
    MalformedJson,
    PayloadTooLarge,
    UnsupportedMediaType,
    NotFound,
    AlreadyReserved,
    CoolingDown,
    RequestInProgress,
    RateLimited,
    Overloaded,
    Unavailable,
    Unauthorized,
    Forbidden,
    AlreadyPickedUp,
    NotPublished,
    RequestTimeout,
    PhoneCodeRequired,
    PhoneCodeInvalid,
    MethodNotAllowed,
    Internal,
}

impl Code {
    /// (code, status): the one table clients may rely on.
    pub const fn entry(self) -> (&'static str, u16) {
        match self {
            Code::ValidationFailed => ("validation_failed", 400),
            Code::MalformedJson => ("malformed_json", 400),
            Code::PayloadTooLarge => ("payload_too_large", 413),
            Code::UnsupportedMediaType => ("unsupported_media_type", 415),
            Code::NotFound => ("not_found", 404),
            Code::AlreadyReserved => ("already_reserved", 409),
            Code::CoolingDown => ("cooling_down", 409),
            Code::RequestInProgress => ("request_in_progress", 409),
            Code::RateLimited => ("rate_limited", 429),
            Code::Overloaded => ("overloaded", 503),
            Code::Unavailable => ("unavailable", 503),
            Code::Unauthorized => ("unauthorized", 401),
            Code::Forbidden => ("forbidden", 403),
            Code::AlreadyPickedUp => ("already_picked_up", 409),
            Code::NotPublished => ("not_published", 404),
            Code::RequestTimeout => ("request_timeout", 408),
            Code::PhoneCodeRequired => ("phone_code_required", 400),
            Code::PhoneCodeInvalid => ("phone_code_invalid", 403),
            Code::MethodNotAllowed => ("method_not_allowed", 405),
            Code::Internal => ("internal", 500),
        }
    }

    pub const ALL: [Code; 20] = [
        Code::ValidationFailed,
        Code::MalformedJson,
        Code::PayloadTooLarge,
        Code::UnsupportedMediaType,
        Code::NotFound,
        Code::AlreadyReserved,
        Code::CoolingDown,
        Code::RequestInProgress,
        Code::RateLimited,
        Code::Overloaded,
        Code::Unavailable,
        Code::Unauthorized,
        Code::Forbidden,
        Code::AlreadyPickedUp,
        Code::NotPublished,
        Code::RequestTimeout,
        Code::PhoneCodeRequired,
        Code::PhoneCodeInvalid,
        Code::MethodNotAllowed,
        Code::Internal,
    ];
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    pub field: Option<String>,
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    field: Option<&'a str>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn field(code: Code, field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_string()),
            ..Self::new(code, message)
        }
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// A failure of ours: the cause is logged with its whole chain, the client sees a code.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = cause.to_string();
        let mut src = cause.source();
        while let Some(s) = src {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            src = s.source();
        }
        tracing::error!(error = %chain, "internal error");
        Self::new(Code::Internal, "something went wrong on our side")
    }

    /// A service we depend on is away: 503 with Retry-After.
    pub fn unavailable(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::warn!(error = %cause, "dependency unavailable");
        Self::new(
            Code::Unavailable,
            "the service is busy; please retry shortly",
        )
        .retry_after(2)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.entry().0, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code.entry().1).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.insert_header((RETRY_AFTER, v));
            }
        }
        resp.json(Body {
            code: self.code.entry().0,
            message: &self.message,
            field: self.field.as_deref(),
        })
    }
}

impl From<maskdraw_wire::body::BodyError> for ApiError {
    fn from(e: maskdraw_wire::body::BodyError) -> Self {
        use maskdraw_wire::body::BodyError;
        match e {
            BodyError::Malformed(message) => Self::new(Code::MalformedJson, message),
            BodyError::Field { field, message } => {
                Self::field(Code::ValidationFailed, field, message)
            }
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::unavailable(&e)
    }
}

impl From<crate::store::redis::StoreError> for ApiError {
    fn from(e: crate::store::redis::StoreError) -> Self {
        Self::unavailable(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_unique_and_only_internal_is_a_500() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            let (name, status) = c.entry();
            assert!(seen.insert(name), "{name} twice");
            assert_eq!(status == 500, c == Code::Internal, "{name}");
        }
    }
}
