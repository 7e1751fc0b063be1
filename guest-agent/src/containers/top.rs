//! `docker top`: the host's `ps` with the client's arguments, its rows kept to the
//! container's processes, as dockerd does it; a table read from /proc where no `ps`
//! is installed.

use bollard_stubs::models::ContainerTopResponse;

/// Why a `ps` table could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TopError {
    /// Arguments that would rename the PID column, which the rows are matched on.
    #[error("specifying \"{0}\" is not allowed")]
    Renamed(String),
    /// `ps` ran and failed: the first line of what it printed on stderr.
    #[error("{0}")]
    Ps(String),
    #[error("Couldn't find PID field in ps output")]
    NoPid,
    #[error("Unexpected pid '{0}'")]
    BadPid(String),
}

/// dockerd's default arguments.
pub const DEFAULT_ARGS: &str = "-ef";

/// Refuses `-o x=PID…`-style renames of a column to a PID title, except `pid=`
/// (dockerd's rule: any other column titled PID would be mistaken for it).
pub fn check_args(args: &str) -> Result<(), TopError> {
    let words: Vec<&str> = args.split_ascii_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        // `key=PID…`, or `key=` with the title as the next word.
        let Some((key, value)) = w.split_once('=') else {
            continue;
        };
        let title = match value {
            "" => words.get(i + 1).copied().unwrap_or(""),
            v => v,
        };
        if title.starts_with("PID") && key != "pid" && i > 0 {
            return Err(TopError::Renamed(format!("{key}={title}")));
        }
    }
    Ok(())
}

/// Runs `ps` with `args` (split on single spaces, as dockerd does) and keeps the rows
/// of `pids`. `None` when this system has no `ps`.
pub fn ps(args: &str, pids: &[u32]) -> Option<Result<ContainerTopResponse, TopError>> {
    let args: Vec<&str> = args.split(' ').collect();
    let only: Vec<String> = pids.iter().map(u32::to_string).collect();
    // Asking for just these pids is cheaper; some options (like `f`) refuse `-q`.
    let narrowed = std::process::Command::new("ps")
        .args(&args)
        .arg(format!("-q{}", only.join(",")))
        .output();
    let out = match narrowed {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Ok(o) if o.status.success() => o,
        _ => match std::process::Command::new("ps").args(&args).output() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => return Some(Err(TopError::Ps(e.to_string()))),
            Ok(o) if !o.status.success() => {
                let err = String::from_utf8_lossy(&o.stderr);
                let first = err.lines().next().unwrap_or_default();
                return Some(Err(TopError::Ps(match first {
                    "" => format!("exit status {}", o.status.code().unwrap_or(-1)),
                    line => line.to_string(),
                })));
            }
            Ok(o) => o,
        },
    };
    Some(table(&String::from_utf8_lossy(&out.stdout), pids))
}

/// `ps` output as titles and rows: the rows whose PID is one of `pids`, with the
/// thread lines (`-` in the PID column, from `m`) that follow such a row. The last
/// column keeps its spaces (a command line).
pub fn table(output: &str, pids: &[u32]) -> Result<ContainerTopResponse, TopError> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or(TopError::NoPid)?;
    let mut rows = Vec::new();
    let mut after_ours = false;
    for line in lines.filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let Some(pid) = fields.get(pid_col) else {
            continue;
        };
        let ours = match *pid {
            "-" => after_ours,
            p => {
                let p: u32 = p.parse().map_err(|_| TopError::BadPid(p.to_string()))?;
                after_ours = pids.contains(&p);
                after_ours
            }
        };
        if ours {
            rows.push(fit(&fields, titles.len()));
        }
    }
    Ok(ContainerTopResponse {
        titles: Some(titles),
        processes: Some(rows),
    })
}

/// A row with as many fields as there are titles, the overhang joined into the last.
fn fit(fields: &[&str], n: usize) -> Vec<String> {
    let n = n.max(1);
    if fields.len() <= n {
        return fields.iter().map(|f| f.to_string()).collect();
    }
    let mut row: Vec<String> = fields[..n - 1].iter().map(|f| f.to_string()).collect();
    row.push(fields[n - 1..].join(" "));
    row
}

/// `ps -ef`-like rows read from /proc, for systems without `ps`.
pub fn from_proc(pids: &[u32]) -> ContainerTopResponse {
    let mut rows = Vec::new();
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .unwrap_or("0")
            .to_string();
        let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|v| v.split_whitespace().next().map(str::to_string))
            })
            .unwrap_or_default();
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                b.split(|c| *c == 0)
                    .filter(|p| !p.is_empty())
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        rows.push(vec![uid, pid.to_string(), ppid, cmd]);
    }
    ContainerTopResponse {
        titles: Some(vec![
            "UID".into(),
            "PID".into(),
            "PPID".into(),
            "CMD".into(),
        ]),
        processes: Some(rows),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EF: &str = "UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init
root         700       1  0 10:01 ?        00:00:00 sh -c sleep 3600 & wait
root         701     700  0 10:01 ?        00:00:00 sleep 3600
";

    #[test]
    fn rows_are_the_containers_and_the_command_keeps_its_spaces() {
        let t = table(EF, &[700, 701]).unwrap();
        assert_eq!(t.titles.as_ref().unwrap().len(), 8);
        let rows = t.processes.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][1], "700");
        assert_eq!(rows[0][7], "sh -c sleep 3600 & wait");
        assert_eq!(rows[1][7], "sleep 3600");
    }

    #[test]
    fn thread_lines_follow_their_process() {
        let out = "PID TTY TIME CMD\n700 ? 00:00:00 sh\n- - 00:00:00 -\n1 ? 00:00:01 init\n- - 00:00:00 -\n";
        let rows = table(out, &[700]).unwrap().processes.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1][0], "-");
    }

    #[test]
    fn output_without_a_pid_column_or_with_a_bad_pid_is_an_error() {
        assert!(matches!(
            table("USER CMD\nroot x\n", &[1]),
            Err(TopError::NoPid)
        ));
        assert!(matches!(
            table("PID CMD\nabc x\n", &[1]),
            Err(TopError::BadPid(p)) if p == "abc"
        ));
    }

    #[test]
    fn only_pid_may_be_titled_pid() {
        assert!(check_args("-ef").is_ok());
        assert!(check_args("-o pid=PID,comm").is_ok());
        assert!(matches!(
            check_args("-o user=PID"),
            Err(TopError::Renamed(r)) if r == "user=PID"
        ));
        assert!(check_args("-o user= PID").is_err());
    }
}
