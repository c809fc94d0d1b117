//! Plumbing shared by the private database servers of [`crate::mariadb`] and
//! [`crate::postgres`]: the CI switch that turns a skip into a failure, free ports, and waiting
//! for a server to answer while watching its log for a give-up message.

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

/// Set to `1` (CI does) to make a missing database binary fail the tests instead of skipping.
pub const REQUIRE_ENV: &str = "NACOS_TEST_REQUIRE_DB";

/// Whether tests must fail (not skip) when a database is missing.
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// A port nobody listens on right now (the server binds it a moment later).
pub fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// Poll `ready` every 50 ms until it says yes, `limit` passes, or the server's log at `log`
/// contains one of `give_up` (it stopped; waiting longer is pointless).
pub fn wait_ready(
    what: &str,
    log: &Path,
    give_up: &[&str],
    limit: Duration,
    mut ready: impl FnMut() -> Result<bool, String>,
) -> Result<(), String> {
    let started = Instant::now();
    loop {
        if ready()? {
            return Ok(());
        }
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if started.elapsed() > limit || give_up.iter().any(|m| text.contains(m)) {
            return Err(format!(
                "{what} not ready after {:?}; server log:\n{text}",
                started.elapsed()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
