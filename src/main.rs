//! The `drydock` binary: parses flags and hands over to `drydock::cli`.

use clap::Parser;

fn main() {
    let cli = drydock::cli::Cli::parse();
    // Evaluation recurses over expressions; a large stack keeps deeply nested (but
    // accepted) input from overflowing it. Pages are only committed when touched.
    let worker = std::thread::Builder::new().stack_size(256 << 20).spawn(move || drydock::cli::run(cli));
    let code = match worker {
        Ok(handle) => handle.join().unwrap_or(101),
        Err(_) => 1,
    };
    std::process::exit(code);
}
