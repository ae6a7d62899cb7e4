//! `pdd`: a Porta di Dominio for SPCoop (busta e-Gov 1.1), made for ClicLavoro.
//!
//! Layers (see the README): the protocol core without I/O ([`xml`], [`soap`], [`egov`]), policy
//! ([`registry`]), state ([`store`]), and a thin shell ([`gateway`], [`server`], [`client`],
//! [`cli`], [`config`]). [`kit`] holds what the tests and the load generator share.

// mimalloc: the store keeps many long-lived small values (sled's cache, the moduli index)
// interleaved with each request's short-lived buffers; glibc's malloc let that fragment resident
// memory several times over what is live, and costs more per allocation (docs/performance.md).
// Built without transparent huge pages, which made idle memory three times larger.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATORE: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "mimalloc")]
extern "C" {
    fn mi_collect(force: bool);
}

/// Gives the memory freed so far back to the system. Opening a large store reads all of it
/// through once (the moduli index, the start check); mimalloc would otherwise keep that peak.
pub fn restituisci_memoria() {
    // SAFETY: mi_collect takes no pointers; mimalloc is this process's allocator (above).
    #[cfg(feature = "mimalloc")]
    unsafe {
        mi_collect(true)
    }
}

pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod egov;
pub mod gateway;
pub mod kit;
pub mod modulo;
pub mod registry;
pub mod rete;
pub mod server;
pub mod service;
pub mod soap;
pub mod store;
pub mod tls;
pub mod wssec;
pub mod xml;
