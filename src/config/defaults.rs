//! The built-in defaults (DESIGN.md "Filesystem policy"): what common agents
//! and developer tools need, and nothing that holds a secret.

use std::collections::BTreeMap;

use super::{Config, Env, Filesystem, NetMode, Profile, Seccomp};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub fn config() -> Config {
    Config {
        shell: "/bin/bash".into(),
        filesystem: Filesystem {
            read_only: strings(&[
                // The system. Top-level links (merged /usr) are recreated as links.
                "/usr",
                "/bin",
                "/sbin",
                "/lib",
                "/lib32",
                "/lib64",
                "/libx32",
                "/opt",
                "/nix/store",
                "/home/linuxbrew/.linuxbrew",
                // Where agents and tools are commonly installed by the user
                // (tests/agents.rs builds each layout). Read-only: they run
                // outside the sandbox later.
                "~/.local/bin",
                "~/.local/lib",
                // Node.js and its global packages: npm's prefix, version
                // managers, other package managers' global folders.
                "~/.npm-global",
                "~/.nvm",
                "~/.local/share/fnm",
                "~/.asdf",
                "~/.local/share/mise",
                "~/.volta",
                "~/.local/share/pnpm",
                "~/.yarn/bin",
                "~/.config/yarn/global",
                "~/.bun/bin",
                "~/.bun/install/global",
                "~/.deno/bin",
                // Rust, Go.
                "~/.cargo/bin",
                "~/.rustup",
                "~/go/bin",
                // Python: pyenv, pipx (1.1 and >= 1.3), uv, conda.
                "~/.pyenv",
                "~/.local/pipx",
                "~/.local/share/pipx",
                "~/.local/share/uv/tools",
                "~/.local/share/uv/python",
                "~/miniconda3",
                "~/miniforge3",
                "~/anaconda3",
                // Homebrew installed in the home; Nix's per-user profile
                // (a link into /nix/store).
                "~/.linuxbrew",
                "~/.nix-profile",
                // Dotfiles that configure tools but hold no secret.
                "~/.gitconfig",
                "~/.config/git/config",
                "~/.config/git/ignore",
            ]),
            // Each agent's own state comes with its profile (below).
            read_write: Vec::new(),
            etc: strings(&[
                "alternatives",
                "bash.bashrc",
                "ca-certificates",
                "ca-certificates.conf",
                "crypto-policies",
                "debian_version",
                "environment",
                "fonts",
                "gai.conf",
                "gitconfig",
                "group",
                "host.conf",
                "hostname",
                "hosts",
                "inputrc",
                "ld.so.cache",
                "ld.so.conf",
                "ld.so.conf.d",
                "locale.alias",
                "locale.conf",
                "localtime",
                "lsb-release",
                "magic",
                "mime.types",
                "nanorc",
                "npmrc",
                "nsswitch.conf",
                "os-release",
                "passwd",
                "pip.conf",
                "pki",
                "profile",
                "protocols",
                "python3",
                "resolv.conf",
                "services",
                "shells",
                "ssl",
                "terminfo",
                "timezone",
                "vim",
                "xdg",
            ]),
            protected: strings(&[
                // Run by git, outside, on the next commit/checkout.
                ".git/hooks",
                ".git/config",
                ".gitmodules",
                ".husky",
                ".pre-commit-config.yaml",
                // Loaded by tools when you enter the folder or open it.
                ".envrc",
                ".vscode",
                ".idea",
                ".cursor",
                ".mcp.json",
                ".bwai.json",
                ".bashrc",
                ".bash_profile",
                ".profile",
                ".zshrc",
                ".zprofile",
                ".zshenv",
                // Project settings of agents: hooks, MCP servers, commands.
                ".claude/settings.json",
                ".claude/settings.local.json",
                ".claude/commands",
                ".claude/agents",
                ".claude/hooks",
                ".gemini/settings.json",
                // The agents' own state: what names commands run later.
                "~/.claude/settings.json",
                "~/.claude/commands",
                "~/.claude/agents",
                "~/.claude/hooks",
                "~/.gemini/settings.json",
                "~/.codex/config.toml",
                "~/.config/goose/config.yaml",
                "~/.config/opencode/opencode.json",
            ]),
        },
        env: Env {
            allow: strings(&[
                // Terminal and locale.
                "TERM",
                "COLORTERM",
                "TERM_PROGRAM",
                "TERM_PROGRAM_VERSION",
                "COLUMNS",
                "LINES",
                "NO_COLOR",
                "FORCE_COLOR",
                "CLICOLOR",
                "LANG",
                "LANGUAGE",
                "LC_*",
                "TZ",
                // Identity and search path (HOME, USER, LOGNAME, SHELL are set by bwai).
                "PATH",
                "EDITOR",
                "VISUAL",
                "PAGER",
                // Provider keys come with the agents' profiles (below).
            ]),
            set: BTreeMap::new(),
        },
        network: NetMode::Host,
        network_allow: Vec::new(),
        require: Vec::new(),
        seccomp: Seccomp {
            allow: Vec::new(),
            dangerously_allow_host_unix_sockets: false,
        },
        // No limit by default: an agent on a laptop runs as long as it likes.
        limits: Default::default(),
        profiles: profiles(),
    }
}

