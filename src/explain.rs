//! `bwai explain [PATH...]` and `bwai --dry-run`: the resolved policy, and
//! for a path what the sandbox would do with it, and why.
//!
//! Nothing here decides anything new: the answers are read off the same
//! `Policy` that `run` enforces. With namespaces, the mount list is replayed
//! the way init layers it (the deepest mount whose destination contains a
//! path is the one on top; protected paths are read-only mounts above
//! that); without, the Landlock rules are the ones `landlock::rules` builds
//! (a grant on a folder covers everything beneath it). Where each entry came
//! from (a default, an agent profile, a line of a config file) is traced by
//! replaying the configuration merge (`config::Origins`).

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use serde_json::{json, Value};

use crate::config::{Config, Origin, Origins};
use crate::error::{Error, Result};
use crate::layers::protect::Protected;
use crate::layers::{landlock, mounts};
use crate::plan::{self, Plan};
use crate::policy::{self, Access, Caller, HostFs, Kind, Mount, Policy, Request};
use crate::probe::{self, Userns};

pub const EXPLAIN_VERSION: u32 = 1;

/// The most symlinks followed while resolving one path (the kernel's limit).
const MAX_LINKS: usize = 40;

/// How the sandbox would be built on this machine, which decides what
/// "hidden" means: absent (not in the mount view) or denied (Landlock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// A private mount view (Landlock mirrors it on top).
    Namespaces,
    /// No namespaces: the host's tree, with Landlock's allow-list.
    Landlock,
    /// Neither: bwai refuses unless `--dangerously-run-unconfined`.
    Unconfined,
}

impl View {
    pub fn name(self) -> &'static str {
        match self {
            View::Namespaces => "namespaces",
            View::Landlock => "landlock",
            View::Unconfined => "unconfined",
        }
    }
}

/// What this machine offers, found as `bwai doctor` finds it (a trial user
/// namespace, not only the cheap probe), and the plan `run` would make.
#[derive(Debug, Clone)]
pub struct Machine {
    caps: probe::Capabilities,
    /// Why user namespaces do not work here, and the fix, if they do not.
    userns_failed: Option<(String, String)>,
    plan: Plan,
}

impl Machine {
    pub fn detect() -> Machine {
        let caps = probe::probe();
        let userns_failed = match &caps.userns {
            Userns::Blocked(_) => None, // the plan says why
            Userns::Likely { suspicion } => crate::doctor::trial_userns().err().map(|e| {
                let fix = suspicion
                    .as_ref()
                    .map(|s| s.fix.clone())
                    .unwrap_or_else(|| "see `bwai doctor`".into());
                (e, fix)
            }),
        };
        // Nothing required and unconfined allowed: the layers as they are.
        let plan = plan::plan(&caps, &[], true, userns_failed.clone())
            .expect("a plan that requires nothing cannot be refused");
        Machine {
            caps,
            userns_failed,
            plan,
        }
    }

    pub fn view(&self) -> View {
        if self.plan.namespaces.planned {
            View::Namespaces
        } else if self.plan.landlock.planned {
            View::Landlock
        } else {
            View::Unconfined
        }
    }

    fn mode(&self) -> &'static str {
        self.plan.mode.name()
    }

    /// Why `run` would refuse this policy here, if it would.
    fn refusal(&self, policy: &Policy) -> Option<String> {
        plan::plan(
            &self.caps,
            &policy.require,
            policy.allow_unconfined,
            self.userns_failed.clone(),
        )
        .err()
        .map(|e| e.message)
    }
}

/// What a path is for the sandboxed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    ReadWrite,
    ReadOnly,
    /// Not in the sandbox's view at all (namespaces): ENOENT.
    Absent,
    /// Visible to the kernel but refused by Landlock: EACCES.
    Denied,
    /// Nothing restricts it (unconfined run).
    Unrestricted,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::ReadWrite => "read-write",
            Verdict::ReadOnly => "read-only",
            Verdict::Absent => "absent",
            Verdict::Denied => "denied",
            Verdict::Unrestricted => "unrestricted",
        }
    }
}

/// How a protected path is kept from being changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// A read-only mount over it (namespaces, the path exists).
    ReadOnlyMount,
    /// Writable, but verified and restored after the run.
    Restored,
    /// Absent now: whatever is created there is moved to quarantine after.
    Quarantined,
    /// It exists but could not be captured (too large, a parent is a
    /// symlink): neither bound read-only nor restored. bwai warns.
    NotEnforced,
}

impl Guard {
    pub fn name(self) -> &'static str {
        match self {
            Guard::ReadOnlyMount => "read-only mount",
            Guard::Restored => "restored after the run",
            Guard::Quarantined => "moved to quarantine after the run",
            Guard::NotEnforced => "not enforced",
        }
    }
}

/// The answer for one path.
#[derive(Debug, Clone)]
pub struct Answer {
    /// As the user wrote it.
    pub query: String,
    /// Absolute, with the symlinks resolved the way the sandbox would.
    pub path: PathBuf,
    pub access: Verdict,
    pub exists: bool,
    pub protected: Option<Guard>,
    /// The policy entry that decides (a mount destination, a Landlock rule,
    /// a protected path).
    pub rule: Option<PathBuf>,
    pub why: String,
    /// The symlinks followed on the way: (link, target).
    pub links: Vec<(PathBuf, PathBuf)>,
    pub notes: Vec<String>,
}

/// Everything explain needs, gathered by `lib::dispatch`.
pub struct Input<'a> {
    policy: &'a Policy,
    /// The effective configuration (user files and project file applied,
    /// profiles not yet).
    config: &'a Config,
    request: &'a Request,
    caller: &'a Caller,
    origins: Origins,
    fs: &'a dyn HostFs,
    /// The protected paths as `run` would find them before the run.
    snapshot: crate::layers::protect::Snapshot,
}

impl<'a> Input<'a> {
    /// `files`: the configuration files read, in order (the project's last).
    pub fn new(
        policy: &'a Policy,
        config: &'a Config,
        request: &'a Request,
        caller: &'a Caller,
        files: &[(PathBuf, String)],
        fs: &'a dyn HostFs,
    ) -> Input<'a> {
        // The same snapshot `run` takes first: it decides which protected
        // paths are bound read-only and verified.
        let snapshot = crate::layers::protect::Snapshot::take(&policy.protected, &policy.project);
        Input {
            snapshot,
            policy,
            config,
            request,
            caller,
            origins: Origins::trace(files),
            fs,
        }
    }

    /// How a protected entry is enforced in `view`, and why not when not.
    fn guard(&self, p: &Protected, view: View) -> (Guard, Option<String>) {
        use crate::layers::protect::Capture;
        match self.snapshot.state(p) {
            Some(Capture::Captured) => {
                // A symlink is never bound (it is restored after the run).
                let link = self.fs.kind(&p.path()) == Some(Kind::Symlink);
                if view == View::Namespaces && !link {
                    (Guard::ReadOnlyMount, None)
                } else {
                    (Guard::Restored, None)
                }
            }
            // Too large to keep a copy of, but a plain path: still bound
            // read-only with namespaces.
            Some(Capture::Uncaptured { bindable: true, .. }) if view == View::Namespaces => {
                (Guard::ReadOnlyMount, None)
            }
            Some(Capture::Uncaptured { why, .. }) => (Guard::NotEnforced, Some(why)),
            Some(Capture::Absent) | None => (Guard::Quarantined, None),
        }
    }
}

