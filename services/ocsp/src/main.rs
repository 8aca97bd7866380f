//! Runs the ocsp service alone; `pnc serve --only ocsp` does the same.

fn main() -> std::process::ExitCode {
    pnc_common::cli::run_single(pnc_common::Component::Ocsp, |context| {
        Box::pin(pnc_ocsp::start(context))
    })
}
