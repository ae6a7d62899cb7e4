// mimalloc: the store keeps many long-lived small values (sled's cache, the moduli index)
// interleaved with each request's short-lived buffers; glibc's malloc let that fragment resident
// memory several times over what is live, and costs more per allocation (docs/performance.md).
// Built without transparent huge pages, which made idle memory three times larger. Set here, by
// the binary: a program that links the library chooses its own allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATORE: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    pdd::cli::run()
}
