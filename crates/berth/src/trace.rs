//! `BERTH_TRACE=1` (lines on stderr) and `--debug` (debug lines in the log): the
//! per-phase timing the library records for create and start, printed here.

use berth_runtime::{Phase, Role, Span, TraceSink};
use std::time::Duration;

/// Where the lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Stderr,
    Log,
}

/// The sink for this invocation, when tracing is asked for; `started` is the monotonic
/// clock at the top of main, recorded as the `args` phase.
pub fn sink(debug: bool, started: Duration) -> Option<(TraceSink, Output)> {
    let env = std::env::var_os("BERTH_TRACE").is_some_and(|v| !v.is_empty() && v != "0");
    let output = if env {
        Output::Stderr
    } else if debug {
        Output::Log
    } else {
        return None;
    };
    let sink = TraceSink::new();
    sink.record(Span {
        phase: Phase::Args,
        role: Role::Runtime,
        start: started,
        end: TraceSink::now(),
    });
    Some((sink, output))
}

/// Prints every span of `verb` recorded so far, by start time: the monotonic clock at
/// its start, its offset from the first span and its duration, in microseconds.
pub fn report(verb: &str, trace: &Option<(TraceSink, Output)>) {
    let Some((sink, output)) = trace else { return };
    let spans = sink.spans();
    let Some(first) = spans.first().map(|s| s.start) else {
        return;
    };
    let last = spans.iter().map(|s| s.end).max().unwrap_or(first);
    for s in &spans {
        let line = format!(
            "berth trace: {verb} {:<12} {:<12} start_us={} at_us={} dur_us={}",
            s.phase.name(),
            s.role.name(),
            s.start.as_micros(),
            s.start.saturating_sub(first).as_micros(),
            s.duration().as_micros()
        );
        emit(*output, &line);
    }
    emit(
        *output,
        &format!(
            "berth trace: {verb} total dur_us={}",
            last.saturating_sub(first).as_micros()
        ),
    );
}

fn emit(output: Output, line: &str) {
    match output {
        Output::Stderr => eprintln!("{line}"),
        Output::Log => tracing::debug!("{line}"),
    }
}
