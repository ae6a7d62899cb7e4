// mimalloc: the store keeps many long-lived small values (sled's cache, the moduli index)
// interleaved with each request's short-lived buffers; glibc's malloc let that fragment resident
// memory several times over what is live, and costs more per allocation (docs/performance.md).
// Built without transparent huge pages, which made idle memory three times larger. Set here, by
// the binary: a program that links the library chooses its own allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATORE: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    pdd::trattieni_memoria_liberata_per(RITARDO_RESTITUZIONE_MS);
    pdd::cli::run()
}

/// How long mimalloc keeps pages freed before it gives them back to the system. Its default is
/// a second: at 400 KB a message, each second's freed buffers stayed resident, 108–111 MB at
/// steady state; with 100 ms, 93–95 MB, at 2–4 % more CPU there and none measurable at 1 KB
/// (docs/performance.md). `MIMALLOC_PURGE_DELAY`, when set, still decides.
const RITARDO_RESTITUZIONE_MS: i64 = 100;
