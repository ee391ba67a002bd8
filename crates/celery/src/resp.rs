//! A minimal blocking Redis client: RESP2 over one TCP or unix socket.
//!
//! Only what Celery's Redis transport needs: commands as arrays of bulk
//! strings, replies parsed into [`Reply`], pipelining (write several commands,
//! read several replies), and pub/sub (a subscribed connection is just a
//! stream of pushed arrays, read with [`Connection::read_reply`]).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::error::CeleryError;
use crate::url::RedisUrl;

/// One RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Status(String),
    /// `-ERR ...`: an error reply (the command failed, the connection is fine).
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$n` bulk string, or `None` for `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*n` array, or `None` for `*-1`.
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The bulk string's bytes, if this is a non-nil bulk string.
    pub fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            Reply::Bulk(b) => b,
            Reply::Status(s) => Some(s.into_bytes()),
            _ => None,
        }
    }

    /// The array's items (nil and non-arrays give an empty vector).
    pub fn into_array(self) -> Vec<Reply> {
        match self {
            Reply::Array(Some(v)) => v,
            _ => Vec::new(),
        }
    }

    /// Appends the reply as a server would send it (the fuzz target checks
    /// that whatever parses re-encodes to bytes that parse to the same reply).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let line = |out: &mut Vec<u8>, kind: u8, text: &[u8]| {
            out.push(kind);
            out.extend_from_slice(text);
            out.extend_from_slice(b"\r\n");
        };
        match self {
            Reply::Status(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(e) => line(out, b'-', e.as_bytes()),
            Reply::Integer(i) => line(out, b':', i.to_string().as_bytes()),
            Reply::Bulk(None) => line(out, b'$', b"-1"),
            Reply::Bulk(Some(b)) => {
                line(out, b'$', b.len().to_string().as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Array(None) => line(out, b'*', b"-1"),
            Reply::Array(Some(items)) => {
                line(out, b'*', items.len().to_string().as_bytes());
                for item in items {
                    item.encode(out);
                }
            }
        }
    }

    /// An error reply turned into a [`CeleryError::Redis`]; other replies pass through.
    pub fn ok(self) -> Result<Reply, CeleryError> {
        match self {
            Reply::Error(e) => Err(CeleryError::Redis(e)),
            r => Ok(r),
        }
    }
}

/// The socket under a [`Connection`]: TCP, or a unix socket for
/// `redis+socket://` and `unix://` URLs.
#[derive(Debug)]
pub enum Stream {
    /// `redis://host:port`.
    Tcp(TcpStream),
    /// `redis+socket:///path` or `unix:///path`.
    Unix(UnixStream),
}

impl Stream {
    /// A second handle on the same socket.
    pub fn try_clone(&self) -> io::Result<Stream> {
        match self {
            Stream::Tcp(s) => s.try_clone().map(Stream::Tcp),
            Stream::Unix(s) => s.try_clone().map(Stream::Unix),
        }
    }

    /// Shuts the socket down (a thread blocked reading it returns).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
        }
    }

    /// Sets the read timeout (`None`: block forever).
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
        }
    }

    /// The read timeout (`None`: reads block forever).
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        match self {
            Stream::Tcp(s) => s.read_timeout(),
            Stream::Unix(s) => s.read_timeout(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}

/// How long a read waits for a reply before the connection counts as
/// broken. Our commands are small and Redis answers them in well under a
/// millisecond; the longest wait we ask for is the worker's 1 s BLMOVE.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// TCP keepalive: the first probe after this long idle ...
const KEEPALIVE_IDLE: libc::c_int = 60;
/// ... then one every this many seconds ...
const KEEPALIVE_INTERVAL: libc::c_int = 10;
/// ... and the connection is dropped after this many unanswered.
const KEEPALIVE_PROBES: libc::c_int = 3;

/// Turns on TCP keepalive with the timings above (the system defaults wait
/// two hours before the first probe).
fn keepalive(stream: &TcpStream) -> Result<(), CeleryError> {
    let options = [
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1),
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, KEEPALIVE_IDLE),
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, KEEPALIVE_INTERVAL),
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT, KEEPALIVE_PROBES),
    ];
    for (level, name, value) in options {
        // SAFETY: setsockopt(2) on the open socket `stream` owns, reading
        // exactly `size_of::<c_int>()` bytes from `value`, which lives
        // across the call.
        let r = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            return Err(CeleryError::Io(format!(
                "cannot turn on TCP keepalive: {e}"
            )));
        }
    }
    Ok(())
}

