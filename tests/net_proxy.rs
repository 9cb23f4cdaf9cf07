//! The network proxy of the `allow` mode, run in this test process on
//! 127.0.0.1, with local servers playing the internet: an HTTP server and a
//! TCP echo server. Each test is one promise or one attack. Nothing here
//! touches an address other than 127.0.0.1; every socket has a timeout.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use bwai::net::{AllowList, Denial, Proxy};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn listen() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")
}

fn start(entries: &[String]) -> (Proxy, SocketAddr) {
    let listener = listen();
    let addr = listener.local_addr().unwrap();
    let allow = AllowList::parse(entries).expect("allow-list");
    (Proxy::start(listener, allow).expect("proxy starts"), addr)
}

fn entries(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// An HTTP server that answers every request with its request line, and
/// reports each request head it receives on the channel.
fn http_server() -> (u16, mpsc::Receiver<String>) {
    let listener = listen();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let tx = tx.clone();
            thread::spawn(move || {
                conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                let mut head = read_head(&mut conn);
                let request_line = head.lines().next().unwrap_or("").to_string();
                // Read the body too: closing with unread input would reset
                // the connection under the answer.
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; length];
                let _ = conn.read_exact(&mut body);
                head.push_str(&String::from_utf8_lossy(&body));
                let _ = tx.send(head);
                let body = format!("hello from upstream: {request_line}");
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    (port, rx)
}

/// A TCP server that echoes until the client half-closes, then half-closes.
fn echo_server() -> u16 {
    let listener = listen();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            thread::spawn(move || {
                conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = conn.shutdown(Shutdown::Write);
            });
        }
    });
    port
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    listen().local_addr().unwrap().port()
}

fn client(proxy: SocketAddr) -> TcpStream {
    let c = TcpStream::connect_timeout(&proxy, IO_TIMEOUT).expect("connect to the proxy");
    c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    c.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    c
}

/// Read a response or request head (up to CRLF CRLF), byte by byte so that
/// nothing after it is consumed.
fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn read_to_end(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Send a request head; return the status code and the whole answer.
fn ask(proxy: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut c = client(proxy);
    c.write_all(request).expect("send the request");
    let answer = read_to_end(&mut c);
    (status(&answer), answer)
}

fn status(answer: &str) -> u16 {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

/// Open a CONNECT tunnel; panics unless the proxy answers 200.
fn tunnel(proxy: SocketAddr, target: &str) -> TcpStream {
    let mut c = client(proxy);
    write!(c, "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").unwrap();
    let head = read_head(&mut c);
    assert_eq!(head, "HTTP/1.1 200 Connection established\r\n\r\n");
    c
}

fn echo_round_trip(c: &mut TcpStream, message: &[u8]) {
    c.write_all(message).unwrap();
    let mut back = vec![0u8; message.len()];
    c.read_exact(&mut back).expect("echo");
    assert_eq!(back, message);
}

fn denial<'a>(denials: &'a [Denial], host: &str, port: u16) -> &'a Denial {
    denials
        .iter()
        .find(|d| d.host == host && d.port == port)
        .unwrap_or_else(|| panic!("no denial for {host}:{port} in {denials:?}"))
}

