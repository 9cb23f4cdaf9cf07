//! Resource limits for one sandbox: what the user asked for (`Limits`), which
//! mechanism enforces each one (`plan`, pure), and the two effectful edges:
//! rlimits set in the payload just before exec (`apply_rlimits`), and a
//! cgroup the supervisor creates and moves init into (`Cgroup`).
//!
//! The cgroup is the strong mechanism: it bounds the sandbox as a whole (all
//! its processes together), its counters say which limit tripped, and it can
//! kill everything at once. rlimits are the fallback anyone can use, but they
//! bound each process on its own.
//!
//! cgroup v2 is used where it holds the memory and pids controllers. Machines
//! that still mount those controllers in v1 hierarchies ("hybrid" systemd,
//! older distributions, some CI VMs) get one directory per v1 hierarchy, with
//! the same guarantees.

use std::collections::BTreeSet;
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::libc;
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::unistd::{access, AccessFlags};

// ---------------------------------------------------------------- requests

/// What the user asked for (from flags and config). `None` means no limit.
///
/// In the configuration (and `--dump-config`) sizes and durations are
/// written as the flags take them (`"512M"`, `"1h30m"`), counts as numbers,
/// and `null` is no limit (see `form`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Wall clock for the whole sandbox.
    #[serde(default, with = "form::duration")]
    pub timeout: Option<Duration>,
    /// Bytes of memory for the whole sandbox (cgroup) or per process (rlimit).
    #[serde(default, with = "form::size")]
    pub memory: Option<u64>,
    /// Tasks (processes and threads) in the sandbox at once.
    #[serde(default, with = "form::count")]
    pub pids: Option<u64>,
    /// CPU time of each process.
    #[serde(default, with = "form::duration")]
    pub cpu_time: Option<Duration>,
    /// Largest file a process may write, in bytes.
    #[serde(default, with = "form::size")]
    pub file_size: Option<u64>,
    /// Open file descriptors per process.
    #[serde(default, with = "form::count")]
    pub open_files: Option<u64>,
}

impl Limits {
    /// No limit asked at all.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// Each field of `over` that is set replaces ours (flags over config).
    pub fn overridden_by(&self, over: &Limits) -> Limits {
        Limits {
            timeout: over.timeout.or(self.timeout),
            memory: over.memory.or(self.memory),
            pids: over.pids.or(self.pids),
            cpu_time: over.cpu_time.or(self.cpu_time),
            file_size: over.file_size.or(self.file_size),
            open_files: over.open_files.or(self.open_files),
        }
    }

    /// The first limit `after` removes or raises compared with `self`, as
    /// a sentence: what a project's configuration may not do. Pure.
    pub fn loosened_by(&self, after: &Limits) -> Option<String> {
        fn check<T: PartialOrd + Copy>(
            name: &str,
            before: Option<T>,
            after: Option<T>,
            show: impl Fn(T) -> String,
        ) -> Option<String> {
            match (before, after) {
                (Some(b), None) => Some(format!("limits.{name} removes the limit {}", show(b))),
                (Some(b), Some(a)) if a > b => Some(format!(
                    "limits.{name} raises the limit {} to {}",
                    show(b),
                    show(a)
                )),
                _ => None,
            }
        }
        check("timeout", self.timeout, after.timeout, format_duration)
            .or_else(|| check("memory", self.memory, after.memory, format_size))
            .or_else(|| check("pids", self.pids, after.pids, |n| n.to_string()))
            .or_else(|| check("cpu_time", self.cpu_time, after.cpu_time, format_duration))
            .or_else(|| check("file_size", self.file_size, after.file_size, format_size))
            .or_else(|| {
                check("open_files", self.open_files, after.open_files, |n| {
                    n.to_string()
                })
            })
    }
}

/// Parse a size limit (`--memory`, `--file-size`): a size, more than zero.
pub fn parse_size_limit(s: &str) -> Result<u64, String> {
    match parse_size(s)? {
        0 => Err(format!(
            "invalid size {s:?}: a limit of 0 bytes would stop everything"
        )),
        n => Ok(n),
    }
}

/// Parse a count (`--pids`, `--open-files`): a whole number, at least 1.
pub fn parse_count(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err(format!("invalid count {s:?}: must be at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("invalid count {s:?}: not a whole number (e.g. 64)")),
    }
}

/// How limits are written in configuration files: `with = "form::size"` etc.
/// Sizes: `"512M"` or a number of bytes. Durations: `"90s"` or a number of
/// seconds. Counts: a number >= 1. `null`: no limit. Written back in the
/// first form, so a dump reads back to the same limits.
pub mod form {
    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Deserializer, Visitor};
    use serde::Serializer;

    /// A visitor for `null`, a string (parsed by `parse`) or an integer
    /// (turned into the value by `from_int`).
    struct OptVisitor<T> {
        expecting: &'static str,
        parse: fn(&str) -> Result<T, String>,
        from_int: fn(u64) -> Result<T, String>,
    }

    impl<'de, T> Visitor<'de> for OptVisitor<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            (self.parse)(v).map(Some).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            (self.from_int)(v).map(Some).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(E::custom(format!("{v} is negative"))),
            }
        }
    }

    pub mod size {
        use super::*;
        use crate::layers::limits::{format_size, parse_size_limit};

        pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(b) => s.serialize_str(&format_size(*b)),
                None => s.serialize_none(),
            }
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
            d.deserialize_option(OptVisitor {
                expecting: r#"a size like "512M" or a number of bytes, or null"#,
                parse: parse_size_limit,
                from_int: |n| parse_size_limit(&n.to_string()),
            })
        }
    }

    pub mod duration {
        use super::*;
        use crate::layers::limits::{format_duration, parse_duration};

        pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(d) => s.serialize_str(&format_duration(*d)),
                None => s.serialize_none(),
            }
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            d.deserialize_option(OptVisitor {
                expecting: r#"a duration like "90s", "10m", "1h30m" or a number of seconds, or null"#,
                parse: parse_duration,
                from_int: |n| match n {
                    0 => Err("a duration of 0 is never a useful limit".into()),
                    n => Ok(Duration::from_secs(n)),
                },
            })
        }
    }

    pub mod count {
        use super::*;

        pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(n) => s.serialize_u64(*n),
                None => s.serialize_none(),
            }
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
            d.deserialize_option(OptVisitor {
                expecting: "a whole number (at least 1), or null",
                parse: |s| {
                    Err(format!(
                        "{s:?} is a string; write the number without quotes"
                    ))
                },
                from_int: |n| match n {
                    0 => Err("a count of 0 would stop everything; at least 1".into()),
                    n => Ok(n),
                },
            })
        }
    }
}

/// Parse a size: a number of bytes, or a number with a unit.
///
/// Units are binary and case-insensitive: `K`, `M`, `G`, `T` mean 1024,
/// 1024², 1024³, 1024⁴ bytes, and may be spelt `KiB`, `KB`, `k` ... alike
/// (`512M` = `512MiB` = `512MB` = 536870912). Decimals are allowed with a
/// unit (`1.5G`); the result is rounded down to a whole byte.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = |why: &str| format!("invalid size {s:?}: {why} (e.g. 4096, 100k, 512M, 1.5GiB)");
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = (&t[..split], t[split..].trim());
    if number.is_empty() {
        return Err(bad("no number"));
    }
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad(&format!("unknown unit {unit:?}"))),
    };
    let (num, den) = decimal(number).ok_or_else(|| bad("not a number"))?;
    if shift == 0 && den != 1 {
        return Err(bad("a fraction of a byte"));
    }
    let bytes = (num << shift) / den;
    u64::try_from(bytes).map_err(|_| bad("too large"))
}

