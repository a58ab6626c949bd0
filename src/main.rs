//! The `drydock` binary: the command line only (flags, the terminal, rendering calls and exit
//! codes). Everything it runs lives in the library crates under `crates/`.

use clap::Parser;

fn main() {
    // Exit codes: 0 success (and `plan --detailed-exitcode` with no changes), 2 only for
    // `--detailed-exitcode` with changes, 1 for every error — a usage error included (clap's
    // own default is 2, which a CI script would read as "changes").
    let cli = match drydock::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` succeed only if they could be printed (a closed or full
            // stdout is exit 1, as for every read-only command); a usage error is 1 either way.
            let printed = e.print().and_then(|()| std::io::Write::flush(&mut std::io::stdout()));
            let code = if e.use_stderr() || printed.is_err() { 1 } else { 0 };
            std::process::exit(code);
        }
    };
    // Diagnostics for people chasing a slow or failing run: DRYDOCK_LOG=info (or debug, …)
    // prints tracing events, such as each AWS refresh with its call count, on stderr.
    if let Some(level) = std::env::var("DRYDOCK_LOG").ok().and_then(|l| l.parse::<tracing::Level>().ok()) {
        tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr).with_ansi(false).init();
    }
    // Evaluation recurses over expressions; a large stack keeps deeply nested (but
    // accepted) input from overflowing it. Pages are only committed when touched.
    let worker = std::thread::Builder::new().stack_size(256 << 20).spawn(move || drydock::cli::run(cli));
    let code = match worker {
        Ok(handle) => handle.join().unwrap_or(101),
        Err(_) => 1,
    };
    std::process::exit(code);
}
