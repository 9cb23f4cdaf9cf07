//! Developer tooling inside the sandbox, with zero config: git with the
//! user's ~/.gitconfig (read-only), node/npm, python/venv/pip, cargo, make
//! and a C compiler, each in every mode, in the fake home of the harness.
//! Their caches (~/.npm, ~/.cache/pip, ~/.cargo/registry) land in the
//! sandbox's private home: writable, gone after the run, never shared with
//! another project; a user who wants a persistent cache for sandboxed runs
//! names one in the config (the recipe in `a_configured_cache_persists`).
//!
//! The tools come from the system (`/usr/bin`), except cargo: a rustup
//! install in the real home is linked into the fake one (~/.cargo/bin and
//! ~/.rustup, which the defaults show read-only).
//!
//! A missing tool fails under `BWAI_MUST_WORK=1` (ci/setup.sh installs them),
//! except cargo for a user who has no Rust toolchain (only rustup installs
//! it, per user): then it is skipped loudly, unless cargo itself runs this
//! test.

mod common;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

const SYSTEM_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The fake home's ~/.gitconfig: an identity and an alias.
const GITCONFIG: &str = "[user]\n\tname = Sandboxed Dev\n\temail = dev@example.invalid\n\
                         [alias]\n\tst = status --short\n[init]\n\tdefaultBranch = main\n";

