//! Shared helpers for the integration tests: run the real `bwai` binary on a
//! fake home full of secrets, in each mode, and look at what got through.
//!
//! A test reads like the threat model: one attack, run in every mode, with
//! each mode's expectation written out (an exhaustive `match` keeps a new mode
//! from being forgotten):
//!
//! ```ignore
//! mod common;
//! use common::*;
//!
//! #[test]
//! fn ssh_key_is_not_readable() {
//!     for mode in all_modes() {
//!         let env = Env::new();
//!         let out = run(env.attack(mode, &["read", env.ssh_key().to_str().unwrap()]));
//!         match mode {
//!             Mode::Full | Mode::NoLandlock => out.expect_denied(&["ENOENT"]),
//!             Mode::NoUserns => out.expect_denied(&["EACCES"]),
//!         }
//!     }
//! }
//! ```
//!
//! Environment variables: `BWAI_BIN` (the binary under test), `BWAI_HELPERS`
//! (the directory holding the `attack`, `nouserns` and `nolandlock` helpers),
//! `BWAI_TEST_DIR` (where fake homes are created, default the temp dir),
//! `BWAI_MUST_WORK=1` (a missing kernel feature fails the test instead of
//! skipping it: CI sets it).

#![allow(dead_code)]

use std::borrow::BorrowMut;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::libc;

/// How long a sandboxed command may run before the harness kills it and the
/// test fails: a hang must never hang CI.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Content of the fake `~/.ssh/id_rsa`.
pub const SSH_KEY_SECRET: &str = "SECRET-SSH-KEY";
/// Content marker of the fake `~/.aws/credentials`.
pub const AWS_SECRET: &str = "SECRET-AWS-KEY";
/// Content marker of the fake `~/.bash_history`.
pub const HISTORY_SECRET: &str = "SECRET-HISTORY";
/// Content of `~/Projects/other/secret.txt` (another project).
pub const OTHER_PROJECT_SECRET: &str = "SECRET-OTHER-PROJECT";

// ---------------------------------------------------------------- binaries

/// The bwai binary under test: `$BWAI_BIN`, else the one cargo built.
pub fn bwai_bin() -> PathBuf {
    match std::env::var_os("BWAI_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_bwai")),
    }
}

/// A helper program from `examples/`: `$BWAI_HELPERS/NAME`, else
/// `target/<profile>/examples/NAME` next to this test executable
/// (`target/<profile>/deps/TEST-HASH`). `cargo test` builds the examples.
pub fn helper(name: &str) -> PathBuf {
    let dir = match std::env::var_os("BWAI_HELPERS") {
        Some(d) => PathBuf::from(d),
        None => {
            let exe = std::env::current_exe().expect("current_exe");
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("test executable lives in target/<profile>/deps");
            profile_dir.join("examples")
        }
    };
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "helper {} not found: build it with `cargo build --examples` or set BWAI_HELPERS",
        path.display()
    );
    path
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// True when CI asked that every layer really works (`BWAI_MUST_WORK=1`).
pub fn must_work() -> bool {
    std::env::var("BWAI_MUST_WORK").is_ok_and(|v| v == "1")
}

/// Call when the machine lacks what a test needs; the test then returns.
/// Under `BWAI_MUST_WORK=1` this fails the test instead: CI never skips.
pub fn skip(reason: &str) {
    assert!(!must_work(), "BWAI_MUST_WORK=1 but: {reason}");
    eprintln!("SKIPPED: {reason}");
}

/// Whether this machine lets us create a user namespace (checked with the
/// attack helper, outside any sandbox).
pub fn host_can_unshare_user() -> bool {
    run(Command::new(helper("attack")).arg("unshare-user")).code() == Some(0)
}

/// The Landlock ABI this kernel offers, if any.
pub fn host_landlock_abi() -> Option<u32> {
    let out = run(Command::new(helper("attack")).arg("landlock-probe"));
    out.first_line()
        .strip_prefix("ok abi ")?
        .trim()
        .parse()
        .ok()
}

