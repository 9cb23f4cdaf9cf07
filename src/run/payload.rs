//! The payload process: the last steps before exec, in the order that
//! works: no inherited fds, no capabilities, no_new_privs, Landlock, then
//! seccomp last (it would forbid the earlier steps), then exec.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::libc;

use super::channel::{ChildEnd, GO};
use super::Launch;
use crate::layers::{landlock, limits, privs, seccomp};

pub fn main(launch: &Launch, mut chan: ChildEnd) -> ! {
    privs::reset_signals();
    // Without a terminal the command gets its own session: it cannot reach
    // the caller's terminal through a controlling tty.
    if !launch.stdin_tty {
        let _ = nix::unistd::setsid();
    }
    if !launch.namespaces {
        if let Err(e) = nix::unistd::chdir(&launch.policy.project) {
            fatal(
                &mut chan,
                &format!("chdir {}: {e}", launch.policy.project.display()),
            );
        }
    }
    if let Err(e) = privs::cloexec_inherited_fds() {
        fatal(&mut chan, &e);
    }
    if let Err(e) = privs::drop_capabilities() {
        fatal(&mut chan, &e);
    }
    if let Err(e) = privs::set_no_new_privs() {
        fatal(&mut chan, &e);
    }
    if let Some(rules) = &launch.landlock {
        match landlock::enforce(rules) {
            Ok(o) => chan.report(
                "landlock",
                &format!(
                    "{} {} {} {} {} {}",
                    o.in_force as u8, o.abi, o.status, o.tcp as u8, o.scopes as u8, o.unix as u8
                ),
            ),
            Err(e) => fatal(&mut chan, &e),
        }
    }
    if let Some(programs) = &launch.seccomp {
        if let Err(e) = seccomp::apply(programs) {
            fatal(&mut chan, &e);
        }
        chan.report("seccomp", "1");
    }
    // Last, so that a small open_files or memory limit does not starve
    // the steps above (Landlock opens a descriptor per rule).
    if let Err(e) = limits::apply_rlimits(&launch.limits, &launch.limit_plan) {
        fatal(&mut chan, &e);
    }
    if !launch.namespaces {
        // The supervisor's handle to end the sandbox at the time-out.
        chan.report("pid", &nix::unistd::getpid().to_string());
    }
    chan.report(
        "nnp",
        if crate::probe::no_new_privs() {
            "1"
        } else {
            "0"
        },
    );
    chan.report("ready", "");
    if chan.wait_command() != Some(GO) {
        // SAFETY: _exit is always sound; nothing of the command ran.
        unsafe { libc::_exit(125) };
    }
    let err = exec(&launch.argv, &launch.env, &launch.path);
    let (code, what) = match err {
        Errno::ENOENT | Errno::ENOTDIR => (127, "command not found".to_string()),
        e => (126, format!("cannot execute: {}", e.desc())),
    };
    chan.report(
        "exec-failed",
        &format!("{code} {}: {what}", launch.argv[0].to_string_lossy()),
    );
    // SAFETY: _exit is always sound.
    unsafe { libc::_exit(code) }
}

fn fatal(chan: &mut ChildEnd, message: &str) -> ! {
    chan.report("fatal", message);
    // SAFETY: _exit is always sound.
    unsafe { libc::_exit(125) }
}

/// execve, searching the sandbox's PATH (not bwai's own) like execvp does.
/// Returns only on failure: the most telling errno (EACCES over ENOENT).
fn exec(argv: &[CString], env: &[CString], path: &str) -> Errno {
    let prog = argv[0].as_bytes();
    let candidates: Vec<CString> = if prog.contains(&b'/') {
        vec![argv[0].clone()]
    } else {
        path.split(':')
            .map(|dir| if dir.is_empty() { "." } else { dir })
            .filter_map(|dir| {
                let full = Path::new(dir).join(std::ffi::OsStr::from_bytes(prog));
                CString::new(full.as_os_str().as_bytes()).ok()
            })
            .collect()
    };
    let mut best = Errno::ENOENT;
    for c in candidates {
        let Err(e) = nix::unistd::execve(&c, argv, env);
        if e != Errno::ENOENT && e != Errno::ENOTDIR {
            best = e;
        }
    }
    best
}
