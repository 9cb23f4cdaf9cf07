//! The supervisor: starts the sandbox, falls back when the kernel refuses a
//! layer, relays signals, waits, and says what was really in force.
//!
//!   bwai (supervisor)
//!     └─ init (pid 1 inside; builds the view, reaps, relays signals)
//!          └─ payload (drops privileges, Landlock, seccomp, exec)

mod channel;
mod init;
mod payload;

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{kill, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use seccompiler::BpfProgram;

use crate::config::NetMode;
use crate::error::{Error, Result};
use crate::layers::{landlock, namespaces, privs, protect, seccomp};
use crate::plan::{self, Mode, Plan};
use crate::policy::Policy;
use crate::probe::{self, Capabilities};
use channel::{Channel, SupervisorEnd, ABORT, GO, MAPS_WRITTEN};

/// Everything the children need, computed before the fork (they get a copy).
pub struct Launch<'a> {
    pub policy: &'a Policy,
    pub namespaces: bool,
    pub ns_flags: libc::c_int,
    pub landlock: Option<landlock::Rules>,
    pub seccomp: Option<Vec<BpfProgram>>,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    /// The sandbox's PATH, for the command lookup.
    pub path: String,
    pub stdin_tty: bool,
    /// Existing protected paths, bound read-only by init (namespaces only).
    pub protected: Vec<crate::layers::protect::Protected>,
}

/// What was really in force, as reported by the children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enforced {
    /// The namespaces created (`user mount pid ...`), if any.
    pub namespaces: Option<String>,
    pub landlock: Option<landlock::Outcome>,
    pub seccomp: bool,
    pub no_new_privs: bool,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub plan: Plan,
    pub mode: Mode,
    pub enforced: Enforced,
    pub warnings: Vec<String>,
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub duration_ms: u128,
    /// How protected paths were enforced, and what was restored or moved.
    pub protection: Protection,
}

#[derive(Debug, Clone, Default)]
pub struct Protection {
    pub mechanism: &'static str,
    pub paths: Vec<String>,
    pub events: Vec<String>,
}

/// How a start attempt failed.
enum StartError {
    /// User namespaces did not work here: re-plan without them.
    Userns {
        reason: String,
        fix: String,
    },
    Fatal(Error),
}

impl From<Error> for StartError {
    fn from(e: Error) -> Self {
        StartError::Fatal(e)
    }
}

struct Started {
    init: Pid,
    chan: SupervisorEnd,
    enforced: Enforced,
    warnings: Vec<String>,
    /// Kept alive until the end (fallback mode's private /tmp).
    private_tmp: Option<TempDir>,
}

/// Options that affect only the supervisor's behaviour.
pub struct RunOptions {
    pub quiet: bool,
}

