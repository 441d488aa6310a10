//! Where state lives: Redis (locks, ticket status, the fallback stream) and PostgreSQL
//! (tickets and the officials' day). Handlers call these functions; they never build SQL or
//! Redis commands themselves.

pub mod day;
pub mod draws;
pub mod redis;
pub mod tickets;
