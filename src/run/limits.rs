//! The supervisor's side of the resource limits: the sandbox's cgroup, made
//! before the sandbox starts and removed after it; the plan of which
//! mechanism enforces each limit (once we know whether the sandbox got its
//! own user namespace); the wall-clock time-out; and the verdict.

use std::time::{Duration, Instant};

use nix::libc;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Result};
pub use crate::layers::limits::PidFd;
use crate::layers::limits::{self, Cgroup, CgroupEvents, LimitPlan, Limits, Means, Mechanism};
use crate::plan::LayerPlan;

/// The limits of one sandbox and what enforces them beyond rlimits.
pub struct Enforcement {
    pub limits: Limits,
    pub cgroup: Option<Cgroup>,
    /// Why there is no cgroup: none needed, or why none could be made.
    pub cgroup_reason: Option<String>,
    pub warnings: Vec<String>,
}

impl Enforcement {
    /// Make the sandbox cgroup if any limit is asked (it bounds memory and
    /// pids for the sandbox as a whole, counts what tripped, and kills every
    /// process at once). No limit, no cgroup: nothing to pay for.
    /// Single-threaded, like everything before the clone.
    pub fn prepare(limits: &Limits, name_hint: &str) -> Enforcement {
        let mut e = Enforcement {
            limits: limits.clone(),
            cgroup: None,
            cgroup_reason: None,
            warnings: Vec::new(),
        };
        if limits.is_empty() {
            e.cgroup_reason = Some("no limit asked".into());
            return e;
        }
        match Cgroup::create(limits, name_hint) {
            Ok(Some(cg)) => {
                e.warnings.extend(cg.notes().iter().cloned());
                log::info!("sandbox cgroup v{}: {:?}", cg.version(), cg.paths());
                e.cgroup = Some(cg);
            }
            Ok(None) => {
                e.cgroup_reason = Some(
                    limits::cgroup_available()
                        .err()
                        .unwrap_or_else(|| "no cgroup could be made here".into()),
                );
            }
            Err(why) => {
                e.warnings.push(format!(
                    "the sandbox cgroup could not be made ({why}); using rlimits"
                ));
                e.cgroup_reason = Some(why);
            }
        }
        e
    }

    /// Which mechanism enforces each limit, for a sandbox whose payload is
    /// (or not) in a user namespace of its own.
    pub fn plan(&self, own_user_namespace: bool) -> Vec<LimitPlan> {
        limits::plan_with(
            &self.limits,
            Means {
                cgroup: self.cgroup.is_some(),
                // Only `pids` can use it: no uname and getuid otherwise.
                nproc_per_sandbox: self.limits.pids.is_some()
                    && limits::nproc_counts_only_the_sandbox(own_user_namespace),
            },
        )
    }

    /// Put init in the sandbox cgroup before it forks the command, so that
    /// every process of the sandbox is born inside.
    pub fn place(&self, init: Pid) -> Result<()> {
        match &self.cgroup {
            Some(cg) => cg
                .add_pid(init.as_raw())
                .map_err(|e| Error::refused(format!("putting the sandbox in its cgroup: {e}"))),
            None => Ok(()),
        }
    }

    /// The wall-clock deadline, counted from the moment the command starts.
    pub fn deadline(&self, from: Instant) -> Option<Instant> {
        self.limits.timeout.map(|t| from + t)
    }
}

/// What `--require limits` and the warnings say about a plan: a limit no
/// mechanism enforces, and memory bounded only per process.
pub fn judge(plan: &[LimitPlan], cgroup_reason: Option<&str>) -> (LayerPlan, Vec<String>) {
    let mut warnings = Vec::new();
    let mut missing = Vec::new();
    for p in plan {
        let why = p.reason.as_deref().unwrap_or("");
        match p.mechanism {
            Mechanism::None => {
                missing.push(format!("`{}` ({}): {why}", p.limit, p.value));
                warnings.push(format!(
                    "limit `{}` ({}) is not enforced: {why}",
                    p.limit, p.value
                ));
            }
            Mechanism::Rlimit if p.limit == "memory" => warnings.push(format!(
                "limit `memory` ({}) is per process, not for the sandbox: {why}",
                p.value
            )),
            _ => {}
        }
    }
    let fix = match cgroup_reason {
        Some(r) => format!("a sandbox cgroup: {r}"),
        None => "run bwai as root or in a delegated cgroup (systemd-run --user --scope -p Delegate=yes bwai ...)".into(),
    };
    let layer = if missing.is_empty() {
        LayerPlan {
            planned: true,
            reason: None,
            fix: None,
        }
    } else {
        LayerPlan {
            planned: false,
            reason: Some(format!("no mechanism for {}", missing.join("; "))),
            fix: Some(fix),
        }
    };
    (layer, warnings)
}

