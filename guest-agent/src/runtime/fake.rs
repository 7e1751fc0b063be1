//! An in-memory [`ContainerRuntime`] for tests: processes are entries in a table that a
//! test ends with [`FakeRuntime::exit`], signals are recorded (SIGKILL and SIGTERM end
//! the process as their default actions would), and mounts are plain directories. An
//! exec whose command a test gave an outcome ([`FakeRuntime::exec_outcome`]) exits at
//! once with it; other execs run until signalled. It needs no root, no kernel features
//! and starts nothing.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use nix::sys::signal::Signal;
use tokio::sync::oneshot;

use super::rootfs::RootfsDirs;
use super::shim::ExitRecord;
use super::{spec, BoxFuture, ContainerRuntime, StartFailure, StartRequest, Started};

#[derive(Default)]
pub struct FakeRuntime {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_pid: i64,
    procs: HashMap<i64, Proc>,
    exits: HashMap<PathBuf, ExitRecord>,
    mounted: BTreeSet<PathBuf>,
    fail_start: Option<StartFailure>,
    fail_mount: bool,
    signals: Vec<(i64, Signal)>,
    paused: BTreeSet<String>,
    updates: Vec<String>,
    /// Exit code and output of execs, by their command line (args joined by spaces).
    exec_outcomes: HashMap<String, (i32, String)>,
    /// Every exec started: (container, command line).
    execs: Vec<(String, String)>,
}

struct Proc {
    id: String,
    /// Where its exit is recorded: the bundle or the exec's directory.
    dir: PathBuf,
    exec: bool,
    shim_pid: i64,
    /// Fires the `exited` future; `None` once the engine that started it "died".
    done: Option<oneshot::Sender<()>>,
}

impl FakeRuntime {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next start fails with this exit code and detail.
    pub fn fail_next_start(&self, code: i64, detail: &str) {
        self.lock().fail_start = Some(StartFailure {
            code,
            detail: detail.into(),
        });
    }

    /// Mounting a root filesystem fails until told otherwise.
    pub fn fail_mounts(&self, fail: bool) {
        self.lock().fail_mount = fail;
    }

    /// The pid of container `id`'s own process, if it runs.
    pub fn pid_of(&self, id: &str) -> Option<i64> {
        let s = self.lock();
        s.procs
            .iter()
            .find(|(_, p)| p.id == id && !p.exec)
            .map(|(pid, _)| *pid)
    }

    /// Ends container `id`'s own process with `code`, as if it exited by itself.
    pub fn exit(&self, id: &str, code: i32) -> bool {
        match self.pid_of(id) {
            Some(pid) => {
                self.end(pid, code);
                true
            }
            None => false,
        }
    }

    /// The engine that started the processes dies: they keep running, but nobody is
    /// told when they exit (an adopting engine has to watch for their exit records).
    pub fn forget_parents(&self) {
        for p in self.lock().procs.values_mut() {
            p.done = None;
        }
    }

    /// Root filesystems mounted now (their `merged` directories).
    pub fn mounted(&self) -> BTreeSet<PathBuf> {
        self.lock().mounted.clone()
    }

    /// Every signal sent so far.
    pub fn signals(&self) -> Vec<(i64, Signal)> {
        self.lock().signals.clone()
    }

    /// Containers frozen now.
    pub fn paused(&self) -> BTreeSet<String> {
        self.lock().paused.clone()
    }

    /// Execs running `cmdline` (args joined by spaces) exit at once with `code` after
    /// writing `output`; `None` makes them run until signalled again.
    pub fn exec_outcome(&self, cmdline: &str, outcome: Option<(i32, &str)>) {
        let mut s = self.lock();
        match outcome {
            Some((code, out)) => s
                .exec_outcomes
                .insert(cmdline.to_string(), (code, out.to_string())),
            None => s.exec_outcomes.remove(cmdline),
        };
    }

    /// Execs started so far in container `id` (their command lines).
    pub fn execs_of(&self, id: &str) -> Vec<String> {
        let s = self.lock();
        s.execs
            .iter()
            .filter(|(c, _)| c == id)
            .map(|(_, cmd)| cmd.clone())
            .collect()
    }

    /// Exec processes running now.
    pub fn running_execs(&self) -> usize {
        self.lock().procs.values().filter(|p| p.exec).count()
    }

    /// Containers whose limits were updated, in order.
    pub fn updates(&self) -> Vec<String> {
        self.lock().updates.clone()
    }

