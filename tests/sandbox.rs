//! The core promises of the sandbox (issue: bwai core), each tried for real
//! against the built binary in every mode: full, user namespaces blocked
//! (Landlock + seccomp), Landlock missing (namespaces + seccomp).

mod common;

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

#[test]
fn hidden_home_files_are_absent() {
    let env = Env::new();
    for mode in all_modes() {
        for secret in [env.ssh_key(), env.aws_credentials(), env.bash_history()] {
            let out = run(env.attack(mode, &["read".as_ref(), secret.as_os_str()]));
            match mode {
                // Namespaces: the file is not there at all.
                Mode::Full | Mode::NoLandlock => out.expect_denied(&["ENOENT"]),
                // Landlock alone: it is there but denied.
                Mode::NoUserns => out.expect_denied(&["EACCES"]),
            }
            assert!(
                !out.stdout.contains("SECRET"),
                "{mode:?}\n{}",
                out.describe()
            );
        }
    }
}

#[test]
fn other_project_is_absent() {
    let env = Env::new();
    for mode in all_modes() {
        let out = run(env.attack(mode, &["read".as_ref(), env.other_secret().as_os_str()]));
        match mode {
            Mode::Full | Mode::NoLandlock => out.expect_denied(&["ENOENT"]),
            Mode::NoUserns => out.expect_denied(&["EACCES"]),
        }
        let listing = run(env.attack(
            mode,
            &["readdir".as_ref(), env.home.join("Projects").as_os_str()],
        ));
        assert!(
            !listing.stdout.contains("other"),
            "{mode:?}: {}",
            listing.describe()
        );
    }
}

#[test]
fn usr_is_read_only() {
    let env = Env::new();
    for mode in all_modes() {
        let out = run(env.attack(mode, &["write", "/usr/bwai-test-file"]));
        out.expect_denied(&["EROFS", "EACCES"]);
        let out = run(env.attack(mode, &["write", "/usr/bin/env"]));
        out.expect_denied(&["EROFS", "EACCES", "ETXTBSY"]);
        assert!(!Path::new("/usr/bwai-test-file").exists());
    }
}

#[test]
fn project_is_writable_and_changes_persist() {
    let env = Env::new();
    for mode in all_modes() {
        let name = format!("written-{}", mode.name());
        let target = env.project.join(&name);
        run(env.attack(mode, &["write".as_ref(), target.as_os_str()])).expect_ok();
        assert_eq!(fs::read_to_string(&target).unwrap(), "pwned\n", "{mode:?}");
        let sub = env.project.join(format!("dir-{}", mode.name()));
        run(env.attack(mode, &["mkdir".as_ref(), sub.as_os_str()])).expect_ok();
        assert!(sub.is_dir(), "{mode:?}");
    }
}

#[test]
fn tmp_is_private_and_empty() {
    let env = Env::new();
    let marker = std::env::temp_dir().join(unique_marker("tmp"));
    fs::write(&marker, "host tmp file").unwrap();
    for mode in all_modes() {
        let out = run(env.bwai(
            mode,
            &[
                "-q",
                "--",
                "sh",
                "-c",
                "ls -A /tmp; echo TMPDIR=$TMPDIR; echo x > \"${TMPDIR:-/tmp}/t\" && echo wrote",
            ],
        ));
        out.expect_code(0);
        assert!(
            !out.stdout.contains("bwai-mark"),
            "{mode:?}: host /tmp leaked\n{}",
            out.describe()
        );
        assert!(
            out.stdout.contains("wrote"),
            "{mode:?}: no writable temp dir\n{}",
            out.describe()
        );
        match mode {
            Mode::Full | Mode::NoLandlock => {
                // Only the path down to the test's project (which lives under /tmp) is there.
                let first = env
                    .project
                    .strip_prefix("/tmp")
                    .ok()
                    .and_then(|p| p.components().next());
                let listed: Vec<&str> = out
                    .stdout
                    .lines()
                    .take_while(|l| !l.starts_with("TMPDIR="))
                    .collect();
                match first {
                    Some(c) => assert_eq!(
                        listed,
                        vec![c.as_os_str().to_str().unwrap()],
                        "{}",
                        out.describe()
                    ),
                    None => assert!(listed.is_empty(), "{}", out.describe()),
                }
            }
            Mode::NoUserns => {
                // No private /tmp without namespaces: a private TMPDIR instead, /tmp itself denied.
                assert!(
                    out.stdout.contains("TMPDIR=/tmp/bwai-"),
                    "{}",
                    out.describe()
                );
                let ls = run(env.attack(
                    mode,
                    &["readdir".as_ref(), marker.parent().unwrap().as_os_str()],
                ));
                ls.expect_denied(&["EACCES"]);
            }
        }
    }
    fs::remove_file(&marker).unwrap();
}

