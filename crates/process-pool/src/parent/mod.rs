//! The pool's side, in the program's own process: the handle that
//! `submit`s (`executor`, `map`), the state it shares with the dispatcher
//! thread (`shared`), a queued task (`task`), the dispatcher thread that
//! owns every pipe (`dispatcher`), and what the pool counts and records
//! (`stats`, `trace_sink`).

pub(crate) mod auto_chunk;
pub(crate) mod dispatcher;
pub(crate) mod executor;
pub(crate) mod map;
pub(crate) mod shared;
pub(crate) mod stats;
pub(crate) mod task;
pub(crate) mod trace_sink;
