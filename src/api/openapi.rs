//! `GET /api/openapi.json`: the public API described for client authors (OpenAPI 3.0), exact
//! enough that generated requests (schemathesis, `tests/api/conformance.rs`) find no answer it
//! does not state: every pattern, length and enum the server enforces, every status each call
//! can answer, the error body of the one table (`error.rs`).
//!
//! What a pattern cannot say is a named format: `gb11643` is an identity number whose birth
//! date is a real date and whose last character is the ISO 7064 MOD 11-2 check character
//! (`tests/schemathesis/hooks.py` teaches schemathesis to generate it).
//! The catalog's pharmacy and product ids are enums, read from the catalog the server uses.

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::error::Code;
use super::AppState;
use crate::catalog::Catalog;

/// GB 11643-1999: region (first digit 1–8), birth date (1900–2100), sequence, check character.
pub const ID_NUMBER_PATTERN: &str = "^[1-8][0-9]{5}(19[0-9]{2}|20[0-9]{2}|2100)(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]$";
/// `domain::Phone`: leading `+`s, an optional `86`, spaces and dashes anywhere, then a mainland
/// mobile number (`1[3-9]` and nine digits).
pub const PHONE_PATTERN: &str = "^[+]*[ -]*(8[ -]*6[ -]*)?1[ -]*[3-9]([ -]*[0-9]){9}[ -]*$";
/// `domain::PersonName`: 1 to 30 characters, none a control character (Unicode Cc).
pub const NAME_PATTERN: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]{1,30}$";
/// A ULID as `domain::TicketId` takes it: upper-case Crockford base32, first digit 0–7.
pub const TICKET_PATTERN: &str = "^[0-7][0-9A-HJKMNP-TV-Z]{25}$";
pub const DATE_PATTERN: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$";

