//! `berth list`: the containers under `--root`, as a table, JSON, or ids.

use crate::cli::Globals;
use anyhow::Context;
use berth_runtime::State;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// `list [--format table|json] [--quiet]`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// select one of: table or json
    #[arg(short, long, default_value = "table", value_name = "FORMAT")]
    pub format: String,
    /// display only container IDs
    #[arg(short, long)]
    pub quiet: bool,
}

/// Lists every container whose state can be read.
pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    let runtime = super::runtime(globals)?;
    let mut states: Vec<State> = runtime
        .list()?
        .iter()
        .filter_map(|c| c.state().ok())
        .collect();
    let mut passwd = None;
    for state in &mut states {
        if state.owner.is_empty() {
            let passwd = passwd
                .get_or_insert_with(|| std::fs::read_to_string("/etc/passwd").unwrap_or_default());
            state.owner = owner(&runtime.root().join(&state.id), passwd);
        }
    }
    let text = if args.quiet {
        states.iter().map(|s| format!("{}\n", s.id)).collect()
    } else {
        match args.format.as_str() {
            "table" => table(&states),
            "json" => json(&states)?,
            _ => anyhow::bail!("invalid format option"),
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("write list to stdout")?;
    Ok(())
}

/// runc's owner column: the user owning the container's state directory, or `#uid`
/// when /etc/passwd has no name for that uid.
fn owner(dir: &Path, passwd: &str) -> String {
    let Ok(meta) = std::fs::metadata(dir) else {
        return String::new();
    };
    let uid = meta.uid();
    user_name(passwd, uid).map_or_else(|| format!("#{uid}"), str::to_string)
}

/// The name of `uid` in an /etc/passwd text (`name:password:uid:...`), the first line
/// that has it; blank and `#` comment lines are skipped, as glibc's files backend
/// does. Read directly rather than through glibc's NSS: berth is linked statically
/// (hack/build-release.sh), where NSS would load shared modules. Users known only to
/// a directory service (LDAP, sssd) show as `#uid`, as in runc's own lookup.
fn user_name(passwd: &str, uid: u32) -> Option<&str> {
    passwd.lines().find_map(|line| {
        let line = line.trim();
        if line.starts_with('#') {
            return None;
        }
        let mut fields = line.split(':');
        let name = fields.next()?;
        let found = fields.nth(1)?.parse::<u32>().ok()? == uid;
        (found && !name.is_empty()).then_some(name)
    })
}

/// runc's JSON: one line, `null` when there is no container (Go's nil slice).
fn json(states: &[State]) -> anyhow::Result<String> {
    if states.is_empty() {
        return Ok("null\n".to_string());
    }
    Ok(serde_json::to_string(states).context("serialize container list")? + "\n")
}

/// runc's table: Go's tabwriter with minimum width 12 and padding 3; the last column
/// is not padded.
fn table(states: &[State]) -> String {
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for s in states {
        rows.push([
            s.id.clone(),
            s.pid.to_string(),
            s.status.to_string(),
            s.bundle.display().to_string(),
            s.created.clone(),
            s.owner.clone(),
        ]);
    }
    let mut widths = [12usize; 5];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count() + 3);
        }
    }
    let mut out = String::new();
    for row in &rows {
        for (cell, w) in row.iter().zip(widths.iter()) {
            out.push_str(&format!("{cell:<w$}"));
        }
        out.push_str(&row[5]);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{table, user_name};

    #[test]
    fn user_name_is_read_from_passwd_lines() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      #old:x:1000:1000::/:/bin/false\n\
                      \x20 indented:x:2:2::/:/bin/false\n\
                      broken line\n\
                      :x:7:7::/:/bin/false\n\
                      daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                      again:x:1:1::/:/bin/false\n";
        assert_eq!(user_name(passwd, 0), Some("root"));
        assert_eq!(user_name(passwd, 1), Some("daemon"));
        assert_eq!(user_name(passwd, 7), None);
        assert_eq!(
            user_name(passwd, 1000),
            None,
            "a commented-out line names no one"
        );
        assert_eq!(user_name(passwd, 2), Some("indented"));
        assert_eq!(user_name("", 0), None);
    }

    #[test]
    fn empty_table_is_runc_header() {
        assert_eq!(
            table(&[]),
            "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
        );
    }
}
