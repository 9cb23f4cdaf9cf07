//! The `allow` network mode end to end: the real binary, its proxy, and a
//! local HTTP server on the host's loopback playing the internet. In every
//! mode (namespaces; user namespaces blocked, where the mode is partial;
//! Landlock missing), as root and as an unprivileged user.
//!
//! The server counts the connections it accepts, so a test can tell "the
//! request was refused" from "the request reached the host".

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

/// A plain HTTP server on 127.0.0.1 that answers every request with 200
/// and `hello from PATH`, one thread per connection.
struct Server {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test server");
        let port = listener.local_addr().expect("local addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || serve(conn));
            }
        });
        Server { port, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn serve(conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    let path = request_line.split(' ').nth(1).unwrap_or("?").to_string();
    let body = format!("hello from {path}\n");
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn allow(entries: &[String]) -> String {
    format!("--net=allow:{}", entries.join(","))
}

/// The server's name and the address exemption that lets a loopback name through.
fn both(port: u16) -> Vec<String> {
    vec![format!("localhost:{port}"), format!("127.0.0.1:{port}")]
}

fn report(env: &Env, name: &str) -> (String, std::path::PathBuf) {
    let path = env.root.path().join(name);
    (format!("--report={}", path.display()), path)
}

fn read_report(path: &std::path::Path) -> serde_json::Value {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("report {}: {e}", path.display()));
    serde_json::from_str(&text).expect("the report is JSON")
}

fn http_status(out: &RunOutput) -> Option<u16> {
    match out.attack() {
        Attack::Ok(line) => line.split(' ').nth(1)?.parse().ok(),
        _ => None,
    }
}

#[test]
fn an_allowed_host_is_reached_through_the_proxy_by_http_and_by_connect() {
    let env = Env::new();
    let server = Server::start();
    let port = server.port;
    for mode in all_modes() {
        let net = allow(&both(port));
        let get = format!(
            "GET http://localhost:{port}/plain HTTP/1.1\\r\\nHost: localhost:{port}\\r\\n\\r\\n"
        );
        let out = run(env.attack_with(mode, &[net.as_str()], &["proxy-raw", &get]));
        assert_eq!(
            http_status(&out),
            Some(200),
            "{mode:?} plain GET\n{}",
            out.describe()
        );

        let target = format!("localhost:{port}");
        let out = run(env.attack_with(mode, &[net.as_str()], &["proxy-tunnels", "1", &target]));
        out.expect_ok();

        // A real client: curl takes the proxy from the environment bwai
        // sets (NO_PROXY unset, since it names localhost), both ways.
        let url = format!("http://localhost:{port}/curl");
        let script = format!(
            "env -u NO_PROXY -u no_proxy curl -sS --max-time 20 {url} && \
             env -u NO_PROXY -u no_proxy curl -sS --max-time 20 --proxytunnel {url}"
        );
        let out = run(env.bwai(mode, &[net.as_str(), "-c", &script]));
        assert_eq!(
            out.stdout,
            "hello from /curl\nhello from /curl\n",
            "{mode:?} curl\n{}",
            out.describe()
        );
        out.expect_code(0);
    }
    assert!(
        server.accepted() >= 3 * 4,
        "the server saw {}",
        server.accepted()
    );
}

#[test]
fn a_host_not_on_the_list_is_refused_counted_and_reported() {
    let env = Env::new();
    let server = Server::start();
    for mode in all_modes() {
        let (flag, path) = report(&env, &format!("denied-{}.json", mode.name()));
        let net = allow(&both(server.port));
        let mut cmd = env.bwai(mode, &[net.as_str(), flag.as_str(), "--"]);
        cmd.arg(&env.attack).args([
            "proxy-raw",
            "CONNECT evil.example:443 HTTP/1.1\\r\\nHost: evil.example:443\\r\\n\\r\\n",
        ]);
        let out = run(cmd);
        assert_eq!(http_status(&out), Some(403), "{mode:?}\n{}", out.describe());
        assert!(
            out.stderr
                .contains("bwai: network: evil.example:443 refused 1 time (not allowed)"),
            "{mode:?}: one stderr line per refused host\n{}",
            out.describe()
        );
        let r = read_report(&path);
        let net = &r["network"];
        assert_eq!(net["mode"], "allow");
        assert_eq!(net["partial"], mode == Mode::NoUserns, "{mode:?}: {net}");
        let denials = net["denials"].as_array().expect("denials");
        assert_eq!(denials.len(), 1, "{net}");
        assert_eq!(denials[0]["host"], "evil.example");
        assert_eq!(denials[0]["port"], 443);
        assert_eq!(denials[0]["count"], 1);
    }
    assert_eq!(server.accepted(), 0);
}

#[test]
fn a_loopback_name_is_refused_unless_its_address_is_allowed() {
    let env = Env::new();
    let server = Server::start();
    let port = server.port;
    let connect =
        format!("CONNECT localhost:{port} HTTP/1.1\\r\\nHost: localhost:{port}\\r\\n\\r\\n");
    for mode in all_modes() {
        let name_only = format!("--net=allow:localhost:{port}");
        let out = run(env.attack_with(mode, &[name_only.as_str()], &["proxy-raw", &connect]));
        assert_eq!(http_status(&out), Some(403), "{mode:?}\n{}", out.describe());
        assert!(
            out.stderr.contains("non-public address"),
            "{}",
            out.describe()
        );
        assert_eq!(
            server.accepted(),
            0,
            "{mode:?}: the host's service was reached"
        );
    }
    // Control: with the address allowed too, the same request passes.
    let out = run(env.attack_with(Mode::Full, &[allow(&both(port))], &["proxy-raw", &connect]));
    assert_eq!(http_status(&out), Some(200), "{}", out.describe());
    assert_eq!(server.accepted(), 1);
}

#[test]
fn malformed_requests_are_refused() {
    let env = Env::new();
    let server = Server::start();
    let port = server.port;
    let huge = "a".repeat(80 * 1024);
    let cases: Vec<(&str, String)> = vec![
        (
            "NUL byte in the host",
            format!("CONNECT localhost\\0.evil:{port} HTTP/1.1\\r\\n\\r\\n"),
        ),
        (
            "NUL byte after an allowed host",
            format!("CONNECT localhost:{port}\\0 HTTP/1.1\\r\\n\\r\\n"),
        ),
        (
            "absolute form and Host disagree",
            format!("GET http://localhost:{port}/ HTTP/1.1\\r\\nHost: evil.example\\r\\n\\r\\n"),
        ),
        (
            "CONNECT with a path",
            format!("CONNECT http://localhost:{port}/ HTTP/1.1\\r\\n\\r\\n"),
        ),
        (
            "origin form (not a proxy request)",
            format!("GET / HTTP/1.1\\r\\nHost: localhost:{port}\\r\\n\\r\\n"),
        ),
        (
            "oversized header",
            format!("GET http://localhost:{port}/ HTTP/1.1\\r\\nX-Big: {huge}\\r\\n\\r\\n"),
        ),
        (
            "user info in the authority",
            format!("CONNECT evil.example@localhost:{port} HTTP/1.1\\r\\n\\r\\n"),
        ),
        ("not HTTP", "HELLO\\r\\n\\r\\n".to_string()),
        (
            "control character in the host",
            format!("GET http://local\\x01host:{port}/ HTTP/1.1\\r\\n\\r\\n"),
        ),
    ];
    for mode in [Mode::Full, Mode::NoUserns] {
        for (what, request) in &cases {
            let out = run(env.attack_with(mode, &[allow(&both(port))], &["proxy-raw", request]));
            let code = http_status(&out);
            assert!(
                code.is_some_and(|c| (400..500).contains(&c)),
                "{mode:?} {what}: expected a 4xx answer\n{}",
                out.describe()
            );
        }
    }
    assert_eq!(
        server.accepted(),
        0,
        "a malformed request reached the server"
    );
}

#[test]
fn direct_connections_around_the_proxy_fail() {
    let env = Env::new();
    let server = Server::start();
    let target = format!("127.0.0.1:{}", server.port);
    for mode in all_modes() {
        let net = allow(&both(server.port));
        let out = run(env.attack_with(mode, &[net.as_str()], &["tcp-connect", &target]));
        let case = format!("{mode:?} direct tcp-connect {target}");
        match out.attack() {
            // In a network namespace 127.0.0.1 is the sandbox's own loopback.
            Attack::Denied { name, .. } if mode != Mode::NoUserns => {
                assert_eq!(name, "ECONNREFUSED", "{case}\n{}", out.describe())
            }
            // Without one, Landlock lets TCP reach only the proxy's port.
            Attack::Denied { name, .. } => {
                assert_eq!(name, "EACCES", "{case}\n{}", out.describe())
            }
            _ => panic!("{case}: expected a refusal\n{}", out.describe()),
        }
    }
    assert_eq!(server.accepted(), 0, "a direct connection reached the host");
}

#[test]
fn dns_udp_and_raw_sockets_fail() {
    let env = Env::new();
    let server = Server::start();
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    udp.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let udp_target = udp.local_addr().unwrap().to_string();
    for mode in all_modes() {
        let net = allow(&both(server.port));
        let case = |what: &str| format!("{mode:?} {what}");

        // DNS: only the proxy resolves names.
        let out = run(env.attack_with(mode, &[net.as_str()], &["tcp-connect", "pypi.org:443"]));
        match out.attack() {
            Attack::Denied { name, .. } if name.starts_with("EAI_") => {}
            _ => panic!("{}: name lookup must fail\n{}", case("dns"), out.describe()),
        }

        // UDP: refused outright without namespaces; inside a network
        // namespace it goes to the sandbox's own loopback, never to us.
        let out = run(env.attack_with(mode, &[net.as_str()], &["udp-send", &udp_target]));
        match (mode, out.attack()) {
            (Mode::NoUserns, Attack::Denied { name, .. }) => {
                assert_eq!(name, "EPERM", "{}", case("udp"))
            }
            (Mode::NoUserns, _) => panic!("{}: expected EPERM\n{}", case("udp"), out.describe()),
            _ => {}
        }
        let mut buf = [0u8; 64];
        assert!(
            udp.recv_from(&mut buf).is_err(),
            "{}: a datagram reached the host",
            case("udp")
        );

        for sub in ["raw-socket", "packet-socket"] {
            let out = run(env.attack_with(mode, &[net.as_str()], &[sub]));
            match out.attack() {
                Attack::Denied { name, .. } if name == "EPERM" || name == "EACCES" => {}
                _ => panic!("{}: expected a refusal\n{}", case(sub), out.describe()),
            }
        }
    }
    assert_eq!(server.accepted(), 0);
}

#[test]
fn a_hundred_concurrent_tunnels_all_succeed() {
    let env = Env::new();
    let server = Server::start();
    let target = format!("localhost:{}", server.port);
    for mode in [Mode::Full, Mode::NoUserns] {
        let before = server.accepted();
        let out = run(env.attack_with(
            mode,
            &[allow(&both(server.port))],
            &["proxy-tunnels", "100", &target],
        ));
        let detail = out.expect_ok();
        assert!(detail.contains("100 open at once"), "{mode:?}: {detail}");
        assert_eq!(server.accepted() - before, 100, "{mode:?}");
    }
}

/// Where ci/setup.sh puts a Node.js that honours NODE_USE_ENV_PROXY.
const NODE24: &str = "/opt/bwai-ci/node24/bin/node";

#[test]
fn node_fetch_goes_through_the_proxy_or_nowhere() {
    let env = Env::new();
    let server = Server::start();
    let script = format!(
        "fetch('http://localhost:{}/node').then(r => r.text()).then(t => process.stdout.write(t), \
         e => {{ console.log('failed: ' + (e.cause ? e.cause.code : e)); process.exit(3) }})",
        server.port
    );
    let fetch = |node: &str, mode: Mode| {
        let mut cmd = env.bwai(mode, &[allow(&both(server.port)), "--".into()]);
        // NO_PROXY names localhost; this test's "internet" is on it.
        cmd.args([
            "env", "-u", "NO_PROXY", "-u", "no_proxy", node, "-e", &script,
        ]);
        run(cmd)
    };

    // Node 24 and later: fetch takes the proxy from the variables bwai sets.
    if Path::new(NODE24).is_file() {
        for mode in [Mode::Full, Mode::NoUserns] {
            let out = fetch(NODE24, mode);
            assert_eq!(
                out.stdout,
                "hello from /node\n",
                "{mode:?}\n{}",
                out.describe()
            );
        }
        assert_eq!(server.accepted(), 2);
    } else {
        skip(&format!("{NODE24} is missing (ci/setup.sh installs it)"));
    }

    // The machine's own Node, if older, ignores the variables: its fetch
    // must then fail, never reach the host by going around the proxy.
    let Some(version) = node_major() else {
        skip("node is not installed");
        return;
    };
    if version < 24 {
        let before = server.accepted();
        for mode in [Mode::Full, Mode::NoUserns] {
            fetch("node", mode).expect_code(3);
        }
        assert_eq!(
            server.accepted(),
            before,
            "node {version}'s fetch went around the proxy"
        );
    }
}

fn node_major() -> Option<u32> {
    let out = std::process::Command::new("node")
        .arg("--version")
        .output()
        .ok()?;
    let v = String::from_utf8_lossy(&out.stdout);
    v.trim()
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

#[test]
fn the_proxy_ends_with_the_sandbox() {
    let env = Env::new();
    let server = Server::start();
    // Without namespaces the proxy listens on the host: afterwards, nothing may.
    let (flag, path) = report(&env, "ends.json");
    let out = run(env.attack_with(
        Mode::NoUserns,
        &[allow(&both(server.port)), flag],
        &["proxy-tunnels", "3", &format!("localhost:{}", server.port)],
    ));
    out.expect_ok();
    let r = read_report(&path);
    let proxy = r["network"]["proxy"]
        .as_str()
        .expect("proxy address")
        .to_string();
    assert!(proxy.starts_with("127.0.0.1:"), "{proxy}");
    let err = TcpStream::connect(&proxy).expect_err("the proxy still listens after the run");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
}

#[test]
fn the_list_comes_from_config_and_profiles_and_bad_lists_stop_everything() {
    let env = Env::new();
    let server = Server::start();
    let port = server.port;
    let config = env.root.path().join("net.json");
    let entries = serde_json::to_string(&both(port)).unwrap();
    fs::write(
        &config,
        format!("{{\"network\": \"allow\", \"network_allow\": {entries}}}"),
    )
    .unwrap();
    let cfg = format!("--config={}", config.display());
    let get =
        format!("GET http://localhost:{port}/cfg HTTP/1.1\\r\\nHost: localhost:{port}\\r\\n\\r\\n");
    let out = run(env.attack_with(Mode::Full, &[cfg.as_str()], &["proxy-raw", &get]));
    assert_eq!(http_status(&out), Some(200), "{}", out.describe());
    assert!(out.stderr.contains("net:allow"), "{}", out.describe());

    // The claude profile brings @anthropic: its host passes the list (and
    // is then not reachable here, which is a 502, not a 403).
    let (flag, path) = report(&env, "profile.json");
    let out = run(env.attack_with(
        Mode::Full,
        &["--net=allow", "--profile=claude", flag.as_str()],
        &[
            "proxy-raw",
            "CONNECT unlisted.example:443 HTTP/1.1\\r\\n\\r\\n",
        ],
    ));
    assert_eq!(http_status(&out), Some(403), "{}", out.describe());
    let r = read_report(&path);
    let list: Vec<&str> = r["network"]["allow"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(list.contains(&"@anthropic"), "{list:?}");

    // Nothing to allow, a bad entry, an unknown mode: exit 2, nothing runs.
    let marker = env.project.join("ran");
    for args in [
        vec!["--net=allow".to_string()],
        vec!["--net=allow:exa mple.com".to_string()],
        vec!["--net=allow:".to_string()],
        vec!["--net=allow:*.*.com".to_string()],
        vec!["--net=sometimes".to_string()],
        vec!["--net=none:example.com".to_string()],
    ] {
        let mut cmd = env.bwai(Mode::Full, &args);
        cmd.args(["--", "touch"]).arg(&marker);
        let out = run(cmd);
        out.expect_code(2);
        assert!(
            out.stderr.contains("bwai") || out.stderr.contains("error"),
            "{}",
            out.describe()
        );
        assert!(!marker.exists(), "{args:?}: the command ran");
    }
}
