//! Loading the user's configuration files and merging them onto the defaults.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt;

use super::{Config, Layer, NetMode};
use crate::error::{Error, Result};

/// Where the configuration came from, for messages and the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--config FILE`: this file only; it must exist.
    Explicit(PathBuf),
    /// The default locations, read if present, in this order.
    Default(Vec<PathBuf>),
}

impl Source {
    /// The default locations: `$XDG_CONFIG_HOME/bwai/config.json` (or
    /// `~/.config/bwai/config.json`), then `~/.bwai.json`.
    pub fn default_for(home: &Path, xdg_config_home: Option<&str>) -> Source {
        let xdg = match xdg_config_home {
            Some(dir) if dir.starts_with('/') => PathBuf::from(dir),
            _ => home.join(".config"),
        };
        Source::Default(vec![xdg.join("bwai/config.json"), home.join(".bwai.json")])
    }
}

/// Load, merge and validate. Returns the effective config and the files read.
pub fn load(source: &Source) -> Result<(Config, Vec<(PathBuf, String)>)> {
    let mut config = Config::default();
    let mut read = Vec::new();
    let files: Vec<(PathBuf, bool)> = match source {
        Source::Explicit(path) => vec![(path.clone(), true)],
        Source::Default(paths) => paths.iter().map(|p| (p.clone(), false)).collect(),
    };
    for (path, must_exist) in files {
        let text = match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8(bytes)
                .map_err(|e| config_error(&path, None, &format!("not valid UTF-8 ({e})")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => continue,
            Err(e) => {
                let what = if e.raw_os_error() == Some(nix::libc::EISDIR) {
                    "is a directory, not a file".to_string()
                } else {
                    format!("cannot be read: {e}")
                };
                return Err(config_error(&path, None, &what));
            }
        };
        let file = parse(&path, &text)?;
        file.merge_into(&mut config);
        validate(&config, &path, &text)?;
        read.push((path, text));
    }
    Ok((config, read))
}

/// The repository's own `.bwai.json`: written by whoever wrote the
/// repository (possibly an attacker), so it may only tighten the policy.
/// Returns the tightened config, or an error naming what would loosen it.
pub fn apply_project(
    config: Config,
    project: &Path,
) -> Result<(Config, Option<(PathBuf, String)>)> {
    let path = project.join(".bwai.json");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(&path);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((config, None)),
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(config_error(
                &path,
                None,
                "is a symlink; a project configuration must be a plain file",
            ))
        }
        Err(e) => return Err(config_error(&path, None, &format!("cannot be read: {e}"))),
    };
    let mut bytes = Vec::new();
    std::io::Read::by_ref(&mut file)
        .take(1 << 20)
        .read_to_end(&mut bytes)
        .map_err(|e| config_error(&path, None, &format!("cannot be read: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| config_error(&path, None, &format!("not valid UTF-8 ({e})")))?;
    let patch = parse(&path, &text)?;
    let mut tightened = config.clone();
    patch.merge_into(&mut tightened);
    validate(&tightened, &path, &text)?;
    if let Some(why) = loosening(&config, &tightened) {
        return Err(Error::usage(format!(
            "config error: {}: this project's configuration would loosen the sandbox: {why}",
            path.display()
        ))
        .with_hint("a project's .bwai.json may only tighten the policy (it comes with the repository); put loosening settings in ~/.bwai.json"));
    }
    Ok((tightened, Some((path, text))))
}

/// What in `after` grants more than `before`, if anything. Pure.
pub fn loosening(before: &Config, after: &Config) -> Option<String> {
    fn added<'a>(before: &[String], after: &'a [String]) -> Option<&'a String> {
        after.iter().find(|x| !before.contains(x))
    }
    let lists: [(&str, &[String], &[String]); 5] = [
        (
            "filesystem.read_only",
            &before.filesystem.read_only,
            &after.filesystem.read_only,
        ),
        (
            "filesystem.read_write",
            &before.filesystem.read_write,
            &after.filesystem.read_write,
        ),
        (
            "filesystem.etc",
            &before.filesystem.etc,
            &after.filesystem.etc,
        ),
        ("env.allow", &before.env.allow, &after.env.allow),
        ("seccomp.allow", &before.seccomp.allow, &after.seccomp.allow),
    ];
    for (key, b, a) in lists {
        if let Some(x) = added(b, a) {
            return Some(format!("{key} adds `{x}`"));
        }
    }
    // Fewer protected paths, fewer required layers: looser.
    if let Some(x) = before
        .filesystem
        .protected
        .iter()
        .find(|p| !after.filesystem.protected.contains(p))
    {
        return Some(format!("filesystem.protected drops `{x}`"));
    }
    if let Some(x) = before.require.iter().find(|l| !after.require.contains(l)) {
        return Some(format!("require drops `{}`", x.name()));
    }
    if before.shell != after.shell {
        return Some(format!("shell changes to `{}`", after.shell));
    }
    for (k, v) in &after.env.set {
        if before.env.set.get(k) != Some(v) {
            return Some(format!("env.set sets `{k}`"));
        }
    }
    if after.seccomp.dangerously_allow_host_unix_sockets
        && !before.seccomp.dangerously_allow_host_unix_sockets
    {
        return Some("seccomp.dangerously_allow_host_unix_sockets is turned on".into());
    }
    if after.network.strictness() < before.network.strictness() {
        return Some(format!("network opens to `{}`", after.network.name()));
    }
    // More allowed hosts loosen only a list that is in force.
    if before.network == NetMode::Allow {
        if let Some(x) = added(&before.network_allow, &after.network_allow) {
            return Some(format!("network_allow adds `{x}`"));
        }
    }
    // A limit may be lowered or added, never raised or removed.
    if let Some(why) = before.limits.loosened_by(&after.limits) {
        return Some(why);
    }
    for (name, p) in &after.profiles {
        let Some(b) = before.profiles.get(name) else {
            return Some(format!("profiles adds `{name}`"));
        };
        for (key, bl, al) in [
            ("commands", &b.commands, &p.commands),
            ("read_only", &b.read_only, &p.read_only),
            ("read_write", &b.read_write, &p.read_write),
            ("env", &b.env, &p.env),
            ("network_allow", &b.network_allow, &p.network_allow),
            ("create", &b.create, &p.create),
        ] {
            if key == "network_allow" && before.network != NetMode::Allow {
                continue;
            }
            if let Some(x) = added(bl, al) {
                return Some(format!("profiles.{name}.{key} adds `{x}`"));
            }
        }
    }
    None
}