#[test]
fn pid_namespace_shows_only_the_sandbox() {
    let env = Env::new();
    for mode in [Mode::Full, Mode::NoLandlock] {
        let out = run(env.attack(mode, &["pid-list"]));
        let detail = out.expect_ok();
        let pids: Vec<i32> = detail
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        assert!(
            pids.contains(&1) && pids.len() <= 3,
            "{mode:?}: {pids:?}\n{}",
            out.describe()
        );
    }
    // Without a pid namespace other processes are visible, but none can be signalled.
    let out = run(env.attack(Mode::NoUserns, &["kill-all-probe"]));
    assert_ne!(
        out.code(),
        Some(0),
        "a process outside could be signalled\n{}",
        out.describe()
    );
}

#[test]
fn environment_is_filtered() {
    let env = Env::new();
    for mode in all_modes() {
        // The key is passed to the agent that needs it: here, by asking for its profile.
        let mut cmd = env.attack_with(mode, &["--profile", "claude"], &["env"]);
        cmd.env("ANTHROPIC_API_KEY", "allowed-model-key")
            .env("AWS_SECRET_ACCESS_KEY", "host-secret-value")
            .env("GITHUB_TOKEN", "host-secret-token")
            .env("SSH_AUTH_SOCK", "/run/agent.sock")
            .env("TERM", "xterm-256color");
        let out = run(cmd);
        let vars: serde_json::Value =
            serde_json::from_str(&out.expect_ok()).expect("attack env prints JSON");
        assert_eq!(
            vars["ANTHROPIC_API_KEY"],
            "allowed-model-key",
            "{mode:?}\n{}",
            out.describe()
        );
        assert_eq!(vars["TERM"], "xterm-256color", "{}", out.describe());
        assert_eq!(
            vars["HOME"],
            env.home.to_str().unwrap(),
            "{}",
            out.describe()
        );
        assert_eq!(vars["BWAI_SANDBOX"], "1", "{}", out.describe());
        for secret in ["host-secret-value", "host-secret-token", "SSH_AUTH_SOCK"] {
            assert!(
                !out.stdout.contains(secret),
                "{mode:?}: {secret} leaked\n{}",
                out.describe()
            );
        }
        // A command that is no agent gets no model key.
        let mut cmd = env.attack(mode, &["env"]);
        cmd.env("ANTHROPIC_API_KEY", "allowed-model-key");
        let out = run(cmd);
        assert!(
            !out.expect_ok().contains("allowed-model-key"),
            "{mode:?}\n{}",
            out.describe()
        );
    }
}

#[test]
fn agent_profile_applies_to_its_command() {
    let env = Env::new();
    write_file(&env.home.join(".claude/state.json"), "{}", 0o644);
    write_file(&env.home.join(".gemini/state.json"), "{}", 0o644);
    // A fake `claude` on PATH inside the project: the profile is chosen by the program name.
    write_file(
        &env.project.join("bin/claude"),
        "#!/bin/sh\nls -A ~\n",
        0o755,
    );
    let path = format!("{}/bin:/usr/bin:/bin", env.project.display());
    for mode in [Mode::Full, Mode::NoLandlock] {
        let out = run(env
            .bwai(mode, &["-c", "claude --version"])
            .env("PATH", &path));
        out.expect_code(0);
        assert!(
            out.stdout.contains(".claude"),
            "{mode:?}\n{}",
            out.describe()
        );
        assert!(
            !out.stdout.contains(".gemini"),
            "{mode:?}: another agent's state is visible\n{}",
            out.describe()
        );
        assert!(out.stderr.contains("profile: claude"), "{}", out.describe());
    }
    let out = run(env.bwai(Mode::Full, &["--profile", "nope", "--", "true"]));
    out.expect_code(2);
}

#[test]
fn init_environment_is_unreadable() {
    let env = Env::new();
    for mode in [Mode::Full, Mode::NoLandlock] {
        let mut cmd = env.attack(mode, &["read", "/proc/1/environ"]);
        cmd.env("AWS_SECRET_ACCESS_KEY", "host-secret-value");
        let out = run(cmd);
        out.expect_denied(&["EACCES", "EPERM"]);
    }
}