#[test]
fn allowed_plain_http_request_reaches_the_server_in_origin_form() {
    let (port, requests) = http_server();
    let (proxy, addr) = start(&entries(&[&format!("127.0.0.1:{port}")]));
    let (code, answer) = ask(
        addr,
        format!(
            "GET http://127.0.0.1:{port}/hello?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Proxy-Connection: keep-alive\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(code, 200, "{answer}");
    assert!(answer.ends_with("hello from upstream: GET /hello?x=1 HTTP/1.1"));
    let seen = requests.recv_timeout(IO_TIMEOUT).unwrap();
    assert!(
        seen.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")),
        "{seen}"
    );
    assert!(seen.contains("\r\nConnection: close\r\n"), "{seen}");
    assert!(
        !seen.to_ascii_lowercase().contains("proxy-connection"),
        "{seen}"
    );
    assert!(proxy.stop().is_empty());
}

#[test]
fn plain_http_request_body_is_forwarded() {
    let (port, requests) = http_server();
    let (proxy, addr) = start(&entries(&[&format!("127.0.0.1:{port}")]));
    let (code, _) = ask(
        addr,
        format!(
            "POST http://127.0.0.1:{port}/up HTTP/1.1\r\nContent-Length: 11\r\n\r\nline1\nline2"
        )
        .as_bytes(),
    );
    assert_eq!(code, 200);
    let seen = requests.recv_timeout(IO_TIMEOUT).unwrap();
    assert!(seen.starts_with("POST /up HTTP/1.1\r\n"), "{seen}");
    assert!(seen.ends_with("\r\n\r\nline1\nline2"), "{seen:?}");
    proxy.stop();
}

#[test]
fn connect_tunnel_reaches_the_echo_server_and_half_close_passes_through() {
    let port = echo_server();
    let (proxy, addr) = start(&entries(&[&format!("127.0.0.1:{port}")]));
    let mut c = tunnel(addr, &format!("127.0.0.1:{port}"));
    echo_round_trip(&mut c, b"ping");
    echo_round_trip(&mut c, &vec![7u8; 200_000]);
    // Half-close: the server sees our end, answers with its own, and what
    // it sent before that still arrives.
    c.write_all(b"last words").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut c), "last words");
    assert!(proxy.stop().is_empty());
}

#[test]
fn bytes_sent_before_the_200_are_not_lost() {
    let port = echo_server();
    let (proxy, addr) = start(&entries(&[&format!("127.0.0.1:{port}")]));
    let mut c = client(addr);
    // Payload is not head: LF, CR and NUL are fine in it.
    write!(c, "CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\nearly\n\r\0").unwrap();
    assert_eq!(
        read_head(&mut c),
        "HTTP/1.1 200 Connection established\r\n\r\n"
    );
    let mut back = [0u8; 8];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"early\n\r\0");
    proxy.stop();
}

#[test]
fn name_not_on_the_list_is_refused_with_403_and_counted() {
    let (proxy, addr) = start(&entries(&["api.anthropic.com", "*.github.com"]));
    for _ in 0..2 {
        let (code, answer) = ask(addr, b"CONNECT evil.example:443 HTTP/1.1\r\n\r\n");
        assert_eq!(code, 403);
        assert!(answer.contains("evil.example"), "{answer}");
        assert!(
            answer.contains("not on bwai's network allow-list"),
            "{answer}"
        );
    }
    let (code, _) = ask(addr, b"GET http://github.com/ HTTP/1.1\r\n\r\n");
    assert_eq!(code, 403, "the wildcard does not cover the bare domain");
    let (code, _) = ask(addr, b"CONNECT api.anthropic.com:22 HTTP/1.1\r\n\r\n");
    assert_eq!(code, 403, "an entry without a port covers 80 and 443 only");
    let denials = proxy.stop();
    let want = |host: &str, port, count| Denial {
        host: host.into(),
        port,
        count,
        reason: "not allowed".into(),
    };
    assert_eq!(
        denials,
        [
            want("evil.example", 443, 2),
            want("github.com", 80, 1),
            want("api.anthropic.com", 22, 1)
        ]
    );
}

#[test]
fn ip_literal_not_on_the_list_is_refused() {
    let port = echo_server();
    let (proxy, addr) = start(&entries(&[&format!("127.0.0.1:{}", port + 1)]));
    let (code, _) = ask(
        addr,
        format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n").as_bytes(),
    );
    assert_eq!(code, 403);
    let (code, _) = ask(
        addr,
        format!("CONNECT [::1]:{port} HTTP/1.1\r\n\r\n").as_bytes(),
    );
    assert_eq!(code, 403);
    assert_eq!(
        denial(&proxy.stop(), "127.0.0.1", port).reason,
        "not allowed"
    );
}

