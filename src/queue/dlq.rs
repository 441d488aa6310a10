//! `maskdraw dlq list|replay`: look at the dead-letter queue and move its messages back.

use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, ConfirmSelectOptions};

use super::broker::{connect_any, declare_topology, BrokerError, Link};
use super::message::Envelope;
use super::publisher::publish_confirmed;

/// One dead letter, as `dlq list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadLetter {
    pub bytes: usize,
    /// Reservations in it, or why it could not be read.
    pub content: String,
    pub preview: String,
}

/// Reads every dead letter without removing it (each is fetched and handed back).
///
/// # Errors
/// When the broker cannot be reached.
pub async fn list(
    uris: &[String],
    queue: &str,
    dead: &str,
) -> Result<Vec<DeadLetter>, BrokerError> {
    let (conn, _) = connect_any(uris, 0).await?;
    let ch = conn.create_channel().await?;
    declare_topology(&conn, queue, dead).await?;
    let mut held = Vec::new();
    let mut out = Vec::new();
    // Fetch all first and only then hand them back, so that none is read twice.
    while let Some(msg) = ch
        .basic_get(dead, BasicGetOptions { no_ack: false })
        .await?
    {
        let body = &msg.delivery.data;
        let content = match Envelope::parse(body) {
            Ok(env) => format!("{} reservation(s)", env.reservations.len()),
            Err(e) => format!("unreadable: {e}"),
        };
        let preview: String = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
        out.push(DeadLetter {
            bytes: body.len(),
            content,
            preview,
        });
        held.push(msg);
    }
    for msg in held {
        msg.delivery
            .nack(BasicNackOptions {
                requeue: true,
                multiple: false,
            })
            .await?;
    }
    let _ = conn.close(200, "done").await;
    Ok(out)
}

/// Moves the dead letters waiting now back to the reservations queue: publish with a confirm,
/// then ack the dead letter. Returns how many were moved.
///
/// # Errors
/// When the broker cannot be reached or refuses a publish.
pub async fn replay(uris: &[String], queue: &str, dead: &str) -> Result<usize, BrokerError> {
    let (conn, _) = connect_any(uris, 0).await?;
    let ch = conn.create_channel().await?;
    declare_topology(&conn, queue, dead).await?;
    let publish = conn.create_channel().await?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let link = Link { conn, publish };
    // Only what is there now: a message that is still poison comes straight back to the
    // dead-letter queue and must not be replayed again in the same pass.
    let waiting = super::broker::queue_depth(&link.conn, dead).await? as usize;
    let mut moved = 0;
    while moved < waiting {
        let Some(msg) = ch
            .basic_get(dead, BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        if !publish_confirmed(&link, queue, &msg.delivery.data, Duration::from_secs(10)).await {
            msg.delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    multiple: false,
                })
                .await?;
            return Err(BrokerError::NotConnected);
        }
        msg.delivery.ack(BasicAckOptions::default()).await?;
        moved += 1;
    }
    let _ = link.conn.close(200, "done").await;
    Ok(moved)
}