fn find_on(path: &str, program: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The system tools a test needs; false (after `skip`) if one is missing.
fn have(tools: &[&str]) -> bool {
    for t in tools {
        if find_on(SYSTEM_PATH, t).is_none() {
            skip(&format!("{t} is not installed (ci/setup.sh installs it)"));
            return false;
        }
    }
    true
}

/// `bwai -c SCRIPT` in `mode` with the system PATH (plus `extra` in front).
fn bwai_sh(env: &Env, mode: Mode, script: &str, extra: Option<&Path>) -> Command {
    let mut dirs: Vec<PathBuf> = extra.iter().map(|p| p.to_path_buf()).collect();
    dirs.extend(std::env::split_paths(SYSTEM_PATH));
    let path: OsString = std::env::join_paths(dirs).expect("PATH");
    let mut c = env.bwai(mode, &["-c", script]);
    c.env("PATH", path);
    c
}

fn run_long(cmd: Command) -> RunOutput {
    let out = run_with_timeout(cmd, Duration::from_secs(180));
    assert!(!out.timed_out, "hung\n{}", out.describe());
    out
}

fn git_outside(dir: &Path, home: &Path, args: &[&str]) -> RunOutput {
    let out = run(Command::new("git")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", SYSTEM_PATH)
        .env("HOME", home));
    assert_eq!(
        out.code(),
        Some(0),
        "git {args:?} outside\n{}",
        out.describe()
    );
    out
}

/// Where a tool's cache is inside: in the private home with namespaces;
/// without, in the run's private temporary directory (bwai points the
/// tools there), whose name is random, so it is matched by its shape.
fn cache_dir(env: &Env, mode: Mode, in_home: &str, in_tmp: &str) -> impl Fn(&str) -> bool {
    let home = format!("{}/{in_home}", env.home.display());
    let tmp_suffix = format!("/{in_tmp}");
    move |line: &str| match mode {
        Mode::Full | Mode::NoLandlock => line == home,
        Mode::NoUserns => line.contains("/bwai-") && line.ends_with(&tmp_suffix),
    }
}

// ---------------------------------------------------------------- git

/// git status and commit work in the project; the identity and the alias
/// come from ~/.gitconfig, which cannot be changed from inside.
#[test]
fn git_commits_with_the_users_gitconfig_read_only() {
    if !have(&["git"]) {
        return;
    }
    for mode in all_modes() {
        let env = Env::new();
        write_file(&env.home.join(".gitconfig"), GITCONFIG, 0o644);
        git_outside(&env.project, &env.home, &["init", "-q"]);
        git_outside(&env.project, &env.home, &["add", "README"]);
        git_outside(&env.project, &env.home, &["commit", "-qm", "first"]);
        let script = "set -e\n\
            git st\n\
            echo change > new.txt && git add new.txt && git commit -qm 'made inside'\n\
            git log -1 --format='%an <%ae> %s'\n\
            if git config --global user.name Mallory 2>/dev/null; then echo GITCONFIG-WRITTEN; fi";
        let out = run(bwai_sh(&env, mode, script, None));
        let ctx = format!("mode {}\n{}", mode.name(), out.describe());
        assert_eq!(out.code(), Some(0), "{ctx}");
        assert!(!out.stderr.contains("dubious ownership"), "{ctx}");
        assert!(
            out.stdout
                .contains("Sandboxed Dev <dev@example.invalid> made inside"),
            "{ctx}"
        );
        assert!(!out.stdout.contains("GITCONFIG-WRITTEN"), "{ctx}");
        assert_eq!(
            fs::read_to_string(env.home.join(".gitconfig")).unwrap(),
            GITCONFIG,
            "{ctx}"
        );
        let log = git_outside(&env.project, &env.home, &["log", "--format=%s"]);
        assert_eq!(log.stdout, "made inside\nfirst\n", "{ctx}");
    }
}

/// A repository owned by someone else is "dubious" to git inside as it is
/// outside (the sandbox neither hides nor fakes ownership), and the
/// `safe.directory` of the user's ~/.gitconfig is honoured inside. Needs
/// root to give the project another owner.
#[test]
fn git_safe_directory_from_gitconfig_is_honoured() {
    if !have(&["git"]) {
        return;
    }
    if !is_root() {
        // ci/test.sh runs this as root, and leaves it out (saying so) of
        // the unprivileged pass.
        skip("needs root to give the project another owner");
        return;
    }
    for mode in all_modes() {
        let env = Env::new();
        write_file(&env.home.join(".gitconfig"), GITCONFIG, 0o644);
        git_outside(&env.project, &env.home, &["init", "-q"]);
        let chown = run(Command::new("chown")
            .args(["-R", "12345:12345"])
            .arg(&env.project));
        assert_eq!(chown.code(), Some(0), "{}", chown.describe());

        let outside = run(Command::new("git")
            .args(["status", "--short"])
            .current_dir(&env.project)
            .env_clear()
            .env("PATH", SYSTEM_PATH)
            .env("HOME", &env.home));
        let dubious_outside = outside.stderr.contains("dubious ownership");
        let out = run(bwai_sh(&env, mode, "git status --short", None));
        let ctx = format!("mode {}\n{}", mode.name(), out.describe());
        assert_eq!(
            out.stderr.contains("dubious ownership"),
            dubious_outside,
            "git judges ownership differently inside and outside: {ctx}"
        );

        let safe = format!(
            "{GITCONFIG}[safe]\n\tdirectory = {}\n",
            env.project.display()
        );
        write_file(&env.home.join(".gitconfig"), &safe, 0o644);
        let out = run(bwai_sh(
            &env,
            mode,
            "git status --short && echo GIT-OK",
            None,
        ));
        let ctx = format!("mode {}\n{}", mode.name(), out.describe());
        assert_eq!(out.code(), Some(0), "{ctx}");
        assert!(out.stdout.contains("GIT-OK"), "{ctx}");
        assert!(!out.stderr.contains("dubious ownership"), "{ctx}");
        // Give it back to the test so the temp dir can be removed.
        let uid = nix::unistd::getuid();
        let _ = run(Command::new("chown")
            .args(["-R", &format!("{uid}:{}", nix::unistd::getgid())])
            .arg(&env.project));
    }
}

// ---------------------------------------------------------------- node

/// node (which needs /proc and /dev/urandom) and npm: init a package, run
/// one of its scripts, and use the npm cache.
#[test]
fn npm_runs_scripts_and_has_a_private_cache() {
    if !have(&["node", "npm"]) {
        return;
    }
    for mode in all_modes() {
        let env = Env::new();
        let script = "set -e\n\
            export npm_config_update_notifier=false npm_config_fund=false\n\
            node -e \"const c=require('crypto');const o=require('os');\
              console.log('node', c.randomBytes(4).length, o.cpus().length > 0)\"\n\
            npm init -y >/dev/null\n\
            npm pkg set scripts.hello=\"node -e \\\"console.log('hello from npm')\\\"\"\n\
            npm run -s hello\n\
            npm config get cache\n\
            npm cache verify >/dev/null && ls $(npm config get cache)/_cacache >/dev/null && echo CACHE-OK";
        let out = run_long(bwai_sh(&env, mode, script, None));
        let ctx = format!("mode {}\n{}", mode.name(), out.describe());
        assert_eq!(out.code(), Some(0), "{ctx}");
        assert!(out.stdout.contains("node 4 true"), "{ctx}");
        assert!(out.stdout.contains("hello from npm"), "{ctx}");
        assert!(
            out.stdout.lines().any(cache_dir(&env, mode, ".npm", "npm")),
            "{ctx}"
        );
        assert!(out.stdout.contains("CACHE-OK"), "{ctx}");
        assert!(env.project.join("package.json").is_file(), "{ctx}");
        assert!(
            !env.home.join(".npm").exists(),
            "the npm cache leaked into the real home: {ctx}"
        );
    }
}

// ---------------------------------------------------------------- python

/// `python3 -m venv` in the project, and pip building and installing a
/// local package offline (its wheel goes through the pip cache).
#[test]
fn python_venv_and_pip_work_in_the_project() {
    if !have(&["python3"]) {
        return;
    }
    for mode in all_modes() {
        let env = Env::new();
        env.project_file(
            "pkg/setup.py",
            "from setuptools import setup\nsetup(name='bwaidemo', version='1.0', py_modules=['bwaidemo'])\n",
        );
        env.project_file(
            "pkg/bwaidemo.py",
            "def hello():\n    return 'hello from python'\n",
        );
        let script = "set -e\n\
            export PIP_DISABLE_PIP_VERSION_CHECK=1\n\
            python3 -m venv .venv\n\
            .venv/bin/pip --version\n\
            .venv/bin/pip install -q --no-index --no-build-isolation ./pkg\n\
            .venv/bin/python -c 'import bwaidemo; print(bwaidemo.hello())'\n\
            .venv/bin/pip cache dir";
        let out = run_long(bwai_sh(&env, mode, script, None));
        let ctx = format!("mode {}\n{}", mode.name(), out.describe());
        assert_eq!(out.code(), Some(0), "{ctx}");
        assert!(out.stdout.contains("hello from python"), "{ctx}");
        assert!(
            out.stdout
                .lines()
                .any(cache_dir(&env, mode, ".cache/pip", "cache/pip")),
            "{ctx}"
        );
        assert!(env.project.join(".venv/bin/python").exists(), "{ctx}");
        assert!(
            !env.home.join(".cache").exists(),
            "the pip cache leaked into the real home: {ctx}"
        );
    }
}

// ---------------------------------------------------------------- cargo

/// Where cargo comes from: the system, or a rustup install in the real home
/// (linked into the fake home). None (after a loud skip) if there is none.
fn cargo_for(env: &Env) -> Option<Option<PathBuf>> {
    if find_on(SYSTEM_PATH, "cargo").is_some() {
        return Some(None);
    }
    let real_home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    let bin = real_home.join(".cargo/bin");
    if bin.join("cargo").is_file() && real_home.join(".rustup").is_dir() {
        for (name, target) in [
            (".cargo/bin", bin.clone()),
            (".rustup", real_home.join(".rustup")),
        ] {
            let link = env.home.join(name);
            fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
            std::os::unix::fs::symlink(&target, &link).expect("symlink");
        }
        return Some(Some(env.home.join(".cargo/bin")));
    }
    if std::env::var_os("CARGO").is_some() {
        panic!("cargo runs this test, yet no cargo is found in {SYSTEM_PATH} or ~/.cargo/bin");
    }
    // rustup installs per user; ci/test.sh leaves this test out (saying
    // so) of the pass as a user who has none.
    skip(&format!(
        "no Rust toolchain for this user (none in {SYSTEM_PATH} or {})",
        bin.display()
    ));
    None
}

/// `cargo new` and an offline build in the project; CARGO_HOME (~/.cargo)
/// is writable for its caches, but ~/.cargo/bin, on the host's PATH, is not.
#[test]
fn cargo_builds_offline_in_the_project() {
    if !have(&["cc"]) {
        return;
    }
    for mode in all_modes() {
        let env = Env::new();
        let Some(extra) = cargo_for(&env) else {
            return;
        };
        let script = "set -e\n\
            cargo new -q --vcs none hello\n\
            cd hello && cargo build -q --offline && ./target/debug/hello\n\
            c=${CARGO_HOME:-$HOME/.cargo}; mkdir -p $c/registry && touch $c/registry/x && echo CARGO-HOME-WRITABLE\n\
            if touch ~/.cargo/bin/planted 2>/dev/null; then echo BIN-WRITABLE; fi";
        let out = run_long(bwai_sh(&env, mode, script, extra.as_deref()));
        let ctx = format!("mode {}\n{}", mode.name(), out.describe());
        assert_eq!(out.code(), Some(0), "{ctx}");
        assert!(out.stdout.contains("Hello, world!"), "{ctx}");
        assert!(out.stdout.contains("CARGO-HOME-WRITABLE"), "{ctx}");
        assert!(!out.stdout.contains("BIN-WRITABLE"), "{ctx}");
        assert!(
            env.project.join("hello/target/debug/hello").is_file(),
            "{ctx}"
        );
    }
}

// ---------------------------------------------------------------- make, cc

#[test]
fn make_and_cc_build_a_c_program() {
    if !have(&["make", "cc"]) {
        return;
    }
    for mode in all_modes() {
        let env = Env::new();
        env.project_file(
            "hello.c",
            "#include <stdio.h>\nint main(void) { puts(\"hello from c\"); return 0; }\n",
        );
        env.project_file("Makefile", "hello: hello.c\n\tcc -O2 -o $@ $<\n");
        let out = run_long(bwai_sh(&env, mode, "make -s && ./hello", None));
        let ctx = format!("mode {}\n{}", mode.name(), out.describe());
        assert_eq!(out.code(), Some(0), "{ctx}");
        assert_eq!(out.stdout.trim(), "hello from c", "{ctx}");
        assert!(env.project.join("hello").is_file(), "{ctx}");
    }
}

// ---------------------------------------------------------------- caches

/// Caches written in one run are gone in the next (each run has a fresh
/// private home, or without namespaces a fresh private temporary directory)
/// and never reach the real home or another project.
#[test]
fn caches_do_not_outlive_the_run() {
    const CACHES: &str = "${XDG_CACHE_HOME:-$HOME/.cache}/pip ${npm_config_cache:-$HOME/.npm} \
                          ${CARGO_HOME:-$HOME/.cargo}/registry";
    for mode in all_modes() {
        let env = Env::new();
        let write = format!(
            "for d in {CACHES}; do mkdir -p $d && echo poisoned > $d/entry || exit 1; done; echo WROTE"
        );
        let out = run(bwai_sh(&env, mode, &write, None));
        let ctx = format!("mode {}\n{}", mode.name(), out.describe());
        assert!(out.stdout.contains("WROTE"), "{ctx}");
        let read = format!("for d in {CACHES}; do cat $d/entry 2>/dev/null; done; echo DONE");
        let out = run(bwai_sh(&env, mode, &read, None));
        let ctx = format!("mode {}\n{}", mode.name(), out.describe());
        assert_eq!(out.stdout.trim(), "DONE", "{ctx}");
        for d in [".cache", ".npm", ".cargo"] {
            assert!(
                !env.home.join(d).exists(),
                "{d} reached the real home: {ctx}"
            );
        }
    }
}

/// The recipe for a persistent cache of sandboxed runs: a folder the user
/// creates for it, named in `filesystem.read_write`, and the tools pointed
/// at it with `env.set`. It is shared by every project run with this
/// config, and never used by the tools outside the sandbox.
#[test]
fn a_configured_cache_persists() {
    let env = Env::new();
    let cache = env.home.join(".cache/bwai-sandbox");
    fs::create_dir_all(&cache).expect("mkdir cache");
    let config = format!(
        r#"{{
  "filesystem": {{ "read_write": ["~/.cache/bwai-sandbox"] }},
  "env": {{ "set": {{
    "npm_config_cache": "{c}/npm",
    "PIP_CACHE_DIR": "{c}/pip",
    "CARGO_HOME": "{c}/cargo"
  }} }}
}}
"#,
        c = cache.display()
    );
    write_file(&env.home.join(".bwai.json"), &config, 0o644);
    let write = "for v in \"$npm_config_cache\" \"$PIP_CACHE_DIR\" \"$CARGO_HOME\"; do \
                 mkdir -p \"$v\" && echo kept > \"$v/entry\"; done && echo WROTE";
    let out = run(bwai_sh(&env, Mode::Full, write, None));
    assert!(out.stdout.contains("WROTE"), "{}", out.describe());
    let read = "cat \"$npm_config_cache/entry\" \"$PIP_CACHE_DIR/entry\" \"$CARGO_HOME/entry\"";
    let out = run(bwai_sh(&env, Mode::Full, read, None));
    assert_eq!(out.stdout, "kept\nkept\nkept\n", "{}", out.describe());
    assert!(cache.join("npm/entry").is_file());
}
