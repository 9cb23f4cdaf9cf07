//! The Landlock layer: a kernel-enforced allow-list that mirrors the mount
//! view, so a mount trick (or a kernel without namespaces) still meets the
//! same policy: "denied" instead of "absent". Also TCP port rules (ABI >= 4)
//! and scopes (ABI >= 6: no abstract unix sockets or signals outside).
//!
//! The status the kernel reports back is what we report, not what we asked:
//! best-effort that silently enforces nothing is a known trap.

use std::path::{Path, PathBuf};

use landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, LandlockStatus, NetPort,
    PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

use crate::config::NetMode;
use crate::policy::{Access as PolicyAccess, Mount, Policy};

/// The highest ABI whose rights we request: the one tested here. Newer
/// kernels still enforce all of it; older ones enforce what they know.
const TESTED_ABI: ABI = ABI::V7;

/// Devices the sandbox may use (the minimal /dev).
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
];

/// The paths and rights to grant; everything else is denied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Read and execute.
    pub read: Vec<PathBuf>,
    /// Everything (create, write, remove, rename...).
    pub write: Vec<PathBuf>,
    /// Read, write and device ioctls.
    pub devices: Vec<PathBuf>,
    /// The sandbox's own /proc (read; write too when it is a private procfs).
    pub proc_dir: PathBuf,
    pub proc_writable: bool,
    /// Listing `/` (only where `/` is the sandbox's own tmpfs root).
    pub list_root: bool,
    /// Deny every TCP bind/connect (network `none` without a network namespace).
    pub deny_tcp: bool,
    /// Deny every TCP bind, and every connect but to this port (network
    /// `allow` without a network namespace: the proxy's port).
    pub connect_tcp_port: Option<u16>,
    /// Mediate connect()/sendmsg() on pathname unix sockets (ABI >= 9), with
    /// the same grants as the files: without a mount namespace, the host's
    /// sockets (D-Bus, ssh-agent, docker) are otherwise all in reach. Set by
    /// the supervisor (`plan::compensation`) only where the kernel has it.
    pub resolve_unix: bool,
}

/// Mirror the policy. With namespaces the rules name paths as seen inside
/// (after pivot_root); without, the host paths, and `/tmp` is `private_tmp`.
pub fn rules(policy: &Policy, namespaces: bool, private_tmp: Option<&Path>) -> Rules {
    let mut r = Rules {
        proc_dir: "/proc".into(),
        proc_writable: namespaces,
        list_root: namespaces,
        ..Default::default()
    };
    for m in &policy.mounts {
        match m {
            Mount::Bind {
                src, dst, access, ..
            } => {
                let path = if namespaces { dst } else { src };
                match access {
                    PolicyAccess::ReadOnly => r.read.push(path.clone()),
                    PolicyAccess::ReadWrite => r.write.push(path.clone()),
                }
            }
            Mount::Copy { src, dst, .. } => r.read.push(if namespaces { dst } else { src }.clone()),
            Mount::Tmpfs { dst, .. } if namespaces => r.write.push(dst.clone()),
            Mount::Tmpfs { dst, .. } if dst == Path::new("/tmp") => {
                if let Some(t) = private_tmp {
                    r.write.push(t.to_path_buf());
                }
            }
            // Without namespaces there is no empty home: nothing of it is granted.
            Mount::Tmpfs { .. } => {}
            // A link's target is covered by the rule of the tree it points into.
            Mount::Symlink { .. } => {}
        }
    }
    r.devices = DEVICES.iter().map(PathBuf::from).collect();
    if namespaces {
        r.write.push("/dev/shm".into());
        // Inside, /etc holds only the allowed entries (read-only): one rule
        // for the directory says the same as one per entry, and is cheaper.
        if r.read.iter().any(|p| p.starts_with("/etc")) {
            r.read.retain(|p| !p.starts_with("/etc"));
            r.read.push("/etc".into());
        }
        r.read = without_covered(&r.read, &r.write);
        r.write = without_covered(&r.write, &[]);
    }
    r.deny_tcp = !namespaces && policy.net == NetMode::None;
    r
}