// ---------------------------------------------------------------- modes

/// The ways the tests run bwai: on the real kernel, and with a kernel feature
/// taken away for real by a seccomp filter around bwai (see `examples/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `bwai ARGS`
    Full,
    /// `nouserns bwai ARGS`: user namespaces blocked as Docker's profile does.
    NoUserns,
    /// `nolandlock bwai ARGS`: the Landlock syscalls return ENOSYS.
    NoLandlock,
}

pub fn all_modes() -> [Mode; 3] {
    [Mode::Full, Mode::NoUserns, Mode::NoLandlock]
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::NoUserns => "no-userns",
            Mode::NoLandlock => "no-landlock",
        }
    }

    /// The helper that takes the feature away, if any.
    pub fn wrapper(self) -> Option<PathBuf> {
        match self {
            Mode::Full => None,
            Mode::NoUserns => Some(helper("nouserns")),
            Mode::NoLandlock => Some(helper("nolandlock")),
        }
    }

    /// A command running `program` in this mode (no cwd or environment set).
    pub fn command(self, program: &Path) -> Command {
        match self.wrapper() {
            None => Command::new(program),
            Some(w) => {
                let mut c = Command::new(w);
                c.arg(program);
                c
            }
        }
    }
}

// ---------------------------------------------------------------- temp dirs

