//! `POST /api/v1/pickups`: pharmacy staff mark a winner's pickup code collected.
//!
//! A pharmacy's bearer token is `<pharmacy_id>.<HMAC-SHA256(secret, "pharmacy:" ‖ id)>` (first
//! 16 bytes, hex): stateless, printed by `maskdraw token --pharmacy ID`, and only as strong as
//! the server secret it derives from.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::error::{ApiError, Code};
use super::{client, AppState};
use crate::admission::Call;
use crate::store::day;

fn mac(secret: &[u8], pharmacy: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    m.update(b"pharmacy:");
    m.update(pharmacy.as_bytes());
    m
}

/// The bearer token of `pharmacy`.
pub fn token(secret: &[u8], pharmacy: &str) -> String {
    format!(
        "{pharmacy}.{}",
        hex::encode(&mac(secret, pharmacy).finalize().into_bytes()[..16])
    )
}

/// The pharmacy a token speaks for, checked in constant time.
pub fn pharmacy_of(secret: &[u8], token: &str) -> Option<String> {
    let (pharmacy, tag) = token.rsplit_once('.')?;
    let tag = hex::decode(tag).ok()?;
    mac(secret, pharmacy).verify_truncated_left(&tag).ok()?;
    (tag.len() == 16).then(|| pharmacy.to_string())
}

pub async fn collect(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.admission.check(Call::Pickup, client(&req, &state))?;
    let secret = state.settings.hmac_secret.expose().as_bytes();
    let pharmacy = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| pharmacy_of(secret, t.trim()))
        .filter(|p| state.catalog.pharmacy(p).is_some())
        .ok_or_else(|| {
            ApiError::new(Code::Unauthorized, "a pharmacy's bearer token is required")
        })?;
    let body = super::reservations::read_body(payload, &state).await?;
    let code = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => v["pickup_code"]
            .as_str()
            .map(|s| s.trim().to_ascii_uppercase()),
        Err(_) => {
            return Err(ApiError::new(
                Code::MalformedJson,
                "the body must be JSON {\"pickup_code\": \"...\"}",
            ))
        }
    };
    let code = code
        .filter(|c| c.len() == 10 && c.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or_else(|| {
            ApiError::field(
                Code::ValidationFailed,
                "pickup_code",
                "a pickup code is 10 letters and digits",
            )
        })?;
    let info = super::db(&state, day::pickup_info(&state.db, &code, Utc::now()))
        .await?
        .filter(|i| i.published)
        .ok_or_else(|| ApiError::new(Code::NotFound, "no such pickup code"))?;
    if info.pharmacy_id != pharmacy {
        return Err(ApiError::new(
            Code::Forbidden,
            "this code is for another pharmacy",
        ));
    }
    if let Some(at) = info.picked_up_at {
        return Err(ApiError::new(
            Code::AlreadyPickedUp,
            format!("collected already at {}", at.to_rfc3339()),
        ));
    }
    let Some(at) = super::db(&state, day::mark_picked_up(&state.db, &code, &pharmacy)).await?
    else {
        return Err(ApiError::new(Code::AlreadyPickedUp, "collected already"));
    };
    Ok(HttpResponse::Ok().json(json!({
        "pickup_code": code,
        "ticket_id": info.ticket_id,
        "masked_id": info.masked_id,
        "product_id": info.product_id,
        "draw_date": info.draw_date.to_string(),
        "picked_up_at": at.to_rfc3339(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_pharmacy_and_cannot_be_forged() {
        let t = token(b"0123456789abcdef", "GZ-TH-0001");
        assert_eq!(
            pharmacy_of(b"0123456789abcdef", &t).as_deref(),
            Some("GZ-TH-0001")
        );
        let forged = t.replace("GZ-TH-0001", "GZ-TH-0002");
        assert_eq!(pharmacy_of(b"0123456789abcdef", &forged), None);
        assert_eq!(pharmacy_of(b"another-secret-16", &t), None);
        assert_eq!(pharmacy_of(b"0123456789abcdef", "GZ-TH-0001.00"), None);
    }
}
