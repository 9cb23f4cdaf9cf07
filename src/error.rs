//! One error type for the whole pipeline. Each error knows which exit status
//! it maps to (see README "Exit status"), so `main` stays a thin mapping.

use std::fmt;

/// Why bwai stopped before (or instead of) running the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad flags or a bad configuration file: exit 2, nothing ran.
    Usage,
    /// The sandbox could not be built, or bwai refused to run: exit 125.
    Refused,
    /// The command exists but cannot be executed: exit 126.
    NotExecutable,
    /// The command was not found: exit 127.
    NotFound,
}

#[derive(Debug, Clone)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    /// What the user can do about it, if we know.
    pub hint: Option<String>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error {
            kind: Kind::Usage,
            message: message.into(),
            hint: None,
        }
    }

    pub fn refused(message: impl Into<String>) -> Self {
        Error {
            kind: Kind::Refused,
            message: message.into(),
            hint: None,
        }
    }

    /// A failed system call during setup, with what we were doing.
    pub fn sys(what: impl fmt::Display, err: impl fmt::Display) -> Self {
        Error::refused(format!("{what}: {err}"))
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn exit_code(&self) -> i32 {
        match self.kind {
            Kind::Usage => 2,
            Kind::Refused => 125,
            Kind::NotExecutable => 126,
            Kind::NotFound => 127,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