/// A directory removed (with everything in it, read-only leftovers included)
/// when dropped.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A fresh directory (mode 0755) under `$BWAI_TEST_DIR` or the temp dir.
    pub fn new(prefix: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::var_os("BWAI_TEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        loop {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("{prefix}-{}-{n}-{nanos:x}", std::process::id()));
            match fs::create_dir(&path) {
                Ok(()) => {
                    set_mode(&path, 0o755);
                    return TempDir { path };
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create {}: {e}", path.display()),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        remove_tree(&self.path);
    }
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {:o} {}: {e}", mode, path.display()));
}

/// `rm -rf` that also copes with directories a test made read-only.
fn remove_tree(path: &Path) {
    if fs::remove_dir_all(path).is_ok() || !path.exists() {
        return;
    }
    make_dirs_writable(path);
    if let Err(e) = fs::remove_dir_all(path) {
        eprintln!("warning: cannot remove {}: {e}", path.display());
    }
}

fn make_dirs_writable(path: &Path) {
    // symlink_metadata: never follow a link out of the tree.
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(path) {
        for e in entries.flatten() {
            make_dirs_writable(&e.path());
        }
    }
}

// ---------------------------------------------------------------- the fake home

/// A fake home with secrets, a project to sandbox, and another project that
/// must stay out of reach:
///
/// ```text
/// ROOT/home/tester/                      HOME
///   .ssh/id_rsa                          "SECRET-SSH-KEY"
///   .aws/credentials                     contains "SECRET-AWS-KEY"
///   .bash_history                        contains "SECRET-HISTORY"
///   Projects/other/secret.txt            "SECRET-OTHER-PROJECT"
///   Projects/demo/                       the project (cwd of bwai)
///     README
///     .bwai-test/attack                  copy of the attack helper
/// ```
pub struct Env {
    pub root: TempDir,
    pub home: PathBuf,
    pub project: PathBuf,
    pub other_project: PathBuf,
    /// The attack helper, inside the project so the sandbox can run it.
    pub attack: PathBuf,
    /// The user name passed as USER/LOGNAME.
    pub user: String,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    pub fn new() -> Env {
        let root = TempDir::new("bwai-test");
        let home = root.path().join("home/tester");
        let project = home.join("Projects/demo");
        let other_project = home.join("Projects/other");

        write_file(&home.join(".ssh/id_rsa"), SSH_KEY_SECRET, 0o600);
        set_mode(&home.join(".ssh"), 0o700);
        write_file(
            &home.join(".aws/credentials"),
            &format!("[default]\naws_secret_access_key = {AWS_SECRET}\n"),
            0o600,
        );
        write_file(
            &home.join(".bash_history"),
            &format!("export TOKEN={HISTORY_SECRET}\n"),
            0o600,
        );
        write_file(
            &other_project.join("secret.txt"),
            OTHER_PROJECT_SECRET,
            0o644,
        );
        write_file(&project.join("README"), "demo project\n", 0o644);

        let attack = project.join(".bwai-test/attack");
        fs::create_dir_all(attack.parent().expect("has a parent")).expect("mkdir .bwai-test");
        fs::copy(helper("attack"), &attack).expect("copy the attack helper");
        set_mode(&attack, 0o755);

        let user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| "tester".to_string());
        Env {
            root,
            home,
            project,
            other_project,
            attack,
            user,
        }
    }

    pub fn ssh_key(&self) -> PathBuf {
        self.home.join(".ssh/id_rsa")
    }

    pub fn aws_credentials(&self) -> PathBuf {
        self.home.join(".aws/credentials")
    }

    pub fn bash_history(&self) -> PathBuf {
        self.home.join(".bash_history")
    }

    pub fn other_secret(&self) -> PathBuf {
        self.other_project.join("secret.txt")
    }

    /// Writes a file (creating its directories) under the project; `rel` is
    /// relative to the project. Returns the full path.
    pub fn project_file(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.project.join(rel);
        write_file(&p, content, 0o644);
        p
    }

    /// `bwai ARGS` in `mode`: cwd = the project, environment cleared except
    /// PATH (and RUST_LOG / RUST_BACKTRACE when set, for debugging), HOME =
    /// the fake home, USER/LOGNAME = the current user; stdin is /dev/null.
    pub fn bwai<S: AsRef<OsStr>>(&self, mode: Mode, args: &[S]) -> Command {
        let mut c = mode.command(&bwai_bin());
        c.args(args)
            .current_dir(&self.project)
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
            )
            .env("HOME", &self.home)
            .env("USER", &self.user)
            .env("LOGNAME", &self.user)
            .stdin(Stdio::null());
        for var in ["RUST_LOG", "RUST_BACKTRACE"] {
            if let Some(v) = std::env::var_os(var) {
                c.env(var, v);
            }
        }
        c
    }

    /// `bwai -- ATTACK ARGS` in `mode`.
    pub fn attack<S: AsRef<OsStr>>(&self, mode: Mode, args: &[S]) -> Command {
        self.attack_with(mode, &[] as &[&str], args)
    }

    /// `bwai BWAI_ARGS -- ATTACK ATTACK_ARGS` in `mode`.
    pub fn attack_with<S: AsRef<OsStr>, T: AsRef<OsStr>>(
        &self,
        mode: Mode,
        bwai_args: &[S],
        attack_args: &[T],
    ) -> Command {
        let mut c = self.bwai(mode, bwai_args);
        c.arg("--").arg(&self.attack).args(attack_args);
        c
    }
}

/// Writes `content` to `path` with `mode`, creating the parent directories.
pub fn write_file(path: &Path, content: &str, mode: u32) {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    }
    fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    set_mode(path, mode);
}

// ---------------------------------------------------------------- running

/// What a finished command did.
#[derive(Debug)]
pub struct RunOutput {
    /// The command line, for messages.
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The harness killed it (SIGKILL) at the timeout.
    pub timed_out: bool,
    /// Something still held stdout/stderr open after the command ended: a
    /// process outlived it (output read so far is kept).
    pub pipes_held_open: bool,
    pub duration: Duration,
}

/// What the attack helper's first line of output says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attack {
    /// `ok DETAIL`: the attempt succeeded.
    Ok(String),
    /// `denied ENAME (N)`.
    Denied { name: String, errno: i32 },
    /// `denied none DETAIL`: a probe found nothing.
    Nothing(String),
    /// Anything else (no output, a crash, bwai's own error...).
    Other(String),
}

