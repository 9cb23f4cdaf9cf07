//! Config + command line + where we are -> Policy: what the sandbox shows,
//! what it runs, with which environment. Pure: the host filesystem is asked
//! through the `HostFs` trait, so the decisions are unit-tested with a fake.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use crate::config::{Config, Layer, NetMode};
use crate::error::{Error, Result};

/// The prompt of the interactive shell.
pub const PROMPT: &str = "[🫧] > ";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// One entry of the sandbox's filesystem view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// Host path `src` shown at `dst`.
    Bind {
        src: PathBuf,
        dst: PathBuf,
        access: Access,
        dir: bool,
        why: &'static str,
    },
    /// A small host file copied (read-only) into the sandbox's own /etc:
    /// same content as a bind, at a fraction of the start-up cost.
    Copy {
        src: PathBuf,
        dst: PathBuf,
        why: &'static str,
    },
    /// A symbolic link (merged-/usr top-level directories).
    Symlink {
        dst: PathBuf,
        target: PathBuf,
        why: &'static str,
    },
    /// An empty private tmpfs (`/tmp`, `$HOME`).
    Tmpfs {
        dst: PathBuf,
        mode: u32,
        why: &'static str,
    },
}

impl Mount {
    pub fn dst(&self) -> &Path {
        match self {
            Mount::Bind { dst, .. }
            | Mount::Copy { dst, .. }
            | Mount::Symlink { dst, .. }
            | Mount::Tmpfs { dst, .. } => dst,
        }
    }
}

/// What the user asked for on the command line (already parsed by clap).
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub command: Option<String>,
    pub argv: Vec<String>,
    pub net: Option<NetMode>,
    /// Hosts from `--net allow:HOST,...`, on top of the configured ones.
    pub net_allow: Vec<String>,
    pub require: Vec<Layer>,
    /// `--profile NAME,...`.
    pub profiles: Vec<String>,
    pub share_home: bool,
    pub allow_unconfined: bool,
    /// Limits given as flags; they override the configuration's.
    pub limits: crate::layers::limits::Limits,
    /// bwai's stdin is a terminal. Without one and without a command, the
    /// shell reads its commands from stdin: no prompt, no job control.
    pub stdin_tty: bool,
}

impl Request {
    /// No command: the interactive shell.
    pub fn interactive(&self) -> bool {
        self.command.is_none() && self.argv.is_empty()
    }

    /// The name of the program the command runs: it selects agent profiles.
    pub fn program(&self) -> Option<String> {
        match (&self.command, self.argv.first()) {
            (Some(cmd), _) => first_program(cmd),
            (None, Some(prog)) => Some(prog.rsplit('/').next().unwrap_or(prog).to_string()),
            (None, None) => None,
        }
    }
}

/// Who and where: facts about the caller, gathered by `main`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub cwd: PathBuf,
    pub home: PathBuf,
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    /// The caller's environment (only UTF-8 entries).
    pub env: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub project: PathBuf,
    pub home: PathBuf,
    pub uid: u32,
    pub gid: u32,
    /// Sorted so that a parent is always mounted before what is inside it.
    pub mounts: Vec<Mount>,
    pub env: Vec<(String, String)>,
    pub argv: Vec<String>,
    pub interactive: bool,
    pub net: NetMode,
    /// The allow-list of the `allow` mode, as written (for the report)...
    pub net_allow: Vec<String>,
    /// ...and parsed, for the proxy. Both empty in the other modes.
    pub net_allow_list: crate::net::AllowList,
    pub require: Vec<Layer>,
    pub seccomp_allow: Vec<String>,
    /// `seccomp.dangerously_allow_host_unix_sockets`: without namespaces
    /// (and Landlock ABI < 9), do not refuse unix sockets.
    pub allow_host_unix_sockets: bool,
    pub allow_unconfined: bool,
    /// Read-only inside writable places (see `layers::protect`).
    pub protected: Vec<crate::layers::protect::Protected>,
    /// Things the user should know about the policy (e.g. a `.git` file
    /// that was not followed).
    pub notes: Vec<String>,
    /// The agent profiles applied.
    pub profiles: Vec<String>,
    /// Resource limits: the configuration's, overridden by the flags.
    pub limits: crate::layers::limits::Limits,
}

