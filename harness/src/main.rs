//! `mtls-e2e`: the command line over the library. Exit codes are documented
//! in the README and in `mtls_e2e::exit`; the application is `mtls_e2e::app`.

fn main() -> std::process::ExitCode {
    mtls_e2e::app::main()
}