pub fn run(
    policy: &Policy,
    caps: &Capabilities,
    mut plan: Plan,
    opts: &RunOptions,
) -> Result<Outcome> {
    let started_at = Instant::now();
    // Before anything runs: the state of the protected paths, to verify
    // (and restore) after the run in every mode.
    let snapshot = protect::Snapshot::take(&policy.protected, &policy.project);
    // Block the signals we relay before any child exists: none is lost, and
    // children inherit the mask (the payload clears it).
    let set = privs::handled_set();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(|e| Error::sys("blocking signals", e))?;

    let mut started = loop {
        match start(policy, caps, &plan, &snapshot) {
            Ok(s) => break s,
            Err(StartError::Userns { reason, fix }) if plan.namespaces.planned => {
                log::info!("user namespaces unusable: {reason}; falling back");
                plan = plan::plan(
                    caps,
                    &policy.require,
                    policy.allow_unconfined,
                    Some((reason, fix)),
                )?;
            }
            Err(StartError::Userns { reason, .. }) => return Err(Error::refused(reason)),
            Err(StartError::Fatal(e)) => return Err(e),
        }
    };

    // Judge by what the kernel enforced, not by what we asked for.
    let landlock_in_force = started
        .enforced
        .landlock
        .as_ref()
        .is_some_and(|o| o.in_force);
    if plan.landlock.planned && !landlock_in_force {
        plan.landlock.planned = false;
        plan.landlock.reason =
            Some("the kernel enforced no Landlock rule (restrict_self: not enforced)".into());
    }
    let mode =
        if started.enforced.namespaces.is_some() && landlock_in_force && started.enforced.seccomp {
            Mode::Full
        } else if started.enforced.namespaces.is_some() || landlock_in_force {
            Mode::Degraded
        } else {
            Mode::Unconfined
        };
    let refusal = policy
        .require
        .iter()
        .find(|l| !plan.layer(**l).planned)
        .map(|l| {
            format!(
                "required layer `{}` is not in force: {}",
                l.name(),
                plan.layer(*l).reason.as_deref().unwrap_or("unavailable")
            )
        })
        .or_else(|| {
            (mode == Mode::Unconfined && !policy.allow_unconfined).then(|| {
                "neither namespaces nor Landlock are in force; refusing to run unconfined"
                    .to_string()
            })
        });
    if let Some(why) = refusal {
        started.chan.send(ABORT);
        let _ = waitpid(started.init, None);
        return Err(Error::refused(why).with_hint("see `bwai doctor`"));
    }

    let mut warnings = plan.warnings();
    warnings.append(&mut started.warnings);
    warnings.extend(policy.notes.iter().cloned());
    warnings.extend(snapshot.uncaptured());
    if policy.net == NetMode::Host {
        log::info!("network: sharing the host's network");
    }
    if !opts.quiet {
        eprintln!("{}", crate::report::start_line(policy, &started.enforced));
    }
    for w in &warnings {
        eprintln!("bwai: warning: {w}");
    }
    started.chan.send(GO);

    let stdin_tty = stdin_is_tty();
    let status = wait_for(started.init, &set, !stdin_tty);
    // Read the children's last words: the command's real status.
    let mut signal = None;
    let mut exit_code = status;
    while let Some(line) = started.chan.next_report() {
        let (kind, rest) = line.split_once(' ').unwrap_or((&line, ""));
        match kind {
            "signal" => signal = rest.trim().parse().ok(),
            "exec-failed" => {
                if let Some((code, msg)) = rest.split_once(' ') {
                    eprintln!("bwai: {msg}");
                    exit_code = code.parse().unwrap_or(127);
                }
            }
            "exit" => {}
            other => log::debug!("late report {other}: {rest}"),
        }
    }
    if stdin_tty {
        reclaim_terminal();
    }
    drop(started.private_tmp);
    // The sandbox is gone: nothing can race us now. Put back what it changed.
    let events = snapshot.verify_and_restore();
    for e in &events {
        eprintln!("bwai: protected: {e}");
    }
    let protection = Protection {
        mechanism: if started.enforced.namespaces.is_some() {
            "read-only mounts, verified and restored after the run"
        } else {
            "verified and restored after the run"
        },
        paths: snapshot
            .existing()
            .iter()
            .map(|p| p.path().display().to_string())
            .collect(),
        events,
    };
    Ok(Outcome {
        plan,
        mode,
        enforced: started.enforced,
        warnings,
        exit_code,
        signal,
        duration_ms: started_at.elapsed().as_millis(),
        protection,
    })
}

