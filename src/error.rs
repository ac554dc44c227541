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
            field: escape(&field.into()),
            value: compact(&escape(&value.to_string())),
            allowed: allowed.into(),
        }
    }

    /// Shorthand for [`Error::Read`].
    pub fn read(path: &Path, source: std::io::Error) -> Self {
        Error::Read {
            path: shown(path),
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
            path: shown(path),
            message,
        }
    }

    /// Shorthand for [`Error::Write`].
    pub fn write(path: &Path, source: std::io::Error) -> Self {
        Error::Write {
            path: shown(path),
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

/// `s` with every control character (newline, NUL, escape, ...) written as an escape
/// (`\\n`, `\\u{0}`), so that a message naming it stays one line and prints nothing raw.
pub fn escape(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `s` escaped ([`escape`]) between double quotes.
pub fn quoted(s: &str) -> String {
    format!("\"{}\"", escape(s))
}

/// A path for a message: displayed and escaped.
pub fn shown(path: &Path) -> String {
    escape(&path.display().to_string())
}

/// A number written with more digits than any integer type holds (e.g. 1e300 printed as
/// 301 digits) in scientific notation; any other text unchanged.
pub fn compact(s: &str) -> String {
    if s.len() > 24
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        if let Ok(v) = s.parse::<f64>() {
            return format!("{v:e}");
        }
    }
    s.to_string()
}

/// Result alias for the library.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_escape_control_characters_and_compact_huge_numbers() {
        let e = Error::invalid("name", quoted("a\nb\0c"), "x");
        assert_eq!(e.to_string(), "name = \"a\\nb\\u{0}c\" is not allowed: x");
        assert_eq!(
            Error::invalid("g", 1e300, "x").to_string(),
            "g = 1e300 is not allowed: x"
        );
        assert_eq!(
            Error::invalid("g", -1e300, "x").to_string(),
            "g = -1e300 is not allowed: x"
        );
        // Integers of u64 and ordinary floats are kept as written.
        assert_eq!(compact(&u64::MAX.to_string()), u64::MAX.to_string());
        assert_eq!(compact("0.1"), "0.1");
        let p = Error::read(Path::new("a\nb"), std::io::Error::other("gone"));
        assert_eq!(p.to_string(), "a\\nb: cannot read: gone");
    }
}
