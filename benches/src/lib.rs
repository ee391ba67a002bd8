//! Shared helpers for the benchmarks (filled in as the benches land).
