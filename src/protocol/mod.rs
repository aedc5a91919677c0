//! The Kafka wire protocol edge. Typed errors from the inner layers become
//! Kafka error codes here and nowhere else.

pub mod error_code;
