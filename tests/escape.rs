//! The escape-resistance battery (issue 4): one test per attack class, each
//! running the real binary with a payload that tries to break out, in every
//! mode (full; user namespaces blocked; Landlock missing), with what each mode
//! must answer written out. Where the attack needs a target outside the
//! sandbox (a process, a socket, an IPC object, a file in /dev/shm), the test
//! creates it on the host, checks from the host that it is reachable (the
//! control: the test can fail), and removes it on drop.
//!
//! What tests/sandbox.rs and tests/layers.rs already prove (hidden home files,
//! read-only /usr, the seccomp deny list, the terminal, foreign ABIs,
//! capabilities, setuid, inherited fds, killing bwai with children, the
//! environment allow-list) is not repeated here.

mod common;

use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

// ---------------------------------------------------------------- helpers

fn p(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// Asserts the attack was refused with one of `errnos` (exit 1); `case`
/// names the mode and attempt in the failure message.
fn denied(out: &RunOutput, case: &str, errnos: &[&str]) {
    let refused =
        matches!(out.attack(), Attack::Denied { name, .. } if errnos.contains(&name.as_str()));
    assert!(
        refused && out.code() == Some(1),
        "{case}: expected `denied` with one of {errnos:?}\n{}",
        out.describe()
    );
}

/// Asserts the attempt succeeded (`ok`, exit 0); returns the detail.
fn succeeded(out: &RunOutput, case: &str) -> String {
    match out.attack() {
        Attack::Ok(detail) if out.code() == Some(0) => detail,
        _ => panic!("{case}: expected `ok`\n{}", out.describe()),
    }
}

/// `attack ARGS` run directly on the host, from `cwd`: the controls.
fn host_attack(cwd: &Path, args: &[&str]) -> RunOutput {
    run(Command::new(helper("attack"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null()))
}

fn net_none(env: &Env, mode: Mode, args: &[&str]) -> RunOutput {
    run(env.attack_with(mode, &["--net", "none"], args))
}

/// SIGKILLs every process carrying the marker when dropped: no test leaves
/// a process behind on the host, even when it fails half-way.
struct MarkerGuard(String);

impl Drop for MarkerGuard {
    fn drop(&mut self) {
        kill_procs_with_marker(&self.0);
    }
}

/// A process outside any sandbox, `attack sleep 60 MARKER`, running in the
/// other project with a secret in its environment. SIGKILLed on drop.
struct HostProcess {
    bg: Background,
    marker: String,
    secret: String,
    _guard: MarkerGuard,
}

impl HostProcess {
    fn start(env: &Env) -> HostProcess {
        let marker = unique_marker("outside");
        let secret = unique_marker("outside-environ-secret");
        let mut cmd = Command::new(helper("attack"));
        cmd.args(["sleep", "60", &marker])
            .current_dir(&env.other_project)
            .env("BWAI_TEST_HOST_SECRET", &secret)
            .stdin(Stdio::null());
        // Its own session: a process of the user that no probe skips as
        // "the same session as me".
        // SAFETY: runs in the forked child before exec; setsid is
        // async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        let bg = spawn(cmd);
        let guard = MarkerGuard(marker.clone());
        assert!(
            wait_procs_with_marker(&marker, 1, Duration::from_secs(10)),
            "the host process did not start: {}",
            bg.stderr()
        );
        // In a pid namespace the sandbox's own pids are 1, 2, 3...: a host pid
        // this small could be mistaken for one of them.
        assert!(
            bg.pid() > 16,
            "host pid {} is too small to tell apart",
            bg.pid()
        );
        HostProcess {
            bg,
            marker,
            secret,
            _guard: guard,
        }
    }

    fn pid(&self) -> i32 {
        self.bg.pid()
    }

    fn alive(&self) -> bool {
        pids_with_marker(&self.marker) == vec![self.pid()]
    }
}

/// A System V key unique to this test process.
fn unique_ipc_key() -> i32 {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) as i32 & 0xff;
    0x2b00_0000 | ((std::process::id() as i32 & 0xffff) << 8) | n
}

// ---------------------------------------------------------------- reading hidden host files

#[test]
fn dotdot_traversal_from_the_project_reaches_nothing() {
    let env = Env::new();
    std::os::unix::fs::symlink("../..", env.project.join("up")).unwrap();
    let project_dotdot = format!("{}/../../.ssh/id_rsa", p(&env.project));
    let paths: [&str; 7] = [
        "../../.ssh/id_rsa",
        &project_dotdot,
        "../../.aws/credentials",
        "../other/secret.txt",
        // Through a symlink planted in the project.
        "up/.ssh/id_rsa",
        "up/Projects/other/secret.txt",
        "/proc/self/cwd/../../.bash_history",
    ];
    // Control: from the project on the host, every path reaches a secret.
    for path in paths {
        let out = host_attack(&env.project, &["read", path]);
        assert!(
            succeeded(&out, &format!("control {path}")).contains("SECRET"),
            "{}",
            out.describe()
        );
    }
    for mode in all_modes() {
        for path in paths {
            let out = run(env.attack(mode, &["read", path]));
            let case = format!("{mode:?} read {path}");
            match mode {
                // `..` of the project is the sandbox's empty home.
                Mode::Full | Mode::NoLandlock => denied(&out, &case, &["ENOENT"]),
                // `..` is the real home, but Landlock judges the file reached.
                Mode::NoUserns => denied(&out, &case, &["EACCES"]),
            }
            assert!(!out.stdout.contains("SECRET"), "{case}\n{}", out.describe());
        }
        let out = run(env.attack(mode, &["readdir", "../.."]));
        let case = format!("{mode:?} readdir ../..");
        match mode {
            Mode::Full | Mode::NoLandlock => {
                let listing = succeeded(&out, &case);
                for name in [".ssh", ".aws", ".bash_history"] {
                    assert!(
                        !listing.contains(name),
                        "{case}: {name}\n{}",
                        out.describe()
                    );
                }
            }
            Mode::NoUserns => denied(&out, &case, &["EACCES"]),
        }
    }
}

#[test]
fn proc_root_and_cwd_links_reach_no_host_file() {
    let env = Env::new();
    let via_init_root = format!("/proc/1/root{}", p(&env.ssh_key()));
    let via_init_root_other = format!("/proc/1/root{}", p(&env.other_secret()));
    // init's cwd is `/` (inside and on the host).
    let via_init_cwd = format!("/proc/1/cwd{}", p(&env.ssh_key()));
    let via_self_root = format!("/proc/self/root{}", p(&env.ssh_key()));
    // Control: on the host, the /proc/self/root form of the path is valid.
    let out = host_attack(&env.project, &["read", &via_self_root]);
    assert!(succeeded(&out, "control").contains(SSH_KEY_SECRET));
    for mode in all_modes() {
        for path in [&via_init_root, &via_init_root_other, &via_init_cwd] {
            let out = run(env.attack(mode, &["read", path]));
            let case = format!("{mode:?} read {path}");
            match mode {
                // pid 1 is the sandbox's own init: not dumpable, so its
                // root and cwd links are closed (and lead into the sandbox's
                // view anyway).
                Mode::Full | Mode::NoLandlock => denied(&out, &case, &["EACCES"]),
                // pid 1 is the host's init: Landlock forbids ptrace-class
                // access to any process outside the sandbox's domain.
                Mode::NoUserns => denied(&out, &case, &["EACCES"]),
            }
            assert!(!out.stdout.contains("SECRET"), "{case}\n{}", out.describe());
        }
        let out = run(env.attack(mode, &["read", &via_self_root]));
        let case = format!("{mode:?} read {via_self_root}");
        match mode {
            Mode::Full | Mode::NoLandlock => denied(&out, &case, &["ENOENT"]),
            Mode::NoUserns => denied(&out, &case, &["EACCES"]),
        }
    }
}

#[test]
fn proc_of_a_process_outside_is_out_of_reach() {
    let env = Env::new();
    let host = HostProcess::start(&env);
    let pid = host.pid();
    // Control: from the host, the process's environment and cwd are readable.
    let environ = fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(String::from_utf8_lossy(&environ).contains(&host.secret));
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        env.other_project
    );

    let targets = [
        format!("/proc/{pid}/environ"),
        format!("/proc/{pid}/cwd/secret.txt"),
        format!("/proc/{pid}/root{}", p(&env.ssh_key())),
        format!("/proc/{pid}/maps"),
    ];
    for mode in all_modes() {
        for target in &targets {
            let out = run(env.attack(mode, &["read", target]));
            let case = format!("{mode:?} read {target}");
            match mode {
                // The host pid does not exist in the sandbox's pid namespace.
                Mode::Full | Mode::NoLandlock => denied(&out, &case, &["ENOENT"]),
                // Visible, but Landlock refuses ptrace-class access outside.
                Mode::NoUserns => denied(&out, &case, &["EACCES"]),
            }
            assert!(
                !out.stdout.contains(&host.secret) && !out.stdout.contains("SECRET"),
                "{case}\n{}",
                out.describe()
            );
        }
        let link = format!("/proc/{pid}/cwd");
        let out = run(env.attack(mode, &["readlink", &link]));
        let case = format!("{mode:?} readlink {link}");
        match mode {
            Mode::Full | Mode::NoLandlock => denied(&out, &case, &["ENOENT"]),
            Mode::NoUserns => denied(&out, &case, &["EACCES"]),
        }
        let cmdline = format!("/proc/{pid}/cmdline");
        let out = run(env.attack(mode, &["read", &cmdline]));
        let case = format!("{mode:?} read {cmdline}");
        match mode {
            Mode::Full | Mode::NoLandlock => denied(&out, &case, &["ENOENT"]),
            // Documented (SECURITY.md, no user namespaces): other processes
            // are visible in /proc, their command lines too.
            Mode::NoUserns => {
                assert!(succeeded(&out, &case).contains(&host.marker));
            }
        }
    }
    assert!(host.alive(), "the host process was disturbed");
}

