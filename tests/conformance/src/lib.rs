//! The backend conformance suite of the Nacos-compatible server: what every storage backend
//! (embedded, MySQL, PostgreSQL, or yours) must do to serve it, as one public async function
//! per behaviour, each asserting the contract written on the `nacos-core` trait methods and
//! panicking with a message naming what broke. See `BACKENDS.md` at the repository root for a
//! guide to writing a backend.
//!
//! # Layout
//! - [`Backend`]: the small trait a backend author implements so the suite gets fresh,
//!   isolated repositories for every case (and, optionally, can reopen them).
//! - the areas, one module each: [`configs`], [`history`], [`retention`], [`gray`], [`namespaces`],
//!   [`services`], [`users`] (each case takes `&Repos`), [`persistence`] (takes the
//!   [`Backend`], to reopen) and [`transfer`] (whole-store export and import; takes the
//!   [`Backend`] for a source and a target); helpers shared by the cases live in [`fixtures`].
//! - [`conformance_suite!`]: expands into one named `#[tokio::test]` per case, so a failure
//!   names its case, and skips loudly (`SKIPPED <case>: backend does not support
//!   <capability>`) where the backend's [`nacos_core::Capabilities`] say so.
//! - [`all_cases`]: every case by area, from the same one list the macro expands.
//!
//! This crate depends on `nacos-core`, `tokio` and `async-trait` only.
//!
//! # Running the suite against a backend
//! Implement [`Backend`] and invoke the macro once in your crate's `tests/conformance.rs`. The
//! calling crate needs `tokio` (features `macros` and `rt`) as a dev-dependency.
//!
//! ```text
//! use nacos_core::Repos;
//!
//! struct MyBackend;
//!
//! impl nacos_conformance::Backend for MyBackend {
//!     /// Keeps the storage alive for one case and cleans it up on drop.
//!     type Guard = tempfile::TempDir;
//!
//!     async fn build(&self) -> (Repos, Self::Guard) {
//!         let dir = tempfile::tempdir().expect("temp dir");
//!         let repos = my_backend::open_repos(dir.path()).expect("open");
//!         (repos, dir)
//!     }
//!
//!     // Optional: without it the persistence cases are skipped (loudly).
//!     async fn reopen(&self, guard: &Self::Guard) -> Option<Repos> {
//!         Some(my_backend::open_repos(guard.path()).expect("reopen"))
//!     }
//! }
//!
//! nacos_conformance::conformance_suite!(MyBackend);
//! ```
//!
//! Then `cargo test -p my-backend` runs every case, named `<area>::<case>`. The functions
//! can also be called directly, e.g.
//! `nacos_conformance::configs::cas_mismatch_fails_and_changes_nothing(&repos).await`.

/// Assert that a result is the given error kind, with context.
macro_rules! assert_err {
    ($result:expr, $pattern:pat, $what:expr $(,)?) => {
        match $result {
            Err($pattern) => {}
            other => panic!(
                "{}: expected {}, got {:?}",
                $what,
                stringify!($pattern),
                other
            ),
        }
    };
}

pub mod configs;
pub mod fixtures;
pub mod gray;
pub mod harness;
pub mod history;
pub mod namespaces;
pub mod persistence;
pub mod retention;
pub mod services;
pub mod transfer;
pub mod users;

pub use harness::{Backend, Requirement};