#[test]
fn exit_status_passes_through() {
    let env = Env::new();
    for mode in all_modes() {
        run(env.bwai(mode, &["-q", "--", "sh", "-c", "exit 3"])).expect_code(3);
        run(env.bwai(mode, &["-q", "-c", "exit 0"])).expect_code(0);
        // Killed by signal N -> 128 + N.
        run(env.bwai(mode, &["-q", "--", "sh", "-c", "kill -KILL $$"])).expect_code(137);
        run(env.bwai(mode, &["-q", "--", "sh", "-c", "kill -TERM $$"])).expect_code(143);
        let out = run(env.bwai(mode, &["-q", "--", "no-such-command-anywhere"]));
        out.expect_code(127);
        assert!(
            out.stderr.contains("command not found"),
            "{}",
            out.describe()
        );
        let out = run(env.bwai(mode, &["-q", "--", "/etc/hostname"]));
        out.expect_code(126);
    }
}

#[test]
fn arguments_pass_exactly() {
    let env = Env::new();
    let out = run(env.bwai(
        Mode::Full,
        &[
            "-q", "--", "printf", "[%s]", "a b", "", "$HOME", "--x", "'q'",
        ],
    ));
    out.expect_code(0);
    assert_eq!(out.stdout, "[a b][][$HOME][--x]['q']");
}

/// A payload that says when it is ready and reports the signals it gets.
const TRAP_SCRIPT: &str =
    "for s in TERM HUP INT USR1; do trap \"echo got-$s; exit 42\" $s; done; echo ready; \
                           while :; do sleep 0.05; done";

#[test]
fn signals_reach_the_command() {
    let env = Env::new();
    for mode in all_modes() {
        for sig in [
            Signal::SIGTERM,
            Signal::SIGHUP,
            Signal::SIGINT,
            Signal::SIGUSR1,
        ] {
            let mut bg = spawn(env.bwai(mode, &["-q", "--", "sh", "-c", TRAP_SCRIPT]));
            assert_eq!(
                bg.next_line(Duration::from_secs(20)).as_deref(),
                Some("ready"),
                "{mode:?} {}",
                bg.stderr()
            );
            bg.signal(sig);
            let name = sig.as_str().trim_start_matches("SIG");
            assert_eq!(
                bg.next_line(Duration::from_secs(20)).as_deref(),
                Some(format!("got-{name}").as_str()),
                "{mode:?} {sig:?}: {}",
                bg.stderr()
            );
            let status = bg
                .wait_timeout(Duration::from_secs(20))
                .expect("bwai exits");
            assert_eq!(status.code(), Some(42), "{mode:?} {sig:?}");
        }
    }
}

#[test]
fn killing_bwai_leaves_no_process() {
    let env = Env::new();
    for mode in all_modes() {
        let marker = unique_marker("orphans");
        let mut cmd = env.bwai(mode, &["-q", "--"]);
        cmd.arg(&env.attack).args(["fork-bomb-lite", "5", &marker]);
        let mut bg = spawn(cmd);
        // bwai's own command line carries the marker too: wait for the 5 children + the parent.
        assert!(
            wait_procs_with_marker(&marker, 6, Duration::from_secs(20)),
            "{mode:?}: not started\n{}",
            bg.stderr()
        );
        bg.signal(Signal::SIGKILL);
        bg.wait_timeout(Duration::from_secs(10));
        let gone = wait_no_procs_with_marker(&marker, Duration::from_secs(10));
        if !gone {
            let left = pids_with_marker(&marker);
            kill_procs_with_marker(&marker);
            panic!("{mode:?}: processes outlived bwai: {left:?}");
        }
    }
}

#[test]
fn daemonized_process_ends_with_the_command() {
    let env = Env::new();
    for mode in all_modes() {
        let marker = unique_marker("daemon");
        let mut cmd = env.bwai(mode, &["-q", "--"]);
        cmd.arg(&env.attack).args(["daemonize", "60", &marker]);
        let out = run(cmd);
        assert!(out.code().is_some(), "{}", out.describe());
        let gone = wait_no_procs_with_marker(&marker, Duration::from_secs(10));
        if !gone {
            kill_procs_with_marker(&marker);
            panic!(
                "{mode:?}: a daemon escaped the end of the sandbox\n{}",
                out.describe()
            );
        }
    }
}

