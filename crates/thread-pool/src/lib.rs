//! ThreadPoolExecutor on raw threads (work in progress).