/// The one list of cases: every area with the requirement its cases share and the case
/// functions, handed to `callback` (`callback! { <repos|backend> <area>, <Requirement>; case,
/// ... }` once per area). [`conformance_suite!`] and [`all_cases`] both expand it, and a test
/// checks it names exactly the public case functions of each area, so nothing can drift.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_all_cases {
    ($($callback:tt)*) => {
        $($callback)*! { repos configs, Nothing;
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
            ha_status_names_the_writable_node,
        }

        $($callback)*! { repos history, Nothing;
            history_records_insert_update_delete,
            history_pages_newest_first,
            history_entry_by_nid,
            previous_history_is_newest_row_of_config,
            history_spans_incarnations,
            history_isolated_per_key,
        }

        $($callback)*! { repos retention, Nothing;
            purge_deletes_only_rows_before_the_cutoff,
            purge_honours_the_limit,
            purge_leaves_formal_configs_untouched,
        }

        $($callback)*! { repos gray, GrayConfigs;
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

        $($callback)*! { repos namespaces, Nothing;
            namespace_create_get_list,
            namespace_create_duplicate_already_exists,
            namespace_update_changes_name_and_desc,
            namespace_update_missing_not_found,
            namespace_delete_returns_existed,
            namespace_list_ordered_by_created_then_id,
            namespace_delete_keeps_configs,
        }

        $($callback)*! { repos services, PersistentInstances;
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

        $($callback)*! { repos users, Nothing;
            user_create_get,
            user_create_duplicate_already_exists,
            user_update_password,
            user_delete_removes_roles,
            list_users_filters_orders_and_pages,
            roles_add_list_remove,
            permissions_add_list_remove,
        }

        $($callback)*! { backend persistence, Nothing;
            reopen_keeps_everything,
        }

        $($callback)*! { backend transfer, Nothing;
            export_is_ordered_paged_and_complete,
            import_preserves_ids_times_and_content,
            import_is_idempotent_and_replaces_by_key,
            import_refuses_orphan_instance_and_writes_nothing,
            export_is_a_consistent_snapshot,
        }
    };
}

/// Expands into one `#[tokio::test]` per conformance case, grouped in one module per area
/// (`configs`, `history`, `retention`, `gray`, `namespaces`, `services`, `users`, `persistence`,
/// `transfer`).
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

        $crate::__with_all_cases! { $crate::__conformance_cases }
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
                    if !$crate::harness::available(&backend, case) {
                        return;
                    }
                    let (repos, guard) = $crate::Backend::build(&backend).await;
                    if $crate::harness::supported(&repos, $crate::Requirement::$requirement, case)
                    {
                        $crate::$area::$case(&repos).await;
                    }
                    drop(repos);
                    drop(guard);
                }
            )*
        }
    };
    (backend $area:ident, $requirement:ident; $($case:ident),* $(,)?) => {
        mod $area {
            $(
                #[tokio::test]
                async fn $case() {
                    let backend = super::__nacos_conformance_backend();
                    let case = concat!(stringify!($area), "::", stringify!($case));
                    if !$crate::harness::available(&backend, case) {
                        return;
                    }
                    $crate::$area::$case(&backend).await;
                }
            )*
        }
    };
}

/// Every case of the suite as `(area, case)`, in the order the macro runs them.
pub fn all_cases() -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    macro_rules! collect {
        ($kind:ident $area:ident, $requirement:ident; $($case:ident),* $(,)?) => {
            $( out.push((stringify!($area), stringify!($case))); )*
        };
    }
    __with_all_cases! { collect }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The public case functions an area's source defines.
    fn functions(source: &str) -> BTreeSet<String> {
        source
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("pub async fn "))
            .filter_map(|rest| rest.split(['(', '<']).next())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn the_case_list_names_every_case_function_and_nothing_else() {
        let sources = [
            (
                "configs",
                concat!(
                    include_str!("configs/mod.rs"),
                    include_str!("configs/search.rs")
                ),
            ),
            ("history", include_str!("history.rs")),
            ("retention", include_str!("retention.rs")),
            ("gray", include_str!("gray.rs")),
            ("namespaces", include_str!("namespaces.rs")),
            ("services", include_str!("services.rs")),
            ("users", include_str!("users.rs")),
            ("persistence", include_str!("persistence.rs")),
            ("transfer", include_str!("transfer.rs")),
        ];
        let listed = super::all_cases();
        for (area, source) in sources {
            let defined = functions(source);
            let named: BTreeSet<String> = listed
                .iter()
                .filter(|(a, _)| *a == area)
                .map(|(_, c)| c.to_string())
                .collect();
            assert_eq!(defined, named, "area {area}: functions vs the case list");
        }
        let areas: BTreeSet<&str> = listed.iter().map(|(a, _)| *a).collect();
        assert_eq!(
            areas.len(),
            sources.len(),
            "every area has its source checked"
        );
    }
}
