//! Windows: named pipes, a Job Object for the VM's processes, a named event for
//! stop requests, the `Run` registry key. Win32 calls go through `windows-sys`
//! (the bindings tokio and std's ecosystem already use); each unsafe block is
//! one call on handles this module owns.

use std::ffi::c_void;
use std::io;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use windows_sys::Win32::Foundation::{CloseHandle, LocalFree, HANDLE, STILL_ACTIVE};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, TokenUser, PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES, TOKEN_QUERY,
    TOKEN_USER,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation,
    SetInformationJobObject, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
};
use windows_sys::Win32::System::Threading::{
    CreateEventW, GetCurrentProcess, GetExitCodeProcess, OpenEventW, OpenProcess, OpenProcessToken,
    SetEvent, WaitForSingleObject, EVENT_MODIFY_STATE, INFINITE, PROCESS_QUERY_LIMITED_INFORMATION,
};

use super::path_var::{self, PathScope};
use super::{pipe_path, AsyncLocalStream};

/// A connected local endpoint (the docker pipe, QMP), for short synchronous talks.
pub type LocalStream = std::fs::File;

pub fn connect_unix(path: &Path) -> io::Result<LocalStream> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "{}: this build serves named pipes, not unix sockets",
            path.display()
        ),
    ))
}

pub fn connect_pipe(name: &str) -> io::Result<LocalStream> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(pipe_path(name))
}

/// Pipes opened as files have no read or write timeouts to set.
pub fn set_timeouts(_s: &LocalStream, _d: Duration) -> io::Result<()> {
    Ok(())
}

pub async fn connect_unix_async(path: &Path) -> io::Result<AsyncLocalStream> {
    connect_unix(path).map(|f| Box::new(tokio::fs::File::from_std(f)) as AsyncLocalStream)
}

