//! A TCP proxy between our code and a Redis server, for fault injection:
//! the failures of a real network, made to happen at a chosen byte.
//!
//! ```text
//! client ──► Proxy (127.0.0.1, port 0) ──► redis-server
//!        ◄── whole replies, framed ────────┘
//!            · delayed by `set_delay`
//!            · cut after N bytes by `drop_mid_reply`
//!            · every link cut by `cut` until `restore`
//!            · every link silent (nothing forwarded, nothing closed)
//!              by `stall` until `restore`
//! ```
//!
//! Requests pass through as they come. Replies are framed (the proxy reads
//! each RESP reply whole before forwarding it), so a fault lands at a known
//! place: "after 10 bytes of the reply that carries the task's result", not
//! "somewhere in the next read". Counters ([`ProxyStats`]) let a test wait
//! for what happened ("the client tried to reconnect twice") instead of
//! waiting for time to pass.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the proxy has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted and joined to the server.
    pub accepted: u64,
    /// Connections accepted and closed at once because the link was cut.
    pub refused: u64,
    /// Connections cut in the middle of a reply by [`Proxy::drop_mid_reply`].
    pub cut_mid_reply: u64,
    /// Connections cut by [`Proxy::cut`].
    pub cut_by_link: u64,
    /// Replies and requests held back by [`Proxy::stall`].
    pub held: u64,
}

/// Which replies a mid-reply cut fires on.
type ReplyMatch = Box<dyn Fn(&[u8]) -> bool + Send>;

/// The next reply that `matches` is forwarded only up to `after` bytes,
/// then its connection is cut.
struct MidReplyCut {
    matches: ReplyMatch,
    after: usize,
}

#[derive(Default)]
struct State {
    /// While true, new connections are accepted and closed at once.
    link_cut: bool,
    /// While true, nothing is forwarded and nothing is closed.
    stalled: bool,
    /// How long each reply is held before it is forwarded.
    delay: Duration,
    /// Armed mid-reply cuts, each fires once.
    cuts: Vec<MidReplyCut>,
    /// Both sockets of every open connection, to cut them from outside.
    open: HashMap<u64, [TcpStream; 2]>,
    stats: ProxyStats,
}

struct Shared {
    upstream: SocketAddr,
    state: Mutex<State>,
    /// Wakes the pumps held by a stall (on `restore`, `cut` and drop).
    unstalled: Condvar,
    stop: AtomicBool,
    /// Connection ids; only unique, so Relaxed.
    next_id: AtomicU64,
}

