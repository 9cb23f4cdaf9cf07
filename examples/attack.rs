//! `attack SUBCOMMAND [ARGS]`: a break-out toolkit that runs inside the sandbox.
//!
//! Each subcommand attempts one thing and prints exactly one line on stdout:
//!
//! - `ok [DETAIL]`, exit 0: the attempt really succeeded;
//! - `denied ENAME (N)`, exit 1: the kernel refused with errno N (for name
//!   lookups: `denied EAI_NONAME (-2)` etc., the getaddrinfo code);
//! - `denied none [DETAIL]`, exit 1: a probe that found nothing to abuse
//!   (`fds`, `cap-check`, `kill-all-probe`);
//! - usage errors go to stderr, exit 2.
//!
//! Which step of a multi-step attempt failed is told on stderr, never on stdout.
//! Calls that seccomp is meant to catch are made as raw syscalls, so a test is
//! about the syscall and not about what libc does around it. Dangerous calls
//! are made harmless even where they succeed (reboot only toggles
//! Ctrl-Alt-Del to the default, kill-all only sends signal 0, TIOCSTI pushes
//! `#` (and its `ok` line never contains `#`, so a test can look for the echo
//! in the terminal's output), sethostname sets the current name again...), but
//! some (`umount`,
//! `pivot_root`, `remount-rw`, `bind-mount`) are only safe inside a sandbox or
//! a throw-away mount namespace: never run those as root on a real host.
//!
//! `attack help` lists the subcommands.

use std::ffi::CString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;

/// What went wrong, and how it is printed.
enum Fail {
    /// The kernel said no: `denied ENAME (N)`, exit 1. The string says which
    /// step failed (stderr only).
    Errno(i32, String),
    /// getaddrinfo said no: `denied EAI_xxx (N)`, exit 1.
    Gai(i32),
    /// A probe found nothing: `denied none DETAIL`, exit 1.
    Nothing(String),
    /// Bad command line: stderr, exit 2.
    Usage(String),
}

type Res = Result<String, Fail>;

impl From<Errno> for Fail {
    fn from(e: Errno) -> Self {
        Fail::Errno(e as i32, String::new())
    }
}

impl From<std::io::Error> for Fail {
    fn from(e: std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(n) => Fail::Errno(n, String::new()),
            None => Fail::Errno(libc::EIO, format!("{e}")),
        }
    }
}

/// Names the step that failed, for the stderr explanation.
trait Step<T> {
    fn at(self, step: &str) -> Result<T, Fail>;
}

impl<T, E: Into<Fail>> Step<T> for Result<T, E> {
    fn at(self, step: &str) -> Result<T, Fail> {
        self.map_err(|e| match e.into() {
            Fail::Errno(n, s) if s.is_empty() => Fail::Errno(n, step.to_string()),
            other => other,
        })
    }
}

/// The result of a raw syscall: -1 means errno is set.
fn sys(ret: libc::c_long) -> Result<libc::c_long, Fail> {
    if ret == -1 {
        Err(Errno::last().into())
    } else {
        Ok(ret)
    }
}

fn errno_name(n: i32) -> String {
    let e = Errno::from_raw(n);
    if e == Errno::UnknownErrno {
        format!("E{n}")
    } else {
        format!("{e:?}")
    }
}

fn gai_name(code: i32) -> &'static str {
    match code {
        libc::EAI_NONAME => "EAI_NONAME",
        libc::EAI_AGAIN => "EAI_AGAIN",
        libc::EAI_FAIL => "EAI_FAIL",
        libc::EAI_FAMILY => "EAI_FAMILY",
        libc::EAI_SERVICE => "EAI_SERVICE",
        libc::EAI_MEMORY => "EAI_MEMORY",
        -5 => "EAI_NODATA",
        -9 => "EAI_ADDRFAMILY",
        _ => "EAI",
    }
}

fn usage(msg: &str) -> Fail {
    Fail::Usage(msg.to_string())
}

fn cstr(s: &str) -> Result<CString, Fail> {
    CString::new(s).map_err(|_| usage("argument contains a NUL byte"))
}

/// Parses decimal, 0x-hex or 0o-octal, possibly negative.
fn num(s: &str) -> Result<i64, Fail> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let v = if let Some(h) = body.strip_prefix("0x") {
        i64::from_str_radix(h, 16)
    } else if let Some(o) = body.strip_prefix("0o") {
        i64::from_str_radix(o, 8)
    } else {
        body.parse()
    }
    .map_err(|_| Fail::Usage(format!("not a number: {s}")))?;
    Ok(if neg { -v } else { v })
}

fn num_i32(s: &str) -> Result<i32, Fail> {
    i32::try_from(num(s)?).map_err(|_| Fail::Usage(format!("out of range: {s}")))
}

fn signal_arg(s: &str) -> Result<i32, Fail> {
    if let Ok(n) = num_i32(s) {
        return Ok(n);
    }
    let name = if s.starts_with("SIG") {
        s.to_string()
    } else {
        format!("SIG{s}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| Fail::Usage(format!("unknown signal: {s}")))
}

/// Takes ownership of a descriptor a raw syscall returned, so it is closed.
fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: `fd` was just returned by the kernel as a new descriptor that
    // nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

fn shown(bytes: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned();
    format!("{:?}", s)
}

// ---------------------------------------------------------------- files

fn read_file(path: &str) -> Res {
    let mut f = std::fs::File::open(path).at("open")?;
    let mut buf = vec![0u8; 65536];
    // One read: enough to prove access, and /proc/kmsg-like files never end.
    let n = f.read(&mut buf).at("read")?;
    Ok(format!("{n} bytes {}", shown(&buf[..n], 200)))
}

fn write_file(path: &str, flags: i32) -> Res {
    let c = cstr(path)?;
    // SAFETY: `c` is a valid NUL-terminated path; the mode is a plain integer.
    let fd = sys(unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            c.as_ptr(),
            flags | libc::O_CLOEXEC,
            0o644,
        )
    })
    .at("open")?;
    let mut f = std::fs::File::from(owned(fd));
    f.write_all(b"pwned\n").at("write")?;
    Ok("wrote 6 bytes".into())
}

fn readdir(path: &str) -> Res {
    let mut names: Vec<String> = std::fs::read_dir(path)
        .at("opendir")?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()
        .at("readdir")?;
    names.sort();
    Ok(format!("{} entries: {}", names.len(), names.join(" ")))
}

fn stat(path: &str) -> Res {
    let m = std::fs::metadata(path)?;
    let kind = if m.is_dir() {
        "dir"
    } else if m.is_file() {
        "file"
    } else {
        "other"
    };
    Ok(format!(
        "type={kind} mode={:o} uid={} gid={} size={} dev={} ino={}",
        m.mode(),
        m.uid(),
        m.gid(),
        m.size(),
        m.dev(),
        m.ino()
    ))
}

fn mknod(path: &str) -> Res {
    let c = cstr(path)?;
    // The same device as /dev/null.
    let dev = libc::makedev(1, 3);
    // SAFETY: `c` is a valid NUL-terminated path.
    sys(unsafe {
        libc::syscall(
            libc::SYS_mknodat,
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::S_IFCHR | 0o666,
            dev,
        )
    })?;
    Ok(format!("created character device 1:3 at {path}"))
}

fn chmod(path: &str, mode: &str) -> Res {
    let mode = num(&format!("0o{mode}"))? as u32;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(format!("mode {mode:o}"))
}

// ---------------------------------------------------------------- mounts

fn mount_tmpfs(target: Option<&str>) -> Res {
    let (target, created) = match target {
        Some(t) => (t.to_string(), false),
        None => {
            let d = format!(".attack-mnt-{}", std::process::id());
            match std::fs::create_dir(&d) {
                Ok(()) => (d, true),
                Err(e) => {
                    // A read-only cwd must not hide the answer about mount():
                    // try over the cwd itself.
                    eprintln!("attack: mount: cannot create {d} ({e}); mounting over \".\"");
                    (".".to_string(), false)
                }
            }
        }
    };
    let t = cstr(&target)?;
    // SAFETY: all pointers are valid NUL-terminated strings or null.
    let r = sys(unsafe {
        libc::syscall(
            libc::SYS_mount,
            c"tmpfs".as_ptr(),
            t.as_ptr(),
            c"tmpfs".as_ptr(),
            0 as libc::c_ulong,
            std::ptr::null::<libc::c_void>(),
        )
    });
    if r.is_ok() {
        // SAFETY: `t` is a valid NUL-terminated path.
        unsafe { libc::syscall(libc::SYS_umount2, t.as_ptr(), libc::MNT_DETACH) };
    }
    if created {
        let _ = std::fs::remove_dir(&target);
    }
    r.at("mount")?;
    Ok(format!("mounted a tmpfs on {target} (then detached it)"))
}

fn bind_mount(src: &str, dst: &str) -> Res {
    let (s, d) = (cstr(src)?, cstr(dst)?);
    // SAFETY: valid NUL-terminated strings and null pointers.
    sys(unsafe {
        libc::syscall(
            libc::SYS_mount,
            s.as_ptr(),
            d.as_ptr(),
            std::ptr::null::<libc::c_char>(),
            (libc::MS_BIND | libc::MS_REC) as libc::c_ulong,
            std::ptr::null::<libc::c_void>(),
        )
    })?;
    Ok(format!("bound {src} on {dst}"))
}