// ---------------------------------------------------------------- provenance

/// Where a filesystem entry of the policy came from.
#[derive(Debug, Clone)]
struct EntryOrigin {
    key: &'static str,
    entry: String,
    profile: Option<String>,
    origin: Origin,
}

impl EntryOrigin {
    fn text(&self) -> String {
        let what = match &self.profile {
            Some(p) => format!(
                "profile {p}: {} \"{}\"",
                self.key.trim_start_matches("filesystem."),
                self.entry
            ),
            None => format!("{} \"{}\"", self.key, self.entry),
        };
        format!("{what} ({})", self.origin)
    }

    fn json(&self) -> Value {
        json!({
            "key": self.key,
            "entry": self.entry,
            "profile": self.profile,
            "file": self.origin.file,
            "line": self.origin.line,
        })
    }
}

static EMPTY: Vec<String> = Vec::new();

fn list<'c>(config: &'c Config, key: &str) -> &'c Vec<String> {
    match key {
        "filesystem.read_only" => &config.filesystem.read_only,
        "filesystem.read_write" => &config.filesystem.read_write,
        "filesystem.etc" => &config.filesystem.etc,
        "filesystem.protected" => &config.filesystem.protected,
        "env.allow" => &config.env.allow,
        _ => &EMPTY,
    }
}

fn profile_list<'c>(config: &'c Config, name: &str, key: &str) -> &'c Vec<String> {
    match (config.profiles.get(name), key) {
        (Some(p), "filesystem.read_only") => &p.read_only,
        (Some(p), "filesystem.read_write") => &p.read_write,
        (Some(p), "env.allow") => &p.env,
        _ => &EMPTY,
    }
}

impl Input<'_> {
    fn home(&self) -> &Path {
        &self.policy.home
    }

    /// The path a configured entry names.
    fn expand(&self, key: &str, entry: &str) -> PathBuf {
        if key == "filesystem.etc" {
            Path::new("/etc").join(entry)
        } else {
            policy::expand_home(entry, self.home())
        }
    }

    /// The configured entry (base list first, then the active profiles, the
    /// order `policy::with_profiles` merges them) that put `dst` in the
    /// policy under `key`.
    fn entry_for(&self, key: &'static str, dst: &Path) -> Option<EntryOrigin> {
        if let Some(e) = list(self.config, key)
            .iter()
            .find(|e| self.expand(key, e) == dst)
        {
            return Some(EntryOrigin {
                key,
                entry: e.clone(),
                profile: None,
                origin: self.origins.of_item(|c| list(c, key), e),
            });
        }
        for name in &self.policy.profiles {
            if let Some(e) = profile_list(self.config, name, key)
                .iter()
                .find(|e| self.expand(key, e) == dst)
            {
                return Some(EntryOrigin {
                    key,
                    entry: e.clone(),
                    profile: Some(name.clone()),
                    origin: self.origins.of_item(|c| profile_list(c, name, key), e),
                });
            }
        }
        None
    }

    fn mount_origin(&self, m: &Mount) -> Option<EntryOrigin> {
        let why = match m {
            Mount::Bind { why, .. } | Mount::Copy { why, .. } | Mount::Symlink { why, .. } => why,
            Mount::Tmpfs { .. } => return None,
        };
        let key = match *why {
            "filesystem.read_only" => "filesystem.read_only",
            "filesystem.read_write" => "filesystem.read_write",
            "filesystem.etc" => "filesystem.etc",
            _ => return None,
        };
        self.entry_for(key, m.dst())
    }

    /// Why this mount is in the policy, for people.
    fn mount_why(&self, m: &Mount) -> String {
        if let Some(o) = self.mount_origin(m) {
            return o.text();
        }
        let why = match m {
            Mount::Bind { why, .. }
            | Mount::Copy { why, .. }
            | Mount::Symlink { why, .. }
            | Mount::Tmpfs { why, .. } => *why,
        };
        match why {
            "the project" => "the project (the current directory)".into(),
            "empty home" => "built in: the home is an empty private tmpfs".into(),
            "private /tmp" | "private /var/tmp" => {
                format!("built in: {why} (empty, discarded after the run)")
            }
            "git dir of this worktree" => {
                "built in: the git directory of this worktree or submodule (it points back at this project)".into()
            }
            other => format!("built in: {other}"),
        }
    }

    /// The configured name a protected entry comes from.
    fn protected_name(&self, p: &Protected) -> Option<&String> {
        let names = &self.config.filesystem.protected;
        let project = &self.policy.project;
        names
            .iter()
            .find(|n| p.base == *project && p.rel == Path::new(n.as_str()))
            .or_else(|| {
                names.iter().find(|n| {
                    n.strip_prefix("~/")
                        .is_some_and(|rest| p.base != *project && p.rel == Path::new(rest))
                })
            })
            .or_else(|| {
                names.iter().find(|n| {
                    n.strip_prefix(".git/")
                        .is_some_and(|inner| p.rel.ends_with(inner))
                })
            })
    }

    fn protected_why(&self, p: &Protected) -> String {
        match self.protected_name(p) {
            Some(n) => format!(
                "filesystem.protected \"{n}\" ({})",
                self.origins
                    .of_item(|c| &c.filesystem.protected, n.as_str())
            ),
            None => "filesystem.protected".into(),
        }
    }
}

// ---------------------------------------------------------------- resolving

/// What is at a path, as far as resolution cares.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Missing,
    Dir,
    File,
    Link(PathBuf),
    /// A kernel filesystem (/proc, /dev/pts...): not resolved further.
    Special,
}

fn push_lexical(path: &mut PathBuf, rest: &[OsString]) {
    for c in rest {
        match c.to_str() {
            Some("..") => {
                path.pop();
            }
            Some(".") | Some("") => {}
            _ => path.push(c),
        }
    }
}

