//! What crosses the pipe: encoded values, and the trampolines that turn bytes
//! into a call of a plain `fn(A) -> R` and back.
//!
//! # Functions as addresses
//!
//! Workers are `fork()`ed (never `exec()`ed) from the fork server, which is
//! itself a fork of this process: every worker runs the *same program image at
//! the same addresses*. So a function pointer of the parent is a valid
//! function pointer in the worker, and the pool sends a task as two addresses:
//!
//! * the user's function `f: fn(A) -> R`, and
//! * a *trampoline* `run_plain::<A, R>`, monomorphised for the task's types:
//!   it knows how to decode an `A`, call `f`, and encode the outcome.
//!
//! The worker calls the trampoline with `f`'s address and the argument bytes.
//! Both addresses come from the parent, over a pipe only the parent can write
//! to, and both were produced by casting real `fn` items: that is the whole
//! safety argument (see [`Trampoline`]). Functions of a library loaded with
//! `dlopen` *after* the fork server started do not exist in the workers:
//! don't submit those.
//!
//! # Values
//!
//! Arguments and results are encoded with serde and `bincode` 1.3 (fixed-width
//! little-endian integers, length-prefixed sequences): compact, fast, and the
//! same code on both ends. An outcome travels as a tag byte and its data:
//!
//! | tag | meaning | data |
//! |---|---|---|
//! | `OK` (0) | the task returned a value | the encoded `R` |
//! | `FAILED` (1) | the task returned `Err(e)` | `e`'s type name, `e.to_string()` |
//! | `PANICKED` (2) | the task panicked | the panic message |
//! | `DECODE_ARGS` (3) | the argument did not decode in the worker | the decoder's message |
//! | `ENCODE_RESULT` (4) | the result did not encode in the worker | the encoder's message |
//!
//! Every step in the worker runs under `catch_unwind`, so a panicking
//! `Deserialize` or `Serialize` impl is reported like any other failure and
//! the worker lives on.

use std::panic::{catch_unwind, AssertUnwindSafe};

use future::{panic_message, DynError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::frame::put_string;

/// The task returned a value.
pub(crate) const OK: u8 = 0;
/// The task returned an error.
pub(crate) const FAILED: u8 = 1;
/// The task panicked.
pub(crate) const PANICKED: u8 = 2;
/// The argument could not be decoded in the worker.
pub(crate) const DECODE_ARGS: u8 = 3;
/// The result could not be encoded in the worker.
pub(crate) const ENCODE_RESULT: u8 = 4;

/// A monomorphised task runner, executed in the worker:
/// `(address of the user's fn, encoded argument, output buffer)`. It appends
/// one outcome (tag + data) to the buffer.
///
/// # Safety
///
/// The `usize` must be the address of a function whose type is exactly the
/// one the trampoline was instantiated for (`fn(A) -> R` for `run_plain::<A,
/// R>`), in this same program image. The pool guarantees it by building both
/// addresses together, in `submit`, from typed `fn` pointers.
pub(crate) type Trampoline = unsafe fn(usize, &[u8], &mut Vec<u8>);

/// Encodes `value` at the end of `out`.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), String> {
    bincode::serialize_into(out, value).map_err(|e| e.to_string())
}

/// Decodes a `T` from `bytes`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    bincode::deserialize(bytes).map_err(|e| e.to_string())
}

/// The trampoline for `fn(A) -> R`.
///
/// # Safety
///
/// `f` must be the address of a `fn(A) -> R` (see [`Trampoline`]).
pub(crate) unsafe fn run_plain<A, R>(f: usize, input: &[u8], out: &mut Vec<u8>)
where
    A: DeserializeOwned,
    R: Serialize,
{
    // SAFETY: the caller guarantees `f` is the address of a `fn(A) -> R`;
    // fn pointers and usize have the same size on every supported target.
    let f: fn(A) -> R = unsafe { std::mem::transmute::<usize, fn(A) -> R>(f) };
    run_task(input, out, |a: A| Ok(f(a)));
}

/// The trampoline for `fn(A) -> Result<R, E>`: `Err(e)` travels as `e`'s type
/// name and message.
///
/// # Safety
///
/// `f` must be the address of a `fn(A) -> Result<R, E>` (see [`Trampoline`]).
pub(crate) unsafe fn run_fallible<A, R, E>(f: usize, input: &[u8], out: &mut Vec<u8>)
where
    A: DeserializeOwned,
    R: Serialize,
    E: std::error::Error + Send + Sync + 'static,
{
    // SAFETY: as in `run_plain`, for the type `fn(A) -> Result<R, E>`.
    let f: fn(A) -> Result<R, E> =
        unsafe { std::mem::transmute::<usize, fn(A) -> Result<R, E>>(f) };
    run_task(input, out, |a: A| {
        f(a).map_err(|e| {
            let message = e.to_string();
            (DynError::new(e).type_name().to_string(), message)
        })
    });
}

