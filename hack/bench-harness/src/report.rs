//! Summaries of the samples: medians, p90, ratios, the printed table and JSON.

use std::time::Duration;

use serde_json::{json, Value};

use crate::life::Sample;

/// The samples of one runtime.
pub struct Series {
    pub name: String,
    pub path: String,
    pub samples: Vec<Sample>,
    /// Why the runtime stopped being measured, if it did.
    pub failure: Option<String>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Median of unsorted values (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Nearest-rank percentile `p` (0..=100) of unsorted values.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

struct Summary {
    wall_med: f64,
    wall_p90: f64,
    cpu_med: f64,
    /// Median peak memory charged to the runtime per life, KiB.
    peak_med: Option<f64>,
}

impl Series {
    fn walls(&self) -> Vec<f64> {
        self.samples.iter().map(|s| ms(s.wall)).collect()
    }

    fn cpus(&self) -> Vec<f64> {
        self.samples.iter().map(|s| ms(s.cpu)).collect()
    }

    fn peaks(&self) -> Vec<f64> {
        self.samples
            .iter()
            .filter_map(|s| s.peak)
            .map(|b| b as f64 / 1024.0)
            .collect()
    }

    fn summary(&self) -> Option<Summary> {
        let walls = self.walls();
        Some(Summary {
            wall_med: median(&walls)?,
            wall_p90: percentile(&walls, 90.0)?,
            cpu_med: median(&self.cpus())?,
            peak_med: median(&self.peaks()),
        })
    }
}

/// The table and the berth ratios, as printed.
pub fn table(series: &[Series]) -> String {
    let mut out = format!(
        "{:<8} {:>6} {:>14} {:>12} {:>14} {:>15}\n",
        "runtime", "lives", "wall med (ms)", "wall p90", "cpu med (ms)", "peak med (KiB)"
    );
    for s in series {
        match (s.summary(), &s.failure) {
            (Some(m), None) => {
                let peak = m
                    .peak_med
                    .map_or_else(|| "-".to_string(), |p| format!("{p:.0}"));
                out += &format!(
                    "{:<8} {:>6} {:>14.2} {:>12.2} {:>14.2} {:>15}\n",
                    s.name,
                    s.samples.len(),
                    m.wall_med,
                    m.wall_p90,
                    m.cpu_med,
                    peak
                )
            }
            (_, Some(why)) => out += &format!("{:<8} FAILED: {why}\n", s.name),
            (None, None) => out += &format!("{:<8} no samples\n", s.name),
        }
    }
    let ok = |name: &str| {
        series
            .iter()
            .find(|s| s.name == name && s.failure.is_none())
            .and_then(Series::summary)
    };
    if let Some(b) = ok("berth") {
        for peer in ["runc", "crun"] {
            if let Some(p) = ok(peer) {
                let mem = match (b.peak_med, p.peak_med) {
                    (Some(a), Some(c)) if c > 0.0 => format!(", peak memory {:.2}x", a / c),
                    _ => String::new(),
                };
                out += &format!(
                    "berth/{peer}: wall {:.2}x, cpu {:.2}x{mem}\n",
                    b.wall_med / p.wall_med,
                    b.cpu_med / p.cpu_med
                );
            }
        }
    }
    out
}

/// Every sample and summary, for `--json`.
pub fn to_json(series: &[Series], iterations: usize, warmup: usize) -> Value {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let runtimes: Vec<Value> = series
        .iter()
        .map(|s| {
            let m = s.summary();
            json!({
                "name": s.name,
                "path": s.path,
                "failure": s.failure,
                "wall_ms": s.walls(),
                "cpu_ms": s.cpus(),
                "peak_kib": s.peaks(),
                "peak_median_kib": m.as_ref().and_then(|m| m.peak_med),
                "wall_median_ms": m.as_ref().map(|m| m.wall_med),
                "wall_p90_ms": m.as_ref().map(|m| m.wall_p90),
                "cpu_median_ms": m.as_ref().map(|m| m.cpu_med),
            })
        })
        .collect();
    json!({
        "unix_time": unix,
        "iterations": iterations,
        "warmup": warmup,
        "runtimes": runtimes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn p90_is_nearest_rank() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 90.0), Some(9.0));
        assert_eq!(percentile(&[5.0], 90.0), Some(5.0));
    }
}
