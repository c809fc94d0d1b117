//! What a backend provides to the suite ([`Backend`]), and how the generated tests decide to
//! skip ([`Requirement`], [`supported`]).

use std::future::Future;

use nacos_core::Repos;

/// Gives the suite fresh, isolated repositories for each case.
///
/// Every call to [`Backend::build`] must return repositories that share no data with any other
/// call (a new temporary directory, a new database schema, …). The guard is dropped at the end
/// of the case, after the repositories, and should clean up.
pub trait Backend: Send + Sync {
    /// Keeps one case's storage alive; dropping it cleans up.
    type Guard: Send + Sync;

    /// Fresh, empty repositories and the guard of their storage. Panics on failure (it is a
    /// test harness).
    fn build(&self) -> impl Future<Output = (Repos, Self::Guard)> + Send;

    /// Open the storage behind `guard` again, as a restarted server would. The suite calls it
    /// after dropping every handle to the repositories built with that guard. `None` (the
    /// default) means the backend cannot reopen; the persistence cases are then skipped.
    fn reopen(&self, guard: &Self::Guard) -> impl Future<Output = Option<Repos>> + Send {
        let _ = guard;
        async { None }
    }

    /// Why this backend cannot run here at all (its database server is not installed, say),
    /// or `None` (the default). When `Some`, every generated case prints `SKIPPED <case>:
    /// <reason>` and passes without calling [`Backend::build`]. A backend that must not be
    /// skipped (in CI) panics here instead.
    fn unavailable(&self) -> Option<String> {
        None
    }
}

/// Whether the backend can run at all; when not, says so on stderr.
pub fn available<B: Backend>(backend: &B, case: &str) -> bool {
    match backend.unavailable() {
        None => true,
        Some(reason) => {
            eprintln!("SKIPPED {case}: {reason}");
            false
        }
    }
}

/// What a case needs from the backend beyond the always-required formal configs and
/// namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// Nothing optional.
    Nothing,
    /// [`nacos_core::Capabilities::gray_configs`].
    GrayConfigs,
    /// [`nacos_core::Capabilities::persistent_instances`].
    PersistentInstances,
}

/// Whether `repos` can run a case needing `requirement`; when not, says so on stderr.
pub fn supported(repos: &Repos, requirement: Requirement, case: &str) -> bool {
    let (ok, capability) = match requirement {
        Requirement::Nothing => (true, ""),
        Requirement::GrayConfigs => (repos.capabilities.gray_configs, "gray_configs"),
        Requirement::PersistentInstances => (
            repos.capabilities.persistent_instances,
            "persistent_instances",
        ),
    };
    if !ok {
        eprintln!("SKIPPED {case}: backend does not support {capability}");
    }
    ok
}
