//! Where a lane's events are stored: fixed-size blocks, chained, written by
//! one thread and read by any, with no lock on the writer's path.
//!
//! An event is two words (16 bytes): the task's number, and its stamp (the
//! clock's ticks with the transition in the low two bits, `recorder.rs`).
//! A [`Writer`] (owned by the one thread that records on a lane) stores an
//! event's two words into the next slot of its current block with plain
//! (`Relaxed`) stores, then publishes the block's new length with a
//! `Release` store. A reader loads that length with `Acquire`, which makes
//! every slot below it visible, and reads only those slots. A full block is
//! never grown or moved: the writer chains a new one (the only step that
//! takes the [`Chain`]'s lock, once per [`BLOCK_EVENTS`] events), so a
//! reader never sees memory that moved under it.
//!
//! The slots are atomics, not `UnsafeCell`s: a `Relaxed` store or load of a
//! `u64` compiles to a plain move on the machines we run on, and the module
//! needs no `unsafe`. The protocol is checked by a loom model (the
//! `loom_` tests below, run by `.ci/run`).
//!
//! Blocks come from, and go back to, a small global free list (not under
//! loom), so a recorder that is cleared and refilled (a benchmark's
//! iterations, a program that writes its trace every minute) reuses memory
//! it already touched: no allocation and no page fault per block.

use std::collections::VecDeque;

use crate::sync::{
    lock, Arc, AtomicU64, AtomicUsize, Mutex,
    Ordering::{Acquire, Relaxed, Release},
};

/// Events per block: 16 KiB, four pages.
pub(super) const BLOCK_EVENTS: usize = 1024;

/// The free list keeps at most this many blocks (16 MiB): enough for a
/// recorder that holds 1M events at a time to refill without touching new
/// pages, small enough to keep for the life of the process.
#[cfg(not(loom))]
const FREE_MAX: usize = 1024;

/// One block: `capacity` slots of two words, and how many are published.
pub(super) struct Block {
    /// Slot `i` is words `2i` (the task) and `2i + 1` (the stamp).
    words: Box<[AtomicU64]>,
    /// Slots `0..len` are written; only the writer stores it.
    len: AtomicUsize,
}

impl Block {
    /// A block of `capacity` events, from the free list when it has one.
    fn new(capacity: usize) -> Block {
        let words = free_list::take(capacity)
            .unwrap_or_else(|| (0..2 * capacity).map(|_| AtomicU64::new(0)).collect());
        Block {
            words,
            len: AtomicUsize::new(0),
        }
    }

    fn capacity(&self) -> usize {
        self.words.len() / 2
    }
}

impl Drop for Block {
    /// The last owner gone (no writer, no chain): its words go back to the
    /// free list.
    fn drop(&mut self) {
        free_list::give(std::mem::take(&mut self.words));
    }
}

/// A lane's blocks, oldest first. Shared by the writer (which appends) and
/// the recorder (which reads and takes).
pub(super) struct Chain {
    blocks: Mutex<Blocks>,
}

struct Blocks {
    list: VecDeque<Arc<Block>>,
    /// Events of the first block already taken ([`Chain::read`] with
    /// `take`): a reader starts after them.
    taken: usize,
    /// The [`Writer`] is dropped (its thread exited, or forgot the lane):
    /// the last block is final, and goes once read like any other.
    writer_gone: bool,
}

impl Chain {
    /// An empty chain and the writer that fills it: a first block of
    /// `first` events, then blocks of `rest` ([`BLOCK_EVENTS`] but in the
    /// tests). A lane that may see only a few events (a worker process's,
    /// recorded by the dispatcher) starts small.
    pub(super) fn new(first: usize, rest: usize) -> (Arc<Chain>, Writer) {
        let block = Arc::new(Block::new(first));
        let chain = Arc::new(Chain {
            blocks: Mutex::new(Blocks {
                list: VecDeque::from([Arc::clone(&block)]),
                taken: 0,
                writer_gone: false,
            }),
        });
        let writer = Writer {
            chain: Arc::clone(&chain),
            block,
            len: 0,
            rest,
        };
        (chain, writer)
    }

