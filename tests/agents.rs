//! Zero config, real agents: the agent CLIs, installed the way their docs
//! say into the user's own home, run inside the sandbox with no bwai
//! configuration at all, while the user's ~/.ssh stays out and the project
//! stays writable.
//!
//! ci/setup.sh installs them for root and for `bwai-test`, as a user would:
//! `npm install --global --prefix ~/.npm-global` (claude, gemini, codex) and
//! `pipx install aider-chat` (venv under ~/.local, link in ~/.local/bin).
//! These tests use the *real* home of the user they run as, because an
//! install cannot be moved into a fake home: pipx links and nvm paths are
//! absolute. They write nothing there but a fake key in ~/.ssh, removed
//! afterwards. The user's PATH gets the two bin folders in front, as the
//! user's shell rc would (bwai passes PATH through).
//!
//! An agent that is not installed fails the test under `BWAI_MUST_WORK=1`
//! (CI) and is skipped loudly otherwise: never a silent pass.

mod common;

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::*;

/// The agents checked: (profile and program name, how its version line starts).
const AGENTS: &[(&str, &str)] = &[
    ("claude", ""),
    ("gemini", ""),
    ("codex", "codex-cli "),
    ("aider", "aider "),
];

/// Marker in the fake key this test puts in the real ~/.ssh.
const FAKE_KEY: &str = "BWAI-AGENTS-FAKE-SSH-KEY";

/// The real home of the user running the tests, with the agents installed.
struct RealHome {
    home: PathBuf,
    /// `$HOME/.npm-global/bin:$HOME/.local/bin:$PATH`.
    path: OsString,
    /// The fake key (removed on drop), and ~/.ssh if this test created it.
    key: PathBuf,
    created_ssh_dir: bool,
    /// One test at a time touches the real home (~/.ssh may be created and
    /// removed), and the agents are heavy for a 2-core machine anyway.
    _lock: MutexGuard<'static, ()>,
}

static REAL_HOME: Mutex<()> = Mutex::new(());

impl RealHome {
    fn new(tag: &str) -> RealHome {
        // A failed test poisons the lock; the next one still runs.
        let lock = REAL_HOME.lock().unwrap_or_else(|e| e.into_inner());
        let home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"));
        assert!(home.is_absolute() && home.is_dir(), "HOME {home:?}");
        let mut dirs = vec![home.join(".npm-global/bin"), home.join(".local/bin")];
        dirs.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
        ));
        let path = std::env::join_paths(dirs).expect("PATH entries without ':'");

        let ssh = home.join(".ssh");
        let created_ssh_dir = !ssh.exists();
        if created_ssh_dir {
            fs::create_dir(&ssh).expect("mkdir ~/.ssh");
            fs::set_permissions(&ssh, fs::Permissions::from_mode(0o700)).expect("chmod ~/.ssh");
        }
        let key = ssh.join(format!(
            "bwai-agents-test-{tag}-{}",
            unique_marker("k").rsplit('-').next().unwrap_or("0")
        ));
        write_file(&key, FAKE_KEY, 0o600);
        RealHome {
            home,
            path,
            key,
            created_ssh_dir,
            _lock: lock,
        }
    }

    /// The program `name` on the user's PATH, outside the sandbox.
    fn find(&self, name: &str) -> Option<PathBuf> {
        std::env::split_paths(&self.path)
            .map(|d| d.join(name))
            .find(|p| {
                fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    }

    /// A command with the user's identity, HOME and PATH, nothing else.
    fn command(&self, program: &Path, cwd: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(cwd)
            .env_clear()
            .env("PATH", &self.path)
            .env("HOME", &self.home)
            .env("LANG", "C.UTF-8");
        for var in ["USER", "LOGNAME", "RUST_LOG", "RUST_BACKTRACE"] {
            if let Some(v) = std::env::var_os(var) {
                c.env(var, v);
            }
        }
        c
    }

    /// `bwai ARGS` in `mode`, from `project`, with zero config.
    fn bwai(&self, mode: Mode, project: &Path, args: &[&str]) -> Command {
        let mut c = self.command(&bwai_bin(), project);
        if let Some(w) = mode.wrapper() {
            c = self.command(&w, project);
            c.arg(bwai_bin());
        }
        c.args(args);
        c
    }
}

impl Drop for RealHome {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.key);
        if self.created_ssh_dir {
            let _ = fs::remove_dir(self.home.join(".ssh"));
        }
    }
}

