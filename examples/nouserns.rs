//! `nouserns PROG ARGS...`: run PROG where user namespaces cannot be created,
//! the way Docker's default seccomp profile blocks them.
//!
//! Test tooling for bwai's fallback mode. The filter makes `unshare` and `clone`
//! fail with EPERM when CLONE_NEWUSER is among their flags, and `clone3` fail
//! with ENOSYS (its flags are in memory, so Docker cannot inspect them and
//! returns ENOSYS, which makes glibc fall back to `clone`). Everything else is
//! allowed; the environment is passed unchanged. The filter is inherited by
//! PROG and everything it starts, exactly as inside a container.
//!
//! Unlike Docker, `unshare`/`clone` with other namespace flags and `setns` stay
//! allowed: the point is to simulate "no user namespaces", not "no root".

use std::collections::BTreeMap;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;

use nix::libc;
use seccompiler::{
    apply_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.is_empty() {
        eprintln!("usage: nouserns PROG [ARGS...]");
        std::process::exit(2);
    }
    if let Err(e) = install_filters() {
        eprintln!("nouserns: cannot install the seccomp filter: {e}");
        std::process::exit(125);
    }
    exec(args)
}

fn install_filters() -> Result<(), Box<dyn std::error::Error>> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)?;

    let has_newuser = || -> Result<SeccompRule, seccompiler::BackendError> {
        SeccompRule::new(vec![SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(libc::CLONE_NEWUSER as u64),
            libc::CLONE_NEWUSER as u64,
        )?])
    };
    let eperm_rules: BTreeMap<i64, Vec<SeccompRule>> = [
        (libc::SYS_unshare, vec![has_newuser()?]),
        (libc::SYS_clone, vec![has_newuser()?]),
    ]
    .into_iter()
    .collect();
    let eperm = SeccompFilter::new(
        eperm_rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )?;

    // An empty rule list matches the syscall unconditionally.
    let enosys_rules: BTreeMap<i64, Vec<SeccompRule>> =
        [(libc::SYS_clone3, vec![])].into_iter().collect();
    let enosys = SeccompFilter::new(
        enosys_rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )?;

    // Two filters because a seccompiler filter has one match action; the kernel
    // runs both. apply_filter sets no_new_privs first (required unprivileged).
    for filter in [eperm, enosys] {
        let program: BpfProgram = filter.try_into()?;
        apply_filter(&program)?;
    }
    Ok(())
}

fn exec(args: Vec<OsString>) -> ! {
    let argv: Vec<CString> = match args
        .into_iter()
        .map(|a| CString::new(a.into_vec()))
        .collect::<Result<_, _>>()
    {
        Ok(v) => v,
        Err(_) => {
            eprintln!("nouserns: an argument contains a NUL byte");
            std::process::exit(2);
        }
    };
    let err = nix::unistd::execvp(&argv[0], &argv).unwrap_err();
    eprintln!("nouserns: cannot execute {:?}: {err}", argv[0]);
    std::process::exit(127);
}