/// File kinds as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
}

/// The questions the policy asks the host filesystem.
pub trait HostFs {
    /// `lstat`: what is at `path`, without following a final symlink.
    fn kind(&self, path: &Path) -> Option<Kind>;
    fn read_link(&self, path: &Path) -> Option<PathBuf>;
    /// The path with every symlink resolved, if it exists.
    fn canonical(&self, path: &Path) -> Option<PathBuf>;
}

/// The host filesystem, with the answers cached: the policy asks about the
/// same directories many times (every `/etc` entry resolves `/etc`), and
/// start-up time is mostly system calls.
#[derive(Default)]
pub struct RealFs {
    kinds: RefCell<HashMap<PathBuf, Option<Kind>>>,
    canonical: RefCell<HashMap<PathBuf, Option<PathBuf>>>,
}

impl HostFs for RealFs {
    fn kind(&self, path: &Path) -> Option<Kind> {
        if let Some(k) = self.kinds.borrow().get(path) {
            return *k;
        }
        let kind = std::fs::symlink_metadata(path).ok().map(|meta| {
            let ft = meta.file_type();
            if ft.is_symlink() {
                Kind::Symlink
            } else if ft.is_dir() {
                Kind::Dir
            } else {
                Kind::File
            }
        });
        self.kinds.borrow_mut().insert(path.to_path_buf(), kind);
        kind
    }
    fn read_link(&self, path: &Path) -> Option<PathBuf> {
        std::fs::read_link(path).ok()
    }
    fn canonical(&self, path: &Path) -> Option<PathBuf> {
        if let Some(c) = self.canonical.borrow().get(path) {
            return c.clone();
        }
        // Not a link itself: the resolved parent plus the name (the parent
        // is resolved once for all its entries).
        let resolved = match (self.kind(path)?, path.parent(), path.file_name()) {
            (Kind::Dir | Kind::File, Some(parent), Some(name)) if path.is_absolute() => {
                self.canonical(parent).map(|p| p.join(name))
            }
            _ => std::fs::canonicalize(path).ok(),
        };
        self.canonical
            .borrow_mut()
            .insert(path.to_path_buf(), resolved.clone());
        resolved
    }
}

/// Folders that hold secrets: the project may never be one of them (or
/// inside one) unless the user forces it.
const SECRET_DIRS: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".aws",
    ".kube",
    ".docker",
    ".config/gh",
    ".config/gcloud",
    ".azure",
    ".password-store",
    ".mozilla",
    ".config/google-chrome",
    ".config/chromium",
];

pub fn expand_home(path: &str, home: &Path) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None => PathBuf::from(path),
    }
}

fn depth(path: &Path) -> usize {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count()
}