#[test]
fn mountinfo_reveals_no_hidden_path() {
    let env = Env::new();
    let mut hidden = vec![
        p(&env.home.join(".ssh")).to_string(),
        p(&env.home.join(".aws")).to_string(),
        p(&env.bash_history()).to_string(),
        p(&env.other_project).to_string(),
    ];
    // The real home of whoever runs the tests, unless the fake one is in it.
    if let Some(real) = std::env::var_os("HOME").map(PathBuf::from) {
        if real != Path::new("/") && !env.root.path().starts_with(&real) {
            hidden.push(p(&real).to_string());
        }
    }
    // What a namespace sandbox may mount: the system trees, its own /tmp,
    // /dev, /proc and the home (the project and listed paths inside it).
    let home = p(&env.home).to_string();
    let allowed = [
        "/usr",
        "/bin",
        "/sbin",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/opt",
        "/nix",
        "/etc",
        "/tmp",
        "/var/tmp",
        "/dev",
        "/proc",
        home.as_str(),
    ];
    for mode in all_modes() {
        let out = run(env.bwai(mode, &["-q", "--", "cat", "/proc/self/mountinfo"]));
        out.expect_code(0);
        for h in &hidden {
            assert!(
                !out.stdout.contains(h.as_str()),
                "{mode:?}: mountinfo names {h}\n{}",
                out.describe()
            );
        }
        match mode {
            Mode::Full | Mode::NoLandlock => {
                for line in out.stdout.lines() {
                    let mount_point = line.split(' ').nth(4).unwrap_or("");
                    let expected = mount_point == "/"
                        || allowed
                            .iter()
                            .any(|a| Path::new(mount_point).starts_with(a));
                    assert!(
                        expected,
                        "{mode:?}: unexpected mount {mount_point}\n{}",
                        out.describe()
                    );
                }
            }
            // No mount namespace: this is the host's own mount table
            // (documented: without namespaces files are denied, not absent).
            // It names mount points only: the hidden paths are not among them.
            Mode::NoUserns => {}
        }
    }
}

#[test]
fn hidden_file_is_absent_or_only_its_existence_shows() {
    let env = Env::new();
    let key = p(&env.ssh_key()).to_string();
    let ssh_dir = p(&env.home.join(".ssh")).to_string();
    for mode in all_modes() {
        let out = run(env.attack(mode, &["stat", &key]));
        let case = format!("{mode:?} stat {key}");
        match mode {
            Mode::Full | Mode::NoLandlock => denied(&out, &case, &["ENOENT"]),
            // Documented (SECURITY.md): without namespaces files are denied,
            // not absent; Landlock does not govern metadata, so a path one
            // guesses shows that it exists (type, size, owner, times)...
            Mode::NoUserns => {
                assert!(succeeded(&out, &case).starts_with("type=file"));
            }
        }
        // ...but its content and the names next to it do not.
        for args in [["read", key.as_str()], ["readdir", ssh_dir.as_str()]] {
            let out = run(env.attack(mode, &args));
            let case = format!("{mode:?} {args:?}");
            match mode {
                Mode::Full | Mode::NoLandlock => denied(&out, &case, &["ENOENT"]),
                Mode::NoUserns => denied(&out, &case, &["EACCES"]),
            }
            assert!(!out.stdout.contains(SSH_KEY_SECRET) && !out.stdout.contains("id_rsa"));
        }
    }
}

#[test]
fn sys_is_absent_or_denied() {
    let env = Env::new();
    if !Path::new("/sys/class").is_dir() {
        return skip("no /sys on this host");
    }
    // Control: readable on the host.
    succeeded(
        &host_attack(&env.project, &["readdir", "/sys/class"]),
        "control",
    );
    for mode in all_modes() {
        for args in [
            ["readdir", "/sys"],
            ["readdir", "/sys/class"],
            ["readdir", "/sys/fs/cgroup"],
            ["read", "/sys/devices/system/cpu/online"],
        ] {
            let out = run(env.attack(mode, &args));
            let case = format!("{mode:?} {args:?}");
            match mode {
                Mode::Full | Mode::NoLandlock => denied(&out, &case, &["ENOENT"]),
                Mode::NoUserns => denied(&out, &case, &["EACCES"]),
            }
        }
        let out = run(env.attack(mode, &["stat", "/sys/kernel"]));
        let case = format!("{mode:?} stat /sys/kernel");
        match mode {
            Mode::Full | Mode::NoLandlock => denied(&out, &case, &["ENOENT"]),
            // Documented: without namespaces paths are denied, not absent;
            // Landlock does not govern metadata, so /sys is seen to exist.
            Mode::NoUserns => {
                succeeded(&out, &case);
            }
        }
    }
}

// ---------------------------------------------------------------- writing outside the project

