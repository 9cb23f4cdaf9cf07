//! Process hygiene before exec: no inherited descriptors, no capabilities,
//! no_new_privs, default signal dispositions.

use std::os::fd::RawFd;

use nix::libc;
use nix::sys::signal::{self, SigHandler, SigSet, Signal};

/// Mark every descriptor above 2 close-on-exec, so nothing opened outside
/// (a leaked fd to a host directory: runc CVE-2024-21626) reaches the
/// command. Our own pipes stay usable until the exec.
pub fn cloexec_inherited_fds() -> Result<(), String> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range with CLOEXEC only changes descriptor flags.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if ret == 0 {
        return Ok(());
    }
    // Kernels before 5.11: walk /proc/self/fd (or /dev/fd) by hand.
    let dir =
        std::fs::read_dir("/proc/self/fd").map_err(|e| format!("listing open descriptors: {e}"))?;
    let fds: Vec<RawFd> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds.into_iter().filter(|fd| *fd > 2) {
        // SAFETY: F_SETFD on a number that may already be closed is harmless.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

pub fn set_no_new_privs() -> Result<(), String> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "prctl(PR_SET_NO_NEW_PRIVS): {}",
            nix::errno::Errno::last()
        ));
    }
    Ok(())
}

/// The highest capability number this kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const CAP_SETPCAP: u32 = 8;

/// Drop every capability: bounding set (so exec cannot regain them, even as
/// uid 0), ambient set, and effective/permitted/inheritable.
pub fn drop_capabilities() -> Result<(), String> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and data are valid and sized for v3 (two data structs).
    if unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    } != 0
    {
        return Err(format!("capget: {}", nix::errno::Errno::last()));
    }
    // Emptying the bounding set needs CAP_SETPCAP: held in a user namespace
    // and by root; an unprivileged caller without namespaces has nothing to
    // drop there that exec could use (no_new_privs blocks setuid and file caps).
    let has_setpcap = data[0].effective & (1 << CAP_SETPCAP) != 0;
    if has_setpcap {
        for cap in 0..=last_cap() {
            // SAFETY: integer arguments only.
            let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            // A sandbox that silently kept a capability is worse than none.
            if ret != 0 && nix::errno::Errno::last() != nix::errno::Errno::EINVAL {
                return Err(format!(
                    "dropping capability {cap} from the bounding set: {}",
                    nix::errno::Errno::last()
                ));
            }
        }
    }
    // SAFETY: integer arguments only.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    let data = [CapData::default(); 2];
    // SAFETY: header and data are valid, properly sized (v3 takes two data
    // structs) and outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    if ret != 0 {
        return Err(format!("capset: {}", nix::errno::Errno::last()));
    }
    Ok(())
}

/// The signals the supervisor and init relay to the command.
pub const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGCONT,
    Signal::SIGWINCH,
];

/// The set blocked by the supervisor and init (forwarded ones + SIGCHLD).
pub fn handled_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(*s);
    }
    set.add(Signal::SIGCHLD);
    set
}

/// Give the command the signal state of a freshly started program: nothing
/// blocked, default dispositions (Rust ignores SIGPIPE by default, and an
/// ignored disposition would survive exec).
pub fn reset_signals() {
    for s in Signal::iterator() {
        if s != Signal::SIGKILL && s != Signal::SIGSTOP {
            // SAFETY: installing SIG_DFL is always sound.
            let _ = unsafe { signal::signal(s, SigHandler::SigDfl) };
        }
    }
    let _ = signal::sigprocmask(
        signal::SigmaskHow::SIG_SETMASK,
        Some(&SigSet::empty()),
        None,
    );
}

/// Not dumpable: the sandbox cannot ptrace us or read our memory through
/// /proc (bubblewrap CVE-2016-8659).
pub fn set_not_dumpable() {
    // SAFETY: integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
}

/// Die with our parent.
pub fn die_with_parent(sig: Signal) {
    // SAFETY: integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) };
}
