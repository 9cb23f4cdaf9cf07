//! The test tooling tested: the fake home, the runners, the pty, the process
//! markers, and the helpers that take kernel features away. If these lie, every
//! security test built on them lies too. None of them needs bwai to work.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn attack() -> Command {
    Command::new(helper("attack"))
}

#[test]
fn fake_home_holds_secrets_and_the_attack_helper() {
    let env = Env::new();
    for (path, secret) in [
        (env.ssh_key(), SSH_KEY_SECRET),
        (env.aws_credentials(), AWS_SECRET),
        (env.bash_history(), HISTORY_SECRET),
        (env.other_secret(), OTHER_PROJECT_SECRET),
    ] {
        let content = std::fs::read_to_string(&path).expect("secret file");
        assert!(
            content.contains(secret),
            "{} lacks {secret}",
            path.display()
        );
    }
    assert!(env.project.join("README").is_file());
    assert!(env.project.starts_with(&env.home));

    // The copy inside the project runs, from the project.
    let mut cmd = Command::new(&env.attack);
    cmd.arg("read").arg("README").current_dir(&env.project);
    let detail = run(cmd).expect_ok();
    assert!(detail.contains("demo project"), "{detail}");

    let root = env.root.path().to_path_buf();
    drop(env);
    assert!(!root.exists(), "{} left behind", root.display());
}

#[test]
fn temp_dir_removal_copes_with_read_only_leftovers() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("bwai-selftest");
    let locked = dir.path().join("a/b");
    std::fs::create_dir_all(&locked).unwrap();
    std::fs::write(locked.join("f"), "x").unwrap();
    for d in [locked.as_path(), locked.parent().unwrap()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o500)).unwrap();
    }
    let path = dir.path().to_path_buf();
    drop(dir);
    assert!(!path.exists(), "{} left behind", path.display());
}

#[test]
fn env_command_runs_in_the_project_with_a_clean_environment() {
    let env = Env::new();
    // How bwai is started (it may not work yet: do not run it).
    let cmd = env.bwai(Mode::Full, &["x"]);
    assert_eq!(cmd.get_program(), bwai_bin().as_os_str());
    assert_eq!(cmd.get_current_dir(), Some(env.project.as_path()));
    let vars: Vec<_> = cmd
        .get_envs()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    for v in ["PATH", "HOME", "USER", "LOGNAME"] {
        assert!(vars.contains(&v.to_string()), "{v} missing from {vars:?}");
    }

    // The same clean environment, seen from inside a process.
    let mut direct = Command::new(&env.attack);
    direct
        .arg("env")
        .current_dir(&env.project)
        .env_clear()
        .env("HOME", &env.home);
    let detail = run(direct).expect_ok();
    let json: serde_json::Value = serde_json::from_str(&detail).expect("env prints JSON");
    assert_eq!(json["HOME"], env.home.to_str().unwrap());

    let args: Vec<String> = env
        .attack_with(Mode::NoUserns, &["-q"], &["read", "README"])
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let expected = [
        bwai_bin().to_string_lossy().into_owned(),
        "-q".into(),
        "--".into(),
    ];
    assert_eq!(args[..3], expected, "{args:?}");
    assert_eq!(args[3], env.attack.to_string_lossy());
}

#[test]
fn modes_wrap_bwai_in_the_feature_removing_helpers() {
    let bin = bwai_bin();
    assert_eq!(Mode::Full.command(&bin).get_program(), bin.as_os_str());
    for (mode, name) in [
        (Mode::NoUserns, "nouserns"),
        (Mode::NoLandlock, "nolandlock"),
    ] {
        let cmd = mode.command(&bin);
        assert_eq!(cmd.get_program(), helper(name).as_os_str());
        assert_eq!(cmd.get_args().next(), Some(bin.as_os_str()));
    }
    assert_eq!(all_modes().len(), 3);
}

