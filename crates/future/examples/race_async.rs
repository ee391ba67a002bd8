//! The `race` example from async code: three "downloads" on three threads,
//! awaited on a tokio runtime in the order they finish, with a timeout from
//! the runtime (the stream has none of its own). Run with
//! `cargo run -p future --example race_async`.

use std::future::{poll_fn, IntoFuture};
use std::pin::Pin;
use std::thread;
use std::time::{Duration, Instant};

use future::{as_completed_stream, promise};
use futures_core::Stream;

/// The next item of a stream (`StreamExt::next`, without a combinator crate).
async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
}

fn main() {
    let start = Instant::now();
    let mut futures = Vec::new();
    let mut threads = Vec::new();
    for (name, millis) in [("slow", 300u64), ("fast", 100), ("medium", 200)] {
        let (promise, future) = promise::<String>();
        futures.push(future);
        threads.push(thread::spawn(move || {
            if promise.set_running_or_notify_cancel() == Ok(true) {
                // Stands for real work (a download, a computation).
                thread::sleep(Duration::from_millis(millis));
                let _ = promise.set_result(format!("{name} done after {millis} ms"));
            }
        }));
    }
    // A task still queued behind busy workers: nobody starts it in time.
    let (_queued, stuck) = promise::<String>();
    futures.push(stuck);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        // One future awaited on its own: `(&f).await` clones, leaving it readable.
        let fast = (&futures[1]).await.unwrap();
        println!(
            "[{:>4} ms] awaited on its own: {fast}",
            start.elapsed().as_millis()
        );

        // All of them in completion order, giving up after one second.
        let mut stream = as_completed_stream(&futures);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            match tokio::time::timeout_at(deadline, next(&mut stream)).await {
                Ok(Some(done)) => println!(
                    "[{:>4} ms] {}",
                    start.elapsed().as_millis(),
                    done.await.unwrap_or_else(|e| e.to_string())
                ),
                Ok(None) => break,
                Err(_) => {
                    let left = stream.remaining();
                    println!("timed out; cancelling {} future(s)", left.len());
                    for f in &left {
                        f.cancel();
                    }
                }
            }
        }
        // The cancelled one ends as a blocking read would: Err(Cancelled).
        println!("stuck: {:?}", futures[3].clone().into_future().await);
    });
    for t in threads {
        t.join().unwrap();
    }
}