fn start(
    policy: &Policy,
    caps: &Capabilities,
    plan: &Plan,
    snapshot: &protect::Snapshot,
) -> std::result::Result<Started, StartError> {
    let use_ns = plan.namespaces.planned;
    let private_tmp = if use_ns { None } else { Some(TempDir::new()?) };
    let mut env = policy.env.clone();
    if let Some(t) = &private_tmp {
        env.retain(|(k, _)| k != "TMPDIR");
        env.push(("TMPDIR".into(), t.path.to_string_lossy().into_owned()));
        fallback_caches(&mut env, &t.path);
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let cstr = |s: &[u8]| {
        CString::new(s).map_err(|_| Error::usage("an argument or variable contains a NUL byte"))
    };
    let launch = Launch {
        policy,
        namespaces: use_ns,
        ns_flags: namespaces::clone_flags(policy.net == NetMode::None, true),
        landlock: plan.landlock.planned.then(|| {
            landlock::rules(
                policy,
                use_ns,
                private_tmp.as_ref().map(|t| t.path.as_path()),
            )
        }),
        seccomp: if plan.seccomp.planned {
            let extra = seccomp::Extra {
                deny_inet_sockets: !use_ns && policy.net == NetMode::None,
            };
            Some(seccomp::build(&policy.seccomp_allow, &extra).map_err(Error::refused)?)
        } else {
            None
        },
        argv: policy
            .argv
            .iter()
            .map(|a| cstr(a.as_bytes()))
            .collect::<Result<_>>()?,
        env: env
            .iter()
            .map(|(k, v)| cstr(format!("{k}={v}").as_bytes()))
            .collect::<Result<_>>()?,
        path,
        stdin_tty: stdin_is_tty(),
        protected: snapshot.existing(),
    };
    let chan = Channel::new().map_err(Error::refused)?;
    let supervisor = nix::unistd::getpid();

    let (init, ns_detail) = if use_ns {
        let mut flags = launch.ns_flags;
        let pid = match namespaces::clone_into(flags) {
            Err(Errno::EINVAL) => {
                // A kernel without cgroup namespaces: do without that one.
                flags &= !libc::CLONE_NEWCGROUP;
                namespaces::clone_into(flags)
            }
            other => other,
        };
        match pid {
            Ok(pid) if pid.as_raw() == 0 => {
                let launch = Launch {
                    ns_flags: flags,
                    ..launch
                };
                init::main(&launch, chan.into_child(), supervisor)
            }
            Ok(pid) => (pid, Some(namespaces::describe(flags))),
            Err(e) => {
                let b = probe::explain_userns_errno(e, &caps.userns);
                return Err(StartError::Userns {
                    reason: b.reason,
                    fix: b.fix,
                });
            }
        }
    } else {
        // SAFETY: the supervisor is single-threaded.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => init::main(&launch, chan.into_child(), supervisor),
            Ok(ForkResult::Parent { child }) => (child, None),
            Err(e) => return Err(Error::sys("fork", e).into()),
        }
    };
    // From here on the sandbox exists: it must not ptrace us or read our
    // memory (bubblewrap CVE-2016-8659). Not earlier: a non-dumpable parent
    // makes the child's /proc files root-owned, and its uid_map unwritable.
    privs::set_not_dumpable();
    let mut chan = chan.into_supervisor();

    if use_ns {
        if let Err(e) = namespaces::write_maps(init, policy.uid, policy.gid) {
            let _ = kill(init, Signal::SIGKILL);
            let _ = waitpid(init, None);
            let b = match &caps.userns {
                probe::Userns::Likely { suspicion: Some(s) } => s.clone(),
                _ => probe::apparmor_blocker(),
            };
            return Err(StartError::Userns {
                reason: format!("{e} ({})", b.reason),
                fix: b.fix,
            });
        }
        chan.send(MAPS_WRITTEN);
    }

    let mut enforced = Enforced {
        namespaces: ns_detail,
        ..Default::default()
    };
    let mut warnings = Vec::new();
    loop {
        let Some(line) = chan.next_report() else {
            let _ = waitpid(init, None);
            return Err(Error::refused("the sandbox died while being set up").into());
        };
        let (kind, rest) = line.split_once(' ').unwrap_or((&line, ""));
        match kind {
            "ready" => break,
            "warn" => warnings.push(rest.to_string()),
            "landlock" => enforced.landlock = parse_landlock(rest),
            "seccomp" => enforced.seccomp = rest.trim() == "1",
            "nnp" => enforced.no_new_privs = rest.trim() == "1",
            "fatal-userns" => {
                let _ = waitpid(init, None);
                let why = format!("the user namespace cannot build the sandbox: {rest}");
                let fix = match &caps.userns {
                    probe::Userns::Likely { suspicion: Some(s) } => s.fix.clone(),
                    _ => "see `bwai doctor`".into(),
                };
                return Err(StartError::Userns { reason: why, fix });
            }
            "fatal" => {
                let _ = waitpid(init, None);
                return Err(Error::refused(format!("sandbox setup failed: {rest}")).into());
            }
            other => log::debug!("unexpected report {other}: {rest}"),
        }
    }
    Ok(Started {
        init,
        chan,
        enforced,
        warnings,
        private_tmp,
    })
}

