//! Reading requests and writing responses on one connection.
//!
//! Parsing is `httparse`'s (a zero-copy HTTP/1.x parser used by hyper); this
//! module adds the limits a public-facing server needs:
//!
//! * **Size**: the request head (request line and headers) must fit in
//!   [`Limits::max_head`] bytes, with at most [`Limits::max_headers`]
//!   headers: an over-long request line gets `414 URI Too Long`, over-long or
//!   too many headers `431 Request Header Fields Too Large`.
//! * **Time**: an idle keep-alive connection is closed after
//!   [`Limits::idle_timeout`]; once a request has begun, its whole head must
//!   arrive within [`Limits::header_timeout`], or the client gets
//!   `408 Request Timeout`. The deadline is for the whole head, not per read,
//!   so a client dribbling one byte a second ("slowloris") is cut off too.
//! * **Bodies**: GET and HEAD need none; a request announcing one is refused
//!   with 400 (the body would otherwise be read as the next request).
//! * **Host**: an HTTP/1.1 request without a `Host` header, or any request
//!   with more than one, gets 400 (RFC 9112 section 3.2).
//!
//! Every response carries a `Date` header (RFC 9110 section 6.6.1).
//!
//! Bytes after a complete head stay in the buffer: they are the start of
//! the next pipelined request.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Limits on what a client may send, and how slowly.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Maximum size of a request head in bytes.
    pub max_head: usize,
    /// Maximum number of headers.
    pub max_headers: usize,
    /// How long a kept-alive connection may stay silent between requests.
    pub idle_timeout: Duration,
    /// How long a client may take to send a whole request head.
    pub header_timeout: Duration,
    /// How long one write to a client may block.
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 8 * 1024,
            max_headers: 32,
            idle_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// A parsed request head: only what the flag server needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, as sent (`GET`, `HEAD`, ...).
    pub method: String,
    /// The request target, as sent (`/flags/br/br.gif`).
    pub target: String,
    /// Whether the client wants to keep the connection open afterwards.
    pub keep_alive: bool,
}

/// What reading the next request gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A complete request head.
    Request(Request),
    /// The client closed or went idle: close without a word.
    Closed,
    /// The request is unacceptable: answer with this status and close.
    Reject(u16),
}

/// One client connection and the bytes read from it but not yet used.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    /// Wraps an accepted stream.
    pub fn new(stream: TcpStream, limits: &Limits) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(limits.write_timeout))?;
        Ok(Connection {
            stream,
            buf: Vec::with_capacity(1024),
        })
    }

    /// Reads the next request head, within the limits.
    pub fn read_request(&mut self, limits: &Limits) -> Incoming {
        // The head deadline starts with its first byte (maybe already buffered).
        let mut deadline = (!self.buf.is_empty()).then(|| Instant::now() + limits.header_timeout);
        loop {
            if !self.buf.is_empty() {
                match self.parse(limits) {
                    Parsed::Done(incoming) => return incoming,
                    Parsed::NeedMore => {}
                }
            }
            // Wait for more bytes: up to the idle timeout before a request,
            // up to what is left of the head deadline within one.
            let wait = match deadline {
                None => limits.idle_timeout,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return Incoming::Reject(408),
                },
            };
            if self.stream.set_read_timeout(Some(wait)).is_err() {
                return Incoming::Closed;
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Incoming::Closed,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    deadline.get_or_insert_with(|| Instant::now() + limits.header_timeout);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return if deadline.is_some() {
                        Incoming::Reject(408)
                    } else {
                        Incoming::Closed
                    };
                }
                Err(_) => return Incoming::Closed,
            }
        }
    }

    fn parse(&mut self, limits: &Limits) -> Parsed {
        match parse_head(&self.buf, limits) {
            None => Parsed::NeedMore,
            Some((incoming, consumed)) => {
                self.buf.drain(..consumed);
                Parsed::Done(incoming)
            }
        }
    }

    /// Writes a response. `body` is left out for HEAD requests (`send_body`
    /// false), but its length is still announced.
    pub fn respond(
        &mut self,
        response: &Response,
        send_body: bool,
        keep_alive: bool,
    ) -> io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nDate: {}\r\nServer: flag-server\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
            response.status,
            status_reason(response.status),
            super::date::http_date_now(),
            response.content_type,
            response.body.len(),
            if keep_alive { "keep-alive" } else { "close" },
        );
        if response.status == 405 {
            head.push_str("Allow: GET, HEAD\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if send_body {
            out.extend_from_slice(&response.body);
        }
        self.stream.write_all(&out)?;
        self.stream.flush()
    }

    /// Closes after an error response without losing it: stop sending, then
    /// read and discard what the client still sends, for a short while.
    /// Closing a socket with unread input makes the kernel send a reset,
    /// which can destroy our response before the client reads it (the
    /// "lingering close" of RFC 9112 section 9.6, as Apache and nginx do it).
    pub fn close_gracefully(mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut sink = [0u8; 4096];
        let mut drained = 0usize;
        while drained < 256 * 1024 {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return;
            };
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                return;
            }
            match self.stream.read(&mut sink) {
                Ok(0) | Err(_) => return,
                Ok(n) => drained += n,
            }
        }
    }

    /// A second handle on the socket, used to shut it down from outside.
    pub fn try_clone_stream(&self) -> io::Result<TcpStream> {
        self.stream.try_clone()
    }
}

