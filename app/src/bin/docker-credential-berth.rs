//! `docker-credential-berth`: the docker credential helper backed by the OS
//! keychain. `credsStore: "berth"` in `~/.docker/config.json` makes the docker
//! CLI call it (see `berth docker-config install`).

fn main() {
    let verb = std::env::args().nth(1).unwrap_or_default();
    let store = berth::creds::Keychain::open();
    let code = berth::creds::helper::run(
        &store,
        &verb,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
    );
    std::process::exit(code);
}
