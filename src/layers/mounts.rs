//! The filesystem view, built by init (pid 1, root of its own user and mount
//! namespaces) before the command starts. The sequence follows bubblewrap:
//! every step that exists for security says why.
//!
//!   1. `/` recursively private: nothing we mount leaks back to the host.
//!   2. a tmpfs on a scratch dir, pivot into it: the host tree is at /oldroot.
//!   3. a fresh tmpfs at /newroot; bind what the policy lists, read-only
//!      or read-write, each with nosuid/nodev; private tmpfs for /tmp, $HOME.
//!   4. a minimal /dev and a fresh /proc (mounted while the old root is
//!      still attached: the kernel wants a fully visible procfs to exist).
//!   5. detach /oldroot, pivot into /newroot, detach the old root: the host
//!      tree is unreachable, not merely hidden.
//!   6. `/` and `/dev` read-only.

use std::fs;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::libc;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{chdir, pivot_root};

use crate::policy::{Access, Mount, Policy};

/// Why building the view failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupError {
    /// The namespace exists but cannot mount (e.g. Ubuntu's AppArmor
    /// restriction, a masked /proc in a container): fall back.
    Unusable(String),
    /// Something else went wrong: refuse (exit 125).
    Failed(String),
}

const NEWROOT: &str = "/newroot";
const OLDROOT: &str = "/oldroot";

/// Device nodes bound from the host (mknod is impossible in a user namespace).
pub const DEVICE_NODES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// procfs entries made read-only, as bubblewrap and Docker do (Docker's
/// list has `fs` too; `acpi` holds root-writable knobs like `wakeup`). A
/// payload run by root is uid 0 outside too: without capabilities, the file
/// mode alone lets it write many of these (sysctls, sysrq-trigger, irq
/// affinity), so the mount must refuse. `mtrr` needs CAP_SYS_ADMIN anyway;
/// it is here because it is the single-file entry most x86 kernels have, so
/// the tests exercise the single-file path that sysrq-trigger takes.
pub const PROC_READ_ONLY: &[&str] = &["sys", "sysrq-trigger", "irq", "bus", "fs", "acpi", "mtrr"];

fn inside(root: &str, path: &Path) -> PathBuf {
    Path::new(root).join(path.strip_prefix("/").unwrap_or(path))
}

fn mnt(
    src: Option<&Path>,
    dst: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), String> {
    mount(src, dst, fstype, flags, data).map_err(|e| {
        let src = src.map(|s| format!("{} ", s.display())).unwrap_or_default();
        format!(
            "mount {src}on {} ({}): {e}",
            dst.display(),
            fstype.unwrap_or("bind")
        )
    })
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const AT_RECURSIVE: libc::c_uint = 0x8000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Add mount flags (never remove any). mount_setattr only sets the bits it
/// is given, so the locked flags of the source (nosuid, nodev, noexec, atime)
/// stay as they were, and AT_RECURSIVE reaches submounts too. Kernels before
/// 5.12 get a classic remount that repeats the source's flags.
fn add_flags(path: &Path, set: u64, recursive: bool) -> Result<(), String> {
    let c_path =
        std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: c_path is a valid C string and attr a valid mount_attr of the
    // size passed; both outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c_path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret == 0 {
        return Ok(());
    }
    let err = Errno::last();
    if err != Errno::ENOSYS {
        return Err(format!("mount_setattr {}: {err}", path.display()));
    }
    let st =
        nix::sys::statvfs::statvfs(path).map_err(|e| format!("statvfs {}: {e}", path.display()))?;
    use nix::sys::statvfs::FsFlags;
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    for (fs, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if st.flags().contains(fs) {
            flags |= ms;
        }
    }
    for (attr, ms) in [
        (MOUNT_ATTR_RDONLY, MsFlags::MS_RDONLY),
        (MOUNT_ATTR_NOSUID, MsFlags::MS_NOSUID),
        (MOUNT_ATTR_NODEV, MsFlags::MS_NODEV),
        (MOUNT_ATTR_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if set & attr != 0 {
            flags |= ms;
        }
    }
    mnt(None, path, None, flags, None)
}

fn ensure_dir(path: &Path) -> Result<(), String> {
    // mkdir first: most parents exist, and asking costs a syscall each.
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(_) => fs::create_dir_all(path)
            .map_err(|e| format!("creating mount point {}: {e}", path.display())),
    }
}

