//! Several response buffers to a socket with one `sendmsg(2)`.
//!
//! A fetch answer is many small pieces (headers, then each partition's
//! header and records), and glommio writes each with a `send` syscall of
//! its own (a MSG_DONTWAIT try, then io_uring if the socket is full).
//! Here the pieces go with one `sendmsg`, also MSG_DONTWAIT, so it never
//! blocks the shard even on the blocking sockets glommio accepts: what the
//! socket buffer takes goes at once, and the caller sends the rest (if
//! any) with ordinary, awaited writes. Nothing else writes to the socket
//! meanwhile, so bytes stay in order.

use bytes::Bytes;
use std::io;
use std::os::fd::RawFd;

/// At most this many buffers per call (well under IOV_MAX).
const MAX_IOVECS: usize = 256;

/// Sends as much of `parts`, in order, as the socket takes now; returns
/// how many bytes went (0 if its buffer is full).
pub fn send_now(socket: RawFd, parts: &[Bytes]) -> io::Result<usize> {
    let iovecs: Vec<libc::iovec> = parts
        .iter()
        .take(MAX_IOVECS)
        .filter(|p| !p.is_empty())
        .map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut libc::c_void,
            iov_len: p.len(),
        })
        .collect();
    if iovecs.is_empty() {
        return Ok(0);
    }
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iovecs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = iovecs.len();
    loop {
        // SAFETY: `socket` is the connection's open socket, owned by the
        // caller across the call; `msg` points at `iovecs`, whose buffers
        // are the `parts`, all alive and unchanged for the call; sendmsg
        // only reads them.
        let n = unsafe { libc::sendmsg(socket, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(0),
            _ => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn sends_what_the_socket_takes_in_order_and_never_blocks() {
        let (a, mut b) = UnixStream::pair().expect("socketpair");
        let parts: Vec<Bytes> = (0u8..3)
            .map(|i| Bytes::from(vec![i; 400_000]))
            .chain(std::iter::once(Bytes::new()))
            .collect();
        let total: usize = parts.iter().map(Bytes::len).sum();
        // More than the socket buffer holds: part of it goes, at once.
        let sent = send_now(a.as_raw_fd(), &parts).expect("send");
        assert!(sent > 0 && sent < total, "sent {sent} of {total}");
        // A full buffer is 0, not a wait.
        let again = send_now(a.as_raw_fd(), &parts[2..]).expect("send");
        let mut got = vec![0u8; sent + again];
        b.read_exact(&mut got).expect("read");
        let want: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        assert_eq!(&got[..sent], &want[..sent]);
    }
}
