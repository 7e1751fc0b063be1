//! BuildKit's build history (what `docker buildx history` and Docker Desktop's
//! Builds view read), not an image's `docker history` (`crate::build::history`):
//! one record per BuildKit build — its ref, when it ran, how it ended, the image
//! it made, and each step (vertex) with its times, cached flag, error and
//! output — folded from the job's progress log when the build ends. A record
//! is written when the build starts too, so a build in flight is listed, and
//! one the engine died during is found "running" at the next start and closed
//! as failed. Records are JSON files, one per build, the newest
//! [`KEEP`] kept (BuildKit's own default history size).
//!
//! A record keeps the build's arguments and labels with their values, as
//! BuildKit's history does (`docker buildx history inspect` shows them), so
//! the build can be run again; the engine's logs name keys only.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use bollard_buildkit_proto::google::protobuf::Timestamp;
use bollard_buildkit_proto::moby::buildkit::v1::StatusResponse;
use serde::{Deserialize, Serialize};

/// How many builds are kept.
pub const KEEP: usize = 50;
/// A step's output kept in its record: the end of it, where errors are.
const STEP_LOG_MAX: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Running,
    Completed,
    Failed,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub name: String,
    /// Unix milliseconds.
    pub started: Option<i64>,
    pub completed: Option<i64>,
    pub cached: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its output (stdout and stderr as they came), the last 64 KiB.
    #[serde(default)]
    pub log: String,
}

/// What the build was asked to do, from the Dockerfile frontend's attributes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub dockerfile: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The arguments' names.
    #[serde(default)]
    pub build_args: Vec<String>,
    /// Their values; empty in records of engines that kept names only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_arg_values: BTreeMap<String, String>,
    /// `--label`s.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub no_cache: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The ref the client gave the build.
    pub id: String,
    /// The image's first tag, or the ref's start for an untagged build.
    pub name: String,
    pub status: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Unix milliseconds.
    pub created: i64,
    pub completed: Option<i64>,
    #[serde(default)]
    pub request: Request,
    /// The image it made (`sha256:…`), and the names it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub total_steps: usize,
    pub cached_steps: usize,
    pub steps: Vec<Step>,
}

impl Record {
    /// A build starting now.
    pub fn start(id: &str, tags: Vec<String>) -> Record {
        Record {
            id: id.to_string(),
            name: tags
                .first()
                .cloned()
                .unwrap_or_else(|| id.chars().take(12).collect()),
            status: Outcome::Running,
            error: None,
            created: ms(SystemTime::now()),
            completed: None,
            request: Request::default(),
            image: None,
            tags,
            total_steps: 0,
            cached_steps: 0,
            steps: Vec::new(),
        }
    }

    /// The record as a list shows it: the steps' output left out.
    pub fn summary(&self) -> Record {
        let mut r = self.clone();
        for s in &mut r.steps {
            s.log.clear();
        }
        r
    }

    /// Folds the build's progress log into its steps, in the order they started.
    pub fn fold(&mut self, log: &[StatusResponse]) {
        let mut order: Vec<String> = Vec::new();
        let mut steps: HashMap<String, Step> = HashMap::new();
        let mut output: HashMap<String, Vec<u8>> = HashMap::new();
        for u in log {
            for v in &u.vertexes {
                if !steps.contains_key(&v.digest) {
                    order.push(v.digest.clone());
                }
                let s = steps.entry(v.digest.clone()).or_default();
                s.name = v.name.clone();
                s.started = v.started.as_ref().map(ts_ms).or(s.started);
                s.completed = v.completed.as_ref().map(ts_ms).or(s.completed);
                s.cached |= v.cached;
                s.error = (!v.error.is_empty())
                    .then(|| v.error.clone())
                    .or(s.error.take());
            }
            for l in &u.logs {
                let out = output.entry(l.vertex.clone()).or_default();
                out.extend_from_slice(&l.msg);
                if out.len() > 2 * STEP_LOG_MAX {
                    out.drain(..out.len() - STEP_LOG_MAX);
                }
            }
        }
        self.steps = order
            .iter()
            .filter_map(|d| {
                let mut s = steps.remove(d)?;
                if let Some(out) = output.remove(d) {
                    let tail = &out[out.len().saturating_sub(STEP_LOG_MAX)..];
                    s.log = String::from_utf8_lossy(tail).into_owned();
                }
                Some(s)
            })
            .collect();
        self.total_steps = self.steps.len();
        self.cached_steps = self.steps.iter().filter(|s| s.cached).count();
    }

