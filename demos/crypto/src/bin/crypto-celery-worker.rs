//! `crypto-celery-worker`: a Celery worker for the crypto jobs
//! (`crypto.aes_job`, `crypto.aes_job_on_data`, `crypto.sha_job`) and the
//! harmless `rust.*` demo tasks (`celery::tasks::builtin`). `--help` for the flags.

fn main() -> std::process::ExitCode {
    celery::worker_main("crypto-celery-worker", crypto::celery_jobs::registry())
}
