fn main() -> std::process::ExitCode {
    pdd::cli::run()
}
