//! `pdd`: a Porta di Dominio for SPCoop (busta e-Gov 1.1), made for ClicLavoro.
//!
//! Layers (see the README): the protocol core without I/O ([`xml`], [`soap`], [`egov`]), policy
//! ([`registry`]), state ([`store`]), and a thin shell ([`gateway`], [`server`], [`client`],
//! [`cli`], [`config`]).

pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod egov;
pub mod gateway;
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
