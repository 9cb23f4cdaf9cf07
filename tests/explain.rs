//! `bwai explain` and `bwai --dry-run` tell the truth: for representative
//! paths, what explain says (read-write, read-only, absent, denied) is what
//! the sandbox really does, in every mode; and it says why, without ever
//! printing a secret.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use common::*;

fn json_of(out: &RunOutput) -> Value {
    out.expect_code(0);
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("explain printed no JSON ({e})\n{}", out.describe()))
}

/// `bwai explain --json ARGS` in `mode`.
fn explain(env: &Env, mode: Mode, args: &[&str]) -> Value {
    let mut all = vec!["explain", "--json"];
    all.extend_from_slice(args);
    json_of(&run(env.bwai(mode, &all)))
}

/// The view explain must pick in each mode.
fn view_of(mode: Mode) -> &'static str {
    match mode {
        Mode::Full | Mode::NoLandlock => "namespaces",
        Mode::NoUserns => "landlock",
    }
}

/// What really happens to `path` inside the sandbox. Files that exist on
/// the host: read, then rename onto itself (a write that changes nothing,
/// refused by a read-only mount and by Landlock alike). Missing ones:
/// create.
fn reality(env: &Env, mode: Mode, path: &str, resolved: &str) -> &'static str {
    if fs::symlink_metadata(resolved).is_err() {
        let out = run(env.attack(mode, &["write", path]));
        return match out.attack() {
            Attack::Ok(_) => "read-write",
            Attack::Denied { .. } => "not writable",
            _ => panic!("{}", out.describe()),
        };
    }
    let out = run(env.attack(mode, &["read", path]));
    match out.attack() {
        Attack::Ok(_) => {}
        Attack::Denied { name, .. } if name == "ENOENT" => return "absent",
        Attack::Denied { name, .. } if name == "EACCES" => return "denied",
        _ => panic!("{}", out.describe()),
    }
    let out = run(env.attack(mode, &["rename", resolved, resolved]));
    match out.attack() {
        Attack::Ok(_) => "read-write",
        Attack::Denied { name, .. } if ["EROFS", "EACCES", "EPERM"].contains(&name.as_str()) => {
            "read-only"
        }
        _ => panic!("{}", out.describe()),
    }
}

/// A project with a protected hook, links in and out, and a user config
/// that adds a read-write and a read-only folder.
fn setup(env: &Env) -> PathBuf {
    write_file(
        &env.project.join(".git/hooks/pre-commit"),
        "#!/bin/sh\n",
        0o755,
    );
    write_file(&env.project.join(".git/config"), "[core]\n", 0o644);
    std::os::unix::fs::symlink(env.ssh_key(), env.project.join("key-link")).unwrap();
    std::os::unix::fs::symlink("/usr/bin", env.project.join("usr-bin-link")).unwrap();
    write_file(&env.home.join("state/data"), "state\n", 0o644);
    write_file(&env.home.join("tools/tool"), "tool\n", 0o755);
    let config = env.home.join(".bwai.json");
    fs::write(
        &config,
        "{\n  \"filesystem\": {\n    \"read_write\": [\"~/state\"],\n    \"read_only\": [\"~/tools\"]\n  }\n}\n",
    )
    .unwrap();
    config
}

