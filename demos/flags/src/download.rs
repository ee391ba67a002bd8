//! One download, as the flags2 scripts do it (`download_one` in
//! `flags2_sequential.py`): fetch, save, and sort the outcome into one of
//! the three buckets of [`Status`].
//!
//! A 404 is a normal outcome (`Ok(Status::NotFound)`); everything else that
//! goes wrong is an `Err`, which the caller's loop counts as an error and,
//! with `-v`, prints as `BD error: HTTP error 418 - I'm a Teapot`.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::client::{Client, FetchError};
use crate::report::Status;
use crate::save;

/// A download that ended in the "error" bucket.
#[derive(Debug)]
pub enum DownloadError {
    /// Fetching failed (any status but 200 and 404, or no response at all).
    Fetch(FetchError),
    /// The flag arrived but could not be written.
    Save {
        /// Where we tried to write.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl fmt::Display for DownloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownloadError::Fetch(e) => write!(f, "{e}"),
            DownloadError::Save { path, source } => {
                write!(f, "cannot save {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for DownloadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DownloadError::Fetch(e) => Some(e),
            DownloadError::Save { source, .. } => Some(source),
        }
    }
}

/// Everything a download needs: the client, where from, where to, and
/// whether to talk about it. Shared by all workers (behind an `Arc`).
#[derive(Debug, Clone)]
pub struct Downloader {
    /// The HTTP client.
    pub client: Client,
    /// The flags' base URL.
    pub base_url: String,
    /// The download directory.
    pub dest: PathBuf,
    /// `-v`: print one line per code.
    pub verbose: bool,
}

impl Downloader {
    /// The book's `download_one`: 404 is `NotFound`, other failures are errors.
    pub fn download_one(&self, cc: &str) -> Result<Status, DownloadError> {
        let (status, msg) = match self.client.get_flag(&self.base_url, cc) {
            Ok(image) => {
                let name = save::flag_file_name(cc);
                save::save_flag(&self.dest, &name, &image).map_err(|source| {
                    DownloadError::Save {
                        path: self.dest.join(&name),
                        source,
                    }
                })?;
                (Status::Ok, "OK")
            }
            Err(FetchError::NotFound { .. }) => (Status::NotFound, "not found"),
            Err(e) => return Err(DownloadError::Fetch(e)),
        };
        if self.verbose {
            println!("{cc} {msg}");
        }
        Ok(status)
    }
}

/// The `except` branches of the book's loops: turns an outcome into a
/// status, printing `CC error: MESSAGE` in verbose mode.
pub fn classify<E: fmt::Display>(cc: &str, outcome: Result<Status, E>, verbose: bool) -> Status {
    match outcome {
        Ok(status) => status,
        Err(e) => {
            if verbose {
                println!("{cc} error: {e}");
            }
            Status::Error
        }
    }
}

/// The message of a failed task, without the executor's wrapping: for a
/// download that failed in a worker, `HTTP error 418 - I'm a Teapot` rather
/// than `task failed: HTTP error 418 - I'm a Teapot`.
pub fn task_message(error: &future::FutureError) -> String {
    match error {
        future::FutureError::Task(future::TaskError::Failed(e)) => e.to_string(),
        other => other.to_string(),
    }
}
