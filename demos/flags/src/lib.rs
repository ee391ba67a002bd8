//! # `flags`: the flag downloaders of Fluent Python's futures chapter, and
//! the flag server they talk to
//!
//! The Rust twins of the book's `flags*.py` scripts, one small binary each
//! under `src/bin/`, built on our own [`future`] crate, thread pool and
//! process pool, downloading over HTTP with `ureq` from a flag server that is
//! also ours ([`server`]), started in-process when no other is named.
//!
//! ## How it fits together
//!
//! * [`codes`]: which codes to fetch (`POP20_CC`, `-a`, `-e`, letters, `-l`).
//! * [`client`]: one `ureq` agent with timeouts and a body cap; only a 404
//!   is "not found".
//! * [`download`]: the book's `download_one`, shared by every flags2 program.
//! * [`save`]: atomic writes into `--dest`.
//! * [`report`], [`progress`]: the book's report lines and tqdm-like bar.
//! * [`flags1`], [`flags2`]: the `main` functions of `flags.py` and
//!   `flags2_common.py`; each binary passes its own `download_many`.
//! * [`pooled`]: the pool twins' `download_many`, written once over the
//!   `executor::Executor` trait; each twin only builds its pool.
//! * [`embedded`]: `-s LOCAL|DELAY|ERROR` start a [`server::FlagServer`] on
//!   127.0.0.1 port 0; `REMOTE` is the book's site.
//! * [`interrupt`]: Ctrl-C stops cleanly and the summary is still printed.
//!
//! ## Example: serve the flags and fetch one
//!
//! ```
//! use flags::client::{Client, ClientConfig, FetchError};
//! use flags::server::{FlagServer, ServerConfig};
//!
//! let server = FlagServer::start(ServerConfig::default())?; // 127.0.0.1, a free port
//! let client = Client::new(&ClientConfig::default());
//! let brazil = client.get_flag(&server.base_url(), "BR")?;
//! assert!(brazil.starts_with(b"GIF89a"));
//! assert!(matches!(
//!     client.get_flag(&server.base_url(), "XX"),
//!     Err(FetchError::NotFound { .. })
//! ));
//! server.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod cli;
pub mod client;
pub mod codes;
pub mod download;
pub mod embedded;
pub mod flags1;
pub mod flags2;
pub mod interrupt;
pub mod pooled;
pub mod progress;
pub mod report;
pub mod save;
pub mod server;
