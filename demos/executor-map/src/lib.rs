//! The loiter demo of Executor.map (work in progress).
