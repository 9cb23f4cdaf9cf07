//! The limits module on the real kernel (issue 7): each cgroup limit trips
//! and is counted, the cgroup is emptied and removed, each rlimit trips with
//! the signal or error that lets the report name it.
//!
//! cgroups need root here (or a delegated cgroup). Without one, the cgroup
//! tests say why and return; as root with `BWAI_MUST_WORK=1` they must run.
//! Every child is bounded in time and killed on failure; every cgroup is
//! removed by its Drop, also when an assertion fails.

use std::os::fd::OwnedFd;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bwai::layers::limits::*;
use nix::libc;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn must_work() -> bool {
    std::env::var("BWAI_MUST_WORK").is_ok_and(|v| v == "1")
}

/// A sandbox cgroup, or `None` (with the reason printed) where this user
/// cannot have one. Root under `BWAI_MUST_WORK=1` must get one.
fn cgroup_or_skip(limits: &Limits, test: &str) -> Option<Cgroup> {
    match Cgroup::create(limits, test) {
        Ok(Some(cg)) => Some(cg),
        Ok(None) => {
            let why = cgroup_available()
                .err()
                .unwrap_or_else(|| "Cgroup::create returned None".into());
            assert!(
                !(is_root() && must_work()),
                "BWAI_MUST_WORK=1 as root, but no sandbox cgroup: {why}"
            );
            eprintln!("SKIPPED {test}: no sandbox cgroup: {why}");
            None
        }
        Err(e) => panic!("creating the sandbox cgroup failed: {e}"),
    }
}

/// A forked child, killed and reaped when dropped (also on a failed assert).
struct Child {
    pid: Pid,
    go: Option<OwnedFd>,
    reaped: bool,
}

/// Fork a child that waits for `go()` before running `body` (as the sandbox's
/// init waits until it is in the cgroup), then exits with its result.
fn spawn_waiting(body: impl FnOnce() -> i32) -> Child {
    let (r, w) = nix::unistd::pipe().expect("pipe");
    // SAFETY: the child is a single-threaded copy; `body` makes syscalls and
    // at most allocates (glibc's malloc is reset for the child at fork), and
    // the child leaves with _exit, never returning into the test harness.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            drop(w);
            let mut byte = [0u8];
            let _ = nix::unistd::read(&r, &mut byte);
            let code = std::panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or(101);
            // SAFETY: leave without running the test harness's destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => Child {
            pid: child,
            go: Some(w),
            reaped: false,
        },
    }
}

/// Fork a child that runs `body` at once.
fn spawn(body: impl FnOnce() -> i32) -> Child {
    let mut c = spawn_waiting(body);
    c.go();
    c
}

impl Child {
    fn go(&mut self) {
        let w = self.go.take().expect("go once");
        nix::unistd::write(&w, b"g").expect("write go");
    }

