//! What the kernel offers, learnt cheaply and without side effects: a few
//! syscalls that only ask (Landlock's version query, `prctl` getters) and a
//! few sysctl reads. No fork on this path: whether user namespaces really
//! work is learnt by trying them when the sandbox starts (the supervisor
//! falls back if the attempt fails), and `bwai doctor` runs a full trial.

use std::path::Path;

use nix::libc;

/// Everything the plan needs to know about this kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub kernel: String,
    pub userns: Userns,
    /// The kernel's Landlock ABI version; 0 when Landlock is unavailable.
    pub landlock_abi: u32,
    /// Why Landlock is unavailable, when it is.
    pub landlock_reason: Option<String>,
    pub seccomp: Seccomp,
    /// no_new_privs is already set on bwai itself (e.g. inside a container).
    pub no_new_privs_already: bool,
    pub euid: u32,
}

/// What the cheap checks say about unprivileged user namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Userns {
    /// Nothing known blocks them; the supervisor will try.
    Likely { suspicion: Option<Blocker> },
    /// Known not to work, with why.
    Blocked(Blocker),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    pub reason: String,
    pub fix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seccomp {
    /// The kernel can install seccomp filters.
    pub available: bool,
    /// bwai already runs under a seccomp filter (a container, systemd...).
    pub inherited_filter: bool,
}

/// The Landlock features that come with each ABI version (from the kernel
/// documentation), as reported to the user.
pub const LANDLOCK_FEATURES: &[(&str, u32)] = &[
    ("fs", 1),
    ("refer", 2),
    ("truncate", 3),
    ("tcp", 4),
    ("ioctl-dev", 5),
    ("scopes", 6),
    ("audit", 7),
];

pub fn landlock_features(abi: u32) -> Vec<&'static str> {
    LANDLOCK_FEATURES
        .iter()
        .filter(|(_, v)| abi >= *v)
        .map(|(n, _)| *n)
        .collect()
}

pub fn probe() -> Capabilities {
    let (landlock_abi, landlock_reason) = landlock_abi();
    Capabilities {
        kernel: kernel_release(),
        userns: userns_hint(),
        landlock_abi,
        landlock_reason,
        seccomp: seccomp_state(),
        no_new_privs_already: no_new_privs(),
        euid: nix::unistd::geteuid().as_raw(),
    }
}

pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;

/// Ask the kernel for its Landlock ABI version (no ruleset is created).
pub fn landlock_abi() -> (u32, Option<String>) {
    // SAFETY: with a NULL attr, size 0 and the VERSION flag the kernel only
    // returns a number; no memory is read or written and no fd is created.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if ret >= 1 {
        return (ret as u32, None);
    }
    let reason = match nix::errno::Errno::last() {
        nix::errno::Errno::ENOSYS => {
            "the kernel has no Landlock (not built in, older than 5.13, or the syscall is filtered)"
                .to_string()
        }
        nix::errno::Errno::EOPNOTSUPP => {
            "Landlock is built in but not enabled (add `landlock` to the `lsm=` boot parameter)"
                .to_string()
        }
        e => format!("the Landlock version query failed: {e}"),
    };
    (0, Some(reason))
}

fn seccomp_state() -> Seccomp {
    // SAFETY: PR_GET_SECCOMP takes no pointer arguments.
    let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    Seccomp {
        available: mode >= 0,
        inherited_filter: mode == 2,
    }
}

pub fn no_new_privs() -> bool {
    // SAFETY: PR_GET_NO_NEW_PRIVS takes no pointer arguments.
    unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 }
}