#[test]
fn allowed_name_resolving_to_loopback_is_refused() {
    let port = echo_server();
    let (proxy, addr) = start(&entries(&[&format!("localhost:{port}")]));
    let (code, answer) = ask(
        addr,
        format!("CONNECT localhost:{port} HTTP/1.1\r\n\r\n").as_bytes(),
    );
    assert_eq!(code, 403, "{answer}");
    assert!(answer.contains("private address"), "{answer}");
    let (code, _) = ask(
        addr,
        format!("GET http://localhost:{port}/ HTTP/1.1\r\n\r\n").as_bytes(),
    );
    assert_eq!(code, 403);
    let denials = proxy.stop();
    let d = denial(&denials, "localhost", port);
    assert_eq!(d.count, 2);
    assert!(
        d.reason.starts_with("resolves to a non-public address, "),
        "{}",
        d.reason
    );
}

#[test]
fn allowed_name_resolving_to_loopback_passes_when_the_address_is_allowed() {
    let port = echo_server();
    let (proxy, addr) = start(&entries(&[
        &format!("localhost:{port}"),
        &format!("127.0.0.1:{port}"),
    ]));
    let mut c = tunnel(addr, &format!("localhost:{port}"));
    echo_round_trip(&mut c, b"through localhost");
    drop(c);
    // The address is allowed for that port only.
    let (proxy2, addr2) = start(&entries(&[
        &format!("localhost:{port}"),
        &format!("127.0.0.1:{}", port.wrapping_add(1).max(1)),
    ]));
    let (code, _) = ask(
        addr2,
        format!("CONNECT localhost:{port} HTTP/1.1\r\n\r\n").as_bytes(),
    );
    assert_eq!(code, 403);
    assert!(proxy.stop().is_empty());
    proxy2.stop();
}

#[test]
fn malformed_requests_are_refused_and_counted() {
    let port = echo_server();
    let (proxy, addr) = start(&entries(&[&format!("127.0.0.1:{port}")]));
    let target = format!("127.0.0.1:{port}");
    let oversized = format!(
        "CONNECT {target} HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (
            format!("CONNECT 127.0.0.1\0.evil:{port} HTTP/1.1\r\n\r\n").into_bytes(),
            400,
        ),
        (
            format!("CONNECT {target}\0 HTTP/1.1\r\n\r\n").into_bytes(),
            400,
        ),
        (
            format!("CONNECT {target} HTTP/1.1\r\nHost: evil.example:{port}\r\n\r\n").into_bytes(),
            400,
        ),
        (
            format!("GET http://{target}/ HTTP/1.1\r\nHost: evil.example\r\n\r\n").into_bytes(),
            400,
        ),
        (
            format!("GET http://evil.example@{target}/ HTTP/1.1\r\n\r\n").into_bytes(),
            400,
        ),
        (
            format!("CONNECT  {target} HTTP/1.1\r\n\r\n").into_bytes(),
            400,
        ),
        (
            format!("CONNECT {target} HTTP/9.9\r\n\r\n").into_bytes(),
            400,
        ),
        (format!("CONNECT {target} HTTP/1.1\n\n").into_bytes(), 400),
        (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec(), 400),
        (b"CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n".to_vec(), 400),
        (b"CONNECT 127.1:80 HTTP/1.1\r\n\r\n".to_vec(), 400),
        (b"CONNECT ex%61mple.com:443 HTTP/1.1\r\n\r\n".to_vec(), 400),
        (oversized.into_bytes(), 431),
    ];
    for (request, want) in &cases {
        let (code, answer) = ask(addr, request);
        assert_eq!(
            code,
            *want,
            "{:?}: {answer}",
            String::from_utf8_lossy(request)
        );
        assert!(answer.contains("malformed proxy request"), "{answer}");
    }
    let denials = proxy.stop();
    assert_eq!(
        denials,
        [Denial {
            host: "<malformed>".into(),
            port: 0,
            count: cases.len() as u64,
            reason: "malformed request".into()
        }]
    );
}