impl RunOutput {
    /// The exit code, if the process exited (not killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The signal that killed it, if any.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    pub fn first_line(&self) -> &str {
        self.stdout.lines().next().unwrap_or("")
    }

    pub fn attack(&self) -> Attack {
        parse_attack(self.first_line())
    }

    /// Everything about the run, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "command: {}\nstatus: {:?} (code {:?}, signal {:?}){}{}\nduration: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command,
            self.status,
            self.code(),
            self.signal(),
            if self.timed_out { ", TIMED OUT" } else { "" },
            if self.pipes_held_open { ", pipes held open by a leftover process" } else { "" },
            self.duration,
            self.stdout,
            self.stderr
        )
    }

    /// Asserts the attack succeeded (`ok`, exit 0); returns the detail.
    pub fn expect_ok(&self) -> String {
        match self.attack() {
            Attack::Ok(detail) if self.code() == Some(0) => detail,
            _ => panic!("expected the attempt to succeed\n{}", self.describe()),
        }
    }

    /// Asserts the attack was refused with one of `errnos` (e.g. `["EPERM"]`)
    /// and attack's exit status 1.
    pub fn expect_denied(&self, errnos: &[&str]) {
        match self.attack() {
            Attack::Denied { name, .. }
                if errnos.contains(&name.as_str()) && self.code() == Some(1) => {}
            _ => panic!(
                "expected `denied` with one of {errnos:?}\n{}",
                self.describe()
            ),
        }
    }

    /// Asserts a probe found nothing (`denied none`, exit 1).
    pub fn expect_nothing(&self) {
        match self.attack() {
            Attack::Nothing(_) if self.code() == Some(1) => {}
            _ => panic!("expected `denied none`\n{}", self.describe()),
        }
    }

    /// Asserts bwai itself exited with `code`.
    pub fn expect_code(&self, code: i32) {
        assert_eq!(
            self.code(),
            Some(code),
            "unexpected exit status\n{}",
            self.describe()
        );
    }
}

pub fn parse_attack(line: &str) -> Attack {
    let line = line.trim_end();
    if line == "ok" {
        return Attack::Ok(String::new());
    }
    if let Some(detail) = line.strip_prefix("ok ") {
        return Attack::Ok(detail.to_string());
    }
    if line == "denied none" {
        return Attack::Nothing(String::new());
    }
    if let Some(detail) = line.strip_prefix("denied none ") {
        return Attack::Nothing(detail.to_string());
    }
    if let Some(rest) = line.strip_prefix("denied ") {
        let mut parts = rest.splitn(2, ' ');
        let name = parts.next().unwrap_or("").to_string();
        let errno = parts
            .next()
            .and_then(|n| n.trim().strip_prefix('('))
            .and_then(|n| n.strip_suffix(')'))
            .and_then(|n| n.parse().ok());
        if let Some(errno) = errno {
            return Attack::Denied { name, errno };
        }
    }
    Attack::Other(line.to_string())
}

/// Reads a pipe on a thread into a shared buffer, so what was read survives
/// a reader that never finishes.
struct Collector {
    buf: Arc<Mutex<Vec<u8>>>,
    thread: JoinHandle<()>,
}

impl Collector {
    fn start(pipe: Option<impl Read + Send + 'static>) -> Collector {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buf);
        let thread = std::thread::spawn(move || {
            let Some(mut pipe) = pipe else { return };
            let mut chunk = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("collector lock")
                    .extend_from_slice(&chunk[..n]);
            }
        });
        Collector { buf, thread }
    }

    fn done(&self) -> bool {
        self.thread.is_finished()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().expect("collector lock")).into_owned()
    }
}

/// Starts `cmd`. A program a test has just written may still be open for
/// writing in a child that another test thread forked before its exec
/// (ETXTBSY): that passes within moments, so it tries again briefly.
fn start_child(cmd: &mut Command, command: &str) -> Child {
    let mut attempts = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) && attempts < 50 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other.unwrap_or_else(|e| panic!("cannot start {command}: {e}")),
        }
    }
}

