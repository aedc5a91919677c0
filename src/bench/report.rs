//! The result of a bench run: a readable summary, one JSON object
//! (`--json`), and the percentile distribution in HdrHistogram's `.hgrm`
//! text format (`--hgrm FILE`), which the usual HdrHistogram plotters read.

use super::consumer::ConsumeResult;
use super::producer::RunResult;
use super::BenchArgs;
use anyhow::Context;
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// The percentiles reported, as quantiles and names.
const PERCENTILES: &[(f64, &str)] = &[
    (0.50, "p50"),
    (0.90, "p90"),
    (0.99, "p99"),
    (0.999, "p99.9"),
    (0.9999, "p99.99"),
];

/// `warm`: when counting started (the end of the warm-up).
pub fn print(
    args: &BenchArgs,
    r: &RunResult,
    warm: Instant,
    consumed: Option<&ConsumeResult>,
    rebalance_ms: Option<f64>,
) -> anyhow::Result<()> {
    if let Some(path) = &args.hgrm {
        std::fs::write(path, hgrm(&r.latency))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        let mut series = Vec::new();
        if r.acked > 0 {
            series.push(("produce ack", &r.latency));
        }
        if let Some(c) = consumed {
            series.push(("end to end", &c.latency));
        }
        let title = format!(
            "strom bench: {} B messages, acks={}, {}",
            args.message_size,
            args.acks,
            if args.rate > 0 {
                format!("{} msg/s", args.rate)
            } else {
                "unthrottled".to_string()
            }
        );
        std::fs::write(path, super::plot::svg(&title, &series))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let elapsed = r
        .last_ack
        .map_or(Duration::ZERO, |end| end.saturating_duration_since(warm));
    let secs = elapsed.as_secs_f64().max(1e-9);
    let counted = r.latency.len();
    if args.json {
        let mut out = String::from("{");
        write!(
            out,
            "\"sent\":{},\"acked\":{},\"errors\":{},\"counted\":{},\"seconds\":{:.6},\"msgs_per_sec\":{:.1},\"mb_per_sec\":{:.3},\"acks\":\"{}\",\"message_size\":{},\"rate\":{},\"batch_size\":{},\"linger_ms\":{},\"keys\":{},\"compression\":\"{:?}\",\"idempotent\":{},\"transactional\":{},\"shards\":{},\"latency_ms\":{{",
            r.sent, r.acked, r.errors, counted, secs, counted as f64 / secs, r.bytes as f64 / secs / 1e6,
            args.acks, args.message_size, args.rate, args.batch_size, args.linger_ms, args.keys,
            args.compression,
            args.idempotent,
            args.transactional_id.is_some(),
            args.shards
        )?;
        write_percentiles(&mut out, &r.latency)?;
        if let Some(c) = consumed {
            let secs = c.elapsed().as_secs_f64().max(1e-9);
            write!(
                out,
                ",\"consumed\":{},\"consume_mb_per_sec\":{:.3},\"e2e_latency_ms\":{{",
                c.consumed,
                c.bytes as f64 / secs / 1e6
            )?;
            write_percentiles(&mut out, &c.latency)?;
        }
        if let Some(ms) = rebalance_ms {
            write!(out, ",\"rebalance_ms\":{ms:.1}")?;
        }
        out.push('}');
        println!("{out}");
        return Ok(());
    }
    println!(
        "produced {} messages of {} B with acks={} ({} errors): {:.0} msg/s, {:.1} MB/s over {:.2} s",
        r.acked, args.message_size, args.acks, r.errors, counted as f64 / secs, r.bytes as f64 / secs / 1e6, secs
    );
    println!("ack latency ms:{}", percentile_line(&r.latency));
    if let Some(c) = consumed {
        let secs = c.elapsed().as_secs_f64().max(1e-9);
        println!(
            "consumed {} messages: {:.1} MB/s",
            c.consumed,
            c.bytes as f64 / secs / 1e6
        );
        println!("end-to-end latency ms:{}", percentile_line(&c.latency));
    }
    if let Some(ms) = rebalance_ms {
        println!(
            "rebalance: member 0 left; its partitions were read by the others {ms:.1} ms later"
        );
    }
    Ok(())
}

/// `  p50 x  p90 y ...  max z` of a histogram in microseconds, as ms.
fn percentile_line(h: &Histogram<u64>) -> String {
    let mut line = String::new();
    for (q, name) in PERCENTILES {
        let _ = write!(
            line,
            "  {name} {:.3}",
            h.value_at_quantile(*q) as f64 / 1000.0
        );
    }
    let _ = write!(line, "  max {:.3}", h.max() as f64 / 1000.0);
    line
}

/// `"p50":..,"p90":..,...,"max":..}` of a histogram in microseconds, as ms.
fn write_percentiles(out: &mut String, h: &Histogram<u64>) -> std::fmt::Result {
    for (q, name) in PERCENTILES {
        write!(
            out,
            "\"{name}\":{:.3},",
            h.value_at_quantile(*q) as f64 / 1000.0
        )?;
    }
    write!(out, "\"max\":{:.3}}}", h.max() as f64 / 1000.0)
}

/// The `.hgrm` percentile distribution, values in milliseconds.
pub fn hgrm(h: &Histogram<u64>) -> String {
    let mut out = String::from("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
    for v in h.iter_quantiles(1) {
        let q = v.quantile_iterated_to();
        let inverse = if q < 1.0 {
            format!("{:.2}", 1.0 / (1.0 - q))
        } else {
            "inf".into()
        };
        let _ = writeln!(
            out,
            "{:12.3} {:14.12} {:10} {:>14}",
            v.value_iterated_to() as f64 / 1000.0,
            q,
            v.count_since_last_iteration(),
            inverse
        );
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]\n#[Max     = {:12.3}, Total count    = {:12}]",
        h.mean() / 1000.0,
        h.stdev() / 1000.0,
        h.max() as f64 / 1000.0,
        h.len()
    );
    out
}
