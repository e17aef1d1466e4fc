//! `berth events`: runc's JSON event lines for a container: resource usage every
//! interval and OOM kills, until the container stops (or one stats line with --stats).

use crate::cli::Globals;
use anyhow::{anyhow, bail, Context};
use berth_runtime::{Container, Status};
use serde::Serialize;
use std::io::Write;
use std::time::{Duration, Instant};

/// `events [--stats] [--interval D] <container-id>`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// set the stats collection interval
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub interval: String,
    /// display the container's stats then exit
    #[arg(long)]
    pub stats: bool,
    #[arg(value_name = "container-id")]
    pub id: String,
}

/// One line of output (runc's `event`).
#[derive(Serialize)]
struct Event<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

/// How often the loop looks for OOM kills and a stopped container.
const POLL: Duration = Duration::from_millis(100);

/// Prints events; returns when the container stops.
pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    let interval = parse_duration(&args.interval)
        .map_err(|e| anyhow!("invalid value {:?} for flag -interval: {e}", args.interval))?;
    if interval.is_zero() {
        bail!("duration interval must be greater than 0");
    }
    berth_runtime::validate_id(&args.id)?;
    let container = super::runtime(globals)?.load(&args.id)?;
    if container.status() == Status::Stopped {
        bail!("container with id {} is not running", args.id);
    }
    if args.stats {
        let stats = container.stats()?;
        return emit("stats", &args.id, Some(&stats));
    }
    watch(&container, &args.id, interval)
}

fn watch(container: &Container, id: &str, interval: Duration) -> anyhow::Result<()> {
    let mut oom_seen = container
        .stats()
        .ok()
        .and_then(|s| s.oom_kills)
        .unwrap_or(0);
    let mut next = Instant::now() + interval;
    loop {
        std::thread::sleep(POLL);
        if container.status() == Status::Stopped {
            return Ok(());
        }
        let stats = match container.stats() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{e}");
                continue;
            }
        };
        if let Some(n) = stats.oom_kills {
            if n > oom_seen {
                emit::<()>("oom", id, None)?;
            }
            oom_seen = n;
        }
        if Instant::now() >= next {
            emit("stats", id, Some(&stats))?;
            next += interval;
        }
    }
}

fn emit<T: Serialize>(kind: &str, id: &str, data: Option<&T>) -> anyhow::Result<()> {
    let line = serde_json::to_string(&Event { kind, id, data }).context("serialize event")?;
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .context("write event to stdout")
}

/// A Go duration (`5s`, `1m30s`, `250ms`, `1.5h`); a bare `0` is allowed.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("time: invalid duration {text:?}");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() || text.starts_with('-') {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[u..];
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "5", "s", "-1s", "5x"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