#[test]
fn symlink_planted_in_the_project_writes_nothing_outside() {
    let env = Env::new();
    let bashrc = env.home.join(".bashrc");
    write_file(&bashrc, "host bashrc\n", 0o644);
    let authorized_keys = env.home.join(".ssh/authorized_keys");
    let planted = env.other_project.join("planted");
    std::os::unix::fs::symlink(&bashrc, env.project.join("rc-link")).unwrap();
    std::os::unix::fs::symlink(env.home.join(".ssh"), env.project.join("ssh-link")).unwrap();
    std::os::unix::fs::symlink(&env.other_project, env.project.join("other-link")).unwrap();
    // Control: on the host the links lead where they say.
    let out = host_attack(&env.project, &["read", "rc-link"]);
    assert!(succeeded(&out, "control").contains("host bashrc"));

    for mode in all_modes() {
        for args in [
            ["append", "rc-link"],
            ["truncate", "rc-link"],
            ["write", "ssh-link/authorized_keys"],
            ["write", "other-link/planted"],
            ["append", "other-link/secret.txt"],
        ] {
            let out = run(env.attack(mode, &args));
            let case = format!("{mode:?} {args:?}");
            match mode {
                // The targets are absent from the sandbox's view.
                Mode::Full | Mode::NoLandlock => denied(&out, &case, &["ENOENT"]),
                // Landlock judges the file the link resolves to.
                Mode::NoUserns => denied(&out, &case, &["EACCES"]),
            }
        }
        // Creating through the link: in the namespace modes the link leads
        // into the sandbox's own empty tmpfs home, thrown away at the end.
        let out = run(env.attack(mode, &["write", "rc-link"]));
        let case = format!("{mode:?} write rc-link");
        match mode {
            Mode::Full | Mode::NoLandlock => {
                succeeded(&out, &case);
            }
            Mode::NoUserns => denied(&out, &case, &["EACCES"]),
        }
        assert_eq!(
            fs::read_to_string(&bashrc).unwrap(),
            "host bashrc\n",
            "{mode:?}"
        );
        assert!(!authorized_keys.exists(), "{mode:?}");
        assert!(!planted.exists(), "{mode:?}");
        assert_eq!(
            fs::read_to_string(env.other_secret()).unwrap(),
            OTHER_PROJECT_SECRET,
            "{mode:?}"
        );
    }
}

#[test]
fn hard_links_and_renames_across_the_project_boundary_fail() {
    // layers.rs covers linking ~/.ssh/id_rsa in and renaming out to $HOME
    // (full and no-userns); here: a writable outside file (a shell rc) and
    // the other project, in every mode.
    let env = Env::new();
    let bashrc = env.home.join(".bashrc");
    write_file(&bashrc, "host bashrc\n", 0o644);
    let moveme = env.project_file("moveme", "data");
    let readme = env.project.join("README");
    let other_secret = env.other_secret();
    let readme_out = format!("{}/README-hard", p(&env.other_project));
    let moved = format!("{}/moved", p(&env.other_project));
    let cases: [[&str; 3]; 4] = [
        ["link", p(&bashrc), "bashrc-hard"],
        ["link", p(&other_secret), "other-hard"],
        ["link", "README", &readme_out],
        ["rename", "moveme", &moved],
    ];
    for mode in all_modes() {
        for args in &cases {
            let out = run(env.attack(mode, args));
            let case = format!("{mode:?} {args:?}");
            match mode {
                Mode::Full | Mode::NoLandlock => denied(&out, &case, &["ENOENT"]),
                // Landlock's refer right: nothing crosses the boundary.
                Mode::NoUserns => denied(&out, &case, &["EXDEV", "EACCES"]),
            }
        }
        for left in ["bashrc-hard", "other-hard"] {
            assert!(!env.project.join(left).exists(), "{mode:?}: {left}");
        }
        assert!(!env.other_project.join("README-hard").exists(), "{mode:?}");
        assert!(!env.other_project.join("moved").exists(), "{mode:?}");
        assert!(moveme.exists() && readme.exists(), "{mode:?}");
        assert_eq!(fs::read_to_string(&bashrc).unwrap(), "host bashrc\n");
    }
}

#[test]
fn files_created_in_home_or_another_project_do_not_reach_the_host() {
    let env = Env::new();
    let bashrc = env.home.join(".bashrc");
    write_file(&bashrc, "host bashrc\n", 0o644);
    let sibling = env.home.join("Projects/planted");
    let config = env.home.join(".config");
    let keys = env.home.join(".ssh/authorized_keys");
    let in_other = env.other_project.join("planted");
    for mode in all_modes() {
        // In the sandbox's own tmpfs home: allowed, and thrown away.
        for args in [
            ["write", p(&bashrc)],
            ["write", p(&sibling)],
            ["mkdir", p(&config)],
        ] {
            let out = run(env.attack(mode, &args));
            let case = format!("{mode:?} {args:?}");
            match mode {
                Mode::Full | Mode::NoLandlock => {
                    succeeded(&out, &case);
                }
                Mode::NoUserns => denied(&out, &case, &["EACCES"]),
            }
        }
        // Where the sandbox's view has nothing.
        for args in [["write", p(&keys)], ["write", p(&in_other)]] {
            let out = run(env.attack(mode, &args));
            let case = format!("{mode:?} {args:?}");
            match mode {
                Mode::Full | Mode::NoLandlock => denied(&out, &case, &["ENOENT"]),
                Mode::NoUserns => denied(&out, &case, &["EACCES"]),
            }
        }
        assert_eq!(
            fs::read_to_string(&bashrc).unwrap(),
            "host bashrc\n",
            "{mode:?}"
        );
        for path in [&sibling, &config, &keys, &in_other] {
            assert!(
                !path.exists(),
                "{mode:?}: {} reached the host",
                path.display()
            );
        }
    }
}

// ---------------------------------------------------------------- privilege

#[test]
fn nested_user_namespace_is_refused() {
    // The way a payload would become root again: util-linux `unshare -r`,
    // through libc (clone3's ENOSYS fallback included). layers.rs checks the
    // raw syscalls; this is the real tool.
    let env = Env::new();
    let Some(unshare) = ["/usr/bin/unshare", "/bin/unshare"]
        .into_iter()
        .find(|u| Path::new(u).is_file())
    else {
        return skip("util-linux unshare is not installed");
    };
    if host_can_unshare_user() {
        // Control: on the host it works (uid 0 in the new namespace).
        let out = run(Command::new(unshare).args(["-r", "id", "-u"]));
        assert_eq!(out.stdout.trim(), "0", "control\n{}", out.describe());
    }
    for mode in all_modes() {
        let out = run(env.bwai(mode, &["-q", "--", unshare, "-r", "id", "-u"]));
        match mode {
            // seccomp refuses unshare(CLONE_NEWUSER) with EPERM in every mode.
            Mode::Full | Mode::NoUserns | Mode::NoLandlock => {
                assert_ne!(out.code(), Some(0), "{mode:?}\n{}", out.describe());
                assert!(
                    out.stdout.trim().is_empty() && out.stderr.contains("Operation not permitted"),
                    "{mode:?}\n{}",
                    out.describe()
                );
            }
        }
    }
}

#[test]
fn process_outside_cannot_be_traced_or_signalled() {
    let env = Env::new();
    let host = HostProcess::start(&env);
    let pid = host.pid().to_string();
    // Control: from the host the process is there and signallable.
    succeeded(&host_attack(&env.project, &["kill", &pid, "0"]), "control");
    let yama = fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").unwrap_or_default();
    if yama.trim().is_empty() || yama.trim() == "0" {
        succeeded(
            &host_attack(&env.project, &["ptrace", &pid]),
            "control ptrace",
        );
    }
    for mode in all_modes() {
        let cases: [Vec<&str>; 4] = [
            vec!["ptrace", &pid],
            vec!["kill", &pid, "0"],
            vec!["kill", &pid, "TERM"],
            vec!["kill", &pid, "KILL"],
        ];
        for args in &cases {
            let out = run(env.attack(mode, args));
            let case = format!("{mode:?} {args:?}");
            match mode {
                // Not in the sandbox's pid namespace.
                Mode::Full | Mode::NoLandlock => denied(&out, &case, &["ESRCH"]),
                // Landlock: ptrace restriction and the signal scope.
                Mode::NoUserns => denied(&out, &case, &["EPERM"]),
            }
            assert!(host.alive(), "{case}: the host process is gone");
        }
    }
}