    /// Calls `each(task, stamp)` for every published event, in the order
    /// they were written, up to the first whose stamp `keep` refuses (the
    /// events after it stay for the next read). With `take`, the events
    /// read are removed: the next read starts after them, and every block
    /// they filled goes back to the free list.
    pub(super) fn read(
        &self,
        keep: impl Fn(u64) -> bool,
        take: bool,
        mut each: impl FnMut(u64, u64),
    ) {
        let mut blocks = lock(&self.blocks);
        // Where the read stopped: (block index, events read in it).
        let mut stop = (0, blocks.taken);
        'blocks: for (i, block) in blocks.list.iter().enumerate() {
            let start = if i == 0 { blocks.taken } else { 0 };
            // Acquire: pairs with the writer's Release store of `len`, so
            // every slot below it is written and visible.
            let len = block.len.load(Acquire);
            stop = (i, start);
            for slot in start..len {
                // Relaxed: ordered by the Acquire load of `len` above.
                let task = block.words[2 * slot].load(Relaxed);
                let stamp = block.words[2 * slot + 1].load(Relaxed);
                if !keep(stamp) {
                    break 'blocks;
                }
                each(task, stamp);
                stop = (i, slot + 1);
            }
        }
        if take {
            blocks.take_until(stop);
        }
    }

    /// Nothing is left to read here and nothing will be written: the
    /// writer is gone and every event was taken. The recorder forgets such
    /// a chain, so that threads that come and go (a pool's retired workers,
    /// short-lived submitters) leave nothing behind once their events are
    /// taken.
    pub(super) fn is_done(&self) -> bool {
        let blocks = lock(&self.blocks);
        blocks.writer_gone && blocks.list.is_empty()
    }

    /// Drops every block now (the recorder is gone: nothing writes or reads
    /// here again but a writer that still holds its current block).
    pub(super) fn free(&self) {
        let mut blocks = lock(&self.blocks);
        blocks.list.clear();
        blocks.taken = 0;
    }
}

impl Blocks {
    /// Removes the events before `(block, slot)`: the blocks before that
    /// one are dropped (back to the free list once no one holds them), and
    /// so is that one if it is read to its end and the writer will not
    /// write into it again: it is full and not the last (the writer's
    /// current block), or the writer is gone.
    fn take_until(&mut self, (block, slot): (usize, usize)) {
        self.list.drain(..block);
        self.taken = slot;
        // Acquire: as in `read`. With `writer_gone` (set under this lock
        // by the writer's drop, after its last store) the length is final.
        let read_to_end = |b: &Block| slot == b.capacity() || slot == b.len.load(Acquire);
        let finished = self.list.len() > 1 || self.writer_gone;
        if finished && self.list.front().is_some_and(|b| read_to_end(b)) {
            self.list.pop_front();
            self.taken = 0;
        }
    }
}

/// The writing end of one lane's [`Chain`]: only the thread that owns it
/// stores events, so it needs no lock but to chain a new block.
pub(super) struct Writer {
    chain: Arc<Chain>,
    /// The block being filled: always the last of the chain.
    block: Arc<Block>,
    /// Events written into `block` (the writer's own copy of its `len`).
    len: usize,
    /// The size of the blocks after the first.
    rest: usize,
}

impl Writer {
    /// Stores one event and publishes it.
    #[inline]
    pub(super) fn push(&mut self, task: u64, stamp: u64) {
        if self.len == self.block.capacity() {
            self.next_block();
        }
        let slot = self.len;
        // Relaxed: published by the Release store of `len` below.
        self.block.words[2 * slot].store(task, Relaxed);
        self.block.words[2 * slot + 1].store(stamp, Relaxed);
        self.len = slot + 1;
        // Release: a reader that loads this length (Acquire) sees the two
        // stores above.
        self.block.len.store(self.len, Release);
    }

    /// The current block is full: chain a fresh one. Under the chain's
    /// lock, so a reader sees the whole list or the old one.
    #[cold]
    fn next_block(&mut self) {
        let block = Arc::new(Block::new(self.rest));
        let mut blocks = lock(&self.chain.blocks);
        blocks.list.push_back(Arc::clone(&block));
        self.block = block;
        self.len = 0;
    }
}

impl Drop for Writer {
    /// Says so to the chain: its last block is final (see `take_until`).
    fn drop(&mut self) {
        lock(&self.chain.blocks).writer_gone = true;
    }
}

/// The global free list of blocks' words (off under loom: its statics
/// would outlive a model).
#[cfg(not(loom))]
mod free_list {
    use super::{BLOCK_EVENTS, FREE_MAX};
    use crate::sync::AtomicU64;
    use std::sync::Mutex;

    static FREE: Mutex<Vec<Box<[AtomicU64]>>> = Mutex::new(Vec::new());

    /// A used block's words, if the list has one of `capacity` events.
    /// Their old values stay: a reader never reads a slot that was not
    /// written again (it reads below the new `len` only).
    pub(super) fn take(capacity: usize) -> Option<Box<[AtomicU64]>> {
        if capacity != BLOCK_EVENTS {
            return None;
        }
        FREE.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    /// Keeps `words` for the next block, unless the list is full.
    pub(super) fn give(words: Box<[AtomicU64]>) {
        if words.len() != 2 * BLOCK_EVENTS {
            return;
        }
        let mut free = FREE.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < FREE_MAX {
            free.push(words);
        }
    }
}

#[cfg(loom)]
mod free_list {
    use crate::sync::AtomicU64;

    pub(super) fn take(_capacity: usize) -> Option<Box<[AtomicU64]>> {
        None
    }

    pub(super) fn give(_words: Box<[AtomicU64]>) {}
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn read_all(chain: &Chain, take: bool) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        chain.read(|_| true, take, |task, stamp| out.push((task, stamp)));
        out
    }

    #[test]
    fn an_event_is_two_words() {
        assert_eq!(std::mem::size_of::<[AtomicU64; 2]>(), 16);
    }

