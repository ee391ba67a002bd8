//! The processes the pool starts: the fork server, forked while the
//! program is single-threaded, which forks every worker and reports its
//! exit status (`fork_server`); and the worker's loop, which reads a task,
//! runs it and writes its result (`worker`, reading arguments with
//! `reader`).

pub(crate) mod fork_server;
pub(crate) mod reader;
pub(crate) mod worker;
