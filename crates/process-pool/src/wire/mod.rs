//! What crosses between the pool and a worker, the same code on both ends:
//! frames on the pipes (`frame`), the values and outcomes inside them and
//! the trampolines that call a task (`codec`, with `keep_message` for a
//! user's codec error text; `byte_buffer` for `Vec<u8>` and `ByteBuf`
//! payloads, which skip serde), what a task cost (`cost`), and `SharedBytes`
//! passed as descriptors on a socket beside the pipes (`shared_bytes`,
//! `fd_passing`).

pub(crate) mod byte_buffer;
pub(crate) mod codec;
pub(crate) mod cost;
pub(crate) mod fd_passing;
pub(crate) mod frame;
pub(crate) mod keep_message;
pub(crate) mod shared_bytes;
