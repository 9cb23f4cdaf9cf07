//! Policy x Capabilities -> Plan: which layers to apply, and why each one is
//! or is not there. Pure, and unit-tested for every rung of the fallback
//! ladder (DESIGN.md): full, no namespaces, no Landlock, neither.

use crate::config::{Layer, NetMode};
use crate::error::{Error, Result};
use crate::layers::seccomp;
use crate::probe::{Capabilities, Userns};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Namespaces, Landlock and seccomp are all in force.
    Full,
    /// At least one of namespaces / Landlock is in force, not all layers.
    Degraded,
    /// Neither namespaces nor Landlock: only with the explicit opt-in.
    Unconfined,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Degraded => "degraded",
            Mode::Unconfined => "unconfined",
        }
    }
}

/// One layer's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerPlan {
    pub planned: bool,
    /// Why it is not planned.
    pub reason: Option<String>,
    /// How to get it.
    pub fix: Option<String>,
}

impl LayerPlan {
    fn yes() -> Self {
        LayerPlan {
            planned: true,
            reason: None,
            fix: None,
        }
    }
    fn no(reason: impl Into<String>, fix: impl Into<String>) -> Self {
        LayerPlan {
            planned: false,
            reason: Some(reason.into()),
            fix: Some(fix.into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub namespaces: LayerPlan,
    pub landlock: LayerPlan,
    pub seccomp: LayerPlan,
    /// Resource limits: planned here, decided by the supervisor once it
    /// knows whether a cgroup exists (`run`), for `--require limits`.
    pub limits: LayerPlan,
    pub mode: Mode,
}

impl Plan {
    pub fn layer(&self, layer: Layer) -> &LayerPlan {
        match layer {
            Layer::Namespaces => &self.namespaces,
            Layer::Landlock => &self.landlock,
            Layer::Seccomp => &self.seccomp,
            Layer::Limits => &self.limits,
        }
    }

    /// One warning line per missing layer: what is lost, why, and the fix.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (layer, lost) in [
            (
                Layer::Namespaces,
                "hidden files are denied instead of absent, no private /tmp, no pid namespace",
            ),
            (
                Layer::Landlock,
                "no kernel-enforced file allow-list under the mount view",
            ),
            (Layer::Seccomp, "dangerous syscalls are not filtered"),
        ] {
            let p = self.layer(layer);
            if !p.planned {
                let mut line = format!(
                    "no {}: {} ({lost})",
                    layer.name(),
                    p.reason.as_deref().unwrap_or("unavailable")
                );
                if let Some(fix) = &p.fix {
                    line.push_str(&format!("; fix: {fix}"));
                }
                out.push(line);
            }
        }
        out
    }
}

/// Decide the layers. `userns_failed` carries the reason when an attempt to
/// create the namespaces already failed at run time (the fallback re-plan).
pub fn plan(
    caps: &Capabilities,
    require: &[Layer],
    allow_unconfined: bool,
    userns_failed: Option<(String, String)>,
) -> Result<Plan> {
    let namespaces = match (&userns_failed, &caps.userns) {
        (Some((reason, fix)), _) => LayerPlan::no(reason.clone(), fix.clone()),
        (None, Userns::Blocked(b)) => LayerPlan::no(b.reason.clone(), b.fix.clone()),
        (None, Userns::Likely { .. }) => LayerPlan::yes(),
    };
    let landlock = if caps.landlock_abi >= 1 {
        LayerPlan::yes()
    } else {
        LayerPlan::no(
            caps.landlock_reason.clone().unwrap_or_else(|| "Landlock is unavailable".into()),
            "use a kernel >= 5.13 with Landlock enabled (CONFIG_SECURITY_LANDLOCK, `lsm=...,landlock`)",
        )
    };
    let seccomp = if caps.seccomp.available {
        LayerPlan::yes()
    } else {
        LayerPlan::no(
            "the kernel has no seccomp filter support",
            "use a kernel built with CONFIG_SECCOMP_FILTER",
        )
    };

    let mode = if namespaces.planned && landlock.planned && seccomp.planned {
        Mode::Full
    } else if namespaces.planned || landlock.planned {
        Mode::Degraded
    } else {
        Mode::Unconfined
    };
    let plan = Plan {
        namespaces,
        landlock,
        seccomp,
        limits: LayerPlan::yes(),
        mode,
    };

    for layer in require {
        let p = plan.layer(*layer);
        if !p.planned {
            return Err(Error::refused(format!(
                "required layer `{}` is not available: {}",
                layer.name(),
                p.reason.as_deref().unwrap_or("unavailable")
            ))
            .with_hint(p.fix.clone().unwrap_or_else(|| "see `bwai doctor`".into())));
        }
    }
    if mode == Mode::Unconfined && !allow_unconfined {
        return Err(Error::refused(
            "neither namespaces nor Landlock are available: the command would run without filesystem \
             isolation, so bwai refuses",
        )
        .with_hint(format!(
            "{}; pass --dangerously-run-unconfined to run with only seccomp and no_new_privs",
            plan.warnings().join("; ")
        )));
    }
    Ok(plan)
}

/// What the other layers add when a layer is missing, so that the host
/// stays out of reach, and what the user is told about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compensation {
    /// Refused by seccomp on top of its deny list.
    pub seccomp: seccomp::Extra,
    /// Landlock mediates connect()/sendmsg() on pathname unix sockets
    /// (LANDLOCK_ACCESS_FS_RESOLVE_UNIX, ABI >= 9).
    pub landlock_resolve_unix: bool,
    pub warnings: Vec<String>,
}