#[test]
fn unreachable_allowed_server_is_a_502() {
    let port = closed_port();
    let (proxy, addr) = start(&entries(&[&format!("127.0.0.1:{port}")]));
    let (code, _) = ask(
        addr,
        format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n").as_bytes(),
    );
    assert_eq!(code, 502);
    assert!(
        proxy.stop().is_empty(),
        "a failed connection is not a refusal"
    );
}

#[test]
fn hundred_concurrent_tunnels_all_succeed() {
    const N: usize = 100;
    let port = echo_server();
    let (proxy, addr) = start(&entries(&[&format!("127.0.0.1:{port}")]));
    // All tunnels are open at once: each echoes, waits for the others, and
    // echoes again before closing.
    let barrier = Arc::new(Barrier::new(N));
    let workers: Vec<_> = (0..N)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let first = std::panic::catch_unwind(|| {
                    let mut c = tunnel(addr, &format!("127.0.0.1:{port}"));
                    echo_round_trip(&mut c, format!("hello {i}").as_bytes());
                    c
                });
                // Whatever happened, reach the barrier, or the others wait forever.
                barrier.wait();
                let mut c = first.map_err(|_| format!("tunnel {i} failed to open"))?;
                echo_round_trip(&mut c, format!("again {i}").as_bytes());
                Ok::<(), String>(())
            })
        })
        .collect();
    let failures: Vec<String> = workers
        .into_iter()
        .filter_map(|w| w.join().unwrap_or(Err("panicked".into())).err())
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert!(proxy.stop().is_empty());
}

#[test]
fn stop_returns_promptly_and_closes_open_tunnels() {
    let port = echo_server();
    let (proxy, addr) = start(&entries(&[&format!("127.0.0.1:{port}")]));
    let mut open = tunnel(addr, &format!("127.0.0.1:{port}"));
    echo_round_trip(&mut open, b"still here");
    // A client that connected and is still to send its request.
    let mut silent = client(addr);
    silent.write_all(b"CONNECT 127.0.0.1").unwrap();
    thread::sleep(Duration::from_millis(100));

    let began = Instant::now();
    let denials = proxy.stop();
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "stop took {:?}",
        began.elapsed()
    );
    assert!(denials.is_empty());
    for c in [&mut open, &mut silent] {
        let mut buf = [0u8; 16];
        match c.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("the connection is still open: {other:?}"),
        }
    }
    // The listening socket is closed too: nothing is served any more.
    let refused = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .map(|mut c| {
            c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            let _ = c.write_all(b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n");
            read_to_end(&mut c)
        })
        .unwrap_or_default();
    assert_eq!(refused, "");
}

/// curl(1), a real client, through the proxy: plain HTTP, a CONNECT tunnel
/// (`--proxytunnel`), and a refusal. Skipped where curl is not installed.
#[test]
fn curl_goes_through_the_proxy() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("curl not installed; skipped");
        return;
    }
    let (port, _requests) = http_server();
    let (proxy, addr) = start(&entries(&[
        &format!("localhost:{port}"),
        &format!("127.0.0.1:{port}"),
    ]));
    let curl = |extra: &[&str], url: &str| {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "10",
                "--noproxy",
                "",
                "-w",
                " %{http_code}",
            ])
            .arg("-x")
            .arg(format!("http://{addr}"))
            .args(extra)
            .arg(url)
            .output()
            .expect("run curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        curl(&[], &format!("http://localhost:{port}/plain")),
        "hello from upstream: GET /plain HTTP/1.1 200"
    );
    assert_eq!(
        curl(
            &["--proxytunnel"],
            &format!("http://localhost:{port}/tunnel")
        ),
        "hello from upstream: GET /tunnel HTTP/1.1 200"
    );
    let refused = curl(&[], "http://not-allowed.example/");
    assert!(refused.ends_with(" 403"), "{refused}");
    assert!(refused.contains("not-allowed.example:80 is not on bwai's network allow-list"));
    assert_eq!(denial(&proxy.stop(), "not-allowed.example", 80).count, 1);
}
