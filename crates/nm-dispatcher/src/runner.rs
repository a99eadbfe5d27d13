//! Runs one request's scripts, one at a time, each exec'd directly as
//! `script <interface> <action>` with cwd `/` and only the computed
//! environment. A script that outlives the limit is killed with its whole
//! process group, and the next one still runs.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};
use tracing::{debug, info, warn};

use crate::scripts::Script;

/// NetworkManager's DispatchResult values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Outcome {
    Success = 1,
    ExecFailed = 2,
    Failed = 3,
    Timeout = 4,
}

/// One line of `Action`'s reply: (script path, DispatchResult, message).
pub type Result = (String, u32, String);

pub struct Job<'a> {
    pub scripts: &'a [Script],
    pub interface: &'a str,
    pub action: &'a str,
    pub env: &'a [(String, String)],
    pub limit: Duration,
}

pub async fn run(job: Job<'_>) -> Vec<Result> {
    let mut results = Vec::with_capacity(job.scripts.len());
    for script in job.scripts {
        let shown = script.path.display().to_string();
        let (outcome, message) = match start(&job, script) {
            Err(e) => (Outcome::ExecFailed, format!("Failed to execute script '{shown}': {e}")),
            Ok(child) if !script.wait => {
                debug!("{shown} runs on without waiting");
                tokio::spawn(finish(child, shown.clone(), job.limit));
                (Outcome::Success, String::new())
            }
            Ok(child) => finish(child, shown.clone(), job.limit).await,
        };
        if outcome != Outcome::Success {
            warn!(action = job.action, "{message}");
        }
        results.push((shown, outcome as u32, message));
    }
    results
}

fn start(job: &Job<'_>, script: &Script) -> std::io::Result<Child> {
    info!(action = job.action, interface = job.interface, "running {}", script.path.display());
    Command::new(&script.path)
        .arg(job.interface)
        .arg(job.action)
        .env_clear()
        .envs(job.env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::null())
        // Its own group, so that a timeout also ends what it started.
        .process_group(0)
        .kill_on_drop(false)
        .spawn()
}

async fn finish(mut child: Child, shown: String, limit: Duration) -> (Outcome, String) {
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(status)) => describe(&shown, status),
        Ok(Err(e)) => (Outcome::Failed, format!("Script '{shown}': waiting for it failed: {e}")),
        Err(_) => {
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                // SAFETY: kill(2) on the process group this child leads; it has not been reaped yet.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
            let _ = child.wait().await;
            (Outcome::Timeout, format!("Script '{shown}' timed out after {} s", limit.as_secs_f32()))
        }
    }
}

fn describe(shown: &str, status: ExitStatus) -> (Outcome, String) {
    if status.success() {
        (Outcome::Success, String::new())
    } else if let Some(code) = status.code() {
        (Outcome::Failed, format!("Script '{shown}' exited with status {code}"))
    } else {
        (Outcome::Failed, format!("Script '{shown}' died with signal {}", status.signal().unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    use super::*;

    fn script(dir: &std::path::Path, name: &str, body: &str) -> Script {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        Script { path, wait: true }
    }

    #[tokio::test]
    async fn outcomes_and_the_time_limit() {
        let dir = std::env::temp_dir().join(format!("nm-dispatcher-runner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let scripts = vec![
            script(&dir, "a", "exit 3"),
            script(&dir, "b", "kill -9 $$"),
            script(&dir, "c", "sleep 30 & wait"),
            script(&dir, "d", &format!("echo \"$1 $2 $NM_DISPATCHER_ACTION $(pwd)\" > {}", out.display())),
            Script { path: PathBuf::from("/nonexistent/script"), wait: true },
        ];
        let env = vec![("NM_DISPATCHER_ACTION".to_string(), "up".to_string()), ("PATH".into(), "/usr/bin:/bin".into())];
        let started = std::time::Instant::now();
        let results = run(Job {
            scripts: &scripts,
            interface: "eth0",
            action: "up",
            env: &env,
            limit: Duration::from_millis(300),
        })
        .await;
        let outcomes: Vec<u32> = results.iter().map(|r| r.1).collect();
        assert_eq!(outcomes, vec![3, 3, 4, 1, 2], "{results:?}");
        assert!(results[0].2.contains("status 3"));
        assert!(results[1].2.contains("signal 9"));
        assert!(started.elapsed() < Duration::from_secs(10), "the sleeping script was killed at the limit");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "eth0 up up /\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
