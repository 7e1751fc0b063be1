//! `berth`: the host side of Berth. It manages the VM the engine runs in, carries
//! bytes between the host and the engine (the docker socket, published ports),
//! and keeps registry credentials in the OS keychain. It never re-implements
//! engine logic.

pub mod autostart;
pub mod creds;
pub mod doctor;
pub mod forward;
pub mod host_firewall;
pub mod integration;
pub mod os;
pub mod paths;
pub mod settings;
pub mod transport;
pub mod tutorial;
pub mod vm;