fn ensure_file(path: &Path) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        ensure_dir(parent)?;
    }
    if fs::symlink_metadata(path).is_err() {
        fs::File::create(path)
            .map_err(|e| format!("creating mount point {}: {e}", path.display()))?;
    }
    Ok(())
}

fn tmpfs(dst: &Path, mode: u32, flags: MsFlags) -> Result<(), String> {
    ensure_dir(dst)?;
    mnt(
        Some(Path::new("tmpfs")),
        dst,
        Some("tmpfs"),
        flags,
        Some(&format!("mode={mode:04o}")),
    )
}

/// A scratch directory for the first pivot, on the host.
fn scratch_base() -> &'static Path {
    ["/tmp", "/run", "/var/tmp", "/mnt"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_dir())
        .unwrap_or(Path::new("/tmp"))
}

/// Build the view and pivot into it. Runs in init, in the new namespaces.
pub fn build_root(policy: &Policy) -> Result<Vec<String>, SetupError> {
    let mut warnings = Vec::new();
    let unusable = SetupError::Unusable;
    let failed = SetupError::Failed;

    // 1. Nothing we mount propagates to the host's mount namespace.
    mnt(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )
    .map_err(unusable)?;

    // 2. Pivot onto a scratch tmpfs; the host tree becomes /oldroot.
    let base = scratch_base();
    tmpfs(base, 0o755, MsFlags::MS_NOSUID | MsFlags::MS_NODEV).map_err(unusable)?;
    ensure_dir(&base.join("newroot")).map_err(failed)?;
    ensure_dir(&base.join("oldroot")).map_err(failed)?;
    pivot_root(base, &base.join("oldroot"))
        .map_err(|e| failed(format!("pivot_root to scratch: {e}")))?;
    chdir("/").map_err(|e| failed(format!("chdir /: {e}")))?;

    // 3. The new root: an empty tmpfs, filled from the policy.
    let newroot = Path::new(NEWROOT);
    tmpfs(newroot, 0o755, MsFlags::MS_NOSUID | MsFlags::MS_NODEV).map_err(failed)?;
    for m in &policy.mounts {
        let essential = matches!(m, Mount::Bind { dst, .. } if *dst == policy.project);
        if let Err(e) = apply_mount(m) {
            if essential {
                return Err(failed(e));
            }
            log::warn!("{e}");
            warnings.push(e);
        }
    }

    // 4. /dev and /proc.
    build_dev(&mut warnings).map_err(failed)?;
    build_proc().map_err(unusable)?;

    // 5. Drop the host tree for good.
    umount2(OLDROOT, MntFlags::MNT_DETACH)
        .map_err(|e| failed(format!("detaching the old root: {e}")))?;
    chdir(newroot).map_err(|e| failed(format!("chdir {NEWROOT}: {e}")))?;
    pivot_root(".", ".").map_err(|e| failed(format!("pivot_root into the new root: {e}")))?;
    umount2(".", MntFlags::MNT_DETACH)
        .map_err(|e| failed(format!("detaching the scratch root: {e}")))?;
    chdir("/").map_err(|e| failed(format!("chdir /: {e}")))?;

    // 6. Nothing can be created at the top level or in /dev.
    add_flags(
        Path::new("/"),
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        false,
    )
    .map_err(failed)?;
    add_flags(
        Path::new("/dev"),
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
        false,
    )
    .map_err(failed)?;
    chdir(&policy.project)
        .map_err(|e| failed(format!("chdir {}: {e}", policy.project.display())))?;
    Ok(warnings)
}

