//! Backend selection, as Nacos does it: `spring.sql.init.platform` (or the older
//! `spring.datasource.platform`) names the backend; empty means embedded. Each backend is a
//! row of [`BACKENDS`]; SQL backends are cargo features of this crate (on by default), so a
//! build can leave them out, and then says so instead of pretending the name is unknown.

use std::future::Future;
use std::pin::Pin;

use nacos_core::Repos;
use nacos_core::datasource::DataSourceConfig;

use crate::foundation::error::StartError;
use crate::foundation::settings::Settings;

type Opening<'a> = Pin<Box<dyn Future<Output = Result<Repos, StartError>> + Send + 'a>>;
type OpenFn = for<'a> fn(&'a Settings) -> Opening<'a>;

/// Every backend this code base knows, with its opener when it is compiled into this build.
const BACKENDS: &[(&str, Option<OpenFn>)] = &[
    (nacos_storage_embedded::NAME, Some(open_embedded)),
    ("mysql", MYSQL),
    ("postgresql", POSTGRESQL),
];

#[cfg(feature = "mysql")]
const MYSQL: Option<OpenFn> = Some(open_mysql);
#[cfg(not(feature = "mysql"))]
const MYSQL: Option<OpenFn> = None;

#[cfg(feature = "postgresql")]
const POSTGRESQL: Option<OpenFn> = Some(open_postgresql);
#[cfg(not(feature = "postgresql"))]
const POSTGRESQL: Option<OpenFn> = None;

/// Whether the settings name a database server (which can be down while this server runs), not
/// the embedded store.
pub fn is_external(settings: &Settings) -> bool {
    let platform = settings.platform.trim();
    !platform.is_empty() && !platform.eq_ignore_ascii_case(nacos_storage_embedded::NAME)
}

/// Open the backend the settings name.
pub async fn open(settings: &Settings) -> Result<Repos, StartError> {
    let platform = settings.platform.to_ascii_lowercase();
    let name = if platform.is_empty() {
        nacos_storage_embedded::NAME
    } else {
        platform.as_str()
    };
    let compiled: Vec<&str> = BACKENDS
        .iter()
        .filter(|(_, open)| open.is_some())
        .map(|(n, _)| *n)
        .collect();
    match BACKENDS.iter().find(|(known, _)| *known == name) {
        None => Err(StartError::Unsupported(format!(
            "unknown storage platform '{name}' (spring.sql.init.platform); known: {}",
            BACKENDS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        Some((_, None)) => Err(StartError::Unsupported(format!(
            "storage platform '{name}' is known but not compiled into this build; available: {}",
            compiled.join(", ")
        ))),
        Some((_, Some(open))) => open(settings).await,
    }
}

fn open_embedded(settings: &Settings) -> Opening<'_> {
    Box::pin(async move {
        let dir = settings.data_dir();
        nacos_storage_embedded::open_repos(&dir).map_err(|e| {
            StartError::Storage(format!(
                "cannot open embedded storage in {}: {e}",
                dir.display()
            ))
        })
    })
}

/// MySQL / MariaDB: `db.*` plus the backend's own keys (`nacos.db.schema.init`,
/// `nacos.db.readFromReplicas`, `nacos.db.ha.checkIntervalMs`). Errors never carry passwords.
#[cfg(feature = "mysql")]
fn open_mysql(settings: &Settings) -> Opening<'_> {
    Box::pin(async move {
        let config = datasource(settings)?;
        let get = |key: &str| settings.properties.get(key).map(str::to_string);
        let options = nacos_storage_mysql::MysqlOptions::from_properties(&get)
            .map_err(|e| StartError::Storage(format!("MySQL storage settings: {e}")))?;
        let store = nacos_storage_mysql::MysqlStore::open(config, options)
            .await
            .map_err(|e| StartError::Storage(format!("cannot open MySQL storage: {e}")))?;
        Ok(store.repos())
    })
}

/// PostgreSQL: `db.*` plus the backend's own keys (`nacos.db.schema.init`,
/// `nacos.db.ha.checkIntervalMs`). Errors never carry passwords.
#[cfg(feature = "postgresql")]
fn open_postgresql(settings: &Settings) -> Opening<'_> {
    Box::pin(async move {
        let config = datasource(settings)?;
        let get = |key: &str| settings.properties.get(key).map(str::to_string);
        let options = nacos_storage_postgres::PgOptions::from_properties(&get)
            .map_err(|e| StartError::Storage(format!("PostgreSQL storage settings: {e}")))?;
        let store = nacos_storage_postgres::PgStore::open(&config, &options)
            .await
            .map_err(|e| StartError::Storage(format!("cannot open PostgreSQL storage: {e}")))?;
        Ok(store.repos())
    })
}

/// The `db.*` settings of an external data source, with a start-up error naming the key.
pub fn datasource(settings: &Settings) -> Result<DataSourceConfig, StartError> {
    let get = |key: &str| settings.properties.get(key).map(str::to_string);
    DataSourceConfig::from_properties(&get).map_err(|e| {
        StartError::Storage(format!("external data source ({}): {e}", settings.platform))
    })
}
