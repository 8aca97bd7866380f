//! Runs the registry service alone; `pnc serve --only registry` does the same.

fn main() -> std::process::ExitCode {
    pnc_common::cli::run_single(pnc_common::Component::Registry, |context| {
        Box::pin(pnc_registry::start(context))
    })
}
