//! The proxy server: the effectful edge around `request` and `allow`.
//!
//! The supervisor serves it on a socket created inside the sandbox's network
//! namespace, so it is the only way out. One thread accepts; each client
//! connection gets a thread (plus one more while tunnelling, one per
//! direction), at most `MAX_CONNECTIONS` at once. Blocking I/O and threads
//! keep it small and dependency-free; an agent's dozens of parallel fetches
//! are far below the limit.
//!
//! Per connection: read the head (bounded in size and time), parse it
//! strictly, check the name against the allow-list, resolve it here (never
//! inside the sandbox), drop resolved addresses that are not public unless
//! allowed by IP, connect to the first that answers, then relay bytes. The
//! address checked is the address dialled: no second look-up, so no DNS
//! rebinding window.
//!
//! Plain HTTP is one request per client connection: the upstream gets
//! `Connection: close`, and the connection ends with its answer.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::allow::AllowList;
use super::host::Host;
use super::request::{self, head_end, Kind, Reject, MAX_HEAD};

/// Client connections served at once; beyond this, 503.
const MAX_CONNECTIONS: usize = 512;
/// Time a client has to send its whole request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Time for one upstream connect attempt, and for all of them together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_BUDGET: Duration = Duration::from_secs(20);
/// How long `stop` waits for connection threads to end after shutting down
/// their sockets. Only a thread inside a DNS look-up or a connect attempt,
/// which no socket shutdown interrupts, can take longer; it is left to end
/// on its own, which it does without touching the network again.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Distinct (host, port) pairs kept in the denial log; the rest are
/// counted together, so a flood of random names cannot exhaust memory.
const MAX_DENIAL_ENTRIES: usize = 1024;
/// Stacks: connection threads run getaddrinfo(3) and its NSS modules;
/// relay threads only copy through a heap buffer.
const CONNECTION_STACK: usize = 512 * 1024;
const RELAY_STACK: usize = 64 * 1024;
const RELAY_BUFFER: usize = 16 * 1024;

/// One refused destination, with how many times it was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub host: String,
    pub port: u16,
    pub count: u64,
    pub reason: String,
}

impl fmt::Display for Denial {
    /// One line for the stderr summary: `evil.example:443 refused 3 times (not allowed)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.port == 0 {
            write!(f, "{}", self.host)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        let times = if self.count == 1 { "time" } else { "times" };
        write!(f, " refused {} {times} ({})", self.count, self.reason)
    }
}

/// Host names in the denial log for refusals that have no real host.
const MALFORMED: &str = "<malformed>";
const OVERLOADED: &str = "<overloaded>";
const OTHER_HOSTS: &str = "<other hosts>";

/// A running proxy. Dropping it stops it too (and discards the denials).
pub struct Proxy {
    shared: Arc<Shared>,
    /// A duplicate of the listening socket, to shut it down from `stop`: that
    /// wakes the blocked accept(2), and works across network namespaces,
    /// where connecting to the socket to wake it would not.
    listener: TcpListener,
    accept: Option<JoinHandle<()>>,
}

struct Shared {
    allow: AllowList,
    /// Client connections served at once (`MAX_CONNECTIONS` but in tests).
    limit: usize,
    conns: Mutex<Conns>,
    /// Signalled whenever a connection thread ends.
    ended: Condvar,
    denials: Mutex<DenialLog>,
}

#[derive(Default)]
struct Conns {
    stopping: bool,
    next_id: u64,
    /// Connection threads alive, for the limit and for `stop`.
    threads: usize,
    /// Each live connection's sockets (duplicates), for `stop` to shut down.
    sockets: HashMap<u64, Vec<TcpStream>>,
}

impl Proxy {
    /// Serve on an already-listening socket. Spawns its own threads and
    /// returns at once; nothing here waits for a client.
    pub fn start(listener: TcpListener, allow: AllowList) -> io::Result<Proxy> {
        Proxy::start_with_limit(listener, allow, MAX_CONNECTIONS)
    }

