//! The two pipes between the supervisor and the sandbox. Children report
//! (setup errors, what was really enforced, the command's status) one line
//! at a time; the supervisor answers with single bytes (go / abort).
//! Both pipes are close-on-exec: the command never sees them.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

/// Supervisor -> children.
pub const MAPS_WRITTEN: u8 = b'm';
pub const GO: u8 = b'g';
pub const ABORT: u8 = b'a';
/// Without namespaces: init is in the sandbox cgroup (if any); it may fork
/// the command.
pub const PLACED: u8 = b'p';

pub struct Channel {
    /// Children write reports here.
    pub report_w: Option<OwnedFd>,
    pub report_r: Option<OwnedFd>,
    /// The supervisor writes commands here.
    pub command_w: Option<OwnedFd>,
    pub command_r: Option<OwnedFd>,
}

impl Channel {
    pub fn new() -> Result<Self, String> {
        let (rr, rw) = pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let (cr, cw) = pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        Ok(Channel {
            report_w: Some(rw),
            report_r: Some(rr),
            command_w: Some(cw),
            command_r: Some(cr),
        })
    }

    /// In the supervisor after the fork: keep only our ends.
    pub fn into_supervisor(mut self) -> SupervisorEnd {
        self.report_w = None;
        self.command_r = None;
        SupervisorEnd {
            reports: BufReader::new(std::fs::File::from(
                self.report_r.take().expect("report pipe"),
            )),
            commands: std::fs::File::from(self.command_w.take().expect("command pipe")),
        }
    }

    /// In the children after the fork: keep only our ends.
    pub fn into_child(mut self) -> ChildEnd {
        self.report_r = None;
        self.command_w = None;
        ChildEnd {
            reports: std::fs::File::from(self.report_w.take().expect("report pipe")),
            commands: std::fs::File::from(self.command_r.take().expect("command pipe")),
        }
    }
}

pub struct SupervisorEnd {
    reports: BufReader<std::fs::File>,
    commands: std::fs::File,
}

impl SupervisorEnd {
    /// The next report line, or None when every child end is closed.
    pub fn next_report(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reports.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches('\n').to_string()),
        }
    }

    pub fn send(&mut self, byte: u8) {
        // A closed pipe means the children are gone; the wait loop sees that.
        let _ = self.commands.write_all(&[byte]);
    }
}

pub struct ChildEnd {
    reports: std::fs::File,
    commands: std::fs::File,
}

impl ChildEnd {
    /// One report line (< PIPE_BUF, so it is written atomically).
    pub fn report(&mut self, kind: &str, text: &str) {
        let clean: String = text
            .chars()
            .map(|c| if c == '\n' { ' ' } else { c })
            .take(3000)
            .collect();
        let _ = self
            .reports
            .write_all(format!("{kind} {clean}\n").as_bytes());
    }

    /// Wait for one command byte; None if the supervisor is gone.
    pub fn wait_command(&mut self) -> Option<u8> {
        let mut b = [0u8; 1];
        match self.commands.read(&mut b) {
            Ok(1) => Some(b[0]),
            _ => None,
        }
    }
}