/// Fails under `BWAI_MUST_WORK=1` when the user has a bwai config: these
/// tests are about zero config.
fn zero_config(home: &RealHome) -> bool {
    let xdg = home.home.join(".config/bwai/config.json");
    let dot = home.home.join(".bwai.json");
    for f in [xdg, dot] {
        if f.exists() {
            skip(&format!(
                "{} exists: these tests check bwai with zero config",
                f.display()
            ));
            return false;
        }
    }
    true
}

/// The version line `program --version` prints outside the sandbox.
fn version_outside(home: &RealHome, program: &Path, cwd: &Path) -> String {
    let out = run_with_timeout(
        home.command(program, cwd).arg("--version"),
        Duration::from_secs(120),
    );
    assert!(
        out.code() == Some(0) && !out.timed_out,
        "{} --version fails even outside the sandbox: fix the install (ci/setup.sh)\n{}",
        program.display(),
        out.describe()
    );
    out.first_line().trim().to_string()
}

/// One agent, in one mode: its version inside equals the one outside, its
/// profile was applied, the fake key is unreadable (and ~/.ssh absent where
/// namespaces give a private view), and a file written in the project is
/// there afterwards on the host.
fn agent_runs(name: &str, prefix: &str) {
    let home = RealHome::new(name);
    if !zero_config(&home) {
        return;
    }
    let Some(program) = home.find(name) else {
        skip(&format!(
            "{name} is not installed for {} (run ci/setup.sh as root)",
            home.home.display()
        ));
        return;
    };
    let project = TempDir::new(&format!("bwai-agent-{name}"));
    let expected = version_outside(&home, &program, project.path());
    assert!(
        expected.starts_with(prefix) && expected.chars().any(|c| c.is_ascii_digit()),
        "{name} --version printed {expected:?}"
    );
    let key = home.key.to_str().expect("UTF-8 home");
    for mode in all_modes() {
        let marker = format!("written-by-{name}-{}", mode.name());
        let script = format!(
            "{name} --version </dev/null || exit 90\n\
             if cat '{key}' 2>/dev/null; then echo KEY-READ; fi\n\
             if [ -e ~/.ssh ]; then echo SSH-VISIBLE; else echo SSH-ABSENT; fi\n\
             echo {marker} > {marker} && echo WROTE"
        );
        let out = run_with_timeout(
            home.bwai(mode, project.path(), &["-c", &script]),
            Duration::from_secs(120),
        );
        let ctx = format!("{name} in mode {}\n{}", mode.name(), out.describe());
        assert!(!out.timed_out, "hung: {ctx}");
        assert_eq!(out.code(), Some(0), "{ctx}");
        assert_eq!(out.first_line().trim(), expected, "version inside: {ctx}");
        assert!(
            out.stderr.contains(&format!("profile: {name}")),
            "the {name} profile was not applied: {ctx}"
        );
        assert!(
            !out.stdout.contains(FAKE_KEY) && !out.stdout.contains("KEY-READ"),
            "key read: {ctx}"
        );
        match mode {
            Mode::Full | Mode::NoLandlock => {
                assert!(out.stdout.contains("SSH-ABSENT"), "~/.ssh visible: {ctx}")
            }
            // Landlock denies access but cannot hide a name.
            Mode::NoUserns => {}
        }
        assert!(out.stdout.contains("WROTE"), "{ctx}");
        let written = fs::read_to_string(project.path().join(&marker)).unwrap_or_default();
        assert_eq!(written.trim(), marker, "project not writable: {ctx}");
    }
}

