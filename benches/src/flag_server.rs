//! Our flag server as a child process, for the Python flag-download peer.
//!
//! The server binds 127.0.0.1 on a port the OS picks (`--port 0`) and prints its address on
//! the first line of stdout; we read that line (with a time limit, from a helper thread, so a
//! silent server cannot hang the report), hand the URL to the Python script, and kill the
//! server when the guard is dropped.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// A running flag server; killed and reaped on drop.
#[derive(Debug)]
pub struct FlagServer {
    child: Child,
    url: String,
}

/// The server could not be started or did not say where it listens.
#[derive(Debug)]
pub struct ServerError(pub String);

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "flag server: {}", self.0)
    }
}

impl std::error::Error for ServerError {}

/// Finds the server's base URL in its first output line: the first `http://...` word, or a
/// bare `127.0.0.1:PORT` made into one.
pub fn url_from_line(line: &str) -> Option<String> {
    line.split_whitespace().find_map(|word| {
        let word = word.trim_matches(|c: char| matches!(c, ',' | ';' | '(' | ')' | '"' | '\''));
        if word.starts_with("http://") {
            Some(word.trim_end_matches('/').to_string())
        } else if word.starts_with("127.0.0.1:") || word.starts_with("localhost:") {
            Some(format!("http://{}", word.trim_end_matches('/')))
        } else {
            None
        }
    })
}

impl FlagServer {
    /// Starts `bin --port 0 --delay <delay_s>` and waits (up to 10 s) for its address.
    pub fn start(bin: &Path, delay_s: f64) -> Result<FlagServer, ServerError> {
        let mut child = Command::new(bin)
            .args(["--port", "0", "--delay", &delay_s.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| ServerError(format!("cannot start {}: {e}", bin.display())))?;
        let stdout = child.stdout.take().expect("stdout was piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            // Look at the first few lines for the address; then keep draining stdout so a
            // chatty server never blocks on a full pipe.
            let mut sent = false;
            let mut line = String::new();
            for _ in 0..5 {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(url) = url_from_line(&line) {
                    let _ = tx.send(url);
                    sent = true;
                    break;
                }
            }
            drop(tx);
            if sent {
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
            }
        });
        let mut server = FlagServer {
            child,
            url: String::new(),
        };
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(url) => {
                server.url = url;
                Ok(server)
            }
            Err(_) => Err(ServerError(format!(
                "{} printed no address (expected a line with http://127.0.0.1:PORT)",
                bin.display()
            ))),
        }
    }

    /// The base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for FlagServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_found_in_the_first_line() {
        assert_eq!(
            url_from_line("Serving flags on http://127.0.0.1:40123/ (delay 0.5 s)").as_deref(),
            Some("http://127.0.0.1:40123")
        );
        assert_eq!(
            url_from_line("listening on 127.0.0.1:8001").as_deref(),
            Some("http://127.0.0.1:8001")
        );
        assert_eq!(url_from_line("starting..."), None);
    }

    #[test]
    fn a_server_that_prints_no_address_is_an_error_not_a_hang() {
        // `true` ignores its arguments, prints nothing and exits.
        let err = FlagServer::start(Path::new("/bin/true"), 0.5).unwrap_err();
        assert!(err.to_string().contains("printed no address"), "{err}");
    }
}
