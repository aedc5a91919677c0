//! The network edge: listening, Kafka framing, writing responses, and the
//! `/metrics` HTTP endpoint.
//! Knows nothing of files; hands request frames to `protocol` and writes
//! back what it returns, in request order.

pub mod connection;
pub mod frame;
pub mod listener;
pub mod metrics_http;
pub mod sendfile;
