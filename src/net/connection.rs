//! One client connection: read a frame, let `protocol` answer it, write the
//! answer, repeat. Like Kafka, one request is handled at a time per
//! connection, so responses go out in request order.
//!
//! Bad input closes only this connection, with a log line: an oversized or
//! truncated frame, or a request `protocol` cannot decode.

use super::frame::read_frame;
use crate::protocol;
use crate::shard::Shard;
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use std::rc::Rc;

pub async fn serve(shard: Rc<Shard>, mut stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let _ = stream.set_nodelay(true);
    let max = shard.config.socket_request_max_bytes;
    loop {
        let frame = match read_frame(&mut stream, max).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(%peer, "closing connection: {e}");
                return;
            }
        };
        match protocol::handle(&shard, frame).await {
            Ok(Some(response)) => {
                if let Err(e) = stream.write_all(&response).await {
                    tracing::debug!(%peer, "write failed: {e}");
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%peer, "closing connection: {e}");
                return;
            }
        }
    }
}