/// Opens a pipe client, waiting out `ERROR_PIPE_BUSY` (every instance taken
/// until the server creates the next one).
pub async fn connect_pipe_async(name: &str) -> io::Result<AsyncLocalStream> {
    use tokio::net::windows::named_pipe::ClientOptions;
    const ERROR_PIPE_BUSY: i32 = 231;
    let path = pipe_path(name);
    let mut tries = 0;
    loop {
        match ClientOptions::new().open(&path) {
            Ok(c) => return Ok(Box::new(c)),
            Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY) && tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// A handle this module owns, closed on drop.
struct Owned(HANDLE);

// SAFETY: kernel handles may be used and closed from any thread.
unsafe impl Send for Owned {}
unsafe impl Sync for Owned {}

impl Owned {
    fn new(h: HANDLE) -> io::Result<Owned> {
        if h.is_null() {
            Err(io::Error::last_os_error())
        } else {
            Ok(Owned(h))
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: the handle is ours and closed once.
        unsafe { CloseHandle(self.0) };
    }
}

/// Whether `pid` runs.
pub fn pid_alive(pid: u32) -> bool {
    // SAFETY: OpenProcess returns null or a handle we own.
    let Ok(h) = Owned::new(unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) })
    else {
        return false;
    };
    let mut code = 0u32;
    // SAFETY: a valid process handle and a place for the code.
    let ok = unsafe { GetExitCodeProcess(h.0, &mut code) } != 0;
    ok && code == STILL_ACTIVE as u32
}

/// The event a supervisor waits on for `berth vm stop` (Windows has no SIGTERM
/// and console control events reach only a shared console).
fn stop_event_name(pid: u32) -> Vec<u16> {
    wide(&format!(r"Local\berth-vm-stop-{pid}"))
}

/// Asks the supervisor `pid` to shut the VM down cleanly.
pub fn request_stop(pid: u32) -> io::Result<()> {
    let name = stop_event_name(pid);
    // SAFETY: a NUL-terminated name; the handle is ours.
    let h = Owned::new(unsafe { OpenEventW(EVENT_MODIFY_STATE, 0, name.as_ptr()) })?;
    // SAFETY: a valid event handle.
    if unsafe { SetEvent(h.0) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Starts `cmd` without a console window, in its own process group: it outlives
/// the command (or app) that started it.
pub fn detach(cmd: &mut std::process::Command) {
    use std::os::windows::process::CommandExt;
    const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
    const CREATE_NO_WINDOW: u32 = 0x0800_0000;
    cmd.creation_flags(CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW);
}

/// Process trees are the [`Reaper`]'s Job Object's business on Windows.
pub fn own_group(_cmd: &mut tokio::process::Command) {}

/// See [`own_group`]: killing the child kills what the job holds for it.
pub fn kill_tree(_pid: u32) {}

/// Unix modes do not exist here: files under the user's profile are already
/// private to the user, and the pipes get an explicit owner-only DACL.
pub fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

pub fn mode(_meta: &std::fs::Metadata) -> Option<u32> {
    None
}

/// Whether `berth install` links its commands into a PATH folder: not here,
/// where symlinks need Developer Mode or an administrator. Berth's own folder
/// on PATH is the installer's job (not configured yet: see the README).
pub const LINKS_ON_PATH: bool = false;

pub fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}

/// Free bytes on the volume holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::windows::ffi::OsStrExt;
    let p: Vec<u16> = path.as_os_str().encode_wide().chain([0]).collect();
    let mut free = 0u64;
    // SAFETY: a NUL-terminated path and one out-pointer; the others may be null.
    let ok = unsafe {
        windows_sys::Win32::Storage::FileSystem::GetDiskFreeSpaceExW(
            p.as_ptr(),
            &mut free,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    (ok != 0).then_some(free)
}

/// How a process ended, for logs (large codes are NTSTATUS values: hex).
pub fn describe_exit(s: ExitStatus) -> String {
    match s.code() {
        Some(c) if (c as u32) >= 0xC000_0000 => format!("exit status 0x{:08X}", c as u32),
        Some(c) => format!("exit status {c}"),
        None => s.to_string(),
    }
}

pub fn is_root() -> bool {
    false
}

/// A process's resident memory (not read on Windows yet).
/// What a file takes on disk: its length (Berth's disk image is not sparse there).
pub fn allocated_bytes(meta: &std::fs::Metadata) -> u64 {
    meta.len()
}

pub fn rss_bytes(_pid: u32) -> Option<u64> {
    None
}

/// The current user's SID as a string (`S-1-5-21-…`).
pub fn current_user_sid() -> io::Result<String> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo handle of this process; the token handle is ours.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let token = Owned::new(token)?;
    let mut len = 0u32;
    // SAFETY: asks the size only (fails with ERROR_INSUFFICIENT_BUFFER).
    unsafe { GetTokenInformation(token.0, TokenUser, std::ptr::null_mut(), 0, &mut len) };
    // u64s: TOKEN_USER's alignment.
    let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
    // SAFETY: a buffer of at least `len` bytes.
    if unsafe {
        GetTokenInformation(
            token.0,
            TokenUser,
            buf.as_mut_ptr().cast(),
            (buf.len() * 8) as u32,
            &mut len,
        )
    } == 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the buffer now holds a TOKEN_USER whose SID points into it.
    let sid = unsafe { (*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    let mut s: *mut u16 = std::ptr::null_mut();
    // SAFETY: a valid SID; the string is LocalAlloc'd and freed below.
    if unsafe { ConvertSidToStringSidW(sid, &mut s) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a NUL-terminated wide string from the call above.
    let text = unsafe {
        let n = (0..).take_while(|&i| *s.add(i) != 0).count();
        String::from_utf16_lossy(std::slice::from_raw_parts(s, n))
    };
    // SAFETY: allocated by ConvertSidToStringSidW.
    unsafe { LocalFree(s.cast()) };
    Ok(text)
}

/// Security attributes that give only the current user (and no one else, not
/// even Administrators) access: the docker pipe is as private as Docker's
/// 0600 unix socket.
pub struct OwnerOnly {
    sd: PSECURITY_DESCRIPTOR,
    sa: SECURITY_ATTRIBUTES,
}

// SAFETY: the descriptor is immutable once made and freed once, on drop.
unsafe impl Send for OwnerOnly {}
unsafe impl Sync for OwnerOnly {}

impl OwnerOnly {
    pub fn new() -> io::Result<OwnerOnly> {
        let sddl = owner_only_sddl(&current_user_sid()?);
        let w = wide(&sddl);
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: a NUL-terminated SDDL string; `sd` is LocalAlloc'd, freed on drop.
        if unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                w.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                std::ptr::null_mut(),
            )
        } == 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnerOnly {
            sd,
            sa: SECURITY_ATTRIBUTES {
                nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
                lpSecurityDescriptor: sd,
                bInheritHandle: 0,
            },
        })
    }

    /// For tokio's `ServerOptions::create_with_security_attributes_raw`.
    pub fn as_raw(&self) -> *mut c_void {
        (&self.sa as *const SECURITY_ATTRIBUTES).cast_mut().cast()
    }
}

impl Drop for OwnerOnly {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
        unsafe { LocalFree(self.sd) };
    }
}

/// A protected DACL (nothing inherited) with one entry: full access for `sid`.
pub fn owner_only_sddl(sid: &str) -> String {
    format!("D:P(A;;GA;;;{sid})")
}

/// The supervisor's stop requests: Ctrl-C or Ctrl-Break, the console closing,
/// logoff or shutdown, and `berth vm stop` (the named event).
pub struct StopRequests {
    ctrl_c: tokio::signal::windows::CtrlC,
    ctrl_break: tokio::signal::windows::CtrlBreak,
    close: tokio::signal::windows::CtrlClose,
    shutdown: tokio::signal::windows::CtrlShutdown,
    event: tokio::sync::mpsc::UnboundedReceiver<()>,
}

impl StopRequests {
    pub fn install() -> io::Result<StopRequests> {
        let name = stop_event_name(std::process::id());
        // SAFETY: an auto-reset event under a NUL-terminated name; the handle is ours.
        let event = Owned::new(unsafe { CreateEventW(std::ptr::null(), 0, 0, name.as_ptr()) })?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        // A plain thread: WaitForSingleObject blocks, and the event lives as long
        // as the supervisor.
        std::thread::Builder::new()
            .name("berth-stop-event".into())
            .spawn(move || {
                // The whole handle moves here (not just its field), so it stays open.
                let event = event;
                loop {
                    // SAFETY: a valid event handle, kept alive by this closure.
                    unsafe { WaitForSingleObject(event.0, INFINITE) };
                    if tx.send(()).is_err() {
                        return;
                    }
                }
            })?;
        Ok(StopRequests {
            ctrl_c: tokio::signal::windows::ctrl_c()?,
            ctrl_break: tokio::signal::windows::ctrl_break()?,
            close: tokio::signal::windows::ctrl_close()?,
            shutdown: tokio::signal::windows::ctrl_shutdown()?,
            event: rx,
        })
    }

    /// Returns at the next request.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.ctrl_c.recv() => {}
            _ = self.ctrl_break.recv() => {}
            _ = self.close.recv() => {}
            _ = self.shutdown.recv() => {}
            _ = self.event.recv() => {}
        }
    }
}

