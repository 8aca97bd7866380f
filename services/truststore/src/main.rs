//! Runs the truststore service alone; `pnc serve --only truststore` does the same.

fn main() -> std::process::ExitCode {
    pnc_common::cli::run_single(pnc_common::Component::Truststore, |context| {
        Box::pin(pnc_truststore::start(context))
    })
}