/// One connection to a Redis server.
pub struct Connection {
    reader: BufReader<Stream>,
    writer: Stream,
    out: Vec<u8>,
}

impl Connection {
    /// Connects (within the URL's `connect_timeout`, if it has one), then
    /// `AUTH`s if the URL has a password (`AUTH user password` with a user)
    /// and `SELECT`s its database.
    ///
    /// A silent link (packets dropped, no FIN or RST) must not hang anyone:
    /// every read gives up after [`READ_TIMEOUT`] (an error, so the caller
    /// reconnects; a connection that waits longer on purpose, a
    /// subscription, sets its own with [`set_read_timeout`](Self::set_read_timeout)),
    /// and on TCP, keepalive has the kernel probe an idle peer, so one that
    /// vanished is found on a connection nobody reads (a unix socket's peer
    /// is on this machine: its death closes the socket).
    pub fn open(url: &RedisUrl) -> Result<Connection, CeleryError> {
        let stream = match &url.unix_socket {
            Some(path) => UnixStream::connect(path).map(Stream::Unix),
            None => connect_tcp(url).map(|s| {
                s.set_nodelay(true).ok();
                Stream::Tcp(s)
            }),
        }
        .map_err(|e| CeleryError::Connect(url.to_string(), e.to_string()))?;
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .map_err(CeleryError::io)?;
        if let Stream::Tcp(tcp) = &stream {
            keepalive(tcp)?;
        }
        let writer = stream.try_clone().map_err(CeleryError::io)?;
        let mut conn = Connection {
            reader: BufReader::with_capacity(64 * 1024, stream),
            writer,
            out: Vec::with_capacity(1024),
        };
        if let Some(password) = &url.password {
            let reply = match &url.username {
                Some(user) => conn.command(&[b"AUTH", user.as_bytes(), password.as_bytes()])?,
                None => conn.command(&[b"AUTH", password.as_bytes()])?,
            };
            if let Reply::Error(e) = reply {
                return Err(CeleryError::Auth(url.to_string(), e));
            }
        }
        if url.db != 0 {
            match conn.command(&[b"SELECT", url.db.to_string().as_bytes()])? {
                // A server with a password, a URL without one.
                Reply::Error(e) if e.starts_with("NOAUTH") => {
                    return Err(CeleryError::Auth(url.to_string(), e))
                }
                r => r.ok()?,
            };
        }
        Ok(conn)
    }

    /// A second handle on the socket, for writing while another thread reads
    /// (a subscribed connection's owner reads; submitters add subscriptions).
    pub fn writer(&self) -> Result<Stream, CeleryError> {
        self.writer.try_clone().map_err(CeleryError::io)
    }

    /// Sets the read timeout (`None`: block forever).
    pub fn set_read_timeout(&self, t: Option<Duration>) -> Result<(), CeleryError> {
        self.writer.set_read_timeout(t).map_err(CeleryError::io)
    }

    /// Queues one command in the output buffer (sent by [`flush`](Self::flush)).
    pub fn queue(&mut self, args: &[&[u8]]) {
        encode(&mut self.out, args);
    }

    /// Sends every queued command.
    pub fn flush(&mut self) -> Result<(), CeleryError> {
        let r = self.writer.write_all(&self.out);
        self.out.clear();
        r.map_err(CeleryError::io)
    }

    /// Sends one command and reads its reply.
    pub fn command(&mut self, args: &[&[u8]]) -> Result<Reply, CeleryError> {
        self.queue(args);
        self.flush()?;
        self.read_reply()
    }

    /// Reads one reply (or one pushed pub/sub message).
    pub fn read_reply(&mut self) -> Result<Reply, CeleryError> {
        read_reply(&mut self.reader).map_err(CeleryError::io)
    }

    /// True if a whole reply may already be buffered (no read would block
    /// before the first byte).
    pub fn has_buffered(&self) -> bool {
        !self.reader.buffer().is_empty()
    }
}

/// A TCP connection to the URL's host, tried address by address (a name
/// may resolve to IPv6 and IPv4), each within the URL's connect timeout.
fn connect_tcp(url: &RedisUrl) -> io::Result<TcpStream> {
    let Some(limit) = url.connect_timeout else {
        return TcpStream::connect((url.host.as_str(), url.port));
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
    for addr in (url.host.as_str(), url.port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, limit) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Appends `args` as a RESP array of bulk strings.
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Redis's own `proto-max-bulk-len`: no bulk string is longer.
pub const MAX_BULK_LEN: i64 = 512 * 1024 * 1024;
/// Arrays nested deeper than this are refused.
pub const MAX_DEPTH: usize = 64;
/// Longest status, error or header line.
pub const MAX_LINE: usize = 64 * 1024;

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("bad RESP reply: {what}"),
    )
}

