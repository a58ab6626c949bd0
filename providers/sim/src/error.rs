//! Errors of the simulated cloud's own functions, and how they look through the `Provider` trait.

use std::io;
use std::path::PathBuf;

use drydock_provider::{ErrorKind, ProviderError};

/// A failure of the world file or of a `drydock sim` request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the sim world {} is corrupt: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the sim world {} has version {found}, this drydock reads version {expected}", path.display())]
    UnsupportedVersion { path: PathBuf, found: u32, expected: u32 },
    #[error("invalid DRYDOCK_SIM_CLOCK value {0:?}: expected virtual or real")]
    InvalidClockMode(String),
    #[error("no live instance {0} in the sim world")]
    NoSuchInstance(String),
    #[error("no running instance to fail in node group {0}")]
    NothingToFail(String),
    #[error("no group of the simulated cloud uses zone {zone}; its zones are {known}")]
    UnknownZone { zone: String, known: String },
    #[error("the simulated cloud runs on the real clock, whose time cannot be moved; use DRYDOCK_SIM_CLOCK=virtual")]
    RealClock,
    #[error("the sim world's worker thread failed: {0}")]
    Worker(String),
}

impl SimError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        SimError::Io { action, path: path.into(), source }
    }
}

impl From<SimError> for ProviderError {
    /// A world file that cannot be read or written is the cloud being away (worth a retry); a
    /// corrupt or foreign one needs a person.
    fn from(e: SimError) -> ProviderError {
        let kind = match e {
            SimError::Io { .. } => ErrorKind::Unavailable,
            SimError::NoSuchInstance(_) | SimError::NothingToFail(_) | SimError::UnknownZone { .. } => {
                ErrorKind::NotFound
            }
            SimError::InvalidClockMode(_) | SimError::RealClock => ErrorKind::InvalidInput,
            SimError::Corrupt { .. } | SimError::UnsupportedVersion { .. } | SimError::Worker(_) => ErrorKind::Other,
        };
        ProviderError::new(kind, e.to_string())
    }
}