#[test]
fn no_process_outside_can_be_signalled() {
    let env = Env::new();
    // A target of the same user in another session, so there is one.
    let host = HostProcess::start(&env);
    // Control: on the host, the probe finds processes it could signal.
    succeeded(&host_attack(&env.project, &["kill-all-probe"]), "control");
    for mode in all_modes() {
        let out = run(env.attack(mode, &["kill-all-probe"]));
        match mode {
            // Full: pid namespace, and Landlock's signal scope even keeps the
            // sandbox's own init out of reach. No user namespaces: every host
            // process is visible, none can be signalled (scope).
            Mode::Full | Mode::NoUserns => out.expect_nothing(),
            // No Landlock: the pid namespace holds only the sandbox; its own
            // init (pid 1) can be signalled (same user namespace, no scope),
            // but the kernel drops fatal signals to a namespace's init from
            // inside and init only relays to the command: still inside.
            Mode::NoLandlock => match out.attack() {
                Attack::Nothing(_) => {}
                Attack::Ok(detail) => {
                    let pids: Vec<&str> = detail
                        .split(' ')
                        .filter_map(|w| w.split_once(':').map(|(pid, _)| pid))
                        .filter(|pid| pid.parse::<i32>().is_ok())
                        .collect();
                    assert_eq!(pids, vec!["1"], "{mode:?}\n{}", out.describe());
                }
                _ => panic!("{mode:?}\n{}", out.describe()),
            },
        }
    }
    assert!(host.alive());
}

#[test]
fn proc_kernel_knobs_are_read_only() {
    // A payload started by root is uid 0 outside too: with no capability at
    // all, the file mode alone would let it write global sysctls (e.g.
    // core_pattern: code run by the kernel as root) or sysrq-trigger. Only
    // opened for writing, never written.
    let env = Env::new();
    let knobs: Vec<&str> = [
        "/proc/sys/kernel/core_pattern",
        "/proc/sys/vm/drop_caches",
        "/proc/sysrq-trigger",
        "/proc/irq/default_smp_affinity",
        "/proc/acpi/wakeup",
        // A single file like sysrq-trigger, present on most x86 kernels:
        // proves the single-file read-only bind where sysrq is not built.
        "/proc/mtrr",
    ]
    .into_iter()
    .filter(|k| Path::new(k).exists())
    .collect();
    assert!(knobs.len() >= 2, "too few knobs to test: {knobs:?}");
    for knob in &knobs {
        let control = host_attack(&env.project, &["open-write", knob]);
        if is_root() {
            succeeded(&control, &format!("control {knob}"));
        }
        for mode in all_modes() {
            let out = run(env.attack(mode, &["open-write", knob]));
            let case = format!("{mode:?} open-write {knob}");
            match mode {
                // The sandbox's procfs has these parts bound read-only;
                // for other users the file mode refuses first.
                Mode::Full | Mode::NoLandlock if is_root() => denied(&out, &case, &["EROFS"]),
                Mode::Full | Mode::NoLandlock => denied(&out, &case, &["EROFS", "EACCES"]),
                // The host's /proc: Landlock grants it read-only.
                Mode::NoUserns => denied(&out, &case, &["EACCES"]),
            }
        }
    }
}

#[test]
fn without_a_terminal_the_command_has_its_own_session() {
    // A command that shares bwai's session could reach a controlling
    // terminal bwai inherited; without a terminal on stdin it gets its own.
    let env = Env::new();
    let field = |line: &str, key: &str| -> Option<i32> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.parse().ok())
    };
    // Control: a plain child of the test keeps the test's session.
    let out = host_attack(&env.project, &["id"]);
    let line = succeeded(&out, "control");
    assert_ne!(
        field(&line, "sid="),
        field(&line, "pid="),
        "control: {line}"
    );
    for mode in all_modes() {
        let out = run(env.attack(mode, &["id"]));
        let line = succeeded(&out, &format!("{mode:?} id"));
        assert_eq!(
            field(&line, "sid="),
            field(&line, "pid="),
            "{mode:?}: {line}"
        );
    }
}

// ---------------------------------------------------------------- inter-process

#[test]
fn host_abstract_socket_is_unreachable() {
    let env = Env::new();
    let name = unique_marker("abstract");
    let _guard = MarkerGuard(name.clone());
    let listener = spawn(
        Command::new(helper("attack"))
            .args(["abstract-listen", &name, "60"])
            .stdin(Stdio::null()),
    );
    assert_eq!(
        listener.next_line(Duration::from_secs(20)),
        Some(format!("ok listening on @{name}")),
        "{}",
        listener.stderr()
    );
    // Control: reachable from the host.
    succeeded(
        &host_attack(&env.project, &["abstract-connect", &name]),
        "control",
    );
    let scopes = host_landlock_abi().unwrap_or(0) >= 6;
    for mode in all_modes() {
        for net in ["host", "none"] {
            let out = run(env.attack_with(mode, &["--net", net], &["abstract-connect", &name]));
            let case = format!("{mode:?} --net {net}");
            match (mode, net) {
                // Abstract names belong to the network namespace: a new one
                // has none of the host's.
                (Mode::Full | Mode::NoLandlock, "none") => denied(&out, &case, &["ECONNREFUSED"]),
                // Landlock's abstract unix socket scope (ABI >= 6).
                (Mode::Full, _) if scopes => denied(&out, &case, &["EPERM"]),
                // No network namespace: the scope (ABI >= 6), and before
                // Landlock ABI 9 seccomp refuses unix sockets altogether.
                (Mode::NoUserns, _) => denied(&out, &case, &["EPERM"]),
                // Documented (SECURITY.md): without Landlock's scope, abstract
                // sockets of the host are reachable when the network is
                // shared (net:host).
                (Mode::Full | Mode::NoLandlock, _) => {
                    succeeded(&out, &case);
                }
            }
        }
    }
}

/// Pathname sockets of the host outside the project, like an agent socket
/// in `~/.gnupg`, another project's socket, or X11's in `/tmp`: streams
/// (D-Bus, ssh-agent, docker) and datagrams (journald, syslog).
struct HostSockets {
    streams: Vec<PathBuf>,
    datagrams: Vec<(PathBuf, UnixDatagram)>,
    _listeners: Vec<UnixListener>,
    _tmp: TempDir,
}

impl HostSockets {
    fn start(env: &Env) -> HostSockets {
        let tmp = TempDir::new("bwai-x11");
        let gnupg = env.home.join(".gnupg");
        fs::create_dir_all(&gnupg).unwrap();
        let streams = vec![
            gnupg.join("S.gpg-agent"),
            env.other_project.join("agent.sock"),
            tmp.path().join("X0"),
        ];
        let listeners = streams
            .iter()
            .map(|path| {
                UnixListener::bind(path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()))
            })
            .collect();
        let datagrams: Vec<(PathBuf, UnixDatagram)> = [
            gnupg.join("S.log"),
            env.other_project.join("log.sock"),
            tmp.path().join("log"),
        ]
        .into_iter()
        .map(|path| {
            let sock = UnixDatagram::bind(&path)
                .unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
            sock.set_nonblocking(true).unwrap();
            (path, sock)
        })
        .collect();
        let sockets = HostSockets {
            streams,
            datagrams,
            _listeners: listeners,
            _tmp: tmp,
        };
        // Control: every one is reachable from the host.
        for path in &sockets.streams {
            succeeded(
                &host_attack(&env.project, &["unix-connect", p(path)]),
                "control",
            );
        }
        for (path, _) in &sockets.datagrams {
            for sub in ["unix-dgram-send", "unix-dgram-connect"] {
                succeeded(&host_attack(&env.project, &[sub, p(path)]), "control");
            }
        }
        assert_eq!(sockets.drain_datagrams(), 6, "control datagrams");
        sockets
    }

    /// How many datagrams arrived since the last call.
    fn drain_datagrams(&self) -> usize {
        let mut buf = [0u8; 64];
        self.datagrams
            .iter()
            .map(|(_, sock)| std::iter::from_fn(|| sock.recv(&mut buf).ok()).count())
            .sum()
    }
}

