//! Link-time layout of the release binary: the functions that run while the server starts
//! (listed in `startup.order`, written by `tests/benches/startup-order.sh`) are placed next to
//! each other at the front of `.text`.
//!
//! Why: the kernel maps code in 64 KiB windows around every page the process touches. Left in
//! the linker's default order, the functions of start-up are spread over most of the 17 MB of
//! code, and about 10 MB of it ends up resident in an idle server; grouped, about 2 MB does.
//! The order changes where functions sit, never what they do: a list that names functions the
//! binary no longer has (after a toolchain or dependency upgrade) is ignored for those names,
//! and costs only the saving.
//!
//! `--symbol-ordering-file` is an option of lld (the default linker of
//! `x86_64-unknown-linux-gnu` with rustup's Rust 1.90 and later) and mold, not of GNU ld or
//! gold. So it is passed only when linking a probe program with it works, with the same
//! compiler, target, linker and flags as this build; and only to release builds.
//! `NACOS_STARTUP_ORDER=off` leaves it out.

use std::env;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=startup.order");
    println!("cargo::rerun-if-env-changed=NACOS_STARTUP_ORDER");
    let var = |name: &str| env::var(name).unwrap_or_default();
    if matches!(
        var("NACOS_STARTUP_ORDER").as_str(),
        "off" | "0" | "false" | "no"
    ) || var("PROFILE") != "release"
    {
        return;
    }
    let order = Path::new(&var("CARGO_MANIFEST_DIR")).join("startup.order");
    if !order.is_file() {
        return;
    }
    let args = [
        format!("-Wl,--symbol-ordering-file={}", order.display()),
        // Names the binary does not have are expected (see above), not worth a warning each.
        "-Wl,--no-warn-symbol-ordering".to_string(),
    ];
    if !links_with(&args) {
        println!(
            "cargo::warning=linking with --symbol-ordering-file failed (the linker is not lld or \
             mold?): the release binary keeps the default code layout, and an idle server \
             about 8 MB more of its code resident"
        );
        return;
    }
    for arg in args {
        println!("cargo::rustc-link-arg-bin=nacos-server={arg}");
    }
}

/// Whether an empty program links with `link_args` added, built as this crate's binary will be.
fn links_with(link_args: &[String]) -> bool {
    let Some(out_dir) = env::var_os("OUT_DIR").map(PathBuf::from) else {
        return false;
    };
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let mut cmd = Command::new(rustc);
    cmd.args([
        "--crate-type",
        "bin",
        "--crate-name",
        "order_probe",
        "--edition",
        "2021",
    ])
    .arg("-o")
    .arg(out_dir.join("order_probe"))
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if let Ok(target) = env::var("TARGET") {
        cmd.args(["--target", &target]);
    }
    if let Ok(linker) = env::var("RUSTC_LINKER") {
        cmd.arg(format!("-Clinker={linker}"));
    }
    if let Ok(flags) = env::var("CARGO_ENCODED_RUSTFLAGS") {
        cmd.args(flags.split('\x1f').filter(|f| !f.is_empty()));
    }
    for arg in link_args {
        cmd.arg(format!("-Clink-arg={arg}"));
    }
    cmd.arg("-");
    let Ok(mut child) = cmd.spawn() else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take()
        && stdin.write_all(b"fn main() {}\n").is_err()
    {
        let _ = child.kill();
    }
    child.wait().is_ok_and(|status| status.success())
}
