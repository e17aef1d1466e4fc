//! `berth ps`: the container's processes, as host pids in JSON or as `ps` output
//! filtered to the container (runc's ps.go).

use crate::cli::Globals;
use anyhow::{anyhow, bail, Context};
use std::io::Write;
use std::process::Command;

/// `ps [--format table|json] <container-id> [ps options]`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// select one of: table or json
    #[arg(short, long, default_value = "table", value_name = "FORMAT")]
    pub format: String,
    #[arg(value_name = "container-id")]
    pub id: String,
    /// options passed to ps (default -ef)
    #[arg(
        value_name = "ps options",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub ps_args: Vec<String>,
}

/// Prints the processes.
pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    berth_runtime::validate_id(&args.id)?;
    let container = super::runtime(globals)?.load(&args.id)?;
    let pids = container.processes()?;
    let text = match args.format.as_str() {
        // Go's encoder: a nil slice is `null`.
        "json" if pids.is_empty() => "null\n".to_string(),
        "json" => serde_json::to_string(&pids).context("serialize pids")? + "\n",
        "table" => table(&pids, &args.ps_args)?,
        _ => bail!("invalid format option"),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("write ps output to stdout")
}

/// Runs `ps` and keeps its header and the lines whose PID column is a container pid.
fn table(pids: &[i32], ps_args: &[String]) -> anyhow::Result<String> {
    let default = ["-ef".to_string()];
    let ps_args = if ps_args.is_empty() {
        &default[..]
    } else {
        ps_args
    };
    let out = Command::new("ps")
        .args(ps_args)
        .output()
        .context("run ps")?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        bail!("{}: {}", out.status, text.trim_end());
    }
    filter(&text, pids)
}

/// The filtering half of [`table`], separate for tests.
fn filter(ps_output: &str, pids: &[i32]) -> anyhow::Result<String> {
    let mut lines = ps_output.split('\n');
    let header = lines.next().unwrap_or_default();
    let index = header
        .split_whitespace()
        .position(|f| f == "PID")
        .ok_or_else(|| anyhow!("couldn't find PID field in ps output"))?;
    let mut out = format!("{header}\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let field = line.split_whitespace().nth(index).unwrap_or_default();
        let pid: i32 = field
            .parse()
            .map_err(|e| anyhow!("unable to parse pid: strconv.Atoi: parsing {field:?}: {e}"))?;
        if pids.contains(&pid) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::filter;

    #[test]
    fn keeps_header_and_container_pids() {
        let ps = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sleep\n";
        assert_eq!(
            filter(ps, &[42]).unwrap(),
            "UID PID PPID CMD\nroot 42 1 sleep\n"
        );
        assert!(filter("UID CMD\n", &[1]).is_err());
    }
}
