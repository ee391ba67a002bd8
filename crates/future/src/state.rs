//! The four states a future can be in, and what each predicate says of them.
//!
//! ```text
//!              cancel()
//!   Pending ───────────────────────────────► Cancelled ──┐ set_running_or_notify_cancel()
//!      │                                                 │ returns false: the executor
//!      │ set_running_or_notify_cancel() -> true          │ skips the task (state stays
//!      ▼                                                 ◄─┘ Cancelled)
//!   Running
//!      │ set_result() / set_error() / promise dropped
//!      ▼
//!   Finished (a value, or a TaskError)
//!
//!   Pending can also go straight to Finished (as in Python).
//! ```
//!
//! | state     | `running()` | `cancelled()` | `done()` | Debug word  |
//! |-----------|-------------|---------------|----------|-------------|
//! | Pending   | false       | false         | false    | `pending`   |
//! | Running   | true        | false         | false    | `running`   |
//! | Cancelled | false       | true          | true     | `cancelled` |
//! | Finished  | false       | false         | true     | `finished`  |

use std::fmt;

/// The public state of a future (see the module docs for the diagram).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum State {
    /// Created, not yet picked up by an executor. The only state `cancel()` can leave.
    Pending = 0,
    /// An executor is running the task.
    Running = 1,
    /// Cancelled before it ran. Final.
    Cancelled = 2,
    /// Completed with a value or an error. Final.
    Finished = 3,
}

impl State {
    /// The word Python's repr uses for this state.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Cancelled => "cancelled",
            State::Finished => "finished",
        }
    }

    /// True for the two final states.
    pub fn is_done(self) -> bool {
        matches!(self, State::Cancelled | State::Finished)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