/// Parse one file's text. Public for unit tests.
pub fn parse(path: &Path, text: &str) -> Result<ConfigFile> {
    serde_json::from_str::<ConfigFile>(text).map_err(|e| {
        // serde_json appends " at line L column C"; we print the position ourselves.
        let full = e.to_string();
        let message = match full.rfind(" at line ") {
            Some(i) => full[..i].to_string(),
            None => full,
        };
        config_error(path, Some((e.line(), e.column())), &message)
    })
}

fn config_error(path: &Path, pos: Option<(usize, usize)>, message: &str) -> Error {
    let place = match pos {
        Some((line, col)) if line > 0 => format!("{}:{line}:{col}", path.display()),
        _ => path.display().to_string(),
    };
    Error::usage(format!("config error: {place}: {message}"))
        .with_hint("`bwai --dump-config` prints a valid configuration to start from")
}

/// A list in the user's file: `[...]` extends the default, `{"replace": [...]}` replaces it.
#[derive(Debug, Clone, PartialEq)]
pub enum ListPatch<T> {
    Extend(Vec<T>),
    Replace(Vec<T>),
}

impl<T: Clone + PartialEq> ListPatch<T> {
    fn apply(&self, target: &mut Vec<T>) {
        match self {
            ListPatch::Extend(items) => {
                for item in items {
                    if !target.contains(item) {
                        target.push(item.clone());
                    }
                }
            }
            ListPatch::Replace(items) => *target = items.clone(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ListPatch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct PatchVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for PatchVisitor<T> {
            type Value = ListPatch<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"a list (extends the default) or {"replace": [...]}"#)
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(ListPatch::Extend(items))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut replaced = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "replace" {
                        return Err(de::Error::unknown_field(&key, &["replace"]));
                    }
                    if replaced.is_some() {
                        return Err(de::Error::duplicate_field("replace"));
                    }
                    replaced = Some(map.next_value()?);
                }
                replaced
                    .map(ListPatch::Replace)
                    .ok_or_else(|| de::Error::missing_field("replace"))
            }
        }
        deserializer.deserialize_any(PatchVisitor(PhantomData))
    }
}

