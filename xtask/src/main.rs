//! `cargo xtask …`: the project's commands. `run` starts Berth, `test` runs every suite,
//! `bench` measures Berth side by side with Debian's dockerd.

mod bench;
mod deps;
mod proc;
mod run;
mod test;

use anyhow::bail;

const USAGE: &str = "usage: cargo xtask <run [--root DIR] [--socket PATH] | test [nextest args…] | bench [GROUP…] [--quick]>";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next();
    let rest: Vec<String> = args.collect();
    match cmd.as_deref() {
        Some("run") => run::run(&rest),
        Some("test") => test::test(&rest),
        Some("bench") => bench::bench(&rest),
        Some("-h") | Some("--help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown command {other:?}\n{USAGE}"),
    }
}
