//! AES-CTR crypto workloads on our executors (work in progress).
