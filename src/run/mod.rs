//! The supervisor: starts the sandbox, falls back when the kernel refuses a
//! layer, relays signals, waits, and says what was really in force.
//!
//!   bwai (supervisor)
//!     └─ init (pid 1 inside; builds the view, reaps, relays signals)
//!          └─ payload (drops privileges, Landlock, seccomp, exec)

mod channel;
mod handoff;
mod init;
mod limits;
mod payload;

pub use limits::LimitsOutcome;

use std::ffi::CString;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
use channel::{Channel, SupervisorEnd, ABORT, GO, MAPS_WRITTEN, PLACED};

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
    /// Network `allow` with namespaces: init sends the proxy's listening
    /// socket, created inside, over this descriptor.
    pub proxy_sender: Option<RawFd>,
    /// Network `allow` without namespaces: the proxy's socket on the host,
    /// which init closes (only the supervisor serves it).
    pub proxy_listener: Option<RawFd>,
    /// The limits, and the plan whose rlimits the payload sets.
    pub limits: crate::layers::limits::Limits,
    pub limit_plan: Vec<crate::layers::limits::LimitPlan>,
}

/// What was really in force, as reported by the children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enforced {
    /// The namespaces created (`user mount pid ...`), if any.
    pub namespaces: Option<String>,
    pub landlock: Option<landlock::Outcome>,
    pub seccomp: bool,
    /// What seccomp also refuses because namespaces are missing
    /// (`unix-sockets`, `sysv-ipc`).
    pub seccomp_extra: Vec<&'static str>,
    pub no_new_privs: bool,
    /// How the network mode was enforced, in words (the report's
    /// `network.enforcement`).
    pub net: &'static str,
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
    pub network: Network,
    /// What the run left that would act outside the sandbox.
    pub left_behind: Vec<crate::leftovers::Finding>,
    /// Each limit's mechanism, which one tripped, peak memory.
    pub limits: LimitsOutcome,
}

#[derive(Debug, Clone, Default)]
pub struct Protection {
    pub mechanism: &'static str,
    pub paths: Vec<String>,
    pub events: Vec<String>,
}

/// The network as it was: how the mode was enforced, and what the proxy refused.
#[derive(Debug, Clone, Default)]
pub struct Network {
    /// Where the command found the proxy (`allow` mode).
    pub proxy: Option<String>,
    pub denials: Vec<crate::net::Denial>,
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
    /// The proxy's listening socket and the address the command uses.
    proxy: Option<(TcpListener, String)>,
    /// Which mechanism enforces each limit in this sandbox.
    limit_plan: Vec<crate::layers::limits::LimitPlan>,
    /// Without namespaces: the command, to end the sandbox at the time-out.
    payload: Option<limits::PidFd>,
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
    // And what counts as new when looking for what the run left behind.
    let mut leftovers = crate::leftovers::Watch::start(&policy.project, &policy.protected);
    // Block the signals we relay before any child exists: none is lost, and
    // children inherit the mask (the payload clears it).
    let set = privs::handled_set();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(|e| Error::sys("blocking signals", e))?;

    // The cgroup exists before the sandbox does: init goes in before it
    // forks the command.
    let name_hint = policy
        .project
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let enforcement = limits::Enforcement::prepare(&policy.limits, &name_hint);

    let mut started = loop {
        match start(policy, caps, &plan, &snapshot, &enforcement) {
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
    let (limits_layer, limit_warnings) =
        limits::judge(&started.limit_plan, enforcement.cgroup_reason.as_deref());
    plan.limits = limits_layer;
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
        })
        .or_else(|| network_refusal(policy, &started.enforced));
    if let Some(why) = refusal {
        started.chan.send(ABORT);
        let _ = waitpid(started.init, None);
        let failing = policy.require.iter().find(|l| !plan.layer(**l).planned);
        let hint = match (failing, plan.limits.fix.as_deref()) {
            (Some(crate::config::Layer::Limits), Some(fix)) => fix.to_string(),
            _ => "see `bwai doctor`".to_string(),
        };
        return Err(Error::refused(why).with_hint(hint));
    }

