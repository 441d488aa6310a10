//! One integration test binary against the real PostgreSQL, Redis and RabbitMQ on loopback.
//! Every test gets its own database, Redis key prefix and queue names (see `helpers`).

mod browser;
mod day;
mod durability;
mod helpers;
mod locks;
mod pages;
mod poison;
mod publication;
mod reservations;
