//! The published days, downloadable (DESIGN.md "Publication"): `GET /snapshots/<date>/<file>`
//! serves a sealed and drawn day's files once its results are public, `GET
//! /snapshots/authority.pub` the key they are signed with (and `/snapshots/intake.pub` the
//! key of the intake's receipts), and `GET /api/v1/draws` lists the
//! published days. Anyone can then download a day and run `notary verify` on it.
//!
//! The files never change after the draw, so they go out with an ETag and a year-long,
//! immutable cache lifetime; before publication a day's files do not exist as far as the
//! public can tell (`not_published`), since `entrants.csv` would reveal every ticket id.

use actix_files::NamedFile;
use actix_web::http::header::{CacheControl, CacheDirective, ContentType};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{NaiveDate, Utc};
use serde::Serialize;

use super::error::{ApiError, Code};
use super::{client, AppState};
use crate::admission::Call;
use crate::cache::DrawnDay;

/// The drawn day `date` if its results are public now.
///
/// # Errors
/// `not_published` when it was not drawn or its results are not public yet.
pub async fn published_day(state: &AppState, date: NaiveDate) -> Result<DrawnDay, ApiError> {
    let pubs = &state.cache.publications;
    let _ =
        tokio::time::timeout(state.settings.db_timeout(), pubs.ensure(&state.db, &[date])).await;
    pubs.day(date)
        .filter(|d| d.is_published(Utc::now()))
        .ok_or_else(|| {
            ApiError::new(
                Code::NotPublished,
                format!("the results of {date} are not published yet"),
            )
        })
}

/// A file name inside a day's directory: no path, no hidden files.
fn plain_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        })
}

/// The day's texts are UTF-8 (`text/plain`, so a browser shows them); anything else is bytes.
fn content_type(name: &str) -> ContentType {
    let text = [".csv", ".txt", ".sig", ".pub"]
        .iter()
        .any(|ext| name.ends_with(ext));
    if text {
        ContentType::plaintext()
    } else {
        ContentType::octet_stream()
    }
}

fn serve(req: &HttpRequest, file: NamedFile, name: &str, immutable: bool) -> HttpResponse {
    let cache = if immutable {
        CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(31_536_000),
            CacheDirective::Extension("immutable".into(), None),
        ])
    } else {
        CacheControl(vec![CacheDirective::Public, CacheDirective::MaxAge(300)])
    };
    let mut resp = file
        .use_etag(true)
        .use_last_modified(true)
        .set_content_type(content_type(name).0)
        .into_response(req);
    if resp.status().is_success() || resp.status().as_u16() == 304 {
        if let Ok(v) = cache.to_string().parse() {
            resp.headers_mut()
                .insert(actix_web::http::header::CACHE_CONTROL, v);
        }
    }
    resp
}

/// `GET /snapshots/{date}/{file}`.
pub async fn file(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.admission.check(Call::Proof, client(&req, &state))?;
    let (date, name) = path.into_inner();
    let date = super::parse_date(&date)
        .ok_or_else(|| ApiError::field(Code::ValidationFailed, "date", "date is YYYY-MM-DD"))?;
    if !plain_name(&name) {
        return Err(ApiError::new(Code::NotFound, "no such file"));
    }
    let day = published_day(&state, date).await?;
    let path = day.dir.join(&name);
    // Only regular files directly inside the day's directory (a symbolic link could point
    // anywhere).
    let is_file = std::fs::symlink_metadata(&path)
        .map(|m| m.file_type().is_file())
        .unwrap_or(false);
    if !is_file {
        return Err(ApiError::new(Code::NotFound, "no such file"));
    }
    let file = NamedFile::open_async(&path)
        .await
        .map_err(|_| ApiError::new(Code::NotFound, "no such file"))?;
    Ok(serve(&req, file, &name, true))
}

/// `GET /snapshots/authority.pub`: the key every seal and draw is signed with.
pub async fn authority_key(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.admission.check(Call::Proof, client(&req, &state))?;
    let path = state.settings.keys_dir.join(crate::day::keys::PUBLIC_FILE);
    let file = NamedFile::open_async(&path).await.map_err(|_| {
        ApiError::new(
            Code::NotFound,
            "the authority's public key is not published on this server",
        )
    })?;
    Ok(serve(&req, file, crate::day::keys::PUBLIC_FILE, false))
}

/// `GET /snapshots/intake.pub`: the key every receipt is signed with (lottery/SPEC.md §16).
pub async fn intake_key(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.admission.check(Call::Proof, client(&req, &state))?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(300),
        ]))
        .body(state.intake.public_file.clone()))
}

#[derive(Serialize)]
struct PublishedDraw {
    date: String,
    entrants: i64,
    winners: i64,
    publish_at: String,
}

/// `GET /api/v1/draws`: the published days, newest first.
pub async fn draws(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.admission.check(Call::Status, client(&req, &state))?;
    let list: Vec<PublishedDraw> = state
        .cache
        .publications
        .published(Utc::now())
        .into_iter()
        .map(|d| PublishedDraw {
            date: d.date.to_string(),
            entrants: d.entrants,
            winners: d.winners,
            publish_at: d.publish_at.to_rfc3339(),
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=10"))
        .json(serde_json::json!({ "draws": list })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_file_names_are_served() {
        for ok in ["seal.txt", "entrants.csv", "draw.sig", "tiles-0.bin"] {
            assert!(plain_name(ok), "{ok}");
        }
        for bad in [
            "",
            "../keys",
            ".hidden",
            "a/b",
            "Seal.txt",
            "x\0",
            &"a".repeat(65),
        ] {
            assert!(!plain_name(bad), "{bad:?}");
        }
    }
}