fn check_host_unix_sockets(env: &Env, sockets: &HostSockets, mode: Mode) {
    let attempts = sockets
        .streams
        .iter()
        .map(|path| ("unix-connect", path))
        .chain(
            sockets
                .datagrams
                .iter()
                .flat_map(|(path, _)| [("unix-dgram-send", path), ("unix-dgram-connect", path)]),
        );
    for (sub, path) in attempts {
        for net in ["host", "none"] {
            let out = run(env.attack_with(mode, &["--net", net], &[sub, p(path)]));
            let case = format!("{mode:?} --net {net} {sub} {}", path.display());
            match mode {
                // Absent from the sandbox's view.
                Mode::Full | Mode::NoLandlock => denied(&out, &case, &["ENOENT"]),
                // No mount namespace: every socket of the host is there.
                // Landlock ABI >= 9 denies connect/sendto outside the policy
                // (EACCES); before that, seccomp refuses to create the
                // socket, and a datagram socketpair, which could sendto()
                // any path (EPERM).
                Mode::NoUserns => denied(&out, &case, &["EACCES", "EPERM"]),
            }
        }
    }
    assert_eq!(
        sockets.drain_datagrams(),
        0,
        "{mode:?}: a datagram reached a host socket"
    );
}

#[test]
fn host_unix_socket_outside_the_project_is_unreachable() {
    let env = Env::new();
    let sockets = HostSockets::start(&env);
    for mode in all_modes() {
        check_host_unix_sockets(&env, &sockets, mode);
    }
}

#[test]
fn unix_sockets_of_its_own_work_except_without_namespaces() {
    // What the fallback's refusal of unix sockets costs, and what it keeps:
    // a server of the command's own (a test database, a language server) on
    // a socket in the project, and a socketpair (libuv, asyncio, ...).
    let env = Env::new();
    let resolve_unix = host_landlock_abi().unwrap_or(0) >= 9;
    for mode in all_modes() {
        let out = run(env.attack_with(mode, &[] as &[&str], &["unix-pair"]));
        succeeded(&out, &format!("{mode:?} unix-pair"));
        for sub in ["unix-serve", "unix-socket"] {
            let args: &[&str] = if sub == "unix-serve" {
                &["unix-serve", "own.sock"]
            } else {
                &["unix-socket"]
            };
            let out = run(env.attack_with(mode, &[] as &[&str], args));
            let case = format!("{mode:?} {args:?}");
            match mode {
                Mode::Full | Mode::NoLandlock => {
                    succeeded(&out, &case);
                }
                // Landlock ABI >= 9 lets a socket made inside be reached
                // (same domain); before, seccomp refuses every unix socket.
                Mode::NoUserns if resolve_unix => {
                    succeeded(&out, &case);
                }
                Mode::NoUserns => denied(&out, &case, &["EPERM"]),
            }
        }
        // The start line and a warning say so.
        let out = run(env.attack(mode, &["unix-pair"]));
        let line = out.stderr.lines().next().unwrap_or("");
        match mode {
            Mode::Full | Mode::NoLandlock => {
                assert!(
                    line.contains("| seccomp |") && !out.stderr.contains("unix sockets"),
                    "{mode:?}\n{}",
                    out.describe()
                );
            }
            Mode::NoUserns if resolve_unix => {
                assert!(
                    line.contains("+unix") && line.contains("seccomp, denies sysv-ipc |"),
                    "{mode:?}\n{}",
                    out.describe()
                );
            }
            Mode::NoUserns => {
                assert!(
                    line.contains("seccomp, denies unix-sockets+sysv-ipc |")
                        && out
                            .stderr
                            .contains("seccomp.dangerously_allow_host_unix_sockets"),
                    "{mode:?}\n{}",
                    out.describe()
                );
            }
        }
    }
}

#[test]
fn dangerous_unix_socket_opt_out_is_explicit_and_user_only() {
    let env = Env::new();
    let sockets = HostSockets::start(&env);
    let agent = p(&sockets.streams[0]).to_string();
    let setting = r#"{"seccomp": {"dangerously_allow_host_unix_sockets": true}}"#;
    // A repository cannot turn it on: nothing runs.
    fs::write(env.project.join(".bwai.json"), setting).unwrap();
    for mode in all_modes() {
        let out = run(env.attack(mode, &["unix-connect", &agent]));
        assert_eq!(out.code(), Some(2), "{mode:?}\n{}", out.describe());
        assert!(
            out.stdout.is_empty() && out.stderr.contains("loosen"),
            "{mode:?}\n{}",
            out.describe()
        );
    }
    fs::remove_file(env.project.join(".bwai.json")).unwrap();
    // The user can, in ~/.bwai.json, and is warned.
    fs::write(env.home.join(".bwai.json"), setting).unwrap();
    let resolve_unix = host_landlock_abi().unwrap_or(0) >= 9;
    for mode in all_modes() {
        let out = run(env.attack(mode, &["unix-connect", &agent]));
        let case = format!("{mode:?} opted out, unix-connect {agent}");
        match mode {
            // Namespaces still hide the host's sockets.
            Mode::Full | Mode::NoLandlock => denied(&out, &case, &["ENOENT"]),
            // Landlock ABI >= 9 still denies them.
            Mode::NoUserns if resolve_unix => denied(&out, &case, &["EACCES"]),
            // Documented (SECURITY.md): the danger the setting names.
            Mode::NoUserns => {
                succeeded(&out, &case);
                assert!(
                    out.stderr.contains("DANGER")
                        && out
                            .stderr
                            .lines()
                            .next()
                            .unwrap_or("")
                            .contains("denies sysv-ipc |"),
                    "{case}\n{}",
                    out.describe()
                );
            }
        }
    }
}

