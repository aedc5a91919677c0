//! `--plot FILE`: an SVG latency percentile plot, the usual HdrHistogram
//! picture — latency (ms) against percentile on a log axis (90%, 99%,
//! 99.9%, ...), one line per measured latency — with no plotting library.

use hdrhistogram::Histogram;
use std::fmt::Write as _;

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 450.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
/// The x axis ends at 99.9999% (1/(1-q) = 10^6).
const X_DECADES: f64 = 6.0;
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// An SVG document plotting each (name, histogram in µs) series.
pub fn svg(title: &str, series: &[(&str, &Histogram<u64>)]) -> String {
    let max_ms = series
        .iter()
        .map(|(_, h)| h.max() as f64 / 1000.0)
        .fold(0.0, f64::max);
    let (y_max, y_step) = nice_axis(max_ms);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x_of = |q: f64| {
        let decades = if q >= 1.0 {
            X_DECADES
        } else {
            (1.0 / (1.0 - q)).log10().min(X_DECADES)
        };
        LEFT + decades / X_DECADES * plot_w
    };
    let y_of = |ms: f64| TOP + plot_h - (ms / y_max).min(1.0) * plot_h;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    // Grid and ticks.
    for d in 0..=X_DECADES as u32 {
        let q = 1.0 - 10f64.powi(-(d as i32));
        let x = x_of(q);
        let label = match d {
            0 => "0%".to_string(),
            _ => format!("{}%", trim(100.0 * q)),
        };
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0
        );
    }
    let mut tick = 0.0;
    while tick <= y_max + y_step / 2.0 {
        let y = y_of(tick);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            trim(tick)
        );
        tick += y_step;
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 10.0
    );
    let _ = writeln!(
        out,
        r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">latency (ms)</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    // One polyline per series, plus its legend entry.
    for (i, (name, h)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let mut points = String::new();
        if !h.is_empty() {
            for v in h.iter_quantiles(4) {
                let q = v.quantile_iterated_to();
                let ms = v.value_iterated_to() as f64 / 1000.0;
                let _ = write!(points, "{:.1},{:.1} ", x_of(q), y_of(ms));
            }
        }
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            points.trim_end()
        );
        let ly = TOP + 16.0 + 18.0 * i as f64;
        let _ = writeln!(
            out,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            LEFT + 12.0,
            LEFT + 36.0,
            LEFT + 42.0,
            ly + 4.0,
            escape(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// An axis top of 1, 2 or 5 times a power of ten at or above `max`, and a
/// step giving 5 to 10 ticks.
fn nice_axis(max: f64) -> (f64, f64) {
    let max = if max > 0.0 { max } else { 1.0 };
    let magnitude = 10f64.powf(max.log10().floor());
    let top = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&t| t >= max)
        .unwrap_or(10.0 * magnitude);
    let step = if top / magnitude <= 2.0 {
        magnitude / 5.0
    } else {
        magnitude
    };
    (top, step)
}

/// 99.900000 → "99.9", 2.0 → "2".
fn trim(v: f64) -> String {
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_each_series_on_percentile_and_latency_axes() {
        let mut a = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("h");
        for us in 1..=10_000u64 {
            a.record(us).expect("record");
        }
        let b = a.clone();
        let svg = svg("acks=all <test>", &[("ack", &a), ("end-to-end", &b)]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        for label in ["99%", "99.9%", "99.99%", "latency (ms)", "&lt;test&gt;"] {
            assert!(svg.contains(label), "{label} missing");
        }
        assert_eq!(nice_axis(7.3), (10.0, 1.0));
        assert_eq!(nice_axis(1.5), (2.0, 0.2));
        assert_eq!(trim(99.9), "99.9");
    }
}
