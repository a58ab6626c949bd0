//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use drydock_syntax::ast::File;
use drydock_syntax::diag::{FileId, Span};
use drydock_syntax::visit::body_spans_mut;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.kcl` file under `dir`, sorted.
pub fn kcl_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "kcl") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The tree with every span zeroed, for comparisons "spans aside".
pub fn without_spans(mut f: File) -> File {
    body_spans_mut(&mut f.body, &mut |s: &mut Span| *s = Span::default());
    for c in &mut f.comments {
        c.span = Span::default();
    }
    f
}

/// Runs `f` on a thread with a large stack, as the binary does.
pub fn big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(256 << 20).spawn(f).unwrap().join().unwrap()
}

pub const FILE: FileId = FileId(0);

pub mod machine;
pub mod schema;

/// The quickstart's node groups (see [`quickstart`]).
pub const CONTROL_PLANE: &str = "cluster.demo.node_group.control-plane";
pub const WORKERS: &str = "cluster.demo.node_group.workers";

/// A copy of the quickstart example in a temporary directory.
pub fn quickstart() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = repo().join("examples/quickstart");
    std::fs::create_dir_all(dir.path().join("bootstrap")).unwrap();
    std::fs::copy(src.join("cluster.kcl"), dir.path().join("cluster.kcl")).unwrap();
    std::fs::copy(src.join("bootstrap/worker.sh"), dir.path().join("bootstrap/worker.sh")).unwrap();
    dir
}

/// The binary in `dir`, on the simulated cloud's virtual clock, without colour.
pub fn dd(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_drydock"))
        .current_dir(dir)
        .args(args)
        .env("DRYDOCK_SIM_CLOCK", "virtual")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// Runs the binary, requires success, returns stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = dd(dir, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "drydock {args:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}
