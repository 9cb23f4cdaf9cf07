//! CI-runner mode (issue 7) through the real binary: each limit trips and is
//! named, the sandbox and every process in it are gone afterwards, many
//! sandboxes run side by side without touching each other, and hundreds of
//! runs leave nothing behind.
//!
//! Each test runs on the real kernel (`Mode::Full`) and in the Landlock +
//! seccomp fallback with user namespaces blocked (`Mode::NoUserns`, the
//! Docker / Kubernetes case). Which mechanism enforces a limit depends on
//! the user: root gets a cgroup; an unprivileged user without a delegated
//! cgroup gets rlimits (and pids only inside its own user namespace). The
//! expectation is worked out here, independently of bwai (`expected`), and
//! every test asserts the mechanism the report names.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const MODES: [Mode; 2] = [Mode::Full, Mode::NoUserns];

/// The leak count needs the process to itself: every other test holds this
/// shared, the leak test exclusively.
static ALONE: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    ALONE.read().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------- helpers

/// Whether this user can have a sandbox cgroup holding the memory
/// controller, checked without bwai: the directory of our own memory cgroup
/// (v1 hierarchy, or v2 with memory delegated) is writable.
fn cgroup_expected() -> bool {
    let text = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("").trim_start_matches('/'),
        );
        let dir = if controllers.split(',').any(|c| c == "memory") {
            Path::new("/sys/fs/cgroup/memory").join(path)
        } else if controllers.is_empty() {
            let d = Path::new("/sys/fs/cgroup").join(path);
            let delegated = fs::read_to_string(d.join("cgroup.controllers"))
                .unwrap_or_default()
                .split_whitespace()
                .any(|c| c == "memory");
            if !delegated {
                continue;
            }
            d
        } else {
            continue;
        };
        if dir.is_dir() && nix::unistd::access(&dir, nix::unistd::AccessFlags::W_OK).is_ok() {
            return true;
        }
    }
    false
}

/// The mechanism bwai must report for `limit` in `mode`, for this user.
fn expected(limit: &str, mode: Mode) -> &'static str {
    let cgroup = cgroup_expected();
    match limit {
        "timeout" => "supervisor",
        "memory" if cgroup => "cgroup",
        "memory" => "rlimit",
        "pids" if cgroup => "cgroup",
        // RLIMIT_NPROC counts per sandbox only in its own user namespace,
        // for a non-root user (kernel 5.14+; this suite's kernels are newer).
        "pids" if mode == Mode::Full && !is_root() => "rlimit",
        "pids" => "none",
        _ => "rlimit",
    }
}

/// The probe helper, copied into the project (the sandbox sees only that).
fn probe(env: &Env) -> PathBuf {
    let dst = env.project.join(".bwai-test/limitprobe");
    if !dst.exists() {
        fs::copy(helper("limitprobe"), &dst).expect("copy limitprobe");
    }
    dst
}

/// The parsed `--report` of a run.
struct Report(Value);

impl Report {
    fn read(path: &Path, out: &RunOutput) -> Report {
        let text = fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("no report at {}: {e}\n{}", path.display(), out.describe()));
        Report(serde_json::from_str(&text).expect("the report is JSON"))
    }

    fn tripped(&self) -> Option<&str> {
        self.0["limits"]["tripped"].as_str()
    }

    fn mechanism(&self, limit: &str) -> &str {
        self.0["limits"]["requested"]
            .as_array()
            .expect("limits.requested is a list")
            .iter()
            .find(|p| p["limit"] == limit)
            .and_then(|p| p["mechanism"].as_str())
            .unwrap_or_else(|| panic!("{limit} not in the report: {}", self.0["limits"]))
    }

    fn suspected(&self) -> Vec<&str> {
        self.0["limits"]["suspected"]
            .as_array()
            .expect("limits.suspected is a list")
            .iter()
            .filter_map(Value::as_str)
            .collect()
    }

    fn cgroup_paths(&self) -> Vec<PathBuf> {
        self.0["limits"]["cgroup"]["paths"]
            .as_array()
            .expect("limits.cgroup.paths is a list")
            .iter()
            .filter_map(Value::as_str)
            .map(PathBuf::from)
            .collect()
    }
}

