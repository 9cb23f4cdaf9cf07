//! The network allow-list: which hosts and ports the proxy may dial, and
//! which resolved addresses it may connect to.
//!
//! Two separate questions, both pure: `allows` judges the name the agent
//! asked for; `address_allowed` judges the address that name resolved to.
//! The second exists because an allowed name can point anywhere (a
//! DNS record, /etc/hosts, "localhost"): without it the agent could reach
//! the host's own services, or the local network, through the proxy. Such
//! addresses pass only when the user names them as IP entries.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::host::{parse_host, parse_port, split_authority, Host};

/// The ports an entry without ":port" covers: plain and TLS web traffic.
const WEB_PORTS: [u16; 2] = [80, 443];

/// Hosts of the common agents' APIs and package registries, so users need
/// not collect them. Plain names only, on ports 80 and 443; a unit test
/// checks every one is a valid entry.
static PRESETS: &[(&str, &[&str])] = &[
    ("@anthropic", ANTHROPIC),
    ("@openai", OPENAI),
    ("@google", GOOGLE),
    ("@gemini", GOOGLE),
    ("@npm", NPM),
    ("@pypi", PYPI),
    ("@crates", CRATES),
    ("@github", GITHUB),
];

const ANTHROPIC: &[&str] = &[
    "api.anthropic.com",
    "console.anthropic.com",
    "statsig.anthropic.com",
    "claude.ai",
    "platform.claude.com",
];
const OPENAI: &[&str] = &["api.openai.com", "auth.openai.com", "chatgpt.com"];
const GOOGLE: &[&str] = &[
    "generativelanguage.googleapis.com",
    "aiplatform.googleapis.com",
    "cloudcode-pa.googleapis.com",
    "oauth2.googleapis.com",
    "www.googleapis.com",
    "accounts.google.com",
];
const NPM: &[&str] = &["registry.npmjs.org", "registry.yarnpkg.com"];
const PYPI: &[&str] = &["pypi.org", "files.pythonhosted.org"];
const CRATES: &[&str] = &["crates.io", "index.crates.io", "static.crates.io"];
const GITHUB: &[&str] = &[
    "github.com",
    "api.github.com",
    "codeload.github.com",
    "raw.githubusercontent.com",
    "objects.githubusercontent.com",
    "release-assets.githubusercontent.com",
];

/// A parsed network allow-list. Empty means nothing is allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    rules: Vec<Rule>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    pattern: Pattern,
    ports: Ports,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    /// Exactly this name.
    Name(String),
    /// Any name ending in this suffix, which starts with '.': subdomains
    /// at any depth, never the bare domain.
    Subdomains(String),
    /// This address, also exempt from the private-address rule.
    Ip(IpAddr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ports {
    Web,
    One(u16),
}

impl Ports {
    fn admit(self, port: u16) -> bool {
        match self {
            Ports::Web => WEB_PORTS.contains(&port),
            Ports::One(p) => p == port,
        }
    }
}

impl AllowList {
    /// Entries: exact host names ("api.anthropic.com"), wildcards
    /// ("*.github.com": any subdomain, not the bare domain), an optional
    /// ":port" (without one: ports 80 and 443), IP literals ("127.0.0.1:8080",
    /// "[::1]:3000", "[fd00::5]"; IPv6 always in brackets, since "::1:80" is
    /// itself an address), which also exempt that address from the
    /// private-address rule, and presets ("@anthropic", see `presets`).
    /// Names are case-insensitive; white space around an entry is ignored.
    pub fn parse(entries: &[String]) -> Result<AllowList, String> {
        let mut rules = Vec::new();
        for entry in entries {
            parse_entry(entry.trim(), &mut rules)
                .map_err(|why| format!("network allow-list entry {entry:?}: {why}"))?;
        }
        Ok(AllowList { rules })
    }

    /// Is this host and port allowed? `host` is a validated name (compared
    /// case-insensitively, a trailing dot ignored) or an IP literal, with or
    /// without brackets for IPv6.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(addr) = bare.parse::<IpAddr>() {
            return self.ip_rule_admits(addr.to_canonical(), port);
        }
        let name = host.strip_suffix('.').unwrap_or(host).as_bytes();
        self.rules.iter().any(|r| {
            r.ports.admit(port)
                && match &r.pattern {
                    Pattern::Name(n) => name.eq_ignore_ascii_case(n.as_bytes()),
                    Pattern::Subdomains(suffix) => {
                        name.len() > suffix.len()
                            && name[name.len() - suffix.len()..]
                                .eq_ignore_ascii_case(suffix.as_bytes())
                    }
                    Pattern::Ip(_) => false,
                }
        })
    }

    /// May the proxy connect to this resolved address? Public addresses
    /// yes; loopback, link-local, private, unspecified, multicast,
    /// broadcast, CGNAT, documentation and similar (also in IPv4-mapped,
    /// IPv4-compatible, NAT64 and 6to4 form) only if an IP entry names the
    /// address and the port.
    pub fn address_allowed(&self, addr: IpAddr, port: u16) -> bool {
        let addr = addr.to_canonical();
        self.ip_rule_admits(addr, port) || is_public(addr)
    }

    /// The preset names (with their '@') and their hosts, for
    /// `--dump-config` and the docs.
    pub fn presets() -> &'static [(&'static str, &'static [&'static str])] {
        PRESETS
    }

    /// Does the list allow nothing at all?
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    fn ip_rule_admits(&self, addr: IpAddr, port: u16) -> bool {
        self.rules
            .iter()
            .any(|r| r.pattern == Pattern::Ip(addr) && r.ports.admit(port))
    }
}