    let mut warnings = plan.warnings();
    warnings.append(&mut started.warnings);
    warnings.extend(policy.notes.iter().cloned());
    warnings.extend(snapshot.uncaptured());
    warnings.extend(enforcement.warnings.iter().cloned());
    warnings.extend(limit_warnings);
    if policy.net == NetMode::Host {
        log::info!("network: sharing the host's network");
    }
    if !opts.quiet {
        eprintln!(
            "{}{}",
            crate::report::start_line(policy, &started.enforced),
            crate::report::limits_segment(&started.limit_plan, enforcement.cgroup.as_ref())
        );
    }
    for w in &warnings {
        eprintln!("bwai: warning: {w}");
    }
    // The proxy serves before the command can make its first request.
    let proxy_addr = started.proxy.as_ref().map(|(_, addr)| addr.clone());
    let proxy = match started.proxy.take() {
        Some((listener, _)) => {
            match crate::net::Proxy::start(listener, policy.net_allow_list.clone()) {
                Ok(p) => Some(p),
                Err(e) => {
                    started.chan.send(ABORT);
                    let _ = waitpid(started.init, None);
                    return Err(Error::refused(format!("starting the network proxy: {e}")));
                }
            }
        }
        None => None,
    };
    leftovers.arm();
    started.chan.send(GO);

    let stdin_tty = stdin_is_tty();
    let deadline = enforcement.deadline(Instant::now());
    let mut timed_out = false;
    let status = match wait_for(started.init, &set, !stdin_tty, deadline) {
        Some(status) => status,
        None => {
            // The time-out: end every process of the sandbox, then reap init.
            timed_out = true;
            let kill_sandbox = |last_resort| {
                limits::kill_sandbox(
                    enforcement.cgroup.as_ref(),
                    started.init,
                    started.enforced.namespaces.is_some(),
                    started.payload.as_ref(),
                    last_resort,
                )
            };
            kill_sandbox(false);
            let grace = Instant::now() + Duration::from_secs(5);
            wait_for(started.init, &set, !stdin_tty, Some(grace)).unwrap_or_else(|| {
                kill_sandbox(true);
                wait_for(started.init, &set, !stdin_tty, None).unwrap_or(125)
            })
        }
    };
    // Read the children's last words: the command's real status.
    let mut signal = None;
    let mut exit_code = status;
    let mut payload_code = None;
    let mut maxrss_kib = None;
    while let Some(line) = started.chan.next_report() {
        let (kind, rest) = line.split_once(' ').unwrap_or((&line, ""));
        match kind {
            "signal" => signal = rest.trim().parse().ok(),
            "exit" => payload_code = rest.trim().parse().ok(),
            "maxrss" => maxrss_kib = rest.trim().parse().ok(),
            "exec-failed" => {
                if let Some((code, msg)) = rest.split_once(' ') {
                    eprintln!("bwai: {msg}");
                    exit_code = code.parse().unwrap_or(127);
                }
            }
            other => log::debug!("late report {other}: {rest}"),
        }
    }
    if stdin_tty {
        reclaim_terminal();
    }
    if timed_out && signal.is_none() {
        // Init went with SIGKILL, and the kernel took the pid namespace
        // (the command with it) the same way.
        signal = Some(libc::SIGKILL);
    }
    let seen = crate::layers::limits::Observed {
        timed_out,
        events: None,
        signal,
        code: payload_code.or((signal.is_none() && !timed_out).then_some(status)),
    };
    let limits = limits::finish(
        enforcement,
        started.limit_plan,
        seen,
        maxrss_kib.or_else(limits::children_maxrss_kib),
    );
    if let Some(line) = crate::report::verdict_line(&limits) {
        eprintln!("{line}");
    }
    if timed_out {
        exit_code = 124;
    }
    drop(started.private_tmp);
    let denials = proxy.map(|p| p.stop()).unwrap_or_default();
    for d in &denials {
        eprintln!("bwai: network: {d}");
    }
    // The sandbox is gone: nothing can race us now. Put back what it changed.
    let events = snapshot.verify_and_restore();
    for e in &events {
        eprintln!("bwai: protected: {e}");
    }
    // Then what it left that would act outside it (after the restore: what
    // is reported is what is still there).
    let left = leftovers.scan();
    for f in &left.findings {
        eprintln!("bwai: left behind: {}", f.line());
    }
    for w in left.warnings {
        eprintln!("bwai: warning: {w}");
        warnings.push(w);
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
        network: Network {
            proxy: proxy_addr,
            denials,
        },
        left_behind: left.findings,
        limits,
    })
}