fn parts(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// Symlinks followed on the way: (link, target).
type Links = Vec<(PathBuf, PathBuf)>;

/// Variable names with why each is there.
type Named = Vec<(String, String)>;

/// Resolve `path` (absolute) one component at a time, following symlinks
/// as `open` would, in the tree that `node` describes. Returns the
/// resolved path, what is there, and the links followed.
fn resolve(path: &Path, node: &dyn Fn(&Path) -> Node) -> Result<(PathBuf, Node, Links)> {
    let mut todo = parts(path);
    todo.reverse(); // a stack: the next component is last
    let mut cur = PathBuf::from("/");
    let mut last = Node::Dir;
    let mut links = Vec::new();
    while let Some(c) = todo.pop() {
        if c == ".." {
            cur.pop();
            last = Node::Dir;
            continue;
        }
        let next = cur.join(&c);
        match node(&next) {
            Node::Link(target) => {
                if links.len() >= MAX_LINKS {
                    return Err(Error::usage(format!(
                        "explain: {}: too many levels of symbolic links",
                        path.display()
                    )));
                }
                links.push((next.clone(), target.clone()));
                if target.is_absolute() {
                    cur = PathBuf::from("/");
                }
                let mut t = parts(&target);
                t.reverse();
                todo.extend(t);
                last = Node::Dir;
            }
            Node::Missing => {
                todo.reverse();
                cur = next;
                push_lexical(&mut cur, &todo);
                return Ok((cur, Node::Missing, links));
            }
            Node::File | Node::Special if !todo.is_empty() => {
                // Not a directory: nothing is beneath it.
                let n = node(&next);
                todo.reverse();
                cur = next;
                push_lexical(&mut cur, &todo);
                let end = if n == Node::Special {
                    Node::Special
                } else {
                    Node::Missing
                };
                return Ok((cur, end, links));
            }
            n => {
                cur = next;
                last = n;
            }
        }
    }
    Ok((cur, last, links))
}

/// Where `path` leads on the host once every symlink on the way is read
/// (never opened through); None for a loop.
pub(crate) fn resolve_on_host(path: &Path) -> Option<PathBuf> {
    let fs = policy::RealFs::default();
    resolve(path, &|p| host_node(&fs, p))
        .ok()
        .map(|(p, _, _)| p)
}

fn host_node(fs: &dyn HostFs, p: &Path) -> Node {
    match fs.kind(p) {
        None => Node::Missing,
        Some(Kind::Dir) => Node::Dir,
        Some(Kind::File) => Node::File,
        Some(Kind::Symlink) => match fs.read_link(p) {
            Some(t) => Node::Link(t),
            None => Node::Missing,
        },
    }
}

/// The mount on top at `p`: the deepest destination that contains it.
fn deciding<'p>(policy: &'p Policy, p: &Path) -> Option<&'p Mount> {
    policy
        .mounts
        .iter()
        .filter(|m| p.starts_with(m.dst()))
        .max_by_key(|m| m.dst().components().count())
}

/// A directory created only to hold a deeper mount point.
fn holds_mount_point(policy: &Policy, p: &Path) -> bool {
    policy
        .mounts
        .iter()
        .any(|m| m.dst() != p && m.dst().starts_with(p))
}

/// What is at `p` inside the namespace view.
fn ns_node(policy: &Policy, fs: &dyn HostFs, p: &Path) -> Node {
    if p.starts_with("/proc") {
        return if p == Path::new("/proc") {
            Node::Dir
        } else {
            Node::Special
        };
    }
    if p.starts_with("/dev") {
        let rel = p.strip_prefix("/dev").unwrap_or(p);
        let name = rel.to_str().unwrap_or("");
        return match name {
            "" | "shm" | "pts" => Node::Dir,
            "ptmx" => Node::Link("pts/ptmx".into()),
            "fd" => Node::Link("/proc/self/fd".into()),
            "stdin" => Node::Link("/proc/self/fd/0".into()),
            "stdout" => Node::Link("/proc/self/fd/1".into()),
            "stderr" => Node::Link("/proc/self/fd/2".into()),
            n if mounts::DEVICE_NODES.contains(&n) => Node::File,
            n if n.starts_with("pts/") => Node::Special,
            _ => Node::Missing,
        };
    }
    if holds_mount_point(policy, p) && !matches!(deciding(policy, p), Some(Mount::Bind { .. })) {
        return Node::Dir;
    }
    match deciding(policy, p) {
        None => {
            if p == Path::new("/") {
                Node::Dir
            } else {
                Node::Missing
            }
        }
        Some(Mount::Tmpfs { dst, .. }) => {
            if p == dst {
                Node::Dir
            } else {
                Node::Missing
            }
        }
        Some(Mount::Copy { dst, .. }) => {
            if p == dst {
                Node::File
            } else {
                Node::Missing
            }
        }
        Some(Mount::Symlink { dst, target, .. }) => {
            if p == dst {
                Node::Link(target.clone())
            } else {
                Node::Missing
            }
        }
        Some(Mount::Bind { src, dst, .. }) => {
            let rel = p.strip_prefix(dst).unwrap_or(Path::new(""));
            let host = if rel.as_os_str().is_empty() {
                src.clone()
            } else {
                src.join(rel)
            };
            match host_node(fs, &host) {
                // The mount point itself is a bind of the resolved target.
                Node::Link(_) if rel.as_os_str().is_empty() => Node::Dir,
                Node::Missing if holds_mount_point(policy, p) => Node::Dir,
                n => n,
            }
        }
    }
}

/// A protected entry that contains `p`, if any.
fn protected_at<'p>(policy: &'p Policy, p: &Path) -> Option<&'p Protected> {
    policy
        .protected
        .iter()
        .filter(|e| p.starts_with(e.path()))
        .max_by_key(|e| e.path().components().count())
}

fn absolute(query: &str, cwd: &Path, home: &Path) -> Result<PathBuf> {
    if query.is_empty() {
        return Err(Error::usage("explain: an empty path")
            .with_hint("name a file or folder, e.g. `bwai explain ~/.ssh/id_rsa`"));
    }
    if query.contains('\0') {
        return Err(Error::usage("explain: the path contains a NUL byte"));
    }
    let p = if query == "~" {
        home.to_path_buf()
    } else if let Some(rest) = query.strip_prefix("~/") {
        home.join(rest)
    } else if query.starts_with('~') {
        return Err(Error::usage(format!(
            "explain: `{query}`: only `~/` (your home) is understood, not `~user`"
        )));
    } else {
        cwd.join(query)
    };
    Ok(p)
}

