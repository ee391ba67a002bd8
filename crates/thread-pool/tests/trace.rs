//! `Builder::trace` records *every* task: each way into the pool
//! (`submit`, `try_submit`, `submit_interruptible`, a scope's `submit`) must
//! leave a submission, a start and an end in the recorder.

use future::trace::{Recorder, Transition};
use thread_pool::ThreadPoolExecutor;

fn traced_pool(recorder: &Recorder) -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(2)
        .trace(recorder.clone())
        .build()
        .unwrap()
}

/// The transitions recorded for each task, by task number.
fn lives(recorder: &Recorder) -> Vec<Vec<Transition>> {
    let mut lives: Vec<Vec<Transition>> = Vec::new();
    for e in recorder.events() {
        let task = e.task as usize;
        if lives.len() <= task {
            lives.resize(task + 1, Vec::new());
        }
        lives[task].push(e.transition);
    }
    lives
}

fn assert_one_full_life(recorder: &Recorder, how: &str) {
    let full = vec![
        Transition::Submitted,
        Transition::Started,
        Transition::Finished,
    ];
    assert_eq!(
        lives(recorder),
        vec![full],
        "a task submitted with {how} on a traced pool was not recorded whole"
    );
}

#[test]
fn an_interruptible_task_is_recorded() {
    let recorder = Recorder::new();
    let pool = traced_pool(&recorder);
    let f = pool.submit_interruptible(|_token| Ok(7)).unwrap();
    assert_eq!(f.result().unwrap(), 7);
    pool.shutdown(true, false);
    assert_one_full_life(&recorder, "submit_interruptible");
}

#[test]
fn a_scoped_task_is_recorded() {
    let recorder = Recorder::new();
    let pool = traced_pool(&recorder);
    let seven = 7;
    let got = pool.scope(|s| s.submit(|| seven).unwrap().result().unwrap());
    assert_eq!(got, 7);
    pool.shutdown(true, false);
    assert_one_full_life(&recorder, "a scope's submit");
}

#[test]
fn a_plain_task_is_recorded() {
    let recorder = Recorder::new();
    let pool = traced_pool(&recorder);
    assert_eq!(pool.submit(|| 7).unwrap().result().unwrap(), 7);
    pool.shutdown(true, false);
    assert_one_full_life(&recorder, "submit");
}

#[test]
fn a_try_submitted_task_is_recorded() {
    let recorder = Recorder::new();
    let pool = traced_pool(&recorder);
    let Ok(f) = pool.try_submit(|| 7) else {
        panic!("an open pool with room refused try_submit");
    };
    assert_eq!(f.result().unwrap(), 7);
    pool.shutdown(true, false);
    assert_one_full_life(&recorder, "try_submit");
}
