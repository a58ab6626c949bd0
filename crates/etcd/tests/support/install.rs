//! The etcd binary for tests: `$DRYDOCK_ETCD`, else `etcd` on PATH, else `/usr/bin/etcd`
//! (`drydock_etcd::etcd_binary`); when there is none, Debian's `etcd-server` package is
//! installed (`apt-get install`, after an `apt-get update` if the first try fails), under a
//! lock file in `target/` so that test binaries running at once install it once. A test that
//! cannot get etcd fails; it never skips. Shared with the simulated cloud's tests, which
//! include this file by path.
#![allow(dead_code)]

use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, Output};

/// The Debian package that holds `/usr/bin/etcd`.
pub const ETCD_PACKAGE: &str = "etcd-server";

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        // Both crates that include this file sit two levels below the workspace root.
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    }
}

/// The etcd binary, installed first if there is none.
pub fn etcd_binary() -> PathBuf {
    if let Some(path) = drydock_etcd::etcd_binary() {
        return path;
    }
    if let Some(named) = std::env::var_os(drydock_etcd::ETCD_BINARY_ENV).filter(|v| !v.is_empty()) {
        panic!("DRYDOCK_ETCD names {}, which is not a file", PathBuf::from(named).display());
    }
    let target = target_dir();
    std::fs::create_dir_all(&target).unwrap_or_else(|e| panic!("create {}: {e}", target.display()));
    let lock_path = target.join("etcd-install.lock");
    let lock = File::create(&lock_path).unwrap_or_else(|e| panic!("create {}: {e}", lock_path.display()));
    lock.lock().unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
    // Another test binary may have installed it while this one waited.
    if let Some(path) = drydock_etcd::etcd_binary() {
        return path;
    }
    let install = || apt(&["install", "-y", "--no-install-recommends", ETCD_PACKAGE]);
    let first = install();
    if !first.status.success() {
        let update = apt(&["update"]);
        let second = install();
        if !second.status.success() {
            panic!(
                "etcd is not installed and `apt-get install {ETCD_PACKAGE}` failed ({}):\n{}\n{}\n\
                 apt-get update said:\n{}\n{}",
                second.status,
                String::from_utf8_lossy(&second.stdout),
                String::from_utf8_lossy(&second.stderr),
                String::from_utf8_lossy(&update.stdout),
                String::from_utf8_lossy(&update.stderr)
            );
        }
    }
    drop(lock);
    drydock_etcd::etcd_binary()
        .unwrap_or_else(|| panic!("`apt-get install {ETCD_PACKAGE}` succeeded, but no etcd binary is to be found"))
}

fn apt(args: &[&str]) -> Output {
    Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap_or_else(|e| panic!("etcd is not installed, and apt-get cannot run to install it: {e}"))
}