/// A fault-injecting proxy to one Redis server; stops (cutting every
/// connection) on drop.
pub struct Proxy {
    shared: Arc<Shared>,
    port: u16,
    acceptor: Option<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Proxy {
    /// A proxy on a free loopback port to the Redis server at
    /// `127.0.0.1:upstream_port`.
    pub fn start(upstream_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("the proxy's address").port();
        let shared = Arc::new(Shared {
            upstream: SocketAddr::from(([127, 0, 0, 1], upstream_port)),
            state: Mutex::new(State::default()),
            unstalled: Condvar::new(),
            stop: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
        });
        let s = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("redis-proxy".to_string())
            .spawn(move || accept_loop(&s, listener))
            .expect("spawn the proxy's accept thread");
        Proxy {
            shared,
            port,
            acceptor: Some(acceptor),
        }
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<proxy port>/<db>`: give this to the code under test.
    pub fn url(&self, db: u32) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// Arms a one-shot fault: the next reply (on any connection) whose bytes
    /// contain `needle` is forwarded only up to `after` bytes, then that
    /// connection is closed on both sides: the client sees a reply broken
    /// off, the server sees its client go away. An empty `needle` matches
    /// any reply.
    pub fn drop_mid_reply(&self, needle: &[u8], after: usize) {
        let needle = needle.to_vec();
        self.drop_mid_reply_if(move |reply| contains(reply, &needle), after);
    }

    /// Like [`drop_mid_reply`](Self::drop_mid_reply), for the next reply
    /// (its whole RESP bytes) that `matches` says yes to: for example
    /// `|r| r == b":1\r\n"`, the reply to the first `LPUSH` on an empty list.
    pub fn drop_mid_reply_if(
        &self,
        matches: impl Fn(&[u8]) -> bool + Send + 'static,
        after: usize,
    ) {
        lock(&self.shared.state).cuts.push(MidReplyCut {
            matches: Box::new(matches),
            after,
        });
    }

    /// How many armed [`drop_mid_reply`](Self::drop_mid_reply) faults have
    /// not fired yet.
    pub fn armed(&self) -> usize {
        lock(&self.shared.state).cuts.len()
    }

    /// Holds every reply `d` before forwarding it (a slow broker or a slow
    /// network); `Duration::ZERO` turns it off.
    pub fn set_delay(&self, d: Duration) {
        lock(&self.shared.state).delay = d;
    }

    /// Cuts the link: every open connection is closed on both sides, and
    /// new ones are accepted and closed at once until [`restore`](Self::restore)
    /// (which also ends a [`stall`](Self::stall): a cut does not).
    pub fn cut(&self) {
        let mut state = lock(&self.shared.state);
        state.link_cut = true;
        let open: Vec<[TcpStream; 2]> = state.open.drain().map(|(_, s)| s).collect();
        state.stats.cut_by_link += open.len() as u64;
        for s in open.iter().flatten() {
            let _ = s.shutdown(Shutdown::Both);
        }
        drop(state);
        self.shared.unstalled.notify_all();
    }

    /// Makes the link silent, as a network that drops packets without a
    /// FIN or RST: open connections stay open, new ones are accepted, and
    /// no byte is forwarded either way until [`restore`](Self::restore)
    /// (then everything held goes on, in order).
    pub fn stall(&self) {
        lock(&self.shared.state).stalled = true;
    }

    /// Ends a [`cut`](Self::cut) or a [`stall`](Self::stall): the link
    /// works again.
    pub fn restore(&self) {
        let mut state = lock(&self.shared.state);
        state.link_cut = false;
        state.stalled = false;
        drop(state);
        self.shared.unstalled.notify_all();
    }

    /// Cuts the link now and restores it after `d`, from a thread of its own.
    pub fn cut_for(&self, d: Duration) {
        self.cut();
        let shared = self.shared.clone();
        std::thread::spawn(move || {
            std::thread::sleep(d);
            lock(&shared.state).link_cut = false;
        });
    }

    /// The counters so far.
    pub fn stats(&self) -> ProxyStats {
        lock(&self.shared.state).stats
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.cut();
        // Wake the blocked accept() so the thread sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: TcpListener) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if lock(&shared.state).link_cut {
            lock(&shared.state).stats.refused += 1;
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        // The server refusing us is passed on as a closed connection.
        let Ok(server) = TcpStream::connect(shared.upstream) else {
            continue;
        };
        if let Err(e) = join(shared, client, server) {
            eprintln!("redis-proxy: cannot relay a connection: {e}");
        }
    }
}

/// Registers the pair and starts its two pumps.
fn join(shared: &Arc<Shared>, client: TcpStream, server: TcpStream) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    {
        let mut state = lock(&shared.state);
        // Checked again under the lock: a `cut` since the accept wins.
        if state.link_cut {
            state.stats.refused += 1;
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        state
            .open
            .insert(id, [client.try_clone()?, server.try_clone()?]);
        state.stats.accepted += 1;
    }
    let (c_read, s_write) = (client.try_clone()?, server.try_clone()?);
    let s = shared.clone();
    std::thread::Builder::new()
        .name("redis-proxy-up".to_string())
        .spawn(move || requests(&s, c_read, s_write))?;
    let s = shared.clone();
    std::thread::Builder::new()
        .name("redis-proxy-down".to_string())
        .spawn(move || {
            replies(&s, server, client);
            if let Some(sockets) = lock(&s.state).open.remove(&id) {
                for sock in &sockets {
                    let _ = sock.shutdown(Shutdown::Both);
                }
            }
        })?;
    Ok(())
}

/// Client to server: bytes as they come (held while stalled).
fn requests(shared: &Shared, mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        drop(wait_while_stalled(shared));
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Server to client: whole replies, each delayed or cut as the state says.
fn replies(shared: &Shared, mut from: TcpStream, mut to: TcpStream) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        loop {
            let end = match reply_len(&pending, 0) {
                Ok(Some(end)) => end,
                Ok(None) => break,             // wait for the rest of the reply
                Err(NotResp) => pending.len(), // not ours to frame: pass it on
            };
            let reply: Vec<u8> = pending.drain(..end).collect();
            if !forward(shared, &reply, &mut to) {
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
            if pending.is_empty() {
                break;
            }
        }
    }
}

/// Forwards one reply, after the delay; false if the connection must end
/// (a write failed or an armed cut fired).
fn forward(shared: &Shared, reply: &[u8], to: &mut TcpStream) -> bool {
    let (delay, cut) = {
        let mut state = lock(&shared.state);
        let hit = state.cuts.iter().position(|c| (c.matches)(reply));
        let cut = hit.map(|i| state.cuts.remove(i));
        if cut.is_some() {
            state.stats.cut_mid_reply += 1;
        }
        drop(state);
        let state = wait_while_stalled(shared);
        (state.delay, cut)
    };
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    match cut {
        Some(c) => {
            let _ = to.write_all(&reply[..c.after.min(reply.len())]);
            false
        }
        None => to.write_all(reply).is_ok(),
    }
}

/// Blocks while the link is stalled (counting what it holds back); returns
/// the state, locked.
fn wait_while_stalled(shared: &Shared) -> std::sync::MutexGuard<'_, State> {
    let mut state = lock(&shared.state);
    if state.stalled {
        state.stats.held += 1;
    }
    while state.stalled && !shared.stop.load(Ordering::SeqCst) {
        state = shared
            .unstalled
            .wait(state)
            .unwrap_or_else(|p| p.into_inner());
    }
    state
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The bytes are not RESP (the proxy then forwards them unframed).
#[derive(Debug, PartialEq)]
struct NotResp;

/// Where the RESP2 reply starting at `start` ends: `Ok(None)` while it is
/// incomplete. Only replies from a real redis-server pass here (a test
/// helper, not a parser of hostile bytes: `resp.rs` is that).
fn reply_len(buf: &[u8], start: usize) -> Result<Option<usize>, NotResp> {
    let Some(rel) = buf[start..].windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let line_end = start + rel;
    let next = line_end + 2;
    let number = || -> Result<i64, NotResp> {
        std::str::from_utf8(&buf[start + 1..line_end])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(NotResp)
    };
    match buf[start] {
        b'+' | b'-' | b':' => Ok(Some(next)),
        b'$' => {
            let n = number()?;
            if n < 0 {
                return Ok(Some(next));
            }
            let end = next + usize::try_from(n).map_err(|_| NotResp)? + 2;
            Ok((buf.len() >= end).then_some(end))
        }
        b'*' => {
            let mut at = next;
            for _ in 0..number()?.max(0) {
                match reply_len(buf, at)? {
                    Some(end) => at = end,
                    None => return Ok(None),
                }
            }
            Ok(Some(at))
        }
        _ => Err(NotResp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::{Connection, Reply};
    use crate::testing::RedisServer;
    use crate::url::RedisUrl;

    fn open(proxy: &Proxy) -> Result<Connection, crate::CeleryError> {
        Connection::open(&RedisUrl::parse(&proxy.url(0)).unwrap())
    }

    #[test]
    fn cuts_the_chosen_reply_after_exactly_n_bytes_and_only_once() {
        let redis = RedisServer::start();
        let value = "x".repeat(100);
        let mut direct = redis.connect();
        direct
            .command(&[b"SET", b"k", value.as_bytes()])
            .unwrap()
            .ok()
            .unwrap();
        let proxy = Proxy::start(redis.port());
        proxy.drop_mid_reply(b"xxxx", 10);
        let mut raw = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        raw.write_all(b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
            .unwrap();
        let mut got = Vec::new();
        raw.read_to_end(&mut got).unwrap(); // ends: the proxy closed it
        assert_eq!(got, b"+PONG\r\n$100\r\nxxxx");
        assert_eq!(proxy.stats().cut_mid_reply, 1);
        assert_eq!(proxy.armed(), 0);
        let mut c = open(&proxy).unwrap();
        let whole = c.command(&[b"GET", b"k"]).unwrap();
        assert_eq!(whole, Reply::Bulk(Some(value.into_bytes())));
    }

    #[test]
    fn a_cut_link_closes_open_connections_and_refuses_new_ones_until_restored() {
        let redis = RedisServer::start();
        let proxy = Proxy::start(redis.port());
        let mut before = open(&proxy).unwrap();
        before.command(&[b"PING"]).unwrap();
        proxy.cut();
        assert!(before.command(&[b"PING"]).unwrap_err().is_connection());
        // Accepted, then closed at once: the first command fails.
        let during = open(&proxy).and_then(|mut c| c.command(&[b"PING"]));
        assert!(during.unwrap_err().is_connection());
        assert_eq!(proxy.stats().cut_by_link, 1);
        assert!(proxy.stats().refused >= 1);
        proxy.restore();
        let mut after = open(&proxy).unwrap();
        assert_eq!(
            after.command(&[b"PING"]).unwrap(),
            Reply::Status("PONG".to_string())
        );
    }

    #[test]
    fn a_stall_holds_traffic_without_closing_and_restore_lets_it_through() {
        let redis = RedisServer::start();
        let proxy = Proxy::start(redis.port());
        let mut c = open(&proxy).unwrap();
        proxy.stall();
        let ping = std::thread::spawn(move || c.command(&[b"PING"]));
        crate::testing::wait_until(Duration::from_secs(60), "the PING to be held", || {
            proxy.stats().held >= 1
        });
        // Held in the proxy, the PING cannot have reached the server.
        assert!(!ping.is_finished());
        assert_eq!(proxy.stats().cut_by_link, 0);
        proxy.restore();
        let pong = ping.join().unwrap().unwrap();
        assert_eq!(pong, Reply::Status("PONG".to_string()));
    }

    #[test]
    fn a_delay_holds_every_reply() {
        let redis = RedisServer::start();
        let proxy = Proxy::start(redis.port());
        let mut c = open(&proxy).unwrap();
        proxy.set_delay(Duration::from_millis(100));
        let start = std::time::Instant::now();
        c.command(&[b"PING"]).unwrap();
        c.command(&[b"PING"]).unwrap();
        // A lower bound only: a loaded machine may take longer.
        assert!(start.elapsed() >= Duration::from_millis(200));
    }

    #[test]
    fn frames_whole_replies_and_waits_for_incomplete_ones() {
        let wire = b"+OK\r\n$3\r\nabc\r\n*2\r\n:1\r\n$-1\r\n";
        assert_eq!(reply_len(wire, 0), Ok(Some(5)));
        assert_eq!(reply_len(wire, 5), Ok(Some(14)));
        assert_eq!(reply_len(wire, 14), Ok(Some(wire.len())));
        assert_eq!(reply_len(b"$3\r\nab", 0), Ok(None));
        assert_eq!(reply_len(b"*2\r\n:1\r\n", 0), Ok(None));
        assert_eq!(reply_len(b"+OK", 0), Ok(None));
        assert_eq!(reply_len(b"?\r\n", 0), Err(NotResp));
    }
}
