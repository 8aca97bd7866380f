//! Runs the HTTP edge alone; `pnc serve --only gateway` does the same.

// glibc malloc/free was ~17 % of an installation's CPU; mimalloc is faster for the many
// small, short-lived allocations of a request (measured in docs/BENCHMARKS-install.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    pnc_common::cli::run_single(pnc_common::Component::Gateway, |context| {
        Box::pin(pnc_gateway::start(context))
    })
}