/// The trampoline for a `map` chunk: `Vec<A>` in, `Vec<R>` out, `f` applied
/// to each item in order. A panic anywhere fails the whole chunk (as a
/// Python exception does).
///
/// # Safety
///
/// `f` must be the address of a `fn(A) -> R` (see [`Trampoline`]).
pub(crate) unsafe fn run_chunk<A, R>(f: usize, input: &[u8], out: &mut Vec<u8>)
where
    A: DeserializeOwned,
    R: Serialize,
{
    // SAFETY: as in `run_plain`.
    let f: fn(A) -> R = unsafe { std::mem::transmute::<usize, fn(A) -> R>(f) };
    run_task(input, out, |items: Vec<A>| {
        Ok(items.into_iter().map(f).collect::<Vec<R>>())
    });
}

/// Decode, call, encode; every step under `catch_unwind`; exactly one outcome
/// is appended to `out`.
fn run_task<A, R, F>(input: &[u8], out: &mut Vec<u8>, call: F)
where
    A: DeserializeOwned,
    R: Serialize,
    F: FnOnce(A) -> Result<R, (String, String)>,
{
    let mark = out.len();
    let args = match catch_unwind(|| decode::<A>(input)) {
        Ok(Ok(args)) => args,
        Ok(Err(msg)) => return put_error(out, DECODE_ARGS, &msg),
        Err(p) => {
            let msg = format!("panicked while decoding: {}", panic_message(&*p));
            return put_error(out, DECODE_ARGS, &msg);
        }
    };
    let outcome = match catch_unwind(AssertUnwindSafe(move || call(args))) {
        Ok(outcome) => outcome,
        Err(p) => return put_error(out, PANICKED, &panic_message(&*p)),
    };
    match outcome {
        Ok(value) => {
            out.push(OK);
            // Encoding and dropping the value run user code too.
            let encoded = catch_unwind(AssertUnwindSafe(|| {
                let r = encode(&value, out);
                drop(value);
                r
            }));
            let msg = match encoded {
                Ok(Ok(())) => return,
                Ok(Err(msg)) => msg,
                Err(p) => format!("panicked while encoding: {}", panic_message(&*p)),
            };
            out.truncate(mark);
            put_error(out, ENCODE_RESULT, &msg);
        }
        Err((type_name, message)) => {
            out.push(FAILED);
            put_string(out, &type_name);
            put_string(out, &message);
        }
    }
}

fn put_error(out: &mut Vec<u8>, tag: u8, msg: &str) {
    out.push(tag);
    put_string(out, msg);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::BodyReader;

    fn square(x: u64) -> u64 {
        x * x
    }

    fn parse(s: String) -> Result<u64, std::num::ParseIntError> {
        s.parse()
    }

    fn boom(_: u8) -> u8 {
        panic!("boom")
    }

    fn run(t: Trampoline, f: usize, input: &[u8]) -> (u8, Vec<u8>) {
        let mut out = Vec::new();
        // SAFETY: every call below pairs a trampoline with a fn of its type.
        unsafe { t(f, input, &mut out) };
        (out[0], out[1..].to_vec())
    }

    #[test]
    fn plain_fallible_and_panicking_tasks() {
        let mut arg = Vec::new();
        encode(&7u64, &mut arg).unwrap();
        let (tag, data) = run(
            run_plain::<u64, u64>,
            square as fn(u64) -> u64 as usize,
            &arg,
        );
        assert_eq!(tag, OK);
        assert_eq!(decode::<u64>(&data).unwrap(), 49);

        let mut arg = Vec::new();
        encode(&"x1".to_string(), &mut arg).unwrap();
        let f = parse as fn(String) -> Result<u64, std::num::ParseIntError>;
        let (tag, data) = run(
            run_fallible::<String, u64, std::num::ParseIntError>,
            f as usize,
            &arg,
        );
        assert_eq!(tag, FAILED);
        let mut r = BodyReader::new(&data);
        assert_eq!(r.string().unwrap(), "ParseIntError");
        assert_eq!(r.string().unwrap(), "invalid digit found in string");

        let (tag, data) = run(run_plain::<u8, u8>, boom as fn(u8) -> u8 as usize, &[1]);
        assert_eq!(tag, PANICKED);
        assert_eq!(BodyReader::new(&data).string().unwrap(), "boom");
    }

    #[test]
    fn undecodable_arguments_are_reported() {
        let (tag, data) = run(
            run_plain::<u64, u64>,
            square as fn(u64) -> u64 as usize,
            &[1, 2],
        );
        assert_eq!(tag, DECODE_ARGS);
        assert!(!BodyReader::new(&data).string().unwrap().is_empty());
    }

    #[test]
    fn chunks_apply_the_function_in_order() {
        let mut arg = Vec::new();
        encode(&vec![1u64, 2, 3], &mut arg).unwrap();
        let (tag, data) = run(
            run_chunk::<u64, u64>,
            square as fn(u64) -> u64 as usize,
            &arg,
        );
        assert_eq!(tag, OK);
        assert_eq!(decode::<Vec<u64>>(&data).unwrap(), vec![1, 4, 9]);
    }
}