fn is_read_only(path: &str) -> Result<bool, Fail> {
    let st = nix::sys::statvfs::statvfs(path).at("statvfs")?;
    Ok(st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// MS_REMOUNT|MS_BIND without MS_RDONLY, keeping the flags the kernel locks in
/// a user namespace (otherwise EPERM would come from the lock, not from the
/// sandbox, and the test would pass for the wrong reason).
fn remount_rw(path: &str) -> Res {
    use nix::sys::statvfs::FsFlags;
    let st = nix::sys::statvfs::statvfs(path).at("statvfs")?;
    let keep = [
        (FsFlags::ST_NOSUID, libc::MS_NOSUID),
        (FsFlags::ST_NODEV, libc::MS_NODEV),
        (FsFlags::ST_NOEXEC, libc::MS_NOEXEC),
        (FsFlags::ST_NOATIME, libc::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, libc::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, libc::MS_RELATIME),
    ];
    let mut flags = libc::MS_REMOUNT | libc::MS_BIND;
    for (st_flag, ms_flag) in keep {
        if st.flags().contains(st_flag) {
            flags |= ms_flag;
        }
    }
    let p = cstr(path)?;
    // SAFETY: valid NUL-terminated path and null pointers.
    sys(unsafe {
        libc::syscall(
            libc::SYS_mount,
            std::ptr::null::<libc::c_char>(),
            p.as_ptr(),
            std::ptr::null::<libc::c_char>(),
            flags as libc::c_ulong,
            std::ptr::null::<libc::c_void>(),
        )
    })
    .at("mount(MS_REMOUNT|MS_BIND)")?;
    let ro = is_read_only(path)?;
    Ok(format!(
        "remounted {path}, now {}",
        if ro { "still read-only" } else { "read-write" }
    ))
}

/// struct mount_attr from <linux/mount.h>.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn mount_setattr(path: &str) -> Res {
    const MOUNT_ATTR_RDONLY: u64 = 1;
    let p = cstr(path)?;
    let attr = MountAttr {
        attr_set: 0,
        attr_clr: MOUNT_ATTR_RDONLY,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `p` is a valid path; `attr` is a valid mount_attr of the size passed.
    sys(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            p.as_ptr(),
            libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    let ro = is_read_only(path)?;
    Ok(format!(
        "cleared MOUNT_ATTR_RDONLY on {path}, now {}",
        if ro { "still read-only" } else { "read-write" }
    ))
}

fn open_tree(path: &str) -> Res {
    let p = cstr(path)?;
    // SAFETY: `p` is a valid NUL-terminated path.
    let fd = sys(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            p.as_ptr(),
            libc::OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    })?;
    drop(owned(fd));
    Ok(format!("cloned the mount tree at {path}"))
}

fn fsopen() -> Res {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    // SAFETY: a valid NUL-terminated filesystem name.
    let fd = sys(unsafe { libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), FSOPEN_CLOEXEC) })?;
    drop(owned(fd));
    Ok("fsopen(tmpfs) gave a filesystem context".into())
}

fn umount(path: &str) -> Res {
    let p = cstr(path)?;
    // SAFETY: `p` is a valid NUL-terminated path.
    sys(unsafe { libc::syscall(libc::SYS_umount2, p.as_ptr(), libc::MNT_DETACH) })?;
    Ok(format!("detached {path}"))
}

fn pivot_root() -> Res {
    // SAFETY: valid NUL-terminated strings.
    sys(unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) })?;
    Ok("pivot_root(., .) succeeded".into())
}

fn chroot(path: &str) -> Res {
    let p = cstr(path)?;
    // SAFETY: `p` is a valid NUL-terminated path.
    sys(unsafe { libc::syscall(libc::SYS_chroot, p.as_ptr()) })?;
    Ok(format!("chroot to {path}"))
}

// ---------------------------------------------------------------- namespaces

fn unshare(flags: libc::c_int, what: &str) -> Res {
    // SAFETY: unshare only takes flags.
    sys(unsafe { libc::syscall(libc::SYS_unshare, flags) })?;
    Ok(format!("new {what} namespace"))
}

/// Waits for a child made by a raw clone and reports how it ended.
fn reap(pid: libc::pid_t) -> String {
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer.
    unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
    format!("child {pid} in a new user namespace, wait status {status}")
}

fn clone_newuser() -> Res {
    // SAFETY: with a null stack the child runs on a copy of our stack, like
    // fork(); it only calls _exit, which is async-signal-safe.
    let pid = sys(unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    })?;
    if pid == 0 {
        // SAFETY: leaving the child at once.
        unsafe { libc::_exit(0) };
    }
    Ok(reap(pid as libc::pid_t))
}

/// struct clone_args (version 2, 88 bytes) from <linux/sched.h>.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

fn clone3_newuser() -> Res {
    let args = CloneArgs {
        flags: libc::CLONE_NEWUSER as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    // SAFETY: `args` is a valid clone_args of the size passed; without a stack
    // the child runs on a copy of ours, like fork(), and only calls _exit.
    let pid = sys(unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    })?;
    if pid == 0 {
        // SAFETY: leaving the child at once.
        unsafe { libc::_exit(0) };
    }
    Ok(reap(pid as libc::pid_t))
}

fn setns(path: &str) -> Res {
    let f = std::fs::File::open(path).at("open")?;
    // SAFETY: `f` is an open descriptor; 0 accepts any namespace type.
    sys(unsafe { libc::syscall(libc::SYS_setns, f.as_raw_fd(), 0) }).at("setns")?;
    Ok(format!("joined the namespace of {path}"))
}

// ---------------------------------------------------------------- dangerous syscalls

fn keyctl() -> Res {
    const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
    const KEYCTL_UNLINK: libc::c_long = 9;
    // SAFETY: valid NUL-terminated strings and a 1-byte payload.
    let id = sys(unsafe {
        libc::syscall(
            libc::SYS_add_key,
            c"user".as_ptr(),
            c"bwai-attack-probe".as_ptr(),
            c"x".as_ptr(),
            1usize,
            KEY_SPEC_SESSION_KEYRING,
        )
    })?;
    // SAFETY: plain integers. Cleanup, the key has proved the point.
    unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_UNLINK,
            id,
            KEY_SPEC_SESSION_KEYRING,
        )
    };
    Ok(format!("added key {id} to the session keyring"))
}

/// Writes `v` at byte offset `off` of an attribute buffer.
fn put(buf: &mut [u8], off: usize, v: &[u8]) {
    buf[off..off + v.len()].copy_from_slice(v);
}

fn bpf_prog_load() -> Res {
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;
    // r0 = 0; exit
    let insns: [u64; 2] = [0xb7, 0x95];
    let license = c"GPL";
    let mut attr = [0u8; 128];
    put(&mut attr, 0, &BPF_PROG_TYPE_SOCKET_FILTER.to_ne_bytes());
    put(&mut attr, 4, &(insns.len() as u32).to_ne_bytes());
    put(&mut attr, 8, &(insns.as_ptr() as u64).to_ne_bytes());
    put(&mut attr, 16, &(license.as_ptr() as u64).to_ne_bytes());
    // SAFETY: `attr` is a zero-filled bpf_attr whose pointers outlive the call.
    let fd =
        sys(unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, attr.as_ptr(), attr.len()) })?;
    drop(owned(fd));
    Ok("loaded a socket filter program".into())
}

fn bpf_map_create() -> Res {
    const BPF_MAP_CREATE: libc::c_long = 0;
    const BPF_MAP_TYPE_ARRAY: u32 = 2;
    let mut attr = [0u8; 128];
    put(&mut attr, 0, &BPF_MAP_TYPE_ARRAY.to_ne_bytes());
    put(&mut attr, 4, &4u32.to_ne_bytes()); // key size
    put(&mut attr, 8, &4u32.to_ne_bytes()); // value size
    put(&mut attr, 12, &1u32.to_ne_bytes()); // max entries
                                             // SAFETY: `attr` is a zero-filled bpf_attr.
    let fd =
        sys(unsafe { libc::syscall(libc::SYS_bpf, BPF_MAP_CREATE, attr.as_ptr(), attr.len()) })?;
    drop(owned(fd));
    Ok("created an array map".into())
}

fn perf() -> Res {
    const PERF_TYPE_SOFTWARE: u32 = 1;
    const PERF_COUNT_SW_TASK_CLOCK: u64 = 1;
    const DISABLED: u64 = 1;
    const EXCLUDE_KERNEL: u64 = 1 << 5;
    const EXCLUDE_HV: u64 = 1 << 6;
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
    const ATTR_SIZE: u32 = 128;
    let mut attr = [0u8; ATTR_SIZE as usize];
    put(&mut attr, 0, &PERF_TYPE_SOFTWARE.to_ne_bytes());
    put(&mut attr, 4, &ATTR_SIZE.to_ne_bytes());
    put(&mut attr, 8, &PERF_COUNT_SW_TASK_CLOCK.to_ne_bytes());
    put(
        &mut attr,
        40,
        &(DISABLED | EXCLUDE_KERNEL | EXCLUDE_HV).to_ne_bytes(),
    );
    // SAFETY: `attr` is a zero-filled perf_event_attr of the size it declares.
    let fd = sys(unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            0 as libc::pid_t,
            -1 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    })?;
    drop(owned(fd));
    Ok("opened a task-clock counter on self".into())
}

