#!/usr/bin/env bash
# Prepares a fresh Debian/Ubuntu machine to run bwai's tests. Idempotent.
# As root: installs the missing packages, creates the unprivileged user `bwai-test` the tests also run as,
# and installs the real agent CLIs (claude, gemini, codex, aider) for root and for `bwai-test`, each into
# its own home as a user would (tests/agents.rs runs them inside the sandbox).
set -euo pipefail

TEST_USER=bwai-test

if [ "$(id -u)" -ne 0 ]; then
    echo "ci/setup.sh: must run as root (installs packages, creates $TEST_USER)" >&2
    exit 1
fi

# Commands the tests and scripts use, and the Debian package that has each.
declare -A package_of=(
    [bwrap]=bubblewrap      # the comparison in ci/bench.sh
    [strace]=strace         # debugging failed sandbox tests
    [runuser]=util-linux    # running the tests as $TEST_USER
    [setpriv]=util-linux
    [unshare]=util-linux
    [pgrep]=procps
    [ps]=procps
    [gcc]=gcc               # the linker rustc uses
    [cc]=gcc
    [jq]=jq                 # ci/test.sh reads cargo's JSON with it
    [useradd]=passwd
    [python3]=python3       # ci/bench.sh
    [curl]=curl             # a real HTTP client inside the sandbox (tests/network.rs)
    [git]=git               # tests/devtools.rs: the developer tools inside the sandbox
    [make]=make
    [node]=nodejs           # the agents' runtime (machines of this kind ship Node.js 20 with npm)
    [npm]=nodejs
    [pipx]=pipx             # installs aider, as its docs suggest
)

missing=()
for cmd in "${!package_of[@]}"; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
        missing+=("${package_of[$cmd]}")
    fi
done
# libc headers for gcc, CA certificates for cargo and rustup.
# python3-venv: `python3 -m venv` (pipx and tests/devtools.rs).
for pkg in libc6-dev ca-certificates python3-venv; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    echo "ci/setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "ci/setup.sh: all packages present"
fi

# Rust: the one on PATH, else ~/.cargo/bin. Machines of this kind come with
# a rustup toolchain; this script does not download one.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "ci/setup.sh: no Rust toolchain (cargo) found; install one with rustup first" >&2
    exit 1
fi

# The unprivileged test user: a home, no sudo, no extra groups.
if ! id -u "$TEST_USER" >/dev/null 2>&1; then
    echo "ci/setup.sh: creating user $TEST_USER"
    useradd --create-home --user-group --shell /bin/bash "$TEST_USER"
fi
home=$(getent passwd "$TEST_USER" | cut -d: -f6)
if [ ! -d "$home" ]; then
    mkdir -p "$home"
    chown "$TEST_USER:$TEST_USER" "$home"
    chmod 0750 "$home"
fi

# ---------------------------------------------------------------- agent CLIs
# Installed as a user installs them, into the user's own home: npm's global
# prefix ~/.npm-global (npm's own advice for installs without root) and
# pipx's venvs under ~/.local, both in bwai's default read-only install
# places. For root (ci/test.sh's first pass) and for $TEST_USER (its second):
# each run of the suite finds them in the home of the user it runs as.
# Unpinned, as a user would: npm picks the newest version whose `engines`
# this Node.js satisfies. A registry failure is retried once, then fails;
# each attempt has a time limit (a normal install takes 20-80 s).
AGENT_NPM_PACKAGES=(@anthropic-ai/claude-code @google/gemini-cli @openai/codex)
AGENT_NPM_BINS=(claude gemini codex)

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "ci/setup.sh: Node.js $(node --version) is too old: @google/gemini-cli needs >= 20" >&2
    exit 1
fi