/// One limited run of the probe: `bwai LIMITS --report R -- limitprobe ARGS MARKER`.
struct Run {
    out: RunOutput,
    report: Report,
    marker: String,
}

fn run_probe(env: &Env, mode: Mode, limits: &[&str], probe_args: &[&str], tag: &str) -> Run {
    let marker = unique_marker(tag);
    let report = env.root.path().join(format!("report-{marker}.json"));
    let mut cmd = env.bwai(mode, limits);
    cmd.arg("--report")
        .arg(&report)
        .arg("--")
        .arg(probe(env))
        .args(probe_args)
        .arg(&marker);
    let out = run(cmd);
    let report = Report::read(&report, &out);
    let want_mode = match mode {
        Mode::Full => "full",
        _ => "degraded",
    };
    assert_eq!(report.0["mode"], want_mode, "{}", out.describe());
    Run {
        out,
        report,
        marker,
    }
}

impl Run {
    /// Nothing of the sandbox is left: no process carries the marker, and
    /// the sandbox cgroup (if any) is gone.
    fn assert_all_gone(&self) {
        let gone = wait_no_procs_with_marker(&self.marker, Duration::from_secs(5));
        let left = pids_with_marker(&self.marker);
        kill_procs_with_marker(&self.marker);
        assert!(
            gone,
            "processes left behind: {left:?}\n{}",
            self.out.describe()
        );
        for p in self.report.cgroup_paths() {
            assert!(!p.exists(), "cgroup {} left behind", p.display());
        }
    }

    fn assert_mechanism(&self, limit: &str, mode: Mode) {
        assert_eq!(
            self.report.mechanism(limit),
            expected(limit, mode),
            "mechanism of {limit} in {} as uid {}\n{}",
            mode.name(),
            nix::unistd::getuid(),
            self.out.describe()
        );
    }
}

// ---------------------------------------------------------------- each limit

#[test]
fn memory_hog_is_stopped_and_named() {
    let _alone = shared();
    for mode in MODES {
        let env = Env::new();
        let r = run_probe(&env, mode, &["--memory", "64M"], &["memory", "256"], "mem");
        r.assert_mechanism("memory", mode);
        assert!(
            !r.out.stdout.contains("ok "),
            "the hog got all its memory\n{}",
            r.out.describe()
        );
        match r.report.mechanism("memory") {
            "cgroup" => {
                // The OOM killer ended it: SIGKILL, counted, named.
                r.out.expect_code(137);
                assert_eq!(r.report.tripped(), Some("memory"), "{}", r.out.describe());
                assert_eq!(r.report.0["exit"]["limit"], "memory");
                assert!(r.report.0["limits"]["events"]["oom_kill"].as_u64() >= Some(1));
                assert!(
                    r.out.stderr.contains("bwai: killed by memory limit (64M"),
                    "{}",
                    r.out.describe()
                );
                let peak = &r.report.0["limits"]["peak_memory"];
                assert_eq!(peak["scope"], "sandbox", "{peak}");
                assert!(peak["bytes"].as_u64() <= Some(64 << 20), "{peak}");
            }
            _ => {
                // RLIMIT_AS: the allocation is refused inside the command,
                // which bwai cannot see: named as suspected, not as tripped.
                assert!(
                    r.out.stdout.starts_with("denied ENOMEM"),
                    "{}",
                    r.out.describe()
                );
                r.out.expect_code(1);
                assert_eq!(r.report.tripped(), None);
                assert!(r.report.suspected().contains(&"memory"));
                assert!(
                    r.out.stderr.contains("may have hit a limit")
                        && r.out.stderr.contains("memory (64M, rlimit)"),
                    "{}",
                    r.out.describe()
                );
                assert_eq!(
                    r.report.0["limits"]["peak_memory"]["scope"],
                    "largest_process"
                );
            }
        }
        r.assert_all_gone();
    }
}

