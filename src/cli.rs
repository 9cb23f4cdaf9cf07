//! The command line, as clap sees it. Everything here is declarative; the
//! meaning of each flag is decided in `policy`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, Subcommand};

use crate::config::{Layer, NetMode};
use crate::layers::limits;

#[derive(Debug, Parser)]
#[command(
    name = "bwai",
    version,
    about = "Run an AI coding agent (or any command) in a sandbox around the current project",
    long_about = "Run an AI coding agent (or any command) in a sandbox around the current project.\n\n\
        The project folder is writable, the system is read-only, and the rest of your files \
        (~/.ssh, ~/.aws, other projects...) are absent. Without a command, bwai starts an \
        interactive shell in the sandbox.",
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  bwai                    interactive shell in the sandbox\n  \
        bwai -c 'claude'        run a command string through the shell\n  \
        bwai -- make test       run a program with exact arguments\n  \
        bwai doctor             what protection this kernel gives\n  \
        bwai explain ~/.ssh     what the sandbox would do with a path, and why\n\n\
        Exit status: the command's own; 128+N if killed by signal N; 2 usage or config error; \
        124 time limit (--timeout); 125 sandbox setup failed or refused; 126 not executable; \
        127 not found."
)]
pub struct Cli {
    #[command(subcommand)]
    pub subcommand: Option<Sub>,

    /// Run CMD with the configured shell inside the sandbox.
    #[arg(
        short = 'c',
        long = "command",
        value_name = "CMD",
        conflicts_with = "argv"
    )]
    pub command: Option<String>,

    /// Read this configuration file instead of ~/.bwai.json and ~/.config/bwai/config.json.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print the configuration in use (defaults and your files) as JSON, and exit.
    #[arg(long)]
    pub dump_config: bool,

    /// Print the resolved policy (what is visible, read-only, writable,
    /// protected, and why) for this command, and exit without running it.
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run: print JSON.
    #[arg(long, requires = "dry_run")]
    pub json: bool,

    /// Network: `host` shares the host's network; `none` gives only
    /// loopback; `allow` lets through only the hosts of the allow-list (the
    /// config's and the agent profile's), and `allow:HOST,...` adds hosts
    /// (`api.example.com`, `*.example.com`, `host:port`, `@anthropic`...).
    #[arg(long, value_name = "MODE", value_parser = parse_net)]
    pub net: Option<NetSpec>,

    /// Apply these agent profiles (their state folders, install locations
    /// and variables) even if the command does not name them.
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub profile: Vec<String>,

    /// Refuse to run (exit 125) unless these layers are in force (`limits`:
    /// every requested limit has a mechanism that enforces it).
    #[arg(long, value_name = "LAYER,...", value_delimiter = ',')]
    pub require: Vec<Layer>,

    /// Write a JSON report of the run to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Wall-clock limit: the whole sandbox is killed at the end of it and
    /// bwai exits 124 (e.g. 90s, 10m, 1h30m; a bare number is seconds).
    #[arg(long, value_name = "DURATION", value_parser = limits::parse_duration, help_heading = "Limits")]
    pub timeout: Option<Duration>,

    /// Memory of the whole sandbox (cgroup; without one, the address space
    /// of each process), e.g. 512M, 2G.
    #[arg(long, value_name = "SIZE", value_parser = limits::parse_size_limit, help_heading = "Limits")]
    pub memory: Option<u64>,

    /// Processes and threads in the sandbox at once.
    #[arg(long, value_name = "N", value_parser = limits::parse_count, help_heading = "Limits")]
    pub pids: Option<u64>,

    /// CPU time of each process (SIGXCPU at the limit), e.g. 30s, 5m.
    #[arg(long, value_name = "DURATION", value_parser = limits::parse_duration, help_heading = "Limits")]
    pub cpu_time: Option<Duration>,

    /// Largest file a process may write (SIGXFSZ past it), e.g. 100M.
    #[arg(long, value_name = "SIZE", value_parser = limits::parse_size_limit, help_heading = "Limits")]
    pub file_size: Option<u64>,

    /// Open file descriptors of each process.
    #[arg(long, value_name = "N", value_parser = limits::parse_count, help_heading = "Limits")]
    pub open_files: Option<u64>,

    /// Do not print the start line (warnings are still printed).
    #[arg(short, long)]
    pub quiet: bool,

    /// More logging (-v info, -vv debug); RUST_LOG works too.
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,

    /// Allow a project folder that is $HOME, `/`, or a folder containing $HOME
    /// or a secret store: every secret in it becomes writable by the command.
    #[arg(long)]
    pub dangerously_share_home: bool,

    /// If neither namespaces nor Landlock are available, run anyway with
    /// whatever is left (seccomp, no_new_privs). Without this, bwai refuses.
    #[arg(long)]
    pub dangerously_run_unconfined: bool,

    /// The program and its arguments, run directly (no shell).
    #[arg(last = true, value_name = "PROG ARGS")]
    pub argv: Vec<String>,
}