#[test]
fn run_reports_exit_codes_and_signals() {
    let out = run(attack().args(["exit", "3"]));
    assert_eq!(out.code(), Some(3), "{}", out.describe());
    assert_eq!(out.first_line(), "ok exiting with 3");

    let out = run(attack().args(["kill-self", "TERM"]));
    assert_eq!(out.signal(), Some(libc_sigterm()), "{}", out.describe());

    let out = run(attack().args(["read", "/nonexistent-bwai"]));
    out.expect_denied(&["ENOENT"]);
    assert_eq!(
        out.attack(),
        Attack::Denied {
            name: "ENOENT".into(),
            errno: 2
        }
    );
}

fn libc_sigterm() -> i32 {
    nix::sys::signal::Signal::SIGTERM as i32
}

#[test]
fn run_kills_a_hang_at_the_timeout() {
    let out = run_with_timeout(attack().args(["sleep", "30"]), Duration::from_millis(500));
    assert!(out.timed_out, "{}", out.describe());
    assert_eq!(out.signal(), Some(9));
    assert!(out.duration < Duration::from_secs(10), "{}", out.describe());
}

#[test]
fn run_does_not_hang_on_a_process_that_keeps_the_pipes() {
    let marker = unique_marker("daemon");
    let out = run(attack().args(["daemonize", "2", &marker]));
    out.expect_ok();
    // The daemon's stdio is /dev/null: the pipes closed with its parent.
    assert!(!out.pipes_held_open, "{}", out.describe());
    kill_procs_with_marker(&marker);

    // A forked child that keeps stdout: reported, not waited for.
    let mut sh = Command::new("/bin/sh");
    sh.args(["-c", "sleep 20 & echo started $!"]);
    let out = run(sh);
    let holder: i32 = out
        .stdout
        .trim()
        .strip_prefix("started ")
        .and_then(|p| p.parse().ok())
        .expect("pid");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(holder),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert!(out.pipes_held_open, "{}", out.describe());
    assert!(out.duration < Duration::from_secs(10));
}

#[test]
fn parse_attack_understands_every_line_shape() {
    assert_eq!(parse_attack("ok"), Attack::Ok(String::new()));
    assert_eq!(parse_attack("ok 3 bytes"), Attack::Ok("3 bytes".into()));
    assert_eq!(
        parse_attack("denied EPERM (1)"),
        Attack::Denied {
            name: "EPERM".into(),
            errno: 1
        }
    );
    assert_eq!(
        parse_attack("denied EAI_NONAME (-2)"),
        Attack::Denied {
            name: "EAI_NONAME".into(),
            errno: -2
        }
    );
    assert_eq!(parse_attack("denied none"), Attack::Nothing(String::new()));
    assert_eq!(
        parse_attack("denied none 0 (3 visible)"),
        Attack::Nothing("0 (3 visible)".into())
    );
    assert_eq!(
        parse_attack("bwai: error"),
        Attack::Other("bwai: error".into())
    );
    assert_eq!(parse_attack(""), Attack::Other(String::new()));
}

#[test]
fn process_markers_find_and_lose_processes() {
    let marker = unique_marker("sleep");
    let mut bg = spawn(attack().args(["sleep", "30", &marker]));
    assert!(
        wait_procs_with_marker(&marker, 1, Duration::from_secs(10)),
        "never showed up"
    );
    assert_eq!(pids_with_marker(&marker), vec![bg.pid()]);
    assert_eq!(count_procs_with_marker(&marker), 1);
    bg.signal(nix::sys::signal::Signal::SIGKILL);
    assert!(bg.wait_timeout(Duration::from_secs(10)).is_some());
    assert!(wait_no_procs_with_marker(&marker, Duration::from_secs(10)));
}

#[test]
fn background_reads_lines_as_they_come() {
    let marker = unique_marker("ignore");
    let mut bg = spawn(attack().args(["ignore-term", "30", &marker]));
    let line = bg.next_line(Duration::from_secs(10)).expect("a first line");
    assert!(line.starts_with("ok ignoring"), "{line}");
    bg.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(
        bg.wait_timeout(Duration::from_millis(300)).is_none(),
        "SIGTERM was not ignored"
    );
    drop(bg); // SIGKILL
    assert!(wait_no_procs_with_marker(&marker, Duration::from_secs(10)));
}