#[test]
fn zombies_are_reaped_by_init() {
    let env = Env::new();
    for mode in [Mode::Full, Mode::NoLandlock] {
        // A grandchild orphaned to init exits; nothing may stay a zombie.
        let script = "(sleep 0.1 &) ; sleep 0.6; grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l";
        let out = run(env.bwai(mode, &["-q", "--", "sh", "-c", script]));
        out.expect_code(0);
        assert_eq!(
            out.stdout.trim(),
            "0",
            "{mode:?}: zombies left\n{}",
            out.describe()
        );
    }
}

fn config_case(env: &Env, name: &str, text: &str) -> RunOutput {
    let path = env.root.path().join(name);
    fs::write(&path, text).unwrap();
    let marker = env.project.join(format!("ran-{name}"));
    let out = run(env.bwai(
        Mode::Full,
        &[
            "--config".as_ref(),
            path.as_os_str(),
            "--".as_ref(),
            "touch".as_ref(),
            marker.as_os_str(),
        ],
    ));
    assert!(
        !marker.exists(),
        "{name}: the command ran despite a bad config\n{}",
        out.describe()
    );
    out.expect_code(2);
    assert!(
        out.stderr.contains(&path.display().to_string()),
        "{name}: file not named\n{}",
        out.describe()
    );
    out
}

#[test]
fn every_kind_of_config_error_stops_before_running() {
    let env = Env::new();
    let out = config_case(
        &env,
        "unknown.json",
        "{\n  \"filesystem\": {\"read_onyl\": []}\n}",
    );
    assert!(
        out.stderr.contains(":2:") && out.stderr.contains("read_onyl"),
        "{}",
        out.describe()
    );
    let out = config_case(&env, "type.json", "{\"network\": 5}");
    assert!(out.stderr.contains(":1:"), "{}", out.describe());
    let out = config_case(&env, "syntax.json", "{\n\"shell\": \"/bin/sh\",\n}");
    assert!(out.stderr.contains(":3:"), "{}", out.describe());
    let out = config_case(
        &env,
        "badpath.json",
        "{\"filesystem\": {\"read_write\": [\"relative/dir\"]}}",
    );
    assert!(
        out.stderr.contains("relative/dir") && out.stderr.contains(":1:"),
        "{}",
        out.describe()
    );
    let out = config_case(
        &env,
        "dotdot.json",
        "{\"filesystem\": {\"read_only\": [\"~/../../etc\"]}}",
    );
    assert!(out.stderr.contains(".."), "{}", out.describe());
    let out = config_case(
        &env,
        "wholehome.json",
        "{\"filesystem\": {\"read_write\": [\"~/\"]}}",
    );
    assert!(out.stderr.contains("whole"), "{}", out.describe());
    let out = config_case(&env, "env.json", "{\"env\": {\"allow\": [\"*\"]}}");
    assert!(out.stderr.contains("env.allow"), "{}", out.describe());
    let out = config_case(
        &env,
        "seccomp.json",
        "{\"seccomp\": {\"allow\": [\"ioctl\"]}}",
    );
    assert!(out.stderr.contains("deny list"), "{}", out.describe());
    let out = config_case(&env, "utf8.json", "{\"shell\": \"\u{0}\"}");
    assert!(
        out.stderr.contains("shell") || out.stderr.contains("control character"),
        "{}",
        out.describe()
    );

    // Unreadable and missing files.
    let missing = env.root.path().join("missing.json");
    let out = run(env.bwai(
        Mode::Full,
        &[
            "--config".as_ref(),
            missing.as_os_str(),
            "--".as_ref(),
            "true".as_ref(),
        ],
    ));
    out.expect_code(2);
    assert!(out.stderr.contains("missing.json"), "{}", out.describe());
    let dir = env.root.path();
    let out = run(env.bwai(
        Mode::Full,
        &[
            "--config".as_ref(),
            dir.as_os_str(),
            "--".as_ref(),
            "true".as_ref(),
        ],
    ));
    out.expect_code(2);
    assert!(out.stderr.contains("directory"), "{}", out.describe());
    if !is_root() {
        let locked = env.root.path().join("locked.json");
        write_file(&locked, "{}", 0o000);
        let out = run(env.bwai(
            Mode::Full,
            &[
                "--config".as_ref(),
                locked.as_os_str(),
                "--".as_ref(),
                "true".as_ref(),
            ],
        ));
        out.expect_code(2);
        assert!(
            out.stderr.contains("Permission denied"),
            "{}",
            out.describe()
        );
    }

    // The default location is read too: a broken ~/.bwai.json stops everything.
    fs::write(env.home.join(".bwai.json"), "{\"shell\": 1}").unwrap();
    let marker = env.project.join("ran-default");
    let out = run(env.bwai(
        Mode::Full,
        &["--".as_ref(), "touch".as_ref(), marker.as_os_str()],
    ));
    out.expect_code(2);
    assert!(out.stderr.contains(".bwai.json:1:"), "{}", out.describe());
    assert!(!marker.exists());
}

