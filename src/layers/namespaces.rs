//! Namespaces: create the sandbox's init in new user, mount, pid, ipc, uts,
//! cgroup (and network) namespaces, and map the caller's uid/gid into it.

use nix::errno::Errno;
use nix::libc;
use nix::unistd::Pid;

/// The namespaces a sandbox gets; `net` only for `--net none`.
pub fn clone_flags(net: bool, cgroup: bool) -> libc::c_int {
    let mut flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS;
    if cgroup {
        flags |= libc::CLONE_NEWCGROUP;
    }
    if net {
        flags |= libc::CLONE_NEWNET;
    }
    flags
}

pub fn describe(flags: libc::c_int) -> String {
    let names = [
        (libc::CLONE_NEWUSER, "user"),
        (libc::CLONE_NEWNS, "mount"),
        (libc::CLONE_NEWPID, "pid"),
        (libc::CLONE_NEWIPC, "ipc"),
        (libc::CLONE_NEWUTS, "uts"),
        (libc::CLONE_NEWCGROUP, "cgroup"),
        (libc::CLONE_NEWNET, "net"),
    ];
    names
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Fork into new namespaces. Returns the child's pid in the parent, and 0
/// in the child (which is pid 1 of its new pid namespace).
///
/// The caller must be single-threaded (a user namespace cannot be created
/// by a multi-threaded process, and the child copies only this thread).
pub fn clone_into(flags: libc::c_int) -> Result<Pid, Errno> {
    // SAFETY: a raw clone without CLONE_VM and with a NULL stack behaves like
    // fork(): the child gets a copy of our address space and continues here.
    // bwai is single-threaded at this point, so no lock is held by a thread
    // that would not exist in the child.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(Pid::from_raw(ret as libc::pid_t))
}

/// Map the caller's uid and gid to themselves inside: the command keeps the
/// same identity, and exec drops every capability it had in the namespace.
/// `setgroups` must be denied before an unprivileged gid_map write.
pub fn write_maps(child: Pid, uid: u32, gid: u32) -> Result<(), String> {
    let base = format!("/proc/{child}");
    let write = |file: &str, content: String| {
        std::fs::write(format!("{base}/{file}"), content.as_bytes())
            .map_err(|e| format!("writing {base}/{file}: {e}"))
    };
    match std::fs::write(format!("{base}/setgroups"), b"deny") {
        Ok(()) => {}
        // Kernels before 3.19 have no setgroups file.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("writing {base}/setgroups: {e}")),
    }
    write("uid_map", format!("{uid} {uid} 1\n"))?;
    write("gid_map", format!("{gid} {gid} 1\n"))?;
    Ok(())
}

/// Bring `lo` up in a fresh network namespace (it starts down).
pub fn loopback_up() -> Result<(), String> {
    // SAFETY: plain socket creation; the fd is closed below.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(format!("socket for loopback: {}", Errno::last()));
    }
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    // SAFETY: sock is a valid socket and req a valid ifreq for these ioctls.
    let result = unsafe {
        if libc::ioctl(sock, libc::SIOCGIFFLAGS as _, &mut req) < 0 {
            Err(format!("SIOCGIFFLAGS lo: {}", Errno::last()))
        } else {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            if libc::ioctl(sock, libc::SIOCSIFFLAGS as _, &req) < 0 {
                Err(format!("SIOCSIFFLAGS lo: {}", Errno::last()))
            } else {
                Ok(())
            }
        }
    };
    // SAFETY: sock is ours.
    unsafe { libc::close(sock) };
    result
}