/// Drop paths that an ancestor in the same list, or in `wider` (a list that
/// grants more), already covers: Landlock rights are inherited downwards.
fn without_covered(paths: &[PathBuf], wider: &[PathBuf]) -> Vec<PathBuf> {
    let covered = |p: &PathBuf| {
        paths.iter().any(|q| q != p && p.starts_with(q)) || wider.iter().any(|q| p.starts_with(q))
    };
    let mut out: Vec<PathBuf> = paths.iter().filter(|p| !covered(p)).cloned().collect();
    out.dedup();
    out
}

/// What the kernel really enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub in_force: bool,
    /// The ABI whose features are enforced: min(kernel, tested).
    pub abi: u32,
    /// `fully_enforced`, `partially_enforced` or `not_enforced`.
    pub status: &'static str,
    pub tcp: bool,
    pub scopes: bool,
    /// Pathname unix sockets outside the rules cannot be connected to.
    pub unix: bool,
    /// Rule paths that did not exist (nothing granted for them).
    pub skipped: Vec<PathBuf>,
}

fn abi_number(abi: ABI) -> u32 {
    match abi {
        ABI::Unsupported => 0,
        ABI::V1 => 1,
        ABI::V2 => 2,
        ABI::V3 => 3,
        ABI::V4 => 4,
        ABI::V5 => 5,
        ABI::V6 => 6,
        ABI::V7 => 7,
        ABI::V8 => 8,
        ABI::V9 => 9,
        _ => 10,
    }
}

fn rule(path: &Path, access: BitFlags<AccessFs>) -> Option<PathBeneath<PathFd>> {
    let fd = PathFd::new(path).ok()?;
    let is_dir = std::fs::metadata(path).map(|m| m.is_dir()).unwrap_or(false);
    // Directory-only rights on a file would be refused: keep the file rights.
    let access = if is_dir {
        access
    } else {
        access & (AccessFs::from_file(TESTED_ABI) | AccessFs::ResolveUnix)
    };
    Some(PathBeneath::new(fd, access))
}