impl fmt::Display for AllowList {
    /// The entries in canonical form, comma-separated (presets expanded).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match &r.pattern {
                Pattern::Name(n) => f.write_str(n)?,
                Pattern::Subdomains(s) => write!(f, "*{s}")?,
                Pattern::Ip(a) => write!(f, "{}", Host::Ip(*a))?,
            }
            if let Ports::One(p) = r.ports {
                write!(f, ":{p}")?;
            }
        }
        Ok(())
    }
}

fn parse_entry(entry: &str, rules: &mut Vec<Rule>) -> Result<(), String> {
    if entry.is_empty() {
        return Err("the entry is empty".into());
    }
    if let Some(preset) = entry.strip_prefix('@') {
        return parse_preset(preset, rules);
    }
    if entry.contains('/') {
        return Err(
            "write a host name, not a URL (for example api.example.com or api.example.com:8443)"
                .into(),
        );
    }
    let (host, port) = split_authority(entry)?;
    let ports = match port {
        None => Ports::Web,
        Some(p) => Ports::One(parse_port(p)?),
    };
    let pattern = if let Some(domain) = host.strip_prefix("*.") {
        match parse_host(domain)? {
            Host::Name(n) if n.contains('.') => Pattern::Subdomains(format!(".{n}")),
            Host::Name(_) => {
                return Err(
                    "a wildcard must cover a domain of two labels or more, like *.example.com"
                        .into(),
                )
            }
            Host::Ip(_) => return Err("a wildcard cannot cover an IP address".into()),
        }
    } else if host.contains('*') {
        return Err("'*' may only be the whole first label, like *.example.com".into());
    } else {
        match parse_host(host)? {
            Host::Name(n) => Pattern::Name(n),
            Host::Ip(a) => Pattern::Ip(a),
        }
    };
    rules.push(Rule { pattern, ports });
    Ok(())
}

fn parse_preset(preset: &str, rules: &mut Vec<Rule>) -> Result<(), String> {
    if preset.contains(':') {
        return Err("a preset takes no port; it covers ports 80 and 443".into());
    }
    let wanted = format!("@{}", preset.to_ascii_lowercase());
    let (_, hosts) = PRESETS.iter().find(|(n, _)| *n == wanted).ok_or_else(|| {
        let known: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
        format!("unknown preset; the presets are {}", known.join(", "))
    })?;
    rules.extend(hosts.iter().map(|h| Rule {
        pattern: Pattern::Name((*h).to_string()),
        ports: Ports::Web,
    }));
    Ok(())
}

