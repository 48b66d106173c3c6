use std::process::ExitCode;

fn main() -> ExitCode {
    match rpo_exporter::cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rpo-exporter: {e:#}");
            ExitCode::FAILURE
        }
    }
}
