//! `coupa-bridge`: hands the command line to the library.

fn main() -> std::process::ExitCode {
    coupa_bridge::cli::main_with(std::env::args_os())
}