enum Parsed {
    Done(Incoming),
    NeedMore,
}

/// Parses the request head at the start of `buf` (the bytes received so
/// far): `None` if more bytes are needed, else what to do and how many bytes
/// of `buf` the request used (0 for a rejection: the connection closes).
///
/// A pure function of its input, so the fuzz target (`fuzz/`) can call it
/// with any bytes; [`Connection::read_request`] feeds it what it reads.
pub fn parse_head(buf: &[u8], limits: &Limits) -> Option<(Incoming, usize)> {
    let reject = |status| Some((Incoming::Reject(status), 0));
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut headers);
    let consumed = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() < limits.max_head {
                return None;
            }
            // Too big: blame the request line if it has not even ended.
            let line_done = buf[..limits.max_head].windows(2).any(|w| w == b"\r\n");
            return reject(if line_done { 431 } else { 414 });
        }
        Err(httparse::Error::TooManyHeaders) => return reject(431),
        Err(httparse::Error::Version) => return reject(505),
        Err(_) => return reject(400),
    };
    if consumed > limits.max_head {
        return reject(431);
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return reject(400);
    };
    let mut connection_close = version == 0; // HTTP/1.0 closes unless asked
    let mut has_body = false;
    let mut hosts = 0;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("host") {
            hosts += 1;
        }
        let value = String::from_utf8_lossy(h.value).to_ascii_lowercase();
        if h.name.eq_ignore_ascii_case("connection") {
            if value.split(',').any(|t| t.trim() == "close") {
                connection_close = true;
            } else if value.split(',').any(|t| t.trim() == "keep-alive") {
                connection_close = false;
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
            || (h.name.eq_ignore_ascii_case("content-length") && value.trim() != "0")
        {
            has_body = true;
        }
    }
    // RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request
    // without Host, and to any request with more than one.
    if has_body || hosts > 1 || (version == 1 && hosts == 0) {
        return reject(400);
    }
    let request = Request {
        method: method.to_string(),
        target: target.to_string(),
        keep_alive: !connection_close,
    };
    Some((Incoming::Request(request), consumed))
}

/// A response: status, content type, body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body (shared: flag images are not copied per request).
    pub body: std::sync::Arc<[u8]>,
}

impl Response {
    /// A flag image.
    pub fn gif(body: std::sync::Arc<[u8]>) -> Self {
        Response {
            status: 200,
            content_type: "image/gif",
            body,
        }
    }

    /// A short plain-text error page: `418 I'm a Teapot\n`.
    pub fn error(status: u16) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{status} {}\n", status_reason(status))
                .into_bytes()
                .into(),
        }
    }
}

/// The reason phrases we send. 418 uses Python's spelling, as the book's
/// `slow_server.py` sends it.
pub fn status_reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        414 => "URI Too Long",
        418 => "I'm a Teapot",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}
