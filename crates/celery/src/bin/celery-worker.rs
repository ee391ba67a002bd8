//! `celery-worker`: a Rust Celery worker for the built-in `rust.*` tasks
//! (`--help` for the flags). Its whole logic is `celery::worker_main`.

fn main() -> std::process::ExitCode {
    celery::worker_main("celery-worker", celery::tasks::builtin())
}
