#!/usr/bin/env bash
# How much does the sandbox cost at start-up? Times `bwai -q -- /bin/true`
# (release build) against plain /bin/true and, when bubblewrap works here,
# against two bwrap commands: `bwrap` with a minimal view (/usr, /proc, /dev,
# /tmp, the project: far fewer mounts than bwai's defaults) and `bwrap-same`
# with the equivalent options (the same mount list as bwai's policy; bwai
# still adds Landlock and seccomp on top). BENCH_RUNS runs each
# (default 200). With hyperfine installed it does the measuring (one command
# after the other); otherwise, or with BENCH_TOOL=python, a small Python loop
# runs the commands interleaved (true, bwai, bwrap, true, ...) so that machine
# noise hits them all alike. A script, not a test.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${BENCH_RUNS:-200}

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v python3 >/dev/null || { echo "bench.sh needs python3" >&2; exit 1; }

echo "building bwai (release)..." >&2
bwai=$(cargo build --release --bin bwai --message-format=json |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "bwai" and m.get("executable"):
        print(m["executable"])')
[ -x "$bwai" ] || { echo "no bwai binary built" >&2; exit 1; }

# A throw-away project: bwai refuses $HOME and its parents, and both
# sandboxes bind the same folder.
project=$(mktemp -d /tmp/bwai-bench-XXXXXX)
trap 'rm -rf -- "$project"' EXIT
cd "$project"

names=(true bwai bwai-limits)
# With every limit on: the sandbox cgroup (made, joined and removed, where
# bwai may make one: as root, or delegated) and six rlimits.
limit_flags="--timeout 60s --memory 1G --pids 1024 --cpu-time 60 --file-size 1G --open-files 4096"
cmds=("/bin/true" "$bwai -q -- /bin/true" "$bwai -q $limit_flags -- /bin/true")

if ! "$bwai" -q -- /bin/true; then
    echo "bench.sh: \`$bwai -q -- /bin/true\` fails here; nothing to measure" >&2
    exit 1
fi

if command -v bwrap >/dev/null 2>&1; then
    bwrap_args=(--unshare-all --share-net --die-with-parent --ro-bind /usr /usr)
    # Merged /usr: /bin -> usr/bin etc. become symlinks, real dirs are bound.
    for d in bin sbin lib lib32 lib64 libx32; do
        if [ -L "/$d" ]; then
            bwrap_args+=(--symlink "$(readlink "/$d")" "/$d")
        elif [ -d "/$d" ]; then
            bwrap_args+=(--ro-bind "/$d" "/$d")
        fi
    done
    bwrap_args+=(--proc /proc --dev /dev --tmpfs /tmp --bind "$PWD" "$PWD" --chdir "$PWD")
    if bwrap "${bwrap_args[@]}" /bin/true 2>/dev/null; then
        names+=(bwrap)
        cmds+=("$(command -v bwrap) ${bwrap_args[*]} /bin/true")
        # bwrap with the equivalent options: the same mount list as bwai's
        # policy (the same /etc entries, tools, agent state, tmpfs home), so
        # both do the same filesystem work; bwai adds Landlock and seccomp.
        same=$("$bwai" --dump-config | python3 -c '
import json, os, shlex, sys
cfg = json.load(sys.stdin)
home = os.environ["HOME"]
project = os.getcwd()
def expand(p):
    return home + p[1:] if p.startswith("~/") else p
entries = []  # (depth, args)
def depth(p):
    return len([c for c in p.split("/") if c])
def add(path, rw):
    if not os.path.lexists(path):
        return
    if os.path.islink(path) and os.path.dirname(path) == "/":
        entries.append((depth(path), ["--symlink", os.readlink(path), path]))
    elif os.path.exists(path):
        entries.append((depth(path), ["--bind" if rw else "--ro-bind", os.path.realpath(path), path]))
for p in cfg["filesystem"]["read_only"]:
    add(expand(p), False)
for e in cfg["filesystem"]["etc"]:
    add("/etc/" + e, False)
for p in cfg["filesystem"]["read_write"]:
    add(expand(p), True)
for t in ["/tmp", "/var/tmp", home]:
    entries.append((depth(t), ["--tmpfs", t]))
entries.append((depth(project), ["--bind", project, project]))
entries.sort(key=lambda e: e[0])
args = ["--unshare-all", "--share-net", "--die-with-parent", "--proc", "/proc", "--dev", "/dev"]
for _, a in entries:
    args += a
args += ["--chdir", project]
print(shlex.join(args))
')
        if eval "bwrap $same /bin/true" 2>/dev/null; then
            names+=(bwrap-same)
            cmds+=("$(command -v bwrap) $same /bin/true")
        else
            echo "bench.sh: the equivalent bwrap command fails here; skipping it" >&2
        fi
    else
        echo "bench.sh: bwrap does not work here (user namespaces?); comparing with true only" >&2
    fi
else
    echo "bench.sh: bwrap not installed; comparing with true only" >&2
fi

results=$(mktemp)
trap 'rm -rf -- "$project" "$results"' EXIT

if [ "${BENCH_TOOL:-}" != python ] && command -v hyperfine >/dev/null 2>&1; then
    hyperfine_args=()
    for i in "${!names[@]}"; do
        hyperfine_args+=(--command-name "${names[$i]}" "${cmds[$i]}")
    done
    hyperfine -N --warmup 10 --runs "$runs" --export-json "$results" "${hyperfine_args[@]}" >&2
    python3 - "$results" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
out = {r["command"]: [t * 1000 for t in r["times"]] for r in data["results"]}
json.dump(out, open(sys.argv[1], "w"))
PY
else
    # Interleaved runs, spawned with posix_spawn (cheap and the same for all).
    python3 - "$results" "$runs" "${names[@]}" -- "${cmds[@]}" <<'PY'
import json, os, sys, time, shlex
path, runs = sys.argv[1], int(sys.argv[2])
rest = sys.argv[3:]
sep = rest.index("--")
names, cmds = rest[:sep], [shlex.split(c) for c in rest[sep + 1:]]
devnull = os.open(os.devnull, os.O_RDWR)
actions = [(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)]
times = {n: [] for n in names}
for i in range(runs + 10):  # the first 10 rounds are warm-up
    for name, argv in zip(names, cmds):
        t0 = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
        _, status = os.waitpid(pid, 0)
        dt = (time.perf_counter() - t0) * 1000
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{name} failed: {argv}")
        if i >= 10:
            times[name].append(dt)
json.dump(times, open(path, "w"))
PY
fi

python3 - "$results" "$runs" <<'PY'
import json, statistics, sys
times = json.load(open(sys.argv[1]))
stats = {n: (statistics.mean(t), statistics.median(t)) for n, t in times.items()}
print(f"{'command':<11} {'mean ms':>9} {'median ms':>10}   ({sys.argv[2]} runs each)")
for n, (mean, median) in stats.items():
    print(f"{n:<11} {mean:>9.3f} {median:>10.3f}")
def ratio(a, b):
    if a in stats and b in stats:
        print(f"{a}/{b}: mean {stats[a][0] / stats[b][0]:.2f}x, median {stats[a][1] / stats[b][1]:.2f}x")
ratio("bwai", "true")
ratio("bwai-limits", "bwai")
ratio("bwai", "bwrap")
ratio("bwai", "bwrap-same")
PY

# ---------------------------------------------------------------- workload
# The sandbox's cost on real work: the same syscall-heavy jobs outside, in
# bwai, and in bwai with every limit on, run interleaved (outside, bwai,
# bwai-limits, outside, ...) after a warm-up round, BENCH_WORKLOAD_RUNS
# times (default 10). Inside times include bwai's start-up. Target: within
# 5% of outside.
#   find-cat  find /usr | head -n 20000 | xargs cat: getdents, openat, read,
#             close on 20000 files (every open checked by Landlock, every
#             syscall by seccomp)
#   cc        a small C project (40 files) compiled and linked: fork, exec,
#             mmap, many small reads
workload_runs=${BENCH_WORKLOAD_RUNS:-10}
mkdir cproj
for i in $(seq 1 40); do
    cat > "cproj/m$i.c" <<C
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int f$i(int n) { char b[64]; int s = 0; for (int k = 0; k < n; k++) { snprintf(b, sizeof b, "%d", k * $i); s += (int)strlen(b); } return s; }
C
done
{
    echo 'int main(void) { int s = 0;'
    for i in $(seq 1 40); do echo "extern int f$i(int); s += f$i(10);"; done
    echo 'return s == 0; }'
} > cproj/main.c
find_cat='find /usr -type f -print0 2>/dev/null | head -z -n 20000 | xargs -0 cat >/dev/null 2>&1; true'
cc_build='cd cproj && rm -f ./*.o prog && for f in ./*.c; do cc -O1 -c "$f" || exit 1; done && cc -o prog ./*.o && ./prog'

echo >&2
echo "workload: ${workload_runs} interleaved runs each (plus one warm-up round)" >&2
python3 - "$workload_runs" "$bwai" "$limit_flags" "find-cat" "$find_cat" "cc" "$cc_build" <<'PY'
import os, shlex, statistics, subprocess, sys, time
runs, bwai, limit_flags = int(sys.argv[1]), sys.argv[2], shlex.split(sys.argv[3])
jobs = list(zip(sys.argv[4::2], sys.argv[5::2]))
variants = [
    ("outside", lambda w: ["bash", "-c", w]),
    ("bwai", lambda w: [bwai, "-q", "--", "bash", "-c", w]),
    ("bwai-limits", lambda w: [bwai, "-q", *limit_flags, "--", "bash", "-c", w]),
]
print(f"{'workload':<9} {'variant':<12} {'mean s':>8} {'median s':>9}   ({runs} runs each)")
for job, script in jobs:
    times = {v: [] for v, _ in variants}
    for i in range(runs + 1):  # round 0 warms the page cache
        for name, argv in variants:
            t0 = time.perf_counter()
            r = subprocess.run(argv(script), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            dt = time.perf_counter() - t0
            if r.returncode != 0:
                sys.exit(f"{job}/{name} failed ({r.returncode}): {r.stderr.decode()[-500:]}")
            if i > 0:
                times[name].append(dt)
    stats = {n: (statistics.mean(t), statistics.median(t)) for n, t in times.items()}
    for n, (mean, median) in stats.items():
        print(f"{job:<9} {n:<12} {mean:>8.3f} {median:>9.3f}")
    for n in ("bwai", "bwai-limits"):
        m, md = stats[n][0] / stats["outside"][0], stats[n][1] / stats["outside"][1]
        verdict = "ok" if md <= 1.05 else "OVER the 5% target"
        print(f"{job:<9} {n}/outside: mean {m:.3f}x, median {md:.3f}x  ({verdict})")
PY