/// Runs `cmd` (stdout and stderr captured) with the default timeout; a
/// command still running then is killed and the test fails.
pub fn run(cmd: impl BorrowMut<Command>) -> RunOutput {
    let out = run_with_timeout(cmd, DEFAULT_TIMEOUT);
    assert!(
        !out.timed_out,
        "command hung and was killed\n{}",
        out.describe()
    );
    out
}

/// Runs `cmd` (stdout and stderr captured); kills it with SIGKILL after
/// `timeout` and says so in `timed_out` instead of failing.
pub fn run_with_timeout(mut cmd: impl BorrowMut<Command>, timeout: Duration) -> RunOutput {
    let cmd = cmd.borrow_mut();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let command = format!("{cmd:?}");
    let start = Instant::now();
    let mut child = start_child(cmd, &command);
    let out = Collector::start(child.stdout.take());
    let err = Collector::start(child.stderr.take());
    let (status, timed_out) = wait_deadline(&mut child, start + timeout);
    let duration = start.elapsed();
    // A process that outlived the command may hold the pipes: give the readers
    // a moment, then report it rather than hang.
    let grace = Instant::now() + Duration::from_secs(if timed_out { 1 } else { 3 });
    while !(out.done() && err.done()) && Instant::now() < grace {
        std::thread::sleep(Duration::from_millis(10));
    }
    RunOutput {
        command,
        status,
        stdout: out.text(),
        stderr: err.text(),
        timed_out,
        pipes_held_open: !(out.done() && err.done()),
        duration,
    }
}

/// Waits for `child` until `deadline`, then SIGKILLs it. Returns its status
/// and whether it had to be killed.
fn wait_deadline(child: &mut Child, deadline: Instant) -> (ExitStatus, bool) {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (status, false),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                return (child.wait().expect("wait after kill"), true);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("wait: {e}"),
        }
    }
}

/// Lets `fd` (an open descriptor of the test process) be inherited by the
/// command, e.g. to check that bwai closes what it was handed.
pub fn inherit_fd(cmd: &mut Command, fd: RawFd) {
    // SAFETY: the closure runs in the forked child before exec and only calls
    // fcntl, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags == -1 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

// ---------------------------------------------------------------- background

/// A command left running (e.g. bwai with a long payload) while the test does
/// something to it. Killed (SIGKILL) and reaped on drop.
pub struct Background {
    pub command: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Collector,
    status: Option<ExitStatus>,
}

/// Starts `cmd` with stdout read line by line and stderr captured.
pub fn spawn(mut cmd: impl BorrowMut<Command>) -> Background {
    let cmd = cmd.borrow_mut();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let command = format!("{cmd:?}");
    let mut child = start_child(cmd, &command);
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = Collector::start(child.stderr.take());
    Background {
        command,
        child,
        lines,
        stderr,
        status: None,
    }
}

impl Background {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The next line of stdout, or None at the timeout or end of output.
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Sends `sig` to the process itself (not to its children).
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig);
    }

    /// Waits up to `timeout` for the process to end.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_none() {
            let deadline = Instant::now() + timeout;
            while Instant::now() < deadline {
                if let Ok(Some(s)) = self.child.try_wait() {
                    self.status = Some(s);
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        self.status
    }

    /// What it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------- terminal

/// What a command did on a pseudo-terminal.
#[derive(Debug)]
pub struct PtyOutput {
    /// Everything read from the master: the command's output, and whatever
    /// the terminal echoed (including characters pushed with TIOCSTI).
    pub output: Vec<u8>,
    /// None only if it could not be reaped.
    pub status: Option<ExitStatus>,
    pub timed_out: bool,
}

impl PtyOutput {
    /// The output as text with the terminal's `\r\n` turned into `\n`.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).replace("\r\n", "\n")
    }

    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    pub fn describe(&self) -> String {
        format!(
            "status: {:?}{}\n--- terminal output ---\n{}",
            self.status,
            if self.timed_out { ", TIMED OUT" } else { "" },
            self.text()
        )
    }
}