    fn end(&self, pid: i64, code: i32) {
        let mut s = self.lock();
        let Some(p) = s.procs.remove(&pid) else {
            return;
        };
        s.procs.remove(&p.shim_pid);
        s.paused.remove(&p.id);
        s.exits.insert(
            p.dir.clone(),
            ExitRecord {
                exit_code: code,
                finished_at: crate::clock::now(),
                error: String::new(),
            },
        );
        drop(s);
        if let Some(done) = p.done {
            let _ = done.send(());
        }
    }
}

/// An exec's command line from its `process.json`.
fn exec_cmdline(process: &Path) -> String {
    std::fs::read(process)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v.get("args").and_then(|a| a.as_array()).map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        })
        .unwrap_or_default()
}

impl ContainerRuntime for FakeRuntime {
    fn mount_rootfs(&self, _layers: &[PathBuf], dirs: &RootfsDirs) -> io::Result<()> {
        if self.lock().fail_mount {
            return Err(io::Error::other("mounting failed (fake)"));
        }
        for d in [&dirs.upper, &dirs.work, &dirs.merged] {
            std::fs::create_dir_all(d)?;
        }
        self.lock().mounted.insert(dirs.merged.clone());
        Ok(())
    }

    fn unmount_rootfs(&self, dirs: &RootfsDirs) -> io::Result<()> {
        self.lock().mounted.remove(&dirs.merged);
        Ok(())
    }

    fn start<'a>(&'a self, req: StartRequest<'a>) -> BoxFuture<'a, Result<Started, StartFailure>> {
        Box::pin(async move {
            let mut s = self.lock();
            if let Some(f) = s.fail_start.take() {
                return Err(f);
            }
            // The real runtime only starts what its bundle describes.
            let described = match req.exec_dir {
                Some(d) => d.join("process.json"),
                None => req.bundle.join("config.json"),
            };
            if !described.is_file() {
                return Err(StartFailure {
                    code: 255,
                    detail: format!("{} is missing", described.display()),
                });
            }
            let dir = req.exec_dir.unwrap_or(req.bundle).to_path_buf();
            s.exits.remove(&dir);
            s.next_pid += 2;
            let (shim_pid, pid) = (1000 + s.next_pid, 1001 + s.next_pid);
            if req.exec_dir.is_some() {
                let cmdline = exec_cmdline(&described);
                s.execs.push((req.id.to_string(), cmdline.clone()));
                if let Some((code, output)) = s.exec_outcomes.get(&cmdline).cloned() {
                    // Done at once: its output logged and its exit recorded.
                    let line = super::logfile::log_line("stdout", output.as_bytes());
                    let _ = std::fs::write(dir.join(super::shim::LOG_FILE), line);
                    s.exits.insert(
                        dir,
                        ExitRecord {
                            exit_code: code,
                            finished_at: crate::clock::now(),
                            error: String::new(),
                        },
                    );
                    return Ok(Started {
                        pid,
                        shim_pid,
                        exited: Box::pin(async {}),
                    });
                }
            }
            let (tx, rx) = oneshot::channel();
            s.procs.insert(
                pid,
                Proc {
                    id: req.id.to_string(),
                    dir,
                    exec: req.exec_dir.is_some(),
                    shim_pid,
                    done: Some(tx),
                },
            );
            Ok(Started {
                pid,
                shim_pid,
                exited: Box::pin(async move {
                    if rx.await.is_err() {
                        // Its parent is gone: this engine never hears of the exit.
                        std::future::pending::<()>().await;
                    }
                }),
            })
        })
    }

    fn exit_record(&self, dir: &Path) -> Option<ExitRecord> {
        self.lock().exits.get(dir).cloned()
    }

    fn signal(&self, pid: i64, sig: Signal) -> io::Result<()> {
        let known = {
            let mut s = self.lock();
            s.signals.push((pid, sig));
            s.procs.contains_key(&pid)
        };
        if !known {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        if matches!(sig, Signal::SIGKILL | Signal::SIGTERM) {
            self.end(pid, 128 + sig as i32);
        }
        Ok(())
    }

    fn alive(&self, pid: i64) -> bool {
        let s = self.lock();
        s.procs.contains_key(&pid) || s.procs.values().any(|p| p.shim_pid == pid)
    }

    fn owns(&self, id: &str, pid: i64) -> bool {
        self.lock().procs.get(&pid).is_some_and(|p| p.id == id)
    }

    fn set_paused(&self, id: &str, _state_dir: &Path, pause: bool) -> Result<(), String> {
        let mut s = self.lock();
        if pause {
            s.paused.insert(id.to_string());
        } else {
            s.paused.remove(id);
        }
        Ok(())
    }

    fn update(&self, id: &str, _resources: &spec::Resources) -> Result<(), String> {
        self.lock().updates.push(id.to_string());
        Ok(())
    }
}
