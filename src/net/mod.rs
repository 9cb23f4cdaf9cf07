//! The `allow` network mode's way out of the sandbox: an HTTP proxy that the
//! supervisor serves on a socket created inside the sandbox's network
//! namespace, and the allow-list it checks every request against.
//!
//! The sandbox has no other route out, so this module is security code:
//! requests are parsed strictly (`request`), hosts are validated before they
//! are compared (`host`), names are resolved here rather than inside the
//! sandbox (so DNS cannot be used as a tunnel), and a permitted name that
//! resolves to loopback or a private network is still refused (`allow`), so
//! the agent cannot reach the host's own services through the proxy.
//! Decisions are pure and unit-tested; `proxy` is the thin effectful edge.

pub mod allow;
mod host;
pub mod proxy;
mod request;

pub use allow::AllowList;
pub use proxy::{Denial, Proxy};