/// The network mode must hold as asked, or nothing runs.
fn network_refusal(policy: &Policy, enforced: &Enforced) -> Option<String> {
    let tcp = enforced.landlock.as_ref().is_some_and(|o| o.tcp);
    match policy.net {
        NetMode::Host => None,
        _ if enforced.namespaces.is_some() => None,
        // seccomp refuses every internet socket; Landlock TCP is a second wall.
        NetMode::None if enforced.seccomp => None,
        NetMode::Allow if enforced.seccomp && tcp => None,
        mode => Some(format!(
            "the network mode `{}` cannot be enforced without a network namespace here \
             (it needs seccomp{})",
            mode.name(),
            if mode == NetMode::Allow {
                " and Landlock TCP rules, ABI 4 or later"
            } else {
                ""
            }
        )),
    }
}

/// The proxy's plumbing for the `allow` mode: the socket pair init sends
/// the listener over (namespaces), or the listener itself on the host's
/// loopback (fallback), and the port the command is told.
enum ProxyPlumbing {
    None,
    Inside {
        receiver: OwnedFd,
        sender: Option<OwnedFd>,
    },
    Host(TcpListener),
}

impl ProxyPlumbing {
    fn new(policy: &Policy, use_ns: bool) -> Result<Self> {
        if policy.net != NetMode::Allow {
            return Ok(ProxyPlumbing::None);
        }
        if use_ns {
            let (receiver, sender) = handoff::pair().map_err(Error::refused)?;
            return Ok(ProxyPlumbing::Inside {
                receiver,
                sender: Some(sender),
            });
        }
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| Error::refused(format!("listening for the network proxy: {e}")))?;
        Ok(ProxyPlumbing::Host(listener))
    }

    fn port(&self) -> Option<u16> {
        match self {
            ProxyPlumbing::None => None,
            ProxyPlumbing::Inside { .. } => Some(handoff::INSIDE_PORT),
            ProxyPlumbing::Host(l) => l.local_addr().ok().map(|a| a.port()),
        }
    }
}

