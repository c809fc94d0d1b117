//! Settings of this backend beyond `db.*` ([`PgOptions`]). The keys are shared with the MySQL
//! backend, so one `application.properties` reads the same whichever platform it names.

use nacos_core::datasource::{bool_property, millis_property};
use std::time::Duration;

/// Property: run `conf/postgresql-schema.sql` at start (idempotent), creating what is
/// missing. Off by default: then a missing table fails the start, named.
pub use nacos_core::datasource::PROP_SCHEMA_INIT;

/// Property: how often (ms) the node in use is checked to still be the writable primary (not
/// `pg_is_in_recovery()`, sessions not read-only) when several `db.url.N` are configured. A
/// call failing with `Unavailable` triggers a check at once as well.
pub use nacos_core::datasource::PROP_CHECK_INTERVAL;

/// How this backend runs, beyond the data source itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgOptions {
    /// [`PROP_SCHEMA_INIT`].
    pub schema_init: bool,
    /// [`PROP_CHECK_INTERVAL`].
    pub check_interval: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            schema_init: false,
            check_interval: Duration::from_secs(10),
        }
    }
}

impl PgOptions {
    /// Defaults, with the schema created at start when `schema_init`.
    pub fn with_schema_init(schema_init: bool) -> Self {
        PgOptions {
            schema_init,
            ..PgOptions::default()
        }
    }

    /// Read the properties through `get` (trimmed, non-blank values), as
    /// [`nacos_core::datasource::DataSourceConfig::from_properties`] does. The error names
    /// the key.
    pub fn from_properties(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let defaults = PgOptions::default();
        Ok(PgOptions {
            schema_init: bool_property(get, PROP_SCHEMA_INIT, defaults.schema_init)?,
            check_interval: millis_property(get, PROP_CHECK_INTERVAL, defaults.check_interval)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_validates_properties() {
        let none = |_: &str| None;
        assert_eq!(
            PgOptions::from_properties(&none).expect("defaults"),
            PgOptions::default()
        );
        let set = |key: &str| match key {
            PROP_SCHEMA_INIT => Some("TRUE".to_string()),
            PROP_CHECK_INTERVAL => Some("2500".to_string()),
            _ => None,
        };
        let options = PgOptions::from_properties(&set).expect("valid");
        assert!(options.schema_init);
        assert_eq!(options.check_interval, Duration::from_millis(2500));
        let bad = |key: &str| (key == PROP_SCHEMA_INIT).then(|| "yes".to_string());
        let err = PgOptions::from_properties(&bad).expect_err("not a bool");
        assert!(err.contains(PROP_SCHEMA_INIT), "{err}");
        let zero = |key: &str| (key == PROP_CHECK_INTERVAL).then(|| "0".to_string());
        assert!(PgOptions::from_properties(&zero).is_err());
    }
}