fn userfaultfd() -> Res {
    // User-mode-only faults are allowed unprivileged even when
    // vm.unprivileged_userfaultfd=0, so only a sandbox can refuse this.
    const UFFD_USER_MODE_ONLY: libc::c_int = 1;
    // SAFETY: flags only.
    let fd = sys(unsafe {
        libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | UFFD_USER_MODE_ONLY)
    })?;
    drop(owned(fd));
    Ok("got a userfaultfd".into())
}

fn io_uring() -> Res {
    // struct io_uring_params, zeroed.
    let mut params = [0u8; 120];
    // SAFETY: `params` is a writable io_uring_params-sized buffer.
    let fd = sys(unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) })?;
    drop(owned(fd));
    Ok("set up an io_uring with 1 entry".into())
}

fn personality(persona: libc::c_ulong) -> Res {
    // SAFETY: an integer argument.
    let old = sys(unsafe { libc::syscall(libc::SYS_personality, persona) })?;
    Ok(format!("previous persona {old:#x}"))
}

fn kexec() -> Res {
    // SAFETY: no segments: nothing is read from memory.
    sys(unsafe {
        libc::syscall(
            libc::SYS_kexec_load,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            std::ptr::null::<libc::c_void>(),
            0 as libc::c_ulong,
        )
    })?;
    Ok("kexec_load accepted".into())
}

fn init_module() -> Res {
    let f = std::fs::File::open("/dev/null").at("open /dev/null")?;
    // SAFETY: an open descriptor and a valid empty parameter string.
    sys(unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), c"".as_ptr(), 0) })
        .at("finit_module")?;
    Ok("finit_module accepted".into())
}

fn reboot() -> Res {
    // CAD_OFF only makes Ctrl-Alt-Del send SIGINT to init: harmless if allowed.
    // SAFETY: integer arguments and a null pointer.
    sys(unsafe {
        libc::syscall(
            libc::SYS_reboot,
            libc::LINUX_REBOOT_MAGIC1,
            libc::LINUX_REBOOT_MAGIC2,
            libc::LINUX_REBOOT_CMD_CAD_OFF,
            std::ptr::null::<libc::c_void>(),
        )
    })?;
    Ok("reboot(CAD_OFF) accepted".into())
}

fn swapon() -> Res {
    // SAFETY: a valid NUL-terminated path.
    sys(unsafe { libc::syscall(libc::SYS_swapon, c"/dev/null".as_ptr(), 0) })?;
    Ok("swapon accepted".into())
}

fn syslog() -> Res {
    const SYSLOG_ACTION_READ_ALL: libc::c_int = 3;
    let mut buf = vec![0u8; 16384];
    // SAFETY: `buf` is writable for the length passed.
    let n = sys(unsafe {
        libc::syscall(
            libc::SYS_syslog,
            SYSLOG_ACTION_READ_ALL,
            buf.as_mut_ptr(),
            buf.len() as libc::c_int,
        )
    })?;
    Ok(format!("read {n} bytes of the kernel log"))
}

fn acct() -> Res {
    // SAFETY: NULL turns accounting off: harmless if allowed.
    sys(unsafe { libc::syscall(libc::SYS_acct, std::ptr::null::<libc::c_char>()) })?;
    Ok("acct(NULL) accepted".into())
}

#[cfg(target_arch = "x86_64")]
fn iopl() -> Res {
    // SAFETY: an integer argument.
    sys(unsafe { libc::syscall(libc::SYS_iopl, 3) })?;
    Ok("iopl(3) accepted".into())
}

#[cfg(target_arch = "x86_64")]
fn ioperm() -> Res {
    // SAFETY: integer arguments (port 0x80, the POST diagnostic port).
    sys(unsafe {
        libc::syscall(
            libc::SYS_ioperm,
            0x80 as libc::c_ulong,
            1 as libc::c_ulong,
            1,
        )
    })?;
    Ok("ioperm(0x80) accepted".into())
}

#[cfg(not(target_arch = "x86_64"))]
fn iopl() -> Res {
    Err(Errno::ENOSYS.into())
}

#[cfg(not(target_arch = "x86_64"))]
fn ioperm() -> Res {
    Err(Errno::ENOSYS.into())
}

fn quotactl() -> Res {
    // Q_SYNC for user quotas on all filesystems: needs no privilege.
    const Q_SYNC: u32 = 0x800001;
    const USRQUOTA: u32 = 0;
    let cmd = (Q_SYNC << 8) | USRQUOTA;
    // SAFETY: integer arguments and null pointers.
    sys(unsafe {
        libc::syscall(
            libc::SYS_quotactl,
            cmd as libc::c_int,
            std::ptr::null::<libc::c_char>(),
            0,
            std::ptr::null::<libc::c_void>(),
        )
    })?;
    Ok("quotactl(Q_SYNC) accepted".into())
}

fn settime() -> Res {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    sys(unsafe { libc::syscall(libc::SYS_clock_gettime, libc::CLOCK_REALTIME, &mut ts) })
        .at("clock_gettime")?;
    // SAFETY: `ts` is a valid timespec (the current time: harmless if allowed).
    sys(unsafe { libc::syscall(libc::SYS_clock_settime, libc::CLOCK_REALTIME, &ts) })
        .at("clock_settime")?;
    Ok("set CLOCK_REALTIME".into())
}

fn sethostname(name: Option<&str>) -> Res {
    let current = nix::unistd::gethostname().at("gethostname")?;
    let name = match name {
        Some(n) => n.to_string(),
        None => current.to_string_lossy().into_owned(),
    };
    // SAFETY: `name` is valid for the length passed.
    sys(unsafe { libc::syscall(libc::SYS_sethostname, name.as_ptr(), name.len()) })
        .at("sethostname")?;
    Ok(format!("hostname set to {name}"))
}

fn open_by_handle_at() -> Res {
    const MAX_HANDLE_SZ: u32 = 128;
    // struct file_handle: u32 handle_bytes, i32 handle_type, then the handle.
    let mut handle = [0u32; 2 + MAX_HANDLE_SZ as usize / 4];
    handle[0] = MAX_HANDLE_SZ;
    let mut mount_id: libc::c_int = 0;
    // SAFETY: `handle` is a file_handle with room for MAX_HANDLE_SZ bytes;
    // `mount_id` is a valid out-pointer.
    sys(unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            libc::AT_FDCWD,
            c"/".as_ptr(),
            handle.as_mut_ptr(),
            &mut mount_id,
            0,
        )
    })
    .at("name_to_handle_at")?;
    let root = std::fs::File::open("/").at("open /")?;
    // SAFETY: `handle` was filled in by the kernel above.
    let fd = sys(unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            root.as_raw_fd(),
            handle.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    })
    .at("open_by_handle_at")?;
    drop(owned(fd));
    Ok("opened / by handle".into())
}

fn ptrace(pid: &str) -> Res {
    let pid = num_i32(pid)?;
    // SAFETY: integer arguments.
    sys(unsafe { libc::syscall(libc::SYS_ptrace, libc::PTRACE_ATTACH, pid, 0usize, 0usize) })?;
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer; wait for the attach stop, then
    // let the tracee go.
    unsafe {
        libc::waitpid(pid, &mut status, libc::__WALL);
        libc::syscall(libc::SYS_ptrace, libc::PTRACE_DETACH, pid, 0usize, 0usize);
    }
    Ok(format!("attached to {pid} (detached again)"))
}

fn kill(pid: &str, sig: Option<&str>) -> Res {
    let pid = num_i32(pid)?;
    let sig = sig.map(signal_arg).transpose()?.unwrap_or(0);
    // SAFETY: integer arguments.
    sys(unsafe { libc::syscall(libc::SYS_kill, pid, sig) })?;
    Ok(format!("signal {sig} delivered to {pid}"))
}

fn proc_pids() -> Vec<i32> {
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    pids
}

fn kill_all_probe() -> Res {
    let me = std::process::id() as i32;
    // SAFETY: getsid(0) has no memory arguments.
    let my_sid = unsafe { libc::getsid(0) };
    let mut reachable = Vec::new();
    let visible = proc_pids();
    for &pid in &visible {
        // SAFETY: integer argument.
        if pid == me || unsafe { libc::getsid(pid) } == my_sid {
            continue;
        }
        // SAFETY: signal 0 only checks existence and permission.
        if unsafe { libc::syscall(libc::SYS_kill, pid, 0) } == 0 {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            reachable.push(format!("{pid}:{}", comm.trim()));
        }
    }
    // Not kill(-1, 0): the kernel returns 0 for it as soon as any process
    // exists, even when every one of them answered EPERM.
    let detail = format!("({} visible)", visible.len());
    if reachable.is_empty() {
        Err(Fail::Nothing(format!("0 {detail}")))
    } else {
        Ok(format!(
            "{} {detail} pid:comm {}",
            reachable.len(),
            reachable.join(" ")
        ))
    }
}

