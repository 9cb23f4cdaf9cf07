//! Strict parsing of a proxy request head: what the agent asks the proxy to
//! reach, and, for plain HTTP, the head to send upstream instead.
//!
//! Leniency is how proxies get bypassed (a checker and a connector that read
//! the same bytes differently), so anything unusual is refused rather than
//! repaired: bare CR or LF, NUL and other control bytes, folded or
//! white-space-padded header names, a second Host header, a Host that
//! disagrees with the target, credentials in the URL, and forms a proxy
//! does not serve (origin-form, "*", https:// without CONNECT).

use super::host::{parse_host, parse_port, split_authority, Host};

/// The largest request head accepted (request line and headers).
pub(crate) const MAX_HEAD: usize = 16 * 1024;

/// What the agent asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub kind: Kind,
    pub host: Host,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `CONNECT host:port`: a tunnel.
    Connect,
    /// An absolute-form request; the head to send upstream: origin-form,
    /// hop-by-hop headers removed, `Connection: close`.
    Forward { upstream_head: Vec<u8> },
}

/// Why a request head was refused, and with which HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reject {
    pub status: u16,
    pub why: &'static str,
}

/// A head over `MAX_HEAD`: 431, whether found while reading or parsing.
pub(crate) const TOO_LARGE: Reject = Reject {
    status: 431,
    why: "the request head is larger than 16 KiB",
};

fn bad(why: &'static str) -> Reject {
    Reject { status: 400, why }
}

/// Where the head ends (the index just past CRLF CRLF), if it has.
pub(crate) fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Headers that concern only the hop between client and proxy, never
/// forwarded (RFC 9110 section 7.6.1), plus the proxy's own credentials.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
];

/// Parse a complete request head, ending with CRLF CRLF.
pub(crate) fn parse(head: &[u8]) -> Result<Request, Reject> {
    if head.len() > MAX_HEAD {
        return Err(TOO_LARGE);
    }
    if head.contains(&0) {
        return Err(bad("NUL byte in the request"));
    }
    let body = head
        .strip_suffix(b"\r\n\r\n")
        .ok_or(bad("the request head does not end with CRLF CRLF"))?;
    let mut lines = split_lines(body)?.into_iter();
    let request_line = lines.next().ok_or(bad("empty request"))?;
    let (method, target, version) = parse_request_line(request_line)?;
    let headers = lines.map(parse_header).collect::<Result<Vec<_>, _>>()?;

    let mut host_header = None;
    for (name, value) in &headers {
        if name.eq_ignore_ascii_case("host") {
            if host_header.is_some() {
                return Err(bad("more than one Host header"));
            }
            host_header = Some(*value);
        }
    }
    let has = |n: &str| headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n));
    if has("content-length") && has("transfer-encoding") {
        return Err(bad("both Content-Length and Transfer-Encoding"));
    }

    if method == "CONNECT" {
        let (host, port) = split_authority(target).map_err(bad)?;
        let port = port.ok_or(bad("CONNECT needs host:port"))?;
        let host = parse_host(host).map_err(bad)?;
        let port = parse_port(port).map_err(bad)?;
        check_host_header(host_header, &host, port, None)?;
        return Ok(Request {
            kind: Kind::Connect,
            host,
            port,
        });
    }

    let rest = strip_prefix_ignore_case(target, "http://").ok_or_else(|| {
        if strip_prefix_ignore_case(target, "https://").is_some() {
            bad("https:// URLs go through CONNECT; this proxy does not speak TLS")
        } else if target.starts_with('/') || target == "*" {
            bad("not a proxy request (origin-form); set HTTP_PROXY and send an absolute URL")
        } else {
            bad("the request target is not an http:// URL")
        }
    })?;
    if rest.contains('#') {
        return Err(bad("a fragment ('#') in the request target"));
    }
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(auth_end);
    if authority.contains('@') {
        return Err(bad("credentials ('@') in the URL authority"));
    }
    let (host, port) = split_authority(authority).map_err(bad)?;
    let host = parse_host(host).map_err(bad)?;
    let port = match port {
        Some(p) => parse_port(p).map_err(bad)?,
        None => 80,
    };
    check_host_header(host_header, &host, port, Some(80))?;

    let mut up = Vec::with_capacity(head.len() + 64);
    up.extend_from_slice(method.as_bytes());
    up.push(b' ');
    if !path.starts_with('/') {
        up.push(b'/');
    }
    up.extend_from_slice(path.as_bytes());
    up.push(b' ');
    up.extend_from_slice(version.as_bytes());
    up.extend_from_slice(b"\r\nHost: ");
    up.extend_from_slice(host.to_string().as_bytes());
    if port != 80 {
        up.extend_from_slice(format!(":{port}").as_bytes());
    }
    up.extend_from_slice(b"\r\n");
    // Headers the client named in Connection are hop-by-hop too.
    let named_in_connection: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| std::str::from_utf8(v).unwrap_or("").split(','))
        .map(str::trim)
        .collect();
    for (name, value) in &headers {
        let drop = name.eq_ignore_ascii_case("host")
            || HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
            || named_in_connection
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h));
        if !drop {
            up.extend_from_slice(name.as_bytes());
            up.extend_from_slice(b": ");
            up.extend_from_slice(value);
            up.extend_from_slice(b"\r\n");
        }
    }
    // One request per connection: the upstream closes after its answer, so
    // the proxy never has to find where one response ends.
    up.extend_from_slice(b"Connection: close\r\n\r\n");
    Ok(Request {
        kind: Kind::Forward { upstream_head: up },
        host,
        port,
    })
}

