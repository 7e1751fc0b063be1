//! Running containers: the OCI spec (`spec`), the overlay root filesystem (`rootfs`),
//! and the per-container shim (`shim`) that drives youki's `libcontainer`.
//!
//! libcontainer clones its caller and runs Rust in the child, so it must never run on
//! the daemon's tokio threads: the daemon re-executes its own binary as `shim`, a small
//! single-threaded process that creates and starts the container, owns its stdio,
//! writes its log, reaps it and records the exit.

pub mod attach_proto;
pub mod logfile;
mod pump;
pub mod rootfs;
pub mod seccomp;
pub mod shim;
pub mod spec;
