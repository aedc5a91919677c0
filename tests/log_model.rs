//! Property test: random sequences of append / read / flush / roll /
//! retention / reopen against a simple in-memory model of the log (a list of
//! batches with their offsets). Proves that reads always return exactly the
//! model's batches from the one holding the offset, that offsets stay dense
//! across rolls and reopens, and that retention only ever removes whole
//! batches from the front.

mod common;

use common::{batch, open, run, small_config, split, tag_of, test_dir};
use proptest::prelude::*;
use strom::log::{Durability, LogConfig, LogError, Offset};

#[derive(Debug, Clone)]
enum Op {
    Append {
        batches: usize,
        records: usize,
        value_len: usize,
    },
    Read {
        at: u16,
        max_bytes: usize,
    },
    Flush,
    Roll,
    Retention,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..4, 1usize..6, prop_oneof![0usize..200, 0usize..3000])
            .prop_map(|(batches, records, value_len)| Op::Append { batches, records, value_len }),
        4 => (any::<u16>(), 1usize..40_000).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        1 => Just(Op::Flush),
        1 => Just(Op::Roll),
        1 => Just(Op::Retention),
        1 => Just(Op::Reopen),
    ]
}

/// The model: batches still in the log, as (base offset, last offset, tag).
#[derive(Default)]
struct Model {
    batches: Vec<(u64, u64, u64)>,
    next: u64,
    next_tag: u64,
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 24 << 10,
        retention_bytes: 48 << 10,
        retention_ms: -1,
        // Small enough that most reads are cold (from the file).
        tail_cache_bytes: 4 << 10,
        ..small_config()
    }
}

fn check(ops: Vec<Op>) {
    let dir = test_dir();
    let path = dir.path().join("model-0");
    run(move || async move {
        let mut p = open(&path, config()).await;
        let mut m = Model::default();
        for op in ops {
            match op {
                Op::Append {
                    batches,
                    records,
                    value_len,
                } => {
                    let tags: Vec<u64> = (0..batches).map(|i| m.next_tag + i as u64).collect();
                    m.next_tag += batches as u64;
                    let input = tags
                        .iter()
                        .map(|&t| batch(t, records, value_len, t as i64))
                        .collect();
                    let info = p.append(input, Durability::Policy).await.unwrap();
                    assert_eq!(info.base_offset.get(), m.next);
                    for t in tags {
                        let last = m.next + records as u64 - 1;
                        m.batches.push((m.next, last, t));
                        m.next = last + 1;
                    }
                    assert_eq!(info.last_offset.get() + 1, m.next);
                }
                Op::Read { at, max_bytes } => {
                    let start = m.batches.first().map_or(m.next, |b| b.0);
                    let span = m.next - start + 2;
                    let offset = start.saturating_sub(1) + u64::from(at) % span;
                    let res = p.read(Offset::new(offset), max_bytes).await;
                    if offset < start || offset > m.next {
                        assert!(
                            matches!(res, Err(LogError::OffsetOutOfRange { .. })),
                            "{offset}"
                        );
                        continue;
                    }
                    let got = split(res.unwrap().to_bytes_blocking().unwrap());
                    let from = m.batches.partition_point(|b| b.1 < offset);
                    let want = &m.batches[from..];
                    assert!(got.len() <= want.len());
                    assert!(!got.is_empty() || want.is_empty(), "empty read at {offset}");
                    if got.len() > 1 {
                        assert!(got.iter().map(|b| b.len()).sum::<usize>() <= max_bytes);
                    }
                    for (b, w) in got.iter().zip(want) {
                        assert_eq!((b.base_offset() as u64, b.last_offset() as u64), (w.0, w.1));
                        assert_eq!(tag_of(b), w.2);
                    }
                }
                Op::Flush => {
                    p.flush().await.unwrap();
                    assert_eq!(p.durable_offset().get(), m.next);
                }
                Op::Roll => p.roll().await.unwrap(),
                Op::Retention => {
                    let before = p.log_start().get();
                    p.enforce_retention(0).await.unwrap();
                    let start = p.log_start().get();
                    assert!(start >= before);
                    m.batches.retain(|b| b.0 >= start);
                    let first = m.batches.first().map_or(m.next, |b| b.0);
                    assert_eq!(first, start, "log start must be a batch boundary");
                    assert!(p.size_bytes() < (48 << 10) + (24 << 10));
                }
                Op::Reopen => {
                    p.close().await.unwrap();
                    drop(p);
                    p = open(&path, config()).await;
                }
            }
            assert_eq!(p.next_offset().get(), m.next);
            assert!(p.log_start().get() <= p.durable_offset().get());
            assert!(p.durable_offset().get() <= p.written_offset().get());
            assert!(p.written_offset().get() <= p.next_offset().get());
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn log_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        check(ops);
    }
}
