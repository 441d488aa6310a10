//! The intake's receipts (lottery/SPEC.md §16): what a 202 promises, signed by the intake key.
//!
//! The handler states the promise ([`receipt_for`]: the ticket, its pool, its times and the
//! first draw it is guaranteed to enter); the publisher signs every group-commit batch once
//! (`lottery::receipt::sign_batch`, an audit path per receipt) after the batch is durable, and
//! each request answers with its own receipt file. The formats and the signing are the
//! `lottery` crate's; this module adds the clock and the city's calendar, which it has not.

use chrono::{DateTime, Days, NaiveDate, Utc};

use crate::config::Settings;
use crate::day::{self, DayError};
use crate::queue::ReservationEvent;

/// The intake's key pair, as the server holds it, with the calendar its receipts need.
pub struct IntakeKey {
    pub key: ed25519_dalek::SigningKey,
    /// `intake.pub`: 64 hex and LF, served at `/snapshots/intake.pub`.
    pub public_file: String,
    /// The last first-draw date stated, with the span of merge times it holds for.
    pub first_draws: FirstDraws,
}

impl IntakeKey {
    pub fn new(key: ed25519_dalek::SigningKey) -> Self {
        let public_file = lottery::sign::public_key_file(&key.verifying_key());
        Self {
            key,
            public_file,
            first_draws: FirstDraws::default(),
        }
    }
}

/// [`first_draw`] without the calendar work for every reservation: every merge time between
/// two consecutive cutoffs has the same first draw, so the last answer is kept with its span
/// `[cutoff of the day before, cutoff of that date)` and reused while acceptances fall in it
/// (a day's worth of reservations, under one set of settings).
#[derive(Default)]
pub struct FirstDraws {
    last: std::sync::RwLock<Option<Span>>,
}

/// Merge times from `.0` (inclusive) to `.1` (exclusive) have the first draw `.2`.
type Span = (DateTime<Utc>, DateTime<Utc>, NaiveDate);

impl FirstDraws {
    /// The same answer as [`first_draw`].
    ///
    /// # Errors
    /// As [`first_draw`].
    pub fn get(&self, settings: &Settings, accepted: DateTime<Utc>) -> Result<NaiveDate, DayError> {
        let merged = merged(settings, accepted);
        if let Ok(last) = self.last.read() {
            if let Some((from, to, date)) = *last {
                if from <= merged && merged < to {
                    return Ok(date);
                }
            }
        }
        let date = first_draw(settings, accepted)?;
        // The first date whose cutoff follows `merged`, so the day before's cutoff does not.
        let from = date
            .pred_opt()
            .map(|d| day::cutoff(settings, d))
            .transpose()?;
        if let (Some(from), Ok(mut last)) = (from, self.last.write()) {
            *last = Some((from, day::cutoff(settings, date)?, date));
        }
        Ok(date)
    }
}

fn merged(settings: &Settings, accepted: DateTime<Utc>) -> DateTime<Utc> {
    accepted + chrono::Duration::seconds(i64::try_from(settings.max_merge_delay_secs).unwrap_or(0))
}

/// The first draw date a reservation accepted at `accepted` is guaranteed to enter: the first
/// date whose cutoff is after `accepted` plus `max_merge_delay_secs` (by then it is in
/// PostgreSQL, and the seal takes every ticket accepted before the cutoff).
///
/// # Errors
/// When the zone or cutoff is misconfigured, or a cutoff falls in a DST gap.
pub fn first_draw(settings: &Settings, accepted: DateTime<Utc>) -> Result<NaiveDate, DayError> {
    let merged = merged(settings, accepted);
    let local = merged.with_timezone(&settings.tz()?).date_naive();
    // The cutoff of `local` is on the day before, so before `merged`: the answer is `local + 1`
    // or, past that day's cutoff, `local + 2`.
    for ahead in 1..=2 {
        let date = local
            .checked_add_days(Days::new(ahead))
            .ok_or_else(|| DayError::Refused("date out of range".into()))?;
        if day::cutoff(settings, date)? > merged {
            return Ok(date);
        }
    }
    Err(DayError::Refused(format!(
        "no cutoff after {merged} within two days (cutoff_time {})",
        settings.cutoff_time
    )))
}

/// Why a receipt could not be stated.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error("{field} {value:?}: {why}")]
    Field {
        field: &'static str,
        value: String,
        why: &'static str,
    },
    #[error(transparent)]
    Day(#[from] DayError),
}

fn field<T>(
    field: &'static str,
    value: &str,
    parse: impl Fn(&[u8]) -> Result<T, &'static str>,
) -> Result<T, ReceiptError> {
    parse(value.as_bytes()).map_err(|why| ReceiptError::Field {
        field,
        value: value.to_string(),
        why,
    })
}