pub fn build(
    config: &Config,
    request: &Request,
    caller: &Caller,
    fs: &dyn HostFs,
) -> Result<Policy> {
    let project = fs.canonical(&caller.cwd).ok_or_else(|| {
        Error::refused(format!(
            "the current directory {} cannot be resolved",
            caller.cwd.display()
        ))
    })?;
    let home = caller.home.clone();
    check_project(&project, &home, fs, request.share_home)?;
    let profiles = active_profiles(config, request)?;
    let config = &with_profiles(config, &profiles);

    let mut mounts: Vec<Mount> = Vec::new();
    for entry in &config.filesystem.read_only {
        add_path(
            &mut mounts,
            fs,
            &expand_home(entry, &home),
            Access::ReadOnly,
            "filesystem.read_only",
        );
    }
    for entry in &config.filesystem.etc {
        add_path(
            &mut mounts,
            fs,
            &Path::new("/etc").join(entry),
            Access::ReadOnly,
            "filesystem.etc",
        );
    }
    for entry in &config.filesystem.read_write {
        add_path(
            &mut mounts,
            fs,
            &expand_home(entry, &home),
            Access::ReadWrite,
            "filesystem.read_write",
        );
    }
    // Private, empty, writable places. The home is an empty tmpfs under
    // everything, so nothing of the real home shows unless listed above.
    for (dst, mode, why) in [
        (PathBuf::from("/tmp"), 0o1777, "private /tmp"),
        (PathBuf::from("/var/tmp"), 0o1777, "private /var/tmp"),
        (home.clone(), 0o700, "empty home"),
    ] {
        mounts.push(Mount::Tmpfs { dst, mode, why });
    }
    mounts.push(Mount::Bind {
        src: project.clone(),
        dst: project.clone(),
        access: Access::ReadWrite,
        dir: true,
        why: "the project",
    });
    let real_home = fs.canonical(&home).unwrap_or_else(|| home.clone());
    let protection =
        crate::layers::protect::resolve(&project, &real_home, &config.filesystem.protected);
    // A worktree's or submodule's git directory outside the project, once
    // it is verified to point back here: git needs it writable.
    for dir in &protection.git_binds {
        mounts.push(Mount::Bind {
            src: dir.clone(),
            dst: dir.clone(),
            access: Access::ReadWrite,
            dir: true,
            why: "git dir of this worktree",
        });
    }

    // The last entry for a destination wins (the project over everything),
    // then parents go before children.
    let mut unique: Vec<Mount> = Vec::new();
    for m in mounts.into_iter().rev() {
        if !unique.iter().any(|u| u.dst() == m.dst()) {
            unique.push(m);
        }
    }
    unique.reverse();
    unique.sort_by_key(|m| depth(m.dst()));

    // A folder of the host's PATH inside a writable tree would let the
    // command plant a program that the user later runs outside: protect it.
    let mut protected = protection.entries;
    let mut notes = protection.warnings;
    let host_path = caller
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str());
    for entry in path_dirs_in_writable(host_path.unwrap_or(""), &unique, &project, fs, &mut notes) {
        if !protected.contains(&entry) {
            protected.push(entry);
        }
    }

    let shell = pick_shell(&config.shell, fs);
    let (argv, interactive) = if let Some(cmd) = &request.command {
        (vec![shell.clone(), "-c".into(), cmd.clone()], false)
    } else if !request.argv.is_empty() {
        (request.argv.clone(), false)
    } else if request.stdin_tty {
        (interactive_argv(&shell), true)
    } else {
        // `echo 'make test' | bwai` in CI: a script on stdin, not a session.
        (vec![shell.clone(), "-s".into()], false)
    };

    let env = build_env(config, caller, &shell, interactive);
    let net = request.net.unwrap_or(config.network);
    let (net_allow, net_allow_list) = network_allow(net, config, request)?;
    let mut require = config.require.clone();
    for layer in &request.require {
        if !require.contains(layer) {
            require.push(*layer);
        }
    }

    Ok(Policy {
        project,
        home,
        uid: caller.uid,
        gid: caller.gid,
        mounts: unique,
        env,
        argv,
        interactive,
        net,
        net_allow,
        net_allow_list,
        require,
        seccomp_allow: config.seccomp.allow.clone(),
        allow_host_unix_sockets: config.seccomp.dangerously_allow_host_unix_sockets,
        allow_unconfined: request.allow_unconfined,
        protected,
        notes,
        profiles,
        limits: config.limits.overridden_by(&request.limits),
    })
}

