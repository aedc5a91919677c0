//! `fault`: storage failures a test asks for, injected where the log calls
//! the disk (segment writes, fdatasyncs), so a test can show what a client
//! sees when the disk fails: KAFKA_STORAGE_ERROR, never a false
//! acknowledgement, and the partition offline until a restart re-validates
//! it.
//!
//! Off unless the broker was started with the hidden `--fail-io` flag; then
//! every checked call compares its file's path with the rules. A rule is
//! `OP:PATH_PART[:after=N][:errno=E]`: calls of kind OP (`write` or
//! `fdatasync`) on a file whose path contains PATH_PART fail with errno E
//! (default EIO) once N of them have succeeded (default 0).

use glommio::io::{DmaBuffer, DmaFile};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Write,
    Fdatasync,
}

#[derive(Debug)]
struct Rule {
    op: Op,
    path_part: String,
    after: u64,
    errno: i32,
    seen: AtomicU64,
}

static RULES: OnceLock<Vec<Rule>> = OnceLock::new();

/// Parses and installs the rules; once per process.
pub fn install(specs: &[String]) -> Result<(), String> {
    let rules = specs
        .iter()
        .map(|s| parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    RULES
        .set(rules)
        .map_err(|_| "storage faults are already installed".to_string())
}

fn parse(spec: &str) -> Result<Rule, String> {
    let bad = |why: &str| format!("--fail-io {spec:?}: {why}");
    let mut parts = spec.split(':');
    let op = match parts.next() {
        Some("write") => Op::Write,
        Some("fdatasync") => Op::Fdatasync,
        _ => return Err(bad("starts with write or fdatasync")),
    };
    let path_part = parts.next().filter(|p| !p.is_empty());
    let path_part = path_part.ok_or_else(|| bad("names a path part"))?;
    let mut rule = Rule {
        op,
        path_part: path_part.to_string(),
        after: 0,
        errno: libc::EIO,
        seen: AtomicU64::new(0),
    };
    for option in parts {
        let (key, value) = option
            .split_once('=')
            .ok_or_else(|| bad("options are k=v"))?;
        let value: u64 = value
            .parse()
            .map_err(|_| bad("option values are numbers"))?;
        match key {
            "after" => rule.after = value,
            "errno" => rule.errno = i32::try_from(value).map_err(|_| bad("errno too large"))?,
            _ => return Err(bad("options are after= and errno=")),
        }
    }
    Ok(rule)
}

/// The injected failure for an `op` call on `path`, if a rule asks for one.
pub fn check(op: Op, path: Option<&Path>) -> std::io::Result<()> {
    let Some(rules) = RULES.get() else {
        return Ok(());
    };
    let Some(path) = path.and_then(Path::to_str) else {
        return Ok(());
    };
    for rule in rules {
        if rule.op == op && path.contains(&rule.path_part) {
            let n = rule.seen.fetch_add(1, Ordering::Relaxed);
            if n >= rule.after {
                return Err(std::io::Error::from_raw_os_error(rule.errno));
            }
        }
    }
    Ok(())
}

/// `file.write_at(buf, pos)`, unless a rule fails it.
pub async fn write_at(file: &DmaFile, buf: DmaBuffer, pos: u64) -> std::io::Result<usize> {
    check(Op::Write, file.path().as_deref())?;
    Ok(file.write_at(buf, pos).await?)
}

/// `file.fdatasync()`, unless a rule fails it.
pub async fn fdatasync(file: &DmaFile) -> std::io::Result<()> {
    check(Op::Fdatasync, file.path().as_deref())?;
    Ok(file.fdatasync().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_refuse_nonsense() {
        let r = parse("fdatasync:doomed-0:after=3:errno=28").unwrap();
        assert_eq!(
            (r.op, r.path_part.as_str(), r.after, r.errno),
            (Op::Fdatasync, "doomed-0", 3, 28)
        );
        let r = parse("write:x").unwrap();
        assert_eq!((r.op, r.after, r.errno), (Op::Write, 0, libc::EIO));
        for bad in [
            "read:x",
            "write",
            "write::after=1",
            "write:x:after",
            "write:x:soon=1",
            "write:x:after=y",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