/// Ends the supervisor's children when it dies, however it dies: they are
/// assigned to a Job Object that kills its processes when its last handle
/// closes, and only the supervisor holds that handle (not inheritable).
pub struct Reaper {
    job: Owned,
}

/// What keeps one child tied to the supervisor (the job does, on Windows).
pub struct Guard;

impl Reaper {
    pub fn new() -> io::Result<Reaper> {
        // SAFETY: an anonymous job with default (non-inheritable) security.
        let job = Owned::new(unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) })?;
        // SAFETY: a zeroed limit block is valid; only the flag is set.
        let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
        info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        // SAFETY: the job handle and a block of the size given.
        if unsafe {
            SetInformationJobObject(
                job.0,
                JobObjectExtendedLimitInformation,
                (&info as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
                std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
            )
        } == 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(Reaper { job })
    }

    /// Before `cmd` is spawned.
    pub fn prepare(&self, _cmd: &mut tokio::process::Command) {}

    /// After the child is spawned: into the job (its own children follow it).
    pub fn adopt(&self, child: &tokio::process::Child) -> io::Result<Guard> {
        let Some(h) = child.raw_handle() else {
            return Err(io::Error::other("the child has already exited"));
        };
        // SAFETY: the job handle and the child's process handle are valid.
        if unsafe { AssignProcessToJobObject(self.job.0, h as HANDLE) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Guard)
    }
}

