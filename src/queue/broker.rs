//! The broker connection: topology, a confirm-mode publishing channel, and a keeper task that
//! reconnects with backoff. Callers take the current link without waiting: when there is none
//! the publisher goes straight to the fallback stream (the circuit is open).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::options::{ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("amqp")]
    Amqp(#[from] lapin::Error),
    #[error("the broker is not connected")]
    NotConnected,
    #[error("the broker did not answer within {0:?}")]
    TimedOut(Duration),
}

/// Bounds one broker operation: a broker that stops answering gives an error, never a hang.
///
/// # Errors
/// The operation's own, or `TimedOut`.
pub async fn bounded<T>(
    timeout: Duration,
    op: impl std::future::Future<Output = Result<T, lapin::Error>>,
) -> Result<T, BrokerError> {
    tokio::time::timeout(timeout, op)
        .await
        .map_err(|_| BrokerError::TimedOut(timeout))?
        .map_err(BrokerError::from)
}

/// Connecting includes the AMQP handshake; a broker that accepts the TCP connection and says
/// nothing must not hold the caller.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A live connection with its confirm-mode channel.
pub struct Link {
    pub conn: Connection,
    pub publish: Channel,
}

impl Link {
    pub fn is_alive(&self) -> bool {
        self.conn.status().connected() && self.publish.status().connected()
    }
}

pub struct Broker {
    /// The cluster's nodes; a lost connection is replaced by one to the next node that answers.
    uris: Vec<String>,
    /// The node to try first (the last one that worked).
    next: std::sync::atomic::AtomicUsize,
    queue: String,
    dead: String,
    link: Mutex<Option<Arc<Link>>>,
}

/// `ConnectionProperties` that run lapin on the tokio runtime we are already in.
pub fn properties() -> ConnectionProperties {
    ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio)
}

/// Opens a connection to `uri`.
///
/// # Errors
/// When the broker cannot be reached or refuses the login.
pub async fn connect(uri: &str) -> Result<Connection, BrokerError> {
    bounded(CONNECT_TIMEOUT, Connection::connect(uri, properties())).await
}

/// Connects to the first node of `uris` that answers, trying them in turn from `start`;
/// returns the connection and the index of its node.
///
/// # Errors
/// The last node's error when none answers (`NotConnected` when `uris` is empty).
pub async fn connect_any(
    uris: &[String],
    start: usize,
) -> Result<(Connection, usize), BrokerError> {
    let mut last = BrokerError::NotConnected;
    for k in 0..uris.len() {
        let i = (start + k) % uris.len();
        match connect(&uris[i]).await {
            Ok(c) => return Ok((c, i)),
            Err(e) => {
                tracing::debug!(node = i, error = ?e, "broker node unreachable; trying the next");
                last = e;
            }
        }
    }
    Err(last)
}

/// Declares the reservations queue and the dead-letter queue, both quorum queues.
///
/// The reservations queue dead-letters to `dead` *at least once* (`x-dead-letter-strategy`,
/// which quorum queues offer with `x-overflow: reject-publish`): with the default at-most-once
/// a dead letter the broker loses on a failover is gone. A message delivered
/// `DELIVERY_LIMIT` times without an ack (one that crashes every persister, say) is
/// dead-lettered too instead of going round for ever.
///
/// A queue declared earlier with other arguments cannot be redeclared (RabbitMQ answers
/// `PRECONDITION_FAILED`); it is then used as it is, with an error in the log naming what to
/// change (a policy can set the same arguments on a live queue).
///
/// # Errors
/// When the broker refuses a declaration.
pub async fn declare_topology(
    conn: &Connection,
    queue: &str,
    dead: &str,
) -> Result<(), BrokerError> {
    // A channel of its own: a refused declaration closes the channel it was made on.
    let channel = conn.create_channel().await?;
    let declared = declare_on(&channel, queue, dead).await;
    let _ = channel.close(200, "declared").await;
    declared
}

