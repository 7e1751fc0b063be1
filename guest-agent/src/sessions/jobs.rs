//! Builds in flight, by the ref the client chose. A client sends `Control.Solve`,
//! `Control.Status` and its gateway calls (`LLBBridge.*`, naming the ref in the
//! `buildkit-controlapi-buildid` metadata) concurrently, so whichever arrives first
//! creates the job and the others find it. A job keeps its progress as a log that
//! any number of Status streams read from the start, the session the Solve named,
//! the results its gateway calls produced, and what the gateway finally returned.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard_buildkit_proto::moby::buildkit::v1::StatusResponse;
use tokio::sync::watch;

use super::SessionError;

/// How long a finished job's log stays for a Status stream that comes late.
const LINGER: Duration = Duration::from_secs(30);
/// How long gateway calls wait for the Solve that names the session.
const SOLVE_WAIT: Duration = Duration::from_secs(10);

/// An image a gateway Solve built, under the id the gateway client refers to it by.
#[derive(Debug, Clone)]
pub struct Built {
    pub image: String,
    /// The image's config JSON, as the Dockerfile frontend puts it in its result's
    /// `containerimage.config` metadata.
    pub config: Vec<u8>,
}

/// What the gateway client returned: a result (none for a probe), or its error.
pub type Returned = Result<Option<Built>, String>;

#[derive(Default)]
struct Progress {
    log: Vec<StatusResponse>,
    done: bool,
}

pub struct Job {
    pub id: String,
    progress: watch::Sender<Progress>,
    session: watch::Sender<Option<String>>,
    refs: Mutex<HashMap<String, Built>>,
    returned: watch::Sender<Option<Returned>>,
}

impl Job {
    fn new(id: &str) -> Job {
        Job {
            id: id.to_string(),
            progress: watch::Sender::new(Progress::default()),
            session: watch::Sender::new(None),
            refs: Mutex::new(HashMap::new()),
            returned: watch::Sender::new(None),
        }
    }

    /// The progress so far, every update in order.
    pub fn log(&self) -> Vec<StatusResponse> {
        self.progress.borrow().log.clone()
    }

    /// Adds to the progress every Status stream sees.
    pub fn report(&self, r: StatusResponse) {
        self.progress.send_modify(|p| p.log.push(r));
    }

    /// Ends the progress: Status streams close once they have sent everything.
    pub fn finish(&self) {
        self.progress.send_modify(|p| p.done = true);
    }

    /// The progress from the start, as it comes, until the job finishes.
    pub fn watch(&self) -> impl futures_util::Stream<Item = StatusResponse> + Send + 'static {
        let rx = self.progress.subscribe();
        futures_util::stream::unfold((rx, 0usize), |(mut rx, next)| async move {
            loop {
                let (item, done) = {
                    let p = rx.borrow_and_update();
                    (p.log.get(next).cloned(), p.done)
                };
                if let Some(r) = item {
                    return Some((r, (rx, next + 1)));
                }
                if done {
                    return None;
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        })
    }

    pub fn set_session(&self, id: &str) {
        self.session.send_replace(Some(id.to_string()));
    }

    /// The session of the job's Solve, waiting for the Solve to arrive.
    pub async fn session(&self) -> Result<String, SessionError> {
        let mut rx = self.session.subscribe();
        let found = match tokio::time::timeout(SOLVE_WAIT, rx.wait_for(Option::is_some)).await {
            Ok(Ok(s)) => s.clone(),
            _ => None,
        };
        found.ok_or_else(|| SessionError::NoSolve(self.id.clone()))
    }

    pub fn add_ref(&self, id: &str, built: Built) {
        self.refs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), built);
    }

    pub fn get_ref(&self, id: &str) -> Option<Built> {
        self.refs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// The gateway client's `Return`.
    pub fn set_returned(&self, r: Returned) {
        self.returned.send_replace(Some(r));
    }

    /// Waits for the gateway client's `Return`.
    pub async fn returned(&self) -> Returned {
        let mut rx = self.returned.subscribe();
        let r = match rx.wait_for(Option::is_some).await {
            Ok(r) => r.clone().unwrap_or(Ok(None)),
            Err(_) => Err("the build was abandoned".into()),
        };
        r
    }
}

#[derive(Default)]
pub struct Jobs {
    live: Mutex<HashMap<String, Arc<Job>>>,
}

impl Jobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Job>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The job with this ref, created if this is the first call to name it.
    pub fn get(&self, id: &str) -> Arc<Job> {
        self.lock()
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(Job::new(id)))
            .clone()
    }

    /// Finishes a job and forgets it a little later, once late Status streams have
    /// had their chance to read its log.
    pub fn retire(self: &Arc<Self>, job: &Arc<Job>) {
        job.finish();
        let jobs = self.clone();
        let job = job.clone();
        tokio::spawn(async move {
            tokio::time::sleep(LINGER).await;
            let mut live = jobs.lock();
            if live.get(&job.id).is_some_and(|j| Arc::ptr_eq(j, &job)) {
                live.remove(&job.id);
            }
        });
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn status_streams_read_the_whole_log_and_end_with_the_job() {
        let jobs = Arc::new(Jobs::default());
        let job = jobs.get("r1");
        job.report(StatusResponse::default());
        let early = job.watch();
        let j = jobs.get("r1");
        assert!(Arc::ptr_eq(&job, &j));
        job.report(StatusResponse::default());
        jobs.retire(&job);
        let late = job.watch();
        assert_eq!(early.collect::<Vec<_>>().await.len(), 2);
        assert_eq!(late.collect::<Vec<_>>().await.len(), 2);
    }

    #[tokio::test]
    async fn gateway_calls_wait_for_the_solve_and_its_return() {
        let jobs = Jobs::default();
        let job = jobs.get("r2");
        let waiter = {
            let job = job.clone();
            tokio::spawn(async move { job.session().await })
        };
        job.set_session("s1");
        assert_eq!(waiter.await.unwrap().unwrap(), "s1");
        job.set_returned(Err("boom".into()));
        assert_eq!(job.returned().await.unwrap_err(), "boom");
    }
}