// ---------------------------------------------------------------- terminal

fn fd_arg(arg: Option<&str>) -> Result<i32, Fail> {
    arg.map(num_i32).transpose().map(|fd| fd.unwrap_or(0))
}

fn tiocsti(fd: i32, wide: bool) -> Res {
    let c: u8 = b'#';
    #[allow(clippy::unnecessary_cast)] // c_ulong on glibc, c_int on musl
    let mut request = libc::TIOCSTI as u64;
    if wide {
        // CVE-2019-10063: the kernel only looks at the low 32 bits of the
        // request, a filter comparing all 64 would miss this.
        request |= 1 << 32;
    }
    // SAFETY: `c` is a valid byte for the kernel to read.
    sys(unsafe { libc::syscall(libc::SYS_ioctl, fd, request, &c as *const u8) })?;
    Ok(format!(
        "pushed byte 0x23 into the input of fd {fd} (request {request:#x})"
    ))
}

fn tioclinux(fd: i32) -> Res {
    const TIOCL_GETFGCONSOLE: u8 = 12; // read-only subcode
    let sub = [TIOCL_GETFGCONSOLE, 0u8];
    // SAFETY: `sub` is a valid buffer for the subcode.
    let r = sys(unsafe { libc::syscall(libc::SYS_ioctl, fd, libc::TIOCLINUX, sub.as_ptr()) })?;
    Ok(format!("TIOCLINUX accepted on fd {fd}, returned {r}"))
}

// ---------------------------------------------------------------- other ABIs

fn x32() -> Res {
    const X32_SYSCALL_BIT: libc::c_long = 0x4000_0000;
    // SAFETY: getpid in the x32 numbering takes no arguments.
    let pid = sys(unsafe { libc::syscall(X32_SYSCALL_BIT | 39) })?;
    Ok(format!("x32 getpid returned {pid}"))
}

#[cfg(target_arch = "x86_64")]
fn int80() -> Res {
    // getpid in the i386 numbering.
    let mut rax: i64 = 20;
    // SAFETY: `int 0x80` enters the kernel's 32-bit compat entry; i386 getpid
    // reads no argument and no memory. The entry may clobber r8-r11.
    unsafe {
        std::arch::asm!(
            "int 0x80",
            inout("rax") rax,
            lateout("r8") _, lateout("r9") _, lateout("r10") _, lateout("r11") _,
            options(nostack)
        );
    }
    let r = rax as i32;
    if (-4095..0).contains(&r) {
        Err(Fail::Errno(-r, "int 0x80".into()))
    } else {
        Ok(format!("int 0x80 getpid returned {r}"))
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn int80() -> Res {
    Err(Errno::ENOSYS.into())
}

fn raw_syscall(args: &[String]) -> Res {
    let nr = num(args.first().ok_or_else(|| usage("syscall NR [ARGS...]"))?)?;
    let mut a = [0i64; 6];
    for (slot, s) in a.iter_mut().zip(&args[1..]) {
        *slot = num(s)?;
    }
    // SAFETY: integer arguments only; the caller chooses the syscall and is
    // responsible for not passing addresses.
    let r = sys(unsafe { libc::syscall(nr as libc::c_long, a[0], a[1], a[2], a[3], a[4], a[5]) })?;
    Ok(format!("syscall {nr} returned {r}"))
}

fn landlock_probe() -> Res {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: the version query reads no memory.
    let abi = sys(unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    })?;
    Ok(format!("abi {abi}"))
}

// ---------------------------------------------------------------- network

fn resolve(hostport: &str) -> Result<SocketAddr, Fail> {
    if let Ok(a) = hostport.parse::<SocketAddr>() {
        return Ok(a);
    }
    let (host, port) = hostport
        .rsplit_once(':')
        .ok_or_else(|| usage("expected HOST:PORT"))?;
    let port: u16 = port.parse().map_err(|_| usage("bad port"))?;
    let chost = cstr(host)?;
    // SAFETY: addrinfo is a plain C struct; all-zero is a valid "no hints".
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated host, valid hints and out-pointer.
    let rc = unsafe { libc::getaddrinfo(chost.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc == libc::EAI_SYSTEM {
        return Err(Errno::last().into());
    } else if rc != 0 {
        return Err(Fail::Gai(rc));
    }
    // Let std convert the sockaddr: format the first answer's IP and reparse.
    // SAFETY: on success `res` points to at least one addrinfo with a valid
    // ai_addr of ai_addrlen bytes; it is freed once, below.
    let ip = unsafe {
        let ai = &*res;
        let ip: Option<std::net::IpAddr> = match ai.ai_family {
            libc::AF_INET => {
                let sin = &*(ai.ai_addr as *const libc::sockaddr_in);
                Some(std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).into())
            }
            libc::AF_INET6 => {
                let sin6 = &*(ai.ai_addr as *const libc::sockaddr_in6);
                Some(std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr).into())
            }
            _ => None,
        };
        libc::freeaddrinfo(res);
        ip
    };
    ip.map(|ip| SocketAddr::new(ip, port))
        .ok_or(Fail::Gai(libc::EAI_FAMILY))
}

fn tcp_connect(hostport: &str) -> Res {
    let addr = resolve(hostport)?;
    TcpStream::connect_timeout(&addr, Duration::from_secs(5)).at("connect")?;
    Ok(format!("connected to {addr}"))
}

fn udp_send(hostport: &str) -> Res {
    let addr = resolve(hostport)?;
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .expect("literal");
    let sock = UdpSocket::bind(local).at("bind")?;
    let n = sock.send_to(b"pwned\n", addr).at("sendto")?;
    Ok(format!("sent {n} bytes to {addr}"))
}

/// The proxy's address, from the HTTP_PROXY bwai sets (`http://IP:PORT`).
fn proxy_addr() -> Result<SocketAddr, Fail> {
    let url = std::env::var("HTTP_PROXY").map_err(|_| Fail::Nothing("no HTTP_PROXY".into()))?;
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .map_err(|_| usage("HTTP_PROXY is not http://IP:PORT"))
}

/// `\r`, `\n`, `\0`, `\\` and `\xNN` in an argument, as bytes.
fn unescape(text: &str) -> Result<Vec<u8>, Fail> {
    let mut out = Vec::new();
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b'0') => out.push(0),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                let hex = std::str::from_utf8(&hex).map_err(|_| usage("bad \\x escape"))?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| usage("bad \\x escape"))?);
            }
            _ => return Err(usage("unknown escape")),
        }
    }
    Ok(out)
}

/// Sends REQUEST (with escapes) to the proxy as it is, and prints the
/// answer's status line: `ok HTTP/1.1 403 Forbidden`. Tests judge the code.
fn proxy_raw(request: &str) -> Res {
    let bytes = unescape(request)?;
    let mut s = TcpStream::connect_timeout(&proxy_addr()?, Duration::from_secs(5)).at("connect")?;
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .at("setsockopt")?;
    s.write_all(&bytes).at("write")?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) => return Err(Fail::Errno(e.raw_os_error().unwrap_or(0), "read".into())),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    match text.split("\r\n").next().filter(|l| !l.is_empty()) {
        Some(line) => Ok(line.to_string()),
        None => Err(Fail::Nothing("the proxy closed without an answer".into())),
    }
}