async fn declare_on(channel: &Channel, queue: &str, dead: &str) -> Result<(), BrokerError> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    let mut dead_args = FieldTable::default();
    dead_args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    channel.queue_declare(dead, durable, dead_args).await?;
    let mut args = FieldTable::default();
    for (k, v) in [
        ("x-queue-type", "quorum"),
        ("x-dead-letter-exchange", ""),
        ("x-dead-letter-routing-key", dead),
        ("x-dead-letter-strategy", "at-least-once"),
        ("x-overflow", "reject-publish"),
    ] {
        args.insert(k.into(), AMQPValue::LongString(v.into()));
    }
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(DELIVERY_LIMIT),
    );
    match channel.queue_declare(queue, durable, args).await {
        Ok(_) => Ok(()),
        Err(lapin::Error::ProtocolError(e)) if e.get_id() == 406 => {
            tracing::error!(
                queue,
                error = %e,
                "the reservations queue exists with older arguments; using it as it is. Set \
                 x-dead-letter-strategy=at-least-once, x-overflow=reject-publish and a delivery \
                 limit on it with a policy, or recreate it once it is empty"
            );
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Deliveries of one message without an ack before it is dead-lettered.
pub const DELIVERY_LIMIT: i64 = 20;

/// Messages waiting in `queue` (a passive declare on a throwaway channel, since a failed
/// passive declare closes its channel).
///
/// # Errors
/// When the broker cannot be asked.
pub async fn queue_depth(conn: &Connection, queue: &str) -> Result<u32, BrokerError> {
    let ask = async {
        let ch = conn.create_channel().await?;
        let q = ch
            .queue_declare(
                queue,
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let _ = ch.close(200, "done").await;
        Ok(q.message_count())
    };
    bounded(Duration::from_secs(5), ask).await
}

impl Broker {
    /// A broker of one or more nodes (a RabbitMQ cluster; the quorum queue is replicated on
    /// them).
    pub fn new(uris: &[String], queue: &str, dead: &str) -> Arc<Self> {
        Arc::new(Self {
            uris: uris.to_vec(),
            next: std::sync::atomic::AtomicUsize::new(0),
            queue: queue.into(),
            dead: dead.into(),
            link: Mutex::new(None),
        })
    }

    pub fn queue(&self) -> &str {
        &self.queue
    }

    pub fn dead_queue(&self) -> &str {
        &self.dead
    }

    /// The current link if it is alive.
    pub fn current(&self) -> Option<Arc<Link>> {
        let guard = self.link.lock().ok()?;
        guard.as_ref().filter(|l| l.is_alive()).cloned()
    }

    /// Forgets a link that failed a publish, so the next caller does not wait on it; the
    /// keeper tries the next node first.
    pub fn invalidate(&self) {
        if let Ok(mut guard) = self.link.lock() {
            if guard.take().is_some() && self.uris.len() > 1 {
                let n = self.uris.len();
                let _ = self.next.fetch_update(
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                    |i| Some((i + 1) % n),
                );
            }
        }
    }

    /// Connects, declares the topology and opens the confirm channel.
    ///
    /// # Errors
    /// When any of these steps fails.
    pub async fn connect_now(&self) -> Result<Arc<Link>, BrokerError> {
        use std::sync::atomic::Ordering;
        let (conn, node) = connect_any(&self.uris, self.next.load(Ordering::Relaxed)).await?;
        self.next.store(node, Ordering::Relaxed);
        let publish = bounded(CONNECT_TIMEOUT, conn.create_channel()).await?;
        declare_topology(&conn, &self.queue, &self.dead).await?;
        bounded(
            CONNECT_TIMEOUT,
            publish.confirm_select(ConfirmSelectOptions::default()),
        )
        .await?;
        let link = Arc::new(Link { conn, publish });
        if let Ok(mut guard) = self.link.lock() {
            *guard = Some(link.clone());
        }
        Ok(link)
    }

    /// Keeps a link up until `shutdown` flips: checks it every 100 ms and reconnects with
    /// exponential backoff (100 ms to 5 s) when it is gone.
    pub fn spawn_keeper(
        self: &Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                if *shutdown.borrow() {
                    break;
                }
                if me.current().is_none() {
                    match me.connect_now().await {
                        Ok(_) => {
                            tracing::info!(queue = %me.queue, "broker connected");
                            backoff = Duration::from_millis(100);
                        }
                        Err(e) => {
                            tracing::warn!(error = ?e, retry_in = ?backoff, "broker unreachable");
                            tokio::select! {
                                _ = tokio::time::sleep(backoff) => {}
                                _ = shutdown.changed() => {}
                            }
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                            continue;
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = shutdown.changed() => {}
                }
            }
            if let Some(link) = me.current() {
                let _ = link.conn.close(200, "shutdown").await;
            }
        })
    }
}