#[test]
fn unconfined_opt_in_confines_no_file_but_keeps_seccomp_refusals() {
    // Neither namespaces nor Landlock, run anyway with the flag that names
    // the danger: the documented meaning of "unconfined".
    let env = Env::new();
    let sockets = HostSockets::start(&env);
    let ipc = HostSysv::create(&env);
    let without_both = |bwai_args: &[&str], args: &[&str]| {
        let mut c = Command::new(helper("nouserns"));
        c.arg(helper("nolandlock"))
            .arg(bwai_bin())
            .args(bwai_args)
            .arg("--")
            .arg(&env.attack)
            .args(args);
        let template = env.bwai(Mode::Full, &[] as &[&str]);
        c.current_dir(&env.project).env_clear().stdin(Stdio::null());
        for (k, v) in template.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        run(&mut c)
    };
    let unconfined = |args: &[&str]| without_both(&["--dangerously-run-unconfined"], args);
    // Without the flag: refused, nothing runs.
    let out = without_both(&[], &["read", p(&env.ssh_key())]);
    assert!(
        out.code() == Some(125)
            && out.stdout.is_empty()
            && out.stderr.contains("--dangerously-run-unconfined"),
        "{}",
        out.describe()
    );
    // With it: every file of the user is in reach (documented danger)...
    let out = unconfined(&["read", p(&env.ssh_key())]);
    assert!(
        succeeded(&out, "unconfined read").contains(SSH_KEY_SECRET),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr
            .lines()
            .next()
            .unwrap_or("")
            .contains("[no namespaces | no landlock | seccomp, denies unix-sockets+sysv-ipc |"),
        "{}",
        out.describe()
    );
    if is_root() {
        // Documented: as root, the host's kernel knobs are open to it.
        let out = unconfined(&["open-write", "/proc/sys/kernel/core_pattern"]);
        succeeded(&out, "unconfined root open-write core_pattern");
    }
    // ...but seccomp still keeps the host's daemons and IPC out.
    let out = unconfined(&["unix-connect", p(&sockets.streams[0])]);
    denied(&out, "unconfined unix-connect", &["EPERM"]);
    for args in ipc.attempts() {
        denied(
            &unconfined(&args),
            &format!("unconfined {args:?}"),
            &["EPERM"],
        );
    }
}

/// A System V shared memory segment, message queue and semaphore set
/// created on the host (mode 0666), removed on drop.
struct HostSysv {
    shm_key: String,
    msg_key: String,
    sem_key: String,
}

impl HostSysv {
    fn create(env: &Env) -> HostSysv {
        let ipc = HostSysv {
            shm_key: unique_ipc_key().to_string(),
            msg_key: unique_ipc_key().to_string(),
            sem_key: unique_ipc_key().to_string(),
        };
        for (sub, key) in [
            ("sysv-shm-create", &ipc.shm_key),
            ("sysv-msg-create", &ipc.msg_key),
            ("sysv-sem-create", &ipc.sem_key),
        ] {
            succeeded(&host_attack(&env.project, &[sub, key]), sub);
        }
        // Control: usable from the host.
        for args in ipc.attempts() {
            succeeded(&host_attack(&env.project, &args), "control");
        }
        ipc
    }

    fn attempts(&self) -> [[&str; 2]; 3] {
        [
            ["sysv-shm-attach", &self.shm_key],
            ["sysv-msg", &self.msg_key],
            ["sysv-sem", &self.sem_key],
        ]
    }
}

impl Drop for HostSysv {
    fn drop(&mut self) {
        let dir = std::env::temp_dir();
        let _ = host_attack(&dir, &["sysv-shm-remove", &self.shm_key]);
        let _ = host_attack(&dir, &["sysv-msg-remove", &self.msg_key]);
        let _ = host_attack(&dir, &["sysv-sem-remove", &self.sem_key]);
    }
}

#[test]
fn host_sysv_ipc_is_not_attachable() {
    let env = Env::new();
    let ipc = HostSysv::create(&env);
    for mode in all_modes() {
        for args in ipc.attempts() {
            let out = run(env.attack(mode, &args));
            let case = format!("{mode:?} {args:?}");
            match mode {
                // The sandbox's own IPC namespace: the keys do not exist there.
                Mode::Full | Mode::NoLandlock => denied(&out, &case, &["ENOENT"]),
                // No IPC namespace, and Landlock does not cover System V IPC:
                // seccomp refuses it.
                Mode::NoUserns => denied(&out, &case, &["EPERM"]),
            }
        }
        // What it costs: a private segment of the command's own.
        let out = run(env.attack(mode, &["sysv-shm-create", "0"]));
        let case = format!("{mode:?} sysv-shm-create IPC_PRIVATE");
        match mode {
            Mode::Full | Mode::NoLandlock => {
                succeeded(&out, &case);
            }
            // Documented: without namespaces System V IPC is unusable.
            Mode::NoUserns => denied(&out, &case, &["EPERM"]),
        }
    }
}

/// A POSIX message queue created on the host (mode 0666), removed on drop.
struct HostQueue(String);

impl Drop for HostQueue {
    fn drop(&mut self) {
        let _ = host_attack(&std::env::temp_dir(), &["mq-remove", &self.0]);
    }
}

#[test]
fn host_posix_message_queue_is_unreachable() {
    let env = Env::new();
    let queue = HostQueue(format!("/{}", unique_marker("mq")));
    succeeded(
        &host_attack(&env.project, &["mq-create", &queue.0]),
        "create",
    );
    // Control: the host can send to it.
    succeeded(
        &host_attack(&env.project, &["mq-send", &queue.0]),
        "control",
    );
    for mode in all_modes() {
        let out = run(env.attack(mode, &["mq-send", &queue.0]));
        let case = format!("{mode:?} mq-send {}", queue.0);
        match mode {
            // The IPC namespace has its own queues.
            Mode::Full | Mode::NoLandlock => denied(&out, &case, &["ENOENT"]),
            // The host's mqueue filesystem is outside Landlock's rules.
            Mode::NoUserns => denied(&out, &case, &["EACCES"]),
        }
    }
}

/// A file in the host's /dev/shm, removed on drop.
struct ShmFile(PathBuf);

impl Drop for ShmFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[test]
fn host_dev_shm_is_invisible() {
    let env = Env::new();
    if !Path::new("/dev/shm").is_dir() {
        return skip("no /dev/shm on this host");
    }
    let marker = unique_marker("shm");
    let host_file = ShmFile(Path::new("/dev/shm").join(&marker));
    write_file(&host_file.0, "SECRET-SHM", 0o644);
    let shm_path = p(&host_file.0).to_string();
    // Control: the host sees it.
    succeeded(&host_attack(&env.project, &["read", &shm_path]), "control");
    for mode in all_modes() {
        let written = ShmFile(Path::new("/dev/shm").join(format!("{marker}-{}", mode.name())));
        let out = run(env.attack(mode, &["read", &shm_path]));
        let case = format!("{mode:?} read {shm_path}");
        match mode {
            // The sandbox's /dev/shm is its own tmpfs.
            Mode::Full | Mode::NoLandlock => denied(&out, &case, &["ENOENT"]),
            Mode::NoUserns => denied(&out, &case, &["EACCES"]),
        }
        let out = run(env.attack(mode, &["readdir", "/dev/shm"]));
        let case = format!("{mode:?} readdir /dev/shm");
        match mode {
            Mode::Full | Mode::NoLandlock => {
                assert!(
                    !succeeded(&out, &case).contains(&marker),
                    "{}",
                    out.describe()
                );
            }
            Mode::NoUserns => denied(&out, &case, &["EACCES"]),
        }
        let out = run(env.attack(mode, &["write", p(&written.0)]));
        let case = format!("{mode:?} write {}", written.0.display());
        match mode {
            // Written into the sandbox's own /dev/shm, not the host's.
            Mode::Full | Mode::NoLandlock => {
                succeeded(&out, &case);
            }
            Mode::NoUserns => denied(&out, &case, &["EACCES"]),
        }
        assert!(!written.0.exists(), "{case}: reached the host's /dev/shm");
    }
}

// ---------------------------------------------------------------- network (--net none)