    /// The build ended: with the exporter's response, or an error.
    pub fn finish(&mut self, result: Result<&HashMap<String, String>, String>) {
        self.completed = Some(ms(SystemTime::now()));
        match result {
            Ok(response) => {
                self.status = Outcome::Completed;
                self.image = response.get("containerimage.digest").cloned();
            }
            Err(e) => {
                self.status = Outcome::Failed;
                self.error = Some(e);
            }
        }
    }
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn ts_ms(t: &Timestamp) -> i64 {
    t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("no build {0} in the build history")]
    NotFound(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

/// The records on disk, one JSON file per build, and the builds in flight.
pub struct History {
    dir: PathBuf,
    /// Writes (start, finish, pruning) one at a time.
    lock: Mutex<()>,
    running: Mutex<HashMap<String, Record>>,
}

impl History {
    /// Opens the history in `dir`; builds left running by a previous engine
    /// are closed as failed.
    pub fn open(dir: &Path) -> History {
        let h = History {
            dir: dir.to_path_buf(),
            lock: Mutex::new(()),
            running: Mutex::new(HashMap::new()),
        };
        for mut r in h.all() {
            if r.status == Outcome::Running {
                r.status = Outcome::Failed;
                r.error = Some("the engine stopped during the build".into());
                h.write(&r);
            }
        }
        h
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A build starts: listed as running from now.
    pub fn started(&self, id: &str, tags: Vec<String>) {
        let mut r = Record::start(id, tags);
        if let Some(req) = self.in_flight().get(id).map(|r| r.request.clone()) {
            r.request = req;
        }
        self.write(&r);
        self.in_flight().insert(id.to_string(), r);
    }

    /// What the Dockerfile frontend was asked (it may run before or after
    /// the Solve that starts the build arrives).
    pub fn requested(&self, id: &str, req: Request) {
        let mut running = self.in_flight();
        let r = running
            .entry(id.to_string())
            .or_insert_with(|| Record::start(id, Vec::new()));
        r.request = req;
    }

    /// The build ended: its steps from the progress `log`, and its outcome.
    /// A Solve that ran no step and made nothing (a client's probe) is not kept.
    pub fn finished(
        &self,
        id: &str,
        log: &[StatusResponse],
        result: Result<&HashMap<String, String>, String>,
    ) {
        let Some(mut r) = self.in_flight().remove(id) else {
            return;
        };
        r.fold(log);
        r.finish(result);
        if r.status == Outcome::Completed && r.steps.is_empty() && r.image.is_none() {
            if let Some(p) = self.path(id) {
                let _ = std::fs::remove_file(p);
            }
            return;
        }
        self.write(&r);
    }

    fn path(&self, id: &str) -> Option<PathBuf> {
        // Refs are the client's; only a plain name may become a file name.
        let plain = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        plain.then(|| self.dir.join(format!("{id}.json")))
    }

    /// Saves a record (a failure is logged: the build itself is not affected)
    /// and drops the oldest beyond [`KEEP`].
    pub fn write(&self, r: &Record) {
        let Some(path) = self.path(&r.id) else {
            tracing::debug!(id = %r.id, "build ref not kept in the history");
            return;
        };
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let saved = std::fs::create_dir_all(&self.dir)
            .and_then(|_| serde_json::to_vec(r).map_err(std::io::Error::other))
            .and_then(|bytes| crate::fsutil::replace(&path, &bytes));
        if let Err(e) = saved {
            tracing::warn!(error = %e, "saving the build history");
            return;
        }
        // Counting the files is cheap; reading every record (their output
        // included) is paid only when there is something to drop.
        let kept = std::fs::read_dir(&self.dir).map_or(0, |d| d.count());
        if kept > KEEP {
            for old in self.all().iter().skip(KEEP) {
                if let Some(p) = self.path(&old.id) {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
    }

    /// Every record, newest first.
    pub fn all(&self) -> Vec<Record> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut v: Vec<Record> = dir
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect();
        v.sort_by_key(|r: &Record| std::cmp::Reverse(r.created));
        v
    }

    pub fn get(&self, id: &str) -> Result<Record, HistoryError> {
        let path = self
            .path(id)
            .ok_or_else(|| HistoryError::NotFound(id.to_string()))?;
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| HistoryError::Io {
                context: format!("reading {}", path.display()),
                source: std::io::Error::other(e),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(HistoryError::NotFound(id.to_string()))
            }
            Err(source) => Err(HistoryError::Io {
                context: format!("reading {}", path.display()),
                source,
            }),
        }
    }

    /// Forgets a build (`docker buildx history rm`).
    pub fn remove(&self, id: &str) -> Result<(), HistoryError> {
        self.get(id)?;
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = self.path(id) {
            std::fs::remove_file(&p).map_err(|source| HistoryError::Io {
                context: format!("removing {}", p.display()),
                source,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_buildkit_proto::moby::buildkit::v1::{Vertex, VertexLog};

    fn at(s: i64) -> Option<Timestamp> {
        Some(Timestamp {
            seconds: s,
            nanos: 500_000_000,
        })
    }

    fn vertex(d: &str, name: &str, started: i64, done: Option<i64>) -> StatusResponse {
        StatusResponse {
            vertexes: vec![Vertex {
                digest: d.into(),
                name: name.into(),
                started: at(started),
                completed: done.and_then(at),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn the_progress_log_folds_into_steps_in_start_order() {
        let mut cached = vertex("b", "[2/3] COPY a /a", 11, Some(11));
        cached.vertexes[0].cached = true;
        let mut failed = vertex("c", "[3/3] RUN false", 12, Some(13));
        failed.vertexes[0].error = "exit code: 1".into();
        let log = vec![
            vertex("a", "[1/3] FROM busybox", 10, None),
            vertex("b", "[2/3] COPY a /a", 11, None),
            vertex("a", "[1/3] FROM busybox", 10, Some(11)),
            cached,
            vertex("c", "[3/3] RUN false", 12, None),
            StatusResponse {
                logs: vec![
                    VertexLog {
                        vertex: "c".into(),
                        msg: b"oh ".to_vec(),
                        ..Default::default()
                    },
                    VertexLog {
                        vertex: "c".into(),
                        msg: b"no\n".to_vec(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            failed,
        ];
        let mut r = Record::start("ref1", vec!["app:1".into()]);
        r.fold(&log);
        assert_eq!(r.name, "app:1");
        let names: Vec<&str> = r.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["[1/3] FROM busybox", "[2/3] COPY a /a", "[3/3] RUN false"]
        );
        assert_eq!((r.total_steps, r.cached_steps), (3, 1));
        assert_eq!(r.steps[0].started, Some(10_500));
        assert_eq!(r.steps[0].completed, Some(11_500));
        assert_eq!(r.steps[2].error.as_deref(), Some("exit code: 1"));
        assert_eq!(r.steps[2].log, "oh no\n");
        assert!(r.summary().steps[2].log.is_empty());
    }

    #[test]
    fn a_steps_output_keeps_its_end() {
        let big = vec![b'x'; 3 * STEP_LOG_MAX];
        let log = vec![
            vertex("a", "RUN yes", 1, None),
            StatusResponse {
                logs: vec![
                    VertexLog {
                        vertex: "a".into(),
                        msg: big,
                        ..Default::default()
                    },
                    VertexLog {
                        vertex: "a".into(),
                        msg: b"the end".to_vec(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
        ];
        let mut r = Record::start("r", vec![]);
        r.fold(&log);
        assert_eq!(r.steps[0].log.len(), STEP_LOG_MAX);
        assert!(r.steps[0].log.ends_with("the end"));
    }

    #[test]
    fn a_build_is_listed_while_it_runs_and_a_probe_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path());
        h.requested(
            "b1",
            Request {
                dockerfile: "Dockerfile.dev".into(),
                ..Default::default()
            },
        );
        h.started("b1", vec!["app:dev".into()]);
        let listed = h.get("b1").unwrap();
        assert_eq!(
            (listed.status, listed.name.as_str()),
            (Outcome::Running, "app:dev")
        );
        assert_eq!(listed.request.dockerfile, "Dockerfile.dev");
        h.finished(
            "b1",
            &[vertex("a", "RUN true", 1, Some(2))],
            Err("exit code: 1".into()),
        );
        let r = h.get("b1").unwrap();
        assert_eq!(r.status, Outcome::Failed);
        assert_eq!(r.error.as_deref(), Some("exit code: 1"));
        assert_eq!(r.total_steps, 1);

        h.started("probe", vec![]);
        h.finished("probe", &[], Ok(&HashMap::new()));
        assert!(h.get("probe").is_err());
    }

    #[test]
    fn records_are_kept_newest_first_and_a_dead_engines_build_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path());
        for i in 0..KEEP + 3 {
            let mut r = Record::start(&format!("b{i}"), vec![]);
            r.created = i as i64;
            r.finish(Ok(&HashMap::from([(
                "containerimage.digest".to_string(),
                format!("sha256:{i}"),
            )])));
            h.write(&r);
        }
        let all = h.all();
        assert_eq!(all.len(), KEEP);
        assert_eq!(all[0].id, format!("b{}", KEEP + 2));
        assert!(h.get("b0").is_err(), "the oldest went");
        assert_eq!(
            all[0].image.as_deref(),
            Some(&*format!("sha256:{}", KEEP + 2))
        );

        let running = Record::start("alive", vec![]);
        h.write(&running);
        let h = History::open(dir.path());
        let r = h.get("alive").unwrap();
        assert_eq!(r.status, Outcome::Failed);
        assert!(r.error.unwrap().contains("engine stopped"));

        // A ref that is not a plain name never becomes a path.
        assert!(matches!(h.get("../x"), Err(HistoryError::NotFound(_))));
        h.remove("alive").unwrap();
        assert!(h.get("alive").is_err());
    }
}
