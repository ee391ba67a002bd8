//! Without redis-server or the Celery virtualenv, the tests fail saying what
//! to install; they never skip. (Alone in its binary: it changes the
//! environment.)

use celery::testing::{celery_venv, RedisServer};

fn panic_text(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let payload = std::panic::catch_unwind(f).expect_err("should have failed");
    future::panic_message(&*payload)
}

#[test]
fn missing_tools_fail_with_what_to_install() {
    std::env::set_var("CELERY_VENV", "/nonexistent/celery-venv");
    let msg = panic_text(|| {
        celery_venv();
    });
    assert!(msg.contains("scripts/test cargo test --workspace"), "{msg}");
    assert!(msg.contains("/nonexistent/celery-venv"), "{msg}");

    std::env::set_var("REDIS_SERVER", "/nonexistent/redis-server");
    let msg = panic_text(|| {
        RedisServer::start();
    });
    assert!(msg.contains("apt-get install -y redis-server"), "{msg}");
}
