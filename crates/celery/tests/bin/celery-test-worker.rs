//! `celery-test-worker`: `celery-worker` plus the test tasks of
//! `celery::testing::tasks` (files written, threads parked). Built only for
//! this crate's tests (the `test-worker` feature); never shipped.

fn main() -> std::process::ExitCode {
    celery::worker_main("celery-test-worker", celery::testing::tasks::registry())
}
