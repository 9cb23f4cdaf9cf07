//! The `bwai` binary: everything is in the library.

fn main() {
    std::process::exit(bwai::main_with_args(std::env::args_os().collect()));
}
