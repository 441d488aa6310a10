//! Sending a one-time phone code: the city's SMS gateway behind an HTTP webhook, or, in
//! development, the console (the log). Which one is configuration (`sms_webhook_url`).
//!
//! The webhook gets `POST <sms_webhook_url>` with `{"phone", "code", "ttl_secs"}` as JSON (and
//! `Authorization: Bearer <sms_webhook_token>` when set); any 2xx means the gateway took it.
//! A request never waits on it longer than `sms_webhook_timeout_ms`.

use std::time::Duration;

use crate::config::{ConfigError, Settings};
use crate::domain::Phone;

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("the SMS gateway could not be reached")]
    Request(#[from] reqwest::Error),
    #[error("the SMS gateway answered {0}")]
    Refused(reqwest::StatusCode),
    #[error("the SMS gateway did not answer within {0:?}")]
    Timeout(Duration),
}

/// Where codes go.
#[derive(Clone)]
pub enum Sender {
    /// Prints the code to the log: development only (`Settings::check_phone_codes`).
    Console,
    Webhook {
        client: reqwest::Client,
        url: String,
        token: Option<String>,
        timeout: Duration,
    },
}

impl Sender {
    /// The sender these settings name: the webhook when `sms_webhook_url` is set, else the
    /// console in development, else none (codes cannot be sent).
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, ConfigError> {
        if settings.sms_webhook_url.is_empty() {
            return Ok(settings.is_development().then_some(Sender::Console));
        }
        let timeout = Duration::from_millis(settings.sms_webhook_timeout_ms);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::Invalid("sms_webhook_url", e.to_string()))?;
        let token = Some(settings.sms_webhook_token.expose())
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        Ok(Some(Sender::Webhook {
            client,
            url: settings.sms_webhook_url.clone(),
            token,
            timeout,
        }))
    }

    /// Sends `code` to `phone`, valid for `ttl_secs`.
    ///
    /// # Errors
    /// When the gateway cannot be reached, refuses, or does not answer in time.
    pub async fn send(&self, phone: &Phone, code: &str, ttl_secs: u64) -> Result<(), SmsError> {
        match self {
            Sender::Console => {
                // The one place a code is ever written down: a developer's terminal.
                tracing::warn!(
                    target: "maskdraw::sms::console",
                    phone = ?phone,
                    code,
                    ttl_secs,
                    "phone code (console sender: development only)"
                );
                Ok(())
            }
            Sender::Webhook {
                client,
                url,
                token,
                timeout,
            } => {
                let mut req = client.post(url).json(&serde_json::json!({
                    "phone": phone.as_str(),
                    "code": code,
                    "ttl_secs": ttl_secs,
                }));
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                // reqwest's own timeout covers the whole exchange; this one also bounds
                // whatever it does not (name resolution).
                let resp = tokio::time::timeout(*timeout, req.send())
                    .await
                    .map_err(|_| SmsError::Timeout(*timeout))??;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(SmsError::Refused(resp.status()))
                }
            }
        }
    }
}
