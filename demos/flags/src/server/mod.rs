//! The flag server: serves `/flags/<cc>/<cc>.gif` for the 194 countries,
//! with an optional delay and error rate, like the book's nginx + Vaurien
//! (1e) or `slow_server.py` (2e) set-ups, but in-process and safe to expose.
//!
//! ## How it works
//!
//! * One thread accepts connections. Each admitted connection becomes one
//!   task on a [`Runner`](runner::Runner) (our thread pool) sized to the
//!   connection limit; past the limit a client gets `503 Service Unavailable`
//!   at once instead of waiting in the dark.
//! * A connection task reads requests with [`http`] (httparse plus size and
//!   time limits), validates the target with [`route`], waits the configured
//!   delay, rolls for an error (`418 I'm a Teapot`), and answers from the
//!   [`store`]. It keeps the connection alive for clients that ask (HTTP/1.1
//!   by default) until the idle timeout.
//! * Delays sleep on a condition variable that shutdown signals, so stopping
//!   the server never waits for a delay to run out; shutdown also closes every
//!   open socket, so no worker stays blocked in a read.
//!
//! ## Safety rules
//!
//! Binds 127.0.0.1 unless told otherwise; serves only validated two-letter
//! codes from memory (no path from a request reaches the file system);
//! refuses traversal (`..`, `%2e%2e`), odd or absolute targets, request
//! bodies, methods other than GET and HEAD, over-long request lines and
//! headers; times out idle and slow clients; bounds concurrent connections.

pub mod date;
pub mod gif;
pub mod http;
pub mod rng;
pub mod route;
pub mod runner;
pub mod store;

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use self::http::{Connection, Incoming, Limits, Response};
use self::rng::SharedRng;
use self::route::Route;
use self::runner::Runner;
use self::store::{DirError, FlagStore};

/// How a flag server behaves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The address to bind (default 127.0.0.1).
    pub bind: IpAddr,
    /// The port (0: any free port; see [`FlagServer::addr`]).
    pub port: u16,
    /// The delay before each (delayed) response.
    pub delay: Duration,
    /// With a value above `delay`, each delay is drawn uniformly from
    /// `delay..=delay_max` (the 2e's `slow_server.py` draws from 0.5 to 5 s).
    pub delay_max: Option<Duration>,
    /// The share of responses that are delayed (1.0: all; Vaurien's ERROR
    /// proxy delays half).
    pub delay_rate: f64,
    /// The share of requests answered `418 I'm a Teapot`.
    pub error_rate: f64,
    /// Serve this directory (the book's layout) instead of generated flags.
    pub dir: Option<PathBuf>,
    /// The most connections served at once; more get a 503.
    pub max_connections: usize,
    /// Size and time limits on clients.
    pub limits: Limits,
    /// Log one line per response on stderr.
    pub log: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            delay: Duration::ZERO,
            delay_max: None,
            delay_rate: 1.0,
            error_rate: 0.0,
            dir: None,
            max_connections: 256,
            limits: Limits::default(),
            log: false,
        }
    }
}

/// Why a server could not start.
#[derive(Debug)]
pub enum ServerError {
    /// Binding the address failed (in use, not allowed...).
    Bind {
        /// The address we tried.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The `--dir` directory is unusable.
    Dir(DirError),
    /// A setting is out of range.
    Config(String),
    /// Starting a thread failed.
    Io(io::Error),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            ServerError::Dir(e) => write!(f, "{e}"),
            ServerError::Config(msg) => write!(f, "bad server setting: {msg}"),
            ServerError::Io(e) => write!(f, "cannot start the server: {e}"),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::Bind { source, .. } => Some(source),
            ServerError::Dir(e) => Some(e),
            ServerError::Io(e) => Some(e),
            ServerError::Config(_) => None,
        }
    }
}

/// What the accept thread and the connection tasks share.
struct Shared {
    config: ServerConfig,
    store: FlagStore,
    rng: SharedRng,
    /// Set once by shutdown. SeqCst everywhere: rare, and simplest to reason about.
    stopping: AtomicBool,
    /// Signalled by shutdown, to cut delays short.
    stop_lock: Mutex<()>,
    stop_signal: Condvar,
    /// Open connections, by id, so shutdown can close them.
    open: Mutex<HashMap<u64, TcpStream>>,
    /// Signalled when `open` becomes empty.
    all_closed: Condvar,
    next_id: AtomicU64,
    /// Connections admitted and not yet finished (checked against the limit).
    active: AtomicUsize,
    /// Responses waiting out their delay right now.
    delaying: AtomicUsize,
}

/// A running flag server. Dropping it shuts it down.
pub struct FlagServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<Runner>>,
}