/// Opens N tunnels to HOST:PORT through the proxy, all at once (every
/// CONNECT is answered before any request is sent), then fetches `/` over
/// each. `ok N tunnels` only if every one answered 200 both times.
fn proxy_tunnels(n: &str, target: &str) -> Res {
    let n: usize = n.parse().map_err(|_| usage("bad count"))?;
    let proxy = proxy_addr()?;
    let mut streams = Vec::new();
    let open = |i: usize| -> Result<TcpStream, String> {
        let mut s = TcpStream::connect_timeout(&proxy, Duration::from_secs(10))
            .map_err(|e| format!("tunnel {i}: connect: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        write!(s, "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n")
            .map_err(|e| format!("tunnel {i}: write: {e}"))?;
        let head = read_head(&mut s).map_err(|e| format!("tunnel {i}: {e}"))?;
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            return Err(format!("tunnel {i}: {}", head.lines().next().unwrap_or("")));
        }
        Ok(s)
    };
    let mut failures = Vec::new();
    let opened: Vec<_> = std::thread::scope(|scope| {
        let open = &open;
        let handles: Vec<_> = (0..n).map(|i| scope.spawn(move || open(i))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for r in opened {
        match r {
            Ok(s) => streams.push(s),
            Err(e) => failures.push(e),
        }
    }
    let live = streams.len();
    let handles: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            std::thread::spawn(move || -> Result<(), String> {
                s.write_all(b"GET / HTTP/1.0\r\n\r\n")
                    .map_err(|e| format!("request {i}: {e}"))?;
                let mut body = String::new();
                s.read_to_string(&mut body)
                    .map_err(|e| format!("request {i}: {e}"))?;
                if body.starts_with("HTTP/1.1 200") || body.starts_with("HTTP/1.0 200") {
                    Ok(())
                } else {
                    Err(format!(
                        "request {i}: {}",
                        body.lines().next().unwrap_or("")
                    ))
                }
            })
        })
        .collect();
    for h in handles {
        if let Err(e) = h.join().expect("thread") {
            failures.push(e);
        }
    }
    if failures.is_empty() {
        Ok(format!("{n} tunnels ({live} open at once)"))
    } else {
        eprintln!("{}", failures.join("\n"));
        Err(Fail::Nothing(format!(
            "{} of {n} failed, first: {}",
            failures.len(),
            failures[0]
        )))
    }
}

/// An HTTP head, read byte by byte so nothing after it is consumed.
fn read_head(s: &mut TcpStream) -> Result<String, String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(0) => return Err("closed before the end of the answer".into()),
            Ok(_) => head.push(b[0]),
            Err(e) => return Err(format!("read: {e}")),
        }
        if head.len() > 16384 {
            return Err("answer head too long".into());
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

fn tcp_listen(port: &str) -> Res {
    let port: u16 = port.parse().map_err(|_| usage("bad port"))?;
    let l = TcpListener::bind(("127.0.0.1", port)).at("bind")?;
    Ok(format!("listening on {}", l.local_addr()?))
}

fn socket(domain: i32, ty: i32, proto: i32, what: &str) -> Result<OwnedFd, Fail> {
    // SAFETY: integer arguments.
    let fd =
        sys(unsafe { libc::syscall(libc::SYS_socket, domain, ty | libc::SOCK_CLOEXEC, proto) })
            .at(what)?;
    Ok(owned(fd))
}

fn netlink() -> Res {
    let fd = socket(
        libc::AF_NETLINK,
        libc::SOCK_RAW,
        libc::NETLINK_ROUTE,
        "socket",
    )?;
    // SAFETY: sockaddr_nl is a plain C struct; all-zero then the family is valid.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `addr` is a valid sockaddr_nl of the size passed.
    sys(unsafe {
        libc::syscall(
            libc::SYS_bind,
            fd.as_raw_fd(),
            &addr as *const libc::sockaddr_nl,
            std::mem::size_of::<libc::sockaddr_nl>(),
        )
    })
    .at("bind")?;
    Ok("bound a NETLINK_ROUTE socket".into())
}

/// Listens on 127.0.0.1:PORT (0: any free port), says so, then accepts
/// connections for SECS seconds (default 10), greeting each, and exits 0.
fn tcp_serve(port: &str, secs: Option<&str>) -> Res {
    let port: u16 = port.parse().map_err(|_| usage("bad port"))?;
    let secs = secs_arg(secs, 10)?;
    let l = TcpListener::bind(("127.0.0.1", port)).at("bind")?;
    l.set_nonblocking(true).at("fcntl")?;
    println!("ok listening on {}", l.local_addr().at("getsockname")?);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut accepted = 0;
    while Instant::now() < deadline {
        match l.accept() {
            Ok((mut s, peer)) => {
                accepted += 1;
                let _ = s.write_all(b"bwai-tcp-serve\n");
                eprintln!("attack: tcp-serve: accepted connection {accepted} from {peer}");
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    std::process::exit(0);
}

/// Dumps the network interfaces this process can see through a
/// NETLINK_ROUTE socket (RTM_GETLINK): `ok N links: NAME...`.
fn netlink_links() -> Res {
    const NLMSG_HDRLEN: usize = 16;
    const IFINFOMSG_LEN: usize = 16;
    const IFLA_IFNAME: u16 = 3;
    let fd = socket(
        libc::AF_NETLINK,
        libc::SOCK_RAW,
        libc::NETLINK_ROUTE,
        "socket",
    )?;
    let tv = libc::timeval {
        tv_sec: 5,
        tv_usec: 0,
    };
    // SAFETY: `tv` is a valid timeval of the size passed.
    sys(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        ) as libc::c_long
    })
    .at("setsockopt")?;
    // struct nlmsghdr + struct ifinfomsg (all zero: AF_UNSPEC, every link).
    let mut req = [0u8; NLMSG_HDRLEN + IFINFOMSG_LEN];
    put(
        &mut req,
        0,
        &((NLMSG_HDRLEN + IFINFOMSG_LEN) as u32).to_ne_bytes(),
    );
    put(&mut req, 4, &libc::RTM_GETLINK.to_ne_bytes());
    put(
        &mut req,
        6,
        &((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes(),
    );
    put(&mut req, 8, &1u32.to_ne_bytes());
    // SAFETY: `req` is readable for its length.
    sys(unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) as libc::c_long })
        .at("send")?;
    let u16_at = |b: &[u8], o: usize| u16::from_ne_bytes([b[o], b[o + 1]]);
    let u32_at = |b: &[u8], o: usize| u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let align = |n: usize| (n + 3) & !3;
    let mut names = Vec::new();
    let mut buf = vec![0u8; 32768];
    // Bounded: a dump of a few hundred links fits in far fewer reads.
    for _ in 0..1000 {
        // SAFETY: `buf` is writable for its length.
        let n = sys(unsafe {
            libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) as libc::c_long
        })
        .at("recv")? as usize;
        let mut off = 0;
        while off + NLMSG_HDRLEN <= n {
            let len = u32_at(&buf, off) as usize;
            let kind = u16_at(&buf, off + 4);
            if len < NLMSG_HDRLEN || off + len > n {
                return Err(Fail::Errno(
                    libc::EPROTO,
                    "malformed netlink message".into(),
                ));
            }
            if kind == libc::NLMSG_DONE as u16 {
                return Ok(format!("{} links: {}", names.len(), names.join(" ")));
            }
            if kind == libc::NLMSG_ERROR as u16 {
                let err = u32_at(&buf, off + NLMSG_HDRLEN) as i32;
                return Err(Fail::Errno(-err, "RTM_GETLINK".into()));
            }
            if kind == libc::RTM_NEWLINK {
                let mut a = off + NLMSG_HDRLEN + IFINFOMSG_LEN;
                while a + 4 <= off + len {
                    let alen = u16_at(&buf, a) as usize;
                    if alen < 4 || a + alen > off + len {
                        break;
                    }
                    if u16_at(&buf, a + 2) == IFLA_IFNAME {
                        let raw = &buf[a + 4..a + alen];
                        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                        names.push(String::from_utf8_lossy(&raw[..end]).into_owned());
                    }
                    a += align(alen);
                }
            }
            off += align(len);
        }
    }
    Err(Fail::Errno(
        libc::EPROTO,
        "no end of the netlink dump".into(),
    ))
}

fn abstract_addr(name: &str) -> Result<std::os::unix::net::SocketAddr, Fail> {
    use std::os::linux::net::SocketAddrExt;
    std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        .map_err(|_| usage("bad abstract name"))
}

fn abstract_connect(name: &str) -> Res {
    std::os::unix::net::UnixStream::connect_addr(&abstract_addr(name)?).at("connect")?;
    Ok(format!("connected to @{name}"))
}

fn abstract_listen(name: &str, secs: Option<&str>) -> Res {
    let secs = secs.map(num).transpose()?.unwrap_or(30).max(0) as u64;
    let l = std::os::unix::net::UnixListener::bind_addr(&abstract_addr(name)?).at("bind")?;
    l.set_nonblocking(true).at("fcntl")?;
    println!("ok listening on @{name}");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut accepted = 0;
    while Instant::now() < deadline {
        match l.accept() {
            Ok(_) => {
                accepted += 1;
                eprintln!("attack: abstract-listen: accepted connection {accepted}");
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    std::process::exit(0);
}

fn unix_connect(path: &str) -> Res {
    std::os::unix::net::UnixStream::connect(path).at("connect")?;
    Ok(format!("connected to {path}"))
}

/// Opens PATH for writing (no O_CREAT, no O_TRUNC) and closes it without
/// writing: proves write access to a kernel knob without touching it.
fn open_write(path: &str) -> Res {
    let c = cstr(path)?;
    // SAFETY: `c` is a valid NUL-terminated path.
    let fd = sys(unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        )
    })
    .at("open")?;
    drop(owned(fd));
    Ok(format!("opened {path} for writing (nothing written)"))
}

fn socketpair(ty: i32) -> Result<(OwnedFd, OwnedFd), Fail> {
    let mut sv = [0 as libc::c_int; 2];
    // SAFETY: `sv` has room for the two descriptors.
    sys(unsafe {
        libc::syscall(
            libc::SYS_socketpair,
            libc::AF_UNIX,
            ty | libc::SOCK_CLOEXEC,
            0,
            sv.as_mut_ptr(),
        )
    })
    .at("socketpair")?;
    Ok((owned(sv[0] as libc::c_long), owned(sv[1] as libc::c_long)))
}

fn unix_addr(path: &str) -> Result<(libc::sockaddr_un, libc::socklen_t), Fail> {
    // SAFETY: an all-zero sockaddr_un is valid; the family and path follow.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(usage("socket path too long"));
    }
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    Ok((
        addr,
        std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
    ))
}

/// A connected pair of stream sockets (as libuv, asyncio and others make
/// for their own plumbing) carries a byte.
fn unix_pair() -> Res {
    let (a, b) = socketpair(libc::SOCK_STREAM)?;
    let mut a = std::os::unix::net::UnixStream::from(a);
    let mut b = std::os::unix::net::UnixStream::from(b);
    a.write_all(b"x").at("write")?;
    let mut buf = [0u8; 1];
    b.read_exact(&mut buf).at("read")?;
    Ok("a stream socketpair carried a byte".into())
}

/// A datagram socket from socketpair() can still address any socket path:
/// with sendto(), or by connecting it elsewhere.
fn unix_dgram(path: &str, connect: bool) -> Res {
    let (a, _b) = socketpair(libc::SOCK_DGRAM)?;
    let (addr, len) = unix_addr(path)?;
    let ptr = &addr as *const libc::sockaddr_un as *const libc::sockaddr;
    if connect {
        // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
        sys(unsafe { libc::syscall(libc::SYS_connect, a.as_raw_fd(), ptr, len) }).at("connect")?;
        // SAFETY: the buffer is 6 valid bytes.
        sys(unsafe {
            libc::syscall(
                libc::SYS_sendto,
                a.as_raw_fd(),
                b"pwned\n".as_ptr(),
                6,
                0,
                0,
                0,
            )
        })
        .at("send")?;
        Ok(format!(
            "connected a datagram socketpair to {path} and sent 6 bytes"
        ))
    } else {
        // SAFETY: as above.
        sys(unsafe {
            libc::syscall(
                libc::SYS_sendto,
                a.as_raw_fd(),
                b"pwned\n".as_ptr(),
                6,
                0,
                ptr,
                len,
            )
        })
        .at("sendto")?;
        Ok(format!("sent 6 bytes to {path} from a datagram socketpair"))
    }
}

/// A server on a unix socket of one's own (as test databases and language
/// servers make): bind PATH, connect to it, exchange a byte, remove it.
fn unix_serve(path: &str) -> Res {
    let l = std::os::unix::net::UnixListener::bind(path).at("bind")?;
    let served = (|| {
        let mut c = std::os::unix::net::UnixStream::connect(path).at("connect")?;
        let (mut s, _) = l.accept().at("accept")?;
        c.write_all(b"x").at("write")?;
        let mut buf = [0u8; 1];
        s.read_exact(&mut buf).at("read")?;
        Ok::<_, Fail>(())
    })();
    let _ = std::fs::remove_file(path);
    served?;
    Ok(format!("served a connection on {path}"))
}

// ---------------------------------------------------------------- System V IPC

fn ipc_key(s: &str) -> Result<libc::key_t, Fail> {
    num_i32(s)
}

fn shm_id(key: &str, flags: i32, size: usize) -> Result<libc::c_long, Fail> {
    // SAFETY: integer arguments.
    sys(unsafe { libc::syscall(libc::SYS_shmget, ipc_key(key)?, size, flags) }).at("shmget")
}

fn shm_create(key: &str) -> Res {
    let id = shm_id(key, libc::IPC_CREAT | 0o666, 4096)?;
    Ok(format!("{id}"))
}

fn shm_attach(key: &str) -> Res {
    let id = shm_id(key, 0, 0)?;
    // SAFETY: the kernel chooses the address; it is detached right after.
    let addr =
        sys(unsafe { libc::syscall(libc::SYS_shmat, id, std::ptr::null::<libc::c_void>(), 0) })
            .at("shmat")?;
    // SAFETY: `addr` is the segment attached above.
    unsafe { libc::syscall(libc::SYS_shmdt, addr) };
    Ok(format!("attached segment {id}"))
}

fn shm_remove(key: &str) -> Res {
    let id = shm_id(key, 0, 0)?;
    // SAFETY: IPC_RMID takes no buffer.
    sys(unsafe {
        libc::syscall(
            libc::SYS_shmctl,
            id,
            libc::IPC_RMID,
            std::ptr::null::<libc::c_void>(),
        )
    })
    .at("shmctl")?;
    Ok(format!("removed segment {id}"))
}

fn msg_id(key: &str, flags: i32) -> Result<libc::c_long, Fail> {
    // SAFETY: integer arguments.
    sys(unsafe { libc::syscall(libc::SYS_msgget, ipc_key(key)?, flags) }).at("msgget")
}

fn msg_send(key: &str) -> Res {
    #[repr(C)]
    struct Msg {
        mtype: libc::c_long,
        text: [u8; 6],
    }
    let id = msg_id(key, 0)?;
    let m = Msg {
        mtype: 1,
        text: *b"pwned\n",
    };
    // SAFETY: `m` is a msgbuf with 6 bytes of text.
    sys(unsafe {
        libc::syscall(
            libc::SYS_msgsnd,
            id,
            &m as *const Msg,
            6usize,
            libc::IPC_NOWAIT,
        )
    })
    .at("msgsnd")?;
    Ok(format!("sent a message to queue {id}"))
}

fn msg_create(key: &str) -> Res {
    let id = msg_id(key, libc::IPC_CREAT | 0o666)?;
    Ok(format!("{id}"))
}

fn msg_remove(key: &str) -> Res {
    let id = msg_id(key, 0)?;
    // SAFETY: IPC_RMID takes no buffer.
    sys(unsafe {
        libc::syscall(
            libc::SYS_msgctl,
            id,
            libc::IPC_RMID,
            std::ptr::null::<libc::c_void>(),
        )
    })
    .at("msgctl")?;
    Ok(format!("removed queue {id}"))
}

fn sem_id(key: &str, flags: i32) -> Result<libc::c_long, Fail> {
    // SAFETY: integer arguments.
    sys(unsafe { libc::syscall(libc::SYS_semget, ipc_key(key)?, 1, flags) }).at("semget")
}

fn sem_create(key: &str) -> Res {
    let id = sem_id(key, libc::IPC_CREAT | 0o666)?;
    Ok(format!("{id}"))
}

/// Raises the semaphore by one (a host program waiting on it would wake).
fn sem_post(key: &str) -> Res {
    let id = sem_id(key, 0)?;
    let mut op = libc::sembuf {
        sem_num: 0,
        sem_op: 1,
        sem_flg: libc::IPC_NOWAIT as libc::c_short,
    };
    // SAFETY: one valid sembuf.
    sys(unsafe { libc::syscall(libc::SYS_semop, id, &mut op as *mut libc::sembuf, 1) })
        .at("semop")?;
    Ok(format!("raised semaphore set {id}"))
}

fn sem_remove(key: &str) -> Res {
    let id = sem_id(key, 0)?;
    // SAFETY: IPC_RMID takes no argument.
    sys(unsafe { libc::syscall(libc::SYS_semctl, id, 0, libc::IPC_RMID) }).at("semctl")?;
    Ok(format!("removed semaphore set {id}"))
}

// ---------------------------------------------------------------- POSIX message queues

/// mq_open as the syscall takes it: the name without its leading `/`.
fn mq_open(name: &str, flags: i32) -> Result<OwnedFd, Fail> {
    let c = cstr(name.trim_start_matches('/'))?;
    // SAFETY: an all-zero mq_attr is valid; the sizes follow.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    attr.mq_maxmsg = 4;
    attr.mq_msgsize = 16;
    // SAFETY: `c` is a valid C string and `attr` a valid mq_attr.
    let fd = sys(unsafe {
        libc::syscall(
            libc::SYS_mq_open,
            c.as_ptr(),
            flags | libc::O_CLOEXEC,
            0o666 as libc::mode_t,
            &attr as *const libc::mq_attr,
        )
    })
    .at("mq_open")?;
    Ok(owned(fd))
}

fn mq_create(name: &str) -> Res {
    // SAFETY: umask only changes this process's creation mask.
    let old = unsafe { libc::umask(0) };
    let q = mq_open(name, libc::O_CREAT | libc::O_RDWR);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    q?;
    Ok(format!("created queue {name}"))
}

fn mq_send(name: &str) -> Res {
    let q = mq_open(name, libc::O_WRONLY | libc::O_NONBLOCK)?;
    // SAFETY: the buffer is 5 valid bytes; no timeout.
    sys(unsafe {
        libc::syscall(
            libc::SYS_mq_timedsend,
            q.as_raw_fd(),
            b"pwned".as_ptr(),
            5usize,
            0u32,
            std::ptr::null::<libc::timespec>(),
        )
    })
    .at("mq_timedsend")?;
    Ok(format!("sent a message to queue {name}"))
}

fn mq_remove(name: &str) -> Res {
    let c = cstr(name.trim_start_matches('/'))?;
    // SAFETY: `c` is a valid C string.
    sys(unsafe { libc::syscall(libc::SYS_mq_unlink, c.as_ptr()) }).at("mq_unlink")?;
    Ok(format!("removed queue {name}"))
}

// ---------------------------------------------------------------- probes

fn probe_fd(fd: RawFd) -> String {
    // SAFETY: an all-zero stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return errno_name(Errno::last() as i32);
    }
    let mut buf = [0u8; 256];
    let r = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        // SAFETY: `buf` is writable for its length.
        unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) }
    } else if st.st_mode & libc::S_IFMT == libc::S_IFREG {
        // pread leaves the shared file offset alone.
        // SAFETY: `buf` is writable for its length.
        unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), 0) as libc::c_long }
    } else {
        // Pipes, sockets, terminals: read only if it would not block.
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `p` is one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, 0) } != 1 || p.revents & libc::POLLIN == 0 {
            return "notready".into();
        }
        // SAFETY: `buf` is writable for its length.
        unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) as libc::c_long }
    };
    if r < 0 {
        errno_name(Errno::last() as i32)
    } else {
        format!("{r}")
    }
}

