//! bwai: a layered sandbox for AI coding agents.
//!
//! The pipeline reads top to bottom: probe -> policy -> plan -> run (the
//! layers are applied there) -> report.

pub mod cli;
pub mod config;
pub mod doctor;
pub mod error;
pub mod explain;
pub mod layers;
pub mod leftovers;
pub mod net;
pub mod plan;
pub mod policy;
pub mod probe;
pub mod report;
pub mod run;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use clap::Parser;

use cli::{Cli, Sub};
use error::{Error, Result};

/// Run bwai with these arguments; returns the process exit status.
pub fn main_with_args(args: Vec<std::ffi::OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 2,
            };
        }
    };
    init_logging(cli.verbose);
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bwai: {e}");
            e.exit_code()
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .format_timestamp(None)
        .format_target(false)
        .init();
}

fn dispatch(mut cli: Cli) -> Result<i32> {
    if let Some(Sub::Doctor { json }) = cli.subcommand {
        let (caps, blocker) = doctor::examine();
        let (v, mode) = doctor::doctor_json(&caps, &blocker);
        if json {
            println!("{}", serde_json::to_string_pretty(&v).expect("JSON value"));
        } else {
            print!("{}", doctor::doctor_text(&v));
        }
        return Ok(doctor::exit_code(mode));
    }

    // `bwai explain` and `--dry-run`: the same pipeline, stopped before the run.
    let explain = explain::take(&mut cli);
    let caller = caller()?;
    let source = match &cli.config {
        Some(path) => config::Source::Explicit(path.clone()),
        None => config::Source::default_for(
            &caller.home,
            std::env::var("XDG_CONFIG_HOME").ok().as_deref(),
        ),
    };
    let (config, mut files) = config::load(&source)?;
    // The repository's own .bwai.json can only tighten what the user set.
    let project_dir = std::fs::canonicalize(&caller.cwd).unwrap_or_else(|_| caller.cwd.clone());
    let (config, project_file) = config::apply_project(config, &project_dir)?;
    files.extend(project_file);
    log::debug!(
        "configuration files read: {:?}",
        files.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    if cli.dump_config {
        println!(
            "{}",
            serde_json::to_string_pretty(&config).expect("config serializes")
        );
        return Ok(0);
    }

    let request = policy::Request {
        command: cli.command.clone(),
        argv: cli.argv.clone(),
        net: cli.net.as_ref().map(|n| n.mode),
        net_allow: cli
            .net
            .as_ref()
            .map(|n| n.allow.clone())
            .unwrap_or_default(),
        require: cli.require.clone(),
        profiles: cli.profile.clone(),
        share_home: cli.dangerously_share_home,
        allow_unconfined: cli.dangerously_run_unconfined,
        limits: cli.limits(),
        stdin_tty: run::stdin_is_tty(),
    };
    if explain.is_none() {
        // The agent's state folders, so that its login outlives the run.
        let folders = policy::state_folders(&config, &request)?;
        let (made, failed) = layers::protect::create_folders(&caller.home, &folders);
        for dir in made {
            if !cli.quiet {
                eprintln!(
                    "bwai: created {} for the agent's state (it stays after the run)",
                    dir.display()
                );
            }
        }
        for why in failed {
            eprintln!("bwai: warning: the agent's state folder was not created: {why}");
        }
    }
    let host = policy::RealFs::default();
    let policy = policy::build(&config, &request, &caller, &host)?;
    if let Some(what) = explain {
        let input = explain::Input::new(&policy, &config, &request, &caller, &files, &host);
        print!("{}", explain::print(&input, &what)?);
        return Ok(0);
    }
    // Open the report file now, without following a symlink, so nothing the
    // sandbox does later can redirect our write (CVE-2026-39861 class).
    let report_file = cli.report.as_ref().map(open_report).transpose()?;

    let caps = probe::probe();
    let plan = plan::plan(&caps, &policy.require, policy.allow_unconfined, None)?;
    let outcome = run::run(&policy, &caps, plan, &run::RunOptions { quiet: cli.quiet })?;

    if let Some((path, mut file)) = report_file {
        let text = serde_json::to_string_pretty(&report::report_json(&policy, &outcome))
            .expect("JSON value");
        file.write_all(text.as_bytes())
            .and_then(|_| file.write_all(b"\n"))
            .map_err(|e| Error::refused(format!("writing the report {}: {e}", path.display())))?;
    }
    Ok(outcome.exit_code)
}

fn open_report(path: &PathBuf) -> Result<(PathBuf, std::fs::File)> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .mode(0o600)
        .open(path)
        .map(|f| (path.clone(), f))
        .map_err(|e| {
            Error::usage(format!(
                "cannot open the report file {}: {e}",
                path.display()
            ))
        })
}

fn caller() -> Result<policy::Caller> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::refused(format!("the current directory is unusable: {e}")))?;
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid().as_raw();
    // The password database only when the environment does not say (an
    // NSS lookup costs more than the rest of the start-up logic).
    let env_home = std::env::var("HOME")
        .ok()
        .filter(|h| h.starts_with('/') && h.len() > 1);
    let env_user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty() && !u.contains('/'));
    let pw = if env_home.is_none() || env_user.is_none() {
        nix::unistd::User::from_uid(uid).ok().flatten()
    } else {
        None
    };
    let home = env_home
        .map(PathBuf::from)
        .or_else(|| pw.as_ref().map(|p| p.dir.clone()))
        .ok_or_else(|| Error::refused("cannot tell your home directory: set HOME"))?;
    let user = env_user
        .or_else(|| pw.as_ref().map(|p| p.name.clone()))
        .unwrap_or_else(|| uid.to_string());
    let env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    Ok(policy::Caller {
        cwd,
        home,
        user,
        uid: uid.as_raw(),
        gid,
        env,
    })
}