impl fmt::Debug for FlagServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlagServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FlagServer {
    /// Binds, loads the flags and starts serving in background threads.
    pub fn start(config: ServerConfig) -> Result<FlagServer, ServerError> {
        check(&config)?;
        let store = match &config.dir {
            Some(dir) => FlagStore::from_dir(dir).map_err(ServerError::Dir)?,
            None => FlagStore::generated(),
        };
        let addr = SocketAddr::new(config.bind, config.port);
        let listener = listen(addr).map_err(|source| ServerError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(ServerError::Io)?;
        let runner = Runner::new(config.max_connections).map_err(ServerError::Io)?;
        let shared = Arc::new(Shared {
            config,
            store,
            rng: SharedRng::from_clock(),
            stopping: AtomicBool::new(false),
            stop_lock: Mutex::new(()),
            stop_signal: Condvar::new(),
            open: Mutex::new(HashMap::new()),
            all_closed: Condvar::new(),
            next_id: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            delaying: AtomicUsize::new(0),
        });
        let accept_shared = shared.clone();
        let accept = std::thread::Builder::new()
            .name("flag-accept".into())
            .spawn(move || accept_loop(listener, accept_shared, runner))
            .map_err(ServerError::Io)?;
        Ok(FlagServer {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    /// The address the server listens on (with the real port when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL of the flags, e.g. `http://127.0.0.1:8001/flags`. An
    /// unspecified bind address (0.0.0.0, ::) is shown as the loopback.
    pub fn base_url(&self) -> String {
        format!("http://{}/flags", reachable(self.addr))
    }

    /// How many connections it has taken in so far (a client reusing a
    /// kept-alive connection makes many requests on one).
    pub fn connections_served(&self) -> u64 {
        // Relaxed: a statistic, read on its own.
        self.shared.next_id.load(Ordering::Relaxed)
    }

    /// How many responses are waiting out their delay at this moment: with
    /// many clients, proof that delays overlap instead of queueing.
    pub fn delayed_now(&self) -> usize {
        self.shared.delaying.load(Ordering::SeqCst)
    }

    /// How many flags it serves.
    pub fn flag_count(&self) -> usize {
        self.shared.store.len()
    }

    /// Stops accepting, cuts delays short, closes every connection and waits
    /// for the workers.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        // No lost wake-up: `stopping` is set before the lock is taken, and a
        // delayed task checks it under that lock before each wait.
        self.shared.stopping.store(true, Ordering::SeqCst);
        {
            let _guard = self
                .shared
                .stop_lock
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            self.shared.stop_signal.notify_all();
        }
        // Wake the accept thread with a connection of our own.
        let _ = TcpStream::connect_timeout(&reachable(self.addr), Duration::from_secs(1));
        let runner = accept.join().ok();
        // Close every open connection: blocked reads return at once.
        let mut open = self.shared.open.lock().unwrap_or_else(|p| p.into_inner());
        for stream in open.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        // Wait (bounded) for the tasks to deregister.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !open.is_empty() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            open = self
                .shared
                .all_closed
                .wait_timeout(open, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        drop(open);
        if let Some(runner) = runner {
            runner.shutdown();
        }
    }
}

/// The address to connect to for a listener on `addr`: an unspecified bind
/// address (0.0.0.0, ::) is reached through the loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

impl Drop for FlagServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The listen queue: std's `TcpListener::bind` asks for 128, which a
/// client opening a few hundred connections at once overflows (the extra
/// SYNs are dropped and retried a second later). We ask for 1024 (the
/// kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 1024;

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // Like std: a restarted server may bind a port whose old connections
    // are still in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

fn check(config: &ServerConfig) -> Result<(), ServerError> {
    let rate_ok = |r: f64| (0.0..=1.0).contains(&r);
    if !rate_ok(config.error_rate) {
        return Err(ServerError::Config(format!(
            "error rate {} is not between 0 and 1",
            config.error_rate
        )));
    }
    if !rate_ok(config.delay_rate) {
        return Err(ServerError::Config(format!(
            "delay rate {} is not between 0 and 1",
            config.delay_rate
        )));
    }
    if let Some(max) = config.delay_max {
        if max < config.delay {
            return Err(ServerError::Config(format!(
                "delay-max {:?} is shorter than delay {:?}",
                max, config.delay
            )));
        }
    }
    if config.max_connections == 0 {
        return Err(ServerError::Config(
            "max connections must be at least 1".into(),
        ));
    }
    Ok(())
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, runner: Runner) -> Runner {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else {
            // EMFILE and friends: back off a little instead of spinning.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        if shared.active.load(Ordering::SeqCst) >= shared.config.max_connections {
            refuse_busy(stream);
            continue;
        }
        let slot = Slot::take(shared.clone());
        let job = move || {
            serve_connection(stream, &slot.0);
            drop(slot);
        };
        // If the pool refuses the job, dropping it closes the stream (the
        // client sees a close) and frees the slot.
        let _ = runner.run(job);
    }
    runner
}

/// One admitted connection, counted against the limit until dropped:
/// whether its task ends, panics (the pool catches it) or never runs.
struct Slot(Arc<Shared>);

impl Slot {
    fn take(shared: Arc<Shared>) -> Slot {
        shared.active.fetch_add(1, Ordering::SeqCst);
        Slot(shared)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Past the connection limit: a quick 503 and close, from the accept thread
/// (a few bytes into a fresh socket buffer never block).
fn refuse_busy(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let body = "503 Service Unavailable\n";
    let _ = write!(
        stream,
        "HTTP/1.1 503 Service Unavailable\r\nDate: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n{body}",
        date::http_date_now(),
        body.len()
    );
}

/// Registers a connection for shutdown; deregisters it when dropped.
struct Registered<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut open = self.shared.open.lock().unwrap_or_else(|p| p.into_inner());
        open.remove(&self.id);
        if open.is_empty() {
            self.shared.all_closed.notify_all();
        }
    }
}

fn serve_connection(stream: TcpStream, shared: &Shared) {
    let limits = &shared.config.limits;
    let Ok(mut conn) = Connection::new(stream, limits) else {
        return;
    };
    let Ok(handle) = conn.try_clone_stream() else {
        return;
    };
    // Relaxed: ids only need to be distinct.
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    {
        let mut open = shared.open.lock().unwrap_or_else(|p| p.into_inner());
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        open.insert(id, handle);
    }
    let _registered = Registered { shared, id };
    loop {
        let request = match conn.read_request(limits) {
            Incoming::Request(r) => r,
            Incoming::Closed => return,
            Incoming::Reject(status) => {
                if conn.respond(&Response::error(status), true, false).is_ok() {
                    conn.close_gracefully();
                }
                return;
            }
        };
        let (response, keep_alive) = answer(&request, shared);
        let head_only = request.method == "HEAD";
        if shared.config.log {
            eprintln!(
                "{} {} -> {} ({} bytes)",
                request.method,
                request.target,
                response.status,
                response.body.len()
            );
        }
        if conn.respond(&response, !head_only, keep_alive).is_err() {
            return;
        }
        if !keep_alive {
            conn.close_gracefully();
            return;
        }
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// The response to one request, and whether to keep the connection.
///
/// A delay counts from the moment the request was read: the response is
/// prepared (a flag drawn, the first time) while the delay runs, so a
/// delayed server answers after the delay, not after the delay plus the
/// work.
fn answer(request: &http::Request, shared: &Shared) -> (Response, bool) {
    if request.method != "GET" && request.method != "HEAD" {
        return (Response::error(405), false);
    }
    let route = match route::route(&request.target) {
        Ok(route) => route,
        Err(_) => return (Response::error(400), false),
    };
    let send_at = Instant::now() + draw_delay(shared);
    let config = &shared.config;
    let response = if config.error_rate > 0.0 && shared.rng.unit() < config.error_rate {
        Response::error(418)
    } else {
        match route {
            Route::Flag(cc) => match shared.store.get(cc) {
                Some(image) => Response::gif(image),
                None => Response::error(404),
            },
            Route::NotFound => Response::error(404),
        }
    };
    let delayed = Delaying::enter(shared, send_at);
    let in_time = wait_until(shared, send_at);
    drop(delayed);
    if !in_time {
        return (Response::error(503), false); // shutting down
    }
    (response, request.keep_alive)
}

/// This response's delay: none, `delay`, or drawn up to `delay_max`; only
/// for a `delay_rate` share of the responses.
fn draw_delay(shared: &Shared) -> Duration {
    let config = &shared.config;
    if config.delay_rate < 1.0 && shared.rng.unit() >= config.delay_rate {
        return Duration::ZERO;
    }
    let mut wait = config.delay;
    if let Some(max) = config.delay_max {
        wait += (max - config.delay).mul_f64(shared.rng.unit());
    }
    wait
}

/// Counts a response in [`FlagServer::delayed_now`] while it waits.
struct Delaying<'a>(Option<&'a Shared>);

impl<'a> Delaying<'a> {
    fn enter(shared: &'a Shared, send_at: Instant) -> Self {
        if send_at <= Instant::now() {
            return Delaying(None);
        }
        shared.delaying.fetch_add(1, Ordering::SeqCst);
        Delaying(Some(shared))
    }
}

impl Drop for Delaying<'_> {
    fn drop(&mut self) {
        if let Some(shared) = self.0 {
            shared.delaying.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Sleeps until `deadline`, on the condition variable that shutdown
/// signals; false if the server is stopping.
fn wait_until(shared: &Shared, deadline: Instant) -> bool {
    if Instant::now() >= deadline {
        return !shared.stopping.load(Ordering::SeqCst);
    }
    let mut guard = shared.stop_lock.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if shared.stopping.load(Ordering::SeqCst) {
            return false;
        }
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return true;
        };
        if left.is_zero() {
            return true;
        }
        guard = shared
            .stop_signal
            .wait_timeout(guard, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}