fn error_ref() -> Value {
    json!({"description": "an error from the table: see the code",
           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn json_body(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The responses of one operation: the success given, and each error status listed.
fn responses(ok: (&str, Value), errors: &[u16]) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(ok.0.to_string(), ok.1);
    for s in errors {
        m.insert(s.to_string(), error_ref());
    }
    Value::Object(m)
}

fn ticket_param() -> Value {
    json!({"name": "ticket_id", "in": "path", "required": true,
           "schema": {"type": "string", "pattern": TICKET_PATTERN}})
}

fn request(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

pub fn document(catalog: &Catalog) -> Value {
    let codes: Vec<&str> = Code::ALL.iter().map(|c| c.entry().0).collect();
    let pharmacies: Vec<&str> = catalog.pharmacies.keys().map(String::as_str).collect();
    let products: Vec<&str> = catalog.products.keys().map(String::as_str).collect();
    // The format alone, without `pattern`: generators that see a pattern draw from it and
    // miss the check character; the pattern is in the description for people.
    let id_number = json!({"type": "string", "format": "gb11643", "minLength": 18, "maxLength": 18,
        "description": format!("PRC resident identity number (GB 11643-1999): {ID_NUMBER_PATTERN} \
            with a real birth date and the ISO 7064 MOD 11-2 check character; `x` reads as `X`")});
    let phone = json!({"type": "string", "pattern": PHONE_PATTERN,
        "description": "11-digit mainland mobile number; a `+86`/`86` prefix, spaces and dashes are dropped"});
    let text = |d: &str| json!({"type": "string", "description": d});
    json!({
        "openapi": "3.0.3",
        "info": {"title": "maskdraw", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Reserve scarce masks; check status, results and proofs of the daily lottery. Every error is JSON {code, message, field} from one table; a method a path does not take is 405 method_not_allowed with Allow."},
        "paths": {
            "/api/v1/reservations": {"post": {
                "operationId": "createReservation",
                "summary": "Reserve (one active reservation per person)",
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": false,
                                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}}],
                "requestBody": request(schema_ref("NewReservation")),
                "responses": {
                    "202": {"description": "durable: confirmed by the broker or the fallback stream",
                            "content": {"application/json": {"schema": schema_ref("Accepted")}},
                            "links": {"GetTicket": {"operationId": "getTicket",
                                                    "parameters": {"ticket_id": "$response.body#/ticket_id"}}}},
                    "400": error_ref(), "403": error_ref(), "409": error_ref(), "413": error_ref(),
                    "415": error_ref(), "429": error_ref(), "503": error_ref()
                }}},
            "/api/v1/reservations/{ticket_id}": {"get": {
                "operationId": "getTicket",
                "summary": "A ticket's status and its published draws",
                "parameters": [ticket_param(),
                               {"name": "X-Holder-Secret", "in": "header", "required": false,
                                "schema": {"type": "string"},
                                "description": "the holder_secret of the 202: shows the pickup code (anything else is ignored)"}],
                "responses": responses(("200", json_body("the ticket", schema_ref("Ticket"))), &[400, 404, 429, 503])}},
            "/api/v1/reservations/lookup": {"post": {
                "operationId": "lookupTickets",
                "summary": "A person's tickets, pickup codes included",
                "requestBody": request(json!({
                    "type": "object", "required": ["id_number", "phone"],
                    "properties": {"id_number": id_number, "phone": phone}})),
                "responses": responses(("200", json_body("the person's tickets", json!({
                    "type": "object", "required": ["tickets"],
                    "properties": {"tickets": {"type": "array", "items": schema_ref("Ticket")}}}))),
                    &[400, 413, 415, 429, 503])}},
            "/api/v1/reservations/{ticket_id}/proof": {"get": {
                "operationId": "getProof",
                "summary": "Inclusion proof, rolls and cutoffs of a ticket in a published draw",
                "parameters": [ticket_param(),
                               {"name": "date", "in": "query", "required": true,
                                "schema": {"type": "string", "format": "date", "pattern": DATE_PATTERN}}],
                "responses": responses(("200", json_body("the same fields as `notary proof`", json!({"type": "object"}))),
                    &[400, 404, 429, 503])}},
            "/api/v1/phone-codes": {"post": {
                "operationId": "sendPhoneCode",
                "summary": "Send a one-time code to a phone; a reservation for that phone carries it (`phone_code`)",
                "requestBody": request(json!({
                    "type": "object", "required": ["phone"], "properties": {"phone": phone}})),
                "responses": responses(("202", json_body("handed to the SMS gateway", json!({
                    "type": "object", "required": ["expires_in_secs", "resend_in_secs"],
                    "properties": {"expires_in_secs": {"type": "integer", "minimum": 1},
                                   "resend_in_secs": {"type": "integer", "minimum": 0}}}))),
                    &[400, 404, 413, 415, 429, 503])}},
            "/api/v1/pickups": {"post": {
                "operationId": "collectPickup",
                "summary": "Mark a pickup code collected (a pharmacy's bearer token)",
                "security": [{"pharmacyToken": []}],
                "requestBody": request(json!({
                    "type": "object", "required": ["pickup_code"],
                    "properties": {"pickup_code": {"type": "string", "pattern": "^[A-Za-z0-9]{10}$"}}})),
                "responses": responses(("200", json_body("collected", schema_ref("Pickup"))),
                    &[400, 401, 403, 404, 409, 413, 415, 429, 503])}},
            "/api/v1/draws": {"get": {
                "operationId": "listDraws",
                "summary": "The published days, newest first",
                "responses": responses(("200", json_body("the published draws", json!({
                    "type": "object", "required": ["draws"],
                    "properties": {"draws": {"type": "array", "items": {
                        "type": "object", "required": ["date", "entrants", "winners", "publish_at"],
                        "properties": {"date": {"type": "string", "format": "date"},
                                       "entrants": {"type": "integer", "minimum": 0},
                                       "winners": {"type": "integer", "minimum": 0},
                                       "publish_at": {"type": "string", "format": "date-time"}}}}}}))),
                    &[429])}},
            "/snapshots/authority.pub": {"get": {
                "operationId": "getAuthorityKey",
                "summary": "The authority's Ed25519 public key (64 hex and LF)",
                "responses": {"200": {"description": "the key",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}},
                              "404": error_ref(), "429": error_ref()}}},
            "/snapshots/intake.pub": {"get": {
                "operationId": "getIntakeKey",
                "summary": "The intake's Ed25519 public key, which signs the receipts (64 hex and LF)",
                "responses": {"200": {"description": "the key",
                                      "content": {"text/plain": {"schema": {"type": "string", "pattern": "^[0-9a-f]{64}\n$"}}}},
                              "429": error_ref()}}},
            "/snapshots/{date}/{file}": {"get": {
                "operationId": "getSnapshotFile",
                "summary": "A published day's file, immutable",
                "parameters": [{"name": "date", "in": "path", "required": true,
                                "schema": {"type": "string", "format": "date", "pattern": DATE_PATTERN}},
                               {"name": "file", "in": "path", "required": true,
                                "schema": {"type": "string", "pattern": "^[a-z0-9_-][a-z0-9._-]{0,63}$"}}],
                "responses": {"200": {"description": "the file",
                                      "content": {"text/plain": {"schema": {"type": "string"}},
                                                  "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                              "400": error_ref(), "404": error_ref(), "429": error_ref()}}},
            "/healthz": {"get": {
                "operationId": "healthz",
                "responses": {"200": json_body("alive", json!({"type": "object", "required": ["status"],
                    "properties": {"status": {"type": "string", "enum": ["ok"]}}}))}}},
            "/readyz": {"get": {
                "operationId": "readyz",
                "summary": "Readiness for load balancers (the details are on the operator listener)",
                "responses": {
                    "200": json_body("ready", schema_ref("Readiness")),
                    "503": json_body("not ready", schema_ref("Readiness"))}}}
        },
        "components": {
            "securitySchemes": {"pharmacyToken": {"type": "http", "scheme": "bearer",
                "description": "`maskdraw token --pharmacy ID`: <pharmacy>.<serial>.<mac>"}},
            "schemas": {
            "NewReservation": {"type": "object",
                "required": ["id_number", "name", "phone", "pharmacy_id", "product_id"],
                "properties": {
                    "id_number": id_number,
                    "name": {"type": "string", "pattern": NAME_PATTERN,
                             "description": "1 to 30 characters, no control character; checked and dropped"},
                    "phone": phone,
                    "pharmacy_id": {"type": "string", "enum": pharmacies},
                    "product_id": {"type": "string", "enum": products},
                    "flexible": {"type": "boolean", "nullable": true, "default": false},
                    "phone_code": {"type": "string", "nullable": true, "pattern": "^([0-9]{6})?$",
                                   "description": "the code sent to `phone` (POST /api/v1/phone-codes): required outside development; empty or null means none"}}},
            "Accepted": {"type": "object", "required": ["ticket_id", "status", "valid_until", "holder_secret"],
                "properties": {
                    "ticket_id": {"type": "string", "pattern": TICKET_PATTERN},
                    "status": {"type": "string", "enum": ["accepted", "registered", "won", "expired", "rejected"]},
                    "valid_until": text("RFC 3339 time (empty only when a replayed ticket's time is not known yet)"),
                    "holder_secret": {"type": "string", "pattern": "^[0-9a-f]{32}$",
                                      "description": "send back as X-Holder-Secret to see the pickup code"},
                    "receipt": {"type": "string", "pattern": "^maskdraw-receipt-v1\n",
                                "description": "the intake's signed receipt file (lottery/SPEC.md §16), checked with /snapshots/intake.pub; the same on a retry with the same Idempotency-Key"}}},
            "Ticket": {"type": "object",
                "required": ["ticket_id", "status", "pharmacy_id", "product_id", "flexible", "accepted_at", "valid_until", "draws"],
                "properties": {
                    "ticket_id": {"type": "string", "pattern": TICKET_PATTERN},
                    "status": {"type": "string", "enum": ["accepted", "registered", "won", "expired", "rejected"]},
                    "pharmacy_id": {"type": "string"}, "product_id": {"type": "string"}, "flexible": {"type": "boolean"},
                    "accepted_at": text("RFC 3339 time"), "valid_until": text("RFC 3339 time"),
                    "draws": {"type": "array", "items": {"type": "object", "required": ["date", "outcome"],
                        "properties": {
                            "date": {"type": "string", "format": "date"},
                            "outcome": {"type": "string", "enum": ["won", "lost"]},
                            "pharmacy_id": {"type": "string"}, "product_id": {"type": "string"},
                            "pickup_code": {"type": "string", "description": "only to the ticket's holder"},
                            "roll": {"type": "integer", "enum": [1, 2]}}}}}},
            "Pickup": {"type": "object",
                "required": ["pickup_code", "ticket_id", "masked_id", "product_id", "draw_date", "picked_up_at"],
                "properties": {
                    "pickup_code": {"type": "string"}, "ticket_id": {"type": "string", "pattern": TICKET_PATTERN},
                    "masked_id": {"type": "string"}, "product_id": {"type": "string"},
                    "draw_date": {"type": "string", "format": "date"}, "picked_up_at": {"type": "string", "format": "date-time"}}},
            "Readiness": {"type": "object", "required": ["status"],
                "properties": {"status": {"type": "string", "enum": ["ready", "unavailable"]}}},
            "Error": {"type": "object", "required": ["code", "message", "field"], "properties": {
                "code": {"type": "string", "enum": codes}, "message": {"type": "string"},
                "field": {"type": "string", "nullable": true}}}
        }}
    })
}

pub async fn openapi(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(document(&state.catalog))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patterns_say_what_the_domain_parsers_take() {
        // Regexes as the document states them, checked against the parsers on samples both
        // ways (the generated requests of tests/api/conformance.rs check many more).
        let matches = |pattern: &str, s: &str| {
            // The patterns use only ECMA-262 syntax that the regex crate reads the same way.
            regex_lite::Regex::new(pattern).unwrap().is_match(s)
        };
        use crate::domain::{IdNumber, PersonName, Phone, TicketId};
        for s in [
            "11010519491231002X",
            "11010519491231002x",
            "440106199502235544",
        ] {
            assert!(
                matches(ID_NUMBER_PATTERN, s) && IdNumber::parse(s).is_ok(),
                "{s}"
            );
        }
        for s in [
            "01010519491231002X",
            " 11010519491231002X",
            "1101051949123100",
        ] {
            assert!(
                !matches(ID_NUMBER_PATTERN, s) && IdNumber::parse(s).is_err(),
                "{s}"
            );
        }
        for s in [
            "13800138000",
            "+86 138-0013-8000",
            "8613800138000",
            "++ 13800138000 ",
            "1-3-8-0-0-1-3-8-0-0-0",
        ] {
            assert!(matches(PHONE_PATTERN, s) && Phone::parse(s).is_ok(), "{s}");
        }
        for s in [
            "12800138000",
            "1380013800",
            "+ +13800138000",
            " +13800138000",
            "13800138000\t",
            "868613800138000",
        ] {
            assert!(
                !matches(PHONE_PATTERN, s) && Phone::parse(s).is_err(),
                "{s}"
            );
        }
        for s in ["陈小明", " ", "a b", &"名".repeat(30)] {
            assert!(
                matches(NAME_PATTERN, s) && PersonName::parse(s).is_ok(),
                "{s:?}"
            );
        }
        for s in ["", "a\u{0}b", "x\u{85}", &"名".repeat(31)] {
            assert!(
                !matches(NAME_PATTERN, s) && PersonName::parse(s).is_err(),
                "{s:?}"
            );
        }
        for s in ["01KARDKCX650GXHDPXBDD1JSYG", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"] {
            assert!(
                matches(TICKET_PATTERN, s) && TicketId::parse(s).is_ok(),
                "{s}"
            );
        }
        for s in [
            "8ZZZZZZZZZZZZZZZZZZZZZZZZZ",
            "01karDKCX650GXHDPXBDD1JSYG",
            "01KARDKCX650GXHDPXBDD1JSYU",
        ] {
            assert!(
                !matches(TICKET_PATTERN, s) && TicketId::parse(s).is_err(),
                "{s}"
            );
        }
    }
}