#[test]
fn claude_runs_with_zero_config() {
    agent_runs(AGENTS[0].0, AGENTS[0].1);
}

#[test]
fn gemini_runs_with_zero_config() {
    agent_runs(AGENTS[1].0, AGENTS[1].1);
}

#[test]
fn codex_runs_with_zero_config() {
    agent_runs(AGENTS[2].0, AGENTS[2].1);
}

#[test]
fn aider_runs_with_zero_config() {
    agent_runs(AGENTS[3].0, AGENTS[3].1);
}

/// `bwai -- claude ...` (a program, not a shell command) selects the
/// profile too, and finds the program on the user's PATH.
#[test]
fn agent_as_argv_finds_its_install_and_profile() {
    let home = RealHome::new("argv");
    if !zero_config(&home) {
        return;
    }
    let Some(program) = home.find("codex") else {
        skip("codex is not installed (run ci/setup.sh as root)");
        return;
    };
    let project = TempDir::new("bwai-agent-argv");
    let expected = version_outside(&home, &program, project.path());
    let out = run_with_timeout(
        home.bwai(Mode::Full, project.path(), &["--", "codex", "--version"]),
        Duration::from_secs(120),
    );
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    assert_eq!(out.first_line().trim(), expected, "{}", out.describe());
    assert!(out.stderr.contains("profile: codex"), "{}", out.describe());
}

// ---------------------------------------------------------------- install places

