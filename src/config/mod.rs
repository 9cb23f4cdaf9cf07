//! Configuration: the schema, the built-in defaults, and loading + merging +
//! validating the user's files. `bwai --dump-config` prints the merged result.
//!
//! A user's list *extends* the default list; `{"replace": [...]}` replaces it.
//! Every error names the file, line and column, and nothing runs (exit 2).

mod defaults;
mod load;
mod origin;

pub use load::{apply_project, load, loosening, Source};
pub use origin::{Origin, Origins};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A protection layer, by the name used everywhere: config, flags, report.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Namespaces,
    Landlock,
    Seccomp,
    /// Every requested resource limit has a mechanism that enforces it.
    Limits,
}

impl Layer {
    pub fn name(self) -> &'static str {
        match self {
            Layer::Namespaces => "namespaces",
            Layer::Landlock => "landlock",
            Layer::Seccomp => "seccomp",
            Layer::Limits => "limits",
        }
    }
}

/// Network mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum NetMode {
    /// Share the host's network namespace (agents need their model's API).
    Host,
    /// A private network namespace with only loopback.
    None,
    /// A private network namespace whose only way out is bwai's HTTP proxy,
    /// which lets through the hosts on the allow-list.
    Allow,
}

impl NetMode {
    pub fn name(self) -> &'static str {
        match self {
            NetMode::Host => "host",
            NetMode::None => "none",
            NetMode::Allow => "allow",
        }
    }

    /// How much a mode shuts out: none > allow > host.
    pub fn strictness(self) -> u8 {
        match self {
            NetMode::Host => 0,
            NetMode::Allow => 1,
            NetMode::None => 2,
        }
    }
}

/// The effective configuration: defaults merged with the user's files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The shell for `-c` and for the interactive session.
    pub shell: String,
    pub filesystem: Filesystem,
    pub env: Env,
    pub network: NetMode,
    /// Hosts the `allow` network mode lets through: names, `*.domain`
    /// wildcards, `:port`, IP literals, and presets such as `@anthropic`.
    pub network_allow: Vec<String>,
    /// Layers that must be in force, or bwai refuses to run.
    pub require: Vec<Layer>,
    pub seccomp: Seccomp,
    /// Resource limits of the sandbox (CI): `null` is no limit.
    pub limits: crate::layers::limits::Limits,
    /// Per-agent additions, applied when the agent's command runs, when
    /// asked for with `--profile`, and all of them in the interactive shell.
    pub profiles: BTreeMap<String, Profile>,
}

/// What one agent needs on top of the base policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Program names that select this profile (`claude` for `bwai -c 'claude ...'`).
    pub commands: Vec<String>,
    /// Visible read-only (where the agent is installed).
    pub read_only: Vec<String>,
    /// Visible read-write (the agent's own state).
    pub read_write: Vec<String>,
    /// Environment variables the agent reads (`NAME` or `PREFIX*`).
    pub env: Vec<String>,
    /// Hosts the agent needs in the `allow` network mode (its model's API).
    #[serde(default)]
    pub network_allow: Vec<String>,
    /// State folders (`~/...`, also in `read_write`) that bwai creates, 0700,
    /// before a run when they are missing, so that the agent's login and
    /// history outlive the run instead of going with the empty home.
    #[serde(default)]
    pub create: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filesystem {
    /// Visible read-only. `~/` is the user's home.
    pub read_only: Vec<String>,
    /// Visible read-write, besides the project.
    pub read_write: Vec<String>,
    /// Entries of /etc that are visible (read-only).
    pub etc: Vec<String>,
    /// Read-only even inside writable places: relative to the project, or
    /// `~/...`. The files that make code run outside the sandbox later.
    pub protected: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Env {
    /// Variables passed in from the caller: `NAME`, or `PREFIX*`.
    pub allow: Vec<String>,
    /// Variables set inside the sandbox.
    pub set: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seccomp {
    /// Syscalls of the default deny list to allow back (e.g. `unshare`).
    pub allow: Vec<String>,
    /// DANGEROUS. Without user namespaces (and on kernels before Landlock
    /// ABI 9), bwai refuses to create unix sockets, because every unix
    /// socket of the host would be reachable (D-Bus, ssh-agent, docker).
    /// `true` allows them back, with those sockets. Not from a project's
    /// `.bwai.json`.
    #[serde(default)]
    pub dangerously_allow_host_unix_sockets: bool,
}

impl Default for Config {
    fn default() -> Self {
        defaults::config()
    }
}
