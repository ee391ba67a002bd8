//! The `Executor` trait on the Celery executor: the same generic code as on
//! the pools, and futures from a thread pool and from Celery in one
//! `as_completed`.

mod common;

use celery::{tasks, CeleryExecutor, Registry};
use common::*;
use executor::{ErrorKind, Executor, ThreadPoolExecutor};
use future::{as_completed, FutureError, TaskError};

fn square(x: u64) -> u64 {
    x * x
}

fn parse(s: String) -> Result<u64, std::num::ParseIntError> {
    s.parse()
}

fn sum_of_squares(ex: &impl Executor, n: u64) -> (u64, u64) {
    let futures: Vec<_> = (1..=n).map(|x| ex.submit(square, x).unwrap()).collect();
    let submitted = as_completed(&futures, Some(LONG))
        .map(|f| f.unwrap().result().unwrap())
        .sum();
    let mapped = ex.map(square, 1..=n).unwrap().map(Result::unwrap).sum();
    (submitted, mapped)
}

fn registry() -> Registry {
    let mut r = tasks::builtin();
    r.register("test.square", square);
    r.register_fallible("test.parse", parse);
    r
}

#[test]
fn generic_code_runs_on_celery_workers_and_mixes_with_pool_futures() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let _w = {
        // An in-process worker that knows the test's own tasks.
        let mut config = celery::WorkerConfig::new(&url);
        config.concurrency = 2;
        let worker = celery::Worker::new(config, registry());
        let stop = worker.stop_flag();
        let h = std::thread::spawn(move || worker.run().unwrap());
        scopeguard(stop, h)
    };
    let ex = CeleryExecutor::builder(&url)
        .registry(registry())
        .connect()
        .unwrap();
    assert_eq!(sum_of_squares(&ex, 10), (385, 385));

    let bad = Executor::submit_fallible(&ex, parse, "x".to_string()).unwrap();
    match bad.result_timeout(LONG) {
        Err(FutureError::Task(TaskError::Failed(e))) => assert_eq!(e.type_name(), "ParseIntError"),
        other => panic!("unexpected {other:?}"),
    }

    let threads = ThreadPoolExecutor::new(2);
    let mut mixed = vec![Executor::submit(&threads, square, 3).unwrap()];
    mixed.push(Executor::submit(&ex, square, 4).unwrap());
    let total: u64 = as_completed(&mixed, Some(LONG))
        .map(|f| f.unwrap().result().unwrap())
        .sum();
    assert_eq!(total, 25);

    fn unregistered(x: u64) -> u64 {
        x
    }
    let refused = Executor::submit(&ex, unregistered, 1).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidArgument);
    Executor::shutdown(&ex, true, false);
    let refused = Executor::submit(&ex, square, 1).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Shutdown);
}

struct Guard(
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    Option<std::thread::JoinHandle<()>>,
);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(h) = self.1.take() {
            let _ = h.join();
        }
    }
}

fn scopeguard(
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    h: std::thread::JoinHandle<()>,
) -> Guard {
    Guard(stop, Some(h))
}