#[test]
fn explain_matches_what_the_sandbox_does() {
    for mode in all_modes() {
        let env = Env::new();
        let config = setup(&env);
        let home = env.home.to_str().unwrap().to_string();
        let tmp_new = format!("/tmp/{}", unique_marker("explain-new"));
        let home_new = format!("{home}/{}", unique_marker("home-new"));
        let other = env.other_secret().to_str().unwrap().to_string();
        let ssh = env.ssh_key().to_str().unwrap().to_string();
        // (query, what explain must say in the namespace view, in the landlock view)
        let cases: Vec<(String, &str, &str)> = vec![
            ("README".into(), "read-write", "read-write"),
            ("new-file".into(), "read-write", "read-write"),
            (ssh.clone(), "absent", "denied"),
            (other, "absent", "denied"),
            ("key-link".into(), "absent", "denied"),
            ("/usr/bin/env".into(), "read-only", "read-only"),
            ("usr-bin-link/env".into(), "read-only", "read-only"),
            ("/etc/passwd".into(), "read-only", "read-only"),
            ("/etc/shadow".into(), "absent", "denied"),
            (
                ".git/hooks/pre-commit".into(),
                "read-only",
                "read-write", // Landlock cannot deny it: restored after the run
            ),
            (".envrc".into(), "read-write", "read-write"), // quarantined after
            (format!("{home}/state/data"), "read-write", "read-write"),
            (format!("{home}/tools/tool"), "read-only", "read-only"),
            (format!("{home}/.bash_history"), "absent", "denied"),
            (tmp_new.clone(), "read-write", "denied"),
            (home_new.clone(), "read-write", "denied"),
        ];
        let queries: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
        let v = explain(&env, mode, &queries);
        assert_eq!(v["view"], view_of(mode), "{mode:?}: {v:#}");
        let answers = v["paths"].as_array().unwrap();
        assert_eq!(answers.len(), cases.len());
        for ((query, ns, ll), a) in cases.iter().zip(answers) {
            let said = a["access"].as_str().unwrap();
            let want = if view_of(mode) == "namespaces" {
                ns
            } else {
                ll
            };
            assert_eq!(said, *want, "{mode:?} {query}: {a:#}");
            let resolved = a["path"].as_str().unwrap();
            let real = reality(&env, mode, query, resolved);
            let agrees = match (said, real) {
                (s, r) if s == r => true,
                ("read-only" | "absent" | "denied", "not writable") => true,
                _ => false,
            };
            assert!(
                agrees,
                "{mode:?} {query}: explain says {said} but the sandbox gives {real}\n{a:#}"
            );
        }
        // The reasons name the default, the config line, the protection.
        let why = |i: usize| answers[i]["why"].as_str().unwrap().to_string();
        assert!(why(5).contains("\"/usr\" (default)"), "{}", why(5));
        assert!(
            why(11).contains(&format!("{}:3", config.display())),
            "{}",
            why(11)
        );
        assert!(why(9).contains("protected"), "{}", why(9));
        let link = &answers[4]["symlinks"][0];
        assert_eq!(link["target"], ssh.as_str(), "{:#}", answers[4]);
        let _ = fs::remove_file(&tmp_new);
        // The sandbox left nothing in the real home (the tmpfs took it).
        if view_of(mode) == "namespaces" {
            assert!(!Path::new(&home_new).exists(), "{mode:?}");
        }
    }
}

#[test]
fn explain_admits_a_protection_that_does_not_hold() {
    // A hooks folder too large to keep a copy of is not restored after the
    // run: only the read-only mount (namespaces) protects it, and without
    // namespaces nothing does. explain must say which, not promise more.
    for mode in all_modes() {
        let env = Env::new();
        let hooks = env.project.join(".git/hooks");
        write_file(&hooks.join("pre-commit"), "#!/bin/sh\n", 0o755);
        fs::File::create(hooks.join("big.pack"))
            .unwrap()
            .set_len(17 << 20)
            .unwrap();
        let v = explain(&env, mode, &[".git/hooks/pre-commit"]);
        let a = &v["paths"][0];
        let said = a["access"].as_str().unwrap();
        let real = reality(
            &env,
            mode,
            ".git/hooks/pre-commit",
            a["path"].as_str().unwrap(),
        );
        assert_eq!(said, real, "{mode:?}: {a:#}");
        if said == "read-write" {
            assert_eq!(a["protected"], "not enforced", "{mode:?}: {a:#}");
            assert!(a["why"].as_str().unwrap().contains("too large"), "{a:#}");
        }
    }
}

#[test]
fn explain_text_says_what_and_why() {
    let env = Env::new();
    setup(&env);
    let out = run(env.bwai(
        Mode::Full,
        &[
            "explain",
            env.ssh_key().to_str().unwrap(),
            ".git/hooks/pre-commit",
            "/usr/bin/ls",
            "key-link",
        ],
    ));
    out.expect_code(0);
    let t = &out.stdout;
    assert!(
        t.contains(&format!("{}: absent", env.ssh_key().display())),
        "{t}"
    );
    assert!(t.contains("not under any allowed tree"), "{t}");
    assert!(t.contains("is an empty tmpfs"), "{t}");
    assert!(
        t.contains(".git/hooks/pre-commit: read-only (protected: read-only mount)"),
        "{t}"
    );
    assert!(
        t.contains("filesystem.protected \".git/hooks\" (default)"),
        "{t}"
    );
    assert!(t.contains("/usr/bin/ls: read-only"), "{t}");
    assert!(t.contains("filesystem.read_only \"/usr\" (default)"), "{t}");
    assert!(
        t.contains(&format!(
            "symlink: {} -> {}",
            env.project.join("key-link").display(),
            env.ssh_key().display()
        )),
        "{t}"
    );
}

