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

/// Expands into one `#[tokio::test]` per conformance case, grouped in one module per area
/// (`configs`, `history`, `gray`, `namespaces`, `services`, `persistence`).
///
/// `conformance_suite!(backend)` puts the area modules in the current module (invoke it once
/// per module); `conformance_suite!(name, backend)` wraps them in `mod name`, where `backend`
/// can still name items of the current module. `backend` is an expression of a type that
/// implements [`Backend`](crate::Backend); it is evaluated once per case.
#[macro_export]
macro_rules! conformance_suite {
    ($name:ident, $backend:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::conformance_suite!($backend);
        }
    };
    ($backend:expr $(,)?) => {
        fn __nacos_conformance_backend() -> impl $crate::Backend {
            $backend
        }

        $crate::__conformance_cases! { repos configs, Nothing;
            publish_insert_then_get,
            get_missing_returns_none,
            md5_is_lowercase_hex_of_content,
            update_keeps_id_created_and_unspecified_fields,
            update_overwrites_specified_fields,
            ids_are_unique_and_never_reused,
            cas_match_succeeds,
            cas_mismatch_fails_and_changes_nothing,
            cas_on_missing_config_fails,
            remove_returns_row_then_none,
            remove_by_ids_removes_known_and_skips_unknown,
            search_exact_filters,
            search_blur_globs,
            search_by_app_name,
            search_by_tags,
            search_by_types,
            search_content_filter,
            search_orders_by_id_and_pages,
            namespace_isolation,
            unicode_content_round_trips,
            big_content_round_trips,
            concurrent_publishes_all_land,
            changed_since_tracks_formal_changes,
        }

        $crate::__conformance_cases! { repos history, Nothing;
            history_records_insert_update_delete,
            history_pages_newest_first,
            history_entry_by_nid,
            previous_history_is_newest_row_of_config,
            history_spans_incarnations,
            history_isolated_per_key,
        }

        $crate::__conformance_cases! { repos gray, GrayConfigs;
            publish_beta_then_get,
            publish_tag_then_get,
            get_gray_missing_returns_none,
            list_grays_beta_first_then_tags_by_name,
            gray_update_replaces_content_keeps_id,
            gray_cas_match_and_mismatch,
            remove_gray_returns_then_none,
            gray_independent_of_formal,
            changed_since_tracks_gray_changes,
        }

        $crate::__conformance_cases! { repos namespaces, Nothing;
            namespace_create_get_list,
            namespace_create_duplicate_already_exists,
            namespace_update_changes_name_and_desc,
            namespace_update_missing_not_found,
            namespace_delete_returns_existed,
            namespace_list_ordered_by_created_then_id,
            namespace_delete_keeps_configs,
        }

        $crate::__conformance_cases! { repos services, PersistentInstances;
            service_create_get_list,
            service_create_duplicate_already_exists,
            service_update_replaces_settings,
            service_update_missing_not_found,
            service_delete_then_gone,
            service_delete_missing_not_found,
            service_delete_blocked_while_instances_remain,
            instance_register_list_deregister,
            instance_register_replaces_same_address,
            instance_register_creates_persistent_service,
            instance_register_on_ephemeral_service_fails,
            instances_ordered_by_ip_port_cluster,
            instance_deregister_missing_returns_none,
            instances_isolated_per_service,
        }

        $crate::__conformance_cases! { repos users, Nothing;
            user_create_get,
            user_create_duplicate_already_exists,
            user_update_password,
            user_delete_removes_roles,
            list_users_filters_orders_and_pages,
            roles_add_list_remove,
            permissions_add_list_remove,
        }

        $crate::__conformance_cases! { backend persistence;
            reopen_keeps_everything,
        }
    };
}

/// Implementation detail of [`conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    (repos $area:ident, $requirement:ident; $($case:ident),* $(,)?) => {
        mod $area {
            $(
                #[tokio::test]
                async fn $case() {
                    let backend = super::__nacos_conformance_backend();
                    let case = concat!(stringify!($area), "::", stringify!($case));
                    if !$crate::conformance::harness::available(&backend, case) {
                        return;
                    }
                    let (repos, guard) = $crate::Backend::build(&backend).await;
                    if $crate::conformance::harness::supported(
                        &repos,
                        $crate::Requirement::$requirement,
                        case,
                    ) {
                        $crate::conformance::$area::$case(&repos).await;
                    }
                    drop(repos);
                    drop(guard);
                }
            )*
        }
    };
    (backend $area:ident; $($case:ident),* $(,)?) => {
        mod $area {
            $(
                #[tokio::test]
                async fn $case() {
                    let backend = super::__nacos_conformance_backend();
                    let case = concat!(stringify!($area), "::", stringify!($case));
                    if !$crate::conformance::harness::available(&backend, case) {
                        return;
                    }
                    $crate::conformance::$area::$case(&backend).await;
                }
            )*
        }
    };
}
