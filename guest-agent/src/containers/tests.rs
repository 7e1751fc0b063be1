//! Unit tests of the container service: parsing helpers, and the lifecycle and
//! network state machines on the fake runtime and datapath (no root needed).

use super::*;

#[test]
fn signals() {
    assert_eq!(
        parse_signal("TERM").unwrap(),
        nix::sys::signal::Signal::SIGTERM
    );
    assert_eq!(
        parse_signal("sigkill").unwrap(),
        nix::sys::signal::Signal::SIGKILL
    );
    assert_eq!(parse_signal("1").unwrap(), nix::sys::signal::Signal::SIGHUP);
    assert!(parse_signal("NOPE").is_err());
}

#[test]
fn wait_conditions() {
    assert_eq!(
        WaitCondition::parse(None).unwrap(),
        WaitCondition::NotRunning
    );
    assert_eq!(
        WaitCondition::parse(Some("removed")).unwrap(),
        WaitCondition::Removed
    );
    assert!(WaitCondition::parse(Some("x")).is_err());
}
