//! What the user is told: the start line, the JSON report (`--report`).
//! Everything here describes what was *enforced*, never just what was asked.

use serde_json::{json, Value};

use crate::config::NetMode;
use crate::layers::limits::{Cgroup, LimitPlan, Mechanism};
use crate::plan::LayerPlan;
use crate::policy::Policy;
use crate::probe;
use crate::run::{Enforced, LimitsOutcome, Outcome};

pub const REPORT_VERSION: u32 = 1;

/// `bwai: sandboxed in /p  [userns mount pid ipc uts cgroup | landlock abi7 fs+scope | seccomp | net:host]`
pub fn start_line(policy: &Policy, enforced: &Enforced) -> String {
    let ns = match &enforced.namespaces {
        Some(d) => d.replacen("user", "userns", 1),
        None => "no namespaces".into(),
    };
    let ll = match &enforced.landlock {
        Some(o) if o.in_force => {
            let mut parts = vec!["fs"];
            if o.tcp {
                parts.push("net");
            }
            if o.scopes {
                parts.push("scope");
            }
            if o.unix {
                parts.push("unix");
            }
            format!("landlock abi{} {}", o.abi, parts.join("+"))
        }
        _ => "no landlock".into(),
    };
    // What seccomp refuses because namespaces are missing is said here:
    // programs that need it fail, and the user should know why.
    let sc = match (enforced.seccomp, enforced.seccomp_extra.as_slice()) {
        (false, _) => "no seccomp".to_string(),
        (true, []) => "seccomp".to_string(),
        (true, extra) => format!("seccomp, denies {}", extra.join("+")),
    };
    let net = match policy.net {
        NetMode::Host => "net:host",
        NetMode::None => "net:none",
        NetMode::Allow if net_partial(policy, enforced) => "net:allow(partial)",
        NetMode::Allow => "net:allow",
    };
    let mut line = format!(
        "bwai: sandboxed in {}  [{ns} | {ll} | {sc} | {net}]",
        policy.project.display()
    );
    if !policy.profiles.is_empty() && policy.profiles.len() <= 2 {
        line.push_str(&format!("  profile: {}", policy.profiles.join(",")));
    }
    line
}

/// `allow` without a network namespace: Landlock and seccomp approximate it
/// (the only way it runs there; see `run::network_refusal`).
fn net_partial(policy: &Policy, enforced: &Enforced) -> bool {
    policy.net == NetMode::Allow && enforced.namespaces.is_none()
}

/// `  limits: timeout 10s, memory 512M (cgroup v1), cpu_time 5s (rlimit)`,
/// appended to the start line when limits are asked; empty otherwise.
pub fn limits_segment(plan: &[LimitPlan], cgroup: Option<&Cgroup>) -> String {
    if plan.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = plan
        .iter()
        .map(|p| match p.mechanism {
            Mechanism::Supervisor => format!("{} {}", p.limit, p.value),
            m => format!(
                "{} {} ({})",
                p.limit,
                p.value,
                mechanism_name(m, cgroup.map(|c| c.version()))
            ),
        })
        .collect();
    format!("  limits: {}", parts.join(", "))
}

fn mechanism_name(m: Mechanism, cgroup_version: Option<u8>) -> String {
    match m {
        Mechanism::Cgroup => format!("cgroup v{}", cgroup_version.unwrap_or(2)),
        Mechanism::Rlimit => "rlimit".into(),
        Mechanism::Supervisor => "bwai".into(),
        Mechanism::None => "NOT ENFORCED".into(),
    }
}