#[test]
fn pty_gives_a_controlling_terminal_and_echoes_input() {
    let mut sh = Command::new("/bin/sh");
    sh.args(["-c", "tty; read x; echo got:$x"]);
    let out = run_in_pty(sh, b"hello\n", Duration::from_secs(20));
    let text = out.text();
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    assert!(text.contains("/dev/pts/"), "{}", out.describe());
    assert!(text.contains("got:hello"), "{}", out.describe());

    // TIOCSTI on our own controlling terminal: the pushed '#' is echoed back.
    let out = run_in_pty(attack().arg("tiocsti"), b"", Duration::from_secs(20));
    let legacy =
        std::fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti").map(|s| s.trim() == "1");
    match parse_attack(
        out.text()
            .trim_start_matches('#')
            .lines()
            .next()
            .unwrap_or(""),
    ) {
        Attack::Ok(_) => assert!(out.text().contains('#'), "{}", out.describe()),
        // dev.tty.legacy_tiocsti=0: only CAP_SYS_ADMIN may push.
        Attack::Denied { name, .. } if name == "EIO" && legacy.is_ok_and(|l| !l) => {}
        _ => panic!("unexpected\n{}", out.describe()),
    }
}

#[test]
fn pty_times_out() {
    let out = run_in_pty(
        attack().args(["sleep", "30"]),
        b"",
        Duration::from_millis(500),
    );
    assert!(out.timed_out, "{}", out.describe());
}

#[test]
fn inherited_fd_is_seen_by_the_fds_probe() {
    let file = std::fs::File::open("/etc/hostname").expect("open /etc/hostname");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    let mut cmd = attack();
    cmd.arg("fds");
    inherit_fd(&mut cmd, fd);
    let detail = run(cmd).expect_ok();
    assert!(detail.contains(&format!("{fd}=/etc/hostname")), "{detail}");
}

#[test]
fn nouserns_blocks_user_namespaces_like_docker() {
    let nouserns = || {
        let mut c = Command::new(helper("nouserns"));
        c.arg(helper("attack"));
        c
    };
    run(nouserns().arg("unshare-user")).expect_denied(&["EPERM"]);
    run(nouserns().arg("clone-newuser")).expect_denied(&["EPERM"]);
    run(nouserns().arg("clone3-newuser")).expect_denied(&["ENOSYS"]);
    // Everything else still works, and the filter is visible as Docker's is.
    let detail = run(nouserns().arg("cap-check")).attack();
    match detail {
        Attack::Ok(d) | Attack::Nothing(d) => {
            assert!(d.contains("NoNewPrivs=1") && d.contains("Seccomp=2"), "{d}")
        }
        other => panic!("{other:?}"),
    }
    run(nouserns().args(["read", "/proc/self/status"])).expect_ok();
    let out = run(Command::new(helper("nouserns")).arg("/nonexistent-bwai"));
    assert_eq!(out.code(), Some(127), "{}", out.describe());
}

#[test]
fn nolandlock_makes_landlock_look_absent() {
    let mut c = Command::new(helper("nolandlock"));
    c.arg(helper("attack")).arg("landlock-probe");
    run(c).expect_denied(&["ENOSYS"]);
    let mut c = Command::new(helper("nolandlock"));
    c.arg(helper("attack")).arg("unshare-user");
    let out = run(c);
    assert_ne!(
        out.attack(),
        Attack::Denied {
            name: "ENOSYS".into(),
            errno: 38
        }
    );
}

#[test]
fn host_probes_answer() {
    // Whatever the machine offers, the probes must not panic; under
    // BWAI_MUST_WORK the machine must offer both.
    let userns = host_can_unshare_user();
    let abi = host_landlock_abi();
    if must_work() {
        assert!(userns, "user namespaces unavailable");
        assert!(abi.is_some(), "Landlock unavailable");
    }
}

#[test]
fn bwai_binary_exists() {
    let bin = bwai_bin();
    assert!(bin.is_file(), "{} missing", bin.display());
}
