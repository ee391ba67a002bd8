//! ProcessPoolExecutor on fork() and pipes (work in progress).
