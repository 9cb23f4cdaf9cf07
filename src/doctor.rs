//! `bwai doctor`: what protection this kernel gives, why a layer is missing,
//! and how to get it. Unlike the start-up probe, doctor may fork: it tries
//! a real user namespace (maps and a mount) to be sure.

use std::io::{Read, Write};

use nix::libc;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use serde_json::{json, Value};

use crate::config::Layer;
use crate::plan::{self, Mode};
use crate::probe::{self, Blocker, Capabilities, Userns};

pub const DOCTOR_VERSION: u32 = 1;

/// Create a user + mount namespace in a child, map ourselves, and mount a
/// tmpfs: the steps that each blocker (seccomp, sysctl, AppArmor) breaks.
pub fn trial_userns() -> Result<(), String> {
    let (mut r, mut w) = std::os::unix::net::UnixStream::pair().map_err(|e| e.to_string())?;
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    // SAFETY: doctor is single-threaded; the child only makes syscalls and exits.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(r);
            let step = || -> Result<(), String> {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
                    .map_err(|e| format!("unshare(CLONE_NEWUSER): {e}"))?;
                let _ = std::fs::write("/proc/self/setgroups", "deny");
                std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1\n"))
                    .map_err(|e| format!("writing uid_map: {e}"))?;
                std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1\n"))
                    .map_err(|e| format!("writing gid_map: {e}"))?;
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                    .map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
                use nix::mount::{mount, MsFlags};
                mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    None::<&str>,
                )
                .map_err(|e| format!("mount --make-rprivate /: {e}"))?;
                mount(
                    Some("tmpfs"),
                    "/tmp",
                    Some("tmpfs"),
                    MsFlags::empty(),
                    None::<&str>,
                )
                .map_err(|e| format!("mounting a tmpfs: {e}"))?;
                Ok(())
            };
            let code = match step() {
                Ok(()) => 0,
                Err(e) => {
                    let _ = w.write_all(e.as_bytes());
                    1
                }
            };
            // SAFETY: _exit is always sound.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(w);
            let mut msg = String::new();
            let _ = r.read_to_string(&mut msg);
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, 0)) => Ok(()),
                _ if !msg.is_empty() => Err(msg),
                other => Err(format!("trial child ended with {other:?}")),
            }
        }
        Err(e) => Err(format!("fork: {e}")),
    }
}

/// The doctor's findings: capabilities with the trial result folded in.
pub fn examine() -> (Capabilities, Option<Blocker>) {
    let mut caps = probe::probe();
    let mut blocker = match &caps.userns {
        Userns::Blocked(b) => Some(b.clone()),
        Userns::Likely { .. } => None,
    };
    if blocker.is_none() {
        if let Err(e) = trial_userns() {
            let b = match &caps.userns {
                Userns::Likely { suspicion: Some(s) } => Blocker {
                    reason: format!("{} ({e})", s.reason),
                    fix: s.fix.clone(),
                },
                _ => Blocker {
                    reason: e,
                    fix: "see the README section on containers".into(),
                },
            };
            blocker = Some(b.clone());
            caps.userns = Userns::Blocked(b);
        }
    }
    (caps, blocker)
}

