//! A container's log file as the CRI plugin writes it, read back into its streams.
//!
//! Each line is `<RFC 3339 time> <stdout|stderr> <F|P> <text>`: `F` ends a line of the
//! container's output, `P` is a partial line (the plugin splits lines longer than its
//! maximum) that the next entry of the same stream continues.

use std::fmt;

/// Which of the container's streams a log entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A log line that is not in the CRI format.
#[derive(Debug)]
pub struct BadLine {
    pub number: usize,
    pub text: String,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "log line {} is not `TIME STREAM F|P TEXT`: {:?}",
            self.number, self.text
        )
    }
}

/// The text of `log`, entry by entry, with its stream: a full entry ends with `\n`.
pub fn parse(log: &str) -> Result<Vec<(Stream, String)>, BadLine> {
    let mut out = Vec::new();
    for (i, line) in log.lines().enumerate() {
        let bad = || BadLine {
            number: i + 1,
            text: line.chars().take(200).collect(),
        };
        let mut parts = line.splitn(4, ' ');
        let (_time, stream, tag) = (parts.next(), parts.next(), parts.next());
        let text = parts.next().unwrap_or("");
        let stream = match stream {
            Some("stdout") => Stream::Stdout,
            Some("stderr") => Stream::Stderr,
            _ => return Err(bad()),
        };
        let text = match tag {
            Some("F") => format!("{text}\n"),
            Some("P") => text.to_string(),
            _ => return Err(bad()),
        };
        out.push((stream, text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_and_partial_entries() {
        let log = "2024-01-02T03:04:05.000000001Z stdout F hello world\n\
                   2024-01-02T03:04:05.1Z stderr P par\n\
                   2024-01-02T03:04:05.2Z stderr F tial\n\
                   2024-01-02T03:04:05.3Z stdout F \n";
        let got = parse(log).expect("parse");
        assert_eq!(
            got,
            [
                (Stream::Stdout, "hello world\n".to_string()),
                (Stream::Stderr, "par".to_string()),
                (Stream::Stderr, "tial\n".to_string()),
                (Stream::Stdout, "\n".to_string()),
            ]
        );
    }

    #[test]
    fn a_line_in_another_format_is_refused() {
        let e = parse("hello\n").expect_err("not CRI");
        assert_eq!(e.number, 1);
    }
}