const RUN_KEY: &str = r"Software\Microsoft\Windows\CurrentVersion\Run";
const MACHINE_ENV_KEY: &str = r"SYSTEM\CurrentControlSet\Control\Session Manager\Environment";

/// A string value of a registry key, and its type (`REG_SZ` or, left
/// unexpanded, `REG_EXPAND_SZ`); `None` when the value does not exist.
fn reg_string(
    root: windows_sys::Win32::System::Registry::HKEY,
    sub: &str,
    name: &str,
) -> io::Result<Option<(String, u32)>> {
    use windows_sys::Win32::System::Registry::{
        RegGetValueW, RRF_NOEXPAND, RRF_RT_REG_EXPAND_SZ, RRF_RT_REG_SZ,
    };
    const ERROR_FILE_NOT_FOUND: u32 = 2;
    const ERROR_MORE_DATA: u32 = 234;
    let sub = wide(sub);
    let value = wide(name);
    // PATH-sized values are common: start at 4 KiB and grow as asked.
    let mut buf = vec![0u16; 2048];
    loop {
        let mut len = (buf.len() * 2) as u32;
        let mut kind = 0u32;
        // SAFETY: NUL-terminated names and a buffer of `len` bytes.
        let rc = unsafe {
            RegGetValueW(
                root,
                sub.as_ptr(),
                value.as_ptr(),
                RRF_RT_REG_SZ | RRF_RT_REG_EXPAND_SZ | RRF_NOEXPAND,
                &mut kind,
                buf.as_mut_ptr().cast(),
                &mut len,
            )
        };
        match rc {
            0 => {
                let n = (len as usize / 2).min(buf.len());
                let text = &buf[..n];
                let text = text.strip_suffix(&[0]).unwrap_or(text);
                return Ok(Some((String::from_utf16_lossy(text), kind)));
            }
            ERROR_MORE_DATA => buf.resize((len as usize).div_ceil(2).max(buf.len() * 2), 0),
            ERROR_FILE_NOT_FOUND => return Ok(None),
            rc => return Err(io::Error::from_raw_os_error(rc as i32)),
        }
    }
}