/// Runs `cmd` on a fresh pseudo-terminal: the slave is its stdin, stdout and
/// stderr and its controlling terminal (new session + TIOCSCTTY). `input` is
/// typed into the terminal at the start. Reads the master until every slave
/// descriptor is closed, the command has ended (plus a short grace), or
/// `timeout` (then the command is SIGKILLed).
pub fn run_in_pty(mut cmd: impl BorrowMut<Command>, input: &[u8], timeout: Duration) -> PtyOutput {
    use nix::fcntl::OFlag;
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};

    // O_CLOEXEC on both ends, so other tests' children, spawned concurrently,
    // do not inherit them.
    let master =
        posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).expect("posix_openpt");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let slave_name = ptsname_r(&master).expect("ptsname_r");
    let slave: OwnedFd = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(&slave_name)
        .unwrap_or_else(|e| panic!("open {slave_name}: {e}"))
        .into();

    let cmd = cmd.borrow_mut();
    let dup = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup the pty slave"));
    cmd.stdin(dup(&slave))
        .stdout(dup(&slave))
        .stderr(dup(&slave));
    // SAFETY: runs in the forked child before exec: setsid and ioctl are
    // async-signal-safe; fd 0 is the slave by then (std sets up stdio first).
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 || libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    // Close every parent copy of the slave: the master reads EIO once the
    // command's side is all closed.
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    drop(slave);

    let mut master = master;
    if !input.is_empty() {
        master.write_all(input).expect("type into the pty");
    }
    let deadline = Instant::now() + timeout;
    let mut output = Vec::new();
    let mut exited_at: Option<Instant> = None;
    let mut timed_out = false;
    let mut chunk = [0u8; 4096];
    loop {
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, 20) };
        if ready > 0 {
            match master.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => output.extend_from_slice(&chunk[..n]),
                Err(e) if e.raw_os_error() == Some(libc::EIO) => break, // all slaves closed
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read the pty master: {e}"),
            }
        }
        if exited_at.is_none() && matches!(child.try_wait(), Ok(Some(_))) {
            exited_at = Some(Instant::now());
        }
        if exited_at.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
            break; // something else holds the slave; the command is done
        }
        if Instant::now() >= deadline {
            timed_out = exited_at.is_none();
            break;
        }
    }
    if timed_out {
        let _ = child.kill();
    }
    // Reaps it, or returns what try_wait already collected.
    let status = child.wait().ok();
    PtyOutput {
        output,
        status,
        timed_out,
    }
}

// ---------------------------------------------------------------- processes

/// A string unique to this test run, to put on a command line (e.g. as the
/// attack helper's TAG argument) and find the processes later in /proc.
pub fn unique_marker(tag: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "bwai-mark-{tag}-{}-{}-{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Host pids of live processes whose command line contains `marker`
/// (zombies have an empty command line and do not count).
pub fn pids_with_marker(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let needle = marker.as_bytes();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmd| cmd.windows(needle.len()).any(|w| w == needle))
        })
        .collect();
    pids.sort_unstable();
    pids
}

pub fn count_procs_with_marker(marker: &str) -> usize {
    pids_with_marker(marker).len()
}

/// Waits until no process carries `marker`; false if some still do at the
/// timeout.
pub fn wait_no_procs_with_marker(marker: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if pids_with_marker(marker).is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until at least `n` processes carry `marker`; false at the timeout.
pub fn wait_procs_with_marker(marker: &str, n: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if pids_with_marker(marker).len() >= n {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Cleanup after a failed test: SIGKILL whatever still carries `marker`.
pub fn kill_procs_with_marker(marker: &str) {
    for pid in pids_with_marker(marker) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