#[test]
fn fork_bomb_is_bounded_by_pids() {
    let _alone = shared();
    for mode in MODES {
        let env = Env::new();
        let r = run_probe(
            &env,
            mode,
            &["--pids", "16"],
            &["forks", "64", "30"],
            "forks",
        );
        r.assert_mechanism("pids", mode);
        match r.report.mechanism("pids") {
            "cgroup" => {
                assert!(
                    r.out.stdout.starts_with("denied EAGAIN after"),
                    "{}",
                    r.out.describe()
                );
                assert_eq!(r.report.tripped(), Some("pids"), "{}", r.out.describe());
                assert!(r.report.0["limits"]["events"]["pids_max"].as_u64() >= Some(1));
                assert!(
                    r.out.stderr.contains("bwai: pids limit reached (16"),
                    "{}",
                    r.out.describe()
                );
            }
            "rlimit" => {
                // RLIMIT_NPROC in the sandbox's own user namespace: refused
                // forks, no counter to read.
                assert!(
                    r.out.stdout.starts_with("denied EAGAIN after"),
                    "{}",
                    r.out.describe()
                );
                assert_eq!(r.report.tripped(), None);
                assert!(
                    r.report.suspected().contains(&"pids"),
                    "{}",
                    r.out.describe()
                );
            }
            _ => {
                // Nothing here can bound it: said loudly, and all forks ran.
                assert_eq!(r.out.first_line(), "ok 64 forks", "{}", r.out.describe());
                assert!(
                    r.out.stderr.contains("limit `pids` (16) is not enforced"),
                    "{}",
                    r.out.describe()
                );
            }
        }
        if let Some(n) = r
            .out
            .first_line()
            .strip_prefix("denied EAGAIN after ")
            .and_then(|s| s.strip_suffix(" forks"))
        {
            let n: u64 = n.parse().expect("a count");
            assert!(n < 16, "{n} forks under --pids 16\n{}", r.out.describe());
        }
        // The children sleep 30 s: they must have been ended with the sandbox.
        r.assert_all_gone();
    }
}

#[test]
fn busy_loop_past_cpu_time_is_killed_by_sigxcpu() {
    let _alone = shared();
    for mode in MODES {
        let env = Env::new();
        let r = run_probe(&env, mode, &["--cpu-time", "1"], &["spin"], "spin");
        r.assert_mechanism("cpu_time", mode);
        r.out.expect_code(128 + nix::libc::SIGXCPU);
        assert_eq!(r.report.tripped(), Some("cpu_time"), "{}", r.out.describe());
        assert_eq!(r.report.0["exit"]["signal"], nix::libc::SIGXCPU);
        assert!(
            r.out
                .stderr
                .contains("bwai: killed by cpu_time limit (1s, rlimit)"),
            "{}",
            r.out.describe()
        );
        r.assert_all_gone();
    }
}

#[test]
fn file_past_file_size_is_cut_by_sigxfsz() {
    let _alone = shared();
    for mode in MODES {
        let env = Env::new();
        let r = run_probe(
            &env,
            mode,
            &["--file-size", "1M"],
            &["write", "big.out", "4194304"],
            "fsize",
        );
        r.assert_mechanism("file_size", mode);
        r.out.expect_code(128 + nix::libc::SIGXFSZ);
        assert_eq!(
            r.report.tripped(),
            Some("file_size"),
            "{}",
            r.out.describe()
        );
        let len = fs::metadata(env.project.join("big.out"))
            .expect("the file")
            .len();
        assert_eq!(len, 1 << 20, "the file grew past the limit");
        assert!(
            r.out
                .stderr
                .contains("bwai: stopped by file_size limit (1M, rlimit)"),
            "{}",
            r.out.describe()
        );
        r.assert_all_gone();
    }
}