/// Parse a duration: `90s`, `5m`, `1h30m`, `250ms`, `1.5h`, or a bare number
/// of seconds (`10`). Units: `h`, `m` (minutes), `s`, `ms`, `us`, `ns`. Zero
/// is refused: it is never a useful limit.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("invalid duration {s:?}: {why} (e.g. 10, 90s, 5m, 1h30m, 250ms)");
    let t = s.trim();
    if t.is_empty() {
        return Err(bad("empty"));
    }
    let mut total: u128 = 0; // nanoseconds
    let mut rest = t;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..split];
        rest = &rest[split..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        rest = &rest[unit_len..];
        if number.is_empty() {
            return Err(bad(&format!("unit {unit:?} without a number")));
        }
        let nanos: u128 = match unit {
            // A bare number is seconds, but only on its own: "1h30" is a typo.
            "" if total == 0 && rest.is_empty() => 1_000_000_000,
            "" => return Err(bad(&format!("{number:?} has no unit"))),
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" => 1_000,
            "ns" => 1,
            _ => return Err(bad(&format!("unknown unit {unit:?}"))),
        };
        let (num, den) = decimal(number).ok_or_else(|| bad("not a number"))?;
        total = num
            .checked_mul(nanos)
            .map(|n| n / den)
            .and_then(|n| total.checked_add(n))
            .ok_or_else(|| bad("too long"))?;
    }
    if total == 0 {
        return Err(bad("must be more than zero"));
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| bad("too long"))?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// `"1.25"` -> (125, 100): exact, so `1.5G` is exactly 1.5 GiB.
fn decimal(s: &str) -> Option<(u128, u128)> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') || frac.len() > 9 {
        return None;
    }
    let digits = |d: &str| d.chars().all(|c| c.is_ascii_digit());
    if !digits(int) || !digits(frac) || int.len() > 20 {
        return None;
    }
    let den = 10u128.pow(frac.len() as u32);
    let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    Some((int * den + frac, den))
}

/// The shortest form `parse_size` reads back to the same number.
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes != 0 && bytes % (1u64 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// The form `parse_duration` reads back to the same duration (`1h30m`).
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let mut out = String::new();
    for (n, unit) in [(secs / 3600, "h"), (secs / 60 % 60, "m"), (secs % 60, "s")] {
        if n != 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    let nanos = d.subsec_nanos();
    if nanos % 1_000_000 == 0 && nanos != 0 {
        out.push_str(&format!("{}ms", nanos / 1_000_000));
    } else if nanos % 1_000 == 0 && nanos != 0 {
        out.push_str(&format!("{}us", nanos / 1_000));
    } else if nanos != 0 {
        out.push_str(&format!("{nanos}ns"));
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

// ---------------------------------------------------------------- plan

/// Which mechanism enforces a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// The sandbox's cgroup: all its processes together.
    Cgroup,
    /// setrlimit in the payload: each process on its own.
    Rlimit,
    /// bwai itself, from outside (the wall-clock time-out).
    Supervisor,
    /// Nothing here can enforce it; `reason` says why.
    None,
}

/// How one requested limit will be enforced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LimitPlan {
    /// The `Limits` field: `timeout`, `memory`, `pids`, `cpu_time`, `file_size`, `open_files`.
    pub limit: &'static str,
    /// The requested value, in the form the flags accept (`512M`, `1h30m`, `64`).
    pub value: String,
    pub mechanism: Mechanism,
    /// What the mechanism really bounds where that differs from the request,
    /// or why nothing enforces it.
    pub reason: Option<String>,
}

/// What the sandbox offers beyond rlimits (which are always there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Means {
    /// `Cgroup::create` returned a cgroup (it holds memory and pids when asked).
    pub cgroup: bool,
    /// RLIMIT_NPROC would count only the sandbox's own processes: see
    /// `nproc_counts_only_the_sandbox`.
    pub nproc_per_sandbox: bool,
}

/// Decide the mechanism of each requested limit, given only whether a
/// sandbox cgroup exists. Same as `plan_with` without the user-namespace
/// RLIMIT_NPROC, so `pids` without a cgroup is `None` here.
pub fn plan(limits: &Limits, cgroup: bool) -> Vec<LimitPlan> {
    plan_with(
        limits,
        Means {
            cgroup,
            nproc_per_sandbox: false,
        },
    )
}

/// Decide the mechanism of each requested limit. Pure; the order is the
/// order of the `Limits` fields, and limits not asked for are left out.
pub fn plan_with(limits: &Limits, means: Means) -> Vec<LimitPlan> {
    let mut out = Vec::new();
    let mut add = |limit, value: String, mechanism, reason: Option<&str>| {
        out.push(LimitPlan {
            limit,
            value,
            mechanism,
            reason: reason.map(str::to_string),
        })
    };
    if let Some(t) = limits.timeout {
        add("timeout", format_duration(t), Mechanism::Supervisor, None);
    }
    if let Some(m) = limits.memory {
        if means.cgroup {
            add("memory", format_size(m), Mechanism::Cgroup, None);
        } else {
            add(
                "memory",
                format_size(m),
                Mechanism::Rlimit,
                Some(
                    "no cgroup: RLIMIT_AS bounds the address space of each process, not the \
                     sandbox's memory; N processes may use N times the limit, and runtimes that \
                     reserve large address ranges (JVM, Go, Node, sanitizers) may fail to start",
                ),
            );
        }
    }
    if let Some(p) = limits.pids {
        if means.cgroup {
            add(
                "pids",
                p.to_string(),
                Mechanism::Cgroup,
                Some("pids.max counts threads as well as processes"),
            );
        } else if means.nproc_per_sandbox {
            add(
                "pids",
                p.to_string(),
                Mechanism::Rlimit,
                Some(
                    "no cgroup: RLIMIT_NPROC inside the sandbox's own user namespace, where the \
                     kernel (5.14+) counts only that namespace's tasks (threads included)",
                ),
            );
        } else {
            add(
                "pids",
                p.to_string(),
                Mechanism::None,
                Some(
                    "no cgroup, and RLIMIT_NPROC would count every process of the user, not the \
                     sandbox's (it counts per sandbox only inside a user namespace of its own, \
                     for a non-root user, on kernel 5.14+)",
                ),
            );
        }
    }
    if let Some(c) = limits.cpu_time {
        let secs = cpu_seconds(c);
        let rounded = Duration::from_secs(secs) != c;
        let reason = format!(
            "RLIMIT_CPU counts each process on its own (N processes may use N times the \
             limit){}; SIGXCPU at the limit, SIGKILL one second later",
            if rounded {
                format!("; rounded up to {secs}s")
            } else {
                String::new()
            }
        );
        add(
            "cpu_time",
            format_duration(c),
            Mechanism::Rlimit,
            Some(&reason),
        );
    }
    if let Some(f) = limits.file_size {
        add(
            "file_size",
            format_size(f),
            Mechanism::Rlimit,
            Some("RLIMIT_FSIZE bounds each file written; a write past it raises SIGXFSZ"),
        );
    }
    if let Some(n) = limits.open_files {
        add("open_files", n.to_string(), Mechanism::Rlimit, None);
    }
    out
}

/// RLIMIT_CPU is in whole seconds; round up so the limit is never stricter
/// than asked by more than a second, and never zero (0 would kill at once).
fn cpu_seconds(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

/// Whether RLIMIT_NPROC set in the payload would count only the sandbox's
/// processes. Since 5.14 the kernel counts RLIMIT_NPROC per (user namespace,
/// uid) and checks each level up the chain, so inside a user namespace of its
/// own the count is the sandbox's tasks; the host-level count stays bounded by
/// the caller's own limit. Host root (real uid 0) is exempt from RLIMIT_NPROC
/// altogether, so it never works for root.
pub fn nproc_counts_only_the_sandbox(payload_in_own_user_namespace: bool) -> bool {
    payload_in_own_user_namespace
        && !nix::unistd::getuid().is_root()
        && nix::sys::utsname::uname()
            .ok()
            .is_some_and(|u| kernel_at_least(&u.release().to_string_lossy(), 5, 14))
}

/// `"6.18.44-fc"` >= 5.14?
fn kernel_at_least(release: &str, major: u32, minor: u32) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

// ---------------------------------------------------------------- verdict

/// What the supervisor saw of a finished sandbox, for the verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observed {
    /// The wall-clock time-out fired and bwai killed the sandbox.
    pub timed_out: bool,
    /// The sandbox cgroup's counters, when there was one.
    pub events: Option<CgroupEvents>,
    /// The signal that killed the command, if one did.
    pub signal: Option<i32>,
    /// The command's exit code, if it exited (a shell reports a child
    /// killed by signal N as 128+N).
    pub code: Option<i32>,
}

