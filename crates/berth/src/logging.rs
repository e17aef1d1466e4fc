//! runc-compatible log lines (logrus text and JSON formats), written to `--log` or stderr.
//!
//! Both berth's own errors and the library's `tracing` events go through here, so an
//! engine reading runc's log format sees the same lines from berth.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// logrus's text formatter: `time="..." level=error msg="..."`.
    Text,
    /// logrus's JSON formatter: `{"level":"error","msg":"...","time":"..."}`.
    Json,
}

/// Where log lines go and how they look.
struct Sink {
    format: LogFormat,
    /// The local UTC offset, read once: lines written from a container's init after
    /// pivot_root must not look up the container's time zone files.
    offset: chrono::FixedOffset,
    /// `--log FILE`; stderr when absent.
    file: Option<Mutex<File>>,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Opens `--log` (append, create, 0644 as runc does) and installs the `tracing`
/// subscriber that forwards the library's events (warnings and up; debug with
/// `--debug`). Call once, before any command runs.
///
/// The subscriber is [`LogrusSubscriber`], not `tracing-subscriber`'s registry and
/// layers: the library records events only (no spans), and every start of berth paid
/// for the registry's span slab and the `log` bridge it installs.
pub fn init(log: Option<&Path>, format: LogFormat, debug: bool) -> anyhow::Result<()> {
    let file = match log {
        Some(path) => Some(Mutex::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o644)
                .open(path)
                .map_err(|e| anyhow::anyhow!("open log file {}: {e}", path.display()))?,
        )),
        None => None,
    };
    let offset = *chrono::Local::now().offset();
    let _ = SINK.set(Sink {
        format,
        offset,
        file,
    });
    let max = if debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::WARN
    };
    // A second init (only possible in tests) keeps the first subscriber.
    let _ = tracing::subscriber::set_global_default(LogrusSubscriber { max });
    Ok(())
}

/// Reports a fatal error as runc's `fatal` does: one `level=error` line to the log, and
/// when the log is a file, the bare message on stderr too.
pub fn fatal(msg: &str) {
    write_line("error", msg, &BTreeMap::new());
    if SINK.get().is_some_and(|s| s.file.is_some()) {
        eprintln!("{msg}");
    }
}

/// Writes one line in the configured format (text on stderr before [`init`]).
fn write_line(level: &str, msg: &str, fields: &BTreeMap<String, Value>) {
    let (format, time) = match SINK.get() {
        Some(sink) => (sink.format, chrono::Utc::now().with_timezone(&sink.offset)),
        None => (LogFormat::Text, chrono::Local::now().fixed_offset()),
    };
    let time = time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut line = match format {
        LogFormat::Json => json_line(level, msg, &time, fields),
        LogFormat::Text => text_line(level, msg, &time, fields),
    };
    line.push('\n');
    // One write per line so concurrent writers to the same file do not interleave.
    match SINK.get().and_then(|s| s.file.as_ref()) {
        Some(file) => {
            let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
            let _ = f.write_all(line.as_bytes());
        }
        None => {
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }
}

/// logrus's JSON formatter: every key sorted (Go map order); user fields that clash
/// with `level`, `msg` or `time` are renamed `fields.<name>`.
fn json_line(level: &str, msg: &str, time: &str, fields: &BTreeMap<String, Value>) -> String {
    let mut all: BTreeMap<String, Value> = BTreeMap::new();
    for (k, v) in fields {
        let key = if matches!(k.as_str(), "level" | "msg" | "time") {
            format!("fields.{k}")
        } else {
            k.clone()
        };
        all.insert(key, v.clone());
    }
    all.insert("level".into(), Value::from(level));
    all.insert("msg".into(), Value::from(msg));
    all.insert("time".into(), Value::from(time));
    serde_json::to_string(&all).unwrap_or_default()
}

/// logrus's text formatter without colours: `time=... level=... msg=...` then the other
/// fields sorted by key.
fn text_line(level: &str, msg: &str, time: &str, fields: &BTreeMap<String, Value>) -> String {
    let mut out = format!("time={} level={} msg={}", quote(time), level, quote(msg));
    for (k, v) in fields {
        let value = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push(' ');
        out.push_str(k);
        out.push('=');
        out.push_str(&quote(&value));
    }
    out
}

/// Quotes a value as logrus does: bare when it holds only `[A-Za-z0-9-._/@^+]`,
/// otherwise in Go's `%q` form.
fn quote(s: &str) -> String {
    let bare = |c: char| c.is_ascii_alphanumeric() || "-._/@^+".contains(c);
    if s.chars().all(bare) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0b}' => out.push_str("\\v"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// logrus's level names.
fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// Forwards `tracing` events at `max` and above to [`write_line`]; spans are accepted
/// and ignored (a log line carries its event's own fields only).
struct LogrusSubscriber {
    max: LevelFilter,
}

impl LogrusSubscriber {
    fn wants(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= &self.max
    }
}

impl Subscriber for LogrusSubscriber {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.wants(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.wants(metadata)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max)
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        // Ids must be non-zero; nothing is kept per span.
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut visitor = Fields::default();
        event.record(&mut visitor);
        write_line(
            level_name(event.metadata().level()),
            &visitor.message,
            &visitor.fields,
        );
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// The message and the other fields of one event.
#[derive(Default)]
struct Fields {
    message: String,
    fields: BTreeMap<String, Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.fields
                .insert(field.name().to_string(), Value::from(text));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields
                .insert(field.name().to_string(), Value::from(value));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields
            .insert(field.name().to_string(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields
            .insert(field.name().to_string(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields
            .insert(field.name().to_string(), Value::from(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriber_passes_max_level_and_above() {
        let warn = LogrusSubscriber {
            max: LevelFilter::WARN,
        };
        tracing::subscriber::with_default(warn, || {
            assert!(tracing::enabled!(Level::ERROR));
            assert!(tracing::enabled!(Level::WARN));
            assert!(!tracing::enabled!(Level::INFO));
            assert!(!tracing::enabled!(Level::DEBUG));
        });
        let debug = LogrusSubscriber {
            max: LevelFilter::DEBUG,
        };
        tracing::subscriber::with_default(debug, || {
            assert!(tracing::enabled!(Level::WARN));
            assert!(tracing::enabled!(Level::DEBUG));
            assert!(!tracing::enabled!(Level::TRACE));
        });
    }

    #[test]
    fn text_quotes_like_logrus() {
        assert_eq!(quote("plain-word_1.2/x@y^z+"), "plain-word_1.2/x@y^z+");
        assert_eq!(quote("two words"), "\"two words\"");
        assert_eq!(quote("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
        assert_eq!(quote("a\u{1}b"), "\"a\\x01b\"");
    }

    #[test]
    fn text_line_order() {
        let mut fields = BTreeMap::new();
        fields.insert("pid".to_string(), Value::from(12));
        fields.insert("id".to_string(), Value::from("c1"));
        assert_eq!(
            text_line("warning", "x y", "2024-01-02T03:04:05Z", &fields),
            "time=\"2024-01-02T03:04:05Z\" level=warning msg=\"x y\" id=c1 pid=12"
        );
    }

    #[test]
    fn json_line_sorted_keys() {
        let mut fields = BTreeMap::new();
        fields.insert("msg".to_string(), Value::from("clash"));
        fields.insert("id".to_string(), Value::from("c1"));
        assert_eq!(
            json_line("error", "boom", "2024-01-02T03:04:05Z", &fields),
            r#"{"fields.msg":"clash","id":"c1","level":"error","msg":"boom","time":"2024-01-02T03:04:05Z"}"#
        );
    }
}