/// Build and enforce the ruleset on the calling thread.
pub fn enforce(r: &Rules) -> Result<Outcome, String> {
    // Unix socket resolution is granted where the files are (a socket one
    // may read or write in the view is one it may connect to, as through a
    // bind mount), and handled only when asked for: it needs ABI 9.
    let unix = if r.resolve_unix {
        BitFlags::from(AccessFs::ResolveUnix)
    } else {
        BitFlags::EMPTY
    };
    let read = AccessFs::from_read(TESTED_ABI) | unix;
    let all = AccessFs::from_all(TESTED_ABI) | unix;
    let dev = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::ReadDir | AccessFs::IoctlDev;
    let proc_access = if r.proc_writable {
        read | AccessFs::WriteFile
    } else {
        read
    };

    let err = |what: &str, e: landlock::RulesetError| format!("landlock: {what}: {e}");
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)
        .map_err(|e| err("handling filesystem access", e))?;
    let restrict_tcp = r.deny_tcp || r.connect_tcp_port.is_some();
    if restrict_tcp {
        ruleset = ruleset
            .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)
            .map_err(|e| err("handling TCP access", e))?;
    }
    ruleset = ruleset
        .scope(Scope::AbstractUnixSocket | Scope::Signal)
        .map_err(|e| err("scoping sockets and signals", e))?;
    let mut created = ruleset
        .create()
        .map_err(|e| err("creating the ruleset", e))?;

    let mut skipped = Vec::new();
    let mut grants: Vec<(&Path, BitFlags<AccessFs>)> = Vec::new();
    grants.extend(r.read.iter().map(|p| (p.as_path(), read)));
    grants.extend(r.write.iter().map(|p| (p.as_path(), all)));
    grants.extend(r.devices.iter().map(|p| (p.as_path(), dev)));
    grants.push((r.proc_dir.as_path(), proc_access));
    if r.list_root {
        grants.push((Path::new("/"), AccessFs::ReadDir.into()));
    }
    for (path, access) in grants {
        match rule(path, access) {
            Some(rule) => {
                created = created
                    .add_rule(rule)
                    .map_err(|e| err(&format!("adding a rule for {}", path.display()), e))?
            }
            None => {
                log::debug!("landlock: {} does not exist, no rule", path.display());
                skipped.push(path.to_path_buf());
            }
        }
    }
    if let Some(port) = r.connect_tcp_port {
        created = created
            .add_rule(NetPort::new(port, AccessNet::ConnectTcp))
            .map_err(|e| err(&format!("allowing TCP connect to port {port}"), e))?;
    }
    let status = created
        .restrict_self()
        .map_err(|e| err("restricting self", e))?;
    let kernel_abi = match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => abi_number(effective_abi),
        _ => 0,
    };
    let (in_force, name) = match status.ruleset {
        RulesetStatus::FullyEnforced => (true, "fully_enforced"),
        RulesetStatus::PartiallyEnforced => (true, "partially_enforced"),
        RulesetStatus::NotEnforced => (false, "not_enforced"),
    };
    // Best effort drops what the kernel lacks; the unix socket right must
    // not go silently: the supervisor counted on it instead of seccomp.
    if r.resolve_unix && in_force && kernel_abi < 9 {
        return Err(format!(
            "landlock: unix socket rules need ABI 9, the kernel enforced ABI {kernel_abi}"
        ));
    }
    let tested = if r.resolve_unix {
        9
    } else {
        abi_number(TESTED_ABI)
    };
    let abi = if in_force { kernel_abi.min(tested) } else { 0 };
    Ok(Outcome {
        in_force,
        abi,
        status: name,
        tcp: restrict_tcp && abi >= 4,
        scopes: abi >= 6,
        unix: r.resolve_unix && abi >= 9,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Access;

    fn policy(net: NetMode) -> Policy {
        Policy {
            project: "/home/u/p".into(),
            home: "/home/u".into(),
            uid: 1000,
            gid: 1000,
            mounts: vec![
                Mount::Symlink {
                    dst: "/bin".into(),
                    target: "usr/bin".into(),
                    why: "",
                },
                Mount::Bind {
                    src: "/usr".into(),
                    dst: "/usr".into(),
                    access: Access::ReadOnly,
                    dir: true,
                    why: "",
                },
                Mount::Tmpfs {
                    dst: "/tmp".into(),
                    mode: 0o1777,
                    why: "",
                },
                Mount::Bind {
                    src: "/run/resolv.conf".into(),
                    dst: "/etc/resolv.conf".into(),
                    access: Access::ReadOnly,
                    dir: false,
                    why: "",
                },
                Mount::Tmpfs {
                    dst: "/home/u".into(),
                    mode: 0o700,
                    why: "",
                },
                Mount::Bind {
                    src: "/home/u/p".into(),
                    dst: "/home/u/p".into(),
                    access: Access::ReadWrite,
                    dir: true,
                    why: "",
                },
            ],
            env: vec![],
            argv: vec!["true".into()],
            interactive: false,
            net,
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

    #[test]
    fn namespace_rules_mirror_the_view_inside() {
        let r = rules(&policy(NetMode::None), true, None);
        // One rule for /etc: inside, it holds only the allowed entries.
        assert_eq!(r.read, vec![PathBuf::from("/usr"), PathBuf::from("/etc")]);
        assert!(r.write.contains(&"/tmp".into()) && r.write.contains(&"/home/u".into()));
        // The project is inside the (writable, private) home tmpfs: covered by it.
        assert!(!r.write.contains(&"/home/u/p".into()));
        assert!(
            r.list_root && !r.deny_tcp,
            "the network namespace handles `none`"
        );
    }

    #[test]
    fn fallback_rules_name_host_paths_and_never_the_home() {
        let r = rules(
            &policy(NetMode::None),
            false,
            Some(Path::new("/tmp/bwai-x")),
        );
        assert_eq!(
            r.read,
            vec![PathBuf::from("/usr"), PathBuf::from("/run/resolv.conf")]
        );
        assert_eq!(
            r.write,
            vec![PathBuf::from("/tmp/bwai-x"), PathBuf::from("/home/u/p")]
        );
        assert!(!r.list_root && !r.proc_writable);
        assert!(
            r.deny_tcp,
            "without a network namespace, `none` is Landlock's job"
        );
        assert!(
            !r.write.contains(&"/dev/shm".into()),
            "host shared memory stays out"
        );
    }
}
