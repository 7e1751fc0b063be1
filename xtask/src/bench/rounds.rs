//! Rounds taken in turn: each round runs once on every engine before the next round
//! starts, so a machine whose speed drifts (shared cores, neighbours) slows both engines
//! alike instead of whichever happened to run during the slow minutes.

use super::check_interrupted;
use super::engine::Engine;

/// Runs `round(engine, i)` for `i` in `0..=n` on each of `engines` in turn, and returns
/// each engine's results with round 0 (the warm-up) left out. An engine that could
/// not start (`Err`) or whose round fails keeps that error as its result and takes
/// no further rounds; the others go on.
pub fn interleaved<T>(
    engines: &[&Result<Engine, String>],
    n: usize,
    mut round: impl FnMut(&Engine, usize) -> Result<T, String>,
) -> anyhow::Result<Vec<Result<Vec<T>, String>>> {
    let mut out: Vec<Result<Vec<T>, String>> = engines
        .iter()
        .map(|e| match e {
            Ok(_) => Ok(Vec::new()),
            Err(why) => Err(why.clone()),
        })
        .collect();
    for i in 0..=n {
        for (engine, results) in engines.iter().zip(out.iter_mut()) {
            check_interrupted()?;
            let (Ok(engine), Ok(samples)) = (engine, &mut *results) else {
                continue;
            };
            match round(engine, i) {
                Ok(v) if i > 0 => samples.push(v),
                Ok(_) => {}
                Err(e) => *results = Err(e),
            }
        }
    }
    Ok(out)
}

/// Splits per-round pairs into two series (a failure goes to both).
pub fn unzip<A, B>(
    r: Result<Vec<(A, B)>, String>,
) -> (Result<Vec<A>, String>, Result<Vec<B>, String>) {
    match r {
        Ok(v) => {
            let (a, b) = v.into_iter().unzip();
            (Ok(a), Ok(b))
        }
        Err(e) => (Err(e.clone()), Err(e)),
    }
}