    fn start_with_limit(
        listener: TcpListener,
        allow: AllowList,
        limit: usize,
    ) -> io::Result<Proxy> {
        // The accept thread blocks; `stop` wakes it by shutting the socket down.
        listener.set_nonblocking(false)?;
        let handle = listener.try_clone()?;
        let shared = Arc::new(Shared {
            allow,
            limit,
            conns: Mutex::new(Conns::default()),
            ended: Condvar::new(),
            denials: Mutex::new(DenialLog::default()),
        });
        let for_thread = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("bwai-proxy".into())
            .spawn(move || accept_loop(&listener, &for_thread))?;
        Ok(Proxy {
            shared,
            listener: handle,
            accept: Some(accept),
        })
    }

    /// Stop accepting, close every connection, join the threads; return what
    /// was refused, one entry per (host, port), in first-seen order.
    /// Returns within about `STOP_GRACE` even with tunnels open.
    pub fn stop(mut self) -> Vec<Denial> {
        self.shut_down();
        std::mem::take(&mut lock(&self.shared.denials).entries)
    }

    fn shut_down(&mut self) {
        {
            let mut conns = lock(&self.shared.conns);
            conns.stopping = true;
            // Shutting a socket down wakes the thread blocked on it, where
            // closing our duplicate would not.
            for socket in conns.sockets.values().flatten() {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
        // On Linux, shutdown(2) on a listening socket makes a blocked
        // accept(2) return EINVAL.
        if let Err(e) =
            nix::sys::socket::shutdown(self.listener.as_raw_fd(), nix::sys::socket::Shutdown::Both)
        {
            log::warn!("network proxy: shutting down the listening socket: {e}");
        }
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let deadline = Instant::now() + STOP_GRACE;
        let mut conns = lock(&self.shared.conns);
        while conns.threads > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                log::debug!(
                    "network proxy: {} connection(s) still resolving or connecting at stop; \
                     they end on their own",
                    conns.threads
                );
                break;
            }
            conns = match self.shared.ended.wait_timeout(conns, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.shut_down();
        }
    }
}

/// A poisoned lock only means another connection thread panicked; the data
/// (counters, socket lists) is still consistent enough to go on.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    loop {
        match listener.accept() {
            Ok((client, _)) => admit(shared, client),
            Err(e) => {
                if lock(&shared.conns).stopping {
                    return;
                }
                match e.kind() {
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => {}
                    _ => {
                        // Out of file descriptors and the like: back off
                        // rather than spin, and try again.
                        log::warn!("network proxy: accept: {e}");
                        thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        }
    }
}

/// Start serving one client, unless stopping or full.
fn admit(shared: &Arc<Shared>, client: TcpStream) {
    let id = {
        let mut conns = lock(&shared.conns);
        if conns.stopping {
            return;
        }
        if conns.threads >= shared.limit {
            drop(conns);
            refuse_busy(shared, client);
            return;
        }
        let Ok(dup) = client.try_clone() else { return };
        conns.next_id += 1;
        let id = conns.next_id;
        conns.threads += 1;
        conns.sockets.insert(id, vec![dup]);
        id
    };
    // Created before the spawn so that a failed spawn, which drops the
    // closure, still releases the slot.
    let slot = Slot {
        shared: Arc::clone(shared),
        id,
    };
    let spawned = thread::Builder::new()
        .name("bwai-proxy-conn".into())
        .stack_size(CONNECTION_STACK)
        .spawn(move || serve(&slot, client));
    if let Err(e) = spawned {
        log::warn!("network proxy: cannot start a connection thread: {e}");
        shared.deny(OVERLOADED, 0, "too many connections");
    }
}

/// The accept thread must never block on a client: answer without waiting.
fn refuse_busy(shared: &Shared, client: TcpStream) {
    shared.deny(OVERLOADED, 0, "too many connections");
    let _ = client.set_nonblocking(true);
    let _ = (&client).write_all(&response(
        503,
        "bwai: the network proxy is serving too many connections; try again\n",
    ));
}

/// A connection thread's place in `Conns`, released when the thread ends,
/// however it ends.
struct Slot {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut conns = lock(&self.shared.conns);
        conns.threads -= 1;
        conns.sockets.remove(&self.id);
        self.shared.ended.notify_all();
    }
}

impl Shared {
    fn deny(&self, host: &str, port: u16, reason: &str) {
        log::debug!("network proxy: refused {host}:{port}: {reason}");
        lock(&self.denials).record(host, port, reason);
    }

