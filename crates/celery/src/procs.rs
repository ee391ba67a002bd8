//! Running tasks in worker processes: our process pool behind the worker.
//!
//! The process pool runs plain `fn`s whose address is valid in its forked
//! workers; a Celery task is found by name at run time. So the worker sends
//! every task through one `fn`, [`dispatch`], which looks the name up in a
//! process-wide registry. That registry must be installed
//! ([`install_process_registry`]) *before* the fork server starts, so that
//! every worker process, forked from the fork server, inherits it:
//!
//! ```no_run
//! // At the top of `main`:
//! celery::install_process_registry(celery::tasks::builtin());
//! process_pool::start_fork_server(); // then threads, pools, the worker
//! ```

use std::sync::OnceLock;

use future::TaskError;
use serde_json::Value;

use crate::registry::Registry;

static PROCESS_REGISTRY: OnceLock<Registry> = OnceLock::new();

/// Installs the registry worker processes run tasks from (once; later calls
/// are ignored). Call it before `process_pool::start_fork_server()`.
pub fn install_process_registry(registry: Registry) {
    let _ = PROCESS_REGISTRY.set(registry);
}

/// The installed registry, if any.
pub fn process_registry() -> Option<&'static Registry> {
    PROCESS_REGISTRY.get()
}

/// The worker processes' initializer: ignore SIGINT, as Celery's prefork
/// children do. Ctrl-C in a terminal sends SIGINT to the whole process
/// group; it is the worker's to handle (the first is a warm shutdown, in
/// which the running tasks finish), so it must not kill the tasks.
///
/// Done here rather than left to the fork server: the pool's own choice for
/// its workers is "Ctrl-C kills", which suits a plain pool but not a worker
/// whose Ctrl-C means "finish what you are doing".
pub fn ignore_interrupts() {
    // SAFETY: installs a plain disposition (SIG_IGN: no handler code runs).
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
}

/// A task's failure as it crosses the pipe: (type name, message).
pub type WireFailure = (String, String);

/// Runs task `name` on JSON `args` in a worker process: the JSON result, or
/// the failure's type name and message (`TaskPanicked` for a panic).
pub fn dispatch((name, args): (String, String)) -> Result<String, WireFailure> {
    let Some(registry) = PROCESS_REGISTRY.get() else {
        return Err((
            "NotRegistered".to_string(),
            "no task registry in this worker process: call install_process_registry before start_fork_server".to_string(),
        ));
    };
    let args: Value = serde_json::from_str(&args).map_err(|e| {
        (
            "TypeError".to_string(),
            format!("arguments are not JSON: {e}"),
        )
    })?;
    match registry.run(&name, args) {
        Ok(v) => Ok(v.to_string()),
        Err(TaskError::Panicked(m)) => Err(("TaskPanicked".to_string(), m)),
        Err(e) => Err((e.name().to_string(), error_message(&e))),
    }
}

fn error_message(e: &TaskError) -> String {
    match e {
        TaskError::Failed(d) => d.to_string(),
        other => other.to_string(),
    }
}