#[test]
fn sleep_past_timeout_kills_the_whole_sandbox() {
    let _alone = shared();
    for mode in MODES {
        let env = Env::new();
        let start = Instant::now();
        let r = run_probe(&env, mode, &["--timeout", "1s"], &["sleep", "30"], "sleep");
        let took = start.elapsed();
        r.assert_mechanism("timeout", mode);
        r.out.expect_code(124);
        assert_eq!(r.report.tripped(), Some("timeout"));
        assert_eq!(r.report.0["exit"]["code"], 124);
        assert_eq!(r.report.0["exit"]["limit"], "timeout");
        assert!(took < Duration::from_secs(10), "took {took:?}");
        assert!(
            r.out.stderr.contains("bwai: killed by timeout (1s)"),
            "{}",
            r.out.describe()
        );
        // The probe and the child it started are both gone.
        r.assert_all_gone();
    }
}

#[test]
fn timeout_in_a_shell_with_a_process_group_of_its_own_takes_everything() {
    let _alone = shared();
    // setsid'd and disowned children are not the command's process group:
    // the whole sandbox must go anyway.
    for mode in MODES {
        let env = Env::new();
        let marker = unique_marker("detach");
        let p = probe(&env);
        let script = format!(
            "setsid {p} sleep 60 {marker} & {p} sleep 60 {marker} & disown; exec {p} sleep 60 {marker}",
            p = p.display()
        );
        let out = run(env.bwai(mode, &["--timeout", "2s", "-c", &script]));
        out.expect_code(124);
        let gone = wait_no_procs_with_marker(&marker, Duration::from_secs(5));
        kill_procs_with_marker(&marker);
        assert!(gone, "{} left behind\n{}", mode.name(), out.describe());
    }
}

#[test]
fn open_files_is_a_hard_limit_inside() {
    let _alone = shared();
    for mode in MODES {
        let env = Env::new();
        let report = env.root.path().join("report.json");
        let out = run(env.bwai(
            mode,
            &[
                "--open-files",
                "40",
                "--report",
                report.to_str().unwrap(),
                "-c",
                "echo $(ulimit -Sn) $(ulimit -Hn); ulimit -n 100 2>/dev/null && echo raised; true",
            ],
        ));
        out.expect_code(0);
        assert_eq!(out.stdout.trim(), "40 40", "{}", out.describe());
        let r = Report::read(&report, &out);
        assert_eq!(r.mechanism("open_files"), expected("open_files", mode));
        assert_eq!(r.tripped(), None);
    }
}

#[test]
fn require_limits_refuses_when_a_limit_has_no_mechanism() {
    let _alone = shared();
    for mode in MODES {
        let env = Env::new();
        let flag = env.project.join("ran");
        let out = run(env.bwai(
            mode,
            &[
                "--require",
                "limits",
                "--pids",
                "32",
                "--memory",
                "128M",
                "--",
                "/usr/bin/touch",
                flag.to_str().unwrap(),
            ],
        ));
        if expected("pids", mode) == "none" {
            out.expect_code(125);
            assert!(!flag.exists(), "the command ran although refused");
            assert!(
                out.stderr
                    .contains("required layer `limits` is not in force")
                    && out.stderr.contains("`pids` (32)"),
                "{}",
                out.describe()
            );
        } else {
            out.expect_code(0);
            assert!(flag.exists());
        }
    }
}