/// The one stderr line that says which limit ended or hampered the run,
/// e.g. `bwai: killed by memory limit (512M, cgroup v1): 1 process OOM-killed`.
pub fn verdict_line(out: &LimitsOutcome) -> Option<String> {
    let value = |name: &str| {
        out.plan
            .iter()
            .find(|p| p.limit == name)
            .map(|p| match p.mechanism {
                Mechanism::Supervisor => p.value.clone(),
                m => format!("{}, {}", p.value, mechanism_name(m, out.cgroup_version)),
            })
            .unwrap_or_default()
    };
    let events = out.events.unwrap_or_default();
    let line = match out.tripped {
        Some("timeout") => format!(
            "bwai: killed by timeout ({}): every process of the sandbox was ended (exit 124)",
            value("timeout")
        ),
        Some("memory") => format!(
            "bwai: killed by memory limit ({}): {} process(es) OOM-killed",
            value("memory"),
            events.oom_kill.max(1)
        ),
        Some("cpu_time") => format!(
            "bwai: killed by cpu_time limit ({}): SIGXCPU",
            value("cpu_time")
        ),
        Some("file_size") => format!(
            "bwai: stopped by file_size limit ({}): a write past it raised SIGXFSZ",
            value("file_size")
        ),
        Some("pids") => format!(
            "bwai: pids limit reached ({}): the kernel refused {} fork(s)",
            value("pids"),
            events.pids_max
        ),
        Some(other) => format!("bwai: {other} limit reached ({})", value(other)),
        None if !out.suspected.is_empty() => format!(
            "bwai: the command failed; it may have hit a limit bwai cannot observe \
             (the kernel refuses the call inside the command): {}",
            out.suspected
                .iter()
                .map(|l| format!("{l} ({})", value(l)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => return None,
    };
    Some(line)
}

fn limits_json(out: &LimitsOutcome) -> Value {
    json!({
        "requested": out.plan,
        "cgroup": {
            "version": out.cgroup_version,
            "paths": out.cgroup_paths,
            "reason": out.cgroup_reason,
        },
        "tripped": out.tripped,
        "suspected": out.suspected,
        "events": out.events,
        "peak_memory": out.peak_memory.map(|(bytes, scope)| json!({"bytes": bytes, "scope": scope})),
    })
}

fn layer_json(plan: &LayerPlan, in_force: bool, extra: Value) -> Value {
    let mut v = json!({
        "planned": plan.planned || in_force,
        "in_force": in_force,
        "reason": if in_force { Value::Null } else { json!(plan.reason.clone().unwrap_or_else(|| "unavailable".into())) },
    });
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v
}

pub fn report_json(policy: &Policy, outcome: &Outcome) -> Value {
    let e = &outcome.enforced;
    let ll = e.landlock.as_ref();
    let ll_in_force = ll.is_some_and(|o| o.in_force);
    let abi = ll.map(|o| o.abi).unwrap_or(0);
    json!({
        "report_version": REPORT_VERSION,
        "bwai_version": env!("CARGO_PKG_VERSION"),
        "project": policy.project,
        "command": policy.argv,
        "mode": outcome.mode.name(),
        "layers": {
            "namespaces": layer_json(&outcome.plan.namespaces, e.namespaces.is_some(),
                json!({"detail": e.namespaces})),
            "landlock": layer_json(&outcome.plan.landlock, ll_in_force, json!({
                "abi": abi,
                "status": ll.map(|o| o.status).unwrap_or("not_enforced"),
                "features": if ll_in_force { probe::landlock_features(abi) } else { vec![] },
                "tcp_restricted": ll.is_some_and(|o| o.tcp),
                "scoped": ll.is_some_and(|o| o.scopes),
                "unix_sockets_restricted": ll.is_some_and(|o| o.unix),
            })),
            "seccomp": layer_json(&outcome.plan.seccomp, e.seccomp, json!({
                "allowed_back": policy.seccomp_allow,
                "also_denied": e.seccomp_extra,
            })),
            "no_new_privs": {"planned": true, "in_force": e.no_new_privs, "reason": Value::Null},
        },
        "network": {
            "mode": policy.net.name(),
            "enforcement": e.net,
            "partial": net_partial(policy, e),
            "allow": policy.net_allow,
            "proxy": outcome.network.proxy,
            "denials": outcome.network.denials.iter().map(|d| json!({
                "host": d.host, "port": d.port, "count": d.count, "reason": d.reason,
            })).collect::<Vec<_>>(),
        },
        "limits": limits_json(&outcome.limits),
        "profiles": policy.profiles,
        "protected": {
            "mechanism": outcome.protection.mechanism,
            "paths": outcome.protection.paths,
            "events": outcome.protection.events,
        },
        "left_behind": outcome.left_behind.iter().map(|f| f.json()).collect::<Vec<_>>(),
        "warnings": outcome.warnings,
        "exit": {"code": outcome.exit_code, "signal": outcome.signal, "limit": outcome.limits.tripped},
        "duration_ms": outcome.duration_ms as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::landlock::Outcome as LlOutcome;

    fn policy() -> Policy {
        Policy {
            project: "/home/u/p".into(),
            home: "/home/u".into(),
            uid: 1,
            gid: 1,
            mounts: vec![],
            env: vec![],
            argv: vec!["true".into()],
            interactive: false,
            net: NetMode::Host,
            net_allow: Vec::new(),
            net_allow_list: Default::default(),
            require: vec![],
            seccomp_allow: vec![],
            allow_host_unix_sockets: false,
            allow_unconfined: false,
            protected: vec![],
            notes: vec![],
            profiles: vec![],
            limits: Default::default(),
        }
    }

    fn limits_outcome(
        tripped: Option<&'static str>,
        suspected: Vec<&'static str>,
    ) -> LimitsOutcome {
        use crate::layers::limits::{plan, CgroupEvents, Limits};
        let limits = Limits {
            timeout: Some(std::time::Duration::from_secs(600)),
            memory: Some(512 << 20),
            ..Limits::default()
        };
        LimitsOutcome {
            plan: plan(&limits, tripped.is_some()),
            cgroup_version: tripped.map(|_| 1),
            events: tripped.map(|_| CgroupEvents {
                oom_kill: 2,
                ..CgroupEvents::default()
            }),
            tripped,
            suspected,
            ..LimitsOutcome::default()
        }
    }

    #[test]
    fn the_verdict_line_names_the_limit_its_value_and_mechanism() {
        assert_eq!(
            verdict_line(&limits_outcome(Some("memory"), vec![])).unwrap(),
            "bwai: killed by memory limit (512M, cgroup v1): 2 process(es) OOM-killed"
        );
        assert!(verdict_line(&limits_outcome(Some("timeout"), vec![]))
            .unwrap()
            .starts_with("bwai: killed by timeout (10m):"));
        let s = verdict_line(&limits_outcome(None, vec!["memory"])).unwrap();
        assert!(
            s.contains("cannot observe") && s.ends_with("memory (512M, rlimit)"),
            "{s}"
        );
        assert_eq!(verdict_line(&limits_outcome(None, vec![])), None);
    }

    #[test]
    fn limits_json_has_the_documented_fields() {
        let v = limits_json(&limits_outcome(Some("memory"), vec![]));
        for key in [
            "requested",
            "cgroup",
            "tripped",
            "suspected",
            "events",
            "peak_memory",
        ] {
            assert!(v.get(key).is_some(), "{key}: {v}");
        }
        assert_eq!(v["requested"][1]["limit"], "memory");
        assert_eq!(v["requested"][1]["mechanism"], "cgroup");
        assert_eq!(v["requested"][1]["value"], "512M");
        assert_eq!(v["cgroup"]["version"], 1);
        assert_eq!(v["events"]["oom_kill"], 2);
        assert_eq!(
            limits_segment(&limits_outcome(None, vec![]).plan, None),
            "  limits: timeout 10m, memory 512M (rlimit)"
        );
        assert_eq!(limits_segment(&[], None), "");
    }

    #[test]
    fn start_line_names_what_is_in_force() {
        let e = Enforced {
            namespaces: Some("user mount pid ipc uts cgroup".into()),
            landlock: Some(LlOutcome {
                in_force: true,
                abi: 7,
                status: "fully_enforced",
                tcp: false,
                scopes: true,
                unix: false,
                skipped: vec![],
            }),
            seccomp: true,
            seccomp_extra: vec![],
            no_new_privs: true,
            net: "host network",
        };
        assert_eq!(
            start_line(&policy(), &e),
            "bwai: sandboxed in /home/u/p  [userns mount pid ipc uts cgroup | landlock abi7 fs+scope | seccomp | net:host]"
        );
        let degraded = Enforced {
            namespaces: None,
            landlock: None,
            seccomp: true,
            seccomp_extra: vec!["unix-sockets", "sysv-ipc"],
            no_new_privs: true,
            net: "host network",
        };
        assert!(start_line(&policy(), &degraded).contains(
            "[no namespaces | no landlock | seccomp, denies unix-sockets+sysv-ipc | net:host]"
        ));
        let mut partial = policy();
        partial.net = NetMode::Allow;
        let fallback = Enforced {
            net: "Landlock TCP to the proxy, seccomp (partial)",
            ..degraded
        };
        assert!(start_line(&partial, &fallback).ends_with("| net:allow(partial)]"));
    }
}