fn parse_landlock(text: &str) -> Option<landlock::Outcome> {
    let f: Vec<&str> = text.split_whitespace().collect();
    if f.len() != 5 {
        return None;
    }
    let status = match f[2] {
        "fully_enforced" => "fully_enforced",
        "partially_enforced" => "partially_enforced",
        _ => "not_enforced",
    };
    Some(landlock::Outcome {
        in_force: f[0] == "1",
        abi: f[1].parse().ok()?,
        status,
        tcp: f[3] == "1",
        scopes: f[4] == "1",
        skipped: Vec::new(),
    })
}

/// Wait for init, relaying signals. Returns bwai's exit code.
fn wait_for(init: Pid, set: &nix::sys::signal::SigSet, relay_terminal_signals: bool) -> i32 {
    loop {
        // A child may have exited before we started waiting: poll first.
        match waitpid(init, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Err(_) => return 125,
            _ => {}
        }
        let Some((sig, from_process)) = init::wait_signal(set) else {
            continue;
        };
        if sig == Signal::SIGCHLD {
            continue;
        }
        // Terminal signals (Ctrl-C) reach the command directly when it shares
        // our terminal; without one (setsid), we relay them too.
        if from_process || relay_terminal_signals {
            let _ = kill(init, sig);
        }
    }
}

/// Take the terminal's foreground back after an interactive shell gave it
/// to its own jobs, so our last words do not stop us with SIGTTOU.
fn reclaim_terminal() {
    // SAFETY: ignoring SIGTTOU is sound; tcsetpgrp takes plain integers.
    unsafe {
        libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        libc::tcsetpgrp(0, libc::getpgrp());
    }
}

/// Without namespaces there is no private home: the real one is there, and
/// Landlock lets nothing of it be written. Tools that keep a cache in the
/// home (npm fails outright without one; pip and cargo degrade) get one in
/// the run's private temporary directory instead, as the tmpfs home gives
/// them with namespaces: writable, gone after the run. A value the user set
/// (`env.set`, or an allowed variable) is kept.
fn fallback_caches(env: &mut Vec<(String, String)>, private_tmp: &Path) {
    for (var, dir) in [
        ("XDG_CACHE_HOME", "cache"),  // pip, uv, go, yarn, most tools
        ("npm_config_cache", "npm"),  // ~/.npm
        ("CARGO_HOME", "cargo-home"), // ~/.cargo/registry, git checkouts
    ] {
        if !env.iter().any(|(k, _)| k == var) {
            let value = private_tmp.join(dir).to_string_lossy().into_owned();
            env.push((var.into(), value));
        }
    }
}

/// A private temporary directory (the fallback's /tmp), removed at the end.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    fn new() -> Result<Self> {
        let base = std::env::var_os("TMPDIR")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        let template = base.join("bwai-XXXXXX");
        let path = nix::unistd::mkdtemp(&template)
            .map_err(|e| Error::sys(format!("mkdtemp {}", template.display()), e))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // remove_dir_all does not follow symlinks the sandbox may have left.
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            log::warn!("could not remove {}: {e}", self.path.display());
        }
    }
}

pub fn stdin_is_tty() -> bool {
    // SAFETY: isatty only inspects the descriptor number.
    unsafe { libc::isatty(0) == 1 }
}
