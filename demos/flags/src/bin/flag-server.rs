//! `flag-server`: serves the flags the downloaders fetch, like the book's
//! nginx + Vaurien (1e) or `slow_server.py` (2e) set-ups.
//!
//! ```text
//! $ flag-server --port 8002 --delay 0.5
//! Serving 194 generated flags at http://127.0.0.1:8002/flags (delay 0.50s)
//! ```
//!
//! The book's three servers: LOCAL `flag-server --port 8001`, DELAY
//! `flag-server --port 8002 --delay .5`, ERROR `flag-server --port 8003
//! --delay .5 --delay-rate .5 --error-rate .25`. Ctrl-C stops it.

use std::io::Write;
use std::process::ExitCode;
use std::sync::mpsc;

use flags::cli::ServerArgs;
use flags::server::{FlagServer, ServerConfig};

fn main() -> ExitCode {
    let args = ServerArgs::parse_or_exit();
    let config = ServerConfig {
        bind: args.bind,
        port: args.port,
        delay: args.delay,
        delay_max: args.delay_max,
        delay_rate: args.delay_rate,
        error_rate: args.error_rate,
        dir: args.dir.clone(),
        max_connections: args.max_connections,
        log: args.log,
        ..ServerConfig::default()
    };
    let server = match FlagServer::start(config.clone()) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("flag-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let source = match &args.dir {
        Some(dir) => format!("flags from {}", dir.display()),
        None => "generated flags".to_string(),
    };
    let mut extras = Vec::new();
    if !config.delay.is_zero() || config.delay_max.is_some() {
        let mut d = format!("delay {:.2}s", config.delay.as_secs_f64());
        if let Some(max) = config.delay_max {
            d += &format!(" to {:.2}s", max.as_secs_f64());
        }
        if config.delay_rate < 1.0 {
            d += &format!(" for {:.0}% of responses", config.delay_rate * 100.0);
        }
        extras.push(d);
    }
    if config.error_rate > 0.0 {
        extras.push(format!(
            "{:.0}% 418 I'm a Teapot",
            config.error_rate * 100.0
        ));
    }
    let extras = if extras.is_empty() {
        String::new()
    } else {
        format!(" ({})", extras.join(", "))
    };
    println!(
        "Serving {} {source} at {}{extras}",
        server.flag_count(),
        server.base_url()
    );
    let _ = std::io::stdout().flush();

    // Run until Ctrl-C, then stop cleanly.
    let (tx, rx) = mpsc::channel();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = tx.send(());
    }) {
        eprintln!("flag-server: cannot handle Ctrl-C: {e}");
    }
    let _ = rx.recv();
    eprintln!("flag-server: stopping");
    server.shutdown();
    ExitCode::SUCCESS
}
