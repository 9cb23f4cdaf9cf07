//! Host names and IP literals, validated one way for allow-list entries and
//! for requests alike, so the two are only ever compared in one canonical
//! form (lowercase, no trailing dot, IPv4-mapped IPv6 folded to IPv4).
//!
//! Anything that is not a plain DNS name or an unambiguous IP literal is
//! refused here: a NUL byte, a percent escape, an '@' or a dotless number
//! that the system resolver would read as an address ("0x7f000001") are the
//! classic ways to make a checker and a resolver disagree about the host.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A validated host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Host {
    /// A DNS name: lowercase, labels of `[a-z0-9-]`, no trailing dot.
    Name(String),
    /// An IP literal, IPv4-mapped IPv6 already folded to IPv4.
    Ip(IpAddr),
}

impl fmt::Display for Host {
    /// The form used in messages and the denial log; IPv6 in brackets, as in
    /// a URL, so a port can follow it unambiguously.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

/// Parse a host as it appears in a URL authority or an allow-list entry:
/// a DNS name, a dotted-quad IPv4 address, or a bracketed IPv6 address.
pub(crate) fn parse_host(s: &str) -> Result<Host, &'static str> {
    if s.is_empty() {
        return Err("the host is empty");
    }
    if s.bytes().any(|b| b == 0) {
        return Err("the host contains a NUL byte");
    }
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or("an IPv6 address in '[' is not closed by ']'")?;
        // std refuses zone ids ("%eth0"), which have no meaning off this host.
        return inner
            .parse::<Ipv6Addr>()
            .map(|a| Host::Ip(IpAddr::V6(a).to_canonical()))
            .map_err(|_| "the text in '[...]' is not an IPv6 address");
    }
    // std accepts only the strict dotted-quad form (no octal, hex or short
    // forms); the odd forms are refused as names below.
    if let Ok(a) = s.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(a)));
    }
    parse_name(s).map(Host::Name)
}

/// Validate a DNS name (RFC 1123 host name syntax) and return it lowercase
/// without a trailing dot.
fn parse_name(s: &str) -> Result<String, &'static str> {
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.is_empty() {
        return Err("the host is empty");
    }
    if let Some(b) = name
        .bytes()
        .find(|b| !(b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.'))
    {
        return Err(if b == b':' {
            "an IPv6 address must be written in brackets, like [::1]"
        } else if b.is_ascii_whitespace() {
            "the host contains white space"
        } else if !b.is_ascii() {
            "the host contains a non-ASCII character (use the punycode form, xn--...)"
        } else {
            "the host contains a character other than letters, digits, '-' and '.'"
        });
    }
    if name.len() > 253 {
        return Err("the host name is longer than 253 characters");
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err("the host name has an empty label ('..', or a leading dot)");
        }
        if label.len() > 63 {
            return Err("a label of the host name is longer than 63 characters");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label of the host name starts or ends with '-'");
        }
    }
    // No top-level domain is numeric, and the C resolver reads names made
    // of numbers ("127.1", "2130706433", "0x7f.1") as IPv4 addresses.
    let last = labels[labels.len() - 1];
    if last.bytes().all(|b| b.is_ascii_digit())
        || (labels.len() <= 4 && labels.iter().all(|l| is_c_number(l)))
    {
        return Err("the host looks like an IP address in an unusual form; write it as a.b.c.d");
    }
    Ok(name.to_ascii_lowercase())
}

/// A number as inet_aton(3) reads it: decimal, octal or 0x-hexadecimal.
fn is_c_number(label: &str) -> bool {
    let l = label.to_ascii_lowercase();
    match l.strip_prefix("0x") {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => l.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// Parse a port: 1 to 5 decimal digits, 1..=65535 (no sign, no 0).
pub(crate) fn parse_port(s: &str) -> Result<u16, &'static str> {
    const BAD: &str = "the port must be a number from 1 to 65535";
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD);
    }
    match s.parse::<u16>() {
        Ok(0) | Err(_) => Err(BAD),
        Ok(p) => Ok(p),
    }
}

