//! The pool's life cycle: open, shutting down, terminating, broken.
//!
//! ```text
//!                shutdown(cancel_futures = false)
//!        Open ─────────────────────────────────────► ShuttingDown
//!         │ │                                             │
//!         │ │ shutdown(cancel_futures = true)             │ shutdown(cancel_futures = true)
//!         │ └──────────────────────────► Terminating ◄────┘
//!         │                                   │
//!         │ break_pool                        │ break_pool (any state but Broken)
//!         └───────────────────────────► Broken { message, shut_down }
//!                                         (shutdown: shut_down = true)
//! ```
//!
//! | state          | submits  | queued tasks                      | workers                         |
//! |----------------|----------|-----------------------------------|---------------------------------|
//! | `Open`         | admitted | run                               | start on demand, park when idle |
//! | `ShuttingDown` | refused  | still run                         | drain the queue, then exit      |
//! | `Terminating`  | refused  | were cancelled (and `map`'s held items stop) | finish their task, then exit |
//! | `Broken`       | refused with the message | were failed with the message | finish their task, then exit |
//!
//! No state goes back to `Open`, and `Broken` keeps its first message: a
//! second failure, or a shutdown, does not replace it (a shutdown only
//! records itself in `shut_down`, for `is_shutdown`). The state lives in
//! the pool's gate (`shared.rs`), written only with the gate held
//! exclusively, so once a submit holding the gate shared has seen `Open`,
//! no transition can happen before its push is done.
//!
//! Two facts about the state are read far more often than it changes, by
//! threads that must not take the gate: "not open" (every worker's look at
//! an empty queue) and "the queued tasks were dropped" (every item a `map`
//! runner starts). `shared.rs` keeps each in an atomic flag beside the
//! gate, stored by the same transition ([`Life::is_closing`],
//! [`Life::queued_cancelled`]); neither flag is ever cleared, which is
//! what makes reading them without the gate safe.

/// Where one pool is in its life cycle. See the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Life {
    /// Takes tasks.
    #[default]
    Open,
    /// `shutdown(cancel_futures = false)`: no new task; the queued ones
    /// still run.
    ShuttingDown,
    /// `shutdown(cancel_futures = true)`: no new task; the queued ones were
    /// cancelled, and a running `map` starts no more items.
    Terminating,
    /// An initializer failed, or no worker thread could be started: no new
    /// task, and the queued ones were failed with `message`.
    Broken {
        /// Why, as every refused submit and every failed task reports it.
        message: String,
        /// Whether `shutdown` was also called (before or after the break).
        shut_down: bool,
    },
}

impl Life {
    /// `shutdown(.., cancel_futures)`: the next state. Idempotent, and a
    /// later call may only go further (ShuttingDown -> Terminating).
    pub(crate) fn shut_down(self, cancel_futures: bool) -> Life {
        match self {
            Life::Open | Life::ShuttingDown if cancel_futures => Life::Terminating,
            Life::Open | Life::ShuttingDown => Life::ShuttingDown,
            Life::Terminating => Life::Terminating,
            Life::Broken { message, .. } => Life::Broken {
                message,
                shut_down: true,
            },
        }
    }

    /// The pool breaks with `message`: the next state. A pool already
    /// broken keeps its first message.
    pub(crate) fn break_with(self, message: String) -> Life {
        match self {
            Life::Open => Life::Broken {
                message,
                shut_down: false,
            },
            Life::ShuttingDown | Life::Terminating => Life::Broken {
                message,
                shut_down: true,
            },
            broken @ Life::Broken { .. } => broken,
        }
    }

    /// True in every state but `Open`: no task is admitted, and workers
    /// leave once the queue is empty.
    pub(crate) fn is_closing(&self) -> bool {
        *self != Life::Open
    }

    /// True once the queued tasks were dropped (cancelled or failed), so a
    /// running `map` must start no more of its items.
    pub(crate) fn queued_cancelled(&self) -> bool {
        matches!(self, Life::Terminating | Life::Broken { .. })
    }

    /// True once `shutdown` was called.
    pub(crate) fn is_shut_down(&self) -> bool {
        match self {
            Life::Open => false,
            Life::ShuttingDown | Life::Terminating => true,
            Life::Broken { shut_down, .. } => *shut_down,
        }
    }

    /// The broken-pool message, if the pool is broken.
    pub(crate) fn broken(&self) -> Option<&str> {
        match self {
            Life::Broken { message, .. } => Some(message),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broken(message: &str, shut_down: bool) -> Life {
        Life::Broken {
            message: message.into(),
            shut_down,
        }
    }

    #[test]
    fn shutdown_goes_only_forward() {
        assert_eq!(Life::Open.shut_down(false), Life::ShuttingDown);
        assert_eq!(Life::Open.shut_down(true), Life::Terminating);
        assert_eq!(Life::ShuttingDown.shut_down(false), Life::ShuttingDown);
        assert_eq!(Life::ShuttingDown.shut_down(true), Life::Terminating);
        // cancel_futures = false does not undo an earlier cancel.
        assert_eq!(Life::Terminating.shut_down(false), Life::Terminating);
    }

    #[test]
    fn a_broken_pool_keeps_its_first_message_and_records_a_shutdown() {
        let first = Life::Open.break_with("first".into());
        assert_eq!(first, broken("first", false));
        assert_eq!(first.clone().break_with("second".into()), first);
        assert_eq!(first.shut_down(true), broken("first", true));
        assert_eq!(
            Life::ShuttingDown.break_with("late".into()),
            broken("late", true)
        );
    }

    #[test]
    fn the_flags_read_without_the_gate_never_go_back() {
        // Every state reachable from Open, in an order that takes every arrow.
        let path = [
            Life::Open,
            Life::ShuttingDown,
            Life::Terminating,
            broken("m", true),
        ];
        for pair in path.windows(2) {
            assert!(pair[1].is_closing() >= pair[0].is_closing());
            assert!(pair[1].queued_cancelled() >= pair[0].queued_cancelled());
            assert!(pair[1].is_shut_down() >= pair[0].is_shut_down());
        }
        assert!(!Life::Open.is_closing());
        assert!(!Life::ShuttingDown.queued_cancelled());
        assert!(broken("m", false).queued_cancelled());
        assert_eq!(broken("m", false).broken(), Some("m"));
        assert!(!broken("m", false).is_shut_down());
    }
}
