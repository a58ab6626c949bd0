//! The one error type of providers: a kind the executor can act on, a message for people, and
//! the group it concerns.

use std::fmt;

/// What went wrong, in terms the executor can act on; the cloud's own codes are mapped onto it.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    InvalidInput,
    Auth,
    Quota,
    Throttled,
    Unavailable,
    Other,
}

impl ErrorKind {
    /// The lowercase words used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Auth => "not authorised",
            ErrorKind::Quota => "quota exceeded",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Other => "error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed provider operation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.kind, .message, .group))]
pub struct ProviderError {
    pub kind: ErrorKind,
    /// Lowercase, no trailing period, without the kind or group (the display adds them).
    pub message: String,
    /// The group the operation was about, when there was one.
    pub group: Option<String>,
}

fn describe(kind: &ErrorKind, message: &str, group: &Option<String>) -> String {
    match group {
        Some(group) => format!("{kind}: group {group}: {message}"),
        None => format!("{kind}: {message}"),
    }
}

impl ProviderError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ProviderError {
        ProviderError { kind, message: message.into(), group: None }
    }

    /// The same error, about the named group.
    pub fn with_group(mut self, group: impl Into<String>) -> ProviderError {
        self.group = Some(group.into());
        self
    }

    pub fn not_found(message: impl Into<String>) -> ProviderError {
        ProviderError::new(ErrorKind::NotFound, message)
    }

    pub fn already_exists(message: impl Into<String>) -> ProviderError {
        ProviderError::new(ErrorKind::AlreadyExists, message)
    }

    pub fn invalid_input(message: impl Into<String>) -> ProviderError {
        ProviderError::new(ErrorKind::InvalidInput, message)
    }

    pub fn unavailable(message: impl Into<String>) -> ProviderError {
        ProviderError::new(ErrorKind::Unavailable, message)
    }

    pub fn other(message: impl Into<String>) -> ProviderError {
        ProviderError::new(ErrorKind::Other, message)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether sending the same request again may succeed: only when the cloud was busy or
    /// briefly away. Everything else needs a different request or a person.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Throttled | ErrorKind::Unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_kind_and_group() {
        let e = ProviderError::not_found("no such group").with_group("web-g1");
        assert_eq!(e.to_string(), "not found: group web-g1: no such group");
        let e = ProviderError::new(ErrorKind::Throttled, "rate exceeded");
        assert_eq!(e.to_string(), "throttled: rate exceeded");
    }

    #[test]
    fn only_throttling_and_unavailability_are_retryable() {
        let retryable = |kind| ProviderError::new(kind, "x").is_retryable();
        assert!(retryable(ErrorKind::Throttled));
        assert!(retryable(ErrorKind::Unavailable));
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::AlreadyExists,
            ErrorKind::InvalidInput,
            ErrorKind::Auth,
            ErrorKind::Quota,
            ErrorKind::Other,
        ] {
            assert!(!retryable(kind), "{kind:?}");
        }
    }
}