    #[test]
    fn events_cross_blocks_in_order_and_take_removes_them() {
        let (chain, mut writer) = Chain::new(3, 3);
        for i in 0..7 {
            writer.push(i, 10 * i);
        }
        let all: Vec<_> = (0..7).map(|i| (i, 10 * i)).collect();
        assert_eq!(read_all(&chain, false), all);
        assert_eq!(read_all(&chain, true), all);
        assert_eq!(read_all(&chain, false), []);
        // Only the writer's current block is left.
        assert_eq!(lock(&chain.blocks).list.len(), 1);
        writer.push(7, 70);
        assert_eq!(read_all(&chain, false), [(7, 70)]);
    }

    #[test]
    fn a_small_first_block_is_followed_by_blocks_of_the_rest_size() {
        let (chain, mut writer) = Chain::new(1, 3);
        for i in 0..5 {
            writer.push(i, i);
        }
        let sizes: Vec<_> = lock(&chain.blocks)
            .list
            .iter()
            .map(|b| b.capacity())
            .collect();
        assert_eq!(sizes, [1, 3, 3]);
        assert_eq!(read_all(&chain, true).len(), 5);
    }

    #[test]
    fn a_chain_whose_writer_is_gone_empties_once_read() {
        let (chain, mut writer) = Chain::new(2, 2);
        for i in 0..3 {
            writer.push(i, i);
        }
        drop(writer);
        assert!(!chain.is_done(), "three events to read");
        assert_eq!(read_all(&chain, false).len(), 3);
        assert!(!chain.is_done(), "a copy takes nothing");
        assert_eq!(read_all(&chain, true).len(), 3);
        assert!(
            chain.is_done(),
            "blocks left: {}",
            lock(&chain.blocks).list.len()
        );
    }

    #[test]
    fn a_gone_writer_s_events_after_the_cut_stay() {
        let (chain, mut writer) = Chain::new(4, 4);
        for i in 0..3 {
            writer.push(i, i);
        }
        drop(writer);
        let mut seen = Vec::new();
        chain.read(|stamp| stamp < 1, true, |task, _| seen.push(task));
        assert_eq!(seen, [0]);
        assert!(!chain.is_done());
        assert_eq!(read_all(&chain, true), [(1, 1), (2, 2)]);
        assert!(chain.is_done());
    }

    #[test]
    fn a_read_stops_at_the_first_refused_stamp_and_leaves_the_rest() {
        let (chain, mut writer) = Chain::new(2, 2);
        for i in 0..5 {
            writer.push(i, i);
        }
        let mut seen = Vec::new();
        chain.read(|stamp| stamp < 3, true, |task, _| seen.push(task));
        assert_eq!(seen, [0, 1, 2]);
        assert_eq!(read_all(&chain, true), [(3, 3), (4, 4)]);
    }
}

#[cfg(all(test, loom))]
mod tests {
    use super::*;

    /// The writer publishes three events across two blocks of two while a
    /// reader reads (and takes) at the same time: the reader sees a prefix
    /// of the events, each with both of its words written, and what it took
    /// is never seen again.
    #[test]
    fn loom_a_reader_sees_only_whole_published_events() {
        loom::model(|| {
            let (chain, mut writer) = Chain::new(2, 2);
            let reader = {
                let chain = Arc::clone(&chain);
                loom::thread::spawn(move || {
                    let mut seen = Vec::new();
                    chain.read(|_| true, true, |task, stamp| seen.push((task, stamp)));
                    seen
                })
            };
            for i in 1..=3 {
                writer.push(i, 100 + i);
            }
            let first = reader.join().unwrap();
            let mut rest = Vec::new();
            chain.read(|_| true, true, |task, stamp| rest.push((task, stamp)));
            let all: Vec<_> = first.iter().chain(&rest).copied().collect();
            assert_eq!(all, [(1, 101), (2, 102), (3, 103)], "first read {first:?}");
        });
    }

    /// The writer's last event and its drop race a reader that takes: the
    /// last block goes only once its final events are read, so every event
    /// is read exactly once, and the chain ends empty.
    #[test]
    fn loom_a_gone_writer_s_last_block_goes_only_once_read() {
        loom::model(|| {
            let (chain, mut writer) = Chain::new(2, 2);
            writer.push(1, 101);
            let reader = {
                let chain = Arc::clone(&chain);
                loom::thread::spawn(move || {
                    let mut seen = Vec::new();
                    chain.read(|_| true, true, |task, stamp| seen.push((task, stamp)));
                    seen
                })
            };
            writer.push(2, 102);
            drop(writer);
            let first = reader.join().unwrap();
            let mut rest = Vec::new();
            chain.read(|_| true, true, |task, stamp| rest.push((task, stamp)));
            let all: Vec<_> = first.iter().chain(&rest).copied().collect();
            assert_eq!(all, [(1, 101), (2, 102)], "first read {first:?}");
            assert!(chain.is_done());
        });
    }
}