impl Observed {
    fn failed(&self) -> bool {
        self.signal.is_some() || self.code.is_some_and(|c| c != 0) || self.timed_out
    }

    /// Killed by `sig`, or a shell said one of its children was.
    fn by(&self, sig: i32) -> bool {
        self.signal == Some(sig) || self.code == Some(128 + sig)
    }
}

/// The limit that tripped, by evidence only: the time-out bwai fired, the
/// cgroup's OOM-kill and fork-refusal counters, and the signals the kernel
/// sends at an rlimit (SIGXCPU, SIGXFSZ). Pure. Precedence when several
/// show: timeout, memory, cpu_time, file_size, pids (the first is the one
/// that ended the run; refused forks are often a consequence).
pub fn tripped(plan: &[LimitPlan], seen: &Observed) -> Option<&'static str> {
    let by = |limit: &str, mechanism: Option<Mechanism>| {
        plan.iter()
            .any(|p| p.limit == limit && mechanism.map_or(true, |m| p.mechanism == m))
    };
    let events = seen.events.unwrap_or_default();
    if seen.timed_out && by("timeout", None) {
        return Some("timeout");
    }
    if by("memory", Some(Mechanism::Cgroup))
        && (events.oom_kill > 0 || (events.memory_max > 0 && seen.signal == Some(libc::SIGKILL)))
    {
        return Some("memory");
    }
    if by("cpu_time", None) && seen.by(libc::SIGXCPU) {
        return Some("cpu_time");
    }
    if by("file_size", None) && seen.by(libc::SIGXFSZ) {
        return Some("file_size");
    }
    if by("pids", Some(Mechanism::Cgroup)) && events.pids_max > 0 {
        return Some("pids");
    }
    None
}

/// Limits the command may have hit without leaving evidence bwai can see,
/// when it failed and `tripped` found nothing: an rlimit makes the kernel
/// refuse an allocation (RLIMIT_AS), a fork (RLIMIT_NPROC), an open
/// (RLIMIT_NOFILE) or a write (RLIMIT_FSIZE with SIGXFSZ ignored) inside
/// the command, which decides itself what to do about it; RLIMIT_CPU's
/// hard limit kills with a plain SIGKILL. Pure.
pub fn suspected(plan: &[LimitPlan], seen: &Observed) -> Vec<&'static str> {
    if !seen.failed() || tripped(plan, seen).is_some() {
        return Vec::new();
    }
    plan.iter()
        .filter(|p| p.mechanism == Mechanism::Rlimit)
        .filter(|p| p.limit != "cpu_time" || seen.signal == Some(libc::SIGKILL))
        .map(|p| p.limit)
        .collect()
}

// ---------------------------------------------------------------- rlimits

/// Apply the rlimits of the plan in the calling process (the payload, just
/// before exec; children inherit them). Soft = hard, so the command cannot
/// raise them again; the one exception is RLIMIT_CPU, whose hard limit is one
/// second above the soft one: the kernel sends SIGKILL (not SIGXCPU) when soft
/// = hard, and SIGXCPU is what tells the report "cpu time limit".
pub fn apply_rlimits(limits: &Limits, plan: &[LimitPlan]) -> Result<(), String> {
    for p in plan.iter().filter(|p| p.mechanism == Mechanism::Rlimit) {
        let missing = || {
            format!(
                "the plan has an rlimit for {} but no value was asked",
                p.limit
            )
        };
        let (resource, name, soft, hard) = match p.limit {
            "memory" => {
                let v = limits.memory.ok_or_else(missing)?;
                (Resource::RLIMIT_AS, "RLIMIT_AS", v, v)
            }
            "pids" => {
                let v = limits.pids.ok_or_else(missing)?;
                (Resource::RLIMIT_NPROC, "RLIMIT_NPROC", v, v)
            }
            "cpu_time" => {
                let secs = cpu_seconds(limits.cpu_time.ok_or_else(missing)?);
                let (_, cur_hard) = getrlimit(Resource::RLIMIT_CPU)
                    .map_err(|e| format!("getrlimit(RLIMIT_CPU): {e}"))?;
                // The extra second only where the current hard limit allows it.
                let hard = secs.saturating_add(1).min(cur_hard).max(secs);
                (Resource::RLIMIT_CPU, "RLIMIT_CPU", secs, hard)
            }
            "file_size" => {
                let v = limits.file_size.ok_or_else(missing)?;
                (Resource::RLIMIT_FSIZE, "RLIMIT_FSIZE", v, v)
            }
            "open_files" => {
                let v = limits.open_files.ok_or_else(missing)?;
                (Resource::RLIMIT_NOFILE, "RLIMIT_NOFILE", v, v)
            }
            other => return Err(format!("no rlimit enforces the limit {other:?}")),
        };
        setrlimit(resource, soft, hard).map_err(|e| {
            let cur = getrlimit(resource)
                .map(|(_, h)| format!("; this process's hard limit is {h}"))
                .unwrap_or_default();
            format!(
                "setrlimit({name}, {soft}) for {} = {}: {e}{cur} (a hard limit can only be \
                 lowered without privilege: ask for at most that)",
                p.limit, p.value
            )
        })?;
    }
    Ok(())
}

// ---------------------------------------------------------------- cgroup

/// Counters that tell which cgroup limit tripped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CgroupEvents {
    /// Processes the OOM killer killed because of the memory limit.
    pub oom_kill: u64,
    /// Forks refused because of the pids limit.
    pub pids_max: u64,
    /// Times the memory limit was hit (v2 memory.events `max`, v1
    /// memory.failcnt + memory.memsw.failcnt): reclaim, and an OOM kill if
    /// that was not enough.
    pub memory_max: u64,
}

/// A cgroup holding one sandbox. The supervisor creates it before the command
/// runs, moves init into it (children follow), reads its counters afterwards,
/// and dropping it kills whatever is left and removes it.
#[derive(Debug)]
pub struct Cgroup {
    version: u8,
    /// v2: one directory. v1: one per hierarchy, memory first.
    dirs: Vec<Dir>,
    notes: Vec<String>,
}

#[derive(Debug)]
struct Dir {
    path: PathBuf,
    /// The controllers whose files live here.
    controllers: Vec<&'static str>,
}

/// The name of the leaf bwai moves itself into when its own v2 cgroup must
/// stop holding processes (as systemd-run and podman do).
const SUPERVISOR_LEAF: &str = "bwai-supervisor";

/// Controllers a sandbox cgroup gets whenever they are available (on v1,
/// the hierarchies it is made in): memory gives the peak and OOM counts,
/// pids the fork-bomb bound.
const WANTED: [&str; 2] = ["memory", "pids"];

static SEQUENCE: AtomicU32 = AtomicU32::new(0);

impl Cgroup {
    /// Create the sandbox cgroup with the cgroup limits of `limits` set
    /// (memory.max with swap off, so the limit really bounds; pids.max).
    ///
    /// `Ok(None)`: no cgroup can be created here (not mounted, not writable,
    /// controllers missing); `cgroup_available` says why. `Err`: it looked
    /// possible but a step failed; nothing is left behind.
    pub fn create(limits: &Limits, name_hint: &str) -> Result<Option<Cgroup>, String> {
        let needed = needed_controllers(limits);
        let found = match locate(&needed) {
            Ok(f) => f,
            Err(why) => {
                log::debug!("no sandbox cgroup: {why}");
                return Ok(None);
            }
        };
        let name = sandbox_name(name_hint);
        let mut cg = match found {
            Found::V2(state) => create_v2(&state, &name)?,
            Found::V1(parents) => create_v1(&parents, &name)?,
        };
        // From here on, Drop removes the directories if a step fails.
        cg.set_limits(limits)?;
        Ok(Some(cg))
    }

    /// The sandbox's cgroup directory (v1: the memory one if any).
    pub fn path(&self) -> &Path {
        &self.dirs[0].path
    }

