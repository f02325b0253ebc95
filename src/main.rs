//! The `tidings` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    tidings::cli::main()
}
