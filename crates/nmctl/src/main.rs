fn main() -> std::process::ExitCode {
    nmctl::main()
}
