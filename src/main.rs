//! The `mailrules` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    mailrules::logging::init();
    mailrules::cli::main(mailrules::cli::Cli::parse())
}