fn start(
    policy: &Policy,
    caps: &Capabilities,
    plan: &Plan,
    snapshot: &protect::Snapshot,
    enforcement: &limits::Enforcement,
) -> std::result::Result<Started, StartError> {
    let use_ns = plan.namespaces.planned;
    let limit_plan = enforcement.plan(use_ns);
    let private_tmp = if use_ns { None } else { Some(TempDir::new()?) };
    let mut plumbing = ProxyPlumbing::new(policy, use_ns)?;
    let proxy_port = plumbing.port();
    let mut env = policy.env.clone();
    if let Some(t) = &private_tmp {
        env.retain(|(k, _)| k != "TMPDIR");
        env.push(("TMPDIR".into(), t.path.to_string_lossy().into_owned()));
        fallback_caches(&mut env, &t.path);
    }
    if let Some(port) = proxy_port {
        for (k, v) in handoff::proxy_env(port) {
            env.retain(|(name, _)| *name != k);
            env.push((k, v));
        }
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let cstr = |s: &[u8]| {
        CString::new(s).map_err(|_| Error::usage("an argument or variable contains a NUL byte"))
    };
    // What seccomp and Landlock add for a missing namespace (plan.rs).
    let compensation = plan::compensation(
        use_ns,
        policy.net,
        plan.landlock.planned.then_some(caps.landlock_abi),
        policy.allow_host_unix_sockets,
    );
    let launch = Launch {
        policy,
        namespaces: use_ns,
        ns_flags: namespaces::clone_flags(policy.net != NetMode::Host, true),
        landlock: plan.landlock.planned.then(|| {
            let mut rules = landlock::rules(
                policy,
                use_ns,
                private_tmp.as_ref().map(|t| t.path.as_path()),
            );
            rules.resolve_unix = compensation.landlock_resolve_unix;
            if !use_ns {
                rules.connect_tcp_port = proxy_port;
            }
            rules
        }),
        seccomp: if plan.seccomp.planned {
            Some(
                seccomp::build(&policy.seccomp_allow, &compensation.seccomp)
                    .map_err(Error::refused)?,
            )
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
        proxy_sender: match &plumbing {
            ProxyPlumbing::Inside { sender, .. } => sender.as_ref().map(|s| s.as_raw_fd()),
            _ => None,
        },
        proxy_listener: match &plumbing {
            ProxyPlumbing::Host(l) => Some(l.as_raw_fd()),
            _ => None,
        },
        limits: enforcement.limits.clone(),
        limit_plan: limit_plan.clone(),
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
    // Only init holds the sending end from here on.
    if let ProxyPlumbing::Inside { sender, .. } = &mut plumbing {
        sender.take();
    }

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
    }
    // Init forks the command only after this: the whole sandbox is born in
    // its cgroup.
    if let Err(e) = enforcement.place(init) {
        let _ = kill(init, Signal::SIGKILL);
        let _ = waitpid(init, None);
        return Err(e.into());
    }
    chan.send(if use_ns { MAPS_WRITTEN } else { PLACED });

    let mut enforced = Enforced {
        namespaces: ns_detail,
        ..Default::default()
    };
    let mut warnings = compensation.warnings.clone();
    let mut payload = None;
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
            "seccomp" => {
                enforced.seccomp = rest.trim() == "1";
                if enforced.seccomp {
                    enforced.seccomp_extra = compensation.seccomp.describe();
                }
            }
            "nnp" => enforced.no_new_privs = rest.trim() == "1",
            // Pinned now, while it waits for GO: it cannot have exited.
            "pid" if !use_ns => {
                payload = rest
                    .trim()
                    .parse()
                    .ok()
                    .map(|p| limits::PidFd::open(Pid::from_raw(p)))
            }
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
    let proxy = match plumbing {
        ProxyPlumbing::None => None,
        ProxyPlumbing::Inside { receiver, .. } => match handoff::receive(&receiver) {
            Ok(listener) => Some((listener, format!("127.0.0.1:{}", handoff::INSIDE_PORT))),
            Err(e) => {
                let _ = kill(init, Signal::SIGKILL);
                let _ = waitpid(init, None);
                return Err(Error::refused(e).into());
            }
        },
        ProxyPlumbing::Host(listener) => {
            let addr = format!("127.0.0.1:{}", proxy_port.unwrap_or_default());
            Some((listener, addr))
        }
    };
    enforced.net = match (policy.net, use_ns) {
        (NetMode::Host, _) => "host network",
        (NetMode::None, true) => "network namespace",
        (NetMode::Allow, true) => "network namespace, proxy",
        (NetMode::None, false) => "seccomp refuses internet sockets, Landlock TCP",
        (NetMode::Allow, false) => "Landlock TCP to the proxy, seccomp (partial)",
    };
    Ok(Started {
        init,
        chan,
        enforced,
        warnings,
        private_tmp,
        proxy,
        limit_plan,
        payload,
    })
}

fn parse_landlock(text: &str) -> Option<landlock::Outcome> {
    let f: Vec<&str> = text.split_whitespace().collect();
    if f.len() != 6 {
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
        unix: f[5] == "1",
        skipped: Vec::new(),
    })
}

/// Wait for init, relaying signals. Returns bwai's exit code, or None when
/// `deadline` passed first (the time-out).
fn wait_for(
    init: Pid,
    set: &nix::sys::signal::SigSet,
    relay_terminal_signals: bool,
    deadline: Option<Instant>,
) -> Option<i32> {
    loop {
        // A child may have exited before we started waiting: poll first.
        match waitpid(init, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Some(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Some(128 + sig as i32),
            Err(_) => return Some(125),
            _ => {}
        }
        let got = match deadline {
            None => init::wait_signal(set),
            Some(d) => limits::wait_signal_until(set, d).ok()?,
        };
        let Some((sig, from_process)) = got else {
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
        remove_stale(&base);
        // Named after this bwai, so a later run can tell when it is gone.
        let template = base.join(format!("bwai-{}-XXXXXX", std::process::id()));
        let path = nix::unistd::mkdtemp(&template)
            .map_err(|e| Error::sys(format!("mkdtemp {}", template.display()), e))?;
        Ok(TempDir { path })
    }
}

/// Remove the private /tmp of earlier runs whose bwai was killed (SIGKILL
/// leaves no chance to clean up): ours (same owner), a real directory, and
/// its bwai no longer running.
fn remove_stale(base: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let uid = nix::unistd::getuid().as_raw();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("bwai-"))
            .and_then(|rest| rest.rsplit_once('-'))
            .and_then(|(pid, suffix)| (suffix.len() == 6).then_some(pid))
            .and_then(|pid| pid.parse::<i32>().ok())
            .filter(|pid| *pid > 0)
        else {
            continue;
        };
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != uid {
            continue;
        }
        if kill(Pid::from_raw(pid), None) == Err(Errno::ESRCH) {
            log::info!("removing {} (its bwai is gone)", entry.path().display());
            let _ = std::fs::remove_dir_all(entry.path());
        }
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
