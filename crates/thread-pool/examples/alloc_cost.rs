//! Baseline costs on this machine: allocating 200k futures and 200k boxes.
use std::hint::black_box;
use std::time::Instant;

fn main() {
    for _ in 0..3 {
        let start = Instant::now();
        let v: Vec<_> = (0..200_000u64).map(|_| future::promise::<u64>()).collect();
        let t1 = start.elapsed();
        drop(black_box(v));
        let start = Instant::now();
        let v: Vec<_> = (0..200_000u64).map(|i| Box::new([i; 3])).collect();
        let t2 = start.elapsed();
        drop(black_box(v));
        let q = crossbeam_deque::Injector::new();
        let start = Instant::now();
        for i in 0..200_000u64 {
            q.push(Box::new(i) as Box<dyn Send>);
        }
        let t3 = start.elapsed();
        drop(q);
        println!("200k promises {t1:?}, 200k boxes {t2:?}, 200k injector pushes of boxes {t3:?}");
    }
}