/// Sets a string value of type `kind`, creating the key; `None` removes it.
fn set_reg_string(
    root: windows_sys::Win32::System::Registry::HKEY,
    sub: &str,
    name: &str,
    data: Option<(&str, u32)>,
) -> io::Result<()> {
    use windows_sys::Win32::System::Registry::{
        RegCloseKey, RegCreateKeyExW, RegDeleteValueW, RegSetValueExW, HKEY, KEY_SET_VALUE,
        REG_OPTION_NON_VOLATILE,
    };
    const ERROR_FILE_NOT_FOUND: u32 = 2;
    let sub = wide(sub);
    let mut key: HKEY = std::ptr::null_mut();
    // SAFETY: NUL-terminated names; the key handle is closed below.
    let rc = unsafe {
        RegCreateKeyExW(
            root,
            sub.as_ptr(),
            0,
            std::ptr::null(),
            REG_OPTION_NON_VOLATILE,
            KEY_SET_VALUE,
            std::ptr::null(),
            &mut key,
            std::ptr::null_mut(),
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc as i32));
    }
    let value = wide(name);
    let rc = match data {
        Some((text, kind)) => {
            let data = wide(text);
            // SAFETY: a string of `data`'s bytes, its NUL included.
            unsafe {
                RegSetValueExW(
                    key,
                    value.as_ptr(),
                    0,
                    kind,
                    data.as_ptr().cast(),
                    (data.len() * 2) as u32,
                )
            }
        }
        // SAFETY: a NUL-terminated value name.
        None => match unsafe { RegDeleteValueW(key, value.as_ptr()) } {
            ERROR_FILE_NOT_FOUND => 0,
            rc => rc,
        },
    };
    // SAFETY: opened above.
    unsafe { RegCloseKey(key) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc as i32));
    }
    Ok(())
}

/// The value under `HKCU\Software\Microsoft\Windows\CurrentVersion\Run` that
/// starts a program at login: set to `command`, or removed for `None`.
pub fn set_run_at_login(name: &str, command: Option<&str>) -> io::Result<()> {
    use windows_sys::Win32::System::Registry::{HKEY_CURRENT_USER, REG_SZ};
    set_reg_string(
        HKEY_CURRENT_USER,
        RUN_KEY,
        name,
        command.map(|c| (c, REG_SZ)),
    )
}

/// Whether the `Run` value `name` exists (and what it runs).
pub fn run_at_login(name: &str) -> io::Result<Option<String>> {
    use windows_sys::Win32::System::Registry::HKEY_CURRENT_USER;
    Ok(reg_string(HKEY_CURRENT_USER, RUN_KEY, name)?.map(|(s, _)| s))
}

fn env_key(scope: PathScope) -> (windows_sys::Win32::System::Registry::HKEY, &'static str) {
    use windows_sys::Win32::System::Registry::{HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE};
    match scope {
        PathScope::User => (HKEY_CURRENT_USER, "Environment"),
        PathScope::Machine => (HKEY_LOCAL_MACHINE, MACHINE_ENV_KEY),
    }
}

/// The registry's `Path` for `scope`, as stored (`%VARS%` unexpanded).
pub fn path_list(scope: PathScope) -> io::Result<String> {
    let (root, sub) = env_key(scope);
    Ok(reg_string(root, sub, "Path")?
        .map(|(s, _)| s)
        .unwrap_or_default())
}

/// Puts `dir` on `scope`'s `Path` (for new processes: programs started
/// afterwards, as Explorer re-reads it on the broadcast). `false`: it was
/// there, or for the user, every user has it (the installer put it there).
pub fn add_path_entry(scope: PathScope, dir: &Path) -> io::Result<bool> {
    if scope == PathScope::User
        && path_var::contains(&path_list(PathScope::Machine)?, &dir.to_string_lossy())
    {
        return Ok(false);
    }
    edit_path_var(scope, |list| path_var::with(list, &dir.to_string_lossy()))
}

/// Takes `dir` off `scope`'s `Path`. `false`: it was not there.
pub fn remove_path_entry(scope: PathScope, dir: &Path) -> io::Result<bool> {
    edit_path_var(scope, |list| {
        path_var::without(list, &dir.to_string_lossy())
    })
}

fn edit_path_var(scope: PathScope, edit: impl FnOnce(&str) -> Option<String>) -> io::Result<bool> {
    use windows_sys::Win32::System::Registry::REG_EXPAND_SZ;
    let (root, sub) = env_key(scope);
    let (list, kind) = reg_string(root, sub, "Path")?.unwrap_or((String::new(), REG_EXPAND_SZ));
    let Some(new) = edit(&list) else {
        return Ok(false);
    };
    // The type stays what it was, so `%VARS%` in the other entries still expand.
    let data = (!new.is_empty()).then_some((new.as_str(), kind));
    set_reg_string(root, sub, "Path", data)?;
    announce_environment();
    Ok(true)
}

