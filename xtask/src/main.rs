//! `cargo xtask …`: the project's commands. `run` starts Berth, `test` runs every suite,
//! `bench` measures Berth side by side with Debian's dockerd.

mod apt;
mod bench;
mod bundle;
mod cross;
mod deps;
mod docker_py;
mod foreign;
mod fuzz;
mod layout;
mod ping;
mod plugins;
mod proc;
mod run;
mod test;
mod tutorial;
mod vm_image;

use std::process::ExitCode;

use anyhow::bail;

const USAGE: &str = "\
usage: cargo xtask <command>

  run   [--root DIR] [--socket PATH]   build and start the engine, print its DOCKER_HOST
  test  [nextest args…]                fmt, clippy, build, every test suite
  bench [GROUP…] [--quick]             Berth next to Debian's dockerd (groups: see `bench --help`)
  fuzz  [TARGET…] [--seconds N]        the cargo-fuzz targets in fuzz/, 600 s each
  cross                                the host crates for Windows and macOS: clippy, berth.exe,
                                       unit tests under Wine (sets up rustc-web, mingw-w64, Wine)
  vm-image [--arch x86_64|aarch64]     the guest kernel + initramfs in target/vm-image/<arch>
  bundle [--debug] [--formats deb,appimage]  the installers this machine can build (target/bundle)
  tutorial-image [--agent PATH]       berth/getting-started as an OCI archive (target/tutorial)
  frontend [--test]                    the desktop app's web UI into frontend/dist (and its vitest suite)
  layout [DIR]                         no source file over 800 lines, no import loop between modules
  cli-plugins                          fetch the buildx and Compose v2 CLI plugins, print their directory
  docker-py-suite                      prepare docker-py's integration suite and its venv, print their directory
  foreign-busybox                      fetch the other architecture's busybox-static, print its path";

fn main() -> ExitCode {
    match dispatch() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line, without a backtrace.
            eprintln!("\nerror: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next();
    let rest: Vec<String> = args.collect();
    match cmd.as_deref() {
        Some("run") => run::run(&rest),
        Some("test") => test::test(&rest),
        Some("bench") => bench::bench(&rest),
        Some("fuzz") => fuzz::fuzz(&rest),
        Some("cross") => cross::cross(&rest),
        Some("vm-image") => vm_image::vm_image(&rest),
        Some("bundle") => bundle::bundle(&rest),
        Some("tutorial-image") => tutorial::tutorial_image(&rest),
        Some("layout") => match rest.first() {
            Some(dir) => layout::layout(std::path::Path::new(dir)),
            None => layout::layout(&proc::workspace_root()),
        },
        Some("frontend") => {
            deps::ensure_packages(&["nodejs"])?;
            deps::build_frontend(rest.iter().any(|a| a == "--test"))
        }
        Some("cli-plugins") => {
            println!("{}", plugins::ensure()?.display());
            Ok(())
        }
        Some("foreign-busybox") => {
            println!("{}", foreign::ensure()?.display());
            Ok(())
        }
        Some("docker-py-suite") => {
            println!("{}", docker_py::ensure()?.display());
            Ok(())
        }
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}