/// The shape of a user's file: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    shell: Option<String>,
    filesystem: Option<FilesystemFile>,
    env: Option<EnvFile>,
    network: Option<NetMode>,
    network_allow: Option<ListPatch<String>>,
    require: Option<ListPatch<Layer>>,
    seccomp: Option<SeccompFile>,
    limits: Option<LimitsFile>,
    profiles: Option<BTreeMap<String, ProfileFile>>,
}

/// `"limits": {...}` in a file: a key that is absent keeps the value so
/// far, `null` removes the limit, a value sets it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    #[serde(default, deserialize_with = "present::duration")]
    timeout: Option<Option<Duration>>,
    #[serde(default, deserialize_with = "present::size")]
    memory: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present::count")]
    pids: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present::duration")]
    cpu_time: Option<Option<Duration>>,
    #[serde(default, deserialize_with = "present::size")]
    file_size: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present::count")]
    open_files: Option<Option<u64>>,
}

/// A key that is present (even as `null`) is `Some`: serde's `default`
/// covers only the absent ones.
mod present {
    use super::*;
    use crate::layers::limits::form;

    pub fn duration<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Option<Option<Duration>>, D::Error> {
        form::duration::deserialize(d).map(Some)
    }
    pub fn size<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Option<Option<u64>>, D::Error> {
        form::size::deserialize(d).map(Some)
    }
    pub fn count<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Option<Option<u64>>, D::Error> {
        form::count::deserialize(d).map(Some)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    commands: Option<ListPatch<String>>,
    read_only: Option<ListPatch<String>>,
    read_write: Option<ListPatch<String>>,
    env: Option<ListPatch<String>>,
    network_allow: Option<ListPatch<String>>,
    create: Option<ListPatch<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilesystemFile {
    read_only: Option<ListPatch<String>>,
    read_write: Option<ListPatch<String>>,
    etc: Option<ListPatch<String>>,
    protected: Option<ListPatch<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvFile {
    allow: Option<ListPatch<String>>,
    set: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeccompFile {
    allow: Option<ListPatch<String>>,
    dangerously_allow_host_unix_sockets: Option<bool>,
}

impl ConfigFile {
    pub fn merge_into(&self, config: &mut Config) {
        if let Some(shell) = &self.shell {
            config.shell = shell.clone();
        }
        if let Some(fs) = &self.filesystem {
            if let Some(p) = &fs.read_only {
                p.apply(&mut config.filesystem.read_only);
            }
            if let Some(p) = &fs.read_write {
                p.apply(&mut config.filesystem.read_write);
            }
            if let Some(p) = &fs.etc {
                p.apply(&mut config.filesystem.etc);
            }
            if let Some(p) = &fs.protected {
                p.apply(&mut config.filesystem.protected);
            }
        }
        if let Some(env) = &self.env {
            if let Some(p) = &env.allow {
                p.apply(&mut config.env.allow);
            }
            if let Some(set) = &env.set {
                config
                    .env
                    .set
                    .extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        if let Some(net) = self.network {
            config.network = net;
        }
        if let Some(p) = &self.network_allow {
            p.apply(&mut config.network_allow);
        }
        if let Some(p) = &self.require {
            p.apply(&mut config.require);
        }
        if let Some(sc) = &self.seccomp {
            if let Some(p) = &sc.allow {
                p.apply(&mut config.seccomp.allow);
            }
            if let Some(allow) = sc.dangerously_allow_host_unix_sockets {
                config.seccomp.dangerously_allow_host_unix_sockets = allow;
            }
        }
        if let Some(l) = &self.limits {
            // Absent keeps the value; `null` (Some(None)) removes the limit.
            let c = &mut config.limits;
            c.timeout = l.timeout.unwrap_or(c.timeout);
            c.memory = l.memory.unwrap_or(c.memory);
            c.pids = l.pids.unwrap_or(c.pids);
            c.cpu_time = l.cpu_time.unwrap_or(c.cpu_time);
            c.file_size = l.file_size.unwrap_or(c.file_size);
            c.open_files = l.open_files.unwrap_or(c.open_files);
        }
        for (name, pf) in self.profiles.iter().flatten() {
            // A known profile is extended; a new name is a new profile.
            let profile = config.profiles.entry(name.clone()).or_default();
            for (patch, target) in [
                (&pf.commands, &mut profile.commands),
                (&pf.read_only, &mut profile.read_only),
                (&pf.read_write, &mut profile.read_write),
                (&pf.env, &mut profile.env),
                (&pf.network_allow, &mut profile.network_allow),
                (&pf.create, &mut profile.create),
            ] {
                if let Some(p) = patch {
                    p.apply(target);
                }
            }
        }
    }
}

/// Line and column of the first occurrence of `value` as a JSON string in `text`.
fn locate(text: &str, value: &str) -> Option<(usize, usize)> {
    let needle = serde_json::to_string(value).ok()?;
    let offset = text.find(&needle)?;
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    Some((line, col))
}

/// Why a configured path is not acceptable, if it is not.
pub fn check_path(path: &str) -> std::result::Result<(), String> {
    if path.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    let rest = if let Some(rest) = path.strip_prefix("~/") {
        rest
    } else if let Some(rest) = path.strip_prefix('/') {
        rest
    } else {
        return Err("must be absolute (`/...`) or in your home (`~/...`)".into());
    };
    if rest.split('/').any(|c| c == "..") {
        return Err("must not contain `..`".into());
    }
    if rest.split('/').all(|c| c.is_empty() || c == ".") {
        return Err(
            "would expose a whole tree (`/` or your home): name the folders you need".into(),
        );
    }
    Ok(())
}

fn check_env_pattern(pattern: &str) -> std::result::Result<(), String> {
    let name = pattern.strip_suffix('*').unwrap_or(pattern);
    if name.is_empty() {
        return Err("`*` alone would pass every variable, secrets included".into());
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("is not a variable name (letters, digits, `_`, optional trailing `*`)".into());
    }
    Ok(())
}

/// Semantic checks that the schema cannot express. Errors point at the
/// offending value in `text` where it can be found.
fn validate(config: &Config, path: &Path, text: &str) -> Result<()> {
    let fail = |value: &str, why: String| Err(config_error(path, locate(text, value), &why));

    if !config.shell.starts_with('/') || config.shell.contains('\0') {
        return fail(
            &config.shell,
            format!("shell `{}` must be an absolute path", config.shell),
        );
    }
    for list in [&config.filesystem.read_only, &config.filesystem.read_write] {
        for p in list {
            if let Err(why) = check_path(p) {
                return fail(p, format!("path `{p}` {why}"));
            }
        }
    }
    for e in &config.filesystem.etc {
        if e.is_empty()
            || e.starts_with('/')
            || e.split('/').any(|c| c == ".." || c.is_empty())
            || e.contains('\0')
        {
            return fail(
                e,
                format!(
                    "etc entry `{e}` must be a relative name inside /etc, like `hosts` or `ssl`"
                ),
            );
        }
    }
    for (name, profile) in &config.profiles {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return fail(
                name,
                format!("profile name `{name}` must be letters, digits, `-` or `_`"),
            );
        }
        for p in profile.read_only.iter().chain(&profile.read_write) {
            if let Err(why) = check_path(p) {
                return fail(p, format!("profiles.{name}: path `{p}` {why}"));
            }
        }
        for p in &profile.create {
            let ok = p.strip_prefix("~/").is_some_and(|rel| {
                !rel.is_empty()
                    && rel
                        .split('/')
                        .all(|c| !c.is_empty() && c != "." && c != "..")
            }) && !p.contains('\0');
            if !ok {
                return fail(
                    p,
                    format!("profiles.{name}: create entry `{p}` must be a folder in the home, like `~/.claude`"),
                );
            }
            if !profile.read_write.contains(p) {
                return fail(
                    p,
                    format!(
                        "profiles.{name}: create entry `{p}` must also be in its read_write list"
                    ),
                );
            }
        }
        for c in &profile.commands {
            if c.is_empty() || c.contains('/') || c.contains(char::is_whitespace) {
                return fail(
                    c,
                    format!("profiles.{name}: command `{c}` must be a program name, like `claude`"),
                );
            }
        }
        for e in &profile.env {
            if let Err(why) = check_env_pattern(e) {
                return fail(e, format!("profiles.{name}: env entry `{e}` {why}"));
            }
        }
    }
    for name in &config.filesystem.protected {
        if let Err(why) = crate::layers::protect::check_name(name) {
            return fail(name, format!("protected entry `{name}` {why}"));
        }
    }
    for pattern in &config.env.allow {
        if let Err(why) = check_env_pattern(pattern) {
            return fail(pattern, format!("env.allow entry `{pattern}` {why}"));
        }
    }
    for (name, value) in &config.env.set {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return fail(
                name,
                format!("env.set name `{name}` is not a variable name"),
            );
        }
        if value.contains('\0') {
            return fail(
                name,
                format!("env.set value of `{name}` contains a NUL byte"),
            );
        }
    }
    for name in &config.seccomp.allow {
        if !crate::layers::seccomp::is_deniable(name) {
            return fail(
                name,
                format!(
                    "seccomp.allow: `{name}` is not on the deny list; names that can be allowed back: {}",
                    crate::layers::seccomp::deniable_names().join(", ")
                ),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(text: &str) -> Result<Config> {
        let path = Path::new("/test/.bwai.json");
        let file = parse(path, text)?;
        let mut config = Config::default();
        file.merge_into(&mut config);
        validate(&config, path, text)?;
        Ok(config)
    }

    #[test]
    fn user_list_extends_the_default() {
        let c = merged(r#"{"filesystem": {"read_only": ["~/tools"]}}"#).unwrap();
        assert!(c.filesystem.read_only.contains(&"/usr".to_string()));
        assert_eq!(c.filesystem.read_only.last().unwrap(), "~/tools");
    }

    #[test]
    fn profiles_extend_and_new_ones_are_added() {
        let c = merged(r#"{"profiles": {"claude": {"read_write": ["~/.claude-extra"]}, "mine": {"commands": ["mine"], "env": ["MINE_*"]}}}"#).unwrap();
        assert!(c.profiles["claude"]
            .read_write
            .contains(&"~/.claude".to_string()));
        assert!(c.profiles["claude"]
            .read_write
            .contains(&"~/.claude-extra".to_string()));
        assert_eq!(c.profiles["mine"].commands, vec!["mine".to_string()]);
        let e = merged(r#"{"profiles": {"x": {"commands": ["/bin/x"]}}}"#).unwrap_err();
        assert!(e.message.contains("program name"), "{}", e.message);
    }

    #[test]
    fn a_project_config_may_tighten_but_not_loosen() {
        let base = Config::default();
        let tight = |text: &str| {
            let mut c = base.clone();
            parse(Path::new("/p/.bwai.json"), text)
                .unwrap()
                .merge_into(&mut c);
            loosening(&base, &c)
        };
        assert_eq!(
            tight(r#"{"network": "none", "require": ["namespaces"]}"#),
            None
        );
        assert_eq!(
            tight(
                r#"{"filesystem": {"protected": ["Makefile"], "read_only": {"replace": ["/usr"]}}}"#
            ),
            None
        );
        assert!(tight(r#"{"filesystem": {"read_write": ["~/.ssh"]}}"#)
            .unwrap()
            .contains("~/.ssh"));
        assert!(tight(r#"{"env": {"allow": ["AWS_*"]}}"#)
            .unwrap()
            .contains("AWS_*"));
        assert!(tight(r#"{"seccomp": {"allow": ["mount"]}}"#).is_some());
        assert!(tight(r#"{"seccomp": {"dangerously_allow_host_unix_sockets": true}}"#).is_some());
        assert!(tight(r#"{"seccomp": {"dangerously_allow_host_unix_sockets": false}}"#).is_none());
        assert!(tight(r#"{"filesystem": {"protected": {"replace": []}}}"#)
            .unwrap()
            .contains("drops"));
        assert!(tight(r#"{"profiles": {"claude": {"read_write": ["~/"]}}}"#).is_some());
        assert!(tight(r#"{"env": {"set": {"LD_PRELOAD": "/p/evil.so"}}}"#).is_some());
        assert!(tight(r#"{"shell": "/p/evil"}"#).is_some());
    }

    #[test]
    fn a_project_may_narrow_the_network_but_not_widen_it() {
        let with = |user: &str, project: &str| {
            let mut before = Config::default();
            parse(Path::new("/u/.bwai.json"), user)
                .unwrap()
                .merge_into(&mut before);
            let mut after = before.clone();
            parse(Path::new("/p/.bwai.json"), project)
                .unwrap()
                .merge_into(&mut after);
            loosening(&before, &after)
        };
        // host -> allow (with its own list) or none: tighter.
        let list = r#"{"network": "allow", "network_allow": ["api.example.com"]}"#;
        assert_eq!(with("{}", list), None);
        assert_eq!(with(list, r#"{"network": "none"}"#), None);
        // Wider: a more open mode, or more hosts on a list in force.
        let none = r#"{"network": "none"}"#;
        assert!(with(none, r#"{"network": "allow"}"#)
            .unwrap()
            .contains("allow"));
        assert!(with(list, r#"{"network": "host"}"#).is_some());
        assert!(with(list, r#"{"network_allow": ["evil.example"]}"#)
            .unwrap()
            .contains("evil.example"));
        assert!(with(
            list,
            r#"{"profiles": {"claude": {"network_allow": ["evil.example"]}}}"#
        )
        .is_some());
    }

    #[test]
    fn profile_folders_to_create_are_home_folders_it_also_grants() {
        let e = merged(r#"{"profiles": {"mine": {"create": ["~/.mine"]}}}"#).unwrap_err();
        assert!(e.message.contains("read_write"), "{}", e.message);
        for bad in ["/etc/x", "~/", "~/../x", "~/a/./b", "relative"] {
            let text = format!(
                r#"{{"profiles": {{"mine": {{"read_write": ["{bad}"], "create": ["{bad}"]}}}}}}"#
            );
            assert!(merged(&text).is_err(), "{bad}");
        }
        let c =
            merged(r#"{"profiles": {"mine": {"read_write": ["~/.mine"], "create": ["~/.mine"]}}}"#)
                .unwrap();
        assert_eq!(c.profiles["mine"].create, ["~/.mine"]);
        // A project may not make folders in the user's home.
        let base = Config::default();
        let mut after = base.clone();
        parse(
            Path::new("/p/.bwai.json"),
            r#"{"profiles": {"claude": {"create": ["~/.bashrc.d"]}}}"#,
        )
        .unwrap()
        .merge_into(&mut after);
        assert!(loosening(&base, &after).unwrap().contains("create"));
    }

    #[test]
    fn limits_are_read_with_units_and_null_removes_one() {
        let c = merged(
            r#"{"limits": {"timeout": "10m", "memory": "512M", "pids": 64, "cpu_time": 30,
                "file_size": 1048576, "open_files": 256}}"#,
        )
        .unwrap();
        let l = &c.limits;
        assert_eq!(l.timeout, Some(Duration::from_secs(600)));
        assert_eq!(l.memory, Some(512 << 20));
        assert_eq!(l.pids, Some(64));
        assert_eq!(l.cpu_time, Some(Duration::from_secs(30)));
        assert_eq!(l.file_size, Some(1 << 20));
        assert_eq!(l.open_files, Some(256));
        // A later file: absent keeps, null removes.
        let mut c2 = c.clone();
        parse(Path::new("/t"), r#"{"limits": {"memory": null}}"#)
            .unwrap()
            .merge_into(&mut c2);
        assert_eq!(c2.limits.memory, None);
        assert_eq!(c2.limits.timeout, Some(Duration::from_secs(600)));
    }

    #[test]
    fn bad_limits_are_errors_with_position() {
        for (text, words) in [
            ("{\"limits\": {\n \"memory\": \"12Q\"}}", "unknown unit"),
            ("{\"limits\": {\n \"timeout\": \"1h30\"}}", "has no unit"),
            ("{\"limits\": {\n \"pids\": \"64\"}}", "without quotes"),
            ("{\"limits\": {\n \"pids\": 0}}", "at least 1"),
            ("{\"limits\": {\n \"memory\": 0}}", "0 bytes"),
            ("{\"limits\": {\n \"open_files\": -3}}", "negative"),
            (
                "{\"limits\": {\n \"memry\": \"1G\"}}",
                "unknown field `memry`",
            ),
            ("{\"limits\": {\n \"cpu_time\": true}}", "a duration"),
        ] {
            let e = merged(text).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(
                e.message.contains("/test/.bwai.json:2:"),
                "{text}: {}",
                e.message
            );
            assert!(e.message.contains(words), "{text}: {}", e.message);
        }
    }

    #[test]
    fn a_project_may_lower_limits_but_not_raise_or_remove_them() {
        let mut base = Config::default();
        base.limits.memory = Some(1 << 30);
        base.limits.timeout = Some(Duration::from_secs(600));
        let after = |text: &str| {
            let mut c = base.clone();
            parse(Path::new("/p/.bwai.json"), text)
                .unwrap()
                .merge_into(&mut c);
            loosening(&base, &c)
        };
        assert_eq!(
            after(r#"{"limits": {"memory": "512M", "timeout": "1m", "pids": 10}}"#),
            None
        );
        let why = after(r#"{"limits": {"memory": "2G"}}"#).unwrap();
        assert!(why.contains("raises the limit 1G to 2G"), "{why}");
        let why = after(r#"{"limits": {"timeout": null}}"#).unwrap();
        assert!(
            why.contains("limits.timeout removes the limit 10m"),
            "{why}"
        );
    }

    #[test]
    fn replace_replaces_the_default() {
        let c = merged(r#"{"filesystem": {"read_only": {"replace": ["/usr"]}}}"#).unwrap();
        assert_eq!(c.filesystem.read_only, vec!["/usr".to_string()]);
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let e = merged("{\n  \"shel\": \"/bin/sh\"\n}").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.message.contains("/test/.bwai.json:2:"), "{}", e.message);
        assert!(e.message.contains("unknown field `shel`"), "{}", e.message);
    }

    #[test]
    fn wrong_type_is_an_error() {
        let e = merged(r#"{"network": 3}"#).unwrap_err();
        assert!(e.message.contains(":1:"), "{}", e.message);
        let e = merged(r#"{"filesystem": {"read_only": "/usr"}}"#).unwrap_err();
        assert!(e.message.contains("a list"), "{}", e.message);
    }

    #[test]
    fn invalid_json_is_an_error() {
        let e = merged("{\"shell\": ").unwrap_err();
        assert!(e.message.contains("/test/.bwai.json:1:"), "{}", e.message);
    }

    #[test]
    fn bad_paths_are_errors_with_position() {
        for bad in ["relative/path", "~/../etc", "/", "~/", "/usr/../etc"] {
            let text = format!("{{\"filesystem\": {{\"read_write\": [\n  \"{bad}\"]}}}}");
            let e = merged(&text).unwrap_err();
            assert!(e.message.contains(":2:3:"), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn star_alone_in_env_allow_is_refused() {
        let e = merged(r#"{"env": {"allow": ["*"]}}"#).unwrap_err();
        assert!(e.message.contains("secrets"), "{}", e.message);
    }

    #[test]
    fn seccomp_allow_takes_only_deny_list_names() {
        assert!(merged(r#"{"seccomp": {"allow": ["unshare"]}}"#).is_ok());
        let e = merged(r#"{"seccomp": {"allow": ["read"]}}"#).unwrap_err();
        assert!(e.message.contains("not on the deny list"), "{}", e.message);
    }

    #[test]
    fn dump_of_defaults_parses_back_to_the_same_config() {
        let text = serde_json::to_string_pretty(&Config::default()).unwrap();
        let back: Config = serde_json::from_str(&text).unwrap();
        assert_eq!(back, Config::default());
        // and as a user file, it is accepted (lists extend with duplicates removed)
        assert_eq!(merged(&text).unwrap(), Config::default());
    }
}