/// One file of a simulated install, relative to the fake home.
enum Entry {
    /// An executable script that prints `ran PROGRAM`.
    Program(&'static str),
    /// An executable script that runs another path of the home (a shim).
    Shim(&'static str, &'static str),
    /// A symbolic link; a target starting with `~/` is made absolute, as
    /// pipx and uv write them.
    Link(&'static str, &'static str),
}

/// Where an installer puts an agent: its files, and the folder the user
/// adds to PATH.
struct Layout {
    what: &'static str,
    program: &'static str,
    bin: &'static str,
    entries: &'static [Entry],
}

const LAYOUTS: &[Layout] = &[
    Layout {
        what: "npm, prefix ~/.npm-global",
        program: "gemini",
        bin: "~/.npm-global/bin",
        entries: &[
            Entry::Program("~/.npm-global/lib/node_modules/@google/gemini-cli/bundle/gemini.js"),
            Entry::Link(
                "~/.npm-global/bin/gemini",
                "../lib/node_modules/@google/gemini-cli/bundle/gemini.js",
            ),
        ],
    },
    Layout {
        what: "npm, prefix ~/.local",
        program: "claude",
        bin: "~/.local/bin",
        entries: &[
            Entry::Program("~/.local/lib/node_modules/@anthropic-ai/claude-code/cli.js"),
            Entry::Link(
                "~/.local/bin/claude",
                "../lib/node_modules/@anthropic-ai/claude-code/cli.js",
            ),
        ],
    },
    Layout {
        what: "nvm",
        program: "codex",
        bin: "~/.nvm/versions/node/v22.12.0/bin",
        entries: &[
            Entry::Program(
                "~/.nvm/versions/node/v22.12.0/lib/node_modules/@openai/codex/bin/codex.js",
            ),
            Entry::Link(
                "~/.nvm/versions/node/v22.12.0/bin/codex",
                "../lib/node_modules/@openai/codex/bin/codex.js",
            ),
        ],
    },
    Layout {
        what: "fnm",
        program: "gemini",
        bin: "~/.local/share/fnm/node-versions/v22.12.0/installation/bin",
        entries: &[Entry::Program(
            "~/.local/share/fnm/node-versions/v22.12.0/installation/bin/gemini",
        )],
    },
    Layout {
        what: "asdf",
        program: "codex",
        bin: "~/.asdf/shims",
        entries: &[
            Entry::Program("~/.asdf/installs/nodejs/22.12.0/bin/codex"),
            Entry::Shim(
                "~/.asdf/shims/codex",
                "~/.asdf/installs/nodejs/22.12.0/bin/codex",
            ),
        ],
    },
    Layout {
        what: "mise",
        program: "claude",
        bin: "~/.local/share/mise/shims",
        entries: &[
            Entry::Program("~/.local/share/mise/installs/node/22.12.0/bin/claude"),
            Entry::Shim(
                "~/.local/share/mise/shims/claude",
                "~/.local/share/mise/installs/node/22.12.0/bin/claude",
            ),
        ],
    },
    Layout {
        what: "volta",
        program: "gemini",
        bin: "~/.volta/bin",
        entries: &[
            Entry::Program("~/.volta/tools/image/packages/@google/gemini-cli/bin/gemini"),
            Entry::Shim(
                "~/.volta/bin/gemini",
                "~/.volta/tools/image/packages/@google/gemini-cli/bin/gemini",
            ),
        ],
    },
    Layout {
        what: "pnpm",
        program: "codex",
        bin: "~/.local/share/pnpm",
        entries: &[
            Entry::Program("~/.local/share/pnpm/global/5/node_modules/@openai/codex/bin/codex.js"),
            Entry::Shim(
                "~/.local/share/pnpm/codex",
                "~/.local/share/pnpm/global/5/node_modules/@openai/codex/bin/codex.js",
            ),
        ],
    },
    Layout {
        what: "yarn (classic) global",
        program: "claude",
        bin: "~/.yarn/bin",
        entries: &[
            Entry::Program("~/.config/yarn/global/node_modules/@anthropic-ai/claude-code/cli.js"),
            Entry::Link(
                "~/.yarn/bin/claude",
                "../../.config/yarn/global/node_modules/@anthropic-ai/claude-code/cli.js",
            ),
        ],
    },
    Layout {
        what: "bun global",
        program: "claude",
        bin: "~/.bun/bin",
        entries: &[
            Entry::Program("~/.bun/install/global/node_modules/@anthropic-ai/claude-code/cli.js"),
            Entry::Link(
                "~/.bun/bin/claude",
                "../install/global/node_modules/@anthropic-ai/claude-code/cli.js",
            ),
        ],
    },
    Layout {
        what: "Claude Code's native installer",
        program: "claude",
        bin: "~/.local/bin",
        entries: &[
            Entry::Program("~/.local/share/claude/versions/2.1.0"),
            Entry::Link(
                "~/.local/bin/claude",
                "~/.local/share/claude/versions/2.1.0",
            ),
        ],
    },
    Layout {
        what: "pipx 1.1 (Debian 12)",
        program: "aider",
        bin: "~/.local/bin",
        entries: &[
            Entry::Program("~/.local/pipx/venvs/aider-chat/bin/aider"),
            Entry::Link(
                "~/.local/bin/aider",
                "~/.local/pipx/venvs/aider-chat/bin/aider",
            ),
        ],
    },
    Layout {
        what: "pipx >= 1.3",
        program: "aider",
        bin: "~/.local/bin",
        entries: &[
            Entry::Program("~/.local/share/pipx/venvs/aider-chat/bin/aider"),
            Entry::Link(
                "~/.local/bin/aider",
                "~/.local/share/pipx/venvs/aider-chat/bin/aider",
            ),
        ],
    },
    Layout {
        what: "uv tool",
        program: "aider",
        bin: "~/.local/bin",
        entries: &[
            Entry::Program("~/.local/share/uv/tools/aider-chat/bin/aider"),
            Entry::Link(
                "~/.local/bin/aider",
                "~/.local/share/uv/tools/aider-chat/bin/aider",
            ),
        ],
    },
    Layout {
        what: "conda (miniconda3)",
        program: "aider",
        bin: "~/miniconda3/bin",
        entries: &[Entry::Program("~/miniconda3/bin/aider")],
    },
    Layout {
        what: "opencode's installer",
        program: "opencode",
        bin: "~/.opencode/bin",
        entries: &[Entry::Program("~/.opencode/bin/opencode")],
    },
    Layout {
        what: "goose's installer",
        program: "goose",
        bin: "~/.local/bin",
        entries: &[Entry::Program("~/.local/bin/goose")],
    },
    Layout {
        what: "cargo install",
        program: "goose",
        bin: "~/.cargo/bin",
        entries: &[Entry::Program("~/.cargo/bin/goose")],
    },
    Layout {
        what: "Nix profile (a link to the store)",
        program: "opencode",
        bin: "~/.nix-profile/bin",
        entries: &[
            Entry::Program("~/.store-elsewhere/abc-user-environment/bin/opencode"),
            Entry::Link("~/.nix-profile", "~/.store-elsewhere/abc-user-environment"),
        ],
    },
    Layout {
        what: "Homebrew in the home (~/.linuxbrew)",
        program: "codex",
        bin: "~/.linuxbrew/bin",
        entries: &[
            Entry::Program("~/.linuxbrew/Cellar/codex/0.171.0/bin/codex"),
            Entry::Link(
                "~/.linuxbrew/bin/codex",
                "../Cellar/codex/0.171.0/bin/codex",
            ),
        ],
    },
];

fn in_home(env: &Env, rel: &str) -> PathBuf {
    env.home
        .join(rel.strip_prefix("~/").expect("layout paths start with ~/"))
}

/// Builds the layout in the fake home; returns the program's real file.
fn install(env: &Env, layout: &Layout) -> PathBuf {
    let mut real = None;
    for entry in layout.entries {
        match entry {
            Entry::Program(path) => {
                let p = in_home(env, path);
                write_file(
                    &p,
                    &format!("#!/bin/sh\necho ran {}\n", layout.program),
                    0o755,
                );
                real = Some(p);
            }
            Entry::Shim(path, target) => {
                let target = in_home(env, target);
                write_file(
                    &in_home(env, path),
                    &format!("#!/bin/sh\nexec '{}' \"$@\"\n", target.display()),
                    0o755,
                );
            }
            Entry::Link(path, target) => {
                let link = in_home(env, path);
                fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
                let target = match target.strip_prefix("~/") {
                    Some(_) => in_home(env, target),
                    None => PathBuf::from(target),
                };
                std::os::unix::fs::symlink(&target, &link).expect("symlink");
            }
        }
    }
    real.expect("every layout has its program")
}

/// The places where installers put agents are visible read-only with zero
/// config: the program runs from the folder its installer told the user to
/// put on PATH, in every mode, and cannot be rewritten from inside (it runs
/// outside the sandbox later).
#[test]
fn install_places_of_agents_are_visible_and_read_only() {
    let mut failures = Vec::new();
    for layout in LAYOUTS {
        let env = Env::new();
        let real = install(&env, layout);
        let system_path =
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        let mut dirs = vec![in_home(&env, layout.bin)];
        dirs.extend(std::env::split_paths(&system_path));
        let path = std::env::join_paths(dirs).expect("PATH");
        let script = format!(
            "{} || exit 90\nif echo 'echo planted' >> '{}'; then echo REWROTE; fi",
            layout.program,
            real.display()
        );
        for mode in all_modes() {
            let out = run(env.bwai(mode, &["-c", &script]).env("PATH", &path));
            let what = format!("{} in mode {}", layout.what, mode.name());
            if out.code() != Some(0) || out.first_line() != format!("ran {}", layout.program) {
                failures.push(format!("{what}: does not run\n{}", out.describe()));
            } else if out.stdout.contains("REWROTE") {
                failures.push(format!(
                    "{what}: install place writable\n{}",
                    out.describe()
                ));
            }
        }
        let after = fs::read_to_string(&real).expect("read the program");
        if after.contains("planted") {
            failures.push(format!("{}: rewritten from inside: {after}", layout.what));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