impl Input<'_> {
    /// Explain one path for the given view.
    pub fn path(&self, query: &str, view: View) -> Result<Answer> {
        // Inside, the current directory is the project's real path.
        let abs = absolute(query, &self.policy.project, self.home())?;
        match view {
            View::Namespaces => self.in_namespaces(query, &abs),
            View::Landlock => self.in_landlock(query, &abs),
            View::Unconfined => {
                let (path, node, links) = resolve(&abs, &|p| host_node(self.fs, p))?;
                Ok(Answer {
                    query: query.into(),
                    path,
                    access: Verdict::Unrestricted,
                    exists: node != Node::Missing,
                    protected: None,
                    rule: None,
                    why: "neither namespaces nor Landlock are available here: bwai refuses to run \
                          (with --dangerously-run-unconfined, nothing restricts files)"
                        .into(),
                    links,
                    notes: vec![],
                })
            }
        }
    }

    fn in_namespaces(&self, query: &str, abs: &Path) -> Result<Answer> {
        let policy = self.policy;
        let (path, node, links) = resolve(abs, &|p| ns_node(policy, self.fs, p))?;
        let exists = node != Node::Missing;
        let mut a = Answer {
            query: query.into(),
            path: path.clone(),
            access: Verdict::Absent,
            exists,
            protected: None,
            rule: None,
            why: String::new(),
            links,
            notes: vec![],
        };
        if path.starts_with("/proc") {
            a.access = Verdict::ReadOnly;
            a.rule = Some("/proc".into());
            a.why = format!(
                "built in: the sandbox's own /proc (its processes only; {} read-only)",
                mounts::PROC_READ_ONLY
                    .iter()
                    .map(|s| format!("/proc/{s}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return Ok(a);
        }
        if path.starts_with("/dev") {
            a.rule = Some("/dev".into());
            let device = path
                .strip_prefix("/dev")
                .ok()
                .and_then(|r| r.to_str())
                .is_some_and(|n| {
                    mounts::DEVICE_NODES.contains(&n)
                        || n.starts_with("pts")
                        || n.starts_with("shm")
                });
            (a.access, a.why) = if !exists {
                (
                    Verdict::Absent,
                    "built in: a minimal /dev (null zero full random urandom tty pts ptmx shm); this node is not in it".into(),
                )
            } else if device {
                (
                    Verdict::ReadWrite,
                    "built in: a minimal /dev (device nodes bound from the host; private pts and shm)".into(),
                )
            } else {
                (
                    Verdict::ReadOnly,
                    "built in: a minimal read-only /dev".into(),
                )
            };
            return Ok(a);
        }
        let m = deciding(policy, &path);
        a.rule = m.map(|m| m.dst().to_path_buf());
        match m {
            None => {
                (a.access, a.why) = if exists {
                    (
                        Verdict::ReadOnly,
                        "built in: the sandbox's empty, read-only root (it only holds mount points)"
                            .into(),
                    )
                } else {
                    (Verdict::Absent, "not under any allowed tree".into())
                };
            }
            Some(m @ Mount::Tmpfs { dst, why, .. }) => {
                let what = self.mount_why(m);
                if exists {
                    a.access = Verdict::ReadWrite;
                    a.why = format!("{} is a private tmpfs: {what}", dst.display());
                } else if self.fs.kind(&path).is_some() {
                    // Something is there on the host, and the tmpfs hides it.
                    a.access = Verdict::Absent;
                    a.why = if *why == "empty home" {
                        format!(
                            "not under any allowed tree; {} is an empty tmpfs ({what})",
                            dst.display()
                        )
                    } else {
                        format!("hidden: {} is an empty tmpfs ({what})", dst.display())
                    };
                } else {
                    a.access = Verdict::ReadWrite;
                    a.why = format!(
                        "nothing is there; {} is a private tmpfs ({what})",
                        dst.display()
                    );
                    a.notes.push(format!(
                        "a file created there exists only in the sandbox's tmpfs at {} and is gone after the run",
                        dst.display()
                    ));
                }
            }
            Some(m @ Mount::Copy { src, dst, .. }) => {
                a.access = if exists {
                    Verdict::ReadOnly
                } else {
                    Verdict::Absent
                };
                a.why = if exists {
                    format!(
                        "copied read-only from {}: {}",
                        src.display(),
                        self.mount_why(m)
                    )
                } else {
                    format!(
                        "{} is a file copied into the sandbox: {}",
                        dst.display(),
                        self.mount_why(m)
                    )
                };
            }
            Some(m @ Mount::Symlink { .. }) => {
                a.access = Verdict::ReadOnly;
                a.why = self.mount_why(m);
            }
            Some(
                m @ Mount::Bind {
                    src, dst, access, ..
                },
            ) => {
                let what = self.mount_why(m);
                let under = if src == dst {
                    format!("under {}", dst.display())
                } else {
                    format!("under {} (shown from {})", dst.display(), src.display())
                };
                match (exists, access) {
                    (true, Access::ReadOnly) => {
                        a.access = Verdict::ReadOnly;
                        a.why = format!("{under}: {what}");
                    }
                    (true, Access::ReadWrite) => {
                        a.access = Verdict::ReadWrite;
                        a.why = format!("{under}: {what}");
                    }
                    (false, Access::ReadOnly) => {
                        a.access = Verdict::ReadOnly;
                        a.why = format!("{under}, read-only: {what}");
                    }
                    (false, Access::ReadWrite) => {
                        a.access = Verdict::ReadWrite;
                        a.why = format!("{under}, writable: {what}");
                    }
                }
                if *access == Access::ReadWrite {
                    if let Some(p) = protected_at(policy, &path) {
                        self.apply_guard(&mut a, p, View::Namespaces);
                    }
                }
            }
        }
        Ok(a)
    }

    fn apply_guard(&self, a: &mut Answer, p: &Protected, view: View) {
        let entry = p.path();
        let why = self.protected_why(p);
        let (guard, failure) = self.guard(p, view);
        a.protected = Some(guard);
        a.rule = Some(entry.clone());
        let inside = if a.path == entry {
            String::new()
        } else {
            format!(" (inside {})", entry.display())
        };
        a.notes.clear();
        match guard {
            Guard::ReadOnlyMount => {
                a.access = Verdict::ReadOnly;
                a.why = format!(
                    "protected path{inside}: {why}; bound read-only over the writable tree"
                );
            }
            Guard::Restored => {
                a.why = format!(
                    "protected path{inside}: {why}; writable here ({}), but verified and restored after the run",
                    if view == View::Landlock {
                        "Landlock cannot deny a path inside a tree it allows"
                    } else {
                        "it is a symlink, which is never bound"
                    }
                );
            }
            Guard::Quarantined => {
                a.why = format!(
                    "protected path{inside}: {why}; it does not exist now, and whatever is created there is moved to .bwai-quarantine after the run"
                );
            }
            Guard::NotEnforced => {
                a.why = format!(
                    "protected path{inside}: {why}; but NOT enforced: it could not be captured ({}), so it is neither read-only nor restored",
                    failure.as_deref().unwrap_or("unknown")
                );
            }
        }
    }

    fn in_landlock(&self, query: &str, abs: &Path) -> Result<Answer> {
        let policy = self.policy;
        let (path, node, links) = resolve(abs, &|p| host_node(self.fs, p))?;
        let exists = node != Node::Missing;
        let rules = landlock::rules(policy, false, None);
        let mut a = Answer {
            query: query.into(),
            path: path.clone(),
            access: Verdict::Denied,
            exists,
            protected: None,
            rule: None,
            why: String::new(),
            links,
            notes: vec![],
        };
        let deepest = |list: &[PathBuf]| {
            list.iter()
                .filter(|r| path.starts_with(r))
                .max_by_key(|r| r.components().count())
                .cloned()
        };
        // Where a rule came from: the mount it mirrors (host side).
        let origin_of = |rule: &Path| {
            policy
                .mounts
                .iter()
                .find(|m| match m {
                    Mount::Bind { src, .. } | Mount::Copy { src, .. } => src == rule,
                    _ => false,
                })
                .map(|m| self.mount_why(m))
                .unwrap_or_else(|| "built in".into())
        };
        if path.starts_with(&rules.proc_dir) {
            a.access = Verdict::ReadOnly;
            a.rule = Some(rules.proc_dir.clone());
            a.why = "built in: the host's /proc, read-only (no pid namespace here)".into();
        } else if rules.devices.iter().any(|d| path.starts_with(d)) {
            a.access = Verdict::ReadWrite;
            a.rule = deepest(&rules.devices);
            a.why = "built in: the device nodes a program needs (null zero full random urandom tty ptmx pts)".into();
        } else if let Some(w) = deepest(&rules.write) {
            a.access = Verdict::ReadWrite;
            a.why = format!(
                "under {} (Landlock: writable): {}",
                w.display(),
                origin_of(&w)
            );
            a.rule = Some(w);
            if let Some(p) = protected_at(policy, &path) {
                self.apply_guard(&mut a, p, View::Landlock);
            }
        } else if let Some(r) = deepest(&rules.read) {
            a.access = Verdict::ReadOnly;
            a.why = format!(
                "under {} (Landlock: read-only): {}",
                r.display(),
                origin_of(&r)
            );
            a.rule = Some(r);
        } else {
            a.access = Verdict::Denied;
            a.why = "not under any allowed tree (Landlock denies it)".into();
            if path.starts_with("/tmp") {
                a.notes.push("without namespaces the sandbox gets a private folder under /tmp instead, named by $TMPDIR".into());
            }
            if path.starts_with(self.home()) {
                a.notes.push("without namespaces there is no private home: nothing of the home is granted unless listed".into());
            }
        }
        Ok(a)
    }
}

// ---------------------------------------------------------------- the whole policy

/// One line of the filesystem listing.
struct Line {
    path: PathBuf,
    kind: &'static str,
    access: &'static str,
    source: Option<PathBuf>,
    target: Option<PathBuf>,
    why: String,
    origin: Option<EntryOrigin>,
}

impl Input<'_> {
    fn lines(&self, view: View) -> Vec<Line> {
        let policy = self.policy;
        let mut out = Vec::new();
        if view == View::Namespaces {
            out.push(Line {
                path: "/".into(),
                kind: "root",
                access: "read-only",
                source: None,
                target: None,
                why: "built in: an empty tmpfs holding the mount points".into(),
                origin: None,
            });
        }
        for m in &policy.mounts {
            let origin = self.mount_origin(m);
            let why = self.mount_why(m);
            let line = match m {
                Mount::Bind {
                    src, dst, access, ..
                } => Line {
                    path: dst.clone(),
                    kind: if view == View::Namespaces {
                        "bind"
                    } else {
                        "grant"
                    },
                    access: match access {
                        Access::ReadOnly => "read-only",
                        Access::ReadWrite => "read-write",
                    },
                    source: (src != dst).then(|| src.clone()),
                    target: None,
                    why,
                    origin,
                },
                Mount::Copy { src, dst, .. } => Line {
                    path: dst.clone(),
                    kind: if view == View::Namespaces {
                        "copy"
                    } else {
                        "grant"
                    },
                    access: "read-only",
                    source: (src != dst).then(|| src.clone()),
                    target: None,
                    why,
                    origin,
                },
                Mount::Symlink { dst, target, .. } => Line {
                    path: dst.clone(),
                    kind: "symlink",
                    access: "read-only",
                    source: None,
                    target: Some(target.clone()),
                    why,
                    origin,
                },
                Mount::Tmpfs { dst, .. } => {
                    let (kind, access, why) = match view {
                        View::Namespaces => ("tmpfs", "read-write", why),
                        _ if dst == Path::new("/tmp") => (
                            "private-dir",
                            "read-write",
                            "built in: no private /tmp without namespaces: a private folder under /tmp, named by $TMPDIR (the real /tmp is denied)".into(),
                        ),
                        _ => (
                            "none",
                            "denied",
                            format!("{why}; without namespaces there is no tmpfs here: denied"),
                        ),
                    };
                    Line {
                        path: dst.clone(),
                        kind,
                        access,
                        source: None,
                        target: None,
                        why,
                        origin: None,
                    }
                }
            };
            out.push(line);
        }
        let dev_why = if view == View::Namespaces {
            "built in: a minimal /dev (nodes bound from the host)"
        } else {
            "built in: Landlock grants these device nodes"
        };
        for node in mounts::DEVICE_NODES.iter().chain(&["ptmx", "pts"]) {
            out.push(Line {
                path: Path::new("/dev").join(node),
                kind: "device",
                access: "read-write",
                source: None,
                target: None,
                why: dev_why.into(),
                origin: None,
            });
        }
        if view == View::Namespaces {
            out.push(Line {
                path: "/dev/shm".into(),
                kind: "tmpfs",
                access: "read-write",
                source: None,
                target: None,
                why: "built in: private shared memory (the host's stays out)".into(),
                origin: None,
            });
        }
        out.push(Line {
            path: "/proc".into(),
            kind: "proc",
            access: "read-only",
            source: None,
            target: None,
            why: if view == View::Namespaces {
                "built in: a fresh procfs of the sandbox's pid namespace".into()
            } else {
                "built in: the host's /proc (no pid namespace), read-only".into()
            },
            origin: None,
        });
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// Configured entries that are not in the policy, and why.
    fn skipped(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let mut seen = Vec::new();
        let mut consider = |key: &'static str, entry: &String, profile: Option<&String>| {
            if seen.contains(&(key, entry.clone())) {
                return;
            }
            seen.push((key, entry.clone()));
            let path = self.expand(key, entry);
            if self.policy.mounts.iter().any(|m| m.dst() == path) {
                return;
            }
            let why = match self.fs.kind(&path) {
                None => "does not exist here",
                Some(Kind::Symlink) => "a symlink that leads nowhere",
                _ => "covered by another entry",
            };
            let who = match profile {
                Some(p) => format!("profile {p}: {}", key.trim_start_matches("filesystem.")),
                None => key.to_string(),
            };
            let shown = if key == "filesystem.etc" {
                path.display().to_string()
            } else {
                entry.clone()
            };
            out.push((shown, who, why.to_string()));
        };
        for key in [
            "filesystem.read_only",
            "filesystem.etc",
            "filesystem.read_write",
        ] {
            for e in list(self.config, key) {
                consider(key, e, None);
            }
            for name in &self.policy.profiles {
                for e in profile_list(self.config, name, key) {
                    consider(key, e, Some(name));
                }
            }
        }
        out
    }

    fn profiles(&self) -> Vec<(String, String)> {
        let r = self.request;
        let interactive = r.interactive();
        let program = r.program();
        self.policy
            .profiles
            .iter()
            .map(|name| {
                let why = if r.profiles.contains(name) {
                    "asked for with --profile".to_string()
                } else if interactive {
                    "the interactive shell gets every profile (any agent may be started there)"
                        .to_string()
                } else {
                    format!(
                        "its command `{}` is run",
                        program.clone().unwrap_or_default()
                    )
                };
                (name.clone(), why)
            })
            .collect()
    }

    /// Names of the variables inside: (name, why). Never the values.
    fn env(&self) -> (Named, Named) {
        let effective = policy::with_profiles(self.config, &self.policy.profiles);
        let mut passed = Vec::new();
        let mut set = Vec::new();
        for (name, _) in &self.policy.env {
            let from_caller = self.caller.env.iter().any(|(k, _)| k == name)
                && !policy::OWN.contains(&name.as_str())
                && !self.config.env.set.contains_key(name)
                && policy::env_allowed(name, &effective.env.allow);
            if from_caller {
                let pattern = effective
                    .env
                    .allow
                    .iter()
                    .find(|p| policy::env_allowed(name, std::slice::from_ref(p)))
                    .cloned()
                    .unwrap_or_default();
                let why = if list(self.config, "env.allow").contains(&pattern) {
                    format!(
                        "env.allow \"{pattern}\" ({})",
                        self.origins.of_item(|c| &c.env.allow, &pattern)
                    )
                } else {
                    let profile = self
                        .policy
                        .profiles
                        .iter()
                        .find(|p| profile_list(self.config, p, "env.allow").contains(&pattern))
                        .cloned()
                        .unwrap_or_default();
                    format!(
                        "profile {profile}: env \"{pattern}\" ({})",
                        self.origins
                            .of_item(|c| profile_list(c, &profile, "env.allow"), &pattern)
                    )
                };
                passed.push((name.clone(), why));
            } else if self.config.env.set.contains_key(name) {
                let o = self
                    .origins
                    .of_value(|c| c.env.set.get(name).cloned(), name);
                set.push((name.clone(), format!("env.set ({o})")));
            } else {
                set.push((name.clone(), "set by bwai".to_string()));
            }
        }
        (passed, set)
    }

    fn network(&self) -> (String, String) {
        let mode = self.policy.net.name().to_string();
        let why = if self.request.net.is_some() {
            "--net".to_string()
        } else {
            match self.origins.of_value(|c| c.network, "network") {
                o if o.is_default() => "default".to_string(),
                o => format!("\"network\" in {o}"),
            }
        };
        (mode, why)
    }

    fn protected(&self, view: View) -> Vec<(PathBuf, bool, &'static str, String)> {
        self.policy
            .protected
            .iter()
            .map(|p| {
                let (guard, failure) = self.guard(p, view);
                let mut why = self.protected_why(p);
                if let Some(f) = failure {
                    why.push_str(&format!("; not enforced: {f}"));
                }
                (p.path(), guard != Guard::Quarantined, guard.name(), why)
            })
            .collect()
    }
}

// ---------------------------------------------------------------- output

fn layers_json(m: &Machine) -> Value {
    let layer = |p: &plan::LayerPlan| json!({"available": p.planned, "reason": p.reason});
    json!({
        "namespaces": layer(&m.plan.namespaces),
        "landlock": {
            "available": m.plan.landlock.planned,
            "abi": m.caps.landlock_abi,
            "reason": m.plan.landlock.reason,
        },
        "seccomp": layer(&m.plan.seccomp),
    })
}

fn answer_json(a: &Answer) -> Value {
    json!({
        "query": a.query,
        "path": a.path,
        "access": a.access.name(),
        "exists": a.exists,
        "protected": a.protected.map(|g| g.name()),
        "rule": a.rule,
        "why": a.why,
        "symlinks": a.links.iter().map(|(l, t)| json!({"link": l, "target": t})).collect::<Vec<_>>(),
        "notes": a.notes,
    })
}

fn answer_text(a: &Answer) -> String {
    let mut s = format!("{}: {}", a.query, a.access.name());
    if let Some(g) = a.protected {
        s.push_str(&format!(" (protected: {})", g.name()));
    }
    if !a.exists && matches!(a.access, Verdict::ReadWrite | Verdict::ReadOnly) {
        s.push_str(" (does not exist yet)");
    }
    s.push('\n');
    if a.path != Path::new(&a.query) {
        s.push_str(&format!("  path: {}\n", a.path.display()));
    }
    for (l, t) in &a.links {
        s.push_str(&format!(
            "  symlink: {} -> {} (followed, as the sandbox would)\n",
            l.display(),
            t.display()
        ));
    }
    s.push_str(&format!("  why: {}\n", a.why));
    for n in &a.notes {
        s.push_str(&format!("  note: {n}\n"));
    }
    s
}

/// `bwai explain PATH...`: the answers, as text or JSON.
pub fn paths(
    input: &Input,
    machine: &Machine,
    queries: &[String],
    as_json: bool,
) -> Result<String> {
    let view = machine.view();
    let answers = queries
        .iter()
        .map(|q| input.path(q, view))
        .collect::<Result<Vec<_>>>()?;
    if as_json {
        let v = json!({
            "explain_version": EXPLAIN_VERSION,
            "project": input.policy.project,
            "mode": machine.mode(),
            "view": view.name(),
            "paths": answers.iter().map(answer_json).collect::<Vec<_>>(),
        });
        return Ok(serde_json::to_string_pretty(&v).expect("JSON value") + "\n");
    }
    let mut s = String::new();
    if view != View::Namespaces {
        s.push_str(&format!(
            "(here bwai would run {}: {})\n",
            machine.mode(),
            view_summary(view)
        ));
    }
    for a in &answers {
        s.push_str(&answer_text(a));
    }
    Ok(s)
}

fn view_summary(view: View) -> &'static str {
    match view {
        View::Namespaces => "a private mount view; what is not listed is absent",
        View::Landlock => {
            "no namespaces, so the host's files stay visible and Landlock denies what is not listed (EACCES instead of absent)"
        }
        View::Unconfined => "neither namespaces nor Landlock: bwai refuses to run",
    }
}