#[test]
fn dump_config_is_complete_and_loads_back() {
    let env = Env::new();
    let out = run(env.bwai(Mode::Full, &["--dump-config"]));
    out.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("valid JSON");
    for key in [
        "shell",
        "filesystem",
        "env",
        "network",
        "require",
        "seccomp",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {}", out.stdout);
    }
    assert!(v["filesystem"]["read_only"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "/usr"));
    // Saved as the user's config, it is accepted, and user additions show up in the dump.
    fs::write(env.home.join(".bwai.json"), &out.stdout).unwrap();
    run(env.bwai(Mode::Full, &["-q", "--", "true"])).expect_code(0);
    fs::write(
        env.home.join(".bwai.json"),
        "{\"filesystem\": {\"read_only\": [\"~/tools\"]}}",
    )
    .unwrap();
    let out = run(env.bwai(Mode::Full, &["--dump-config"]));
    assert!(
        out.stdout.contains("~/tools") && out.stdout.contains("\"/usr\""),
        "{}",
        out.describe()
    );
}

#[test]
fn home_as_project_is_refused_unless_forced() {
    let env = Env::new();
    for dir in [
        env.home.clone(),
        env.home.join(".ssh"),
        env.root.path().to_path_buf(),
    ] {
        let out = run(env.bwai(Mode::Full, &["--", "true"]).current_dir(&dir));
        out.expect_code(125);
        assert!(
            out.stderr.contains("--dangerously-share-home"),
            "{}",
            out.describe()
        );
    }
    let out = run(env
        .bwai(
            Mode::Full,
            &["-q", "--dangerously-share-home", "--", "true"],
        )
        .current_dir(&env.home));
    out.expect_code(0);
}

#[test]
fn configured_paths_are_visible_as_configured() {
    let env = Env::new();
    write_file(&env.home.join("tools/tool.txt"), "tool", 0o644);
    write_file(&env.home.join("state/s.txt"), "state", 0o644);
    fs::write(
        env.home.join(".bwai.json"),
        "{\"filesystem\": {\"read_only\": [\"~/tools\"], \"read_write\": [\"~/state\"]}}",
    )
    .unwrap();
    for mode in all_modes() {
        let tool = env.home.join("tools/tool.txt");
        assert!(run(env.attack(mode, &["read".as_ref(), tool.as_os_str()]))
            .expect_ok()
            .contains("tool"));
        run(env.attack(mode, &["write".as_ref(), tool.as_os_str()]))
            .expect_denied(&["EROFS", "EACCES"]);
        let state = env.home.join(format!("state/new-{}", mode.name()));
        run(env.attack(mode, &["write".as_ref(), state.as_os_str()])).expect_ok();
        assert!(state.exists());
    }
}

#[test]
fn start_line_names_the_layers() {
    let env = Env::new();
    let out = run(env.bwai(Mode::Full, &["--", "true"]));
    out.expect_code(0);
    let line = out.stderr.lines().next().unwrap_or("");
    assert!(
        line.starts_with(&format!("bwai: sandboxed in {}", env.project.display())),
        "{}",
        out.describe()
    );
    for part in [
        "userns",
        "mount",
        "pid",
        "landlock abi",
        "seccomp",
        "net:host",
    ] {
        assert!(line.contains(part), "missing {part}: {line}");
    }
}

#[test]
fn interactive_shell_has_the_prompt_and_job_control() {
    let env = Env::new();
    let mut cmd = env.bwai(Mode::Full, &[] as &[&str]);
    cmd.stdin(Stdio::inherit());
    let out = run_in_pty(
        cmd,
        b"echo in-$((40+2)); sleep 30 &\njobs\nkill %1; wait; exit 5\n",
        Duration::from_secs(30),
    );
    let text = out.text();
    assert!(text.contains("[🫧] > "), "{}", out.describe());
    assert!(text.contains("in-42"), "{}", out.describe());
    assert!(text.contains("Running"), "job control: {}", out.describe());
    assert_eq!(out.code(), Some(5), "{}", out.describe());
}