    /// Add the upstream socket to the connection's sockets, unless `stop`
    /// has begun (it would not see it, and the tunnel would outlive it).
    fn register(&self, id: u64, upstream: &TcpStream) -> bool {
        let mut conns = lock(&self.conns);
        if conns.stopping {
            return false;
        }
        match (upstream.try_clone(), conns.sockets.get_mut(&id)) {
            (Ok(dup), Some(list)) => {
                list.push(dup);
                true
            }
            _ => false,
        }
    }

    fn stopping(&self) -> bool {
        lock(&self.conns).stopping
    }
}

fn serve(slot: &Slot, client: TcpStream) {
    let shared = &*slot.shared;
    let _ = client.set_nodelay(true);
    let (head, early) = match read_head(&client) {
        Ok(Some(x)) => x,
        Ok(None) => return, // connected and closed: nothing asked, nothing refused
        // `stop` cut the head short: not the client's doing.
        Err(HeadError::Reject(_)) if shared.stopping() => return,
        Err(HeadError::Reject(r)) => return refuse_malformed(shared, &client, r),
        Err(HeadError::TimedOut) => {
            return answer(
                &client,
                408,
                "bwai: the request head did not arrive in time\n",
            )
        }
        Err(HeadError::Io) => return,
    };
    let req = match request::parse(&head) {
        Ok(r) => r,
        Err(r) => return refuse_malformed(shared, &client, r),
    };
    let host = req.host.to_string();
    let port = req.port;
    if !shared.allow.allows(&host, port) {
        shared.deny(&host, port, "not allowed");
        return answer(
            &client,
            403,
            &format!("bwai: {host}:{port} is not on bwai's network allow-list\n"),
        );
    }
    let resolved = match resolve(&req.host, port) {
        Ok(a) if !a.is_empty() => a,
        Ok(_) | Err(_) => return answer(&client, 502, &format!("bwai: cannot resolve {host}\n")),
    };
    let (permitted, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = resolved
        .into_iter()
        .partition(|a| shared.allow.address_allowed(a.ip(), port));
    if permitted.is_empty() {
        let example = Host::Ip(refused[0].ip().to_canonical());
        shared.deny(
            &host,
            port,
            &format!("resolves to a non-public address, {example}"),
        );
        return answer(
            &client,
            403,
            &format!(
                "bwai: {host} resolves to a private address ({example}), which bwai's network \
                 allow-list does not permit; to reach it, allow the address itself \
                 (\"{example}:{port}\")\n"
            ),
        );
    }
    if shared.stopping() {
        return;
    }
    let upstream = match connect(&permitted) {
        Ok(s) => s,
        Err(e) => {
            return answer(
                &client,
                502,
                &format!("bwai: cannot connect to {host}:{port}: {e}\n"),
            )
        }
    };
    if !shared.register(slot.id, &upstream) {
        return;
    }
    let _ = client.set_read_timeout(None);
    let _ = upstream.set_nodelay(true);
    let forward = match &req.kind {
        Kind::Connect => (&client)
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .is_ok(),
        Kind::Forward { upstream_head } => (&upstream).write_all(upstream_head).is_ok(),
    };
    // Bytes the client sent after the head (a request body, or a TLS hello
    // sent without waiting for the 200) go upstream first.
    if forward && (early.is_empty() || (&upstream).write_all(&early).is_ok()) {
        relay(client, upstream, matches!(req.kind, Kind::Forward { .. }));
    }
}

/// A request head, and the bytes the client sent after it.
type HeadAndEarly = (Vec<u8>, Vec<u8>);

enum HeadError {
    Reject(Reject),
    TimedOut,
    Io,
}

/// Read up to the end of the request head; return it and whatever followed.
/// `None` when the client closed without sending a byte.
fn read_head(client: &TcpStream) -> Result<Option<HeadAndEarly>, HeadError> {
    let deadline = Instant::now() + HEAD_TIMEOUT;
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadError::TimedOut);
        }
        client
            .set_read_timeout(Some(left))
            .map_err(|_| HeadError::Io)?;
        let n = match (&*client).read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(HeadError::TimedOut)
            }
            Err(_) => return Err(HeadError::Io),
        };
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(HeadError::Reject(Reject {
                    status: 400,
                    why: "the connection closed in the middle of the request head",
                }))
            };
        }
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&buf[from..]).map(|e| from + e) {
            if end > MAX_HEAD {
                break;
            }
            let rest = buf.split_off(end);
            return Ok(Some((buf, rest)));
        }
        // No end yet, so all of `buf` is head. A bare LF would never end it
        // (CRLF CRLF): refuse it now rather than at the timeout. (Once the
        // end is found, `request::parse` checks the head; what follows it
        // is payload, where LF is fine.)
        let bare_lf = (from..buf.len()).any(|i| buf[i] == b'\n' && (i == 0 || buf[i - 1] != b'\r'));
        if bare_lf {
            return Err(HeadError::Reject(Reject {
                status: 400,
                why: "a bare LF in the request head",
            }));
        }
        if buf.len() > MAX_HEAD {
            break;
        }
    }
    Err(HeadError::Reject(request::TOO_LARGE))
}

