//! What the first-generation programs share (the book's `flags.py`, which
//! `flags_threadpool.py` imports from): `get_flag`, `save_flag`, `show` and a
//! `main` that times `download_many` and prints
//! `20 flags downloaded in 0.12s`.
//!
//! These programs have no error handling in the book: any failure ends the
//! run. Here a failure ends it too, but with a message and exit status 1.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use future::trace::Recorder;

use crate::cli::FlagsArgs;
use crate::client::{Client, ClientConfig};
use crate::download::DownloadError;
use crate::embedded::Site;
use crate::save;

/// What `download_many` gets: the client and where to put the flags.
#[derive(Debug, Clone)]
pub struct Context {
    /// The HTTP client.
    pub client: Client,
    /// The flags' base URL.
    pub base_url: String,
    /// The download directory.
    pub dest: PathBuf,
}

/// Whatever ends a first-generation program: a download that failed, or
/// the executor that ran it.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

impl Context {
    /// Fetches one flag (200 only; anything else, 404 included, is an error).
    pub fn get_flag(&self, cc: &str) -> Result<Vec<u8>, DownloadError> {
        self.client
            .get_flag(&self.base_url, cc)
            .map_err(DownloadError::Fetch)
    }

    /// Saves one flag as `dest/<cc>.gif`.
    pub fn save_flag(&self, image: &[u8], cc: &str) -> Result<(), DownloadError> {
        let name = save::flag_file_name(cc);
        save::save_flag(&self.dest, &name, image)
            .map(drop)
            .map_err(|source| DownloadError::Save {
                path: self.dest.join(name),
                source,
            })
    }

    /// The book's `download_one`: get, show, save; returns the code.
    pub fn download_one(&self, cc: &str) -> Result<String, DownloadError> {
        let image = self.get_flag(cc)?;
        show(cc);
        self.save_flag(&image, cc)?;
        Ok(cc.to_string())
    }
}

/// Runs `download` as one recorded task on this thread (the sequential
/// programs' `--trace`, which have no executor to record it); just runs it
/// without a recorder.
pub fn traced<T, E>(
    trace: Option<&Recorder>,
    download: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let Some(recorder) = trace else {
        return download();
    };
    let mut task = recorder.submitted();
    task.started_here();
    let outcome = download();
    task.ended(outcome.is_ok());
    outcome
}

/// Prints `text` and a space, at once (the book's `show`).
pub fn show(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{text} ");
    let _ = out.flush();
}

/// The book's `main(download_many)`: downloads `POP20_CC` (each
/// `download_many` sorts it, as in the book) and prints how long it took.
/// `download_many` gets the `--trace` recorder, if any, for its executor.
pub fn main(
    bin: &'static str,
    download_many: impl FnOnce(&[String], Arc<Context>, Option<Recorder>) -> Result<usize, Error>,
) -> ExitCode {
    let args = FlagsArgs::parse_for(bin);
    let trace = match args.trace.start() {
        Ok(trace) => trace,
        Err(e) => {
            eprintln!("{bin}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let site = match Site::open(args.server, args.url.as_deref()) {
        Ok(site) => site,
        Err(e) => {
            eprintln!("{bin}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = save::ensure_dest(&args.dest) {
        eprintln!("{bin}: cannot create {}: {e}", args.dest.display());
        return ExitCode::FAILURE;
    }
    let context = Arc::new(Context {
        client: Client::new(&ClientConfig::default()),
        base_url: site.base_url.clone(),
        dest: args.dest,
    });
    let codes: Vec<String> = crate::codes::POP20_CC
        .iter()
        .map(|cc| cc.to_string())
        .collect();
    let t0 = Instant::now();
    let recorder = trace.as_ref().map(demo_cli::Trace::recorder);
    match download_many(&codes, context, recorder) {
        Ok(count) => {
            println!(
                "\n{count} flags downloaded in {:.2}s",
                t0.elapsed().as_secs_f64()
            );
            if let Some(Err(e)) = trace.map(demo_cli::Trace::finish) {
                eprintln!("{bin}: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!();
            eprintln!("{bin}: {e}");
            ExitCode::FAILURE
        }
    }
}
