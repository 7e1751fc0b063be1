//! BuildKit's order of work: the stages the target needs, each started as soon as
//! the stages it reads are built, so independent stages run at once (the classic
//! builder runs every stage up to the target, one after the other).
//!
//! The stages run as futures of the build's own task rather than tasks of their own:
//! what they wait on is mostly their RUN steps' processes, which overlap that way, and
//! they can borrow the build's stores and plan. Each stage reports through a channel
//! of its own, forwarded to the build's; when a stage fails the others' channels are
//! closed, which is how a stage learns it is cancelled (as when the client goes), so
//! each removes its own RUN container before the build returns.

use std::collections::BTreeSet;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, watch};

use super::steps::Steps;
use super::{build_stage, BuildError, Output, StageRun, StepEvent};

/// Builds the stages the target needs; returns the target's image. `total` is the
/// Dockerfile's instruction count (for the classic step lines).
pub(super) async fn needed_stages(
    shared: StageRun<'_>,
    total: usize,
    out: &mpsc::Sender<Output>,
) -> Result<String, BuildError> {
    let plan = shared.plan;
    let needed = plan.needed();
    let mut built: Vec<Option<String>> = vec![None; plan.stages.len()];
    let mut started = BTreeSet::new();
    let (cancel, cancelled) = watch::channel(false);
    let mut running = FuturesUnordered::new();
    let mut failure: Option<BuildError> = None;
    loop {
        if failure.is_none() {
            for &i in &needed {
                let ready = plan.stages[i].depends_on().all(|d| built[d].is_some());
                if ready && started.insert(i) {
                    // The stages before this one, as `--from` looks them up.
                    let done: Vec<(Option<String>, String)> = plan.stages[..i]
                        .iter()
                        .map(|s| (s.name.clone(), built[s.index].clone().unwrap_or_default()))
                        .collect();
                    running.push(stage(shared, total, i, done, cancelled.clone(), out));
                }
            }
        }
        let Some((i, result)) = running.next().await else {
            break;
        };
        match result {
            Ok(id) => built[i] = Some(id),
            Err(e) => {
                if matches!(e, BuildError::Cancelled) {
                    let _ = out.send(Output::Step(StepEvent::Cancelled(i))).await;
                }
                // The first real error is the build's; a cancellation only counts when
                // nothing else went wrong (the client went away).
                if failure.is_none() || matches!(failure, Some(BuildError::Cancelled)) {
                    failure = Some(e);
                }
                let _ = cancel.send(true);
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    built[plan.target]
        .clone()
        .ok_or_else(|| BuildError::Invalid("the target stage was not built".into()))
}

/// One stage, its output forwarded to the build's until it ends or the build is
/// cancelled.
async fn stage(
    shared: StageRun<'_>,
    total: usize,
    i: usize,
    done: Vec<(Option<String>, String)>,
    mut cancelled: watch::Receiver<bool>,
    out: &mpsc::Sender<Output>,
) -> (usize, Result<String, BuildError>) {
    let (tx, mut rx) = mpsc::channel::<Output>(64);
    let work = async move {
        let mut steps = Steps::new(total, shared.plan.stages.len(), &tx);
        build_stage(shared, &shared.plan.stages[i], &done, &mut steps, &tx).await
        // `tx` goes here, which ends the forwarding below.
    };
    let forward = async move {
        loop {
            tokio::select! {
                o = rx.recv() => match o {
                    Some(o) => {
                        if out.send(o).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                _ = async { cancelled.wait_for(|c| *c).await.is_ok() } => break,
                // Nobody reads the build any more (the client went away).
                _ = out.closed() => break,
            }
        }
        // Dropping `rx` closes the stage's channel: it stops at its next check.
    };
    let (result, ()) = tokio::join!(work, forward);
    (i, result)
}