fn fds() -> Res {
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .at("opendir /proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let mut found = Vec::new();
    for fd in fds.into_iter().filter(|&fd| fd > 2) {
        // The read_dir descriptor is closed by now: skip what is not open.
        // SAFETY: F_GETFD only inspects the descriptor table.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            continue;
        }
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_else(|e| format!("?{e}"));
        found.push(format!("{fd}={target}[r={}]", probe_fd(fd)));
    }
    if found.is_empty() {
        Err(Fail::Nothing(String::new()))
    } else {
        Ok(found.join(" "))
    }
}

fn status_fields(keys: &[&str]) -> Result<Vec<(String, String)>, Fail> {
    let status = std::fs::read_to_string("/proc/self/status").at("read /proc/self/status")?;
    Ok(keys
        .iter()
        .map(|k| {
            let v = status
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k}:")))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| "?".into());
            (k.to_string(), v)
        })
        .collect())
}

fn cap_check() -> Res {
    let caps = ["CapEff", "CapPrm", "CapBnd", "CapAmb"];
    let fields = status_fields(&[
        "CapEff",
        "CapPrm",
        "CapBnd",
        "CapAmb",
        "CapInh",
        "NoNewPrivs",
        "Seccomp",
        "Seccomp_filters",
    ])?;
    let line = fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let any = fields
        .iter()
        .filter(|(k, _)| caps.contains(&k.as_str()))
        .any(|(_, v)| u64::from_str_radix(v, 16) != Ok(0));
    if any {
        Ok(line)
    } else {
        Err(Fail::Nothing(line))
    }
}

