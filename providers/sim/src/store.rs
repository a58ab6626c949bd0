//! The world file: every operation locks it, reads it, brings it to "now", changes it and
//! writes it back atomically, so that several processes can share one world.
//!
//! The lock is an exclusive `File::lock` on a sibling `<world>.lock` file rather than on the
//! world file itself, because the world file is replaced by a rename on every write and a lock on
//! a replaced file protects nothing. Writes use [`drydock_fsutil::write_atomically`]: a fresh
//! temporary file in the same directory (`<world>.<pid>.<n>.tmp`), fsynced and renamed over the
//! world, then the directory fsynced, so a reader (locked or not) sees the old world or the new
//! one, never half of one, and a crash mid-write leaves the old world intact.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use drydock_provider::SystemClock;
use serde::Deserialize;

use crate::config::{ClockMode, SimConfig};
use crate::world::{World, WORLD_VERSION};
use crate::SimError;

/// What a provider imposes on the world it operates on.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub config: SimConfig,
    pub mode: ClockMode,
}

/// Runs `f` on the world at `path` under the lock, after bringing the world to now, and saves
/// the result (also when `f` fails: time has passed all the same). A missing world is created,
/// with the provider's settings or else the defaults on the real clock.
pub(crate) fn update<T, E: From<SimError>>(
    path: &Path,
    settings: Option<&Settings>,
    f: impl FnOnce(&mut World) -> Result<T, E>,
) -> Result<T, E> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| SimError::io("create directory", dir, e))?;
    }
    let lock_path = sibling(path, ".lock");
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| SimError::io("open lock file", &lock_path, e))?;
    lock.lock().map_err(|e| SimError::io("lock", &lock_path, e))?;

    let wall = SystemClock::wall_ms();
    let original = read(path)?;
    let mut world = match &original {
        Some(bytes) => parse(path, bytes)?,
        None => match settings {
            Some(s) => World::new(s.config.clone(), s.mode, wall),
            None => World::new(SimConfig::default(), ClockMode::Real, wall),
        },
    };
    if let Some(s) = settings {
        world.configure(&s.config, s.mode, wall);
    }
    let now = world.target_now(wall);
    world.advance_to(now);
    let result = f(&mut world);

    let mut bytes =
        serde_json::to_vec(&world).map_err(|e| SimError::Corrupt { path: path.to_path_buf(), source: e })?;
    bytes.push(b'\n');
    // Unchanged worlds are not rewritten: most reads of a virtual world change nothing.
    if original.as_deref() != Some(bytes.as_slice()) {
        write_atomically(path, &bytes)?;
    }
    // Dropping the handle would unlock too; saying it marks where the critical section ends.
    lock.unlock().map_err(|e| SimError::io("unlock", &lock_path, e))?;
    result
}

/// The world's time as stored, without the lock (a rename is atomic, so the file read is
/// always a whole world); `None` if there is no world yet.
pub(crate) fn stored_now(path: &Path) -> Result<Option<u64>, SimError> {
    #[derive(Deserialize)]
    struct Now {
        now_ms: u64,
    }
    let Some(bytes) = read(path)? else {
        return Ok(None);
    };
    let now: Now =
        serde_json::from_slice(&bytes).map_err(|e| SimError::Corrupt { path: path.to_path_buf(), source: e })?;
    Ok(Some(now.now_ms))
}

fn read(path: &Path) -> Result<Option<Vec<u8>>, SimError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SimError::io("read", path, e)),
    }
}

fn parse(path: &Path, bytes: &[u8]) -> Result<World, SimError> {
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let unsupported = |found| SimError::UnsupportedVersion { path: path.to_path_buf(), found, expected: WORLD_VERSION };
    match serde_json::from_slice::<World>(bytes) {
        Ok(world) if world.version == WORLD_VERSION => Ok(world),
        Ok(world) => Err(unsupported(world.version)),
        // A world of another version may fail to parse as this one; say so rather than
        // calling it corrupt.
        Err(source) => match serde_json::from_slice::<Version>(bytes) {
            Ok(v) if v.version != WORLD_VERSION => Err(unsupported(v.version)),
            _ => Err(SimError::Corrupt { path: path.to_path_buf(), source }),
        },
    }
}

/// Replaces the world file. It holds every group's spec, user data included, which may come
/// from a sensitive variable: it is created 0600, like the state.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SimError> {
    drydock_fsutil::write_atomically(path, bytes, 0o600).map_err(|e| SimError::io(e.step.action(), e.path, e.source))
}

/// `<path><suffix>`, next to `path`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name: OsString = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
