use std::process::ExitCode;

use clap::Parser as _;
use ustat::{
    cli::Cli,
    exit,
    message::{one_line_usage_error, shorten_numbers},
};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version end here too, successfully.
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::from(exit::OK);
            }
            eprintln!("ustat: {}", one_line_usage_error(&e.to_string()));
            return ExitCode::from(exit::USAGE);
        }
    };
    match ustat::run(cli) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) if is_broken_pipe(&e) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("ustat: {}", shorten_numbers(&format!("{e:#}")));
            ExitCode::from(exit::code(&e))
        }
    }
}

/// `ustat list ... | head` closes the pipe early; that is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
