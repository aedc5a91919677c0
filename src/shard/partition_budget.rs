//! The partition budget: how many more partitions this broker can hold,
//! checked before a topic change is accepted.
//!
//! An open partition holds at least one file descriptor (its active
//! segment; sealed segments hold one each too), so a broker whose topics
//! outgrow RLIMIT_NOFILE half-opens them and then cannot accept a
//! connection. CreateTopics and CreatePartitions are therefore refused up
//! front (POLICY_VIOLATION, with a message naming the limit) when the new
//! partitions would not fit: over `max.broker.partitions` (KIP-578's
//! name), or over the descriptors the process has left once a reserve for
//! connections and the broker's own files is kept. Never accepted and
//! half-opened.

use std::path::Path;

/// Descriptors kept for connections, internal logs and metadata files:
/// a tenth of the limit, at least this many.
const RESERVE_MIN: u64 = 1024;

/// The process's descriptor use: open now, and the soft RLIMIT_NOFILE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptors {
    pub open: u64,
    pub limit: u64,
}

impl Descriptors {
    /// Reads `/proc/self/fd` and `/proc/self/limits` (blocking: run it off
    /// the executor). None where /proc does not say.
    pub fn now() -> Option<Descriptors> {
        let open = std::fs::read_dir(Path::new("/proc/self/fd")).ok()?.count() as u64;
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let limit = soft_nofile(&limits)?;
        Some(Descriptors { open, limit })
    }

    /// What is kept back from partitions.
    pub fn reserve(&self) -> u64 {
        (self.limit / 10).max(RESERVE_MIN)
    }
}

/// The soft "Max open files" of a `/proc/<pid>/limits` text.
fn soft_nofile(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    match soft {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// Why `added` more partitions do not fit, if they do not. `held` is what
/// the topic table holds now; `max` is `max.broker.partitions`.
pub fn refusal(added: u64, held: u64, max: u64, fds: Option<Descriptors>) -> Option<String> {
    if added == 0 {
        return None;
    }
    if held.saturating_add(added) > max {
        return Some(format!(
            "{added} more partitions would make {} on this broker, over max.broker.partitions {max}",
            held + added
        ));
    }
    let fds = fds?;
    let reserve = fds.reserve();
    let room = fds.limit.saturating_sub(reserve).saturating_sub(fds.open);
    (added > room).then(|| {
        format!(
            "{added} more partitions need at least {added} file descriptors, and {room} are left: \
             {} of RLIMIT_NOFILE {} are open and {reserve} are kept for connections \
             (raise the limit, or delete topics)",
            fds.open, fds.limit
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_soft_limit() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             95853                95853                processes \n\
                    Max open files            20000                40000                files     \n";
        assert_eq!(soft_nofile(text), Some(20000));
        assert!(Descriptors::now().is_some_and(|d| d.open > 0 && d.limit > 0));
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let fds = Some(Descriptors {
            open: 12_025,
            limit: 20_000,
        });
        // The case that used to be accepted and half-opened.
        let why = refusal(9_000, 12_000, u64::MAX, fds).expect("refused");
        assert!(why.contains("RLIMIT_NOFILE 20000"), "{why}");
        assert!(why.contains("5975 are left"), "{why}");
        assert_eq!(refusal(5_000, 12_000, u64::MAX, fds), None);
        let why = refusal(10, 95, 100, fds).expect("refused");
        assert!(why.contains("max.broker.partitions 100"), "{why}");
        assert_eq!(refusal(5, 95, 100, fds), None);
        assert_eq!(refusal(0, 100, 100, fds), None);
        // No /proc: only the configured maximum applies.
        assert_eq!(refusal(9_000, 12_000, u64::MAX, None), None);
    }
}