    /// Every directory of this cgroup: one on v2, one per hierarchy on v1.
    pub fn paths(&self) -> Vec<&Path> {
        self.dirs.iter().map(|d| d.path.as_path()).collect()
    }

    /// 2 or 1, for the report.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// What this cgroup does not bound that a reader would assume (e.g. swap).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Move a process (all its threads) into the sandbox; its later children
    /// are born inside. Children it already has stay where they are.
    pub fn add_pid(&self, pid: i32) -> Result<(), String> {
        for d in &self.dirs {
            write_file(&d.path.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Counters that tell which limit tripped; 0 where unknown.
    pub fn events(&self) -> CgroupEvents {
        let (oom_file, pids_file) = match self.version {
            2 => ("memory.events", "pids.events"),
            _ => ("memory.oom_control", "pids.events"),
        };
        CgroupEvents {
            oom_kill: self
                .file("memory", oom_file)
                .and_then(|f| read_keyed(&f, "oom_kill"))
                .unwrap_or(0),
            pids_max: self
                .file("pids", pids_file)
                .and_then(|f| read_keyed(&f, "max"))
                .unwrap_or(0),
            memory_max: match self.version {
                2 => self
                    .file("memory", "memory.events")
                    .and_then(|f| read_keyed(&f, "max")),
                // With memsw set to the same limit, memsw is hit first.
                _ => ["memory.failcnt", "memory.memsw.failcnt"]
                    .iter()
                    .filter_map(|n| read_number(&self.file("memory", n)?))
                    .reduce(|a, b| a + b),
            }
            .unwrap_or(0),
        }
    }

    /// The most memory the sandbox used at once (v2: memory.peak, kernel
    /// 5.19+; v1: memory.max_usage_in_bytes).
    pub fn peak_memory(&self) -> Option<u64> {
        let name = match self.version {
            2 => "memory.peak",
            _ => "memory.max_usage_in_bytes",
        };
        read_number(&self.file("memory", name)?)
    }

    /// Kill every process in it and wait (at most 2 s) until it is empty.
    /// Uses cgroup.kill where the kernel has it (5.14+, v2), which cannot be
    /// outrun by a fork bomb; else SIGKILL each member until none is left.
    pub fn kill_all(&self) {
        if self.version == 2 {
            let kill = self.dirs[0].path.join("cgroup.kill");
            if kill.exists() {
                if let Err(e) = write_file(&kill, "1") {
                    log::warn!("{e}");
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let before = self.members();
            if before.is_empty() {
                return;
            }
            kill_members(&before, || self.members());
            if Instant::now() > deadline {
                log::warn!(
                    "cgroup {} still holds {:?} after SIGKILL",
                    self.path().display(),
                    self.members()
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The processes in the sandbox now (zombies are not listed).
    fn members(&self) -> BTreeSet<i32> {
        let mut all = BTreeSet::new();
        for d in &self.dirs {
            if let Ok(text) = fs::read_to_string(d.path.join("cgroup.procs")) {
                all.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
        }
        all
    }

    /// The file `name` of `controller` (v1: in that controller's hierarchy).
    fn file(&self, controller: &str, name: &str) -> Option<PathBuf> {
        let dir = self
            .dirs
            .iter()
            .find(|d| d.controllers.contains(&controller))?;
        Some(dir.path.join(name))
    }

    fn set_limits(&mut self, limits: &Limits) -> Result<(), String> {
        let v2 = self.version == 2;
        if let Some(bytes) = limits.memory {
            let (max, swap) = if v2 {
                ("memory.max", "memory.swap.max")
            } else {
                ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
            };
            let max = self.file("memory", max).ok_or("no memory controller")?;
            write_file(&max, &bytes.to_string())?;
            // Without this, the memory over the limit would go to swap and the
            // limit would bound nothing but speed. v1's memsw is memory+swap.
            let swap = self.file("memory", swap).filter(|p| p.exists());
            match swap {
                Some(swap) => {
                    let total = if v2 {
                        "0".to_string()
                    } else {
                        bytes.to_string()
                    };
                    write_file(&swap, &total)?
                }
                None if swap_in_use() => self.notes.push(
                    "swap is not accounted by this kernel's memory cgroup: the sandbox may \
                     use swap beyond the memory limit"
                        .into(),
                ),
                None => {}
            }
        }
        if let Some(n) = limits.pids {
            let max = self.file("pids", "pids.max").ok_or("no pids controller")?;
            write_file(&max, &n.to_string())?;
        }
        Ok(())
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.kill_all();
        // A killed process leaves the cgroup when it is gone, not when the
        // signal is sent; rmdir fails with EBUSY until then.
        let deadline = Instant::now() + Duration::from_secs(5);
        for d in self.dirs.iter().rev() {
            loop {
                match fs::remove_dir(&d.path) {
                    Ok(()) => break,
                    Err(e) if e.kind() == ErrorKind::NotFound => break,
                    Err(e) if Instant::now() > deadline => {
                        log::warn!("removing cgroup {}: {e}", d.path.display());
                        break;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
    }
}

/// Whether this process could create a sandbox cgroup with the memory and
/// pids controllers here, and why not (for `bwai doctor`). No side effects.
pub fn cgroup_available() -> Result<(), String> {
    locate(&["memory", "pids"]).map(|_| ())
}

fn needed_controllers(limits: &Limits) -> Vec<&'static str> {
    let mut needed = Vec::new();
    if limits.memory.is_some() {
        needed.push("memory");
    }
    if limits.pids.is_some() {
        needed.push("pids");
    }
    needed
}

/// `bwai-<hint>-<pid>-<n>`: unique per process and per sandbox, and says
/// whose it is to anyone listing the cgroup tree.
fn sandbox_name(hint: &str) -> String {
    let hint: String = hint
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    let hint = if hint.is_empty() {
        "sandbox".into()
    } else {
        hint
    };
    format!(
        "bwai-{hint}-{}-{}",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )
}

// ------------------------------------------------ cgroup: where, and how

/// A line of /proc/self/mountinfo, the fields that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    root: String,
    point: PathBuf,
    fstype: String,
    super_options: Vec<String>,
}

/// A line of /proc/self/cgroup: `4:memory:/a/b`, or `0::/a/b` for v2.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Membership {
    id: u32,
    controllers: Vec<String>,
    path: String,
}

fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            Some(Mount {
                root: unescape(left.get(3)?),
                point: PathBuf::from(unescape(left.get(4)?)),
                fstype: right.next()?.to_string(),
                super_options: right
                    .nth(1)
                    .unwrap_or("")
                    .split(',')
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|o| o.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(o)) => {
                out.push((o[0] - b'0') * 64 + (o[1] - b'0') * 8 + (o[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_proc_cgroup(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let id = parts.next()?.parse().ok()?;
            let controllers = parts
                .next()?
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            Some(Membership {
                id,
                controllers,
                path: parts.next()?.to_string(),
            })
        })
        .collect()
}

/// The directory of cgroup `path` in `mount`, if this mount shows it. A path
/// starting with `/..` lies outside our cgroup namespace: not reachable.
fn resolve(mount: &Mount, path: &str) -> Option<PathBuf> {
    if path.starts_with("/..") {
        return None;
    }
    let rel = if mount.root == "/" {
        path.trim_start_matches('/')
    } else {
        let rest = path.strip_prefix(mount.root.as_str())?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        rest.trim_start_matches('/')
    };
    Some(if rel.is_empty() {
        mount.point.clone()
    } else {
        mount.point.join(rel)
    })
}

/// What a v2 placement decision needs to know, read from the cgroup files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct V2State {
    /// Our own cgroup's directory.
    own: PathBuf,
    /// The real root cgroup (no cgroup.type): exempt from the rule that a
    /// cgroup with controllers enabled for its children holds no processes.
    own_is_root: bool,
    /// Controllers our parent lets us use (own cgroup.controllers).
    available: Vec<String>,
    /// Controllers already enabled for our children (own subtree_control).
    own_enabled: Vec<String>,
    /// We may create children and move processes here.
    own_writable: bool,
    /// Nobody but this process is in our cgroup (so moving it out empties it).
    only_us: bool,
    /// Our cgroup is the leaf bwai moved itself into on an earlier create.
    own_is_supervisor_leaf: bool,
    /// Our parent cgroup, if it is in reach.
    parent: Option<V2Parent>,
    /// Controllers the sandbox cgroup will get.
    enable: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct V2Parent {
    dir: PathBuf,
    enabled: Vec<String>,
    writable: bool,
}

/// Where to put the sandbox cgroup, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    /// A child of our own cgroup: it is the root, or already delegates the
    /// controllers, or none are needed.
    InOwn,
    /// Move bwai into `<own>/bwai-supervisor`, then enable the controllers in
    /// our (now empty) cgroup and create the sandbox next to that leaf.
    MoveIntoLeaf,
    /// A sibling of our cgroup, under our parent, which already delegates the
    /// controllers. Outside our cgroup's own limits, inside the parent's.
    Sibling,
}

/// Pure: the strategies worth trying for this state, best first, or why none.
fn v2_strategies(s: &V2State) -> Result<Vec<Strategy>, String> {
    let has_all = |have: &[String]| s.enable.iter().all(|c| have.contains(c));
    let parent_ok = s
        .parent
        .as_ref()
        .is_some_and(|p| p.writable && has_all(&p.enabled));
    let mut out = Vec::new();
    // Already moved into our leaf by an earlier sandbox: make siblings of it.
    if s.own_is_supervisor_leaf && parent_ok {
        out.push(Strategy::Sibling);
    }
    if s.own_writable && (s.own_is_root || has_all(&s.own_enabled)) {
        out.push(Strategy::InOwn);
    }
    if s.own_writable && s.only_us && !s.own_is_root && !s.own_is_supervisor_leaf {
        out.push(Strategy::MoveIntoLeaf);
    }
    if parent_ok && !out.contains(&Strategy::Sibling) {
        out.push(Strategy::Sibling);
    }
    if out.is_empty() {
        let uid = nix::unistd::getuid();
        return Err(if !s.own_writable {
            format!(
                "cgroup v2: {} is not writable by uid {uid} (not delegated); run bwai as root, \
                 or in a delegated cgroup: systemd-run --user --scope -p Delegate=yes bwai ...",
                s.own.display()
            )
        } else {
            format!(
                "cgroup v2: {} holds other processes, so it cannot delegate the {} \
                 controller(s) (cgroup v2 allows processes only in leaves), and its parent \
                 does not delegate them to uid {uid}; run bwai in a cgroup of its own: \
                 systemd-run --user --scope -p Delegate=yes bwai ...",
                s.own.display(),
                s.enable.join(" and ")
            )
        });
    }
    Ok(out)
}

enum Found {
    V2(V2State),
    /// The parent directory in each v1 hierarchy, with its controllers.
    V1(Vec<(PathBuf, Vec<&'static str>)>),
}

/// Find where a sandbox cgroup can go, without changing anything. Uses the
/// hierarchy that holds the controllers: v2 when it has memory or pids,
/// else the v1 hierarchies, else v2 without controllers (still good for
/// tracking and killing the sandbox's processes).
fn locate(needed: &[&'static str]) -> Result<Found, String> {
    let mounts = fs::read_to_string("/proc/self/mountinfo")
        .map(|t| parse_mountinfo(&t))
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    let member = fs::read_to_string("/proc/self/cgroup")
        .map(|t| parse_proc_cgroup(&t))
        .map_err(|e| format!("reading /proc/self/cgroup: {e}"))?;

    let v2_dir = member
        .iter()
        .find(|m| m.id == 0 && m.controllers.is_empty())
        .and_then(|m| {
            mounts
                .iter()
                .filter(|mnt| mnt.fstype == "cgroup2")
                .find_map(|mnt| resolve(mnt, &m.path))
        });
    let v2_available = v2_dir
        .as_ref()
        .map(|d| read_words(&d.join("cgroup.controllers")))
        .unwrap_or_default();
    let v1_dirs: Vec<(PathBuf, Vec<&'static str>)> = {
        let mut dirs: Vec<(PathBuf, Vec<&'static str>)> = Vec::new();
        for c in WANTED {
            let dir = member
                .iter()
                .find(|m| m.id != 0 && m.controllers.iter().any(|x| x == c))
                .and_then(|m| {
                    mounts
                        .iter()
                        .filter(|mnt| {
                            mnt.fstype == "cgroup" && mnt.super_options.iter().any(|o| o == c)
                        })
                        .find_map(|mnt| resolve(mnt, &m.path))
                });
            let Some(dir) = dir else { continue };
            // Co-mounted controllers (cpu,cpuacct) share one directory.
            match dirs.iter_mut().find(|(p, _)| *p == dir) {
                Some((_, cs)) => cs.push(c),
                None => dirs.push((dir, vec![c])),
            }
        }
        dirs
    };

    let v2_has_controllers = WANTED.iter().any(|c| v2_available.iter().any(|a| a == c));
    let v1_has_controllers = v1_dirs
        .iter()
        .any(|(_, cs)| cs.iter().any(|c| WANTED.contains(c)));
    match v2_dir {
        Some(own) if v2_has_controllers || !v1_has_controllers => {
            if let Some(c) = needed
                .iter()
                .find(|c| !v2_available.iter().any(|a| a == *c))
            {
                return Err(format!(
                    "cgroup v2: the {c} controller is not available in {} (cgroup.controllers: \
                     {:?}); it is not delegated to this cgroup",
                    own.display(),
                    v2_available.join(" ")
                ));
            }
            let state = v2_state(own, v2_available);
            v2_strategies(&state)?;
            Ok(Found::V2(state))
        }
        _ if v1_has_controllers => {
            let hybrid = v2_dir
                .map(|d| {
                    format!(
                        " (the cgroup v2 mount at {} holds no controllers)",
                        d.display()
                    )
                })
                .unwrap_or_default();
            for c in needed {
                if !v1_dirs.iter().any(|(_, cs)| cs.contains(c)) {
                    return Err(format!("cgroup v1{hybrid}: no {c} hierarchy is mounted"));
                }
            }
            let uid = nix::unistd::getuid();
            let mut usable = Vec::new();
            for (dir, cs) in v1_dirs {
                if writable(&dir) {
                    usable.push((dir, cs));
                } else if cs.iter().any(|c| needed.contains(c) || WANTED.contains(c)) {
                    return Err(format!(
                        "cgroup v1{hybrid}: {} is not writable by uid {uid} (only root can \
                         create cgroups here)",
                        dir.display()
                    ));
                }
            }
            Ok(Found::V1(usable))
        }
        _ => Err(
            "no cgroup filesystem is mounted (neither cgroup2 nor a v1 memory or pids \
                  hierarchy in /proc/self/mountinfo)"
                .into(),
        ),
    }
}

fn v2_state(own: PathBuf, available: Vec<String>) -> V2State {
    let pid = std::process::id().to_string();
    let procs = fs::read_to_string(own.join("cgroup.procs")).unwrap_or_default();
    let own_is_root = !own.join("cgroup.type").exists();
    let parent = (!own_is_root)
        .then(|| own.parent().map(Path::to_path_buf))
        .flatten()
        .map(|dir| V2Parent {
            enabled: read_words(&dir.join("cgroup.subtree_control")),
            writable: writable(&dir),
            dir,
        });
    V2State {
        own_enabled: read_words(&own.join("cgroup.subtree_control")),
        own_writable: writable(&own),
        only_us: procs.lines().map(str::trim).eq([pid.as_str()]),
        own_is_supervisor_leaf: own.file_name().is_some_and(|n| n == SUPERVISOR_LEAF),
        enable: WANTED
            .iter()
            .filter(|c| available.iter().any(|a| a == *c))
            .map(|c| c.to_string())
            .collect(),
        own_is_root,
        available,
        parent,
        own,
    }
}

/// We may create a child here and move processes in and out.
fn writable(dir: &Path) -> bool {
    access(dir, AccessFlags::W_OK).is_ok()
        && access(&dir.join("cgroup.procs"), AccessFlags::W_OK).is_ok()
}

fn create_v2(s: &V2State, name: &str) -> Result<Cgroup, String> {
    let mut failures = Vec::new();
    for strategy in v2_strategies(s)? {
        match place_v2(s, strategy) {
            Ok(parent) => {
                let path = mkdir_cgroup(&parent, name)?;
                let controllers = s
                    .enable
                    .iter()
                    .filter_map(|c| WANTED.iter().copied().find(|w| w == c))
                    .collect();
                return Ok(Cgroup {
                    version: 2,
                    dirs: vec![Dir { path, controllers }],
                    notes: Vec::new(),
                });
            }
            Err(e) => failures.push(format!("{strategy:?}: {e}")),
        }
    }
    Err(format!(
        "cgroup v2: no placement worked ({})",
        failures.join("; ")
    ))
}

/// Prepare the parent of the sandbox cgroup for `strategy`; returns it.
fn place_v2(s: &V2State, strategy: Strategy) -> Result<PathBuf, String> {
    let enable_in = |dir: &Path, enabled: &[String]| -> Result<(), String> {
        let missing: Vec<String> = s
            .enable
            .iter()
            .filter(|c| !enabled.contains(c))
            .map(|c| format!("+{c}"))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        write_file(&dir.join("cgroup.subtree_control"), &missing.join(" "))
    };
    match strategy {
        Strategy::InOwn => {
            enable_in(&s.own, &s.own_enabled)?;
            Ok(s.own.clone())
        }
        Strategy::Sibling => {
            let p = s.parent.as_ref().ok_or("no parent cgroup")?;
            enable_in(&p.dir, &p.enabled)?;
            Ok(p.dir.clone())
        }
        Strategy::MoveIntoLeaf => {
            let leaf = s.own.join(SUPERVISOR_LEAF);
            match fs::create_dir(&leaf) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(format!("creating {}: {e}", leaf.display())),
            }
            let pid = std::process::id().to_string();
            let moved = write_file(&leaf.join("cgroup.procs"), &pid)
                .and_then(|()| enable_in(&s.own, &s.own_enabled));
            if let Err(e) = moved {
                // Put things back as they were: bwai where it was, no leaf.
                let _ = write_file(&s.own.join("cgroup.procs"), &pid);
                let _ = fs::remove_dir(&leaf);
                return Err(e);
            }
            log::info!("moved bwai into {} to delegate controllers", leaf.display());
            Ok(s.own.clone())
        }
    }
}

fn create_v1(parents: &[(PathBuf, Vec<&'static str>)], name: &str) -> Result<Cgroup, String> {
    let mut cg = Cgroup {
        version: 1,
        dirs: Vec::new(),
        notes: Vec::new(),
    };
    for (parent, controllers) in parents {
        // On failure `cg` is dropped and removes the directories made so far.
        let path = mkdir_cgroup(parent, name)?;
        cg.dirs.push(Dir {
            path,
            controllers: controllers.clone(),
        });
    }
    if cg.dirs.is_empty() {
        return Err("cgroup v1: no writable hierarchy".into());
    }
    Ok(cg)
}

fn mkdir_cgroup(parent: &Path, name: &str) -> Result<PathBuf, String> {
    remove_stale(parent);
    let path = parent.join(name);
    fs::create_dir(&path).map_err(|e| format!("creating cgroup {}: {e}", path.display()))?;
    Ok(path)
}

/// Remove the sandbox cgroups a killed bwai left here (SIGKILL gives it no
/// chance to clean up; its sandbox dies with it, so they are empty): named
/// by bwai (`bwai-<hint>-<pid>-<n>`), that bwai no longer running, and no
/// process inside. Best effort: a reused pid only delays the removal.
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(stale_owner) else {
            continue;
        };
        if pid == std::process::id() || process_exists(pid) {
            continue;
        }
        let path = entry.path();
        let empty =
            fs::read_to_string(path.join("cgroup.procs")).is_ok_and(|t| t.trim().is_empty());
        if empty && fs::remove_dir(&path).is_ok() {
            log::info!("removed the stale sandbox cgroup {}", path.display());
        }
    }
}

/// The pid in a sandbox cgroup's name (`bwai-<hint>-<pid>-<n>`), if it is one.
fn stale_owner(name: &str) -> Option<u32> {
    let mut parts = name.strip_prefix("bwai-")?.rsplitn(3, '-');
    let (n, pid, hint) = (parts.next()?, parts.next()?, parts.next()?);
    (!hint.is_empty() && n.parse::<u32>().is_ok())
        .then(|| pid.parse().ok())
        .flatten()
}

fn process_exists(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // EPERM: it exists, as another user's.
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// SIGKILL each of `pids`, without the pid-reuse race of plain kill(): a pid
/// read from cgroup.procs may exit and be reused by an unrelated process
/// before the signal. A pidfd pins the process; a pid still listed after its
/// pidfd was opened is, while that process lives, the same process.
fn kill_members(pids: &BTreeSet<i32>, members: impl Fn() -> BTreeSet<i32>) {
    let pinned: Vec<PidFd> = pids
        .iter()
        .take(512)
        .map(|&pid| PidFd::open(nix::unistd::Pid::from_raw(pid)))
        .collect();
    let still = members();
    for p in pinned {
        if still.contains(&p.pid.as_raw()) {
            p.kill();
        }
    }
}

/// A process pinned by a pidfd, so that a signal sent later cannot reach a
/// process that reused its pid.
pub struct PidFd {
    pid: nix::unistd::Pid,
    fd: Option<std::os::fd::OwnedFd>,
    /// No pidfd on this kernel (before 5.3): `kill` falls back to kill(2).
    no_pidfd: bool,
}

impl PidFd {
    pub fn open(pid: nix::unistd::Pid) -> PidFd {
        use std::os::fd::FromRawFd;
        // SAFETY: pidfd_open takes a pid and flags; it returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) } as i32;
        let no_pidfd = fd < 0 && nix::errno::Errno::last() == nix::errno::Errno::ENOSYS;
        PidFd {
            pid,
            // SAFETY: fd is a fresh descriptor we own.
            fd: (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }),
            no_pidfd,
        }
    }

    /// SIGKILL it (nothing if it was already gone when pinned).
    pub fn kill(&self) {
        use std::os::fd::AsRawFd;
        match &self.fd {
            // SAFETY: our pidfd; a null siginfo means "as kill()".
            Some(fd) => unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                );
            },
            // Kernels before 5.3: no pidfd, take the tiny race.
            None if self.no_pidfd => {
                let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
            }
            None => {}
        }
    }
}

// ------------------------------------------------ cgroup: small file helpers

/// One write(2): cgroup files take a whole value per write.
fn write_file(path: &Path, value: &str) -> Result<(), String> {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| format!("writing {value:?} to {}: {e}", path.display()))
}

fn read_words(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .map(|t| t.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn read_number(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a `key value` per line file (memory.events ...).
fn read_keyed(path: &Path, key: &str) -> Option<u64> {
    fs::read_to_string(path).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn swap_in_use() -> bool {
    fs::read_to_string("/proc/swaps").is_ok_and(|t| t.lines().count() > 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_bytes_and_binary_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("100k"), Ok(100 * 1024));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("512MB"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size(" 64 mib "), Ok(64 << 20));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("0.5K"), Ok(512));
        assert_eq!(parse_size("1b"), Ok(1));
    }

    #[test]
    fn bad_sizes_are_refused_and_named() {
        for bad in [
            "",
            "M",
            "12Q",
            "-1",
            "1.5",
            "1..5M",
            "1.2.3G",
            "99999999999T",
            "ten",
            "5 M B",
        ] {
            let err = parse_size(bad).expect_err(bad);
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn durations_in_units_and_bare_seconds() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2s500ms"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("100us"), Ok(Duration::from_micros(100)));
    }

    #[test]
    fn bad_durations_are_refused_and_named() {
        for bad in [
            "",
            "s",
            "5x",
            "1h30",
            "0",
            "0s",
            "-5s",
            "1.2.3s",
            "5 minutes",
            "9999999999999999h",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn formatted_values_read_back() {
        for b in [0, 1, 1000, 4096, 512 << 20, 3 << 29, 1 << 40, 12345 << 10] {
            assert_eq!(parse_size(&format_size(b)), Ok(b), "{}", format_size(b));
        }
        assert_eq!(format_size(3 << 29), "1536M");
        for d in [
            Duration::from_secs(1),
            Duration::from_secs(5400),
            Duration::from_millis(2500),
            Duration::from_micros(7),
            Duration::from_nanos(1_000_000_001),
            Duration::from_secs(86400 * 3),
        ] {
            assert_eq!(
                parse_duration(&format_duration(d)),
                Ok(d),
                "{}",
                format_duration(d)
            );
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    }

    fn every_limit() -> Limits {
        Limits {
            timeout: Some(Duration::from_secs(60)),
            memory: Some(64 << 20),
            pids: Some(16),
            cpu_time: Some(Duration::from_millis(1500)),
            file_size: Some(1 << 20),
            open_files: Some(64),
        }
    }

    fn mechanisms(plan: &[LimitPlan]) -> Vec<(&str, Mechanism)> {
        plan.iter().map(|p| (p.limit, p.mechanism)).collect()
    }

    #[test]
    fn with_a_cgroup_memory_and_pids_bound_the_whole_sandbox() {
        let plan = plan(&every_limit(), true);
        assert_eq!(
            mechanisms(&plan),
            [
                ("timeout", Mechanism::Supervisor),
                ("memory", Mechanism::Cgroup),
                ("pids", Mechanism::Cgroup),
                ("cpu_time", Mechanism::Rlimit),
                ("file_size", Mechanism::Rlimit),
                ("open_files", Mechanism::Rlimit),
            ]
        );
        let values: Vec<&str> = plan.iter().map(|p| p.value.as_str()).collect();
        assert_eq!(values, ["1m", "64M", "16", "1s500ms", "1M", "64"]);
        assert!(plan[3]
            .reason
            .as_deref()
            .unwrap()
            .contains("rounded up to 2s"));
    }

    #[test]
    fn without_a_cgroup_pids_is_not_enforced_and_memory_is_address_space() {
        let plan = plan(&every_limit(), false);
        assert_eq!(plan[1].mechanism, Mechanism::Rlimit);
        assert!(plan[1].reason.as_deref().unwrap().contains("RLIMIT_AS"));
        assert_eq!(plan[2].mechanism, Mechanism::None);
        assert!(plan[2]
            .reason
            .as_deref()
            .unwrap()
            .contains("every process of the user"));
        assert_eq!(plan[0].mechanism, Mechanism::Supervisor);
    }

    #[test]
    fn pids_use_nproc_only_where_it_counts_the_sandbox_alone() {
        let means = Means {
            cgroup: false,
            nproc_per_sandbox: true,
        };
        let plan = plan_with(&every_limit(), means);
        assert_eq!(plan[2].mechanism, Mechanism::Rlimit);
        assert!(plan[2]
            .reason
            .as_deref()
            .unwrap()
            .contains("user namespace"));
        // The cgroup still wins when there is one.
        let plan = plan_with(
            &every_limit(),
            Means {
                cgroup: true,
                ..means
            },
        );
        assert_eq!(plan[2].mechanism, Mechanism::Cgroup);
        assert!(!nproc_counts_only_the_sandbox(false));
    }

    #[test]
    fn only_requested_limits_are_planned() {
        assert!(plan(&Limits::default(), true).is_empty());
        let one = Limits {
            open_files: Some(10),
            ..Limits::default()
        };
        assert_eq!(
            mechanisms(&plan(&one, false)),
            [("open_files", Mechanism::Rlimit)]
        );
    }

    #[test]
    fn mechanisms_serialize_in_snake_case() {
        let json = serde_json::to_string(&plan(&every_limit(), false)[2]).unwrap();
        assert!(json.contains(r#""mechanism":"none""#), "{json}");
        assert!(json.contains(r#""limit":"pids""#), "{json}");
    }

    fn seen(signal: Option<i32>, code: Option<i32>, events: Option<CgroupEvents>) -> Observed {
        Observed {
            timed_out: false,
            events,
            signal,
            code,
        }
    }

    #[test]
    fn the_verdict_names_the_limit_from_evidence() {
        let cg = plan(&every_limit(), true);
        let rl = plan(&every_limit(), false);
        let oom = CgroupEvents {
            oom_kill: 1,
            ..Default::default()
        };
        let forks = CgroupEvents {
            pids_max: 7,
            ..Default::default()
        };
        let kill = Some(libc::SIGKILL);
        assert_eq!(tripped(&cg, &seen(kill, None, Some(oom))), Some("memory"));
        // Memory killed a child; the shell exited 137.
        assert_eq!(
            tripped(&cg, &seen(None, Some(137), Some(oom))),
            Some("memory")
        );
        // No oom_kill counter (old v1): limit hit plus SIGKILL.
        let hit = CgroupEvents {
            memory_max: 3,
            ..Default::default()
        };
        assert_eq!(tripped(&cg, &seen(kill, None, Some(hit))), Some("memory"));
        assert_eq!(tripped(&cg, &seen(None, Some(1), Some(hit))), None);
        assert_eq!(
            tripped(&cg, &seen(None, Some(0), Some(forks))),
            Some("pids")
        );
        let xcpu = Some(libc::SIGXCPU);
        assert_eq!(tripped(&rl, &seen(xcpu, None, None)), Some("cpu_time"));
        assert_eq!(
            tripped(&rl, &seen(None, Some(128 + libc::SIGXCPU), None)),
            Some("cpu_time")
        );
        let xfsz = Some(libc::SIGXFSZ);
        assert_eq!(tripped(&rl, &seen(xfsz, None, None)), Some("file_size"));
        let timed_out = Observed {
            timed_out: true,
            ..seen(kill, None, Some(oom))
        };
        assert_eq!(tripped(&cg, &timed_out), Some("timeout"));
        // Without the limit asked, the same signal is the command's own.
        assert_eq!(tripped(&[], &seen(xcpu, None, None)), None);
        assert_eq!(tripped(&rl, &seen(kill, None, None)), None);
        assert_eq!(tripped(&cg, &seen(None, Some(0), None)), None);
    }

    #[test]
    fn rlimits_without_evidence_are_only_suspected_when_the_command_failed() {
        let rl = plan(&every_limit(), false);
        assert!(suspected(&rl, &seen(None, Some(0), None)).is_empty());
        assert_eq!(
            suspected(&rl, &seen(None, Some(1), None)),
            ["memory", "file_size", "open_files"]
        );
        assert_eq!(
            suspected(&rl, &seen(Some(libc::SIGKILL), None, None)),
            ["memory", "cpu_time", "file_size", "open_files"]
        );
        // A named verdict leaves nothing to suspect.
        assert!(suspected(&rl, &seen(Some(libc::SIGXCPU), None, None)).is_empty());
        let cg = plan(&every_limit(), true);
        assert_eq!(
            suspected(&cg, &seen(None, Some(2), Some(CgroupEvents::default()))),
            ["file_size", "open_files"]
        );
    }

    #[test]
    fn cpu_seconds_round_up_and_never_zero() {
        assert_eq!(cpu_seconds(Duration::from_millis(1)), 1);
        assert_eq!(cpu_seconds(Duration::from_secs(3)), 3);
        assert_eq!(cpu_seconds(Duration::from_millis(3001)), 4);
    }

    #[test]
    fn kernel_versions_compare() {
        assert!(kernel_at_least("6.18.44-fc-v595", 5, 14));
        assert!(kernel_at_least("5.14.0", 5, 14));
        assert!(!kernel_at_least("5.10.220-generic", 5, 14));
        assert!(!kernel_at_least("garbage", 5, 14));
    }

    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 31 0:40 /sub /mnt/with\\040space rw - cgroup2 cgroup2 rw";

    #[test]
    fn mountinfo_lines_are_read() {
        let m = parse_mountinfo(HYBRID_MOUNTINFO);
        assert_eq!(m.len(), 6);
        assert_eq!(m[2].point, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(m[2].fstype, "cgroup");
        assert_eq!(m[2].super_options, ["rw", "memory"]);
        assert_eq!(m[4].fstype, "cgroup2");
        assert_eq!(m[5].point, Path::new("/mnt/with space"));
        assert_eq!(m[5].root, "/sub");
    }

    #[test]
    fn proc_cgroup_lines_are_read() {
        let m = parse_proc_cgroup(
            "4:memory:/process_api/abc\n2:cpu,cpuacct:/\n0::/user.slice/x.scope\n",
        );
        assert_eq!(m[0].controllers, ["memory"]);
        assert_eq!(m[0].path, "/process_api/abc");
        assert_eq!(m[1].controllers, ["cpu", "cpuacct"]);
        assert_eq!(m[2].id, 0);
        assert!(m[2].controllers.is_empty());
    }

    #[test]
    fn cgroup_paths_resolve_under_the_mount_root() {
        let m = parse_mountinfo(HYBRID_MOUNTINFO);
        assert_eq!(
            resolve(&m[2], "/process_api/abc"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/process_api/abc"))
        );
        assert_eq!(
            resolve(&m[4], "/"),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            resolve(&m[5], "/sub/a"),
            Some(PathBuf::from("/mnt/with space/a"))
        );
        assert_eq!(resolve(&m[5], "/subway"), None);
        assert_eq!(resolve(&m[5], "/other"), None);
        assert_eq!(resolve(&m[4], "/../outside"), None);
    }

    fn state() -> V2State {
        V2State {
            own: PathBuf::from("/sys/fs/cgroup/system.slice/ci.service"),
            available: vec!["memory".into(), "pids".into()],
            enable: vec!["memory".into(), "pids".into()],
            own_writable: true,
            parent: Some(V2Parent {
                dir: PathBuf::from("/sys/fs/cgroup/system.slice"),
                enabled: vec!["cpu".into(), "memory".into(), "pids".into()],
                writable: true,
            }),
            ..V2State::default()
        }
    }

    #[test]
    fn v2_root_cgroup_holds_the_sandbox_itself() {
        let s = V2State {
            own_is_root: true,
            parent: None,
            ..state()
        };
        assert_eq!(v2_strategies(&s), Ok(vec![Strategy::InOwn]));
    }

    #[test]
    fn v2_alone_in_a_delegated_cgroup_moves_into_a_leaf_first() {
        let s = V2State {
            only_us: true,
            ..state()
        };
        assert_eq!(
            v2_strategies(&s),
            Ok(vec![Strategy::MoveIntoLeaf, Strategy::Sibling])
        );
    }

    #[test]
    fn v2_shared_cgroup_goes_next_to_it_when_the_parent_allows() {
        assert_eq!(v2_strategies(&state()), Ok(vec![Strategy::Sibling]));
        let s = V2State {
            parent: None,
            ..state()
        };
        let err = v2_strategies(&s).unwrap_err();
        assert!(err.contains("holds other processes"), "{err}");
    }

    #[test]
    fn v2_after_moving_into_the_leaf_sandboxes_are_its_siblings() {
        let s = V2State {
            own: PathBuf::from("/sys/fs/cgroup/app.slice/run-1.scope/bwai-supervisor"),
            own_is_supervisor_leaf: true,
            only_us: true,
            ..state()
        };
        assert_eq!(v2_strategies(&s), Ok(vec![Strategy::Sibling]));
    }

    #[test]
    fn v2_not_delegated_says_how_to_get_one() {
        let s = V2State {
            own_writable: false,
            parent: Some(V2Parent {
                writable: false,
                ..state().parent.unwrap()
            }),
            ..state()
        };
        let err = v2_strategies(&s).unwrap_err();
        assert!(
            err.contains("not writable") && err.contains("Delegate=yes"),
            "{err}"
        );
    }

    #[test]
    fn v2_without_controllers_still_tracks_processes() {
        let s = V2State {
            available: vec![],
            enable: vec![],
            parent: None,
            ..state()
        };
        assert_eq!(v2_strategies(&s), Ok(vec![Strategy::InOwn]));
    }

    #[test]
    fn keyed_files_are_read() {
        let dir = std::env::temp_dir().join(format!("bwai-limits-keyed-{}", std::process::id()));
        fs::write(&dir, "oom 2\noom_kill 1\nmax 7\n").unwrap();
        assert_eq!(read_keyed(&dir, "oom_kill"), Some(1));
        assert_eq!(read_keyed(&dir, "max"), Some(7));
        assert_eq!(read_keyed(&dir, "oom_group_kill"), None);
        fs::remove_file(&dir).unwrap();
    }

    #[test]
    fn stale_cgroups_are_recognised_by_name_only_when_ours() {
        assert_eq!(stale_owner("bwai-demo-4242-0"), Some(4242));
        assert_eq!(stale_owner("bwai-my-project-17-3"), Some(17));
        assert_eq!(stale_owner(&sandbox_name("x")), Some(std::process::id()));
        for other in [
            "bwai-supervisor",
            "bwai-4242-0",
            "user.slice",
            "bwai-a-b-c",
            "bwai-x-12-",
        ] {
            assert_eq!(stale_owner(other), None, "{other}");
        }
        assert!(process_exists(std::process::id()));
    }

    #[test]
    fn sandbox_names_are_safe_and_unique() {
        let a = sandbox_name("my project/../x");
        let b = sandbox_name("my project/../x");
        assert_ne!(a, b);
        assert!(a.starts_with("bwai-my_project____x-"), "{a}");
        assert!(!a.contains('/'));
        assert!(sandbox_name("").starts_with("bwai-sandbox-"));
    }

    /// The v2 path for real, where a cgroup2 mount is writable (as root here:
    /// the hybrid hierarchy's v2 half has no controllers, but cgroup.procs,
    /// cgroup.kill, cpu.stat and removal are the same code).
    #[test]
    fn v2_cgroup_kill_empties_it_and_drop_removes_it() {
        let Ok(Found::V2(state)) = locate_v2_only() else {
            eprintln!("SKIPPED: no writable cgroup2 mount here");
            return;
        };
        let cg = create_v2(&state, &sandbox_name("unit-v2")).expect("create v2 cgroup");
        let dir = cg.path().to_path_buf();
        // SAFETY: the child only calls pause() and _exit(), both async-signal-safe.
        let child = match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                // SAFETY: pause and _exit are async-signal-safe.
                unsafe {
                    libc::pause();
                    libc::_exit(0)
                }
            }
            nix::unistd::ForkResult::Parent { child } => child,
        };
        cg.add_pid(child.as_raw()).expect("add pid");
        assert_eq!(
            cg.members().into_iter().collect::<Vec<_>>(),
            [child.as_raw()]
        );
        cg.kill_all();
        assert!(cg.members().is_empty());
        let status = nix::sys::wait::waitpid(child, None).expect("wait");
        assert_eq!(
            status,
            nix::sys::wait::WaitStatus::Signaled(child, nix::sys::signal::Signal::SIGKILL, false)
        );
        drop(cg);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }

    /// `locate` restricted to the v2 hierarchy, with no controllers needed.
    fn locate_v2_only() -> Result<Found, String> {
        let mounts = parse_mountinfo(
            &fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?,
        );
        let member =
            parse_proc_cgroup(&fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?);
        let path = &member
            .iter()
            .find(|m| m.id == 0)
            .ok_or("no v2 membership")?
            .path;
        let own = mounts
            .iter()
            .filter(|m| m.fstype == "cgroup2")
            .find_map(|m| resolve(m, path))
            .ok_or("no cgroup2 mount")?;
        let mut state = v2_state(own.clone(), read_words(&own.join("cgroup.controllers")));
        // Only the strategy that changes nothing outside a new child.
        state.enable.clear();
        state.only_us = false;
        state.parent = None;
        if v2_strategies(&state)? != [Strategy::InOwn] {
            return Err("own cgroup not usable".into());
        }
        Ok(Found::V2(state))
    }
}