/// The limits part of a finished run, for the report and the verdict line.
#[derive(Debug, Clone, Default)]
pub struct LimitsOutcome {
    /// Each limit asked and its mechanism.
    pub plan: Vec<LimitPlan>,
    pub cgroup_version: Option<u8>,
    pub cgroup_paths: Vec<String>,
    pub cgroup_reason: Option<String>,
    pub events: Option<CgroupEvents>,
    /// The limit that tripped (see `limits::tripped`).
    pub tripped: Option<&'static str>,
    /// Limits the failed command may have hit without a trace.
    pub suspected: Vec<&'static str>,
    /// Bytes, and what they measure: `sandbox` (cgroup peak) or
    /// `largest_process` (the largest resident set of any reaped process).
    pub peak_memory: Option<(u64, &'static str)>,
}

/// After init is gone: read the counters, judge, and remove the cgroup.
pub fn finish(
    enforcement: Enforcement,
    plan: Vec<LimitPlan>,
    seen: limits::Observed,
    maxrss_kib: Option<u64>,
) -> LimitsOutcome {
    let Enforcement {
        cgroup,
        cgroup_reason,
        ..
    } = enforcement;
    let events = cgroup.as_ref().map(|cg| cg.events());
    let seen = limits::Observed { events, ..seen };
    let peak = cgroup
        .as_ref()
        .and_then(|cg| cg.peak_memory())
        .map(|b| (b, "sandbox"))
        .or_else(|| maxrss_kib.map(|k| (k * 1024, "largest_process")));
    let out = LimitsOutcome {
        tripped: limits::tripped(&plan, &seen),
        suspected: limits::suspected(&plan, &seen),
        cgroup_version: cgroup.as_ref().map(|cg| cg.version()),
        cgroup_paths: cgroup
            .as_ref()
            .map(|cg| cg.paths().iter().map(|p| p.display().to_string()).collect())
            .unwrap_or_default(),
        cgroup_reason,
        events,
        peak_memory: peak,
        plan,
    };
    // Drop kills anything left (nothing should be) and removes the cgroup.
    drop(cgroup);
    out
}

/// The largest resident set of any process this one has reaped, directly or
/// through its children's waits (Linux propagates the maximum up the tree).
pub fn children_maxrss_kib() -> Option<u64> {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is valid for the call.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) } == 0;
    (ok && ru.ru_maxrss > 0).then_some(ru.ru_maxrss as u64)
}

/// End the whole sandbox at the time-out. In namespaces: every process in
/// the cgroup at once, and init (the kernel then kills its pid namespace).
/// Without them: the command only, so that init, the subreaper of everything
/// the command started, stays alive to kill and reap every descendant before
/// it exits (killing init first would hand its orphans to the host's init).
/// `last_resort` (init did not exit in time): everything, init included.
pub fn kill_sandbox(
    cgroup: Option<&Cgroup>,
    init: Pid,
    namespaces: bool,
    payload: Option<&PidFd>,
    last_resort: bool,
) {
    match payload {
        Some(p) if !namespaces && !last_resort => p.kill(),
        _ => {
            if let Some(cg) = cgroup {
                cg.kill_all();
            }
            let _ = kill(init, Signal::SIGKILL);
        }
    }
}

/// Wait for a signal in `set` until `deadline`: `Ok(Some(..))` a signal and
/// whether a process sent it, `Ok(None)` woken early with none, `Err(())`
/// the deadline passed.
pub fn wait_signal_until(
    set: &nix::sys::signal::SigSet,
    deadline: Instant,
) -> std::result::Result<Option<(Signal, bool)>, ()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(());
    }
    let left = left.min(Duration::from_secs(3600));
    let ts = libc::timespec {
        tv_sec: left.as_secs() as libc::time_t,
        tv_nsec: left.subsec_nanos() as libc::c_long,
    };
    match super::init::take_signal(set, Some(&ts)) {
        Some(got) => Ok(Some(got)),
        None if Instant::now() >= deadline => Err(()),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_for(pids_by_nproc: bool, cgroup: bool) -> Vec<LimitPlan> {
        limits::plan_with(
            &Limits {
                memory: Some(64 << 20),
                pids: Some(10),
                ..Limits::default()
            },
            Means {
                cgroup,
                nproc_per_sandbox: pids_by_nproc,
            },
        )
    }

    #[test]
    fn a_limit_without_mechanism_fails_require_limits_and_warns() {
        let (layer, warnings) = judge(&plan_for(false, false), Some("not delegated"));
        assert!(!layer.planned);
        assert!(layer.reason.unwrap().contains("`pids` (10)"));
        assert!(layer.fix.unwrap().contains("not delegated"));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("`memory` (64M) is per process"));
        assert!(warnings[1].contains("`pids` (10) is not enforced"));
    }

    #[test]
    fn every_limit_with_a_mechanism_passes_require_limits() {
        let (layer, warnings) = judge(&plan_for(true, false), None);
        assert!(layer.planned);
        assert_eq!(warnings.len(), 1, "memory per process still warns");
        let (layer, warnings) = judge(&plan_for(false, true), None);
        assert!(layer.planned && warnings.is_empty());
    }
}