/// The folders of the host's `PATH` that lie inside a writable tree of the
/// sandbox, as protected paths; the writable trees themselves, and relative
/// entries (`.`), cannot be protected without taking the tree away, so the
/// user is warned instead.
fn path_dirs_in_writable(
    host_path: &str,
    mounts: &[Mount],
    project: &Path,
    fs: &dyn HostFs,
    notes: &mut Vec<String>,
) -> Vec<crate::layers::protect::Protected> {
    let writable: Vec<&PathBuf> = mounts
        .iter()
        .filter_map(|m| match m {
            Mount::Bind {
                dst,
                access: Access::ReadWrite,
                ..
            } => Some(dst),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    if host_path.is_empty() {
        return out;
    }
    for entry in host_path.split(':') {
        let dir = Path::new(entry);
        if !dir.is_absolute() {
            notes.push(format!(
                "your PATH has the relative entry `{entry}`: programs the command writes in \
                 the project can run outside the sandbox when you work in it; remove it"
            ));
            continue;
        }
        // Judge where the folder really is (or would be, once created).
        let real = fs.canonical(dir).unwrap_or_else(|| dir.to_path_buf());
        // The deepest writable tree holding it is the base.
        let Some(base) = writable
            .iter()
            .filter(|w| real.starts_with(w))
            .max_by_key(|w| w.components().count())
        else {
            continue;
        };
        let rel = real.strip_prefix(base).expect("starts_with").to_path_buf();
        if rel.as_os_str().is_empty() {
            let what = if base.as_path() == project {
                "the project"
            } else {
                "a writable folder"
            };
            notes.push(format!(
                "your PATH has {} ({what} of this sandbox): programs the command writes \
                 there run outside the sandbox when you type their names",
                real.display()
            ));
            continue;
        }
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            continue;
        }
        out.push(crate::layers::protect::Protected {
            base: (*base).clone(),
            rel,
        });
    }
    out
}

/// The `allow` mode's list: the config's, the active profiles', and the
/// command line's, checked here so that a bad entry stops everything.
fn network_allow(
    net: NetMode,
    config: &Config,
    request: &Request,
) -> Result<(Vec<String>, crate::net::AllowList)> {
    if net != NetMode::Allow {
        return Ok(Default::default());
    }
    let mut list: Vec<String> = Vec::new();
    for entry in config.network_allow.iter().chain(&request.net_allow) {
        if !list.contains(entry) {
            list.push(entry.clone());
        }
    }
    let parsed = crate::net::AllowList::parse(&list).map_err(Error::usage)?;
    if parsed.is_empty() {
        let presets: Vec<&str> = crate::net::AllowList::presets()
            .iter()
            .map(|(name, _)| *name)
            .collect();
        return Err(Error::usage(
            "the `allow` network mode has an empty allow-list: nothing could be reached",
        )
        .with_hint(format!(
            "name hosts with `--net allow:HOST,...` or `network_allow` in ~/.bwai.json \
             (presets: {})",
            presets.join(", ")
        )));
    }
    Ok((list, parsed))
}

/// The program a command string starts with: `FOO=1 exec claude -p x`,
/// `timeout 20m nice -n 5 claude`, `npx codex` -> the agent's name. Wrappers
/// that run their argument are looked through, with their options and
/// numeric arguments (durations, niceness).
fn first_program(command: &str) -> Option<String> {
    const WRAPPERS: &[&str] = &[
        "exec", "env", "command", "nohup", "time", "timeout", "nice", "ionice", "stdbuf", "setsid",
        "npx", "bunx", "pnpx", "uvx", "pipx",
    ];
    let name = |w: &str| {
        w.trim_matches(|c| c == '\'' || c == '"')
            .rsplit('/')
            .next()
            .unwrap_or(w)
            .to_string()
    };
    let mut after_wrapper = false;
    for w in command.split_whitespace() {
        let bare = name(w);
        let numeric = bare.starts_with(|c: char| c.is_ascii_digit());
        if w.contains('=') || (after_wrapper && (bare.starts_with('-') || numeric)) {
            continue;
        }
        if WRAPPERS.contains(&bare.as_str()) || (after_wrapper && bare == "run") {
            after_wrapper = true;
            continue;
        }
        return Some(bare);
    }
    None
}

/// The agents' state folders to create before this run (relative to the
/// home), for the profiles that apply: see `Profile::create`.
pub fn state_folders(config: &Config, request: &Request) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = Vec::new();
    // The interactive shell applies every profile, for any agent started
    // there: that is no reason to litter the home with all their folders.
    let interactive = request.interactive();
    for name in active_profiles(config, request)? {
        if interactive && !request.profiles.contains(&name) {
            continue;
        }
        for entry in &config.profiles[&name].create {
            if let Some(rel) = entry.strip_prefix("~/") {
                let rel = PathBuf::from(rel);
                if !out.contains(&rel) {
                    out.push(rel);
                }
            }
        }
    }
    Ok(out)
}