/// The setting that lets unix sockets back in without namespaces.
pub const ALLOW_HOST_UNIX_SOCKETS_KEY: &str = "seccomp.dangerously_allow_host_unix_sockets";

/// Decide the compensation. Pure.
///
/// - Network `none`: a network namespace confines inet and netlink sockets,
///   not AF_VSOCK and the like, so only those families may be created; with
///   no namespace, no network family at all.
/// - No namespaces: System V IPC of the host is reachable (no IPC
///   namespace), so it is refused. Pathname unix sockets of the host (D-Bus,
///   ssh-agent, docker) are reachable too (no mount namespace): Landlock
///   ABI >= 9 mediates them by path; before that, only refusing to create
///   unix sockets keeps them out, unless the user opted out.
pub fn compensation(
    namespaces: bool,
    net: NetMode,
    landlock_abi: Option<u32>,
    allow_host_unix_sockets: bool,
) -> Compensation {
    use nix::libc::{AF_INET, AF_INET6, AF_NETLINK, AF_UNIX};
    let mut c = Compensation::default();
    // A network namespace confines inet and netlink sockets, not AF_VSOCK
    // and the like: `none` and `allow` keep to the confined families.
    // Without one, `none` has only unix sockets, and `allow` TCP (which
    // Landlock lets reach only the proxy's port) besides.
    match (net, namespaces) {
        (NetMode::Host, _) => {}
        (_, true) => c.seccomp.socket_families = Some(vec![AF_UNIX, AF_INET, AF_INET6, AF_NETLINK]),
        (NetMode::None, false) => c.seccomp.socket_families = Some(vec![AF_UNIX]),
        (NetMode::Allow, false) => {
            c.seccomp.socket_families = Some(vec![AF_UNIX, AF_INET, AF_INET6]);
            c.seccomp.inet_stream_only = true;
        }
    }
    if namespaces {
        return c;
    }
    c.seccomp.deny_sysv_ipc = true;
    c.seccomp.own_rlimits_only = true;
    c.landlock_resolve_unix = landlock_abi.is_some_and(|abi| abi >= 9);
    c.seccomp.deny_unix_sockets = !c.landlock_resolve_unix && !allow_host_unix_sockets;
    let sysv = "System V IPC is refused (the host's objects would be reachable)";
    c.warnings.push(if c.seccomp.deny_unix_sockets {
        format!(
            "no namespaces: {sysv}, and so is creating unix sockets (the host's sockets, e.g. \
             D-Bus, ssh-agent, docker, would be reachable: Landlock before ABI 9 does not mediate \
             them); programs that use a daemon's socket or serve on one of their own fail; \
             `{ALLOW_HOST_UNIX_SOCKETS_KEY}: true` in ~/.bwai.json allows them back, and every \
             host socket with them"
        )
    } else if c.landlock_resolve_unix {
        format!("no namespaces: {sysv}; unix sockets outside the policy are denied by Landlock")
    } else {
        format!(
            "no namespaces: {sysv}; DANGER: `{ALLOW_HOST_UNIX_SOCKETS_KEY}` is set, so every unix \
             socket of the host that you can reach (D-Bus, ssh-agent, docker...) can be \
             connected to from the sandbox"
        )
    });
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Blocker, Seccomp};

    fn caps(userns: bool, abi: u32) -> Capabilities {
        Capabilities {
            kernel: "6.18".into(),
            userns: if userns {
                Userns::Likely { suspicion: None }
            } else {
                Userns::Blocked(Blocker {
                    reason: "max_user_namespaces = 0".into(),
                    fix: "sysctl".into(),
                })
            },
            landlock_abi: abi,
            landlock_reason: (abi == 0).then(|| "no landlock".into()),
            seccomp: Seccomp {
                available: true,
                inherited_filter: false,
            },
            no_new_privs_already: false,
            euid: 1000,
        }
    }

    #[test]
    fn modern_kernel_is_full() {
        let p = plan(&caps(true, 7), &[], false, None).unwrap();
        assert_eq!(p.mode, Mode::Full);
        assert!(p.warnings().is_empty());
    }

    #[test]
    fn no_userns_degrades_to_landlock_and_seccomp_with_reason_and_fix() {
        let p = plan(&caps(false, 7), &[], false, None).unwrap();
        assert_eq!(p.mode, Mode::Degraded);
        assert!(!p.namespaces.planned && p.landlock.planned && p.seccomp.planned);
        let w = p.warnings();
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("max_user_namespaces") && w[0].contains("fix: sysctl"),
            "{w:?}"
        );
    }

    #[test]
    fn failed_attempt_at_run_time_degrades_too() {
        let p = plan(
            &caps(true, 7),
            &[],
            false,
            Some(("EPERM".into(), "allow it".into())),
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Degraded);
        assert_eq!(p.namespaces.reason.as_deref(), Some("EPERM"));
    }

    #[test]
    fn no_landlock_degrades_to_namespaces_and_seccomp() {
        let p = plan(&caps(true, 0), &[], false, None).unwrap();
        assert_eq!(p.mode, Mode::Degraded);
        assert!(p.namespaces.planned && !p.landlock.planned);
    }

    #[test]
    fn neither_is_refused_unless_explicitly_allowed() {
        let e = plan(&caps(false, 0), &[], false, None).unwrap_err();
        assert_eq!(e.exit_code(), 125);
        assert!(e.hint.unwrap().contains("--dangerously-run-unconfined"));
        let p = plan(&caps(false, 0), &[], true, None).unwrap();
        assert_eq!(p.mode, Mode::Unconfined);
    }

    #[test]
    fn require_turns_degradation_into_refusal() {
        let e = plan(&caps(false, 7), &[Layer::Namespaces], false, None).unwrap_err();
        assert!(e.message.contains("`namespaces`"), "{}", e.message);
        assert!(plan(&caps(true, 0), &[Layer::Landlock], false, None).is_err());
        assert!(plan(
            &caps(true, 7),
            &[Layer::Namespaces, Layer::Landlock, Layer::Seccomp],
            false,
            None
        )
        .is_ok());
    }

    #[test]
    fn namespaces_need_no_compensation_except_for_net_none_families() {
        let c = compensation(true, NetMode::Host, Some(7), false);
        assert_eq!(c, Compensation::default());
        let c = compensation(true, NetMode::None, Some(7), false);
        let families = c.seccomp.socket_families.clone().unwrap();
        assert!(families.contains(&nix::libc::AF_INET) && families.contains(&nix::libc::AF_UNIX));
        assert!(!families.contains(&nix::libc::AF_VSOCK));
        assert!(!c.seccomp.deny_unix_sockets && !c.seccomp.deny_sysv_ipc);
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn without_namespaces_sysv_ipc_and_unix_sockets_are_refused_and_said() {
        let c = compensation(false, NetMode::Host, Some(7), false);
        assert!(c.seccomp.deny_sysv_ipc && c.seccomp.deny_unix_sockets);
        assert!(!c.landlock_resolve_unix);
        assert_eq!(c.seccomp.socket_families, None);
        assert_eq!(c.warnings.len(), 1);
        assert!(
            c.warnings[0].contains(ALLOW_HOST_UNIX_SOCKETS_KEY),
            "{:?}",
            c.warnings
        );
        // No Landlock at all (unconfined opt-in): still refused.
        assert!(
            compensation(false, NetMode::Host, None, false)
                .seccomp
                .deny_unix_sockets
        );
        // Network `none` without namespaces: no network family at all.
        let c = compensation(false, NetMode::None, Some(7), false);
        assert_eq!(c.seccomp.socket_families, Some(vec![nix::libc::AF_UNIX]));
    }

    #[test]
    fn allow_mode_keeps_to_confined_families_and_without_namespaces_to_tcp() {
        use nix::libc::{AF_INET, AF_INET6, AF_NETLINK, AF_UNIX, AF_VSOCK};
        let c = compensation(true, NetMode::Allow, Some(7), false);
        let families = c.seccomp.socket_families.clone().unwrap();
        assert!(!families.contains(&AF_VSOCK) && families.contains(&AF_NETLINK));
        assert!(!c.seccomp.inet_stream_only);
        let c = compensation(false, NetMode::Allow, Some(7), false);
        assert_eq!(
            c.seccomp.socket_families,
            Some(vec![AF_UNIX, AF_INET, AF_INET6])
        );
        assert!(c.seccomp.inet_stream_only && c.seccomp.deny_sysv_ipc);
    }

    #[test]
    fn landlock_abi9_mediates_unix_sockets_instead_of_seccomp() {
        let c = compensation(false, NetMode::Host, Some(9), false);
        assert!(c.landlock_resolve_unix && !c.seccomp.deny_unix_sockets);
        assert!(c.seccomp.deny_sysv_ipc);
    }

    #[test]
    fn the_opt_out_lets_unix_sockets_back_with_a_warning() {
        let c = compensation(false, NetMode::Host, Some(7), true);
        assert!(!c.seccomp.deny_unix_sockets && c.seccomp.deny_sysv_ipc);
        assert!(c.warnings[0].contains("DANGER"), "{:?}", c.warnings);
    }
}
