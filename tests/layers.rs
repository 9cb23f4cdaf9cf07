//! The defence-in-depth layers (issue: Landlock and seccomp, probing, the
//! fallback ladder, doctor), each proven on the real kernel. Fallback rungs
//! are produced for real by the helpers in examples/: `nouserns` blocks user
//! namespaces as Docker's seccomp profile does, `nolandlock` makes the
//! Landlock syscalls return ENOSYS.

mod common;

use std::fs;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// `nouserns nolandlock bwai ARGS`: neither namespaces nor Landlock.
fn bwai_without_both(env: &Env, args: &[&str]) -> Command {
    let mut c = env.bwai(Mode::NoUserns, &[] as &[&str]);
    // env.bwai built `nouserns bwai`; rebuild it as `nouserns nolandlock bwai ARGS`.
    let mut wrapped = Command::new(helper("nouserns"));
    wrapped.arg(helper("nolandlock")).arg(bwai_bin()).args(args);
    wrapped.current_dir(&env.project).env_clear();
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            wrapped.env(k, v);
        }
    }
    wrapped.stdin(Stdio::null());
    c.stdin(Stdio::null());
    wrapped
}

fn report(env: &Env, mode: Mode, extra: &[&str], cmd: &[&str]) -> (RunOutput, serde_json::Value) {
    let path = env.root.path().join(format!("report-{}.json", mode.name()));
    let _ = fs::remove_file(&path);
    let mut args: Vec<String> = vec!["--report".into(), path.to_string_lossy().into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("--".into());
    args.extend(cmd.iter().map(|s| s.to_string()));
    let out = run(env.bwai(mode, &args));
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("no report ({e})\n{}", out.describe()));
    (out, serde_json::from_str(&text).expect("report is JSON"))
}

// ---------------------------------------------------------------- Landlock

#[test]
fn landlock_alone_denies_reading_outside_the_policy() {
    let env = Env::new();
    // No namespaces: the files are there, only Landlock stands between.
    let out = run(env.attack(
        Mode::NoUserns,
        &["read".as_ref(), env.ssh_key().as_os_str()],
    ));
    out.expect_denied(&["EACCES"]);
    let out = run(env.attack(
        Mode::NoUserns,
        &["read".as_ref(), env.other_secret().as_os_str()],
    ));
    out.expect_denied(&["EACCES"]);
    // Control: the same read outside bwai works, so the test can fail.
    let control = run(Command::new(helper("attack"))
        .arg("read")
        .arg(env.ssh_key()));
    assert!(control.expect_ok().contains(SSH_KEY_SECRET));
    // And inside, what the policy grants is readable.
    run(env.attack(Mode::NoUserns, &["read", "/etc/passwd"])).expect_ok();
}

#[test]
fn landlock_alone_denies_writing_a_read_only_tree() {
    let env = Env::new();
    // Landlock refuses before the filesystem's own permissions are consulted
    // (root would otherwise be allowed to write /usr).
    run(env.attack(Mode::NoUserns, &["write", "/usr/lib/bwai-test-file"]))
        .expect_denied(&["EACCES"]);
    run(env.attack(Mode::NoUserns, &["write", "/etc/passwd"])).expect_denied(&["EACCES"]);
    let outside = env.home.join("planted");
    run(env.attack(Mode::NoUserns, &["write".as_ref(), outside.as_os_str()]))
        .expect_denied(&["EACCES"]);
    assert!(!outside.exists());
}

#[test]
fn landlock_refer_blocks_links_and_renames_out_of_the_project() {
    let env = Env::new();
    let inside = env.project_file("moveme", "data");
    for mode in [Mode::Full, Mode::NoUserns] {
        let dest = env.home.join(format!("escaped-{}", mode.name()));
        let out = run(env.attack(
            mode,
            &["rename".as_ref(), inside.as_os_str(), dest.as_os_str()],
        ));
        out.expect_denied(&["EXDEV", "EACCES", "ENOENT", "EROFS"]);
        let out = run(env.attack(
            mode,
            &[
                "link".as_ref(),
                env.ssh_key().as_os_str(),
                env.project.join("key").as_os_str(),
            ],
        ));
        out.expect_denied(&["EXDEV", "EACCES", "ENOENT", "EPERM"]);
        assert!(!dest.exists() && !env.project.join("key").exists());
    }
}