/// `--net`'s value: a mode, and for `allow:...` the hosts it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetSpec {
    pub mode: NetMode,
    pub allow: Vec<String>,
}

fn parse_net(value: &str) -> Result<NetSpec, String> {
    let (mode, list) = match value.split_once(':') {
        Some((mode, list)) => (mode, Some(list)),
        None => (value, None),
    };
    let mode = match mode {
        "host" => NetMode::Host,
        "none" => NetMode::None,
        "allow" => NetMode::Allow,
        other => {
            return Err(format!(
                "unknown network mode `{other}`: use host, none, allow or allow:HOST,..."
            ))
        }
    };
    let allow: Vec<String> = match list {
        Some(_) if mode != NetMode::Allow => {
            return Err(format!("`{}` takes no host list", mode.name()))
        }
        Some(list) => list.split(',').map(|h| h.trim().to_string()).collect(),
        None => Vec::new(),
    };
    if let Some(bad) = allow.iter().find(|h| h.is_empty()) {
        return Err(format!("an empty host in the allow-list {bad:?}"));
    }
    Ok(NetSpec { mode, allow })
}

#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Show what protection this kernel gives, and how to get more.
    Doctor {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the resolved policy, or what the sandbox would do with PATH, and why.
    Explain(ExplainArgs),
}

/// `bwai explain [PATH...] [run flags] [-- PROG ARGS]`: the run's flags
/// matter (the command decides the agent profiles), so it takes them too.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  bwai explain                      the whole policy for an interactive shell\n  \
    bwai explain ~/.ssh/id_rsa        is my key visible? (absent)\n  \
    bwai explain -c claude ~/.claude  what the claude profile makes writable\n  \
    bwai explain --json .git/hooks    machine-readable"
)]
pub struct ExplainArgs {
    /// Paths to explain: relative to the current directory, `~/` is your
    /// home. Without any, the whole policy is printed.
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,

    /// Print JSON.
    #[arg(long)]
    pub json: bool,

    /// Explain the policy for running CMD with the shell.
    #[arg(
        short = 'c',
        long = "command",
        value_name = "CMD",
        conflicts_with = "argv"
    )]
    pub command: Option<String>,

    /// Read this configuration file instead of the default ones.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Network mode, as for a run (`host`, `none`, `allow[:HOST,...]`).
    #[arg(long, value_name = "MODE", value_parser = parse_net)]
    pub net: Option<NetSpec>,

    /// Apply these agent profiles, as for a run.
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub profile: Vec<String>,

    /// Say whether a run would be refused for want of these layers.
    #[arg(long, value_name = "LAYER,...", value_delimiter = ',')]
    pub require: Vec<Layer>,

    /// As for a run: allow a project folder that contains $HOME.
    #[arg(long)]
    pub dangerously_share_home: bool,

    /// The program and arguments the policy is for.
    #[arg(last = true, value_name = "PROG ARGS")]
    pub argv: Vec<String>,
}

impl Cli {
    /// The limits given as flags (each one overrides the configuration's).
    pub fn limits(&self) -> limits::Limits {
        limits::Limits {
            timeout: self.timeout,
            memory: self.memory,
            pids: self.pids,
            cpu_time: self.cpu_time,
            file_size: self.file_size,
            open_files: self.open_files,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_takes_a_mode_and_for_allow_a_list() {
        assert_eq!(
            parse_net("none").unwrap(),
            NetSpec {
                mode: NetMode::None,
                allow: vec![]
            }
        );
        let spec = parse_net("allow:api.example.com, *.github.com,@npm").unwrap();
        assert_eq!(spec.mode, NetMode::Allow);
        assert_eq!(spec.allow, ["api.example.com", "*.github.com", "@npm"]);
        assert!(parse_net("allow").unwrap().allow.is_empty());
        assert!(parse_net("sometimes").is_err());
        assert!(parse_net("host:example.com").is_err());
        assert!(parse_net("allow:").is_err());
        assert!(parse_net("allow:a,,b").is_err());
    }
}