#[test]
fn a_project_config_may_lower_a_limit_but_not_raise_it() {
    let _alone = shared();
    let env = Env::new();
    let user_cfg = env.root.path().join("user.json");
    write_file(&user_cfg, r#"{"limits": {"timeout": "20s"}}"#, 0o644);
    let cfg = user_cfg.to_str().unwrap();
    // Lower: the project's 1 s wins over the user's 20 s.
    env.project_file(".bwai.json", r#"{"limits": {"timeout": "1s"}}"#);
    let out = run(env.bwai(Mode::Full, &["--config", cfg, "--", "/bin/sleep", "10"]));
    out.expect_code(124);
    // Raise, or remove: refused, nothing runs.
    for text in [
        r#"{"limits": {"timeout": "1h"}}"#,
        r#"{"limits": {"timeout": null}}"#,
    ] {
        fs::remove_file(env.project.join(".bwai.json")).unwrap();
        env.project_file(".bwai.json", text);
        let out = run(env.bwai(Mode::Full, &["--config", cfg, "--", "/bin/true"]));
        out.expect_code(2);
        assert!(
            out.stderr
                .contains("would loosen the sandbox: limits.timeout"),
            "{}",
            out.describe()
        );
    }
}

// ---------------------------------------------------------------- non-interactive

#[test]
fn without_a_terminal_a_script_on_stdin_runs_in_its_own_session_without_prompt() {
    let _alone = shared();
    for mode in MODES {
        let env = Env::new();
        let mut cmd = env.bwai(mode, &[] as &[&str]);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start bwai");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            // $$ is the shell; field 6 of stat is its session: its own.
            stdin
                .write_all(b"echo $((6*7)); read -r _ _ _ _ _ sid _ < /proc/$$/stat; [ \"$sid\" = \"$$\" ] && echo own-session; exit 3\n")
                .unwrap();
        }
        let out = child.wait_with_output().expect("wait bwai");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
        assert_eq!(stdout, "42\nown-session\n", "{stderr}");
        assert!(
            !stderr.contains("[🫧]") && !stderr.contains("job control"),
            "{stderr}"
        );
        assert!(
            !stderr.contains('\x1b') && !stdout.contains('\x1b'),
            "colour codes: {stderr}"
        );
    }
}

#[test]
fn output_is_streamed_as_it_comes() {
    let _alone = shared();
    for mode in MODES {
        let env = Env::new();
        let mut bg = spawn(env.bwai(
            mode,
            &[
                "-q",
                "--timeout",
                "20s",
                "-c",
                "echo first; sleep 15; echo second",
            ],
        ));
        let first = bg.next_line(Duration::from_secs(8));
        assert_eq!(
            first.as_deref(),
            Some("first"),
            "{}: {}",
            mode.name(),
            bg.stderr()
        );
        // End it as CI does (SIGTERM is relayed; bwai cleans up).
        bg.signal(nix::sys::signal::Signal::SIGTERM);
        assert!(bg.wait_timeout(Duration::from_secs(10)).is_some());
    }
}

// ---------------------------------------------------------------- many at once

#[test]
fn twenty_concurrent_sandboxes_keep_to_their_own_tmp_and_limits() {
    let _alone = shared();
    for mode in MODES {
        let env = Env::new();
        let children: Vec<_> = (0..20)
            .map(|i| {
                // Every sandbox uses the same names in its /tmp: each must
                // see only its own files there.
                let script = format!(
                    "set -e; t=${{TMPDIR:-/tmp}}; \
                     for n in 1 2 3; do echo sandbox-{i}-$n > $t/mine-$n; done; \
                     echo {i} > out-{i}; sleep 0.5; \
                     mine=$(ls $t | grep '^mine-' | tr '\\n' ' '); \
                     [ \"$mine\" = 'mine-1 mine-2 mine-3 ' ] || {{ echo foreign files: $mine; exit 9; }}; \
                     for n in 1 2 3; do [ \"$(cat $t/mine-$n)\" = sandbox-{i}-$n ]; done; \
                     [ \"$(cat out-{i})\" = {i} ]; \
                     echo done-{i}"
                );
                let mut cmd = env.bwai(
                    mode,
                    &["-q", "--memory", "128M", "--pids", "64", "--timeout", "50s", "-c", &script],
                );
                cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
                (i, cmd.spawn().expect("start bwai"))
            })
            .collect();
        for (i, child) in children {
            let out = child.wait_with_output().expect("wait");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                (out.status.code(), stdout.trim()),
                (Some(0), format!("done-{i}").as_str()),
                "{} sandbox {i}: {}",
                mode.name(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for i in 0..20 {
            assert_eq!(
                fs::read_to_string(env.project.join(format!("out-{i}"))).unwrap(),
                format!("{i}\n")
            );
        }
    }
}

// ---------------------------------------------------------------- nothing left

/// What a run could leak, counted from outside.
#[derive(Debug, PartialEq, Eq)]
struct Leftovers {
    /// Live processes running the bwai binary under test.
    bwai_procs: usize,
    /// Lines of our mount table.
    mounts: usize,
    /// Our open descriptors.
    fds: usize,
    /// cgroups whose name carries the project's unique name.
    cgroups: usize,
    /// Entries in bwai's $TMPDIR (the fallback makes its private /tmp there).
    tmp_dirs: usize,
}

/// Directories under /sys/fs/cgroup whose name contains `hint`.
fn cgroups_named(hint: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::from("/sys/fs/cgroup")];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if e.file_name().to_string_lossy().contains(hint) {
                    found.push(e.path());
                }
                stack.push(e.path());
            }
        }
    }
    found
}

