//! The one integration test binary of the workspace: each module is one area.

mod attacker;
mod auth;
mod auth_login;
mod backup;
mod client_metrics;
mod cluster;
mod config_v1;
mod console_api;
mod console_browser;
mod container;
mod grpc;
mod guard_differential;
mod health_checks;
mod helpers;
mod http_v2;
mod metrics;
mod module_cycles;
mod mysql_e2e;
mod mysql_ha;
mod naming_v1;
mod postgres_e2e;
mod retention;
mod support;
mod v2_client;
mod v2_naming_more;
