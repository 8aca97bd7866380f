//! Runs the provisioning service alone; `pnc serve --only provisioning` does the same.

fn main() -> std::process::ExitCode {
    pnc_common::cli::run_single(pnc_common::Component::Provisioning, |context| {
        Box::pin(pnc_provisioning::start(context))
    })
}
