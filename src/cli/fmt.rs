//! `drydock fmt`: rewrite files in the canonical layout, or check and diff them.

use std::path::{Path, PathBuf};

use super::{report, ExitCode, Style};
use drydock_config::{config_files, io_msg, read_source, MAX_SOURCE_BYTES};
use drydock_syntax::diag::{Diagnostic, Sources};
use drydock_syntax::{fmt::format, parse_file};

pub struct Options {
    pub check: bool,
    pub diff: bool,
    pub recursive: bool,
}

/// The files to format: those `config_files` names, and with `recursive` those of every
/// subdirectory that is not hidden.
fn files(path: &Path, recursive: bool) -> Result<Vec<PathBuf>, String> {
    if !recursive || path.is_file() {
        return config_files(path);
    }
    if !path.is_dir() {
        return config_files(path);
    }
    let mut out = vec![];
    let mut dirs = vec![path.to_path_buf()];
    // A directory reached twice (a bind mount, or the path itself given twice over) is read once.
    let mut seen = std::collections::BTreeSet::new();
    while let Some(dir) = dirs.pop() {
        if !seen.insert(std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone())) {
            continue;
        }
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {}", dir.display(), io_msg(&e)))?;
        for entry in entries.flatten() {
            let p = entry.path();
            let hidden = p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
            // A symbolic link to a directory is not followed (as `find` and `gofmt` do not):
            // one pointing up the tree would be a loop. A link to a file is formatted.
            let real_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if real_dir && !hidden {
                dirs.push(p);
            } else if p.is_file() && p.extension().is_some_and(|e| e == "kcl") {
                out.push(p);
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(format!("no .kcl files in {} or below it", path.display()));
    }
    Ok(out)
}

pub fn run(path: &Path, opts: Options, style: Style) -> ExitCode {
    let Options { check, diff, recursive } = opts;
    let files = match files(path, recursive) {
        Ok(f) => f,
        Err(msg) => {
            report(&[Diagnostic::global("kcl::io", msg)], &Sources::new(), style);
            return 1;
        }
    };
    let mut sources = Sources::new();
    let mut diags = vec![];
    let mut changed: Vec<PathBuf> = vec![];
    for file in files {
        // As `validate` reads it: bounded, a regular file, UTF-8 (a bad byte is reported with its
        // line and column), a byte-order mark set aside and put back on rewrite.
        let (text, bom) = match read_source(&file, MAX_SOURCE_BYTES) {
            Ok(t) => t,
            Err(e) => {
                diags.push(Diagnostic::global("kcl::io", format!("cannot read {}: {e}", file.display())));
                continue;
            }
        };
        let id = sources.add(file.display().to_string(), file.clone(), text.clone());
        let (parsed, d) = parse_file(&text, id);
        let Some(parsed) = parsed.filter(|_| d.is_empty()) else {
            diags.extend(d);
            continue;
        };
        let formatted = format(&parsed, &text);
        if formatted == text {
            continue;
        }
        changed.push(file.clone());
        if diff {
            let name = file.display().to_string();
            let udiff = similar::TextDiff::from_lines(&text, &formatted)
                .unified_diff()
                .context_radius(3)
                .header(&name, &name)
                .to_string();
            out!("{udiff}");
        }
        if !check && !diff {
            let formatted = if bom { format!("\u{feff}{formatted}") } else { formatted };
            if let Err(e) = write_atomically(&file, &formatted) {
                diags.push(Diagnostic::global("kcl::io", format!("cannot write {}: {}", file.display(), io_msg(&e))));
            } else {
                outln!("{}", file.display());
            }
        }
    }
    if check {
        for f in &changed {
            outln!("{}", f.display());
        }
    }
    if !diags.is_empty() {
        report(&diags, &sources, style);
        return 1;
    }
    if check && !changed.is_empty() {
        return 1;
    }
    0
}

/// Writes beside the file and renames over it, so an interrupted fmt never leaves half a
/// file; the file keeps its permissions (they are the user's, not a secret's, so restoring
/// bits the umask took off at creation is right here).
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    // Through a symbolic link to the file it names: renaming over the link would replace it.
    let real = std::fs::canonicalize(path)?;
    let path = real.as_path();
    let old = std::fs::metadata(path).ok().map(|m| m.permissions());
    let mode = old.as_ref().map_or(0o666, |p| p.mode() & 0o7777);
    drydock_fsutil::write_atomically(path, text.as_bytes(), mode)?;
    if let Some(p) = old {
        if std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o7777 != mode) {
            std::fs::set_permissions(path, p)?;
        }
    }
    Ok(())
}
