// mimalloc: the store keeps many long-lived small values (sled's cache) interleaved with each
// request's short-lived buffers; glibc's malloc let that fragment resident memory several times
// over what is live (docs/performance.md), and its arenas cost more per allocation.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    pdd::cli::run()
}