#[test]
fn project_config_may_only_tighten() {
    let env = Env::new();
    let marker = env.project.join("ran");
    // Loosening: refused before anything runs, with what and why.
    for text in [
        r#"{"filesystem": {"read_write": ["~/.ssh"]}}"#,
        r#"{"env": {"allow": ["AWS_*"]}}"#,
        r#"{"seccomp": {"allow": ["mount"]}}"#,
        r#"{"filesystem": {"protected": {"replace": []}}}"#,
    ] {
        fs::write(env.project.join(".bwai.json"), text).unwrap();
        let out = run(env.bwai(
            Mode::Full,
            &["--".as_ref(), "touch".as_ref(), marker.as_os_str()],
        ));
        out.expect_code(2);
        assert!(
            out.stderr.contains("would loosen"),
            "{text}\n{}",
            out.describe()
        );
        assert!(!marker.exists(), "{text}: the command ran");
    }
    // Tightening applies: the project asks for no network.
    fs::write(env.project.join(".bwai.json"), r#"{"network": "none"}"#).unwrap();
    let out = run(env.bwai(Mode::Full, &["--", "true"]));
    out.expect_code(0);
    assert!(out.stderr.contains("net:none"), "{}", out.describe());
    // A symlinked project config is not read.
    fs::remove_file(env.project.join(".bwai.json")).unwrap();
    std::os::unix::fs::symlink(env.home.join(".bwai.json"), env.project.join(".bwai.json"))
        .unwrap();
    let out = run(env.bwai(Mode::Full, &["--", "true"]));
    out.expect_code(2);
    assert!(out.stderr.contains("symlink"), "{}", out.describe());
}

#[test]
fn a_killed_runs_private_tmp_is_removed_by_the_next_run() {
    // Without namespaces the private /tmp is a directory on the host's; a
    // bwai killed with SIGKILL cannot remove it, so the next run does.
    let env = Env::new();
    let tmp = env.root.path().join("tmp");
    fs::create_dir_all(&tmp).unwrap();
    let stale = tmp.join("bwai-999999999-AbCdEf"); // above any pid_max
    let live = tmp.join(format!("bwai-{}-GhIjKl", std::process::id()));
    let other = tmp.join("bwai-notapid-MnOpQr");
    for d in [&stale, &live, &other] {
        fs::create_dir_all(d.join("sub")).unwrap();
        fs::write(d.join("sub/file"), "left").unwrap();
    }
    let mut cmd = env.bwai(Mode::NoUserns, &["-q", "--", "true"]);
    cmd.env("TMPDIR", &tmp);
    let out = run(cmd);
    out.expect_code(0);
    assert!(
        !stale.exists(),
        "the stale private /tmp is still there\n{}",
        out.describe()
    );
    assert!(
        live.join("sub/file").exists(),
        "a live bwai's /tmp was removed"
    );
    assert!(
        other.join("sub/file").exists(),
        "a directory not named by bwai was removed"
    );
    // And this run's own is gone too.
    let left: Vec<_> = fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
}

#[test]
fn an_agents_state_folder_is_made_so_its_login_outlives_the_run() {
    use std::os::unix::fs::PermissionsExt;
    for mode in all_modes() {
        let env = Env::new();
        let claude = env.home.join(".claude");
        // No agent, no folder.
        run(env.bwai(mode, &["-q", "--", "true"])).expect_code(0);
        assert!(!claude.exists(), "{mode:?}: made without its agent");

        let out = run(env.bwai(
            mode,
            &[
                "--profile=claude",
                "--",
                "sh",
                "-c",
                "echo token > ~/.claude/login",
            ],
        ));
        out.expect_code(0);
        assert_eq!(
            fs::read_to_string(claude.join("login")).unwrap_or_default(),
            "token\n",
            "{mode:?}: the login did not outlive the run\n{}",
            out.describe()
        );
        let perms = fs::metadata(&claude).unwrap().permissions().mode() & 0o777;
        assert_eq!(perms, 0o700, "{mode:?}");
        assert!(out.stderr.contains("created"), "{}", out.describe());

        // Never made through a symlink: ~/.config points elsewhere.
        let elsewhere = env.root.path().join("elsewhere");
        fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, env.home.join(".config")).unwrap();
        let out = run(env.bwai(mode, &["--profile=goose", "--", "true"]));
        out.expect_code(0);
        assert!(
            out.stderr.contains(".config is a symlink or not a folder"),
            "{mode:?}\n{}",
            out.describe()
        );
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0, "{mode:?}");
    }
}