    /// Wait for the child's end, at most `limit`; past it, kill and fail.
    fn wait(&mut self, limit: Duration) -> WaitStatus {
        let deadline = Instant::now() + limit;
        loop {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)).expect("waitpid") {
                WaitStatus::StillAlive if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                WaitStatus::StillAlive => {
                    panic!("child {} still running after {limit:?}", self.pid)
                }
                status => {
                    self.reaped = true;
                    return status;
                }
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

fn errno() -> i32 {
    nix::errno::Errno::last_raw()
}

/// Fork `n` children that sleep until killed; those that forked, and
/// whether a fork failed with EAGAIN.
fn fork_sleepers(n: usize) -> (Vec<i32>, bool) {
    let mut started = Vec::new();
    for _ in 0..n {
        // SAFETY: the child only calls pause() and _exit().
        match unsafe { libc::fork() } {
            0 => loop {
                // SAFETY: pause blocks until a signal; SIGKILL ends it.
                unsafe { libc::pause() };
            },
            -1 => return (started, errno() == libc::EAGAIN),
            pid => started.push(pid),
        }
    }
    (started, false)
}

/// The processes in the cgroup (on v1, the union over its hierarchies).
fn cgroup_procs(cg: &Cgroup) -> Vec<String> {
    let mut all: Vec<String> = cg
        .paths()
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    all.sort();
    all.dedup();
    all
}

fn sandbox_limits() -> Limits {
    Limits {
        memory: Some(parse_size("64M").unwrap()),
        pids: Some(16),
        ..Limits::default()
    }
}

// ---------------------------------------------------------------- cgroup

#[test]
fn memory_hog_is_oom_killed_and_counted() {
    let Some(cg) = cgroup_or_skip(&sandbox_limits(), "memory-hog") else {
        return;
    };
    let mut hog = spawn_waiting(|| {
        const SIZE: usize = 200 << 20;
        // SAFETY: a fresh anonymous private mapping, touched only here.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return 2;
        }
        for off in (0..SIZE).step_by(4096) {
            // SAFETY: off < SIZE, inside the mapping; volatile so the
            // touch is not optimised away.
            unsafe { std::ptr::write_volatile((p as *mut u8).add(off), 1) };
        }
        0 // survived: the limit did not hold
    });
    cg.add_pid(hog.pid.as_raw()).expect("add_pid");
    hog.go();
    let status = hog.wait(Duration::from_secs(60));
    assert_eq!(
        status,
        WaitStatus::Signaled(hog.pid, Signal::SIGKILL, false)
    );
    let events = cg.events();
    assert!(events.oom_kill >= 1, "{events:?}");
    assert_eq!(events.pids_max, 0, "{events:?}");
    if let Some(peak) = cg.peak_memory() {
        assert!(peak <= 64 << 20, "peak {peak} above the limit");
        assert!(
            peak > 16 << 20,
            "peak {peak}: the hog never ran in the cgroup"
        );
    }
}

#[test]
fn fork_bomb_hits_pids_max_and_kill_all_empties_the_cgroup() {
    let Some(cg) = cgroup_or_skip(&sandbox_limits(), "fork-bomb") else {
        return;
    };
    let (result_r, result_w) = nix::unistd::pipe().expect("pipe");
    let mut bomb = spawn_waiting(move || {
        let (started, eagain) = fork_sleepers(50);
        let _ = nix::unistd::write(&result_w, &[started.len() as u8, eagain as u8]);
        loop {
            // SAFETY: pause blocks until a signal; kill_all ends it.
            unsafe { libc::pause() };
        }
    });
    cg.add_pid(bomb.pid.as_raw()).expect("add_pid");
    bomb.go();
    let mut result = [0u8; 2];
    // The bomb writes as soon as its forks are done or refused.
    let n = nix::unistd::read(&result_r, &mut result).expect("read result");
    assert_eq!(n, 2);
    // pids.max 16 = the bomb itself and 15 sleepers; the 16th fork fails.
    assert_eq!((result[0], result[1]), (15, 1), "(started, EAGAIN)");
    let events = cg.events();
    assert!(events.pids_max >= 1, "{events:?}");
    assert_eq!(cgroup_procs(&cg).len(), 16);

    cg.kill_all();
    assert_eq!(cgroup_procs(&cg), Vec::<String>::new());
    let status = bomb.wait(Duration::from_secs(10));
    assert_eq!(
        status,
        WaitStatus::Signaled(bomb.pid, Signal::SIGKILL, false)
    );

    let dirs: Vec<PathBuf> = cg.paths().iter().map(|p| p.to_path_buf()).collect();
    drop(cg);
    for d in dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn drop_kills_what_is_left_and_removes_the_cgroup() {
    let Some(cg) = cgroup_or_skip(&Limits::default(), "leftover") else {
        return;
    };
    let mut sleeper = spawn_waiting(|| {
        // A grandchild too: it is not ours to wait for, the cgroup finds it.
        fork_sleepers(1);
        loop {
            // SAFETY: pause blocks until SIGKILL.
            unsafe { libc::pause() };
        }
    });
    cg.add_pid(sleeper.pid.as_raw()).expect("add_pid");
    sleeper.go();
    let deadline = Instant::now() + Duration::from_secs(10);
    while cgroup_procs(&cg).len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let dirs: Vec<PathBuf> = cg.paths().iter().map(|p| p.to_path_buf()).collect();
    drop(cg);
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    let status = sleeper.wait(Duration::from_secs(10));
    assert_eq!(
        status,
        WaitStatus::Signaled(sleeper.pid, Signal::SIGKILL, false)
    );
}

#[test]
fn concurrent_sandboxes_get_their_own_cgroups() {
    let Some(first) = cgroup_or_skip(&sandbox_limits(), "parallel") else {
        return;
    };
    let mut all = vec![first];
    for i in 1..5 {
        let cg = Cgroup::create(&sandbox_limits(), &format!("parallel{i}"));
        all.push(cg.expect("create").expect("a cgroup, as for the first"));
    }
    let mut paths: Vec<PathBuf> = all.iter().map(|c| c.path().to_path_buf()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), all.len());
    drop(all);
    for p in paths {
        assert!(!p.exists(), "{} left behind", p.display());
    }
}

#[test]
fn cgroup_availability_is_explained() {
    match cgroup_available() {
        Ok(()) => {
            // What doctor promises, create must deliver.
            let cg = Cgroup::create(&sandbox_limits(), "available");
            assert!(
                matches!(cg, Ok(Some(_))),
                "available, but create gave {cg:?}"
            );
        }
        Err(why) => {
            assert!(
                !(is_root() && must_work()),
                "BWAI_MUST_WORK=1 as root: {why}"
            );
            assert!(why.contains("cgroup"), "unhelpful reason: {why}");
            assert!(matches!(
                Cgroup::create(&sandbox_limits(), "unavailable"),
                Ok(None)
            ));
            eprintln!("no sandbox cgroup for this user (as expected unprivileged): {why}");
        }
    }
}

// ---------------------------------------------------------------- rlimits

/// Plan and apply `limits` as the payload would (no cgroup).
fn apply(limits: &Limits) -> i32 {
    match apply_rlimits(limits, &plan(limits, false)) {
        Ok(()) => 0,
        Err(_) => 100,
    }
}

#[test]
fn file_past_file_size_raises_sigxfsz_or_efbig() {
    let dir = std::env::temp_dir().join(format!("bwai-limits-fsize-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let limits = Limits {
        file_size: Some(4096),
        ..Limits::default()
    };
    let write_past = |path: PathBuf, ignore_signal: bool| {
        let limits = limits.clone();
        move || {
            if apply(&limits) != 0 {
                return 100;
            }
            if ignore_signal {
                // SAFETY: setting a disposition to SIG_IGN.
                unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
            }
            let Ok(f) = std::fs::File::create(&path) else {
                return 3;
            };
            let buf = [7u8; 8192];
            let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
            // SAFETY: buf is valid for its length; fd is open for writing.
            let first = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
            // SAFETY: as above.
            let second = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
            // A short write up to the limit, then EFBIG.
            if first == 4096 && second == -1 && errno() == libc::EFBIG {
                0
            } else {
                4
            }
        }
    };
    let status = spawn(write_past(dir.join("signal"), false)).wait(Duration::from_secs(10));
    assert!(
        matches!(status, WaitStatus::Signaled(_, Signal::SIGXFSZ, _)),
        "{status:?}"
    );
    let status = spawn(write_past(dir.join("errno"), true)).wait(Duration::from_secs(10));
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    assert_eq!(std::fs::metadata(dir.join("errno")).unwrap().len(), 4096);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn open_files_past_the_limit_are_emfile() {
    let limits = Limits {
        open_files: Some(16),
        ..Limits::default()
    };
    let status = spawn(move || {
        if apply(&limits) != 0 {
            return 100;
        }
        for _ in 0..32 {
            // SAFETY: a NUL-terminated path and flags.
            let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
            if fd == -1 {
                return if errno() == libc::EMFILE { 0 } else { 5 };
            }
            if fd >= 16 {
                return 6;
            }
        }
        7 // never refused
    })
    .wait(Duration::from_secs(10));
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
}

#[test]
fn busy_loop_past_cpu_time_is_killed_by_sigxcpu() {
    let limits = Limits {
        cpu_time: Some(Duration::from_secs(1)),
        ..Limits::default()
    };
    let started = Instant::now();
    let status = spawn(move || {
        if apply(&limits) != 0 {
            return 100;
        }
        // Bounded even if the limit fails: 1 s of CPU is at most a few s of
        // wall clock on a busy 2-core machine.
        let end = Instant::now() + Duration::from_secs(20);
        let mut x = 0u64;
        while Instant::now() < end {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        8 // survived
    })
    .wait(Duration::from_secs(30));
    assert!(
        matches!(status, WaitStatus::Signaled(_, Signal::SIGXCPU, _)),
        "{status:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn rlimits_cannot_be_raised_again() {
    let limits = Limits {
        open_files: Some(32),
        ..Limits::default()
    };
    let status = spawn(move || {
        if apply(&limits) != 0 {
            return 100;
        }
        // Root keeps CAP_SYS_RESOURCE here (the payload drops it); drop it
        // the way the payload does, by leaving uid 0 for good.
        if nix::unistd::geteuid().is_root() && drop_to_nobody().is_err() {
            return 9;
        }
        let raised = libc::rlimit {
            rlim_cur: 64,
            rlim_max: 64,
        };
        // SAFETY: a valid rlimit struct.
        let r = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) };
        if r == -1 && errno() == libc::EPERM {
            0
        } else {
            10
        }
    })
    .wait(Duration::from_secs(10));
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
}

#[test]
fn above_the_hard_limit_is_a_clear_error() {
    let limits = Limits {
        open_files: Some(u64::MAX - 1),
        ..Limits::default()
    };
    let (r, w) = nix::unistd::pipe().expect("pipe");
    let status = spawn(move || {
        if nix::unistd::geteuid().is_root() && drop_to_nobody().is_err() {
            return 9;
        }
        match apply_rlimits(&limits, &plan(&limits, false)) {
            Ok(()) => 11,
            Err(e) => {
                let _ = nix::unistd::write(&w, e.as_bytes());
                0
            }
        }
    })
    .wait(Duration::from_secs(10));
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    let mut buf = [0u8; 1024];
    let n = nix::unistd::read(&r, &mut buf).expect("read error");
    let msg = String::from_utf8_lossy(&buf[..n]);
    assert!(
        msg.contains("RLIMIT_NOFILE") && msg.contains("hard limit"),
        "{msg}"
    );
}

/// Without a cgroup, `pids` is RLIMIT_NPROC inside the sandbox's own user
/// namespace, where the kernel counts only that namespace's processes: the
/// user's other processes outside must not eat the sandbox's budget.
#[test]
fn pids_rlimit_counts_only_the_sandbox_in_a_user_namespace() {
    let status = spawn(|| {
        // Host root is exempt from RLIMIT_NPROC: test as an ordinary user.
        if nix::unistd::geteuid().is_root() && drop_to_nobody().is_err() {
            return 9;
        }
        // Ten processes of this user outside the sandbox, more than its limit.
        let (outside, _) = fork_sleepers(10);
        let mut inside = Vec::new();
        let code = (|| {
            if outside.len() != 10 {
                return 12;
            }
            // SAFETY: unshare with a flag; this child is single-threaded.
            if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
                return 200; // no user namespaces here
            }
            if !nproc_counts_only_the_sandbox(true) {
                return 201; // kernel before 5.14
            }
            let limits = Limits {
                pids: Some(8),
                ..Limits::default()
            };
            let means = Means {
                cgroup: false,
                nproc_per_sandbox: true,
            };
            let plan = plan_with(&limits, means);
            if plan[0].mechanism != Mechanism::Rlimit || apply_rlimits(&limits, &plan).is_err() {
                return 13;
            }
            let eagain;
            (inside, eagain) = fork_sleepers(20);
            if eagain {
                inside.len() as i32
            } else {
                14
            }
        })();
        // Our own children, inside and outside: kill and reap them.
        for pid in outside.into_iter().chain(inside) {
            // SAFETY: kill and waitpid on our own children.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        code
    })
    .wait(Duration::from_secs(20));
    match status {
        // Limit 8 = this process and 7 children, although 11 processes of
        // the same uid exist outside.
        WaitStatus::Exited(_, 7) => {}
        WaitStatus::Exited(_, code @ (200 | 201)) => {
            assert!(
                !must_work(),
                "BWAI_MUST_WORK=1 but user namespaces/NPROC ucounts missing ({code})"
            );
            eprintln!("SKIPPED: no user namespace or kernel < 5.14 ({code})");
        }
        other => panic!("expected 7 forks inside the namespace, got {other:?}"),
    }
}

/// Leave uid 0 for good, as the payload's dropped privileges would.
fn drop_to_nobody() -> Result<(), ()> {
    // SAFETY: plain id-changing syscalls.
    let ok = unsafe {
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setresgid(65534, 65534, 65534) == 0
            && libc::setresuid(65534, 65534, 65534) == 0
    };
    ok.then_some(()).ok_or(())
}
