//! How the simulated cloud behaves (`SimConfig`) and which time it runs on (`ClockMode`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::SimError;

/// The environment variable that picks the clock of the simulated cloud: `virtual` or `real`.
pub const CLOCK_ENV: &str = "DRYDOCK_SIM_CLOCK";

/// The behaviour of the simulated cloud. Stored in the world file, so that every process using
/// the world (including `drydock sim status`, which has no configuration) evolves it alike; the
/// provider that last operated on the world decides it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default)]
pub struct SimConfig {
    /// From launch to running (and healthy, unless something is wrong).
    pub boot_time_ms: u64,
    /// How long a group takes to notice a failed instance and replace it.
    pub detection_delay_ms: u64,
    /// From termination to gone; the group replaces the instance at the start of it.
    pub shutdown_time_ms: u64,
    /// The probability that a newly launched instance crashes some time (uniform within
    /// [`CRASH_WINDOW_MS`](crate::CRASH_WINDOW_MS)) after it becomes healthy.
    pub failure_rate: f64,
    /// Instances of these images boot and run but never become healthy; EC2-style groups do not
    /// replace them because EC2 status checks pass.
    pub bad_images: Vec<String>,
    /// Seeds the random numbers of a new world (instance ids, crashes); a world keeps its own
    /// random state afterwards, so changing the seed does not change an existing world.
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            boot_time_ms: 2_000,
            detection_delay_ms: 10_000,
            shutdown_time_ms: 1_000,
            failure_rate: 0.0,
            bad_images: Vec::new(),
            seed: 0,
        }
    }
}

/// Which time the world runs on.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ClockMode {
    /// Wall time in milliseconds since the UNIX epoch; sleeping is tokio's.
    #[default]
    Real,
    /// The world file stores the time, and only sleeping on the provider's clock moves it
    /// (instantly), so every process using the world sees the same time and a rollout of
    /// minutes runs in milliseconds.
    Virtual,
}

impl ClockMode {
    /// Reads [`CLOCK_ENV`] (`DRYDOCK_SIM_CLOCK`): `virtual` or `real`, real when unset or empty.
    /// Any other value is an error rather than a silent fallback, so a typo does not turn a
    /// test run into a wall-clock wait.
    pub fn from_env() -> Result<ClockMode, SimError> {
        match std::env::var(CLOCK_ENV) {
            Ok(value) => value.parse(),
            Err(std::env::VarError::NotPresent) => Ok(ClockMode::Real),
            Err(std::env::VarError::NotUnicode(value)) => {
                Err(SimError::InvalidClockMode(value.to_string_lossy().into_owned()))
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ClockMode::Real => "real",
            ClockMode::Virtual => "virtual",
        }
    }
}

impl FromStr for ClockMode {
    type Err = SimError;

    fn from_str(s: &str) -> Result<ClockMode, SimError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "real" => Ok(ClockMode::Real),
            "virtual" => Ok(ClockMode::Virtual),
            _ => Err(SimError::InvalidClockMode(s.to_string())),
        }
    }
}

impl fmt::Display for ClockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_mode_parses_virtual_and_real_and_rejects_the_rest() {
        assert_eq!("virtual".parse::<ClockMode>().unwrap(), ClockMode::Virtual);
        assert_eq!(" Virtual ".parse::<ClockMode>().unwrap(), ClockMode::Virtual);
        assert_eq!("real".parse::<ClockMode>().unwrap(), ClockMode::Real);
        assert_eq!("".parse::<ClockMode>().unwrap(), ClockMode::Real);
        let err = "virtaul".parse::<ClockMode>().unwrap_err();
        assert!(matches!(err, SimError::InvalidClockMode(ref v) if v == "virtaul"));
        assert_eq!(err.to_string(), "invalid DRYDOCK_SIM_CLOCK value \"virtaul\": expected virtual or real");
    }

    #[test]
    fn config_reads_with_missing_fields_defaulted() {
        let config: SimConfig = serde_json::from_str(r#"{"seed": 7}"#).unwrap();
        assert_eq!(config, SimConfig { seed: 7, ..SimConfig::default() });
    }
}
