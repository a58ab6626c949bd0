//! The VS Code extension (`editors/vscode`), through npm: its TypeScript compiles, and its
//! TextMate grammar passes the tests of `editors/vscode/test/grammar/`. Its dependencies are
//! installed with `npm ci` when `node_modules` is missing or `package-lock.json` changed (a
//! marker in `node_modules` holds the lock file's SHA-256, written last, so an install that
//! died half way is done again); a lock file in `target/` keeps two test binaries, or two
//! tests, from running npm in the directory at once. Without npm these tests fail; they never
//! skip.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

const MARKER: &str = "node_modules/.drydock-package-lock.sha256";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn extension() -> PathBuf {
    repo().join("editors/vscode")
}

fn npm(dir: &Path, args: &[&str]) -> Output {
    let program = if cfg!(windows) { "npm.cmd" } else { "npm" };
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("FORCE_COLOR")
        .output()
        .unwrap_or_else(|e| panic!("npm {}: cannot run npm (are Node.js and npm installed?): {e}", args.join(" ")))
}

fn check(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}) in editors/vscode:\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Locks the extension's directory for this test and installs its dependencies if they are
/// missing or the lock file changed. The lock is held until the returned file is dropped.
fn prepared() -> File {
    let dir = extension();
    let target = repo().join("target");
    std::fs::create_dir_all(&target).expect("create target/");
    let lock = File::create(target.join("vscode-npm.lock")).expect("create target/vscode-npm.lock");
    lock.lock().expect("lock target/vscode-npm.lock");
    let package_lock = std::fs::read(dir.join("package-lock.json")).expect("read editors/vscode/package-lock.json");
    let hash = format!("{:x}", Sha256::digest(package_lock));
    let marker = dir.join(MARKER);
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(hash.as_str()) {
        check("npm ci", &npm(&dir, &["ci", "--no-audit", "--no-fund"]));
        std::fs::write(marker, hash).expect("write the npm ci marker");
    }
    lock
}

#[test]
fn extension_compiles() {
    let _lock = prepared();
    let dir = extension();
    let _ = std::fs::remove_file(dir.join("out/extension.js"));
    check("npm run compile", &npm(&dir, &["run", "compile"]));
    assert!(dir.join("out/extension.js").is_file(), "npm run compile wrote no out/extension.js");
}

#[test]
fn grammar_tests_pass() {
    let _lock = prepared();
    let dir = extension();
    let stdout = check("npm run test:grammar", &npm(&dir, &["run", "test:grammar"]));
    print!("{stdout}");
    // Every fixture ran (a glob that stopped matching one would not fail on its own).
    let fixtures = std::fs::read_dir(dir.join("test/grammar")).expect("read editors/vscode/test/grammar");
    let mut count = 0;
    for entry in fixtures {
        let name = entry.expect("a fixture").file_name().to_string_lossy().into_owned();
        count += 1;
        assert!(
            stdout.lines().any(|l| l.contains(&format!("test/grammar/{name}")) && l.contains("run successfuly")),
            "the grammar test {name} did not run:\n{stdout}"
        );
    }
    assert!(count >= 5, "editors/vscode/test/grammar holds {count} fixtures");
}
