#!/usr/bin/env bash
# THE test command: `bash ci/test.sh`.
#
# Checks formatting and lints, builds everything, runs the whole test suite as
# the current user, and, when run as root, runs the same test executables
# again as the unprivileged user `bwai-test` (created by ci/setup.sh): a
# sandbox for agents is used by ordinary users, and root hides bugs.
# BWAI_MUST_WORK=1 makes a missing kernel feature fail the tests instead of
# skipping them. Stops at the first failure and prints a summary.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
TEST_USER=bwai-test

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

passed=()
current=""
ci_dir=""

finish() {
    local rc=$?
    [ -n "$ci_dir" ] && rm -rf -- "$ci_dir"
    echo
    echo "==================== ci/test.sh summary ===================="
    local s
    for s in "${passed[@]}"; do
        echo "  PASS  $s"
    done
    if [ "$rc" -ne 0 ]; then
        [ -n "$current" ] && echo "  FAIL  $current"
        echo "ci/test.sh: FAILED (exit $rc)"
    else
        echo "ci/test.sh: all ${#passed[@]} steps passed"
    fi
    exit "$rc"
}
trap finish EXIT

# step NAME COMMAND...: runs COMMAND; set -e stops everything if it fails.
step() {
    current=$1
    shift
    echo
    echo "==================== $current"
    local start=$SECONDS
    "$@"
    passed+=("$current ($((SECONDS - start)) s)")
    current=""
}

is_root=false
[ "$(id -u)" -eq 0 ] && is_root=true

if $is_root; then
    step "setup (packages, user $TEST_USER)" bash ci/setup.sh
fi

step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --all-targets -- -D warnings
step "cargo build" cargo build --all-targets
step "cargo test as $(id -un)" env BWAI_MUST_WORK=1 cargo test

if ! $is_root; then
    echo
    echo "ci/test.sh: not root, so the second pass as $TEST_USER is skipped"
    exit 0
fi

# The executables cargo built, from its own JSON (no guessing at hashes).
collect_artifacts() {
    local json
    json=$(cargo test --no-run --message-format=json)
    bwai_exe=$(jq -r 'select(.reason == "compiler-artifact" and .target.name == "bwai"
            and (.target.kind | index("bin")) and .profile.test == false) | .executable' <<<"$json" | tail -n 1)
    mapfile -t example_exes < <(jq -r 'select(.reason == "compiler-artifact"
            and (.target.kind | index("example")) and .executable != null) | .executable' <<<"$json")
    # Every test executable: integration tests and the unit tests of lib and
    # bin, as "NAME<TAB>EXECUTABLE" (unit tests named after their target kind).
    mapfile -t test_exes < <(jq -r 'select(.reason == "compiler-artifact"
            and .profile.test == true and .executable != null)
            | (if (.target.kind | index("test")) then .target.name
               else .target.name + "-" + (.target.kind | join("-")) + "-unit" end)
              + "\t" + .executable' <<<"$json")
    [ -n "$bwai_exe" ] && [ -x "$bwai_exe" ] || { echo "no bwai binary in cargo's output" >&2; return 1; }
    [ "${#example_exes[@]}" -gt 0 ] || { echo "no example helpers in cargo's output" >&2; return 1; }
    [ "${#test_exes[@]}" -gt 0 ] || { echo "no test executables in cargo's output" >&2; return 1; }

    # A world-readable copy: the test user cannot read root's target/.
    ci_dir=$(mktemp -d /tmp/bwai-ci-XXXXXX)
    chmod 0755 "$ci_dir"
    mkdir -m 0755 "$ci_dir/bin" "$ci_dir/examples" "$ci_dir/tests"
    install -m 0755 "$bwai_exe" "$ci_dir/bin/bwai"
    local exe
    for exe in "${example_exes[@]}"; do
        install -m 0755 "$exe" "$ci_dir/examples/"
    done
    local entry
    for entry in "${test_exes[@]}"; do
        install -m 0755 "${entry#*$'\t'}" "$ci_dir/tests/${entry%%$'\t'*}"
    done
    echo "bwai:     $bwai_exe"
    echo "helpers:  ${example_exes[*]##*/}"
    echo "tests:    $(ls "$ci_dir/tests" | tr '\n' ' ')"
    echo "copied to $ci_dir"
}

# Tests that cannot run as $TEST_USER, and why (TEST-EXE/TEST-NAME). Each
# still runs, and must pass, in the root pass above; here it is left out
# out loud, never counted as passing.
declare -A not_as_test_user=(
    [devtools/git_safe_directory_from_gitconfig_is_honoured]="needs root to give the project another owner"
    [devtools/cargo_builds_offline_in_the_project]="rustup is per user, and $TEST_USER has no Rust toolchain"
)

run_as_test_user() {
    local exe=$1
    local name=${exe##*/}
    local skips=()
    local key
    for key in "${!not_as_test_user[@]}"; do
        if [ "${key%%/*}" = "$name" ]; then
            echo "NOT RUN as $TEST_USER: ${key#*/}: ${not_as_test_user[$key]}"
            skips+=(--skip "${key#*/}")
        fi
    done
    # Names are matched whole, not as substrings.
    if [ "${#skips[@]}" -gt 0 ]; then
        skips+=(--exact)
    fi
    (
        cd "$ci_dir"
        runuser -u "$TEST_USER" -- env -i \
            PATH=/usr/local/bin:/usr/bin:/bin \
            HOME="$(getent passwd "$TEST_USER" | cut -d: -f6)" \
            USER="$TEST_USER" LOGNAME="$TEST_USER" \
            LANG=C.UTF-8 RUST_BACKTRACE=1 \
            BWAI_BIN="$ci_dir/bin/bwai" \
            BWAI_HELPERS="$ci_dir/examples" \
            BWAI_MUST_WORK=1 \
            "$exe" --test-threads=2 "${skips[@]}"
    )
}

step "collect test executables" collect_artifacts
for exe in "$ci_dir"/tests/*; do
    step "as $TEST_USER: ${exe##*/}" run_as_test_user "$exe"
done
