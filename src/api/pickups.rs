//! `POST /api/v1/pickups`: pharmacy staff mark a winner's pickup code collected.
//!
//! A pharmacy's bearer token is `<pharmacy_id>.<serial>.<mac>`, the mac being
//! `HMAC-SHA256(token_secret, "maskdraw-pharmacy-token-v1:" ‖ pharmacy ‖ "." ‖ serial)` (first
//! 16 bytes, hex). `maskdraw token --pharmacy ID` records a new serial and prints its token;
//! `--revoke [--serial N]` revokes. A token counts only while its serial is recorded for that
//! pharmacy and not revoked. Its key is not `hmac_secret`: rotating `token_secret` changes
//! every token and no person tag.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use hmac::{Hmac, Mac};
use sea_orm::DatabaseConnection;
use serde_json::{json, Value};
use sha2::Sha256;

use super::error::{ApiError, Code};
use super::reservations::{read_body, require_json};
use super::{client, AppState};
use crate::admission::Call;
use crate::store::{day, tokens};

fn mac(secret: &[u8], pharmacy: &str, serial: i64) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    m.update(b"maskdraw-pharmacy-token-v1:");
    m.update(pharmacy.as_bytes());
    m.update(b".");
    m.update(serial.to_string().as_bytes());
    m
}

/// The bearer token of `pharmacy`'s token number `serial`.
pub fn token(secret: &[u8], pharmacy: &str, serial: i64) -> String {
    format!(
        "{pharmacy}.{serial}.{}",
        hex::encode(&mac(secret, pharmacy, serial).finalize().into_bytes()[..16])
    )
}

/// The pharmacy and serial a token speaks for, its mac checked in constant time (whether the
/// serial is live is the database's to say).
pub fn parse_token(secret: &[u8], token: &str) -> Option<(String, i64)> {
    let (rest, tag) = token.rsplit_once('.')?;
    let (pharmacy, serial) = rest.rsplit_once('.')?;
    // One spelling per serial: no sign, no leading zeros.
    if serial.is_empty() || serial.starts_with('0') || !serial.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let serial: i64 = serial.parse().ok()?;
    let tag = hex::decode(tag).ok()?;
    if tag.len() != 16 {
        return None;
    }
    mac(secret, pharmacy, serial)
        .verify_truncated_left(&tag)
        .ok()?;
    Some((pharmacy.to_string(), serial))
}

/// Records a new token of `pharmacy` and returns it (`maskdraw token`).
///
/// # Errors
/// When the database fails.
pub async fn issue_token(
    db: &DatabaseConnection,
    secret: &[u8],
    pharmacy: &str,
) -> Result<String, sea_orm::DbErr> {
    let serial = tokens::issue(db, pharmacy).await?;
    Ok(token(secret, pharmacy, serial))
}

pub async fn collect(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.admission.check(Call::Pickup, client(&req, &state))?;
    let secret = state.settings.token_secret.expose().as_bytes();
    let unauthorized =
        || ApiError::new(Code::Unauthorized, "a pharmacy's bearer token is required");
    let (pharmacy, serial) = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| parse_token(secret, t.trim()))
        .filter(|(p, _)| state.catalog.pharmacy(p).is_some())
        .ok_or_else(unauthorized)?;
    if !tokens::is_live(&state.db, &pharmacy, serial).await? {
        return Err(ApiError::new(
            Code::Unauthorized,
            "this pharmacy token was revoked or never issued",
        ));
    }
    require_json(&req)?;
    let body = read_body(payload, &state).await?;
    let code = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => v["pickup_code"].as_str().map(str::to_ascii_uppercase),
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

    const KEY: &[u8] = b"0123456789abcdef";

    #[test]
    fn a_token_names_its_pharmacy_and_serial_and_cannot_be_forged() {
        let t = token(KEY, "GZ-TH-0001", 7);
        assert!(t.starts_with("GZ-TH-0001.7."), "{t}");
        assert_eq!(parse_token(KEY, &t), Some(("GZ-TH-0001".to_string(), 7)));
        let other_pharmacy = t.replace("GZ-TH-0001", "GZ-TH-0002");
        assert_eq!(parse_token(KEY, &other_pharmacy), None);
        let other_serial = t.replace(".7.", ".8.");
        assert_eq!(parse_token(KEY, &other_serial), None);
        let padded = t.replace(".7.", ".07.");
        assert_eq!(parse_token(KEY, &padded), None);
        assert_eq!(parse_token(b"another-secret-16", &t), None);
        assert_eq!(parse_token(KEY, "GZ-TH-0001.7.00"), None);
        assert_eq!(parse_token(KEY, "GZ-TH-0001"), None);
    }

    #[test]
    fn the_old_token_of_hmac_secret_does_not_parse() {
        // <pharmacy>.<HMAC(key, "pharmacy:" ‖ id)[..16]>, as tokens were made before.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(KEY).unwrap();
        m.update(b"pharmacy:GZ-TH-0001");
        let old = format!(
            "GZ-TH-0001.{}",
            hex::encode(&m.finalize().into_bytes()[..16])
        );
        assert_eq!(parse_token(KEY, &old), None);
    }
}