/// Tells running programs (Explorer, so what it starts next) that the
/// environment changed, as the System control panel does.
fn announce_environment() {
    use windows_sys::Win32::UI::WindowsAndMessaging::{
        SendMessageTimeoutW, HWND_BROADCAST, SMTO_ABORTIFHUNG, WM_SETTINGCHANGE,
    };
    let what = wide("Environment");
    let mut result = 0usize;
    // SAFETY: a NUL-terminated string that outlives the (bounded) call.
    unsafe {
        SendMessageTimeoutW(
            HWND_BROADCAST,
            WM_SETTINGCHANGE,
            0,
            what.as_ptr() as isize,
            SMTO_ABORTIFHUNG,
            5000,
            &mut result,
        )
    };
}

/// `keyring`'s default store here is the Credential Manager: nothing to choose.
pub fn prepare_keychain(_service: &str, _probe_key: &str) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipe_acl_names_only_this_user() {
        let sid = current_user_sid().unwrap();
        assert!(sid.starts_with("S-1-"), "{sid}");
        assert_eq!(owner_only_sddl(&sid), format!("D:P(A;;GA;;;{sid})"));
        // Windows parses it into a real descriptor.
        OwnerOnly::new().unwrap();
    }

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_not() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0xFFFF_FFF0));
    }

    #[test]
    fn a_stop_request_reaches_the_stop_event() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut stop = StopRequests::install().unwrap();
            request_stop(std::process::id()).unwrap();
            tokio::time::timeout(Duration::from_secs(10), stop.recv())
                .await
                .expect("the event fired");
        });
        // Nobody waits for a process that does not exist.
        assert!(request_stop(0xFFFF_FFF0).is_err());
    }

    #[test]
    fn the_run_key_value_comes_and_goes() {
        let name = format!("berth-test-{}", std::process::id());
        set_run_at_login(&name, Some(r#""C:\Berth\berth-desktop.exe""#)).unwrap();
        assert_eq!(
            run_at_login(&name).unwrap().as_deref(),
            Some(r#""C:\Berth\berth-desktop.exe""#)
        );
        set_run_at_login(&name, None).unwrap();
        assert_eq!(run_at_login(&name).unwrap(), None);
        set_run_at_login(&name, None).unwrap();
    }

    #[test]
    fn a_folder_comes_onto_the_users_path_and_goes() {
        let dir = std::path::PathBuf::from(format!(r"C:erth-test-{}", std::process::id()));
        let before = path_list(PathScope::User).unwrap();
        assert!(add_path_entry(PathScope::User, &dir).unwrap());
        assert!(!add_path_entry(PathScope::User, &dir).unwrap(), "once");
        let on = path_list(PathScope::User).unwrap();
        assert!(path_var::contains(&on, &dir.to_string_lossy()), "{on}");
        assert!(remove_path_entry(PathScope::User, &dir).unwrap());
        assert!(!remove_path_entry(PathScope::User, &dir).unwrap());
        assert_eq!(path_list(PathScope::User).unwrap(), before);
    }

    #[tokio::test]
    async fn a_job_kills_its_children_when_its_handle_closes() {
        let reaper = Reaper::new().unwrap();
        // A shell that reads its stdin: it runs until killed, as the test holds
        // the pipe's other end.
        let mut cmd = tokio::process::Command::new("cmd.exe");
        cmd.arg("/k")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null());
        reaper.prepare(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let _stdin = child.stdin.take();
        reaper.adopt(&child).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(child.try_wait().unwrap().is_none(), "it waits for input");
        // The supervisor dying closes the job's last handle, as this does.
        drop(reaper);
        tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("the job killed the child")
            .unwrap();
    }
}