/// `bwai explain` / `bwai --dry-run`: the whole policy.
pub fn policy(input: &Input, machine: &Machine, as_json: bool) -> String {
    let view = machine.view();
    let p = input.policy;
    let lines = input.lines(view);
    let protected = input.protected(view);
    let skipped = input.skipped();
    let profiles = input.profiles();
    let (passed, set) = input.env();
    let (net, net_why) = input.network();
    let refusal = machine.refusal(p);
    if as_json {
        let v = json!({
            "explain_version": EXPLAIN_VERSION,
            "project": p.project,
            "command": p.argv,
            "interactive": p.interactive,
            "mode": machine.mode(),
            "view": view.name(),
            "would_refuse": refusal,
            "layers": layers_json(machine),
            "profiles": profiles.iter().map(|(n, w)| json!({"name": n, "why": w})).collect::<Vec<_>>(),
            "network": {"mode": net, "why": net_why, "allow": p.net_allow},
            "env": {
                "passed": passed.iter().map(|(n, w)| json!({"name": n, "why": w})).collect::<Vec<_>>(),
                "set": set.iter().map(|(n, w)| json!({"name": n, "why": w})).collect::<Vec<_>>(),
            },
            "filesystem": lines.iter().map(|l| json!({
                "path": l.path,
                "kind": l.kind,
                "access": l.access,
                "source": l.source,
                "target": l.target,
                "why": l.why,
                "origin": l.origin.as_ref().map(EntryOrigin::json),
            })).collect::<Vec<_>>(),
            "protected": protected.iter().map(|(path, exists, guard, why)| json!({
                "path": path, "exists": exists, "enforcement": guard, "why": why,
            })).collect::<Vec<_>>(),
            "skipped": skipped.iter().map(|(e, who, why)| json!({"entry": e, "key": who, "why": why})).collect::<Vec<_>>(),
            "notes": p.notes,
        });
        return serde_json::to_string_pretty(&v).expect("JSON value") + "\n";
    }

    let mut s = String::new();
    s.push_str(&format!(
        "bwai: the policy for {} (nothing is run)\n",
        p.project.display()
    ));
    s.push_str(&format!(
        "command:  {}{}\n",
        p.argv.join(" "),
        if p.interactive {
            "  (interactive shell)"
        } else {
            ""
        }
    ));
    let why_not = |l: &plan::LayerPlan| l.reason.clone().unwrap_or_else(|| "unavailable".into());
    let ns = if machine.plan.namespaces.planned {
        "namespaces".to_string()
    } else {
        format!("no namespaces ({})", why_not(&machine.plan.namespaces))
    };
    let ll = if machine.plan.landlock.planned {
        format!("landlock abi{}", machine.caps.landlock_abi)
    } else {
        format!("no landlock ({})", why_not(&machine.plan.landlock))
    };
    let sc = if machine.plan.seccomp.planned {
        "seccomp"
    } else {
        "no seccomp"
    };
    s.push_str(&format!(
        "mode:     {} [{ns} | {ll} | {sc}]: {}\n",
        machine.mode(),
        view_summary(view)
    ));
    if let Some(r) = &refusal {
        s.push_str(&format!("          bwai would refuse to run here: {r}\n"));
    }
    s.push_str("profiles:");
    if profiles.is_empty() {
        s.push_str(" none (no agent command is run; --profile NAME applies one)\n");
    } else {
        s.push('\n');
        for (n, w) in &profiles {
            s.push_str(&format!("  {n:<10} {w}\n"));
        }
    }
    s.push_str(&format!("network:  {net} ({net_why})\n"));
    if !p.net_allow.is_empty() {
        s.push_str(&format!(
            "  allow-list (config, agent profiles, --net): {}\n",
            p.net_allow.join(", ")
        ));
    }
    s.push_str("environment (names only):\n");
    for (n, w) in &passed {
        s.push_str(&format!("  passed  {n:<28} {w}\n"));
    }
    for (n, w) in &set {
        s.push_str(&format!("  set     {n:<28} {w}\n"));
    }
    s.push_str(&format!(
        "\nfilesystem ({}):\n",
        if view == View::Namespaces {
            "the deepest entry containing a path decides; anything not listed is absent"
        } else {
            "host paths; a grant covers everything beneath it; anything not listed is denied"
        }
    ));
    let width = lines
        .iter()
        .map(|l| l.path.as_os_str().len())
        .max()
        .unwrap_or(0)
        .min(48);
    for l in &lines {
        let mut path = l.path.display().to_string();
        if let Some(t) = &l.target {
            path.push_str(&format!(" -> {}", t.display()));
        }
        let from = match &l.source {
            Some(src) => format!(" [from {}]", src.display()),
            None => String::new(),
        };
        s.push_str(&format!(
            "  {:<10} {:<7} {path:<width$} {}{from}\n",
            l.access, l.kind, l.why
        ));
    }
    s.push_str(&format!(
        "\nprotected ({}):\n",
        match view {
            View::Namespaces =>
                "read-only inside writable places; verified and restored after the run",
            _ => "Landlock cannot deny inside a writable tree: verified and restored after the run",
        }
    ));
    let pwidth = protected
        .iter()
        .filter(|p| p.1)
        .map(|p| p.0.as_os_str().len())
        .max()
        .unwrap_or(0)
        .min(48);
    for (path, exists, guard, why) in &protected {
        if *exists {
            s.push_str(&format!(
                "  {guard:<24} {:<pwidth$} {why}\n",
                path.display()
            ));
        }
    }
    let absent: Vec<String> = protected
        .iter()
        .filter(|p| !p.1)
        .map(|(path, _, _, why)| {
            let short = match (path.strip_prefix(&p.project), path.strip_prefix(&p.home)) {
                (Ok(rel), _) => rel.display().to_string(),
                (_, Ok(rel)) => format!("~/{}", rel.display()),
                _ => path.display().to_string(),
            };
            if why.ends_with("(default)") {
                short
            } else {
                format!("{short} [{why}]")
            }
        })
        .collect();
    if !absent.is_empty() {
        s.push_str("  absent now (whatever is created there is moved to .bwai-quarantine after the run):\n");
        s.push_str(&wrap(&absent, "    ", 100));
    }
    for reason in [
        "does not exist here",
        "a symlink that leads nowhere",
        "covered by another entry",
    ] {
        let items: Vec<String> = skipped
            .iter()
            .filter(|k| k.2 == reason)
            .map(|(e, who, _)| match who.strip_prefix("profile ") {
                Some(rest) => format!("{e} ({})", rest.split(':').next().unwrap_or(rest)),
                None => e.clone(),
            })
            .collect();
        if !items.is_empty() {
            s.push_str(&format!(
                "\nconfigured, but not in the sandbox ({reason}):\n"
            ));
            s.push_str(&wrap(&items, "  ", 100));
        }
    }
    if !p.notes.is_empty() {
        s.push_str("\nnotes:\n");
        for n in &p.notes {
            s.push_str(&format!("  {n}\n"));
        }
    }
    s
}