#[test]
fn net_none_blocks_udp() {
    let env = Env::new();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let addr = sock.local_addr().unwrap().to_string();
    let mut buf = [0u8; 64];
    // Control: with the host's network, the datagram arrives.
    succeeded(
        &run(env.attack(Mode::Full, &["udp-send", &addr])),
        "control",
    );
    assert_eq!(sock.recv(&mut buf).expect("control datagram"), 6);
    for mode in all_modes() {
        let out = net_none(&env, mode, &["udp-send", &addr]);
        let case = format!("{mode:?} udp-send {addr}");
        match mode {
            // Sent into the sandbox's own loopback, where nobody listens.
            Mode::Full | Mode::NoLandlock => {
                succeeded(&out, &case);
            }
            // seccomp refuses inet sockets.
            Mode::NoUserns => denied(&out, &case, &["EPERM"]),
        }
        assert!(
            sock.recv(&mut buf).is_err(),
            "{case}: a datagram reached the host"
        );
        // TEST-NET-1: any route out would do.
        let out = net_none(&env, mode, &["udp-send", "192.0.2.1:53"]);
        let case = format!("{mode:?} udp-send 192.0.2.1:53");
        match mode {
            Mode::Full | Mode::NoLandlock => denied(&out, &case, &["ENETUNREACH"]),
            Mode::NoUserns => denied(&out, &case, &["EPERM"]),
        }
    }
}

/// The first IPv4 nameserver of /etc/resolv.conf, if any.
fn nameserver() -> Option<String> {
    fs::read_to_string("/etc/resolv.conf")
        .ok()?
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(|a| a.trim().to_string())
        .find(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
}

#[test]
fn net_none_has_no_dns() {
    let env = Env::new();
    for mode in all_modes() {
        // Control: name lookup itself works inside (/etc/hosts): `localhost`
        // resolves, and only the connection fails (port 1 of the sandbox's
        // loopback: refused; or ::1 where IPv6 is off: unreachable).
        let out = net_none(&env, mode, &["tcp-connect", "localhost:1"]);
        let case = format!("{mode:?} tcp-connect localhost:1");
        match mode {
            Mode::Full | Mode::NoLandlock => denied(
                &out,
                &case,
                &["ECONNREFUSED", "EADDRNOTAVAIL", "ENETUNREACH"],
            ),
            Mode::NoUserns => denied(&out, &case, &["EPERM"]),
        }
        let out = net_none(&env, mode, &["tcp-connect", "example.com:80"]);
        let case = format!("{mode:?} tcp-connect example.com:80");
        match (mode, out.attack()) {
            // The resolver is unreachable: a getaddrinfo error.
            (Mode::Full | Mode::NoLandlock, Attack::Denied { name, .. })
                if name.starts_with("EAI_") => {}
            // Or glibc reports seccomp's refusal of its UDP socket.
            (Mode::NoUserns, Attack::Denied { name, .. })
                if name.starts_with("EAI_") || name == "EPERM" => {}
            _ => panic!("{case}: the name resolved\n{}", out.describe()),
        }
        let out = run(env.bwai(
            mode,
            &[
                "-q",
                "--net",
                "none",
                "--",
                "getent",
                "hosts",
                "example.com",
            ],
        ));
        assert!(
            out.code() != Some(0) && out.stdout.trim().is_empty(),
            "{mode:?} getent\n{}",
            out.describe()
        );
        // A query sent straight to the configured resolver goes nowhere.
        if let Some(ns) = nameserver().filter(|ns| !ns.starts_with("127.")) {
            let target = format!("{ns}:53");
            let out = net_none(&env, mode, &["udp-send", &target]);
            let case = format!("{mode:?} udp-send {target}");
            match mode {
                Mode::Full | Mode::NoLandlock => denied(&out, &case, &["ENETUNREACH"]),
                Mode::NoUserns => denied(&out, &case, &["EPERM"]),
            }
        }
    }
}

#[test]
fn net_none_refuses_raw_packet_and_icmp_sockets() {
    let env = Env::new();
    if is_root() {
        // Control: root on the host may open a raw socket.
        succeeded(&host_attack(&env.project, &["raw-socket"]), "control");
    }
    for mode in all_modes() {
        for sub in ["raw-socket", "packet-socket"] {
            let out = net_none(&env, mode, &[sub]);
            let case = format!("{mode:?} {sub}");
            match mode {
                // No CAP_NET_RAW (all capabilities dropped); without
                // namespaces seccomp refuses inet sockets as well.
                Mode::Full | Mode::NoUserns | Mode::NoLandlock => denied(&out, &case, &["EPERM"]),
            }
        }
        let out = net_none(&env, mode, &["icmp-socket"]);
        let case = format!("{mode:?} icmp-socket");
        match mode {
            // A new network namespace's ping_group_range is "1 0": nobody.
            Mode::Full | Mode::NoLandlock => denied(&out, &case, &["EACCES"]),
            Mode::NoUserns => denied(&out, &case, &["EPERM"]),
        }
    }
}

#[test]
fn net_none_refuses_vsock_sockets() {
    // AF_VSOCK reaches the hypervisor (or WSL's Windows side) and no network
    // namespace confines it. Only socket creation is tried, never a
    // connection.
    let env = Env::new();
    let control = host_attack(&env.project, &["vsock-socket"]);
    if !matches!(control.attack(), Attack::Ok(_)) {
        // The refusal below comes from seccomp before the kernel looks at
        // the family, so it is still checked; only the control is missing.
        eprintln!("note: no AF_VSOCK on this host: {}", control.first_line());
    }
    for mode in all_modes() {
        let out = net_none(&env, mode, &["vsock-socket"]);
        let case = format!("{mode:?} vsock-socket");
        match mode {
            // seccomp: with `none`, only the families a network namespace
            // confines (unix, inet, netlink); without one, only unix.
            Mode::Full | Mode::NoUserns | Mode::NoLandlock => denied(&out, &case, &["EPERM"]),
        }
    }
}

#[test]
fn net_none_netlink_sees_only_loopback() {
    let env = Env::new();
    // Control: the host's own interfaces.
    let host_links = succeeded(&host_attack(&env.project, &["netlink-links"]), "control");
    for mode in all_modes() {
        let out = net_none(&env, mode, &["netlink-links"]);
        let case = format!("{mode:?} netlink-links");
        match mode {
            // The sandbox's network namespace: loopback only.
            Mode::Full | Mode::NoLandlock => {
                assert_eq!(succeeded(&out, &case), "1 links: lo", "{}", out.describe())
            }
            // No network namespace: the host's netlink (interfaces, and
            // with sock_diag every socket of the host) would answer, so
            // seccomp refuses every socket family but unix.
            Mode::NoUserns => {
                denied(&out, &case, &["EPERM"]);
                assert!(!out.stdout.contains(&host_links));
            }
        }
    }
}

#[test]
fn net_none_loopback_works_inside_and_stays_inside() {
    let env = Env::new();
    // A port free on the host, so that a connection there can only reach
    // the sandbox's server if the sandbox leaks.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let script = r#"A="$1"; o="${TMPDIR:-/tmp}/serve.out"
"$A" tcp-serve "$2" 10 >"$o" 2>&1 &
i=0; while [ $i -lt 200 ] && [ ! -s "$o" ]; do sleep 0.05; i=$((i+1)); done
"$A" tcp-connect "127.0.0.1:$2"; rc=$?
echo "server: $(head -n 1 "$o")"; kill $! 2>/dev/null; wait; exit $rc"#;
    for mode in all_modes() {
        let out = run(env.bwai(
            mode,
            &[
                "-q",
                "--net",
                "none",
                "--",
                "sh",
                "-c",
                script,
                "sh",
                p(&env.attack),
                &port,
            ],
        ));
        let case = format!("{mode:?} loopback inside");
        match mode {
            // A server started inside is reachable on 127.0.0.1 inside.
            Mode::Full | Mode::NoLandlock => {
                succeeded(&out, &case);
            }
            // Documented: without namespaces, `none` refuses every inet
            // socket (seccomp), the sandbox's own loopback included.
            Mode::NoUserns => denied(&out, &case, &["EPERM"]),
        }

        // And from the host, a server inside is out of reach.
        let mut bg =
            spawn(env.attack_with(mode, &["-q", "--net", "none"], &["tcp-serve", &port, "20"]));
        let line = bg.next_line(Duration::from_secs(20)).unwrap_or_default();
        match mode {
            Mode::Full | Mode::NoLandlock => {
                assert_eq!(
                    line,
                    format!("ok listening on 127.0.0.1:{port}"),
                    "{mode:?}: {}",
                    bg.stderr()
                );
                let addr = format!("127.0.0.1:{port}").parse().unwrap();
                if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    let mut greeting = String::new();
                    let _ = s.read_to_string(&mut greeting);
                    assert!(
                        !greeting.contains("bwai-tcp-serve"),
                        "{mode:?}: the host reached a server inside --net none"
                    );
                }
            }
            Mode::NoUserns => assert!(line.starts_with("denied EPERM"), "{mode:?}: {line}"),
        }
        bg.signal(Signal::SIGKILL);
        bg.wait_timeout(Duration::from_secs(10));
    }
}

