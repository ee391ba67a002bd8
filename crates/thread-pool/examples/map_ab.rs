//! An A/B harness for the default `map` over 1M cheap items: per map, the wall time, the
//! time of the `map` call alone (collecting the input into the bag), the process CPU time
//! and the context switches, with rayon's `par_iter` run after each map in the same process.
//! Build it at each commit to compare (`cargo build --release --example map_ab`, copy the
//! binary away) and run the copies in turn, several rounds: `map_ab [MAPS]` (default 200).
//! On a loaded machine the CPU time per map and the 10th percentile of the wall time are the
//! steadier figures; rayon's own figure moves with code layout from one build to the next.
use rayon::prelude::*;
use std::hint::black_box;
use std::time::Instant;

fn cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Context switches of the process so far (voluntary, involuntary).
fn switches() -> (i64, i64) {
    // SAFETY: getrusage writes the struct we pass; zeroed is a valid rusage.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    (u.ru_nvcsw, u.ru_nivcsw)
}

fn main() {
    const N: u64 = 1_000_000;
    let reps: usize = std::env::args().nth(1).map_or(200, |s| s.parse().unwrap());
    let pool = thread_pool::ThreadPoolExecutor::new(2);
    let rp = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let mut ours = Vec::new();
    let mut ours_cpu = Vec::new();
    let mut ray = Vec::new();
    let mut call = Vec::new();
    let (mut vol, mut invol) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let (t, c, sw) = (Instant::now(), cpu(), switches());
        let it = pool.map(|x: u64| black_box(x * 2), 0..N).unwrap();
        call.push(t.elapsed().as_secs_f64() * 1e3);
        let s: u64 = it.map(Result::unwrap).sum();
        ours.push(t.elapsed().as_secs_f64() * 1e3);
        ours_cpu.push((cpu() - c) * 1e3);
        let sw2 = switches();
        vol.push((sw2.0 - sw.0) as f64);
        invol.push((sw2.1 - sw.1) as f64);
        assert_eq!(s, N * (N - 1));
        let t = Instant::now();
        let s: u64 = rp.install(|| (0..N).into_par_iter().map(|x| black_box(x * 2)).sum());
        ray.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(s, N * (N - 1));
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (v[v.len() / 2], v[v.len() / 10], v[v.len() * 9 / 10])
    };
    let (o, r, oc) = (med(&mut ours), med(&mut ray), med(&mut ours_cpu));
    println!(
        "map call {:.3} ms, switches per map: {} voluntary, {} involuntary",
        med(&mut call).0,
        med(&mut vol).0,
        med(&mut invol).0
    );
    println!("ours {:.3} ms (p10 {:.3} p90 {:.3}) cpu {:.3} ms | rayon {:.3} ms (p10 {:.3} p90 {:.3}) | ratio of medians {:.3}x | load {}",
        o.0, o.1, o.2, oc.0, r.0, r.1, r.2, r.0 / o.0, std::fs::read_to_string("/proc/loadavg").unwrap().split(' ').next().unwrap());
}
