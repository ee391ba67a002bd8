//! RESP replies from a Redis server (`crates/celery/src/resp.rs`).
//!
//! Promises checked beyond "no panic": every reply that parses re-encodes
//! to bytes that parse to the same reply, and a parse never consumes more
//! bytes than it was given.
#![no_main]

use celery::resp::{read_reply, Reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    // Several replies in a row, as a pipelined connection reads them.
    while let Ok(reply) = read_reply(&mut rest) {
        let mut wire = Vec::new();
        reply.encode(&mut wire);
        let again: Reply = read_reply(&mut &wire[..]).expect("a re-encoded reply parses");
        assert_eq!(again, reply, "re-encoding changed the reply");
    }
});
