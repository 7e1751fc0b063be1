//! Linux: the kernel ends the VM's helpers with the supervisor, and the
//! keychain is the Secret Service or the kernel's keyutils.

use std::io;

/// Ends the supervisor's children when it dies, even by SIGKILL: a VM nobody
/// manages would hold the data disk and the ports. Linux asks the kernel
/// (`PR_SET_PDEATHSIG`), so nothing needs holding.
pub struct Reaper;

/// What keeps one child tied to the supervisor (nothing, on Linux).
pub struct Guard;

impl Reaper {
    pub fn new() -> io::Result<Reaper> {
        Ok(Reaper)
    }

    /// Before `cmd` is spawned.
    pub fn prepare(&self, cmd: &mut tokio::process::Command) {
        // SAFETY: prctl is async-signal-safe and touches only this child.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
    }

    /// After the child is spawned; keep the guard as long as the child.
    pub fn adopt(&self, _child: &tokio::process::Child) -> io::Result<Guard> {
        Ok(Guard)
    }
}

/// Picks the keychain backend once per process: the Secret Service when a
/// session bus is there and answers (probed on `probe_key` of `service`), else
/// keyutils (servers and CI have no desktop session).
/// `BERTH_KEYRING=keyutils|secret-service` decides instead.
pub fn prepare_keychain(service: &str, probe_key: &str) {
    let wanted = std::env::var("BERTH_KEYRING").unwrap_or_default();
    let secret_service = match wanted.as_str() {
        "keyutils" => false,
        "secret-service" => true,
        _ => {
            std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
                && secret_service_answers(service, probe_key)
        }
    };
    if secret_service {
        keyring::set_default_credential_builder(
            keyring::secret_service::default_credential_builder(),
        );
    } else {
        attach_session_keyring();
        keyring::set_default_credential_builder(keyring::keyutils::default_credential_builder());
    }
}

/// Keys live in the session keyring and only its possessors may read them. A
/// process outside any login session (no pam_keyinit: services, CI, `su`)
/// falls back to the user-session keyring, which it does not possess, so what
/// one helper stored the next could not read. Such processes join one named
/// session keyring instead, the same for every Berth process of the user.
fn attach_session_keyring() {
    const KEYCTL_GET_KEYRING_ID: libc::c_long = 0;
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
    const KEY_SPEC_USER_SESSION_KEYRING: libc::c_long = -5;
    // SAFETY: keyctl with integer arguments (and below a NUL-terminated name)
    // only reads its arguments.
    let id = |spec: libc::c_long| unsafe {
        libc::syscall(libc::SYS_keyctl, KEYCTL_GET_KEYRING_ID, spec, 0)
    };
    let session = id(KEY_SPEC_SESSION_KEYRING);
    if session < 0 || session == id(KEY_SPEC_USER_SESSION_KEYRING) {
        let name = c"berth-credentials";
        unsafe {
            libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr());
        }
    }
}

fn secret_service_answers(service: &str, probe_key: &str) -> bool {
    let builder = keyring::secret_service::default_credential_builder();
    match builder.build(None, service, probe_key) {
        Ok(cred) => matches!(
            keyring::Entry::new_with_credential(cred).get_password(),
            Ok(_) | Err(keyring::Error::NoEntry)
        ),
        Err(_) => false,
    }
}