#[test]
fn dry_run_prints_the_policy_and_runs_nothing() {
    for mode in all_modes() {
        let env = Env::new();
        setup(&env);
        let out = run(env.bwai(mode, &["--dry-run", "--", "sh", "-c", "touch ran"]));
        out.expect_code(0);
        assert!(
            !env.project.join("ran").exists(),
            "{mode:?}: the command ran"
        );
        let t = &out.stdout;
        assert!(t.contains("nothing is run"), "{t}");
        assert!(t.contains("the project (the current directory)"), "{t}");
        assert!(t.contains("protected"), "{t}");
        assert!(
            !t.contains(".ssh"),
            "{mode:?}: ~/.ssh is not in the policy\n{t}"
        );

        let v = json_of(&run(env.bwai(
            mode,
            &["--dry-run", "--json", "--", "sh", "-c", "touch ran"],
        )));
        assert!(!env.project.join("ran").exists());
        assert_eq!(v["view"], view_of(mode));
        assert_eq!(v["command"][0], "sh");
        let fs_entries = v["filesystem"].as_array().unwrap();
        let project = fs_entries
            .iter()
            .find(|e| e["path"] == env.project.to_str().unwrap())
            .unwrap_or_else(|| panic!("no project entry: {v:#}"));
        assert_eq!(project["access"], "read-write");
        let state = fs_entries
            .iter()
            .find(|e| e["path"] == env.home.join("state").to_str().unwrap())
            .unwrap();
        assert_eq!(state["origin"]["key"], "filesystem.read_write");
        assert_eq!(state["origin"]["line"], 3);
        let hooks = v["protected"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["path"] == env.project.join(".git/hooks").to_str().unwrap())
            .unwrap();
        let how = match mode {
            Mode::NoUserns => "restored after the run",
            _ => "read-only mount",
        };
        assert_eq!(hooks["enforcement"], how, "{mode:?}");
    }
}

#[test]
fn explain_names_variables_never_values() {
    let env = Env::new();
    let secret = "sk-ant-SECRET-VALUE-123";
    for args in [
        vec!["explain", "-c", "claude --version"],
        vec!["explain", "--json", "-c", "claude --version"],
        vec!["--dry-run", "-c", "claude --version"],
    ] {
        let mut cmd = env.bwai(Mode::Full, &args);
        cmd.env("ANTHROPIC_API_KEY", secret)
            .env("AWS_SECRET_ACCESS_KEY", "aws-SECRET");
        let out = run(cmd);
        out.expect_code(0);
        assert!(out.stdout.contains("ANTHROPIC_API_KEY"), "{}", out.stdout);
        assert!(!out.stdout.contains(secret), "{args:?} printed a value");
        assert!(!out.stdout.contains("AWS_SECRET_ACCESS_KEY"), "{args:?}");
        assert!(!out.stdout.contains("aws-SECRET"));
        assert!(out.stdout.contains("claude"), "{args:?}: profile not named");
    }
    let v = json_of(&run(
        env.bwai(Mode::Full, &["explain", "--json", "-c", "claude --version"])
    ));
    let claude = v["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "claude")
        .unwrap_or_else(|| panic!("{v:#}"));
    assert!(claude["why"].as_str().unwrap().contains("`claude` is run"));
    assert_eq!(v["network"]["mode"], "host");
    assert_eq!(v["network"]["why"], "default");
    let v = json_of(&run(env.bwai(
        Mode::Full,
        &["explain", "--json", "--net", "none", "--", "make"],
    )));
    assert_eq!(v["network"]["mode"], "none");
    assert_eq!(v["network"]["why"], "--net");
    assert!(v["profiles"].as_array().unwrap().is_empty(), "{v:#}");
}

#[test]
fn bad_path_arguments_are_usage_errors() {
    let env = Env::new();
    std::os::unix::fs::symlink("loop", env.project.join("loop")).unwrap();
    for bad in ["", "~root/x", "loop"] {
        let out = run(env.bwai(Mode::Full, &["explain", bad]));
        out.expect_code(2);
        assert!(out.stderr.contains("explain"), "{}", out.describe());
        assert!(out.stdout.is_empty(), "{}", out.describe());
    }
    // A path that does not exist is a question, not an error.
    let out = run(env.bwai(Mode::Full, &["explain", "no/such/thing"]));
    out.expect_code(0);
    assert!(out.stdout.contains("read-write (does not exist yet)"));
}

#[test]
fn explain_traces_settings_to_the_project_config() {
    let env = Env::new();
    let project_config = env.project.join(".bwai.json");
    fs::write(
        &project_config,
        "{\n  \"network\": \"none\",\n  \"filesystem\": {\"protected\": [\"Makefile\"]}\n}\n",
    )
    .unwrap();
    write_file(&env.project.join("Makefile"), "all:\n", 0o644);
    let v = explain(&env, Mode::Full, &["Makefile"]);
    let a = &v["paths"][0];
    assert_eq!(a["access"], "read-only", "{a:#}");
    assert_eq!(a["protected"], "read-only mount");
    assert!(
        a["why"]
            .as_str()
            .unwrap()
            .contains(&format!("{}:3", project_config.display())),
        "{a:#}"
    );
    let v = explain(&env, Mode::Full, &[]);
    assert_eq!(v["network"]["mode"], "none");
    assert_eq!(
        v["network"]["why"],
        format!("\"network\" in {}:2", project_config.display())
    );
    // And the sandbox agrees: the Makefile cannot be changed.
    let out = run(env.attack(Mode::Full, &["append", "Makefile"]));
    out.expect_denied(&["EROFS"]);
}
