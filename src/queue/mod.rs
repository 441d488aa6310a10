//! RabbitMQ: the topology, the batching publisher with its Redis fallback, the relay that
//! drains the fallback, and the dead-letter tools.

pub mod broker;
pub mod dlq;
// The envelope is parsed in maskdraw-wire (no IO: fuzz/ builds it alone).
pub use maskdraw_wire::envelope as message;
pub mod publisher;
pub mod relay;

pub use broker::{Broker, BrokerError};
pub use message::{Envelope, ReservationEvent};
pub use publisher::{Durability, PublishError, Publisher};
