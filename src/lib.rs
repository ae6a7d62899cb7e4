//! `pdd`: a Porta di Dominio for SPCoop (busta e-Gov 1.1), made for ClicLavoro.
//!
//! Layers, from the bottom (`docs/glossary.md`; `tests/architecture.rs` holds the rules):
//! - the protocol core, without I/O or clock: [`xml`], [`soap`], [`egov`] (the busta, its
//!   answers, traces and diagnostics), [`wssec`], [`modulo`] (ClicLavoro's moduli and records),
//!   [`rete`] (ClicLavoro's network rules);
//! - policy data: [`registry`], [`config`], [`clock`];
//! - state: [`store`], a typed async API over its engines;
//! - the gateway, transport-free: [`gateway`] (porte, outbox, care, read API) and [`service`];
//! - the shell: [`server`] (HTTP in and out), [`tls`], [`cli`];
//! - [`kit`]: what the tests and the load generator share (temp dirs, free ports, a PKI).

// Linked wherever the library is, so that the functions below resolve in its own tests too.
#[cfg(feature = "mimalloc")]
use mimalloc as _;

#[cfg(feature = "mimalloc")]
extern "C" {
    fn mi_collect(force: bool);
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    #[cfg(test)]
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
}

/// mimalloc's `mi_option_purge_delay` (its `mimalloc.h`, version 3).
#[cfg(feature = "mimalloc")]
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// Has mimalloc, when it is the process's allocator, give freed pages back to the system after
/// `ms` milliseconds, unless the environment sets `MIMALLOC_PURGE_DELAY` (the operator's word).
pub fn trattieni_memoria_liberata_per(ms: i64) {
    #[cfg(feature = "mimalloc")]
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set takes two integers and sets one of mimalloc's global options,
        // which it reads atomically.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, ms as std::ffi::c_long) }
    }
    #[cfg(not(feature = "mimalloc"))]
    let _ = ms;
}

/// The option's number is mimalloc's enum order, which the crate does not export: its default
/// (1,000 ms in mimalloc 3; its neighbours' are 0 and 1) shows the number still names it.
#[cfg(all(test, feature = "mimalloc"))]
#[test]
fn the_purge_delay_is_the_option_set() {
    // SAFETY: both take integers and touch only mimalloc's option table.
    let prima = unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) };
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        assert_eq!(prima, 1000, "mimalloc's purge_delay default");
    }
    trattieni_memoria_liberata_per(100);
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, 100);
    }
}

/// Gives the memory freed so far back to the system, when mimalloc is the process's allocator
/// (the `pdd` binary sets it: src/main.rs). Opening a large store reads all of it through once
/// (the moduli index, the start check); mimalloc would otherwise keep that peak.
pub fn restituisci_memoria() {
    // SAFETY: mi_collect takes no pointers and acts on mimalloc's own heaps, which exist
    // whether or not mimalloc is the global allocator.
    #[cfg(feature = "mimalloc")]
    unsafe {
        mi_collect(true)
    }
}

pub mod cli;
pub mod clock;
pub mod config;
pub mod egov;
pub mod gateway;
pub mod kit;
pub mod mime;
pub mod modulo;
pub mod registry;
pub mod rete;
pub mod server;
pub mod service;
pub mod soap;
pub mod store;
pub mod tls;
pub mod transport;
pub mod wssec;
pub mod xml;
