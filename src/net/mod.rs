//! The network edge: listening, Kafka framing, and writing responses.
//! Knows nothing of files; hands request frames to `protocol` and writes
//! back what it returns, in request order.

pub mod connection;
pub mod frame;
pub mod listener;
pub mod sendfile;