fn id() -> Res {
    let groups = nix::unistd::getgroups().unwrap_or_default();
    Ok(format!(
        "uid={} euid={} gid={} egid={} pid={} ppid={} sid={} pgid={} groups={}",
        nix::unistd::getuid(),
        nix::unistd::geteuid(),
        nix::unistd::getgid(),
        nix::unistd::getegid(),
        nix::unistd::getpid(),
        nix::unistd::getppid(),
        nix::unistd::getsid(None)
            .map(|p| p.to_string())
            .unwrap_or_else(|e| format!("{e:?}")),
        nix::unistd::getpgrp(),
        groups
            .iter()
            .map(|g| g.to_string())
            .collect::<Vec<_>>()
            .join(","),
    ))
}

// ---------------------------------------------------------------- processes

fn secs_arg(arg: Option<&str>, default: u64) -> Result<u64, Fail> {
    Ok(arg
        .map(num)
        .transpose()?
        .map_or(default, |s| s.max(0) as u64))
}

fn fork_bomb_lite(n: &str) -> Res {
    let n = num(n)?.clamp(0, 100);
    let mut pids = Vec::new();
    for _ in 0..n {
        // SAFETY: single-threaded; the child only sleeps and _exits.
        match unsafe { nix::unistd::fork() }.at("fork")? {
            nix::unistd::ForkResult::Child => {
                std::thread::sleep(Duration::from_secs(60));
                // SAFETY: leaving the child without running the parent's atexit.
                unsafe { libc::_exit(0) };
            }
            nix::unistd::ForkResult::Parent { child } => pids.push(child.to_string()),
        }
    }
    println!("ok {}", pids.join(" "));
    std::thread::sleep(Duration::from_secs(60));
    std::process::exit(0);
}

/// Double fork + setsid, stdio on /dev/null: a process that tries to outlive
/// the sandbox. Prints the daemon's pid (in our pid namespace).
fn daemonize(secs: u64) -> Res {
    let (rd, wr) = nix::unistd::pipe().at("pipe")?;
    // SAFETY: single-threaded; the children use only simple syscalls.
    match unsafe { nix::unistd::fork() }.at("fork")? {
        nix::unistd::ForkResult::Child => {
            drop(rd);
            let _ = nix::unistd::setsid();
            // SAFETY: as above.
            match unsafe { nix::unistd::fork() } {
                Ok(nix::unistd::ForkResult::Child) => {
                    let pid = std::process::id().to_string();
                    let _ = nix::unistd::write(&wr, pid.as_bytes());
                    drop(wr);
                    if let Ok(null) = std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open("/dev/null")
                    {
                        for fd in 0..3 {
                            // SAFETY: replaces our own stdio with /dev/null.
                            unsafe { libc::dup2(null.as_raw_fd(), fd) };
                        }
                    }
                    std::thread::sleep(Duration::from_secs(secs));
                    // SAFETY: leaving without the parent's atexit handlers.
                    unsafe { libc::_exit(0) };
                }
                // SAFETY: as above.
                _ => unsafe { libc::_exit(0) },
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(wr);
            let mut pid = String::new();
            let _ = std::fs::File::from(rd).read_to_string(&mut pid);
            let _ = nix::sys::wait::waitpid(child, None);
            if pid.is_empty() {
                return Err(Fail::Errno(libc::ECHILD, "the daemon did not start".into()));
            }
            Ok(format!("daemon pid {pid}"))
        }
    }
}

fn ignore_term(secs: u64) -> Res {
    use nix::sys::signal::{signal, SigHandler, Signal};
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        // SAFETY: SIG_IGN installs no Rust handler.
        unsafe { signal(sig, SigHandler::SigIgn) }.at("signal")?;
    }
    println!(
        "ok ignoring SIGTERM SIGINT SIGHUP, pid {}",
        std::process::id()
    );
    std::thread::sleep(Duration::from_secs(secs));
    std::process::exit(0);
}

fn kill_self(sig: &str) -> Res {
    use nix::sys::signal::{signal, SigHandler, Signal};
    let sig = signal_arg(sig)?;
    if let Ok(s) = Signal::try_from(sig) {
        // SAFETY: SIG_DFL installs no Rust handler.
        let _ = unsafe { signal(s, SigHandler::SigDfl) };
    }
    println!("ok raising signal {sig}");
    // SAFETY: integer arguments.
    unsafe { libc::syscall(libc::SYS_kill, std::process::id() as libc::pid_t, sig) };
    std::thread::sleep(Duration::from_secs(1));
    eprintln!("attack: kill-self: still alive after signal {sig}");
    std::process::exit(1);
}

fn env() -> Res {
    let map: serde_json::Map<String, serde_json::Value> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned().into(),
            )
        })
        .collect();
    Ok(serde_json::Value::Object(map).to_string())
}

// ---------------------------------------------------------------- dispatch

const HELP: &str = "\
usage: attack SUBCOMMAND [ARGS]
prints `ok [DETAIL]` (exit 0) or `denied ENAME (N)` / `denied none ...` (exit 1); usage errors exit 2
files:     read PATH | write PATH | append PATH | truncate PATH | open-write PATH | mkdir PATH
           rmdir PATH | unlink PATH
           rename FROM TO | link FROM TO | symlink TARGET LINKPATH | readlink PATH | readdir PATH
           stat PATH | mknod PATH | chmod PATH OCTAL
mounts:    mount [TARGET] | bind-mount SRC DST | remount-rw PATH | mount-setattr PATH | open-tree [PATH]
           fsopen | umount PATH | pivot_root | chroot PATH
ns:        unshare-user | unshare-ns | unshare-net | clone-newuser | clone3-newuser | setns PATH
syscalls:  keyctl | bpf | bpf-map | perf | userfaultfd | io_uring | personality | personality-query
           kexec | init_module | reboot | swapon | syslog | acct | iopl | ioperm | quotactl | settime
           sethostname [NAME] | open_by_handle_at | ptrace PID | kill PID [SIG] | kill-all-probe
           syscall NR [ARGS...] | x32 | int80 | landlock-probe
terminal:  tiocsti [FD] | tiocsti64 [FD] | tioclinux [FD]
network:   tcp-connect HOST:PORT | udp-send HOST:PORT | tcp-listen PORT | tcp-serve PORT [SECS]
           proxy-raw REQUEST (escapes \\r \\n \\0 \\xNN) | proxy-tunnels N HOST:PORT (through $HTTP_PROXY)
           raw-socket | packet-socket | icmp-socket | inet-socket | inet6-socket | netlink
           netlink-links | vsock-socket | unix-connect PATH | unix-socket | unix-pair
           unix-dgram-send PATH | unix-dgram-connect PATH | unix-serve PATH
           abstract-connect NAME | abstract-listen NAME [SECS]
ipc:       sysv-shm-create KEY | sysv-shm-attach KEY | sysv-shm-remove KEY
           sysv-msg-create KEY | sysv-msg KEY | sysv-msg-remove KEY
           sysv-sem-create KEY | sysv-sem KEY | sysv-sem-remove KEY
           mq-create NAME | mq-send NAME | mq-remove NAME