/// Items separated by spaces, in lines of about `width` columns.
fn wrap(items: &[String], indent: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::from(indent);
    for item in items {
        if line.len() > indent.len() && line.len() + 1 + item.len() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(indent);
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line.push_str(item);
    }
    if line.len() > indent.len() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------- entry points

/// What was asked: paths (none: the whole policy) and the output format.
#[derive(Debug, Clone, Default)]
pub struct What {
    pub paths: Vec<String>,
    pub json: bool,
}

/// `bwai explain ...` or `bwai --dry-run ...`, if that is what was asked.
/// The subcommand's own flags are folded into the run's, so the rest of the
/// pipeline builds exactly the policy a run would.
pub fn take(cli: &mut crate::cli::Cli) -> Option<What> {
    if let Some(crate::cli::Sub::Explain(e)) = cli.subcommand.take() {
        cli.command = e.command;
        cli.argv = e.argv;
        cli.config = e.config;
        cli.net = e.net;
        cli.profile = e.profile;
        cli.require = e.require;
        cli.dangerously_share_home = e.dangerously_share_home;
        return Some(What {
            paths: e.paths,
            json: e.json,
        });
    }
    cli.dry_run.then(|| What {
        paths: Vec::new(),
        json: cli.json,
    })
}

/// The text (or JSON) to print.
pub fn print(input: &Input, what: &What) -> Result<String> {
    let machine = Machine::detect();
    if what.paths.is_empty() {
        Ok(policy(input, &machine, what.json))
    } else {
        paths(input, &machine, &what.paths, what.json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::policy::fake::FakeFs;

    fn host() -> FakeFs {
        let mut fs = FakeFs::default();
        for (p, k) in [
            ("/", Kind::Dir),
            ("/usr", Kind::Dir),
            ("/usr/bin", Kind::Dir),
            ("/usr/bin/ls", Kind::File),
            ("/usr/bin/bash", Kind::File),
            ("/etc", Kind::Dir),
            ("/etc/passwd", Kind::File),
            ("/etc/shadow", Kind::File),
            ("/tmp", Kind::Dir),
            ("/home", Kind::Dir),
            ("/home/u", Kind::Dir),
            ("/home/u/.ssh", Kind::Dir),
            ("/home/u/.ssh/id_rsa", Kind::File),
            ("/home/u/.claude", Kind::Dir),
            ("/home/u/.claude/x", Kind::File),
            ("/home/u/p", Kind::Dir),
            ("/home/u/p/README", Kind::File),
        ] {
            fs.kinds.insert(p.into(), k);
        }
        for (p, t) in [
            ("/bin", "usr/bin"),
            ("/home/u/p/key", "../.ssh/id_rsa"),
            ("/home/u/p/tools", "/usr/bin"),
            ("/home/u/p/loop", "loop"),
        ] {
            fs.kinds.insert(p.into(), Kind::Symlink);
            fs.links.insert(p.into(), t.into());
        }
        fs
    }

    fn check(view: View, cases: &[(&str, Verdict)]) {
        let fs = host();
        let caller = Caller {
            cwd: "/home/u/p".into(),
            home: "/home/u".into(),
            user: "u".into(),
            uid: 1000,
            gid: 1000,
            env: vec![("TERM".into(), "x".into())],
        };
        let request = Request {
            command: Some("claude".into()),
            ..Default::default()
        };
        let config = Config::default();
        let policy = policy::build(&config, &request, &caller, &fs).unwrap();
        let input = Input::new(&policy, &config, &request, &caller, &[], &fs);
        for (q, want) in cases {
            let a = input.path(q, view).unwrap();
            assert_eq!(a.access, *want, "{q} in {view:?}: {a:?}");
        }
        assert!(input.path("loop", view).is_err());
        assert!(input.path("", view).is_err());
    }

    #[test]
    fn paths_in_the_namespace_view() {
        check(
            View::Namespaces,
            &[
                ("/usr/bin/ls", Verdict::ReadOnly),
                ("/bin/ls", Verdict::ReadOnly),
                ("README", Verdict::ReadWrite),
                ("new-file", Verdict::ReadWrite),
                ("~/.ssh/id_rsa", Verdict::Absent),
                ("key", Verdict::Absent),
                ("tools/ls", Verdict::ReadOnly),
                ("/home/u/.claude/x", Verdict::ReadWrite),
                ("/etc/shadow", Verdict::Absent),
                ("/tmp", Verdict::ReadWrite),
                ("/home", Verdict::ReadOnly),
                ("/dev/null", Verdict::ReadWrite),
            ],
        );
    }

    #[test]
    fn paths_in_the_landlock_view() {
        check(
            View::Landlock,
            &[
                ("/usr/bin/ls", Verdict::ReadOnly),
                ("/bin/ls", Verdict::ReadOnly),
                ("README", Verdict::ReadWrite),
                ("~/.ssh/id_rsa", Verdict::Denied),
                ("key", Verdict::Denied),
                ("/etc/shadow", Verdict::Denied),
                ("/tmp/x", Verdict::Denied),
                ("/home/u/.claude/x", Verdict::ReadWrite),
            ],
        );
    }

    #[test]
    fn resolution_follows_links_and_dotdot_like_the_kernel() {
        let fs = host();
        let (p, n, links) = resolve(Path::new("/home/u/p/key"), &|p| host_node(&fs, p)).unwrap();
        assert_eq!(p, Path::new("/home/u/.ssh/id_rsa"));
        assert_eq!(n, Node::File);
        assert_eq!(links.len(), 1);
        let (p, n, _) = resolve(Path::new("/home/u/p/README/x"), &|p| host_node(&fs, p)).unwrap();
        assert_eq!(
            (p.as_path(), n),
            (Path::new("/home/u/p/README/x"), Node::Missing)
        );
        let (p, _, _) =
            resolve(Path::new("/home/u/p/tools/../lib"), &|p| host_node(&fs, p)).unwrap();
        assert_eq!(p, Path::new("/usr/lib"), "`..` after a link is physical");
    }
}
