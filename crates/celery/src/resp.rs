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

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("bad RESP reply: {what}"),
    )
}

fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the Redis server closed the connection",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(bad("line without CRLF"));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| bad("line is not UTF-8"))
}

fn read_len(s: &str) -> io::Result<i64> {
    s.parse::<i64>().map_err(|_| bad("length is not a number"))
}

/// Reads one reply from `r`.
pub fn read_reply(r: &mut impl BufRead) -> io::Result<Reply> {
    let line = read_line(r)?;
    let (kind, rest) = line.split_at(line.len().min(1));
    Ok(match kind {
        "+" => Reply::Status(rest.to_string()),
        "-" => Reply::Error(rest.to_string()),
        ":" => Reply::Integer(read_len(rest)?),
        "$" => {
            let n = read_len(rest)?;
            if n < 0 {
                Reply::Bulk(None)
            } else {
                let mut buf = vec![0u8; n as usize + 2];
                r.read_exact(&mut buf)?;
                if !buf.ends_with(b"\r\n") {
                    return Err(bad("bulk string without CRLF"));
                }
                buf.truncate(n as usize);
                Reply::Bulk(Some(buf))
            }
        }
        "*" => {
            let n = read_len(rest)?;
            if n < 0 {
                Reply::Array(None)
            } else {
                let mut items = Vec::with_capacity(n.min(1024) as usize);
                for _ in 0..n {
                    items.push(read_reply(r)?);
                }
                Reply::Array(Some(items))
            }
        }
        _ => return Err(bad("unknown type byte")),
    })
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
}