fn count_leftovers(hint: &str, tmp: &Path) -> Leftovers {
    let bin = fs::canonicalize(bwai_bin()).expect("bwai binary");
    let bwai_procs = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter(|e| fs::read_link(e.path().join("exe")).is_ok_and(|p| p == bin))
        .count();
    let mounts = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    let fds = fs::read_dir("/proc/self/fd").unwrap().count();
    let cgroups = cgroups_named(hint).len();
    let tmp_dirs = fs::read_dir(tmp).unwrap().count();
    Leftovers {
        bwai_procs,
        mounts,
        fds,
        cgroups,
        tmp_dirs,
    }
}

#[test]
fn five_hundred_runs_leave_no_process_mount_fd_or_cgroup() {
    let _alone = ALONE.write().unwrap_or_else(|e| e.into_inner());
    let env = Env::new();
    // A project with a name of its own: the sandbox cgroups carry it.
    let hint = format!("leak{}", std::process::id());
    let project = env.project.join(&hint);
    fs::create_dir(&project).unwrap();
    let tmp = env.root.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let before = count_leftovers(&hint, &tmp);
    let start = Instant::now();
    // 400 plain runs and 100 with every limit (a cgroup each, as root), and
    // a few in the fallback (a private /tmp directory each).
    for i in 0..500 {
        let mode = if i % 50 == 49 {
            Mode::NoUserns
        } else {
            Mode::Full
        };
        let limits: &[&str] = if i % 5 == 0 {
            &[
                "--memory",
                "256M",
                "--pids",
                "128",
                "--timeout",
                "30s",
                "--cpu-time",
                "30",
                "--file-size",
                "10M",
                "--open-files",
                "512",
            ]
        } else {
            &[]
        };
        let mut cmd = env.bwai(mode, &["-q"]);
        cmd.args(limits).current_dir(&project).env("TMPDIR", &tmp);
        let report = env.root.path().join("report.json");
        if i == 0 {
            cmd.arg("--report").arg(&report);
        }
        cmd.args(["--", "/bin/true"]);
        let out = run(cmd);
        assert_eq!(out.code(), Some(0), "run {i}\n{}", out.describe());
        if i == 0 {
            // The runs with limits really make (and must remove) a cgroup
            // where this user may have one.
            let r = Report::read(&report, &out);
            let paths = r.cgroup_paths();
            assert_eq!(!paths.is_empty(), cgroup_expected(), "{}", r.0["limits"]);
            assert!(paths.iter().all(|p| p.to_string_lossy().contains(&hint)));
        }
    }
    let took = start.elapsed();
    let after = count_leftovers(&hint, &tmp);
    assert_eq!(before, after, "500 runs in {took:?} left something behind");
    assert_eq!(after.bwai_procs, 0);
    eprintln!("500 runs in {took:?}: {after:?}");
    assert!(took < Duration::from_secs(60), "500 runs took {took:?}");
}