/// Reads one line, without its CRLF, reading at most [`MAX_LINE`] bytes of
/// it: a server that never ends a line cannot make us buffer forever.
fn read_line(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let n = r.take(MAX_LINE as u64 + 2).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the Redis server closed the connection",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(bad(if n > MAX_LINE {
            "line longer than 64 KiB"
        } else {
            "line without CRLF"
        }));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn utf8(bytes: &[u8]) -> io::Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| bad("line is not UTF-8"))
}

/// A length or integer: decimal ASCII, fitting an `i64`.
fn read_len(s: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| bad("length is not a number"))
}

/// Reads one reply from `r`.
///
/// Every byte sequence gives a reply or an error, never a panic: lengths are
/// checked before anything is allocated (a bulk string at most
/// [`MAX_BULK_LEN`], and its buffer grows only as its bytes arrive), arrays
/// nest at most [`MAX_DEPTH`] deep, lines are at most [`MAX_LINE`] bytes.
/// After an error the connection is out of step and must be dropped.
pub fn read_reply(r: &mut impl BufRead) -> io::Result<Reply> {
    read_nested(r, 1)
}

/// Reads one reply that sits `depth` arrays deep (1: the top level).
fn read_nested(r: &mut impl BufRead, depth: usize) -> io::Result<Reply> {
    if depth > MAX_DEPTH {
        return Err(bad("arrays nested more than 64 deep"));
    }
    let line = read_line(r)?;
    let Some((&kind, rest)) = line.split_first() else {
        return Err(bad("empty line"));
    };
    Ok(match kind {
        b'+' => Reply::Status(utf8(rest)?),
        b'-' => Reply::Error(utf8(rest)?),
        b':' => Reply::Integer(read_len(rest)?),
        b'$' => match read_len(rest)? {
            -1 => Reply::Bulk(None),
            n @ 0..=MAX_BULK_LEN => Reply::Bulk(Some(read_bulk(r, n as usize)?)),
            n if n < 0 => return Err(bad("negative bulk length other than -1")),
            _ => return Err(bad("bulk string longer than 512 MB (proto-max-bulk-len)")),
        },
        b'*' => match read_len(rest)? {
            -1 => Reply::Array(None),
            n if n < 0 => return Err(bad("negative array length other than -1")),
            n => {
                // Each item needs at least 3 bytes on the wire, so memory
                // grows only with what arrives, whatever `n` says.
                let mut items = Vec::with_capacity(n.min(1024) as usize);
                for _ in 0..n {
                    items.push(read_nested(r, depth + 1)?);
                }
                Reply::Array(Some(items))
            }
        },
        _ => return Err(bad("unknown type byte")),
    })
}