fn apply_mount(m: &Mount) -> Result<(), String> {
    match m {
        Mount::Symlink { dst, target, .. } => {
            let at = inside(NEWROOT, dst);
            if let Some(parent) = at.parent() {
                ensure_dir(parent)?;
            }
            std::os::unix::fs::symlink(target, &at)
                .map_err(|e| format!("symlink {}: {e}", dst.display()))
        }
        Mount::Copy { src, dst, .. } => copy_file(&inside(OLDROOT, src), &inside(NEWROOT, dst)),
        Mount::Tmpfs { dst, mode, .. } => tmpfs(
            &inside(NEWROOT, dst),
            *mode,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        ),
        Mount::Bind {
            src,
            dst,
            access,
            dir,
            ..
        } => {
            let at = inside(NEWROOT, dst);
            if *dir {
                ensure_dir(&at)?;
            } else {
                ensure_file(&at)?;
            }
            let from = inside(OLDROOT, src);
            mnt(
                Some(&from),
                &at,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )?;
            // Setuid files and device nodes never work through a bind:
            // no privilege can come in with the command's files.
            let mut set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
            if *access == Access::ReadOnly {
                set |= MOUNT_ATTR_RDONLY;
            }
            add_flags(&at, set, true)
        }
    }
}

/// Files larger than this are bound, not copied.
const COPY_LIMIT: u64 = 1 << 20;

/// Copy a small file into the new root (read-only once the root is
/// remounted); larger ones are bound read-only instead.
fn copy_file(from: &Path, to: &Path) -> Result<(), String> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let meta = fs::metadata(from).map_err(|e| format!("stat {}: {e}", from.display()))?;
    if meta.len() > COPY_LIMIT {
        ensure_file(to)?;
        mnt(Some(from), to, None, MsFlags::MS_BIND, None)?;
        return add_flags(
            to,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            false,
        );
    }
    let data = fs::read(from).map_err(|e| format!("reading {}: {e}", from.display()))?;
    if let Some(parent) = to.parent() {
        ensure_dir(parent)?;
    }
    // Permission bits only: no setuid/setgid/sticky comes along.
    let mode = meta.permissions().mode() & 0o777;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(to)
        .map_err(|e| format!("creating {}: {e}", to.display()))?;
    std::io::Write::write_all(&mut f, &data).map_err(|e| format!("writing {}: {e}", to.display()))
}

fn build_dev(warnings: &mut Vec<String>) -> Result<(), String> {
    let dev = inside(NEWROOT, Path::new("/dev"));
    tmpfs(&dev, 0o755, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC)?;
    for node in DEVICE_NODES {
        let at = dev.join(node);
        ensure_file(&at)?;
        let from = inside(OLDROOT, &Path::new("/dev").join(node));
        mnt(Some(&from), &at, None, MsFlags::MS_BIND, None)?;
        add_flags(&at, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, false)?;
    }
    // A private devpts: the command's ptys are not the host's.
    let pts = dev.join("pts");
    ensure_dir(&pts)?;
    match mnt(
        Some(Path::new("devpts")),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=620"),
    ) {
        Ok(()) => std::os::unix::fs::symlink("pts/ptmx", dev.join("ptmx"))
            .map_err(|e| format!("symlink /dev/ptmx: {e}"))?,
        Err(e) => warnings.push(format!(
            "no private /dev/pts, new terminals cannot be opened: {e}"
        )),
    }
    // Shared memory: private to the sandbox (host /dev/shm stays out).
    tmpfs(
        &dev.join("shm"),
        0o1777,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
    )?;
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(name))
            .map_err(|e| format!("symlink /dev/{name}: {e}"))?;
    }
    Ok(())
}

fn build_proc() -> Result<(), String> {
    let proc_dir = inside(NEWROOT, Path::new("/proc"));
    ensure_dir(&proc_dir)?;
    // A procfs of the new pid namespace: only the sandbox's processes.
    mnt(
        Some(Path::new("proc")),
        &proc_dir,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )
    .map_err(|e| format!("{e} (a container that masks /proc prevents a fresh procfs)"))?;
    // Kernel knobs stay read-only even if a capability slipped through.
    for sub in PROC_READ_ONLY {
        let p = proc_dir.join(sub);
        if p.exists() {
            mnt(Some(&p), &p, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
            add_flags(
                &p,
                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                true,
            )?;
        }
    }
    Ok(())
}