fn millis(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

/// The promise about one accepted reservation, under the settings of now (its first draw
/// from `first_draws`).
///
/// # Errors
/// When a field does not fit the receipt's grammar or the calendar is misconfigured.
pub fn receipt_for(
    settings: &Settings,
    first_draws: &FirstDraws,
    event: &ReservationEvent,
) -> Result<lottery::receipt::Receipt, ReceiptError> {
    use lottery::snapshot::{Ident, PersonTag, TicketId};
    Ok(lottery::receipt::Receipt {
        ticket_id: field("ticket_id", &event.ticket_id, TicketId::parse)?,
        person_tag: field("person_tag", &event.person_tag, PersonTag::parse)?,
        pharmacy_id: field("pharmacy_id", &event.pharmacy_id, Ident::parse)?,
        product_id: field("product_id", &event.product_id, Ident::parse)?,
        flexible: event.flexible,
        accepted_ms: millis(event.accepted_at),
        valid_until_ms: millis(event.valid_until),
        first_draw: first_draws.get(settings, event.accepted_at)?.to_string(),
        cooldown_days: settings.cooldown_days,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_first_draw_is_the_first_whose_cutoff_follows_acceptance_and_the_merge_delay() {
        // Shanghai, cutoff 22:00 (14:00 UTC), an hour's delay.
        let s = Settings::default();
        // 12:00 UTC + 1 h = 13:00 UTC, before 14:00 UTC: tomorrow's draw.
        assert_eq!(
            first_draw(&s, at("2026-11-23T12:00:00Z"))
                .unwrap()
                .to_string(),
            "2026-11-24"
        );
        // 13:00 UTC + 1 h is the cutoff itself: not after it, so the day after.
        assert_eq!(
            first_draw(&s, at("2026-11-23T13:00:00Z"))
                .unwrap()
                .to_string(),
            "2026-11-25"
        );
        // 15:30 UTC is 23:30 local: past tonight's cutoff already.
        assert_eq!(
            first_draw(&s, at("2026-11-23T15:30:00Z"))
                .unwrap()
                .to_string(),
            "2026-11-25"
        );
        // 16:30 UTC is 00:30 local on the 24th: the 25th's cutoff is that evening.
        assert_eq!(
            first_draw(&s, at("2026-11-23T16:30:00Z"))
                .unwrap()
                .to_string(),
            "2026-11-25"
        );
        let none = Settings {
            max_merge_delay_secs: 0,
            ..Settings::default()
        };
        assert_eq!(
            first_draw(&none, at("2026-11-23T13:59:59Z"))
                .unwrap()
                .to_string(),
            "2026-11-24"
        );
    }

    #[test]
    fn the_kept_first_draw_is_first_draw_at_every_instant_around_the_cutoffs() {
        let s = Settings::default();
        let kept = FirstDraws::default();
        // Across three days, minute by minute, and a millisecond each side of every cutoff
        // (22:00 local, 14:00 UTC, less the hour's delay: 13:00 UTC).
        let start = at("2026-11-23T00:00:00Z");
        let mut instants: Vec<DateTime<Utc>> = (0..3 * 24 * 60)
            .map(|m| start + chrono::Duration::minutes(m))
            .collect();
        for d in 0..3 {
            let c = at("2026-11-23T13:00:00Z") + chrono::Duration::days(d);
            for ms in [-1, 0, 1] {
                instants.push(c + chrono::Duration::milliseconds(ms));
            }
        }
        // Out of order too: the span must be checked, not assumed to move forward.
        instants.reverse();
        instants.rotate_left(1000);
        for t in instants {
            assert_eq!(
                kept.get(&s, t).unwrap(),
                first_draw(&s, t).unwrap(),
                "at {t}"
            );
        }
    }

    #[test]
    fn a_receipt_states_the_events_fields_and_signs_and_verifies() {
        let s = Settings::default();
        let event = ReservationEvent {
            ticket_id: "01JD0000000000000000000000".into(),
            person_tag: "0123456789abcdef0123456789abcdef".into(),
            phone_tag: "0123456789abcdef0123456789abcdef".into(),
            masked_id: "4401**********123X".into(),
            pharmacy_id: "GZ-TH-0001".into(),
            product_id: "KN95".into(),
            flexible: true,
            accepted_at: at("2026-11-23T12:00:00.123Z"),
            valid_until: at("2026-12-03T12:00:00.123Z"),
        };
        let r = receipt_for(&s, &FirstDraws::default(), &event).unwrap();
        let text = String::from_utf8(r.statement()).unwrap();
        for line in [
            "ticket:01JD0000000000000000000000\n",
            "pharmacy:GZ-TH-0001\n",
            "flexible:1\n",
            "accepted:2026-11-23T12:00:00.123Z\n",
            "valid_until:2026-12-03T12:00:00.123Z\n",
            "first_draw:2026-11-24\n",
            "cooldown_days:3\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let signed = lottery::receipt::sign_batch(&key, &[r.clone(), r]).unwrap();
        for one in &signed {
            let parsed = lottery::receipt::SignedReceipt::parse(&one.to_bytes()).unwrap();
            parsed.verify(&key.verifying_key()).unwrap();
        }
        let bad = ReservationEvent {
            pharmacy_id: "gz lower".into(),
            ..event
        };
        assert!(receipt_for(&s, &FirstDraws::default(), &bad)
            .unwrap_err()
            .to_string()
            .contains("pharmacy_id"));
    }
}
