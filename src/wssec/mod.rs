//! WS-Security for the busta: exclusive canonicalization, XML signatures (OASIS WSS 1.0/1.1,
//! X.509 token profile) and the keys and certificates behind them. Pure: no I/O; time is a
//! parameter.

pub mod c14n;
pub mod dsig;
pub mod pki;