// ---------------------------------------------------------------- environment

#[test]
fn secrets_are_not_on_any_command_line() {
    let env = Env::new();
    // Prefixes the payload can test for without naming the secret itself.
    let api_key = unique_marker("apikey");
    let aws = unique_marker("awskey");
    let script = r#"case "$ANTHROPIC_API_KEY" in bwai-mark-apikey-*) echo key-present;; esac
for f in /proc/[0-9]*/cmdline; do printf 'cmdline %s ' "$f"; tr '\0' ' ' < "$f" 2>/dev/null; echo; done
init=$PPID; sup=$(cut -d' ' -f4 /proc/$init/stat 2>/dev/null)
for pid in $init $sup; do
  if tr '\0' '\n' < /proc/$pid/environ 2>/dev/null | grep -q '^ANTHROPIC_API_KEY='; then echo "environ-leak $pid"; fi
done
echo listed
j=0; while [ ! -e "$1" ] && [ $j -lt 400 ]; do sleep 0.05; j=$((j+1)); done"#;
    for mode in all_modes() {
        // The key is passed to the agent that needs it: its profile is asked for.
        // It keeps running until the test has looked at the host.
        let go = env.project.join(format!("go-{}", mode.name()));
        let mut cmd = env.bwai(
            mode,
            &[
                "-q",
                "--profile",
                "claude",
                "--",
                "sh",
                "-c",
                script,
                "sh",
                p(&go),
            ],
        );
        cmd.env("ANTHROPIC_API_KEY", &api_key)
            .env("AWS_SECRET_ACCESS_KEY", &aws);
        let mut bg = spawn(cmd);
        let mut lines = Vec::new();
        while let Some(line) = bg.next_line(Duration::from_secs(20)) {
            let done = line == "listed";
            lines.push(line);
            if done {
                break;
            }
        }
        // While the sandbox runs: no command line on the host holds either.
        let on_host: Vec<i32> = [&api_key, &aws]
            .iter()
            .flat_map(|s| pids_with_marker(s.as_str()))
            .collect();
        fs::write(&go, "").unwrap();
        let status = bg.wait_timeout(Duration::from_secs(20));
        let text = lines.join("\n");
        assert_eq!(
            lines.last().map(String::as_str),
            Some("listed"),
            "{mode:?}\n{text}\n{}",
            bg.stderr()
        );
        assert!(
            text.contains("key-present"),
            "{mode:?}: the allowed key is missing\n{text}"
        );
        assert!(
            lines.iter().filter(|l| l.starts_with("cmdline ")).count() >= 2,
            "{mode:?}: no command line listed\n{text}"
        );
        assert!(
            !text.contains(&api_key) && !text.contains(&aws),
            "{mode:?}: a secret is on a command line inside\n{text}"
        );
        assert!(
            !lines.iter().any(|l| l.starts_with("environ-leak ")),
            "{mode:?}: the supervisor's or init's environment is readable\n{text}"
        );
        assert!(
            on_host.is_empty(),
            "{mode:?}: on the host: pids {on_host:?}"
        );
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "{mode:?}: {}",
            bg.stderr()
        );
    }
}

// ---------------------------------------------------------------- lifetime

#[test]
fn payload_ignoring_sigterm_is_gone_after_bwai_is_killed() {
    let env = Env::new();
    for mode in all_modes() {
        let marker = unique_marker("ignore-term");
        let _guard = MarkerGuard(marker.clone());
        let mut bg = spawn(env.attack_with(mode, &["-q"], &["ignore-term", "60", &marker]));
        let line = bg.next_line(Duration::from_secs(20)).unwrap_or_default();
        assert!(
            line.starts_with("ok ignoring"),
            "{mode:?}: {line} {}",
            bg.stderr()
        );
        // Control: SIGTERM is relayed and ignored: everything keeps running.
        bg.signal(Signal::SIGTERM);
        assert!(
            bg.wait_timeout(Duration::from_millis(500)).is_none(),
            "{mode:?}: bwai ended on SIGTERM: the payload did not ignore it"
        );
        bg.signal(Signal::SIGKILL);
        assert!(bg.wait_timeout(Duration::from_secs(10)).is_some());
        if !wait_no_procs_with_marker(&marker, Duration::from_secs(10)) {
            panic!(
                "{mode:?}: the payload outlived bwai: {:?}",
                pids_with_marker(&marker)
            );
        }
    }
}

#[test]
fn fork_bomb_is_gone_when_bwai_ends() {
    // Bounded: 50 sleepers, a third plain, a third in their own session
    // ignoring SIGTERM, a third double-forked daemons.
    const N: usize = 50;
    let env = Env::new();
    let script = r#"A="$1"; M="$2"; GO="$3"; i=0
while [ $i -lt 50 ]; do
  case $((i % 3)) in
    0) "$A" sleep 60 "$M" >/dev/null & ;;
    1) ( setsid "$A" ignore-term 60 "$M" >/dev/null 2>&1 & ) ;;
    2) "$A" daemonize 60 "$M" >/dev/null ;;
  esac
  i=$((i+1))
done
echo spawned
j=0; while [ ! -e "$GO" ] && [ $j -lt 400 ]; do sleep 0.05; j=$((j+1)); done"#;
    for mode in all_modes() {
        let marker = unique_marker("forkbomb");
        let _guard = MarkerGuard(marker.clone());
        let go = env.project.join(format!("go-{}", mode.name()));
        let mut bg = spawn(env.bwai(
            mode,
            &[
                "-q",
                "--",
                "sh",
                "-c",
                script,
                "sh",
                p(&env.attack),
                &marker,
                p(&go),
            ],
        ));
        assert_eq!(
            bg.next_line(Duration::from_secs(30)).as_deref(),
            Some("spawned"),
            "{mode:?}: {}",
            bg.stderr()
        );
        // The 50, plus bwai, its init and the shell (the marker is an argument).
        assert!(
            wait_procs_with_marker(&marker, N + 3, Duration::from_secs(20)),
            "{mode:?}: only {} processes started\n{}",
            count_procs_with_marker(&marker),
            bg.stderr()
        );
        fs::write(&go, "").unwrap();
        let status = bg.wait_timeout(Duration::from_secs(20));
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "{mode:?}: {}",
            bg.stderr()
        );
        if !wait_no_procs_with_marker(&marker, Duration::from_secs(10)) {
            panic!(
                "{mode:?}: {} processes outlived bwai",
                count_procs_with_marker(&marker)
            );
        }
    }
}
