//! Moving bytes between the host and the engine: the docker socket
//! ([`socket`]) and published ports mirrored onto the host ([`ports`]).

pub mod ports;
pub mod socket;