/// Reads a bulk string's `n` bytes and its CRLF. The buffer grows with
/// what arrives: a header announcing 500 MB followed by nothing costs
/// nothing.
fn read_bulk(r: &mut impl BufRead, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n.min(64 * 1024) + 2);
    let want = n as u64 + 2;
    if r.take(want).read_to_end(&mut buf)? as u64 != want {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the Redis server closed the connection inside a bulk string",
        ));
    }
    if !buf.ends_with(b"\r\n") {
        return Err(bad("bulk string without CRLF"));
    }
    buf.truncate(n);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands_as_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode(&mut out, &[b"LPUSH", b"celery", b"x y"]);
        assert_eq!(out, b"*3\r\n$5\r\nLPUSH\r\n$6\r\ncelery\r\n$3\r\nx y\r\n");
    }

    #[test]
    fn parses_every_reply_type() {
        let wire = b"+OK\r\n-ERR no\r\n:12\r\n$3\r\nabc\r\n$-1\r\n*2\r\n:1\r\n$0\r\n\r\n*-1\r\n";
        let mut r = &wire[..];
        assert_eq!(read_reply(&mut r).unwrap(), Reply::Status("OK".into()));
        assert_eq!(read_reply(&mut r).unwrap(), Reply::Error("ERR no".into()));
        assert_eq!(read_reply(&mut r).unwrap(), Reply::Integer(12));
        assert_eq!(
            read_reply(&mut r).unwrap(),
            Reply::Bulk(Some(b"abc".to_vec()))
        );
        assert_eq!(read_reply(&mut r).unwrap(), Reply::Bulk(None));
        assert_eq!(
            read_reply(&mut r).unwrap(),
            Reply::Array(Some(vec![Reply::Integer(1), Reply::Bulk(Some(vec![]))]))
        );
        assert_eq!(read_reply(&mut r).unwrap(), Reply::Array(None));
        assert_eq!(
            read_reply(&mut r).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        // And they encode back to the same bytes.
        let mut r = &wire[..];
        let mut out = Vec::new();
        while let Ok(reply) = read_reply(&mut r) {
            reply.encode(&mut out);
        }
        assert_eq!(out, wire);
    }

    #[test]
    fn rejects_garbage_instead_of_hanging() {
        let mut r = &b"?what\r\n"[..];
        assert_eq!(
            read_reply(&mut r).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let mut r = &b"$5\r\nab\r\n"[..];
        assert!(read_reply(&mut r).is_err());
    }

    /// The reply's error kind, or a panic naming what parsed instead.
    fn error_kind(wire: &[u8]) -> io::ErrorKind {
        match read_reply(&mut &wire[..]) {
            Ok(r) => panic!("{wire:?} parsed as {r:?}"),
            Err(e) => e.kind(),
        }
    }

    #[test]
    fn a_multibyte_first_character_is_an_error_not_a_panic() {
        // 'é' is two bytes: splitting the line after its first byte panicked.
        assert_eq!(error_kind("é\r\n".as_bytes()), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_bulk_length_of_i64_max_is_an_error_not_an_overflow() {
        assert_eq!(
            error_kind(b"$9223372036854775807\r\n"),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn a_4_tib_bulk_length_is_refused_before_allocating() {
        // Bigger than Redis's own proto-max-bulk-len (512 MB): refused from
        // the header alone, not by trying to allocate 4 TiB.
        assert_eq!(
            error_kind(b"$4398046511104\r\n"),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn a_million_nested_arrays_are_an_error_not_a_stack_overflow() {
        let wire = b"*1\r\n".repeat(1_000_000);
        assert_eq!(error_kind(&wire), io::ErrorKind::InvalidData);
    }

    #[test]
    fn nesting_up_to_the_limit_still_parses() {
        let mut wire = b"*1\r\n".repeat(MAX_DEPTH - 1);
        wire.extend_from_slice(b":7\r\n");
        let mut reply = read_reply(&mut &wire[..]).unwrap();
        for _ in 0..MAX_DEPTH - 1 {
            reply = reply.into_array().pop().unwrap();
        }
        assert_eq!(reply, Reply::Integer(7));
    }

    #[test]
    fn a_line_without_end_is_cut_off_at_the_cap() {
        // A server that sends a status line and never ends it: the parser
        // reads at most MAX_LINE bytes of it (and room for a CRLF), not all 64 MiB.
        let mut r = io::BufReader::new(io::repeat(b'+').take(64 << 20));
        let mut consumed = 0u64;
        let kind = read_reply(&mut CountingReader::new(&mut r, &mut consumed))
            .unwrap_err()
            .kind();
        assert_eq!(kind, io::ErrorKind::InvalidData);
        assert!(consumed <= MAX_LINE as u64 + 2, "read {consumed} bytes");
    }

    #[test]
    fn negative_lengths_other_than_nil_are_errors() {
        assert_eq!(error_kind(b"$-2\r\n"), io::ErrorKind::InvalidData);
        assert_eq!(error_kind(b"*-7\r\n"), io::ErrorKind::InvalidData);
    }

    /// A `BufRead` that counts the bytes its caller consumed.
    struct CountingReader<'a, R> {
        inner: R,
        consumed: &'a mut u64,
    }

    impl<'a, R: BufRead> CountingReader<'a, R> {
        fn new(inner: R, consumed: &'a mut u64) -> Self {
            CountingReader { inner, consumed }
        }
    }

    impl<R: BufRead> io::Read for CountingReader<'_, R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            *self.consumed += n as u64;
            Ok(n)
        }
    }

    impl<R: BufRead> BufRead for CountingReader<'_, R> {
        fn fill_buf(&mut self) -> io::Result<&[u8]> {
            self.inner.fill_buf()
        }
        fn consume(&mut self, n: usize) {
            *self.consumed += n as u64;
            self.inner.consume(n);
        }
    }
}