#[test]
fn report_says_what_is_in_force() {
    let env = Env::new();
    let abi = host_landlock_abi().unwrap_or(0);
    if abi == 0 {
        return skip("this kernel has no Landlock");
    }

    let (out, r) = report(&env, Mode::Full, &[], &["true"]);
    out.expect_code(0);
    assert_eq!(r["report_version"], 1);
    assert_eq!(r["mode"], "full", "{r:#}");
    assert_eq!(r["layers"]["namespaces"]["in_force"], true);
    assert_eq!(r["layers"]["landlock"]["in_force"], true);
    assert_eq!(r["layers"]["landlock"]["abi"], abi.min(7));
    assert_eq!(r["layers"]["seccomp"]["in_force"], true);
    assert_eq!(r["layers"]["no_new_privs"]["in_force"], true);
    assert_eq!(r["exit"]["code"], 0);
    assert!(r["layers"]["landlock"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "fs"));

    let (out, r) = report(&env, Mode::NoUserns, &[], &["sh", "-c", "exit 4"]);
    out.expect_code(4);
    assert_eq!(r["mode"], "degraded", "{r:#}");
    assert_eq!(r["layers"]["namespaces"]["in_force"], false);
    let reason = r["layers"]["namespaces"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("EPERM") || reason.contains("not permitted"),
        "{reason}"
    );
    assert_eq!(r["layers"]["landlock"]["in_force"], true);
    assert_eq!(r["exit"]["code"], 4);
    assert!(
        out.stderr.contains("warning: no namespaces"),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr.contains("[no namespaces | landlock abi"),
        "{}",
        out.describe()
    );

    let (out, r) = report(&env, Mode::NoLandlock, &[], &["sh", "-c", "kill -USR1 $$"]);
    out.expect_code(128 + 10);
    assert_eq!(r["mode"], "degraded", "{r:#}");
    assert_eq!(r["layers"]["landlock"]["in_force"], false);
    assert_eq!(r["layers"]["landlock"]["abi"], 0);
    assert!(
        r["layers"]["landlock"]["reason"]
            .as_str()
            .unwrap()
            .contains("no Landlock"),
        "{r:#}"
    );
    assert_eq!(r["layers"]["namespaces"]["in_force"], true);
    assert_eq!(r["exit"]["signal"], 10);
    assert!(out.stderr.contains("| no landlock |"), "{}", out.describe());
}

#[test]
fn require_refuses_when_a_layer_is_missing() {
    let env = Env::new();
    for (mode, layer) in [
        (Mode::NoUserns, "namespaces"),
        (Mode::NoLandlock, "landlock"),
    ] {
        let marker = env.project.join(format!("ran-{}", mode.name()));
        let out = run(env.bwai(
            mode,
            &[
                "--require".as_ref(),
                layer.as_ref(),
                "--".as_ref(),
                "touch".as_ref(),
                marker.as_os_str(),
            ],
        ));
        out.expect_code(125);
        assert!(
            out.stderr.contains(&format!("`{layer}`")),
            "{}",
            out.describe()
        );
        assert!(!marker.exists(), "{mode:?}: the command ran");
    }
    // The config key does the same.
    fs::write(
        env.home.join(".bwai.json"),
        r#"{"require": ["namespaces", "seccomp"]}"#,
    )
    .unwrap();
    run(env.bwai(Mode::NoUserns, &["--", "true"])).expect_code(125);
    run(env.bwai(Mode::Full, &["-q", "--", "true"])).expect_code(0);
    fs::remove_file(env.home.join(".bwai.json")).unwrap();
    run(env.bwai(
        Mode::Full,
        &[
            "-q",
            "--require",
            "namespaces,landlock,seccomp",
            "--",
            "true",
        ],
    ))
    .expect_code(0);
}

