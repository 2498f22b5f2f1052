//! Child processes of this binary (the webhook and the controller under test) and their
//! resident memory, read from /proc.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child as TokioChild, Command};

/// The line a `serve-*` child prints on stdout once it serves; the rest of the line is JSON.
pub const READY_PREFIX: &str = "VOLOPS-BENCH-READY ";

/// Environment variable: a command line (split at spaces) the `serve-*` children run under,
/// e.g. `VOLOPS_BENCH_WRAP="heaptrack -o /tmp/ctl"` to profile a child's heap (build with
/// `--features system-alloc` so that heaptrack sees the allocations; docs/PERFORMANCE.md,
/// "Large clusters"). Memory is then read from the child itself, whose readiness line
/// carries its process id.
pub const WRAP_ENV: &str = "VOLOPS_BENCH_WRAP";

/// Prints the readiness line (called by the child), with the child's process id added.
pub fn announce_ready(info: &Value) {
    let mut info = info.clone();
    if let Some(fields) = info.as_object_mut() {
        fields.insert("pid".to_owned(), Value::from(std::process::id()));
    }
    println!("{READY_PREFIX}{info}");
}

/// The program and arguments that run this binary with `args`, under [`WRAP_ENV`] if set.
fn command_line(exe: &Path, args: &[String], wrap: Option<&str>) -> (String, Vec<String>) {
    let exe = exe.display().to_string();
    let mut words: Vec<String> = wrap
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if words.is_empty() {
        return (exe, args.to_vec());
    }
    let program = words.remove(0);
    words.push(exe);
    words.extend(args.iter().cloned());
    (program, words)
}

/// A running child; killed when dropped.
pub struct Child {
    inner: TokioChild,
    pid: u32,
    /// The JSON the child announced when it became ready.
    pub info: Value,
}

impl Child {
    /// Runs this binary with `args` (a hidden `serve-*` subcommand) using `kubeconfig` and the
    /// extra environment `env`, and waits up to `ready_within` for its readiness line.
    pub async fn spawn(
        args: &[String],
        kubeconfig: &Path,
        env: &[(&str, String)],
        ready_within: Duration,
    ) -> Result<Child> {
        let exe = std::env::current_exe().context("cannot find the volops-bench executable")?;
        let wrap = std::env::var(WRAP_ENV).ok();
        let (program, program_args) = command_line(&exe, args, wrap.as_deref());
        let mut inner = Command::new(program)
            .args(program_args)
            .env("KUBECONFIG", kubeconfig)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start child {args:?}"))?;
        let spawned = inner
            .id()
            .ok_or_else(|| anyhow!("child {args:?} exited at once"))?;
        let stdout = inner
            .stdout
            .take()
            .ok_or_else(|| anyhow!("child has no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let info = tokio::time::timeout(ready_within, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(json) = line.strip_prefix(READY_PREFIX) {
                    return Ok::<_, anyhow::Error>(Some(serde_json::from_str::<Value>(json)?));
                }
            }
            Ok(None)
        })
        .await
        .with_context(|| format!("child {args:?} not ready within {ready_within:?}"))??
        .ok_or_else(|| anyhow!("child {args:?} exited before it was ready"))?;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        // Under a wrapper the process spawned is the wrapper's; the child names its own.
        let pid = info
            .get("pid")
            .and_then(Value::as_u64)
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(spawned);
        Ok(Child { inner, pid, info })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Current and peak resident memory.
    pub fn memory(&self) -> Result<Memory> {
        Memory::of(self.pid)
    }

    /// A string field of the readiness JSON.
    pub fn info_str(&self, key: &str) -> Result<&str> {
        self.info
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("child readiness line has no {key:?}: {}", self.info))
    }

    /// SIGTERM, then wait up to `grace` for a clean exit before a SIGKILL.
    pub async fn stop(mut self, grace: Duration) -> Result<()> {
        // A profiler writes its report after the child exits.
        let grace = match std::env::var_os(WRAP_ENV) {
            Some(_) => grace * 20,
            None => grace,
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .await;
        match tokio::time::timeout(grace, self.inner.wait()).await {
            Ok(status) => {
                let status = status.context("waiting for the child")?;
                if !status.success() {
                    bail!("child {} exited with {status}", self.pid);
                }
                Ok(())
            }
            Err(_) => {
                let _ = self.inner.kill().await;
                bail!("child {} did not stop within {grace:?}", self.pid)
            }
        }
    }
}

/// CPU time (user + system) a process has used so far, in seconds, from /proc/PID/stat.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    parse_cpu_seconds(&stat).ok_or_else(|| anyhow!("no utime/stime in /proc/{pid}/stat"))
}

/// Clock ticks per second of /proc's times (USER_HZ, 100 on Linux).
const USER_HZ: f64 = 100.0;

fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    // The command name may hold spaces; fields after its closing parenthesis are fixed.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// Resident set size of a process, in MiB.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Memory {
    pub rss_mib: f64,
    /// High-water mark of the resident set (VmHWM).
    pub peak_rss_mib: f64,
}

impl Memory {
    pub fn of(pid: u32) -> Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("cannot read /proc/{pid}/status"))?;
        Memory::parse(&status).ok_or_else(|| anyhow!("no VmRSS/VmHWM in /proc/{pid}/status"))
    }

    fn parse(status: &str) -> Option<Memory> {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map(|kib| kib / 1024.0)
        };
        Some(Memory {
            rss_mib: field("VmRSS:")?,
            peak_rss_mib: field("VmHWM:")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_child_runs_under_the_wrapper() {
        let exe = Path::new("/bin/bench");
        let args = vec!["serve-controller".to_owned()];
        assert_eq!(
            command_line(exe, &args, None),
            ("/bin/bench".to_owned(), args.clone())
        );
        assert_eq!(command_line(exe, &args, Some("  ")).0, "/bin/bench");
        assert_eq!(
            command_line(exe, &args, Some("heaptrack -o /tmp/ctl")),
            (
                "heaptrack".to_owned(),
                ["-o", "/tmp/ctl", "/bin/bench", "serve-controller"]
                    .map(String::from)
                    .to_vec()
            )
        );
    }

    #[test]
    fn memory_from_proc_status() {
        let status = "Name:\tx\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(
            Memory::parse(status),
            Some(Memory {
                rss_mib: 10.0,
                peak_rss_mib: 20.0
            })
        );
        assert_eq!(Memory::parse("Name:\tx\n"), None);
    }

    #[test]
    fn cpu_seconds_from_proc_stat() {
        let stat = "4242 (volops bench) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 4 0 100 0 0";
        assert_eq!(parse_cpu_seconds(stat), Some(3.0));
        assert_eq!(parse_cpu_seconds("4242 (x) S 1"), None);
        assert!(cpu_seconds(std::process::id()).unwrap() >= 0.0);
    }

    #[test]
    fn memory_of_this_process() {
        let m = Memory::of(std::process::id()).unwrap();
        assert!(m.rss_mib > 0.0 && m.peak_rss_mib >= m.rss_mib);
    }
}