/// Split "host", "host:port", "[v6]" or "[v6]:port" into its host text and
/// port text. The port text, when present, is not empty.
pub(crate) fn split_authority(s: &str) -> Result<(&str, Option<&str>), &'static str> {
    let (host, port) = if s.starts_with('[') {
        let close = s
            .find(']')
            .ok_or("an IPv6 address in '[' is not closed by ']'")?;
        let (host, after) = s.split_at(close + 1);
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None => return Err("unexpected text after ']'"),
            },
        }
    } else {
        match s.split_once(':') {
            None => (s, None),
            Some((_, p)) if p.contains(':') => {
                return Err("an IPv6 address must be written in brackets, like [::1]:3000")
            }
            Some((h, p)) => (h, Some(p)),
        }
    };
    if port == Some("") {
        return Err("the port is empty");
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Host {
        Host::Name(s.to_string())
    }

    #[test]
    fn names_are_lowercased_and_lose_the_trailing_dot() {
        assert_eq!(parse_host("API.Example.COM."), Ok(name("api.example.com")));
        assert_eq!(parse_host("localhost"), Ok(name("localhost")));
        assert_eq!(parse_host("a-b.c0"), Ok(name("a-b.c0")));
    }

    #[test]
    fn odd_characters_in_a_name_are_refused() {
        for bad in [
            "evil.com\0.allowed.com",
            "allowed.com\0",
            "a b.com",
            "a\tb.com",
            "ex%61mple.com",
            "user@example.com",
            "exa_mple.com",
            "exämple.com",
            "example.com/",
            "a..b",
            ".example.com",
            "..",
            ".",
            "-a.com",
            "a-.com",
            "example.com\r\n",
        ] {
            assert!(parse_host(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn length_limits_hold() {
        let label63 = "a".repeat(63);
        assert!(parse_host(&format!("{label63}.com")).is_ok());
        assert!(parse_host(&format!("{}.com", "a".repeat(64))).is_err());
        let long = vec!["a".repeat(49); 5].join("."); // 249 characters
        assert!(parse_host(&format!("{long}.com")).is_ok()); // 253
        assert!(parse_host(&format!("{long}.comx")).is_err()); // 254
    }

    #[test]
    fn numeric_names_that_resolvers_read_as_addresses_are_refused() {
        for bad in [
            "127.1",
            "2130706433",
            "0x7f000001",
            "0x7f.0.0.1",
            "0177.0.0.1",
            "1.2.3.04",
        ] {
            assert!(parse_host(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(parse_host("0x.com"), Ok(name("0x.com")));
        assert_eq!(parse_host("123.example"), Ok(name("123.example")));
    }

    #[test]
    fn ip_literals_are_parsed_and_mapped_ipv6_is_folded() {
        assert_eq!(
            parse_host("127.0.0.1"),
            Ok(Host::Ip("127.0.0.1".parse().unwrap()))
        );
        assert_eq!(parse_host("[::1]"), Ok(Host::Ip("::1".parse().unwrap())));
        assert_eq!(
            parse_host("[::ffff:127.0.0.1]"),
            Ok(Host::Ip("127.0.0.1".parse().unwrap()))
        );
        assert!(parse_host("[fe80::1%25eth0]").is_err());
        assert!(parse_host("[::1").is_err());
        assert!(parse_host("::1").is_err());
        assert_eq!(parse_host("[::1]").unwrap().to_string(), "[::1]");
    }

    #[test]
    fn ports_are_strict() {
        assert_eq!(parse_port("443"), Ok(443));
        assert_eq!(parse_port("65535"), Ok(65535));
        for bad in ["", "0", "65536", "+443", "-1", "44 3", "000443", "0x50"] {
            assert!(parse_port(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn authorities_split_at_the_right_colon() {
        assert_eq!(split_authority("a.com:443"), Ok(("a.com", Some("443"))));
        assert_eq!(split_authority("a.com"), Ok(("a.com", None)));
        assert_eq!(split_authority("[::1]:80"), Ok(("[::1]", Some("80"))));
        assert_eq!(split_authority("[::1]"), Ok(("[::1]", None)));
        assert!(split_authority("::1:80").is_err());
        assert!(split_authority("a.com:").is_err());
        assert!(split_authority("[::1]x").is_err());
        assert!(split_authority("[::1]:").is_err());
    }
}
