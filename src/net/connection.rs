//! One client connection: read a frame, let `protocol` answer it, write the
//! answer, repeat. Like Kafka, one request is handled at a time per
//! connection, so responses go out in request order.
//!
//! Bad input closes only this connection, with a log line: an oversized or
//! truncated frame, or a request `protocol` cannot decode.

use super::frame::read_frame;
use crate::protocol::{self, Part, Response};
use crate::shard::Shard;
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use std::os::fd::AsRawFd;
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
        let in_flight = &shard.stats.requests_in_flight;
        in_flight.set(in_flight.get() + 1);
        let answered = protocol::handle(&shard, frame).await;
        in_flight.set(in_flight.get() - 1);
        match answered {
            Ok(Some(response)) => {
                if let Err(e) = write_response(&mut stream, response).await {
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

/// Writes a response's parts in order: bytes with ordinary sends (tail-cache
/// batches included, never copied into a buffer), file ranges with sendfile.
async fn write_response(stream: &mut TcpStream, response: Response) -> std::io::Result<()> {
    for part in response.0 {
        match part {
            Part::Bytes(bytes) => stream.write_all(&bytes).await?,
            Part::File(slice) => super::sendfile::send(stream.as_raw_fd(), &slice).await?,
        }
    }
    Ok(())
}
