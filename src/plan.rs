//! Policy x Capabilities -> Plan: which layers to apply, and why each one is
//! or is not there. Pure, and unit-tested for every rung of the fallback
//! ladder (DESIGN.md): full, no namespaces, no Landlock, neither.

use crate::config::Layer;
use crate::error::{Error, Result};
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
}
