//! The `/metrics` endpoint: a minimal HTTP/1.x server on shard 0 that
//! answers `GET /metrics` with every shard's measurements merged, as
//! Prometheus text. One request per connection; anything else gets 404 or
//! 400. Requests are bounded in size and time, so a stuck scraper cannot
//! hold a task forever.

use crate::metrics::exposition;
use crate::shard::Shard;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::time::Duration;

/// The largest request head read.
const REQUEST_HEAD_MAX: usize = 8192;
/// How long a scraper may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves until the future is dropped.
pub async fn serve(shard: Rc<Shard>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                glommio::spawn_local(answer(shard.clone(), stream)).detach();
            }
            Err(e) => {
                tracing::warn!("metrics accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn answer(shard: Rc<Shard>, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
    let (status, body) = match read_head(&mut stream).await {
        Some(head) => {
            let mut words = head.split_whitespace();
            match (words.next(), words.next()) {
                (Some("GET"), Some(path)) if path.split('?').next() == Some("/metrics") => {
                    ("200 OK", exposition::render(&shard.collect_metrics().await))
                }
                (Some(_), Some(_)) => ("404 Not Found", "try /metrics\n".to_string()),
                _ => ("400 Bad Request", String::new()),
            }
        }
        None => ("400 Bad Request", String::new()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.close().await;
}

/// The request head up to its blank line, or None if it is too long,
/// not text, or the peer stops sending.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || head.len() + n > REQUEST_HEAD_MAX {
            return None;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(head).ok()
}