/// Split on CRLF; a CR or LF anywhere else is refused (request smuggling).
fn split_lines(body: &[u8]) -> Result<Vec<&[u8]>, Reject> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\r' if body.get(i + 1) == Some(&b'\n') => {
                lines.push(&body[start..i]);
                i += 2;
                start = i;
            }
            b'\r' | b'\n' => return Err(bad("a bare CR or LF in the request head")),
            _ => i += 1,
        }
    }
    lines.push(&body[start..]);
    Ok(lines)
}

/// `METHOD SP TARGET SP HTTP/1.x`, single spaces, visible ASCII only.
fn parse_request_line(line: &[u8]) -> Result<(&str, &str, &str), Reject> {
    let line = std::str::from_utf8(line)
        .ok()
        .filter(|l| l.bytes().all(|b| (0x20..0x7f).contains(&b)))
        .ok_or(bad("an odd character in the request line"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("the request line is not METHOD TARGET HTTP/1.x"));
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(bad("the request method is not a token"));
    }
    if target.is_empty() {
        return Err(bad("the request line is not METHOD TARGET HTTP/1.x"));
    }
    let v = version.as_bytes();
    if v.len() != 8 || !v.starts_with(b"HTTP/1.") || !v[7].is_ascii_digit() {
        return Err(bad("the protocol is not HTTP/1.x"));
    }
    Ok((method, target, version))
}

/// `name: value`; the name a token right against the colon, the value
/// without control characters (HTAB aside). Values may hold obs-text.
fn parse_header(line: &[u8]) -> Result<(&str, &[u8]), Reject> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(bad("a folded header line"));
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(bad("a header line without ':'"))?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().copied().all(is_tchar) {
        return Err(bad("a header name is not a token"));
    }
    if value.iter().any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
        return Err(bad("a control character in a header value"));
    }
    let value = trim_ows(value);
    // The name is all tchar, hence ASCII.
    let name = std::str::from_utf8(name).map_err(|_| bad("a header name is not a token"))?;
    Ok((name, value))
}