# as_user USER COMMAND: COMMAND (a bash script) as USER, in their home, with
# their identity and a PATH with their install places. The rest of the
# environment is kept (runuser's default): it may name the machine's CA
# certificates (NODE_EXTRA_CA_CERTS, SSL_CERT_FILE, PIP_CERT) that the
# registries need here; per-user tool settings are dropped.
as_user() {
    local user=$1 script=$2 home
    home=$(getent passwd "$user" | cut -d: -f6)
    runuser -u "$user" -- env -u CARGO_HOME -u RUSTUP_HOME -u PYENV_ROOT -u VIRTUAL_ENV \
        -u XDG_CONFIG_HOME -u XDG_DATA_HOME -u XDG_CACHE_HOME -u XDG_STATE_HOME \
        -u PIPX_HOME -u PIPX_BIN_DIR -u NPM_CONFIG_PREFIX -u npm_config_prefix \
        HOME="$home" USER="$user" LOGNAME="$user" \
        PATH="$home/.npm-global/bin:$home/.local/bin:/usr/local/bin:/usr/bin:/bin" \
        bash -c "cd ~ && $script" </dev/null
}

# retry DESCRIPTION COMMAND...: runs COMMAND, once more after a pause if it fails.
retry() {
    local what=$1
    shift
    if "$@"; then
        return 0
    fi
    echo "ci/setup.sh: $what failed; retrying once in 15 s" >&2
    sleep 15
    "$@"
}

install_agents() {
    local user=$1 start=$SECONDS check=""
    local bin
    for bin in "${AGENT_NPM_BINS[@]}"; do
        check+="$bin --version >/dev/null 2>&1 && "
    done
    if as_user "$user" "${check}true"; then
        echo "ci/setup.sh: agent CLIs already installed for $user"
    else
        echo "ci/setup.sh: installing ${AGENT_NPM_PACKAGES[*]} for $user into ~/.npm-global"
        retry "npm install for $user" as_user "$user" \
            "timeout 300 npm install --global --prefix ~/.npm-global --no-fund --no-audit ${AGENT_NPM_PACKAGES[*]}"
    fi
    if as_user "$user" "aider --version >/dev/null 2>&1"; then
        echo "ci/setup.sh: aider already installed for $user"
    else
        echo "ci/setup.sh: installing aider-chat for $user with pipx"
        retry "pipx install aider-chat for $user" as_user "$user" \
            "timeout 420 pipx install --force aider-chat"
    fi
    as_user "$user" "${check}aider --version >/dev/null" || {
        echo "ci/setup.sh: the agent CLIs do not run for $user after installing them" >&2
        exit 1
    }
    echo "ci/setup.sh: agents for $user ($((SECONDS - start)) s):" \
        "$(as_user "$user" 'for b in claude gemini codex aider; do printf "%s=%s " $b "$($b --version 2>/dev/null | head -n 1)"; done')"
}

install_agents root
install_agents "$TEST_USER"

# A Node.js whose fetch honours NODE_USE_ENV_PROXY (24 and later), for the
# proxy test in tests/network.rs; the machine's own Node may be older. The
# npm registry's node-linux-<arch> package carries the official binary.
# Under /opt, which the sandbox shows read-only by default.
NODE24=/opt/bwai-ci/node24
install_node24() {
    local arch tmp
    case "$(uname -m)" in
        x86_64) arch=x64 ;;
        aarch64) arch=arm64 ;;
        *) echo "ci/setup.sh: no Node.js 24 package for $(uname -m)" >&2; return 1 ;;
    esac
    tmp=$(mktemp -d)
    timeout 300 npm install --no-save --no-package-lock --prefix "$tmp" "node-linux-$arch@24" >/dev/null &&
        install -D -m 0755 "$tmp/node_modules/node-linux-$arch/bin/node" "$NODE24/bin/node"
    local rc=$?
    rm -rf -- "$tmp"
    return $rc
}
if "$NODE24/bin/node" --version 2>/dev/null | grep -q '^v24\.'; then
    echo "ci/setup.sh: $NODE24 has Node.js $("$NODE24/bin/node" --version)"
else
    retry "Node.js 24 from the npm registry" install_node24
    chmod -R a+rX /opt/bwai-ci
    echo "ci/setup.sh: installed Node.js $("$NODE24/bin/node" --version) in $NODE24"
fi

# Say what this kernel allows unprivileged users; the tests decide what it means.
for f in /proc/sys/kernel/unprivileged_userns_clone /proc/sys/user/max_user_namespaces \
    /proc/sys/kernel/apparmor_restrict_unprivileged_userns; do
    if [ -r "$f" ]; then
        echo "ci/setup.sh: $f = $(cat "$f")"
    fi
done
echo "ci/setup.sh: done"