#[test]
fn neither_layer_refuses_without_opt_in() {
    let env = Env::new();
    let marker = env.project.join("ran-unconfined");
    let out = run(bwai_without_both(
        &env,
        &["--", "touch", marker.to_str().unwrap()],
    ));
    out.expect_code(125);
    assert!(
        out.stderr.contains("--dangerously-run-unconfined"),
        "{}",
        out.describe()
    );
    assert!(!marker.exists());

    let path = env.root.path().join("unconfined.json");
    let out = run(bwai_without_both(
        &env,
        &[
            "--dangerously-run-unconfined",
            "--report",
            path.to_str().unwrap(),
            "--",
            "touch",
            marker.to_str().unwrap(),
        ],
    ));
    out.expect_code(0);
    assert!(marker.exists());
    let r: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(r["mode"], "unconfined");
    assert_eq!(
        r["layers"]["seccomp"]["in_force"], true,
        "seccomp stays on: {r:#}"
    );
}

// ---------------------------------------------------------------- seccomp

/// Syscalls on the deny list, and the errno each must get.
const DENIED: &[(&[&str], &str)] = &[
    (&["mount"], "EPERM"),
    (&["umount", "/proc"], "EPERM"),
    (&["pivot_root"], "EPERM"),
    (&["chroot", "/"], "EPERM"),
    (&["open-tree"], "EPERM"),
    (&["fsopen"], "EPERM"),
    (&["mount-setattr", "/"], "EPERM"),
    (&["unshare-user"], "EPERM"),
    (&["unshare-ns"], "EPERM"),
    (&["unshare-net"], "EPERM"),
    (&["clone-newuser"], "EPERM"),
    (&["clone3-newuser"], "ENOSYS"),
    (&["setns", "/proc/self/ns/mnt"], "EPERM"),
    (&["keyctl"], "EPERM"),
    (&["bpf"], "EPERM"),
    (&["perf"], "EPERM"),
    (&["userfaultfd"], "EPERM"),
    (&["io_uring"], "EPERM"),
    (&["personality"], "EPERM"),
    (&["kexec"], "EPERM"),
    (&["init_module"], "EPERM"),
    (&["reboot"], "EPERM"),
    (&["swapon"], "EPERM"),
    (&["syslog"], "EPERM"),
    (&["acct"], "EPERM"),
    (&["quotactl"], "EPERM"),
    (&["settime"], "EPERM"),
    (&["open_by_handle_at"], "EPERM"),
    (&["x32"], "ENOSYS"),
];

#[cfg(target_arch = "x86_64")]
const DENIED_X86: &[(&[&str], &str)] = &[(&["iopl"], "EPERM"), (&["ioperm"], "EPERM")];
#[cfg(not(target_arch = "x86_64"))]
const DENIED_X86: &[(&[&str], &str)] = &[];

#[test]
fn seccomp_denies_every_class_in_every_mode() {
    let env = Env::new();
    for mode in all_modes() {
        for (args, errno) in DENIED.iter().chain(DENIED_X86) {
            let out = run(env.attack(mode, args));
            match out.attack() {
                Attack::Denied { name, .. } if name == *errno => {}
                _ => panic!("{mode:?} {args:?}: expected {errno}\n{}", out.describe()),
            }
        }
        // Allowed neighbours still work: the filter is not a blanket refusal.
        run(env.attack(mode, &["personality-query"])).expect_ok();
    }
}

