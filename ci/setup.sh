#!/usr/bin/env bash
# Prepares a fresh Debian/Ubuntu machine to run bwai's tests. Idempotent.
# As root: installs the missing packages and creates the unprivileged user `bwai-test` the tests also run as.
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
)

missing=()
for cmd in "${!package_of[@]}"; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
        missing+=("${package_of[$cmd]}")
    fi
done
# libc headers for gcc, CA certificates for cargo and rustup.
for pkg in libc6-dev ca-certificates; do
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

# Say what this kernel allows unprivileged users; the tests decide what it means.
for f in /proc/sys/kernel/unprivileged_userns_clone /proc/sys/user/max_user_namespaces \
    /proc/sys/kernel/apparmor_restrict_unprivileged_userns; do
    if [ -r "$f" ]; then
        echo "ci/setup.sh: $f = $(cat "$f")"
    fi
done
echo "ci/setup.sh: done"