pub fn doctor_json(caps: &Capabilities, blocker: &Option<Blocker>) -> (Value, Mode) {
    let cg = probe::cgroup_state();
    // Where the limits' cgroup would go (v2, or the v1 hierarchies).
    let limits_cgroup = crate::layers::limits::cgroup_available();
    let features: serde_json::Map<String, Value> = probe::LANDLOCK_FEATURES
        .iter()
        .map(|(name, abi)| (name.to_string(), json!(caps.landlock_abi >= *abi)))
        .collect();
    let (mode, layers) = match plan::plan(caps, &[], false, None) {
        Ok(p) => {
            let layers: Vec<&str> = [Layer::Namespaces, Layer::Landlock, Layer::Seccomp]
                .into_iter()
                .filter(|l| p.layer(*l).planned)
                .map(|l| l.name())
                .chain(std::iter::once("no_new_privs"))
                .collect();
            (p.mode, layers)
        }
        Err(_) => (Mode::Unconfined, vec![]),
    };
    let landlock_fix = (caps.landlock_abi == 0)
        .then_some("use a kernel >= 5.13 with CONFIG_SECURITY_LANDLOCK=y and `landlock` in the `lsm=` boot parameter");
    let v = json!({
        "doctor_version": DOCTOR_VERSION,
        "kernel": caps.kernel,
        "features": {
            "user_namespaces": {
                "available": blocker.is_none(),
                "reason": blocker.as_ref().map(|b| b.reason.clone()),
                "fix": blocker.as_ref().map(|b| b.fix.clone()),
            },
            "landlock": {
                "available": caps.landlock_abi > 0,
                "abi": caps.landlock_abi,
                "features": features,
                "reason": caps.landlock_reason,
                "fix": landlock_fix,
            },
            "seccomp": {
                "available": caps.seccomp.available,
                "inherited_filter": caps.seccomp.inherited_filter,
                "reason": (!caps.seccomp.available).then_some("the kernel has no seccomp support"),
                "fix": (!caps.seccomp.available).then_some("use a kernel built with CONFIG_SECCOMP_FILTER"),
            },
            "no_new_privs": {"available": true, "already_set": caps.no_new_privs_already},
            "cgroup_v2": {
                "available": cg.v2,
                "delegated": cg.delegated,
                "reason": if !cg.v2 { Some("cgroup v2 is not mounted at /sys/fs/cgroup") }
                          else if !cg.delegated { Some("this user cannot create cgroups here") } else { None },
                "fix": if cg.v2 && !cg.delegated { Some("run under a delegated systemd scope: systemd-run --user --scope -p Delegate=yes bwai ...") } else { None },
            },
            "limits": {
                "available": true,
                "cgroup": limits_cgroup.is_ok(),
                "mechanism": if limits_cgroup.is_ok() { "cgroup" } else { "rlimit" },
                "reason": limits_cgroup.as_ref().err(),
                "fix": limits_cgroup.as_ref().err().map(|_| "--memory and --pids bound the whole sandbox only with a cgroup: run bwai as root, or in a delegated cgroup (systemd-run --user --scope -p Delegate=yes bwai ...); without one memory is per process (RLIMIT_AS) and pids needs user namespaces"),
            },
        },
        "mode": if mode == Mode::Unconfined { "refuse" } else { mode.name() },
        "layers": layers,
    });
    (v, mode)
}

pub fn exit_code(mode: Mode) -> i32 {
    match mode {
        Mode::Full => 0,
        Mode::Degraded => 1,
        Mode::Unconfined => 125,
    }
}

pub fn doctor_text(v: &Value) -> String {
    let f = &v["features"];
    let yes = |b: &Value| {
        if b.as_bool() == Some(true) {
            "yes"
        } else {
            "NO"
        }
    };
    let mut out = format!(
        "bwai doctor  (kernel {})\n\n",
        v["kernel"].as_str().unwrap_or("?")
    );
    out.push_str(&format!(
        "  {:<18} {:<10} {}\n",
        "feature", "available", "detail"
    ));
    let mut row = |name: &str, avail: &str, detail: String| {
        out.push_str(&format!("  {name:<18} {avail:<10} {detail}\n"));
    };
    let un = &f["user_namespaces"];
    row(
        "user namespaces",
        yes(&un["available"]),
        un["reason"].as_str().unwrap_or("").into(),
    );
    let ll = &f["landlock"];
    let feats: Vec<String> = ll["features"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.as_bool() == Some(true))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    let ll_detail = if ll["available"].as_bool() == Some(true) {
        format!("ABI {}: {}", ll["abi"], feats.join(" "))
    } else {
        ll["reason"].as_str().unwrap_or("").to_string()
    };
    row("landlock", yes(&ll["available"]), ll_detail);
    let sc = &f["seccomp"];
    let sc_detail = if sc["inherited_filter"].as_bool() == Some(true) {
        "a filter is already installed (container?)"
    } else {
        ""
    };
    row("seccomp", yes(&sc["available"]), sc_detail.into());
    row(
        "no_new_privs",
        "yes",
        if f["no_new_privs"]["already_set"].as_bool() == Some(true) {
            "already set".into()
        } else {
            String::new()
        },
    );
    let cg = &f["cgroup_v2"];
    row(
        "cgroup v2",
        yes(&cg["available"]),
        format!("delegated: {}", yes(&cg["delegated"]).to_lowercase()),
    );

    let lim = &f["limits"];
    row(
        "limits",
        "yes",
        if lim["cgroup"].as_bool() == Some(true) {
            "cgroup: memory and pids bound the whole sandbox".into()
        } else {
            format!("rlimits only: {}", lim["reason"].as_str().unwrap_or(""))
        },
    );

    let mode = v["mode"].as_str().unwrap_or("?");
    let layers: Vec<&str> = v["layers"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    out.push_str(&format!("\nbwai here: {mode}"));
    if !layers.is_empty() {
        out.push_str(&format!(" ({})", layers.join(" + ")));
    }
    out.push('\n');
    let mut fixes = Vec::new();
    for key in [
        "user_namespaces",
        "landlock",
        "seccomp",
        "cgroup_v2",
        "limits",
    ] {
        if let Some(fix) = f[key]["fix"].as_str() {
            fixes.push(format!("  {key}: {fix}"));
        }
    }
    if !fixes.is_empty() {
        out.push_str("\nhow to get more:\n");
        out.push_str(&fixes.join("\n"));
        out.push('\n');
    }
    out
}
