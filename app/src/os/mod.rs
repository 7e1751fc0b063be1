//! What differs per host OS, behind one set of names. Each OS's file is compiled
//! only on that OS (`#[cfg]` here, at module level), so the rest of the crate
//! calls `os::…` and never branches on the platform itself.
//!
//! - processes: liveness, asking the supervisor to stop, detaching it from the
//!   caller, and the [`Reaper`] that ends the VM's helpers with the supervisor
//!   even when it is killed outright (Linux: `PR_SET_PDEATHSIG`; macOS: a
//!   guardian on a pipe; Windows: a kill-on-close Job Object);
//! - [`StopRequests`]: SIGTERM/SIGINT, or on Windows Ctrl-C, console close and
//!   a named event `berth vm stop` sets;
//! - local endpoints: unix sockets, Windows named pipes;
//! - files: owner-only permissions, links, free space;
//! - PATH: Windows lists a program's folder in the registry's `Path`
//!   ([`path_var`]) where unix links commands into a PATH folder.

/// `\\.\pipe\NAME` for a bare pipe name; a full path stays as it is. (Plain
/// text, so every OS's build can name a Windows pipe.)
pub fn pipe_path(name: &str) -> String {
    if name.starts_with(r"\\") {
        name.to_string()
    } else {
        format!(r"\\.\pipe\{name}")
    }
}

/// An async local stream (a unix socket, or a named pipe client).
pub trait AsyncLocal: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> AsyncLocal for T {}
pub type AsyncLocalStream = Box<dyn AsyncLocal>;

pub mod path_var;
pub use path_var::PathScope;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::{prepare_keychain, Guard, Reaper};

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
pub use macos::{prepare_keychain, Guard, Reaper};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;