/// Keys of the providers that several agents can use.
const MULTI_PROVIDER_ENV: &[&str] = &[
    "ANTHROPIC_*",
    "OPENAI_*",
    "GEMINI_*",
    "GOOGLE_API_KEY",
    "AZURE_OPENAI_*",
    "AZURE_API_*",
    "OPENROUTER_API_KEY",
    "GROQ_API_KEY",
    "MISTRAL_API_KEY",
    "DEEPSEEK_API_KEY",
    "XAI_API_KEY",
    "OLLAMA_HOST",
    "OLLAMA_API_BASE",
];

fn profile(commands: &[&str], read_only: &[&str], read_write: &[&str], env: &[&str]) -> Profile {
    Profile {
        commands: strings(commands),
        read_only: strings(read_only),
        read_write: strings(read_write),
        env: strings(env),
        network_allow: Vec::new(),
        create: Vec::new(),
    }
}

/// An agent that talks to many providers reads all their keys.
fn with_multi(env: &[&'static str]) -> Vec<&'static str> {
    let mut all: Vec<&'static str> = MULTI_PROVIDER_ENV.to_vec();
    all.extend(
        env.iter()
            .copied()
            .filter(|e| !MULTI_PROVIDER_ENV.contains(e)),
    );
    all
}

/// The built-in agent profiles: where each keeps its state, where it is
/// installed, which variables it reads.
pub fn profiles() -> BTreeMap<String, Profile> {
    let mut p = BTreeMap::new();
    p.insert(
        "claude".into(),
        profile(
            &["claude", "claude-code"],
            &["~/.local/share/claude", "~/.claude/local"],
            &[
                "~/.claude",
                "~/.claude.json",
                "~/.claude.json.backup",
                "~/.config/claude",
            ],
            &[
                "ANTHROPIC_*",
                "CLAUDE_CODE_*",
                "CLAUDE_CONFIG_DIR",
                "DISABLE_AUTOUPDATER",
                "DISABLE_TELEMETRY",
                "MAX_THINKING_TOKENS",
                "BASH_DEFAULT_TIMEOUT_MS",
            ],
        ),
    );
    p.insert(
        "gemini".into(),
        profile(
            &["gemini"],
            &[],
            &["~/.gemini"],
            &[
                "GEMINI_*",
                "GOOGLE_API_KEY",
                "GOOGLE_CLOUD_PROJECT",
                "GOOGLE_CLOUD_LOCATION",
                "GOOGLE_GENAI_USE_VERTEXAI",
                "GOOGLE_GENAI_USE_GCA",
            ],
        ),
    );
    let goose_env = with_multi(&["GOOSE_*"]);
    p.insert(
        "goose".into(),
        profile(
            &["goose"],
            &[],
            &[
                "~/.config/goose",
                "~/.local/share/goose",
                "~/.local/state/goose",
            ],
            &goose_env,
        ),
    );
    p.insert(
        "codex".into(),
        profile(
            &["codex"],
            &[],
            &["~/.codex"],
            &["OPENAI_*", "CODEX_*", "AZURE_OPENAI_*"],
        ),
    );
    let opencode_env = with_multi(&["OPENCODE_*"]);
    p.insert(
        "opencode".into(),
        profile(
            &["opencode"],
            &["~/.opencode/bin"],
            &[
                "~/.config/opencode",
                "~/.local/share/opencode",
                "~/.local/state/opencode",
                "~/.cache/opencode",
            ],
            &opencode_env,
        ),
    );
    let aider_env = with_multi(&["AIDER_*"]);
    p.insert(
        "aider".into(),
        profile(&["aider"], &[], &["~/.aider"], &aider_env),
    );
    // The state folders each agent keeps its login and history in: made if
    // missing, so that a first run inside the sandbox is not forgotten.
    for (name, folders) in [
        ("claude", &["~/.claude"][..]),
        ("gemini", &["~/.gemini"][..]),
        ("codex", &["~/.codex"][..]),
        (
            "goose",
            &[
                "~/.config/goose",
                "~/.local/share/goose",
                "~/.local/state/goose",
            ][..],
        ),
        (
            "opencode",
            &["~/.config/opencode", "~/.local/share/opencode"][..],
        ),
    ] {
        if let Some(profile) = p.get_mut(name) {
            profile.create = strings(folders);
        }
    }
    // The model APIs each agent needs in the `allow` network mode.
    let many = ["@anthropic", "@openai", "@google"];
    for (name, hosts) in [
        ("claude", &["@anthropic"][..]),
        ("gemini", &["@google"][..]),
        ("codex", &["@openai"][..]),
        ("goose", &many[..]),
        ("opencode", &many[..]),
        ("aider", &many[..]),
    ] {
        if let Some(profile) = p.get_mut(name) {
            profile.network_allow = strings(hosts);
        }
    }
    p
}