probes:    fds | cap-check | pid-list | id | env
processes: sleep SECS [TAG] | ignore-term SECS [TAG] | fork-bomb-lite N [TAG] | daemonize SECS [TAG]
           exit N | kill-self SIG
";

fn run(sub: &str, args: &[String]) -> Res {
    let a = |i: usize| -> Result<&str, Fail> {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| Fail::Usage(format!("{sub}: missing argument (see `attack help`)")))
    };
    let opt = |i: usize| args.get(i).map(String::as_str);
    match sub {
        "read" => read_file(a(0)?),
        "write" => write_file(a(0)?, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC),
        "append" => write_file(a(0)?, libc::O_WRONLY | libc::O_APPEND),
        "open-write" => open_write(a(0)?),
        "truncate" => {
            nix::unistd::truncate(a(0)?, 0)?;
            Ok("truncated to 0 bytes".into())
        }
        "mkdir" => std::fs::create_dir(a(0)?)
            .map(|_| "created".into())
            .map_err(Into::into),
        "rmdir" => std::fs::remove_dir(a(0)?)
            .map(|_| "removed".into())
            .map_err(Into::into),
        "unlink" => std::fs::remove_file(a(0)?)
            .map(|_| "removed".into())
            .map_err(Into::into),
        "rename" => std::fs::rename(a(0)?, a(1)?)
            .map(|_| "renamed".into())
            .map_err(Into::into),
        "link" => std::fs::hard_link(a(0)?, a(1)?)
            .map(|_| "linked".into())
            .map_err(Into::into),
        "symlink" => std::os::unix::fs::symlink(a(0)?, a(1)?)
            .map(|_| "created".into())
            .map_err(Into::into),
        "readlink" => Ok(std::fs::read_link(a(0)?)?.to_string_lossy().into_owned()),
        "readdir" => readdir(a(0)?),
        "stat" => stat(a(0)?),
        "mknod" => mknod(a(0)?),
        "chmod" => chmod(a(0)?, a(1)?),

        "mount" => mount_tmpfs(opt(0)),
        "bind-mount" => bind_mount(a(0)?, a(1)?),
        "remount-rw" => remount_rw(a(0)?),
        "mount-setattr" => mount_setattr(a(0)?),
        "open-tree" => open_tree(opt(0).unwrap_or("/")),
        "fsopen" => fsopen(),
        "umount" => umount(a(0)?),
        "pivot_root" => pivot_root(),
        "chroot" => chroot(a(0)?),

        "unshare-user" => unshare(libc::CLONE_NEWUSER, "user"),
        "unshare-ns" => unshare(libc::CLONE_NEWNS, "mount"),
        "unshare-net" => unshare(libc::CLONE_NEWNET, "network"),
        "clone-newuser" => clone_newuser(),
        "clone3-newuser" => clone3_newuser(),
        "setns" => setns(a(0)?),

        "keyctl" => keyctl(),
        "bpf" => bpf_prog_load(),
        "bpf-map" => bpf_map_create(),
        "perf" => perf(),
        "userfaultfd" => userfaultfd(),
        "io_uring" => io_uring(),
        "personality" => personality(0x0400000), // READ_IMPLIES_EXEC
        "personality-query" => personality(0xffff_ffff),
        "kexec" => kexec(),
        "init_module" => init_module(),
        "reboot" => reboot(),
        "swapon" => swapon(),
        "syslog" => syslog(),
        "acct" => acct(),
        "iopl" => iopl(),
        "ioperm" => ioperm(),
        "quotactl" => quotactl(),
        "settime" => settime(),
        "sethostname" => sethostname(opt(0)),
        "open_by_handle_at" => open_by_handle_at(),
        "ptrace" => ptrace(a(0)?),
        "kill" => kill(a(0)?, opt(1)),
        "kill-all-probe" => kill_all_probe(),
        "syscall" => raw_syscall(args),
        "x32" => x32(),
        "int80" => int80(),
        "landlock-probe" => landlock_probe(),

        "tiocsti" => tiocsti(fd_arg(opt(0))?, false),
        "tiocsti64" => tiocsti(fd_arg(opt(0))?, true),
        "tioclinux" => tioclinux(fd_arg(opt(0))?),

        "tcp-connect" => tcp_connect(a(0)?),
        "udp-send" => udp_send(a(0)?),
        "tcp-listen" => tcp_listen(a(0)?),
        "tcp-serve" => tcp_serve(a(0)?, opt(1)),
        "raw-socket" => socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP, "socket")
            .map(|_| "AF_INET SOCK_RAW socket".into()),
        "packet-socket" => socket(
            libc::AF_PACKET,
            libc::SOCK_RAW,
            (libc::ETH_P_ALL as u16).to_be() as i32,
            "socket",
        )
        .map(|_| "AF_PACKET socket".into()),
        "icmp-socket" => socket(
            libc::AF_INET,
            libc::SOCK_DGRAM,
            libc::IPPROTO_ICMP,
            "socket",
        )
        .map(|_| "AF_INET ICMP datagram socket".into()),
        "inet-socket" => {
            socket(libc::AF_INET, libc::SOCK_STREAM, 0, "socket").map(|_| "AF_INET socket".into())
        }
        "inet6-socket" => {
            socket(libc::AF_INET6, libc::SOCK_STREAM, 0, "socket").map(|_| "AF_INET6 socket".into())
        }
        "proxy-raw" => proxy_raw(a(0)?),
        "proxy-tunnels" => proxy_tunnels(a(0)?, a(1)?),
        "netlink" => netlink(),
        "netlink-links" => netlink_links(),
        "unix-connect" => unix_connect(a(0)?),
        "unix-socket" => {
            socket(libc::AF_UNIX, libc::SOCK_STREAM, 0, "socket").map(|_| "AF_UNIX socket".into())
        }
        "unix-pair" => unix_pair(),
        "unix-dgram-send" => unix_dgram(a(0)?, false),
        "unix-dgram-connect" => unix_dgram(a(0)?, true),
        "unix-serve" => unix_serve(a(0)?),
        "vsock-socket" => {
            socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0, "socket").map(|_| "AF_VSOCK socket".into())
        }
        "abstract-connect" => abstract_connect(a(0)?),
        "abstract-listen" => abstract_listen(a(0)?, opt(1)),

        "sysv-shm-create" => shm_create(a(0)?),
        "sysv-shm-attach" => shm_attach(a(0)?),
        "sysv-shm-remove" => shm_remove(a(0)?),
        "sysv-msg-create" => msg_create(a(0)?),
        "sysv-msg" => msg_send(a(0)?),
        "sysv-msg-remove" => msg_remove(a(0)?),
        "sysv-sem-create" => sem_create(a(0)?),
        "sysv-sem" => sem_post(a(0)?),
        "sysv-sem-remove" => sem_remove(a(0)?),
        "mq-create" => mq_create(a(0)?),
        "mq-send" => mq_send(a(0)?),
        "mq-remove" => mq_remove(a(0)?),

        "fds" => fds(),
        "cap-check" => cap_check(),
        "pid-list" => Ok(proc_pids()
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(" ")),
        "id" => id(),
        "env" => env(),

        "sleep" => {
            let secs = secs_arg(Some(a(0)?), 0)?;
            std::thread::sleep(Duration::from_secs(secs));
            Ok(format!("slept {secs} s"))
        }
        "ignore-term" => ignore_term(secs_arg(Some(a(0)?), 0)?),
        "fork-bomb-lite" => fork_bomb_lite(a(0)?),
        "daemonize" => daemonize(secs_arg(Some(a(0)?), 0)?),
        "exit" => {
            let code = num_i32(a(0)?)?;
            println!("ok exiting with {code}");
            std::process::exit(code);
        }
        "kill-self" => kill_self(a(0)?),

        "help" | "-h" | "--help" => {
            print!("{HELP}");
            std::process::exit(0);
        }
        _ => Err(Fail::Usage(format!("unknown subcommand {sub:?}\n{HELP}"))),
    }
}

fn main() {
    let args: Vec<String> = match std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect()
    {
        Ok(a) => a,
        Err(_) => {
            eprintln!("attack: arguments must be UTF-8");
            std::process::exit(2);
        }
    };
    let Some((sub, rest)) = args.split_first() else {
        eprint!("{HELP}");
        std::process::exit(2);
    };
    match run(sub, rest) {
        Ok(detail) if detail.is_empty() => println!("ok"),
        Ok(detail) => println!("ok {detail}"),
        Err(Fail::Errno(n, step)) => {
            if !step.is_empty() {
                eprintln!(
                    "attack: {sub}: {step} failed: {}",
                    Errno::from_raw(n).desc()
                );
            }
            println!("denied {} ({n})", errno_name(n));
            std::process::exit(1);
        }
        Err(Fail::Gai(code)) => {
            println!("denied {} ({code})", gai_name(code));
            std::process::exit(1);
        }
        Err(Fail::Nothing(detail)) if detail.is_empty() => {
            println!("denied none");
            std::process::exit(1);
        }
        Err(Fail::Nothing(detail)) => {
            println!("denied none {detail}");
            std::process::exit(1);
        }
        Err(Fail::Usage(msg)) => {
            eprintln!("attack: {msg}");
            std::process::exit(2);
        }
    }
}
