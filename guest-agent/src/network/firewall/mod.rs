//! The firewall as a trait, in netavark's `FirewallDriver` shape: a driver makes the
//! host's rules match the set of bridge networks it is given, and tears down exactly
//! what it added. Drivers: the engine's own nftables table (`nftables.rs`, always),
//! accepts in iptables where another engine's DROP lives (`iptables.rs`, only when a
//! probe finds one), and a recording fake for tests. [`Layered`] runs several as one.

#[cfg(test)]
pub mod fake;
pub mod iptables;
pub mod nftables;

use super::ipam::Subnet;
use super::NetworkError;

/// One bridge network, as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeRule {
    pub bridge: String,
    pub subnet: Subnet,
    /// `--internal`: no traffic in or out of the bridge.
    pub internal: bool,
}

pub trait Firewall: Send + Sync {
    /// Makes this driver's rules match `bridges` exactly (rules for bridges no longer
    /// listed go).
    fn apply(&self, bridges: &[BridgeRule]) -> Result<(), NetworkError>;

    /// Removes every rule this driver added, and nothing else.
    fn teardown(&self) -> Result<(), NetworkError>;

    /// When the engine stops: removes the rules this driver put in chains another
    /// program owns (dockerd's `DOCKER-USER`, the host's `FORWARD`), so stopping
    /// Berth leaves them as they were. Rules in the engine's own table stay for the
    /// containers that outlive it; the next start applies everything again.
    fn release_shared(&self) -> Result<(), NetworkError> {
        Ok(())
    }
}

/// The firewall a real engine uses: its nftables table, plus iptables accepts when
/// the host's iptables would drop bridged traffic first.
pub fn host(table: String) -> Layered {
    Layered(vec![
        Box::new(nftables::Nftables::new(table.clone())),
        Box::new(iptables::Iptables::new(table)),
    ])
}

/// Several drivers applied in order. Every driver runs even when an earlier one
/// failed, so one broken tool does not leave the others' rules stale; every error
/// is reported.
pub struct Layered(pub Vec<Box<dyn Firewall>>);

impl Layered {
    fn each(
        &self,
        f: impl Fn(&dyn Firewall) -> Result<(), NetworkError>,
    ) -> Result<(), NetworkError> {
        let mut errors: Vec<NetworkError> =
            self.0.iter().filter_map(|d| f(d.as_ref()).err()).collect();
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(NetworkError::Several(errors)),
        }
    }
}

impl Firewall for Layered {
    fn apply(&self, bridges: &[BridgeRule]) -> Result<(), NetworkError> {
        self.each(|d| d.apply(bridges))
    }

    fn teardown(&self) -> Result<(), NetworkError> {
        self.each(|d| d.teardown())
    }

    fn release_shared(&self) -> Result<(), NetworkError> {
        self.each(|d| d.release_shared())
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeFirewall;
    use super::*;
    use std::sync::Arc;

    /// Lets a test keep a handle on a fake it boxed into a [`Layered`].
    struct Shared(Arc<FakeFirewall>);

    impl Firewall for Shared {
        fn apply(&self, bridges: &[BridgeRule]) -> Result<(), NetworkError> {
            self.0.apply(bridges)
        }
        fn teardown(&self) -> Result<(), NetworkError> {
            self.0.teardown()
        }
    }

    fn rule(br: &str) -> BridgeRule {
        BridgeRule {
            bridge: br.into(),
            subnet: Subnet::parse("10.9.0.0/24").unwrap(),
            internal: false,
        }
    }

    #[test]
    fn layered_runs_every_driver_and_reports_every_error() {
        let (a, b, c) = (
            Arc::new(FakeFirewall::default()),
            Arc::new(FakeFirewall::default()),
            Arc::new(FakeFirewall::default()),
        );
        let l = Layered(vec![
            Box::new(Shared(a.clone())),
            Box::new(Shared(b.clone())),
            Box::new(Shared(c.clone())),
        ]);
        l.apply(&[rule("br-a")]).unwrap();
        assert_eq!(c.current(), vec![rule("br-a")]);

        a.fail_next("nft broke");
        let err = l.apply(&[rule("br-b")]).unwrap_err();
        assert_eq!(err.to_string(), "nftables: nft broke");
        assert_eq!(b.current(), vec![rule("br-b")], "later drivers still ran");

        a.fail_next("one");
        c.fail_next("two");
        let err = l.teardown().unwrap_err();
        assert!(
            matches!(&err, NetworkError::Several(v) if v.len() == 2),
            "{err}"
        );
        assert_eq!(err.to_string(), "nftables: one; nftables: two");
        assert!(b.current().is_empty());
        assert_eq!(b.teardowns(), 1);
    }
}
