//! A firewall for unit tests: it records every set of bridges it is asked to apply
//! and every teardown, and fails once on request.

use std::sync::{Mutex, MutexGuard};

use super::{BridgeRule, Firewall};
use crate::network::NetworkError;

#[derive(Debug, Default)]
struct State {
    applied: Vec<Vec<BridgeRule>>,
    teardowns: usize,
    fail_next: Option<String>,
}

#[derive(Debug, Default)]
pub struct FakeFirewall {
    state: Mutex<State>,
}

impl FakeFirewall {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every applied set, oldest first.
    pub fn applied(&self) -> Vec<Vec<BridgeRule>> {
        self.state().applied.clone()
    }

    /// The rules in force: the last applied set, or none after a teardown.
    pub fn current(&self) -> Vec<BridgeRule> {
        self.state().applied.last().cloned().unwrap_or_default()
    }

    /// The bridges in force, sorted.
    pub fn bridges(&self) -> Vec<String> {
        let mut v: Vec<String> = self.current().into_iter().map(|r| r.bridge).collect();
        v.sort();
        v
    }

    pub fn teardowns(&self) -> usize {
        self.state().teardowns
    }

    /// Makes the next call fail with `message` (as nft would).
    pub fn fail_next(&self, message: &str) {
        self.state().fail_next = Some(message.to_string());
    }

    fn take_failure(s: &mut State) -> Result<(), NetworkError> {
        match s.fail_next.take() {
            Some(m) => Err(NetworkError::Nft(m)),
            None => Ok(()),
        }
    }
}

impl Firewall for FakeFirewall {
    fn apply(&self, bridges: &[BridgeRule]) -> Result<(), NetworkError> {
        let mut s = self.state();
        Self::take_failure(&mut s)?;
        s.applied.push(bridges.to_vec());
        Ok(())
    }

    fn teardown(&self) -> Result<(), NetworkError> {
        let mut s = self.state();
        Self::take_failure(&mut s)?;
        s.teardowns += 1;
        s.applied.push(Vec::new());
        Ok(())
    }
}
