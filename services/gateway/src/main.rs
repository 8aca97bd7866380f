//! Runs the HTTP edge alone; `pnc serve --only gateway` does the same.

fn main() -> std::process::ExitCode {
    pnc_common::cli::run_single(pnc_common::Component::Gateway, |context| {
        Box::pin(pnc_gateway::start(context))
    })
}
