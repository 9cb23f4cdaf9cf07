//! `nolandlock PROG ARGS...`: run PROG as if the kernel had no Landlock.
//!
//! Test tooling for bwai's fallback mode. The three Landlock syscalls
//! (landlock_create_ruleset, landlock_add_rule, landlock_restrict_self) return
//! ENOSYS, which is what a kernel built without CONFIG_SECURITY_LANDLOCK says.
//! Everything else is allowed; the environment is passed unchanged and the
//! filter is inherited by PROG and everything it starts.

use std::collections::BTreeMap;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;

use nix::libc;
use seccompiler::{
    apply_filter, BpfProgram, SeccompAction, SeccompFilter, SeccompRule, TargetArch,
};

/// x86_64, aarch64 and riscv64 share these numbers (the "generic" table).
const LANDLOCK_SYSCALLS: [i64; 3] = [
    444, // landlock_create_ruleset
    445, // landlock_add_rule
    446, // landlock_restrict_self
];

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.is_empty() {
        eprintln!("usage: nolandlock PROG [ARGS...]");
        std::process::exit(2);
    }
    if let Err(e) = install_filter() {
        eprintln!("nolandlock: cannot install the seccomp filter: {e}");
        std::process::exit(125);
    }
    exec(args)
}

fn install_filter() -> Result<(), Box<dyn std::error::Error>> {
    // An empty rule list matches the syscall unconditionally.
    let rules: BTreeMap<i64, Vec<SeccompRule>> =
        LANDLOCK_SYSCALLS.iter().map(|&nr| (nr, vec![])).collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        TargetArch::try_from(std::env::consts::ARCH)?,
    )?;
    let program: BpfProgram = filter.try_into()?;
    // apply_filter sets no_new_privs first (required unprivileged).
    apply_filter(&program)?;
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
            eprintln!("nolandlock: an argument contains a NUL byte");
            std::process::exit(2);
        }
    };
    let err = nix::unistd::execvp(&argv[0], &argv).unwrap_err();
    eprintln!("nolandlock: cannot execute {:?}: {err}", argv[0]);
    std::process::exit(127);
}
