//! What the soak checks about the process as a whole after every round:
//! threads, descriptors, child processes. All read from `/proc`.

use std::time::{Duration, Instant};

/// Threads of this process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Open descriptors of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// (pid, ppid, state) of every process on the machine.
fn processes() -> Vec<(i32, i32, char)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) S ppid ...": the name may hold spaces, so split after ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let mut fields = rest.split(' ');
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        out.push((pid, ppid, state));
    }
    out
}

/// Children of this process and of the fork server: (zombies, live workers).
pub fn children() -> (Vec<i32>, Vec<i32>) {
    let me = std::process::id() as i32;
    let fork_server = process_pool::fork_server_info().map_or(-1, |info| info.pid);
    let mut zombies = Vec::new();
    let mut workers = Vec::new();
    for (pid, ppid, state) in processes() {
        if ppid != me && ppid != fork_server {
            continue;
        }
        if state == 'Z' {
            zombies.push(pid);
        } else if ppid == fork_server {
            workers.push(pid);
        }
    }
    (zombies, workers)
}

/// What a round may not leave behind.
#[derive(Clone, Copy, Debug)]
pub struct Baseline {
    threads: usize,
    fds: usize,
}

impl Baseline {
    pub fn now() -> Self {
        Baseline {
            threads: thread_count(),
            fds: fd_count(),
        }
    }

    /// Waits up to `settle` for threads, descriptors and children to come
    /// back to the baseline (a worker killed a moment ago may not be reaped
    /// yet), then names whatever did not.
    pub fn check(&self, settle: Duration) -> Vec<String> {
        let deadline = Instant::now() + settle;
        loop {
            let mut problems = Vec::new();
            let (threads, fds) = (thread_count(), fd_count());
            if threads > self.threads {
                problems.push(format!("threads grew: {} -> {threads}", self.threads));
            }
            if fds > self.fds {
                problems.push(format!("descriptors grew: {} -> {fds}", self.fds));
            }
            let (zombies, workers) = children();
            if !zombies.is_empty() {
                problems.push(format!("zombie children: {zombies:?}"));
            }
            if !workers.is_empty() {
                problems.push(format!("worker processes outlived their pool: {workers:?}"));
            }
            if problems.is_empty() || Instant::now() >= deadline {
                return problems;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
