//! `GET /api/openapi.json`: the API described for client authors (OpenAPI 3.0).

use actix_web::HttpResponse;
use serde_json::{json, Value};

use super::error::Code;

fn error_ref() -> Value {
    json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

pub fn document() -> Value {
    let codes: Vec<&str> = Code::ALL.iter().map(|c| c.entry().0).collect();
    let err = error_ref();
    json!({
        "openapi": "3.0.3",
        "info": {"title": "maskdraw", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Reserve scarce masks; check status, results and proofs of the daily lottery."},
        "paths": {
            "/api/v1/reservations": {"post": {
                "summary": "Reserve (one active reservation per person)",
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": false,
                                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewReservation"}}}},
                "responses": {
                    "202": {"description": "durable: confirmed by the broker or the fallback stream",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}},
                    "400": err, "403": err, "409": err, "413": err, "415": err, "429": err, "503": err
                }}},
            "/api/v1/phone-codes": {"post": {
                "summary": "Send a one-time code to a phone; a reservation for that phone carries it (`phone_code`)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["phone"],
                    "properties": {"phone": {"type": "string", "description": "11-digit mainland mobile number"}}}}}},
                "responses": {
                    "202": {"description": "sent to the SMS gateway",
                            "content": {"application/json": {"schema": {"type": "object", "properties": {
                                "expires_in_secs": {"type": "integer"}, "resend_in_secs": {"type": "integer"}}}}}},
                    "400": err, "404": err, "413": err, "415": err, "429": err, "503": err
                }}},
            "/api/v1/reservations/{ticket_id}": {"get": {
                "summary": "A ticket's status and its published draws",
                "parameters": [{"name": "ticket_id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "the ticket", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ticket"}}}},
                              "400": err, "404": err}}},
            "/api/v1/reservations/lookup": {"post": {
                "summary": "A person's tickets",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["id_number", "phone"],
                    "properties": {"id_number": {"type": "string"}, "phone": {"type": "string"}}}}}},
                "responses": {"200": {"description": "{tickets: [Ticket]}"}, "400": err}}},
            "/api/v1/reservations/{ticket_id}/proof": {"get": {
                "summary": "Inclusion proof, rolls and cutoffs of a ticket in a published draw",
                "parameters": [{"name": "ticket_id", "in": "path", "required": true, "schema": {"type": "string"}},
                               {"name": "date", "in": "query", "required": true, "schema": {"type": "string", "format": "date"}}],
                "responses": {"200": {"description": "the same fields as `notary proof`"}, "400": err, "404": err}}},
            "/api/v1/pickups": {"post": {
                "summary": "Mark a pickup code collected (pharmacy bearer token)",
                "responses": {"200": {"description": "collected"}, "401": err, "403": err, "404": err, "409": err}}},
            "/healthz": {"get": {"responses": {"200": {"description": "alive"}}}},
            "/readyz": {"get": {"responses": {"200": {"description": "ready: {\"status\": \"ready\"} (details on the operator listener)"},
                                              "503": {"description": "not ready"}}}}
        },
        "components": {"schemas": {
            "NewReservation": {"type": "object",
                "required": ["id_number", "name", "phone", "pharmacy_id", "product_id"],
                "properties": {
                    "id_number": {"type": "string", "description": "18-character PRC resident identity number"},
                    "name": {"type": "string", "maxLength": 30},
                    "phone": {"type": "string", "description": "11-digit mainland mobile number"},
                    "pharmacy_id": {"type": "string", "pattern": "^[A-Z0-9-]{1,16}$"},
                    "product_id": {"type": "string", "pattern": "^[A-Z0-9-]{1,16}$"},
                    "flexible": {"type": "boolean", "default": false},
                    "phone_code": {"type": "string", "pattern": "^[0-9]{6}$",
                                   "description": "the code sent to `phone` (POST /api/v1/phone-codes); required outside development"}}},
            "Accepted": {"type": "object", "properties": {
                "ticket_id": {"type": "string"}, "status": {"type": "string"}, "valid_until": {"type": "string", "format": "date-time"},
                "holder_secret": {"type": "string", "description": "send back as X-Holder-Secret to see the pickup code"}}},
            "Ticket": {"type": "object", "properties": {
                "ticket_id": {"type": "string"}, "status": {"type": "string", "enum": ["accepted", "registered", "won", "expired", "rejected"]},
                "pharmacy_id": {"type": "string"}, "product_id": {"type": "string"}, "flexible": {"type": "boolean"},
                "accepted_at": {"type": "string"}, "valid_until": {"type": "string"},
                "draws": {"type": "array", "items": {"type": "object"}}}},
            "Error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string", "enum": codes}, "message": {"type": "string"},
                "field": {"type": "string", "nullable": true}}}
        }}
    })
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(document())
}