fn read_sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The sysctls that block or restrict user namespaces. Cheap file reads.
pub fn userns_hint() -> Userns {
    let root = nix::unistd::geteuid().is_root();
    if read_sysctl("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Userns::Blocked(Blocker {
            reason: "user namespaces are disabled (sysctl user.max_user_namespaces = 0)".into(),
            fix: "sudo sysctl -w user.max_user_namespaces=15000 (and persist it in /etc/sysctl.d/)"
                .into(),
        });
    }
    if !root && read_sysctl("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Userns::Blocked(Blocker {
            reason: "unprivileged user namespaces are disabled (sysctl kernel.unprivileged_userns_clone = 0)"
                .into(),
            fix: "sudo sysctl -w kernel.unprivileged_userns_clone=1 (and persist it in /etc/sysctl.d/)".into(),
        });
    }
    let suspicion = if !root
        && read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref()
            == Some("1")
    {
        Some(apparmor_blocker())
    } else if seccomp_state().inherited_filter {
        Some(Blocker {
            reason: "bwai runs under an inherited seccomp filter (a container's default profile denies user namespaces)"
                .into(),
            fix: "run the container with a seccomp profile that allows unshare/clone with CLONE_NEWUSER, \
                  or accept the Landlock + seccomp fallback"
                .into(),
        })
    } else {
        None
    };
    Userns::Likely { suspicion }
}

pub fn apparmor_blocker() -> Blocker {
    Blocker {
        reason: "AppArmor restricts unprivileged user namespaces \
                 (sysctl kernel.apparmor_restrict_unprivileged_userns = 1, Ubuntu 24.04 default)"
            .into(),
        fix: "install an AppArmor profile that allows bwai user namespaces, e.g. /etc/apparmor.d/bwai:\n    \
              abi <abi/4.0>, include <tunables/global>\n    \
              profile bwai /usr/local/bin/bwai flags=(unconfined) { userns, }\n  \
              then `sudo apparmor_parser -r /etc/apparmor.d/bwai` (adjust the path to where bwai is installed)"
            .into(),
    }
}

/// Explain an errno from creating the user namespace.
pub fn explain_userns_errno(errno: nix::errno::Errno, hint: &Userns) -> Blocker {
    use nix::errno::Errno;
    if let Userns::Likely { suspicion: Some(s) } = hint {
        return Blocker {
            reason: format!("{} ({errno})", s.reason),
            fix: s.fix.clone(),
        };
    }
    match errno {
        Errno::ENOSPC | Errno::EUSERS => Blocker {
            reason: format!("the user namespace limit is reached ({errno})"),
            fix: "raise sysctl user.max_user_namespaces".into(),
        },
        Errno::EPERM => Blocker {
            reason: "creating a user namespace is not permitted (EPERM): a seccomp filter \
                     (container default profile) or a security module denies it"
                .into(),
            fix: "in Docker/Kubernetes allow unshare/clone with CLONE_NEWUSER in the seccomp profile; \
                  elsewhere check `bwai doctor`"
                .into(),
        },
        Errno::EINVAL => Blocker {
            reason: "the kernel refused the namespace flags (EINVAL): too old, or bwai is multi-threaded".into(),
            fix: "use a kernel with user namespaces (3.8+) and cgroup namespaces (4.6+)".into(),
        },
        e => Blocker { reason: format!("creating the user namespace failed: {e}"), fix: "see `bwai doctor`".into() },
    }
}

/// cgroup v2: mounted, and whether this process may create a child cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupState {
    pub v2: bool,
    pub delegated: bool,
    pub path: Option<String>,
}

pub fn cgroup_state() -> CgroupState {
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("0::").map(|p| p.to_string()))
        });
    let delegated = match (&own, v2) {
        (Some(p), true) => {
            let dir = format!("/sys/fs/cgroup{}", p.trim_end_matches('/'));
            nix::unistd::access(Path::new(&dir), nix::unistd::AccessFlags::W_OK).is_ok()
        }
        _ => false,
    };
    CgroupState {
        v2,
        delegated,
        path: own,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_grow_with_the_abi() {
        assert!(landlock_features(0).is_empty());
        assert_eq!(landlock_features(1), vec!["fs"]);
        assert_eq!(landlock_features(4), vec!["fs", "refer", "truncate", "tcp"]);
        assert_eq!(landlock_features(9).len(), LANDLOCK_FEATURES.len());
    }
}