/// A Host header, if present, must name the target: otherwise a server
/// that routes by Host would serve a host the allow-list never saw.
fn check_host_header(
    value: Option<&[u8]>,
    host: &Host,
    port: u16,
    default_port: Option<u16>,
) -> Result<(), Reject> {
    const MISMATCH: Reject = Reject {
        status: 400,
        why: "the Host header disagrees with the request target",
    };
    let Some(value) = value else { return Ok(()) };
    let value = std::str::from_utf8(value).map_err(|_| MISMATCH)?;
    let (h, p) = split_authority(value).map_err(|_| MISMATCH)?;
    if parse_host(h).map_err(|_| MISMATCH)? != *host {
        return Err(MISMATCH);
    }
    let p = match p {
        Some(p) => Some(parse_port(p).map_err(|_| MISMATCH)?),
        None => default_port,
    };
    match p {
        Some(p) if p != port => Err(MISMATCH),
        _ => Ok(()),
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Host {
        Host::Name(s.into())
    }

    fn ok(head: &str) -> Request {
        parse(head.as_bytes()).unwrap_or_else(|e| panic!("{head:?}: {e:?}"))
    }

    fn refused(head: &[u8]) -> Reject {
        match parse(head) {
            Err(e) => e,
            Ok(r) => panic!("{:?} was accepted as {r:?}", String::from_utf8_lossy(head)),
        }
    }

    fn upstream(r: &Request) -> String {
        match &r.kind {
            Kind::Forward { upstream_head } => String::from_utf8(upstream_head.clone()).unwrap(),
            Kind::Connect => panic!("not a forward"),
        }
    }

    #[test]
    fn connect_names_host_and_port() {
        let r = ok("CONNECT API.Example.com.:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n");
        assert_eq!(r.kind, Kind::Connect);
        assert_eq!(r.host, name("api.example.com"));
        assert_eq!(r.port, 443);
        let r = ok("CONNECT [::1]:8443 HTTP/1.0\r\n\r\n");
        assert_eq!(r.host, Host::Ip("::1".parse().unwrap()));
        assert_eq!(r.port, 8443);
        // A Host without a port is accepted for CONNECT (no scheme default).
        ok("CONNECT a.com:443 HTTP/1.1\r\nHost: a.com\r\n\r\n");
    }

    #[test]
    fn absolute_form_is_rewritten_to_origin_form() {
        let r = ok(
            "GET http://Example.com/a/b?c=d HTTP/1.1\r\nHost: example.com\r\n\
                    User-Agent: t\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: x\r\n\
                    Connection: keep-alive, X-Secret\r\nX-Secret: s\r\nAccept:  */* \r\n\r\n",
        );
        assert_eq!(r.host, name("example.com"));
        assert_eq!(r.port, 80);
        assert_eq!(
            upstream(&r),
            "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nAccept: */*\r\n\
             Connection: close\r\n\r\n"
        );
        let r = ok("POST http://127.0.0.1:8080?q HTTP/1.0\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(r.port, 8080);
        assert_eq!(
            upstream(&r),
            "POST /?q HTTP/1.0\r\nHost: 127.0.0.1:8080\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
        );
        let r = ok("PROPFIND HTTP://[::1]:81 HTTP/1.1\r\n\r\n");
        assert!(upstream(&r).starts_with("PROPFIND / HTTP/1.1\r\nHost: [::1]:81\r\n"));
    }

    #[test]
    fn nul_in_host_is_refused() {
        for head in [
            &b"CONNECT evil.com\0.allowed.com:443 HTTP/1.1\r\n\r\n"[..],
            b"GET http://allowed.com\0evil.com/ HTTP/1.1\r\n\r\n",
            b"CONNECT allowed.com:443 HTTP/1.1\r\nHost: allowed.com\0\r\n\r\n",
        ] {
            assert_eq!(refused(head).status, 400);
        }
    }

    #[test]
    fn odd_characters_in_host_are_refused() {
        for head in [
            "CONNECT evil.com%00.allowed.com:443 HTTP/1.1\r\n\r\n",
            "CONNECT allowed.com@evil.com:443 HTTP/1.1\r\n\r\n",
            "GET http://allowed.com@evil.com/ HTTP/1.1\r\n\r\n",
            "GET http://user:pw@allowed.com/ HTTP/1.1\r\n\r\n",
            "GET http://evil_host.com/ HTTP/1.1\r\n\r\n",
            "CONNECT exämple.com:443 HTTP/1.1\r\n\r\n",
            "GET http://a\\b.com/ HTTP/1.1\r\n\r\n",
            "CONNECT 127.1:80 HTTP/1.1\r\n\r\n",
            "CONNECT 0x7f000001:80 HTTP/1.1\r\n\r\n",
            "CONNECT [fe80::1%25lo]:80 HTTP/1.1\r\n\r\n",
            "CONNECT ::1:80 HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(refused(head.as_bytes()).status, 400, "{head:?}");
        }
    }

    #[test]
    fn malformed_request_lines_are_refused() {
        for head in [
            "\r\n\r\n",
            "CONNECT a.com:443\r\n\r\n",
            "CONNECT  a.com:443 HTTP/1.1\r\n\r\n",
            "CONNECT a.com:443 HTTP/1.1 \r\n\r\n",
            "CONNECT a.com:443 HTTP/2.0\r\n\r\n",
            "CONNECT a.com:443 HTTP/1.10\r\n\r\n",
            "CONNECT a.com:443 http/1.1\r\n\r\n",
            "CONNECT\ta.com:443 HTTP/1.1\r\n\r\n",
            "CONNECT a.com:443 HTTP/1.1\n\r\n\r\n",
            "CONNECT a.com:443 HTTP/1.1\r\nX: a\rb\r\n\r\n",
            "GE(T http://a.com/ HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(refused(head.as_bytes()).status, 400, "{head:?}");
        }
    }

    #[test]
    fn connect_needs_a_valid_port() {
        for head in [
            "CONNECT a.com HTTP/1.1\r\n\r\n",
            "CONNECT a.com: HTTP/1.1\r\n\r\n",
            "CONNECT a.com:0 HTTP/1.1\r\n\r\n",
            "CONNECT a.com:65536 HTTP/1.1\r\n\r\n",
            "CONNECT a.com:+443 HTTP/1.1\r\n\r\n",
            "CONNECT http://a.com:443/ HTTP/1.1\r\n\r\n",
            "CONNECT a.com:443/x HTTP/1.1\r\n\r\n",
            "GET http://a.com:99999/ HTTP/1.1\r\n\r\n",
            "GET http://a.com:/ HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(refused(head.as_bytes()).status, 400, "{head:?}");
        }
    }

    #[test]
    fn non_proxy_forms_are_refused() {
        for head in [
            "GET / HTTP/1.1\r\nHost: a.com\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\n\r\n",
            "GET https://a.com/ HTTP/1.1\r\n\r\n",
            "GET a.com:80 HTTP/1.1\r\n\r\n",
            "GET ftp://a.com/ HTTP/1.1\r\n\r\n",
            "GET http://a.com/#frag HTTP/1.1\r\n\r\n",
            "GET http:///path HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(refused(head.as_bytes()).status, 400, "{head:?}");
        }
    }

    #[test]
    fn host_header_disagreeing_with_the_target_is_refused() {
        for head in [
            "GET http://allowed.com/ HTTP/1.1\r\nHost: evil.com\r\n\r\n",
            "GET http://allowed.com/ HTTP/1.1\r\nHost: allowed.com:8080\r\n\r\n",
            "GET http://allowed.com:8080/ HTTP/1.1\r\nHost: allowed.com\r\n\r\n",
            "GET http://allowed.com/ HTTP/1.1\r\nHost: allowed.com\r\nHost: evil.com\r\n\r\n",
            "GET http://allowed.com/ HTTP/1.1\r\nHost: allowed.com\r\nhost: allowed.com\r\n\r\n",
            "CONNECT allowed.com:443 HTTP/1.1\r\nHost: evil.com:443\r\n\r\n",
            "CONNECT allowed.com:443 HTTP/1.1\r\nHost: allowed.com:8443\r\n\r\n",
            "CONNECT allowed.com:443 HTTP/1.1\r\nHost: \r\n\r\n",
        ] {
            assert_eq!(refused(head.as_bytes()).status, 400, "{head:?}");
        }
        ok("GET http://allowed.com/ HTTP/1.1\r\nHost: ALLOWED.com.:80\r\n\r\n");
    }

    #[test]
    fn odd_headers_are_refused() {
        for head in [
            "GET http://a.com/ HTTP/1.1\r\nX-A : b\r\n\r\n",
            "GET http://a.com/ HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n",
            "GET http://a.com/ HTTP/1.1\r\nno colon\r\n\r\n",
            "GET http://a.com/ HTTP/1.1\r\n: empty name\r\n\r\n",
            "GET http://a.com/ HTTP/1.1\r\nX-A: b\x01c\r\n\r\n",
            "POST http://a.com/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert_eq!(refused(head.as_bytes()).status, 400, "{head:?}");
        }
    }

    #[test]
    fn oversized_heads_are_refused_with_431() {
        let head = format!(
            "GET http://a.com/ HTTP/1.1\r\nX-Big: {}\r\n\r\n",
            "a".repeat(MAX_HEAD)
        );
        assert_eq!(refused(head.as_bytes()).status, 431);
    }

    #[test]
    fn head_end_finds_the_blank_line() {
        assert_eq!(head_end(b"GET x\r\n\r\nbody"), Some(9));
        assert_eq!(head_end(b"GET x\r\n\r"), None);
        assert_eq!(head_end(b"GET x\n\n"), None);
    }
}
