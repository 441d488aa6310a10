//! `POST /api/v1/phone-codes`: a one-time code sent to a phone, which a reservation for that
//! phone then carries (`phone_code`), so that knowing somebody's id number is not enough to
//! reserve in their name (DESIGN.md "Rules of the reservation").
//!
//! Only `HMAC(hmac_secret, "phone-code:" ‖ phone tag ‖ ":" ‖ code)` is kept, in Redis, for
//! `phone_code_ttl_secs`; `phone_code_max_attempts` wrong guesses void it; a phone gets one code
//! per `phone_code_resend_secs` and `phone_codes_per_phone_per_day`; a client address
//! `phone_code_rate_per_min`. One code serves one reservation.

use actix_web::{web, HttpRequest, HttpResponse};
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

use super::error::{ApiError, Code};
use super::reservations::{object, parse_with, read_body, require_json};
use super::{client, AppState};
use crate::admission::Call;
use crate::domain::{phone_tag, Phone};
use crate::store::phone_codes::{Consume, Issue};

// A code's shape is checked by the reservation body's parser too (maskdraw-wire).
pub use maskdraw_wire::body::{is_code, CODE_LEN};

/// What Redis keeps of `code` for the phone with `phone_tag`.
pub fn code_mac(secret: &[u8], phone_tag: &str, code: &str) -> String {
    // HMAC takes keys of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    m.update(b"phone-code:");
    m.update(phone_tag.as_bytes());
    m.update(b":");
    m.update(code.as_bytes());
    hex::encode(&m.finalize().into_bytes()[..16])
}

/// A code from the operating system's generator.
fn new_code() -> String {
    let n: u32 = rand::rngs::OsRng.gen_range(0..1_000_000);
    format!("{n:0CODE_LEN$}")
}

pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_json(&req)?;
    let body = read_body(payload, &state).await?;
    state
        .admission
        .check(Call::PhoneCode, client(&req, &state))?;
    let m = object(&body)?;
    let phone = parse_with(&m, "phone", Phone::parse)?;
    let Some(sender) = &state.sms else {
        return Err(ApiError::new(
            Code::NotFound,
            "phone codes are not in use on this server",
        ));
    };
    let secret = state.settings.hmac_secret.expose().as_bytes();
    let tag = phone_tag(secret, &phone);
    let code = new_code();
    let mac = code_mac(secret, &tag, &code);
    let limits = state.phone_codes.limits();
    if let Issue::Wait(secs) = state.phone_codes.issue(&tag, &mac).await? {
        state
            .metrics
            .phone_codes
            .with_label_values(&["limited"])
            .inc();
        return Err(ApiError::new(
            Code::RateLimited,
            format!("a code was sent to this phone recently; ask again in {secs} s"),
        )
        .retry_after(secs));
    }
    if let Err(e) = sender.send(&phone, &code, limits.ttl_secs).await {
        state
            .metrics
            .phone_codes
            .with_label_values(&["failed"])
            .inc();
        // Not sent, so not counted against the phone: the person may ask again at once.
        if let Err(fe) = state.phone_codes.forget(&tag, &mac).await {
            tracing::warn!(error = ?fe, "could not drop an unsent phone code");
        }
        tracing::warn!(error = %e, "sending a phone code failed");
        return Err(ApiError::new(
            Code::Unavailable,
            "the code could not be sent right now; please retry shortly",
        )
        .retry_after(5));
    }
    state.metrics.phone_codes.with_label_values(&["sent"]).inc();
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "expires_in_secs": limits.ttl_secs,
        "resend_in_secs": limits.resend_secs,
    })))
}

/// A code a reservation spent: given back if the reservation fails on our side.
pub struct Spent {
    phone_tag: String,
    request: String,
}

/// Spends the reservation's code, or refuses: `phone_code_required` when none is given and
/// codes are required, `phone_code_invalid` when it is wrong, void, spent or unknown. A code
/// given is always checked, even where none is required. `request` names the request so that
/// its own retry (same person, same Idempotency-Key) passes again.
///
/// # Errors
/// As above; `unavailable` when Redis cannot be reached.
pub async fn spend(
    state: &AppState,
    phone: &Phone,
    code: Option<&str>,
    person_tag: &str,
    idempotency_key: Option<&str>,
) -> Result<Option<Spent>, ApiError> {
    let Some(code) = code else {
        if state.settings.phone_code_required() {
            return Err(ApiError::field(
                Code::PhoneCodeRequired,
                "phone_code",
                "a code sent to this phone is required: ask for one first (POST /api/v1/phone-codes)",
            ));
        }
        return Ok(None);
    };
    let invalid = |why: &str| ApiError::field(Code::PhoneCodeInvalid, "phone_code", why);
    if !is_code(code) {
        return Err(invalid("a phone code is 6 digits"));
    }
    let secret = state.settings.hmac_secret.expose().as_bytes();
    let tag = phone_tag(secret, phone);
    let request = match idempotency_key {
        Some(k) => format!("{person_tag}|{k}"),
        // No key: nothing can retry this request, so nothing will match it.
        None => format!("{person_tag}|-{}", uuid::Uuid::new_v4().simple()),
    };
    match state
        .phone_codes
        .consume(&tag, &code_mac(secret, &tag, code), &request)
        .await?
    {
        Consume::Spent => Ok(Some(Spent {
            phone_tag: tag,
            request,
        })),
        Consume::Wrong => Err(invalid("this is not the code sent to this phone")),
        Consume::Missing => Err(invalid(
            "no code is waiting for this phone (it expired, or none was sent): ask for a new one",
        )),
        Consume::Void => Err(invalid(
            "too many wrong codes for this phone: ask for a new one",
        )),
        Consume::AlreadySpent => Err(invalid("this code was used already: ask for a new one")),
    }
}

/// Unspends a code whose reservation failed on our side (503), so that a retry may use it.
pub async fn give_back(state: &AppState, spent: &Spent) {
    if let Err(e) = state
        .phone_codes
        .give_back(&spent.phone_tag, &spent.request)
        .await
    {
        tracing::warn!(error = ?e, "could not give a phone code back");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_their_mac_depends_on_phone_and_code() {
        for _ in 0..100 {
            let c = new_code();
            assert!(is_code(&c), "{c}");
        }
        assert!(!is_code("12345") && !is_code("1234567") && !is_code("12345a"));
        let k = b"0123456789abcdef";
        let a = code_mac(k, "aaaa", "123456");
        assert_eq!(a.len(), 32);
        assert_ne!(a, code_mac(k, "aaab", "123456"));
        assert_ne!(a, code_mac(k, "aaaa", "123457"));
        assert!(!a.contains("123456"));
    }
}
