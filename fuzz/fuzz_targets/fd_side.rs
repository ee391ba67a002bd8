//! The process pool's descriptor side channel
//! (`crates/process-pool/src/wire/fd_passing.rs`): one message per frame on a
//! `SOCK_SEQPACKET` socket, its payload the task id, its descriptors
//! `SCM_RIGHTS`; then `SharedBytes` decoded with those descriptors.
//!
//! The input chooses the descriptors (sealed memfds, unsealed memfds,
//! pipes), the payload, the task id the receiver expects, and the encoded
//! value: either raw bytes, or a list of descriptor indices.
//!
//! Promises checked beyond "no panic":
//! * the message is accepted exactly when its payload is the expected id;
//! * an index list decodes exactly when every index names a sealed memfd,
//!   to the bytes that memfd holds;
//! * no descriptor is left open afterwards, used or not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use process_pool::fuzz_api::{fd_message, FdKind};

/// Takes bytes off the front of the input.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let control = input.byte();
    let kinds: Vec<FdKind> = (0..control % 5)
        .map(|_| {
            let kind = input.byte();
            let len = usize::from(input.byte() % 32);
            let bytes = input.bytes(len).to_vec();
            match kind % 3 {
                0 => FdKind::Sealed(bytes),
                1 => FdKind::Unsealed(bytes),
                _ => FdKind::Pipe,
            }
        })
        .collect();
    let id = u64::from_le_bytes(input.bytes(8).try_into().unwrap_or([7; 8]));
    // The payload: the right id, or bytes of the input's choosing.
    let payload = if control & 0x10 != 0 {
        id.to_le_bytes().to_vec()
    } else {
        let len = usize::from(input.byte() % 16);
        input.bytes(len).to_vec()
    };
    // The value: a list of descriptor indices, or raw postcard bytes.
    let indices: Option<Vec<u8>> = (control & 0x20 != 0).then(|| {
        let n = usize::from(input.byte() % 8);
        input.bytes(n).iter().map(|i| i % 8).collect()
    });
    let value = match &indices {
        Some(list) => encode_indices(list),
        None => input.0.to_vec(),
    };

    let open_before = open_descriptors();
    let outcome = fd_message(&payload, &kinds, id, &value);
    assert_eq!(
        open_before,
        open_descriptors(),
        "a descriptor was left open"
    );

    let decoded = match outcome {
        Ok(decoded) => {
            assert_eq!(
                payload,
                id.to_le_bytes(),
                "a message for another task was taken"
            );
            decoded
        }
        Err(_) => {
            assert_ne!(payload, id.to_le_bytes(), "the right message was refused");
            return;
        }
    };
    if let Some(list) = indices {
        let expected: Option<Vec<Vec<u8>>> = list
            .iter()
            .map(|&i| match kinds.get(usize::from(i)) {
                Some(FdKind::Sealed(bytes)) => Some(bytes.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(decoded.ok(), expected);
    }
});

/// Postcard bytes of a `Vec<SharedBytes>` whose items are all the
/// descriptor variant (`Fd(i)`, variant 0): the length, then for each item
/// the variant and the index (all below 128: one varint byte each).
fn encode_indices(list: &[u8]) -> Vec<u8> {
    let mut out = vec![list.len() as u8];
    for &i in list {
        out.extend_from_slice(&[0, i]);
    }
    out
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}