#[test]
fn seccomp_alone_denies_the_classes() {
    // Neither namespaces nor Landlock: only seccomp (and no_new_privs) remain.
    let env = Env::new();
    for (args, errno) in DENIED.iter().chain(DENIED_X86) {
        let mut full: Vec<&str> = vec![
            "-q",
            "--dangerously-run-unconfined",
            "--",
            env.attack.to_str().unwrap(),
        ];
        full.extend_from_slice(args);
        let out = run(bwai_without_both(&env, &full));
        match out.attack() {
            Attack::Denied { name, .. } if name == *errno => {}
            _ => panic!("{args:?}: expected {errno}\n{}", out.describe()),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn int80_is_killed() {
    let env = Env::new();
    // Control: outside the sandbox, i386 syscalls reach the kernel.
    let control = run(Command::new(helper("attack")).arg("int80"));
    assert!(control.code().is_some(), "control: {}", control.describe());
    for mode in all_modes() {
        let out = run(env.attack(mode, &["int80"]));
        out.expect_code(128 + nix::libc::SIGSYS);
    }
}

#[test]
fn allowed_back_syscall_is_reported_and_works() {
    let env = Env::new();
    fs::write(
        env.home.join(".bwai.json"),
        r#"{"seccomp": {"allow": ["unshare"]}}"#,
    )
    .unwrap();
    let (out, r) = report(
        &env,
        Mode::Full,
        &[],
        &[env.attack.to_str().unwrap(), "unshare-user"],
    );
    assert_eq!(
        r["layers"]["seccomp"]["allowed_back"][0], "unshare",
        "{r:#}"
    );
    // A nested user namespace can now be created (tools that sandbox themselves)...
    out.expect_ok();
    // ...but only unshare came back: the rest of the list still holds.
    run(env.attack(Mode::Full, &["setns", "/proc/self/ns/mnt"])).expect_denied(&["EPERM"]);
    run(env.attack(Mode::Full, &["mount"])).expect_denied(&["EPERM"]);
    // Without the key, the same call is refused.
    fs::remove_file(env.home.join(".bwai.json")).unwrap();
    run(env.attack(Mode::Full, &["unshare-user"])).expect_denied(&["EPERM"]);
}

#[test]
fn tiocsti_is_refused() {
    let env = Env::new();
    for sub in ["tiocsti", "tiocsti64"] {
        for mode in all_modes() {
            let mut cmd = env.attack_with(mode, &["-q"], &[sub]);
            cmd.stdin(Stdio::inherit());
            let out = run_in_pty(cmd, b"", Duration::from_secs(30));
            let text = out.text();
            assert!(
                text.contains("denied EPERM"),
                "{mode:?} {sub}: {}",
                out.describe()
            );
            assert!(!text.contains("pushed"), "{}", out.describe());
        }
    }
    // Control: outside the sandbox TIOCSTI would be accepted, or refused by
    // the kernel's own legacy_tiocsti switch: either way the test above
    // checked bwai's answer (EPERM from seccomp), not the kernel's.
}

#[test]
fn tioclinux_is_refused() {
    let env = Env::new();
    for mode in all_modes() {
        let mut cmd = env.attack_with(mode, &["-q"], &["tioclinux"]);
        cmd.stdin(Stdio::inherit());
        let out = run_in_pty(cmd, b"", Duration::from_secs(30));
        assert!(
            out.text().contains("denied EPERM"),
            "{mode:?}: {}",
            out.describe()
        );
    }
}

// ---------------------------------------------------------------- privileges

#[test]
fn capabilities_are_dropped() {
    let env = Env::new();
    for mode in all_modes() {
        let out = run(env.attack(mode, &["cap-check"]));
        let text = &out.stdout;
        assert!(
            text.contains("CapEff=0000000000000000"),
            "{mode:?}: {}",
            out.describe()
        );
        assert!(
            text.contains("CapPrm=0000000000000000"),
            "{mode:?}: {}",
            out.describe()
        );
        assert!(
            text.contains("CapAmb=0000000000000000"),
            "{mode:?}: {}",
            out.describe()
        );
        assert!(
            text.contains("NoNewPrivs=1"),
            "{mode:?}: {}",
            out.describe()
        );
        // The bounding set can only be emptied where we hold CAP_SETPCAP: in
        // a user namespace, or as root.
        if mode != Mode::NoUserns || is_root() {
            assert!(
                text.contains("CapBnd=0000000000000000"),
                "{mode:?}: {}",
                out.describe()
            );
        }
    }
}

#[test]
fn setuid_binary_gains_nothing() {
    let env = Env::new();
    // A setuid copy of `id` inside the project: nosuid + no_new_privs. As
    // root it is made setuid to another user (nobody), so that gaining its
    // owner's identity is visible; other users cannot make such a file.
    let suid = env.project.join("suid-id");
    fs::copy("/usr/bin/id", &suid).unwrap();
    if is_root() {
        use std::os::unix::fs::PermissionsExt;
        std::os::unix::fs::chown(&suid, Some(65534), None).unwrap();
        fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755)).unwrap();
        // Control: outside, the setuid bit works.
        let out = run(Command::new(&suid).arg("-u"));
        assert_eq!(out.stdout.trim(), "65534", "control\n{}", out.describe());
    }
    for mode in all_modes() {
        let out = run(env.bwai(mode, &["-q", "--", suid.to_str().unwrap(), "-u"]));
        out.expect_code(0);
        assert_eq!(
            out.stdout.trim(),
            nix::unistd::geteuid().to_string(),
            "{mode:?}"
        );
    }
}

#[test]
fn inherited_descriptor_is_closed() {
    let env = Env::new();
    let secret = fs::File::open(env.ssh_key()).unwrap();
    let dir = fs::File::open(&env.home).unwrap();
    for mode in all_modes() {
        let mut cmd = env.attack(mode, &["fds"]);
        inherit_fd(&mut cmd, secret.as_raw_fd());
        inherit_fd(&mut cmd, dir.as_raw_fd());
        let out = run(cmd);
        out.expect_nothing();
        assert!(!out.stdout.contains(SSH_KEY_SECRET));
    }
}

#[test]
fn net_none_blocks_outside_tcp() {
    let env = Env::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // Control: the host listener is reachable with the host network.
    run(env.attack(Mode::Full, &["tcp-connect", &addr])).expect_ok();
    for mode in all_modes() {
        let out = run(env.attack_with(mode, &["--net", "none"], &["tcp-connect", &addr]));
        out.expect_denied(&["ECONNREFUSED", "ENETUNREACH", "EACCES", "EPERM"]);
        let out = run(env.attack_with(mode, &["--net", "none"], &["udp-send", "127.0.0.1:9"]));
        if mode == Mode::NoUserns {
            // Landlock covers TCP only: seccomp refuses inet sockets outright.
            out.expect_denied(&["EPERM"]);
        }
    }
}

// ---------------------------------------------------------------- doctor

#[test]
fn doctor_json_has_the_documented_shape() {
    let env = Env::new();
    let out = run(env.bwai(Mode::Full, &["doctor", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("doctor prints JSON");
    assert_eq!(v["doctor_version"], 1);
    assert!(v["kernel"].is_string());
    for f in [
        "user_namespaces",
        "landlock",
        "seccomp",
        "no_new_privs",
        "cgroup_v2",
    ] {
        assert!(v["features"][f]["available"].is_boolean(), "{f}: {v:#}");
    }
    for f in [
        "fs",
        "refer",
        "truncate",
        "tcp",
        "ioctl-dev",
        "scopes",
        "audit",
    ] {
        assert!(
            v["features"]["landlock"]["features"][f].is_boolean(),
            "{f}: {v:#}"
        );
    }
    let full = v["mode"] == "full";
    assert_eq!(
        out.code(),
        Some(if full { 0 } else { 1 }),
        "{}",
        out.describe()
    );
    if must_work() {
        assert!(full, "CI machines must offer full protection: {v:#}");
    }

    // With user namespaces blocked, doctor says so, why, and how to fix it.
    let out = run(env.bwai(Mode::NoUserns, &["doctor", "--json"]));
    out.expect_code(1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["features"]["user_namespaces"]["available"], false);
    assert!(v["features"]["user_namespaces"]["reason"].is_string());
    assert!(v["features"]["user_namespaces"]["fix"].is_string());
    assert_eq!(v["mode"], "degraded");

    let out = run(env.bwai(Mode::NoLandlock, &["doctor", "--json"]));
    out.expect_code(1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["features"]["landlock"]["available"], false);
    assert_eq!(v["features"]["landlock"]["abi"], 0);

    let out = run(bwai_without_both(&env, &["doctor", "--json"]));
    out.expect_code(125);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["mode"], "refuse");

    // The table is for people: each feature on a line, the verdict at the end.
    let out = run(env.bwai(Mode::NoUserns, &["doctor"]));
    assert!(
        out.stdout.contains("user namespaces") && out.stdout.contains("bwai here: degraded"),
        "{}",
        out.describe()
    );
    assert!(out.stdout.contains("how to get more"), "{}", out.describe());
}