/// Which profiles apply: those asked for, those whose command is run, and
/// every one in the interactive shell (any agent may be started there).
fn active_profiles(config: &Config, request: &Request) -> Result<Vec<String>> {
    for name in &request.profiles {
        if !config.profiles.contains_key(name) {
            return Err(Error::usage(format!(
                "unknown profile `{name}`; known: {}",
                config
                    .profiles
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let program = request.program();
    let interactive = request.interactive();
    Ok(config
        .profiles
        .iter()
        .filter(|(name, p)| {
            interactive
                || request.profiles.contains(name)
                || program
                    .as_ref()
                    .is_some_and(|prog| p.commands.contains(prog))
        })
        .map(|(name, _)| name.clone())
        .collect())
}

pub(crate) fn with_profiles(config: &Config, active: &[String]) -> Config {
    let mut c = config.clone();
    for name in active {
        let p = &config.profiles[name];
        for (from, to) in [
            (&p.read_only, &mut c.filesystem.read_only),
            (&p.read_write, &mut c.filesystem.read_write),
            (&p.env, &mut c.env.allow),
            (&p.network_allow, &mut c.network_allow),
        ] {
            for item in from {
                if !to.contains(item) {
                    to.push(item.clone());
                }
            }
        }
    }
    c
}

/// Refuse project folders that would expose every secret.
fn check_project(project: &Path, home: &Path, fs: &dyn HostFs, forced: bool) -> Result<()> {
    if forced {
        return Ok(());
    }
    let real_home = fs.canonical(home).unwrap_or_else(|| home.to_path_buf());
    let danger = if project == Path::new("/") {
        Some("it is `/`".to_string())
    } else if real_home.starts_with(project) || home.starts_with(project) {
        Some(format!("it contains your home {}", home.display()))
    } else {
        SECRET_DIRS.iter().find_map(|d| {
            let secret = real_home.join(d);
            project
                .starts_with(&secret)
                .then(|| format!("it is inside {}", secret.display()))
        })
    };
    match danger {
        Some(why) => Err(Error::refused(format!(
            "refusing to use {} as the project folder: {why}, so every secret in it would be \
             writable by the sandboxed command",
            project.display()
        ))
        .with_hint(
            "cd into a project folder; or pass --dangerously-share-home if you really mean it",
        )),
        None => Ok(()),
    }
}

fn add_path(
    mounts: &mut Vec<Mount>,
    fs: &dyn HostFs,
    path: &Path,
    access: Access,
    why: &'static str,
) {
    let Some(kind) = fs.kind(path) else {
        log::debug!("{why}: {} does not exist, skipped", path.display());
        return;
    };
    let top_level = path.parent() == Some(Path::new("/"));
    if kind == Kind::Symlink && top_level {
        if let Some(target) = fs.read_link(path) {
            mounts.push(Mount::Symlink {
                dst: path.to_path_buf(),
                target,
                why,
            });
            return;
        }
    }
    // Bind the resolved target: a link's target may not exist in the sandbox.
    let Some(src) = fs.canonical(path) else {
        log::debug!("{why}: {} is a dangling link, skipped", path.display());
        return;
    };
    let dir = fs.kind(&src) == Some(Kind::Dir);
    if why == "filesystem.etc" && !dir {
        mounts.push(Mount::Copy {
            src,
            dst: path.to_path_buf(),
            why,
        });
        return;
    }
    mounts.push(Mount::Bind {
        src,
        dst: path.to_path_buf(),
        access,
        dir,
        why,
    });
}

fn pick_shell(configured: &str, fs: &dyn HostFs) -> String {
    if fs.canonical(Path::new(configured)).is_some() {
        configured.to_string()
    } else {
        log::info!("shell {configured} not found, using /bin/sh");
        "/bin/sh".to_string()
    }
}

fn interactive_argv(shell: &str) -> Vec<String> {
    let name = Path::new(shell)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    // No rc files: the system's rc would reset the prompt, and the user's
    // rc files are not in the sandbox anyway.
    let flags: &[&str] = match name {
        "bash" => &["--norc", "--noprofile", "-i"],
        "zsh" => &["-f", "-i"],
        _ => &["-i"],
    };
    std::iter::once(shell.to_string())
        .chain(flags.iter().map(|s| s.to_string()))
        .collect()
}

pub(crate) fn env_allowed(name: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == p,
    })
}

/// Variables bwai sets itself: never taken from the caller.
pub(crate) const OWN: &[&str] = &[
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "PS1",
    "BWAI_SANDBOX",
    "TMPDIR",
];

fn build_env(
    config: &Config,
    caller: &Caller,
    shell: &str,
    interactive: bool,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = caller
        .env
        .iter()
        .filter(|(k, _)| !OWN.contains(&k.as_str()) && env_allowed(k, &config.env.allow))
        .cloned()
        .collect();
    let mut set = |k: &str, v: String| {
        env.retain(|(name, _)| name != k);
        env.push((k.to_string(), v));
    };
    set("HOME", caller.home.to_string_lossy().into_owned());
    set("USER", caller.user.clone());
    set("LOGNAME", caller.user.clone());
    set("SHELL", shell.to_string());
    set("BWAI_SANDBOX", "1".into());
    if !caller.env.iter().any(|(k, _)| k == "PATH") || !env_allowed("PATH", &config.env.allow) {
        set(
            "PATH",
            "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin".into(),
        );
    }
    if interactive {
        set("PS1", PROMPT.into());
    }
    for (k, v) in &config.env.set {
        set(k, v.clone());
    }
    env.sort();
    env
}

/// A fake host filesystem for the unit tests of the policy and of explain.
#[cfg(test)]
pub(crate) mod fake {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use super::{HostFs, Kind};

    /// A fake host: paths -> kind; links -> target.
    #[derive(Default)]
    pub struct FakeFs {
        pub kinds: BTreeMap<PathBuf, Kind>,
        pub links: BTreeMap<PathBuf, PathBuf>,
    }

    impl FakeFs {
        pub fn with(entries: &[(&str, Kind)], links: &[(&str, &str)]) -> Self {
            let mut fs = FakeFs::default();
            for (p, k) in entries {
                fs.kinds.insert(PathBuf::from(p), *k);
            }
            for (p, t) in links {
                fs.kinds.insert(PathBuf::from(p), Kind::Symlink);
                fs.links.insert(PathBuf::from(p), PathBuf::from(t));
            }
            fs
        }
    }

    impl HostFs for FakeFs {
        fn kind(&self, path: &Path) -> Option<Kind> {
            self.kinds.get(path).copied()
        }
        fn read_link(&self, path: &Path) -> Option<PathBuf> {
            self.links.get(path).cloned()
        }
        fn canonical(&self, path: &Path) -> Option<PathBuf> {
            match self.links.get(path) {
                Some(t) if t.is_absolute() => self.canonical(t),
                Some(t) => self.canonical(&path.parent()?.join(t)),
                None => self.kinds.contains_key(path).then(|| path.to_path_buf()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeFs;
    use super::*;

    #[test]
    fn the_program_is_found_behind_wrappers() {
        for (command, program) in [
            ("claude -p hi", "claude"),
            ("FOO=1 exec claude", "claude"),
            ("timeout 20m nice -n 5 claude --version", "claude"),
            ("env -i HOME=/x /usr/local/bin/codex exec", "codex"),
            ("npx gemini", "gemini"),
            ("pipx run aider --help", "aider"),
            ("'claude' -c", "claude"),
            ("make test", "make"),
            ("echo claude", "echo"),
        ] {
            assert_eq!(
                first_program(command).as_deref(),
                Some(program),
                "{command}"
            );
        }
        assert_eq!(first_program("  "), None);
    }

    fn host() -> FakeFs {
        FakeFs::with(
            &[
                ("/", Kind::Dir),
                ("/usr", Kind::Dir),
                ("/usr/bin", Kind::Dir),
                ("/usr/lib", Kind::Dir),
                ("/bin/bash", Kind::File),
                ("/usr/bin/bash", Kind::File),
                ("/etc/passwd", Kind::File),
                ("/run/resolv.conf", Kind::File),
                ("/home", Kind::Dir),
                ("/home/u", Kind::Dir),
                ("/home/u/.ssh", Kind::Dir),
                ("/home/u/.claude", Kind::Dir),
                ("/home/u/Projects/foo", Kind::Dir),
            ],
            &[
                ("/bin", "usr/bin"),
                ("/lib", "usr/lib"),
                ("/etc/resolv.conf", "/run/resolv.conf"),
            ],
        )
    }

    fn caller(cwd: &str) -> Caller {
        Caller {
            cwd: cwd.into(),
            home: "/home/u".into(),
            user: "u".into(),
            uid: 1000,
            gid: 1000,
            env: vec![
                ("PATH".into(), "/usr/bin".into()),
                ("TERM".into(), "xterm".into()),
                ("ANTHROPIC_API_KEY".into(), "k".into()),
                ("AWS_SECRET_ACCESS_KEY".into(), "s".into()),
                ("HOME".into(), "/elsewhere".into()),
            ],
        }
    }

    /// The interactive session (on a terminal).
    fn policy(cwd: &str) -> Result<Policy> {
        build(
            &Config::default(),
            &Request {
                stdin_tty: true,
                ..Default::default()
            },
            &caller(cwd),
            &host(),
        )
    }

    #[test]
    fn merged_usr_links_are_recreated_as_links_and_missing_dirs_skipped() {
        let p = policy("/home/u/Projects/foo").unwrap();
        assert!(p.mounts.contains(&Mount::Symlink {
            dst: "/bin".into(),
            target: "usr/bin".into(),
            why: "filesystem.read_only"
        }));
        assert!(!p.mounts.iter().any(|m| m.dst() == Path::new("/lib64")));
        assert!(!p.mounts.iter().any(|m| m.dst() == Path::new("/opt")));
    }

    #[test]
    fn etc_links_bind_their_resolved_target() {
        let p = policy("/home/u/Projects/foo").unwrap();
        let m = p
            .mounts
            .iter()
            .find(|m| m.dst() == Path::new("/etc/resolv.conf"))
            .unwrap();
        assert!(matches!(m, Mount::Copy { src, .. } if src == Path::new("/run/resolv.conf")));
    }

    #[test]
    fn secrets_in_home_are_not_mounted_and_home_is_a_tmpfs_before_its_children() {
        let p = policy("/home/u/Projects/foo").unwrap();
        assert!(!p.mounts.iter().any(|m| m.dst().starts_with("/home/u/.ssh")));
        let home = p
            .mounts
            .iter()
            .position(|m| m.dst() == Path::new("/home/u"))
            .unwrap();
        let proj = p
            .mounts
            .iter()
            .position(|m| m.dst() == Path::new("/home/u/Projects/foo"))
            .unwrap();
        let claude = p
            .mounts
            .iter()
            .position(|m| m.dst() == Path::new("/home/u/.claude"))
            .unwrap();
        assert!(matches!(p.mounts[home], Mount::Tmpfs { .. }));
        assert!(home < proj && home < claude);
        assert!(matches!(
            p.mounts[proj],
            Mount::Bind {
                access: Access::ReadWrite,
                ..
            }
        ));
    }

    #[test]
    fn home_root_and_secret_dirs_are_refused_as_project() {
        for cwd in ["/home/u", "/home", "/", "/home/u/.ssh"] {
            let e = policy(cwd).unwrap_err();
            assert_eq!(e.exit_code(), 125, "{cwd}");
            assert!(e.hint.unwrap().contains("--dangerously-share-home"));
        }
        let forced = Request {
            share_home: true,
            ..Default::default()
        };
        assert!(build(&Config::default(), &forced, &caller("/home/u"), &host()).is_ok());
    }

    #[test]
    fn environment_is_an_allow_list_and_bwai_sets_identity() {
        let p = policy("/home/u/Projects/foo").unwrap();
        let get = |k: &str| p.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("ANTHROPIC_API_KEY"), Some("k"));
        assert_eq!(get("AWS_SECRET_ACCESS_KEY"), None);
        assert_eq!(get("HOME"), Some("/home/u"));
        assert_eq!(get("BWAI_SANDBOX"), Some("1"));
        assert_eq!(get("PS1"), Some(PROMPT));
    }

    #[test]
    fn profiles_apply_to_their_command_only() {
        let claude = build(
            &Config::default(),
            &Request {
                command: Some("ANTHROPIC_MODEL=x claude -p hi".into()),
                ..Default::default()
            },
            &caller("/home/u/Projects/foo"),
            &host(),
        )
        .unwrap();
        assert_eq!(claude.profiles, vec!["claude"]);
        assert!(claude
            .mounts
            .iter()
            .any(|m| m.dst() == Path::new("/home/u/.claude")));
        assert!(claude.env.iter().any(|(k, _)| k == "ANTHROPIC_API_KEY"));
        let make = build(
            &Config::default(),
            &Request {
                argv: vec!["make".into()],
                ..Default::default()
            },
            &caller("/home/u/Projects/foo"),
            &host(),
        )
        .unwrap();
        assert!(make.profiles.is_empty());
        assert!(!make
            .mounts
            .iter()
            .any(|m| m.dst() == Path::new("/home/u/.claude")));
        assert!(
            !make.env.iter().any(|(k, _)| k == "ANTHROPIC_API_KEY"),
            "no agent, no key"
        );
        let shell = policy("/home/u/Projects/foo").unwrap();
        assert_eq!(shell.profiles.len(), Config::default().profiles.len());
        let e = build(
            &Config::default(),
            &Request {
                profiles: vec!["nope".into()],
                argv: vec!["x".into()],
                ..Default::default()
            },
            &caller("/home/u/Projects/foo"),
            &host(),
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn command_forms() {
        let run = |req: Request| {
            build(
                &Config::default(),
                &req,
                &caller("/home/u/Projects/foo"),
                &host(),
            )
            .unwrap()
        };
        let p = run(Request {
            command: Some("echo hi".into()),
            ..Default::default()
        });
        assert_eq!(p.argv, vec!["/bin/bash", "-c", "echo hi"]);
        assert!(!p.interactive);
        let p = run(Request {
            argv: vec!["prog".into(), "a b".into()],
            ..Default::default()
        });
        assert_eq!(p.argv, vec!["prog", "a b"]);
        let p = run(Request {
            stdin_tty: true,
            ..Default::default()
        });
        assert_eq!(p.argv, vec!["/bin/bash", "--norc", "--noprofile", "-i"]);
        assert!(p.interactive);
        // No terminal (CI): the shell runs the script on stdin, no prompt.
        let p = run(Request::default());
        assert_eq!(p.argv, vec!["/bin/bash", "-s"]);
        assert!(!p.interactive);
        assert!(!p.env.iter().any(|(k, _)| k == "PS1"));
    }

    #[test]
    fn limit_flags_override_the_configured_ones() {
        use crate::layers::limits::Limits;
        use std::time::Duration;
        let mut config = Config::default();
        config.limits.memory = Some(1 << 30);
        config.limits.pids = Some(100);
        let req = Request {
            argv: vec!["make".into()],
            limits: Limits {
                memory: Some(256 << 20),
                timeout: Some(Duration::from_secs(5)),
                ..Limits::default()
            },
            ..Default::default()
        };
        let p = build(&config, &req, &caller("/home/u/Projects/foo"), &host()).unwrap();
        assert_eq!(p.limits.memory, Some(256 << 20));
        assert_eq!(p.limits.pids, Some(100));
        assert_eq!(p.limits.timeout, Some(Duration::from_secs(5)));
        assert_eq!(p.limits.cpu_time, None);
    }
}