/// The same check for the sandbox's own processes: a command that leaves a
/// daemon behind does not outlive bwai, in either mode.
#[test]
fn a_daemon_left_by_the_command_does_not_outlive_bwai() {
    let _alone = shared();
    for mode in MODES {
        let env = Env::new();
        let marker = unique_marker("daemon");
        let p = probe(&env);
        let script = format!(
            "( setsid {} sleep 60 {marker} & ) ; echo started",
            p.display()
        );
        let out = run(env.bwai(mode, &["-c", &script]));
        out.expect_code(0);
        let gone = wait_no_procs_with_marker(&marker, Duration::from_secs(5));
        kill_procs_with_marker(&marker);
        assert!(gone, "{}: daemon survived\n{}", mode.name(), out.describe());
    }
}

#[test]
fn doctor_says_which_mechanism_limits_get_here() {
    let _alone = shared();
    let env = Env::new();
    let out = run(env.bwai(Mode::Full, &["doctor", "--json"]));
    let v: Value = serde_json::from_str(&out.stdout).expect("doctor JSON");
    let lim = &v["features"]["limits"];
    let want = if cgroup_expected() {
        "cgroup"
    } else {
        "rlimit"
    };
    assert_eq!(lim["mechanism"], want, "{lim:#}");
    assert_eq!(lim["cgroup"], want == "cgroup");
    // Without a cgroup, doctor says why and how to get one.
    assert_eq!(lim["reason"].is_string(), want == "rlimit", "{lim:#}");
    assert_eq!(lim["fix"].is_string(), want == "rlimit", "{lim:#}");
}

#[test]
fn the_command_cannot_lower_the_limits_of_processes_outside() {
    let _alone = shared();
    for mode in MODES {
        let env = Env::new();
        // A process of the same user, outside the sandbox.
        let mut outside = std::process::Command::new("/bin/sleep")
            .arg("60")
            .spawn()
            .expect("start sleep");
        let pid = outside.id();
        let out = run(env.bwai(
            mode,
            &[
                "--",
                "/usr/bin/prlimit",
                "--pid",
                &pid.to_string(),
                "--cpu=1:1",
                "--nofile=5:5",
            ],
        ));
        let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
        let _ = outside.kill();
        let _ = outside.wait();
        assert_ne!(
            out.code(),
            Some(0),
            "{}: prlimit succeeded\n{}",
            mode.name(),
            out.describe()
        );
        let cpu = limits
            .lines()
            .find(|l| l.starts_with("Max cpu time"))
            .unwrap_or("");
        assert!(
            cpu.contains("unlimited"),
            "{}: {cpu}\n{}",
            mode.name(),
            out.describe()
        );
    }
}

#[test]
fn the_cgroup_of_a_killed_bwai_is_removed_by_the_next_run() {
    let _alone = shared();
    let env = Env::new();
    let hint = format!("killed{}", std::process::id());
    let project = env.project.join(&hint);
    fs::create_dir(&project).unwrap();
    let marker = unique_marker("killed");
    // The probe inside this (sub)project: the sandbox shows only that.
    let p = project.join("limitprobe");
    fs::copy(probe(&env), &p).unwrap();
    let mut cmd = env.bwai(
        Mode::Full,
        &["-q", "--memory", "256M", "--timeout", "50s", "--"],
    );
    cmd.arg(&p)
        .args(["sleep", "40", &marker])
        .current_dir(&project);
    let mut bg = spawn(cmd);
    assert!(
        wait_procs_with_marker(&marker, 2, Duration::from_secs(10)),
        "{}",
        bg.stderr()
    );
    // SIGKILL: bwai cannot clean up; its sandbox dies with it (pdeathsig).
    bg.signal(nix::sys::signal::Signal::SIGKILL);
    assert!(bg.wait_timeout(Duration::from_secs(5)).is_some());
    assert!(
        wait_no_procs_with_marker(&marker, Duration::from_secs(5)),
        "the sandbox outlived bwai"
    );
    let left = cgroups_named(&hint);
    assert_eq!(!left.is_empty(), cgroup_expected(), "{left:?}");
    // The next run with a limit, from any project, removes them.
    let out = run(env.bwai(Mode::Full, &["-q", "--pids", "64", "--", "/bin/true"]));
    out.expect_code(0);
    assert_eq!(cgroups_named(&hint), Vec::<PathBuf>::new());
}
