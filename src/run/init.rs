//! Init: pid 1 of the sandbox (or, without namespaces, a subreaper standing
//! in for it). It builds the filesystem view, starts the payload, relays
//! signals, reaps zombies, and when the payload exits, ends everything the
//! payload started and exits with the payload's status.

use std::path::Path;

use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, getppid, ForkResult, Pid};

use super::channel::{ChildEnd, MAPS_WRITTEN, PLACED};
use super::{payload, Launch};
use crate::layers::{mounts, namespaces, privs};

fn exit(code: i32) -> ! {
    // SAFETY: _exit is always sound.
    unsafe { libc::_exit(code) }
}

pub fn main(launch: &Launch, mut chan: ChildEnd, supervisor: Pid) -> ! {
    if launch.namespaces {
        // If the supervisor dies, the kernel kills us, and with pid 1 the
        // whole pid namespace.
        privs::die_with_parent(Signal::SIGKILL);
        if chan.wait_command() != Some(MAPS_WRITTEN) {
            exit(125);
        }
        if let Err(e) = setup_namespaces(launch, &mut chan) {
            match e {
                mounts::SetupError::Unusable(m) => chan.report("fatal-userns", &m),
                mounts::SetupError::Failed(m) => chan.report("fatal", &m),
            }
            exit(125);
        }
    } else {
        // The proxy's socket is the supervisor's to serve, not ours.
        if let Some(fd) = launch.proxy_listener {
            // SAFETY: closing our inherited copy of a descriptor number.
            unsafe { libc::close(fd) };
        }
        // No pid namespace: be the subreaper of everything the payload
        // starts, and end it all when the supervisor dies (SIGTERM below).
        privs::die_with_parent(Signal::SIGTERM);
        if getppid() != supervisor {
            exit(125);
        }
        // The command must be born in the sandbox cgroup: wait until the
        // supervisor has put us there.
        if chan.wait_command() != Some(PLACED) {
            exit(125);
        }
        // SAFETY: integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }

    // Init holds bwai's original environment (and, in namespaces, every
    // capability there): the command must not ptrace it or read its
    // /proc/1/environ. Exec makes the command itself dumpable again.
    privs::set_not_dumpable();

    // SAFETY: init is single-threaded (forked from the single-threaded supervisor).
    let payload_pid = match unsafe { fork() } {
        Ok(ForkResult::Child) => payload::main(launch, chan),
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => {
            chan.report("fatal", &format!("fork of the command: {e}"));
            exit(125);
        }
    };

    let set = privs::handled_set();
    loop {
        let Some((sig, from_process)) = wait_signal(&set) else {
            continue;
        };
        if sig == Signal::SIGCHLD {
            if let Some(code) = reap(payload_pid, &mut chan) {
                if !launch.namespaces {
                    kill_descendants();
                }
                if let Some(kib) = super::limits::children_maxrss_kib() {
                    chan.report("maxrss", &kib.to_string());
                }
                exit(code);
            }
            continue;
        }
        if !launch.namespaces && sig == Signal::SIGTERM && getppid() != supervisor {
            // The supervisor is gone (our death signal): end everything.
            kill_descendants();
            exit(128 + libc::SIGKILL);
        }
        // Signals from the terminal reached the command directly (same
        // process group); relay only what the supervisor sent.
        if from_process {
            let _ = kill(payload_pid, sig);
        }
    }
}

fn setup_namespaces(launch: &Launch, chan: &mut ChildEnd) -> Result<(), mounts::SetupError> {
    let _ = nix::unistd::sethostname("bwai");
    if launch.ns_flags & libc::CLONE_NEWNET != 0 {
        namespaces::loopback_up().map_err(mounts::SetupError::Failed)?;
    }
    if let Some(fd) = launch.proxy_sender {
        super::handoff::listen_and_send(fd).map_err(mounts::SetupError::Failed)?;
        // SAFETY: our copy of the sending end; nothing else uses it.
        unsafe { libc::close(fd) };
    }
    for w in mounts::build_root(launch.policy)? {
        chan.report("warn", &w);
    }
    for w in crate::layers::protect::bind_read_only(&launch.protected) {
        chan.report("warn", &w);
    }
    Ok(())
}

/// Wait for a signal of `set`: the signal, and whether a process (not the
/// kernel) sent it.
pub fn wait_signal(set: &nix::sys::signal::SigSet) -> Option<(Signal, bool)> {
    take_signal(set, None)
}

/// sigtimedwait, at most `timeout` (None: as long as it takes). None when
/// no signal came (time-out, interruption).
pub fn take_signal(
    set: &nix::sys::signal::SigSet,
    timeout: Option<&libc::timespec>,
) -> Option<(Signal, bool)> {
    let timeout = timeout.map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: siginfo_t is plain data; sigtimedwait fills it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: set and info are valid for the call; timeout is null or valid.
    let n = unsafe { libc::sigtimedwait(set.as_ref(), &mut info, timeout) };
    if n < 0 {
        return None;
    }
    let sig = Signal::try_from(n).ok()?;
    // SI_USER (kill), SI_QUEUE, SI_TKILL... are <= 0; the terminal's are SI_KERNEL.
    Some((sig, info.si_code <= 0))
}

/// Reap every exited child; the payload's status as an exit code once it is gone.
fn reap(payload: Pid, chan: &mut ChildEnd) -> Option<i32> {
    let mut result = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == payload => {
                chan.report("exit", &code.to_string());
                result = Some(code);
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == payload => {
                chan.report("signal", &(sig as i32).to_string());
                result = Some(128 + sig as i32);
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(_) => {}
        }
    }
}

/// Without a pid namespace: SIGKILL every descendant (they are all ours:
/// orphans are reparented to us as the subreaper) until none is left.
pub fn kill_descendants() {
    let me = nix::unistd::getpid().as_raw();
    for _ in 0..1000 {
        let found = descendants(me);
        if found.is_empty() {
            break;
        }
        for pid in found {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) | Err(_) => break,
                Ok(_) => {}
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn descendants(root: i32) -> Vec<i32> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = ppid_of(&Path::new("/proc").join(pid.to_string()).join("stat")) {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out.remove(0);
    out
}

fn ppid_of(stat: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(stat).ok()?;
    // The command name may contain spaces and parentheses: skip past the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}