fn refuse_malformed(shared: &Shared, client: &TcpStream, r: Reject) {
    shared.deny(MALFORMED, 0, "malformed request");
    answer(
        client,
        r.status,
        &format!("bwai: malformed proxy request: {}\n", r.why),
    );
}

/// Name resolution happens here, outside the sandbox; an IP literal is
/// used as it is.
fn resolve(host: &Host, port: u16) -> io::Result<Vec<SocketAddr>> {
    match host {
        Host::Ip(a) => Ok(vec![SocketAddr::new(*a, port)]),
        Host::Name(n) => Ok((n.as_str(), port).to_socket_addrs()?.collect()),
    }
}

/// Try the permitted addresses in order (an IPv6 address first may be
/// unreachable where IPv4 works), within an overall budget.
fn connect(addrs: &[SocketAddr]) -> io::Result<TcpStream> {
    let deadline = Instant::now() + CONNECT_BUDGET;
    let mut last = io::Error::new(io::ErrorKind::TimedOut, "connection timed out");
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(addr, left.min(CONNECT_TIMEOUT)) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Copy both ways until both directions end. A direction that ends cleanly
/// passes the end on (shutdown of the write side: half-close); an error on
/// either side ends both. With `one_response`, the end of the upstream's
/// answer ends the connection (plain HTTP: one request per connection).
fn relay(client: TcpStream, upstream: TcpStream, one_response: bool) {
    let (Ok(client2), Ok(upstream2)) = (client.try_clone(), upstream.try_clone()) else {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
        return;
    };
    let outbound = thread::Builder::new()
        .name("bwai-proxy-relay".into())
        .stack_size(RELAY_STACK)
        .spawn(move || pump(&client2, &upstream2, false));
    let Ok(outbound) = outbound else {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
        return;
    };
    pump(&upstream, &client, one_response);
    let _ = outbound.join();
}

fn pump(from: &TcpStream, to: &TcpStream, close_at_end: bool) {
    let mut buf = vec![0u8; RELAY_BUFFER];
    loop {
        match (&*from).read(&mut buf) {
            Ok(0) if !close_at_end => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(0) => break,
            Ok(n) => {
                if (&*to).write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    // Wake the other direction's thread too.
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

fn response(status: u16, body: &str) -> Vec<u8> {
    let reason = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Send an error answer and close. Closing a socket with unread input
/// resets the connection, which can destroy the answer before the client
/// reads it; so first read and discard what the client still sends, for a
/// bounded time and amount.
fn answer(client: &TcpStream, status: u16, body: &str) {
    let _ = client.set_write_timeout(Some(Duration::from_secs(5)));
    if (&*client).write_all(&response(status, body)).is_err() {
        return;
    }
    let _ = client.shutdown(Shutdown::Write);
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut sink = [0u8; 4096];
    let mut drained = 0usize;
    while drained < 256 * 1024 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || client.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match (&*client).read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

#[derive(Default)]
struct DenialLog {
    entries: Vec<Denial>,
    index: HashMap<(String, u16), usize>,
}

impl DenialLog {
    fn record(&mut self, host: &str, port: u16, reason: &str) {
        let mut key = (host.to_string(), port);
        if !self.index.contains_key(&key) && self.entries.len() >= MAX_DENIAL_ENTRIES {
            key = (OTHER_HOSTS.to_string(), 0);
        }
        if let Some(&i) = self.index.get(&key) {
            self.entries[i].count += 1;
            return;
        }
        let reason = if key.0 == OTHER_HOSTS {
            "more refused hosts than the log keeps"
        } else {
            reason
        };
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push(Denial {
            host: key.0,
            port: key.1,
            count: 1,
            reason: reason.to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_are_counted_per_host_and_port_in_first_seen_order() {
        let mut log = DenialLog::default();
        log.record("b.com", 443, "not allowed");
        log.record("a.com", 443, "not allowed");
        log.record("b.com", 443, "not allowed");
        log.record("b.com", 80, "not allowed");
        let got: Vec<(&str, u16, u64)> = log
            .entries
            .iter()
            .map(|d| (d.host.as_str(), d.port, d.count))
            .collect();
        assert_eq!(
            got,
            [("b.com", 443, 2), ("a.com", 443, 1), ("b.com", 80, 1)]
        );
    }

    #[test]
    fn a_flood_of_names_cannot_grow_the_denial_log_without_bound() {
        let mut log = DenialLog::default();
        for i in 0..(MAX_DENIAL_ENTRIES + 500) {
            log.record(&format!("h{i}.com"), 443, "not allowed");
        }
        log.record("h0.com", 443, "not allowed");
        assert_eq!(log.entries.len(), MAX_DENIAL_ENTRIES + 1);
        let last = log.entries.last().unwrap();
        assert_eq!((last.host.as_str(), last.count), (OTHER_HOSTS, 500));
        assert_eq!(log.entries[0].count, 2);
    }

    #[test]
    fn denial_displays_as_one_line() {
        let d = Denial {
            host: "evil.example".into(),
            port: 443,
            count: 3,
            reason: "not allowed".into(),
        };
        assert_eq!(
            d.to_string(),
            "evil.example:443 refused 3 times (not allowed)"
        );
        let m = Denial {
            host: MALFORMED.into(),
            port: 0,
            count: 1,
            reason: "malformed request".into(),
        };
        assert_eq!(
            m.to_string(),
            "<malformed> refused 1 time (malformed request)"
        );
    }

    #[test]
    fn connections_beyond_the_limit_get_503_and_are_counted() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let proxy = Proxy::start_with_limit(listener, AllowList::default(), 2).unwrap();
        let timeout = Some(Duration::from_secs(10));
        // Two clients that say nothing hold both slots.
        let holders: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        while lock(&proxy.shared.conns).threads < 2 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        let mut third = TcpStream::connect(addr).unwrap();
        third.set_read_timeout(timeout).unwrap();
        let mut answer = String::new();
        let _ = third.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer:?}");
        drop(holders);
        let denials = proxy.stop();
        assert_eq!(
            denials,
            [Denial {
                host: OVERLOADED.into(),
                port: 0,
                count: 1,
                reason: "too many connections".into()
            }]
        );
    }

    #[test]
    fn error_answers_are_well_formed() {
        let r = String::from_utf8(response(403, "no\n")).unwrap();
        assert!(r.starts_with("HTTP/1.1 403 Forbidden\r\n"));
        assert!(r.ends_with("Content-Length: 3\r\nConnection: close\r\n\r\nno\n"));
    }
}