/// Is this an address on the public internet? Everything that reaches the
/// host itself, its local networks, or nothing routable, is not.
pub(crate) fn is_public(addr: IpAddr) -> bool {
    match addr.to_canonical() {
        IpAddr::V4(a) => is_public_v4(a),
        IpAddr::V6(a) => is_public_v6(a),
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let [a0, a1, a2, _] = a.octets();
    let special = a0 == 0 // "this network", including 0.0.0.0 (reaches the host)
        || a0 == 10 // private
        || (a0 == 100 && (a1 & 0xc0) == 64) // CGNAT 100.64.0.0/10
        || a0 == 127 // loopback
        || (a0 == 169 && a1 == 254) // link-local, cloud metadata services
        || (a0 == 172 && (a1 & 0xf0) == 16) // private
        || (a0 == 192 && a1 == 0 && (a2 == 0 || a2 == 2)) // protocol assignments, TEST-NET-1
        || (a0 == 192 && a1 == 88 && a2 == 99) // 6to4 relay anycast
        || (a0 == 192 && a1 == 168) // private
        || (a0 == 198 && (a1 & 0xfe) == 18) // benchmarking
        || (a0 == 198 && a1 == 51 && a2 == 100) // TEST-NET-2
        || (a0 == 203 && a1 == 0 && a2 == 113) // TEST-NET-3
        || a0 >= 224; // multicast, reserved, broadcast
    !special
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    let s = a.segments();
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    // Translation prefixes lead to the IPv4 address inside: judge that.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(embedded(s[6], s[7])); // NAT64 64:ff9b::/96
    }
    if s[0] == 0x2002 {
        return is_public_v4(embedded(s[1], s[2])); // 6to4 2002::/16
    }
    let special = (s[0] & 0xff00) == 0 // ::/8: unspecified, loopback, IPv4-compatible
        || (s[0] == 0x64 && s[1] == 0xff9b) // local-use NAT64 64:ff9b:1::/48
        || (s[0] == 0x100 && s[1..4] == [0, 0, 0]) // discard-only 100::/64
        || (s[0] == 0x2001 && s[1] < 0x200) // protocol assignments, Teredo 2001::/23
        || (s[0] == 0x2001 && s[1] == 0xdb8) // documentation
        || (s[0] & 0xfff0) == 0x3ff0 // documentation 3fff::/20
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00; // multicast
    !special
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        let v: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        AllowList::parse(&v).unwrap()
    }

    fn parse_err(entry: &str) -> String {
        AllowList::parse(&[entry.to_string()]).unwrap_err()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn exact_name_allows_only_itself_on_web_ports() {
        let l = list(&["api.anthropic.com"]);
        assert!(l.allows("api.anthropic.com", 443));
        assert!(l.allows("api.anthropic.com", 80));
        assert!(l.allows("API.Anthropic.com.", 443));
        assert!(!l.allows("api.anthropic.com", 22));
        assert!(!l.allows("anthropic.com", 443));
        assert!(!l.allows("evil.api.anthropic.com", 443));
        assert!(!l.allows("api.anthropic.com.evil.com", 443));
    }

    #[test]
    fn wildcard_allows_subdomains_not_the_bare_domain() {
        let l = list(&["*.github.com"]);
        assert!(l.allows("api.github.com", 443));
        assert!(l.allows("a.b.github.com", 443));
        assert!(!l.allows("github.com", 443));
        assert!(!l.allows("evilgithub.com", 443));
        assert!(!l.allows("github.com.evil.com", 443));
        assert!(!l.allows(".github.com", 443));
    }

    #[test]
    fn explicit_port_replaces_the_web_ports() {
        let l = list(&["example.com:8443", "*.internal.example:9000"]);
        assert!(l.allows("example.com", 8443));
        assert!(!l.allows("example.com", 443));
        assert!(l.allows("a.internal.example", 9000));
        assert!(!l.allows("a.internal.example", 443));
    }

    #[test]
    fn presets_expand_and_every_preset_host_is_a_valid_entry() {
        let l = list(&["@Anthropic", "@npm"]);
        assert!(l.allows("api.anthropic.com", 443));
        assert!(l.allows("registry.npmjs.org", 443));
        assert!(!l.allows("api.openai.com", 443));
        for (name, hosts) in AllowList::presets() {
            assert!(name.starts_with('@'));
            assert!(AllowList::parse(&[name.to_string()]).is_ok());
            for h in *hosts {
                assert_eq!(
                    parse_host(h),
                    Ok(Host::Name(h.to_string())),
                    "{name} host {h}"
                );
            }
        }
        let gemini = list(&["@gemini"]);
        assert!(gemini.allows("generativelanguage.googleapis.com", 443));
    }

    #[test]
    fn bad_entries_are_refused_naming_the_entry() {
        for (entry, why) in [
            ("", "empty"),
            ("   ", "empty"),
            ("@nosuch", "unknown preset"),
            ("@npm:443", "no port"),
            ("exa mple.com", "white space"),
            ("evil.com\0.allowed.com", "NUL"),
            ("https://api.example.com", "not a URL"),
            ("example.com:0", "port"),
            ("example.com:65536", "port"),
            ("example.com:", "empty"),
            ("example.com:http", "port"),
            ("*", "first label"),
            ("*.com", "two labels"),
            ("a.*.com", "first label"),
            ("*example.com", "first label"),
            ("*.10.0.0.1", "IP address"),
            ("::1:80", "IPv6"),
            ("::1", "IPv6"),
            ("127.1", "unusual form"),
        ] {
            let err = parse_err(entry);
            assert!(err.contains(&format!("{entry:?}")), "{err}");
            assert!(err.contains(why), "{entry:?}: {err}");
        }
    }

    #[test]
    fn ip_entries_allow_the_literal_and_exempt_the_address() {
        let l = list(&["127.0.0.1:8080", "[::1]:3000", "[fd00::5]", "10.1.2.3"]);
        assert!(l.allows("127.0.0.1", 8080));
        assert!(!l.allows("127.0.0.1", 8081));
        assert!(l.allows("[::1]", 3000));
        assert!(l.allows("::1", 3000));
        assert!(l.allows("[fd00::5]", 443));
        assert!(l.allows("[::ffff:127.0.0.1]", 8080));
        assert!(l.address_allowed(ip("127.0.0.1"), 8080));
        assert!(!l.address_allowed(ip("127.0.0.1"), 8081));
        assert!(!l.address_allowed(ip("127.0.0.2"), 8080));
        assert!(l.address_allowed(ip("::ffff:127.0.0.1"), 8080));
        assert!(l.address_allowed(ip("::1"), 3000));
        assert!(l.address_allowed(ip("10.1.2.3"), 443));
        assert!(!l.address_allowed(ip("10.1.2.3"), 22));
        // An IP entry does not make a name allowed, nor the reverse.
        assert!(!l.allows("localhost", 8080));
        assert!(!list(&["localhost:8080"]).address_allowed(ip("127.0.0.1"), 8080));
    }

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for a in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "2001::1",
            "2001:db8::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(!is_public(ip(a)), "{a} counted as public");
            assert!(!AllowList::default().address_allowed(ip(a), 443), "{a}");
        }
    }

    #[test]
    fn public_addresses_are_public() {
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "160.79.104.10",
            "223.255.255.254",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2606:4700::1111",
            "2607:6bc0::10",
            "2001:4860:4860::8888",
        ] {
            assert!(is_public(ip(a)), "{a} counted as private");
        }
    }

    #[test]
    fn display_lists_canonical_entries() {
        let l = list(&[
            "Example.com",
            "*.x.org:8443",
            "[::ffff:127.0.0.1]:80",
            "[::1]",
        ]);
        assert_eq!(l.to_string(), "example.com,*.x.org:8443,127.0.0.1:80,[::1]");
    }
}
