//! The library's error type. Every variant names what went wrong precisely enough to be
//! printed as one line; `exit_code` maps input problems to 2 (the CLI contract).

use std::path::Path;

/// Errors raised by mrkl's library code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field of a spec, an instance or a command line has a value that is not allowed.
    #[error("{field} = {value} is not allowed: {allowed}")]
    Invalid {
        field: String,
        value: String,
        allowed: String,
    },
    /// A file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// A file could be read but not parsed (syntax, unknown field, wrong type).
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    /// A result could not be written.
    #[error("{path}: cannot write: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    /// Another process holds the results folder.
    #[error("{path}: {message}")]
    Busy { path: String, message: String },
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(
        field: impl Into<String>,
        value: impl ToString,
        allowed: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            field: field.into(),
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }

    /// Shorthand for [`Error::Read`].
    pub fn read(path: &Path, source: std::io::Error) -> Self {
        Error::Read {
            path: path.display().to_string(),
            source,
        }
    }

    /// Shorthand for [`Error::Parse`]; the message is folded onto one line.
    pub fn parse(path: &Path, message: impl ToString) -> Self {
        let message = message
            .to_string()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '|' || c == '^' || c == ' '))
            .collect::<Vec<_>>()
            .join(" ");
        Error::Parse {
            path: path.display().to_string(),
            message,
        }
    }

    /// Shorthand for [`Error::Write`].
    pub fn write(path: &Path, source: std::io::Error) -> Self {
        Error::Write {
            path: path.display().to_string(),
            source,
        }
    }

    /// The process exit code for this error: 2 for bad input, 1 for failures of the run itself.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Invalid { .. }
            | Error::Read { .. }
            | Error::Parse { .. }
            | Error::Busy { .. } => 2,
            Error::Write { .. } => 1,
        }
    }
}

/// Result alias for the library.
pub type Result<T> = std::result::Result<T, Error>;
