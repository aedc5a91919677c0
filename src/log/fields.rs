//! The fields of Kafka's internal-topic records (`__consumer_offsets`,
//! `__transaction_state`): big-endian integers, strings with an i16
//! length (-1: null), bytes with an i32 length. Reading past the end is
//! `Malformed`, never a panic: the records come from disk.

use bytes::{Buf, BufMut, Bytes};

#[derive(Debug, thiserror::Error)]
#[error("malformed internal record: {0}")]
pub struct Malformed(pub &'static str);

pub fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    out.put_i16(len as i16);
    out.extend_from_slice(&s.as_bytes()[..len]);
}

pub fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.put_i16(-1),
    }
}

pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.put_i32(b.len() as i32);
    out.extend_from_slice(b);
}

pub fn need(buf: &[u8], n: usize) -> Result<(), Malformed> {
    if buf.len() < n {
        Err(Malformed("truncated"))
    } else {
        Ok(())
    }
}

pub fn get_i16(buf: &mut &[u8]) -> Result<i16, Malformed> {
    need(buf, 2)?;
    Ok(buf.get_i16())
}

pub fn get_i32(buf: &mut &[u8]) -> Result<i32, Malformed> {
    need(buf, 4)?;
    Ok(buf.get_i32())
}

pub fn get_i64(buf: &mut &[u8]) -> Result<i64, Malformed> {
    need(buf, 8)?;
    Ok(buf.get_i64())
}

pub fn get_opt_str(buf: &mut &[u8]) -> Result<Option<String>, Malformed> {
    let len = get_i16(buf)?;
    if len < 0 {
        return Ok(None);
    }
    need(buf, len as usize)?;
    let s = std::str::from_utf8(&buf[..len as usize]).map_err(|_| Malformed("not UTF-8"))?;
    let s = s.to_string();
    buf.advance(len as usize);
    Ok(Some(s))
}

pub fn get_str(buf: &mut &[u8]) -> Result<String, Malformed> {
    get_opt_str(buf)?.ok_or(Malformed("null string"))
}

pub fn get_bytes(buf: &mut &[u8]) -> Result<Bytes, Malformed> {
    let len = get_i32(buf)?;
    if len < 0 {
        return Ok(Bytes::new());
    }
    need(buf, len as usize)?;
    let b = Bytes::copy_from_slice(&buf[..len as usize]);
    buf.advance(len as usize);
    Ok(b)
}

pub fn get_i8(buf: &mut &[u8]) -> Result<i8, Malformed> {
    need(buf, 1)?;
    Ok(buf.get_i8())
}
