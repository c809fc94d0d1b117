//! [`InstanceRepo`] on this server's `ext_service` and `ext_instance` tables (Nacos keeps
//! durable naming data in JRaft, not in MySQL, so these tables are ours). Maps and cluster
//! settings are stored as JSON text; times as epoch milliseconds.

use std::collections::BTreeMap;

use async_trait::async_trait;
use nacos_core::{
    ClusterMeta, Instance, InstanceAddr, InstanceRepo, RepoError, RepoResult, ServiceKey,
    ServiceMeta, rules,
};
use sqlx::mysql::MySqlRow;
use sqlx::{MySqlConnection, Row};

use crate::sql::{id, int, text};
use crate::store::{Failure, MysqlStore, Route};

pub(crate) const SERVICE_COLUMNS: &str = "CAST(id AS SIGNED) AS id, namespace_id, group_name, \
     service_name, CAST(ephemeral AS SIGNED) AS ephemeral, protect_threshold, metadata, selector, \
     clusters, CAST(gmt_create AS SIGNED) AS gmt_create, \
     CAST(gmt_modified AS SIGNED) AS gmt_modified";

pub(crate) const INSTANCE_COLUMNS: &str = "i.ip, CAST(i.port AS SIGNED) AS port, i.cluster_name, i.weight, \
     CAST(i.healthy AS SIGNED) AS healthy, CAST(i.enabled AS SIGNED) AS enabled, \
     CAST(i.ephemeral AS SIGNED) AS ephemeral, i.metadata, i.instance_id";

fn decode_json<T: serde::de::DeserializeOwned + Default>(
    raw: &str,
    what: &str,
) -> Result<T, sqlx::Error> {
    if raw.trim().is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(raw).map_err(|e| sqlx::Error::Decode(format!("{what}: {e}").into()))
}

pub(crate) fn encode_json<T: serde::Serialize>(value: &T, what: &str) -> Result<String, RepoError> {
    serde_json::to_string(value)
        .map_err(|e| RepoError::InvalidArgument(format!("{what} cannot be stored: {e}")))
}

/// `(row id, meta)` of a service row.
pub(crate) fn service_from_row(row: &MySqlRow) -> Result<(u64, ServiceMeta), sqlx::Error> {
    let metadata: BTreeMap<String, String> =
        decode_json(&text(row, "metadata")?, "service metadata")?;
    let clusters: BTreeMap<String, ClusterMeta> =
        decode_json(&text(row, "clusters")?, "service clusters")?;
    let threshold: f64 = row.try_get("protect_threshold")?;
    Ok((
        id(row, "id")?,
        ServiceMeta {
            key: ServiceKey::new(
                text(row, "namespace_id")?,
                text(row, "group_name")?,
                text(row, "service_name")?,
            ),
            ephemeral: int(row, "ephemeral")? != 0,
            #[allow(clippy::cast_possible_truncation)]
            protect_threshold: threshold as f32,
            metadata,
            selector: text(row, "selector")?,
            clusters,
            created_ms: int(row, "gmt_create")?,
            modified_ms: int(row, "gmt_modified")?,
        },
    ))
}

pub(crate) fn instance_from_row(row: &MySqlRow) -> Result<Instance, sqlx::Error> {
    let instance_id = row.try_get_unchecked::<Option<String>, _>("instance_id")?;
    Ok(Instance {
        ip: text(row, "ip")?.into(),
        port: u16::try_from(int(row, "port")?).unwrap_or_default(),
        cluster: text(row, "cluster_name")?.into(),
        weight: row.try_get("weight")?,
        healthy: int(row, "healthy")? != 0,
        enabled: int(row, "enabled")? != 0,
        ephemeral: int(row, "ephemeral")? != 0,
        metadata: decode_json(&text(row, "metadata")?, "instance metadata")?,
        instance_id,
    })
}

async fn select_service(
    c: &mut MySqlConnection,
    key: &ServiceKey,
    lock: bool,
) -> Result<Option<(u64, ServiceMeta)>, sqlx::Error> {
    let sql = format!(
        "SELECT {SERVICE_COLUMNS} FROM ext_service WHERE namespace_id = ? AND group_name = ? \
         AND service_name = ?{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row = sqlx::query(&sql)
        .bind(&key.namespace)
        .bind(&key.group)
        .bind(&key.name)
        .fetch_optional(&mut *c)
        .await?;
    row.as_ref().map(service_from_row).transpose()
}

/// Insert a service row; a duplicate key means a concurrent writer created it first.
async fn insert_service(c: &mut MySqlConnection, meta: &ServiceMeta) -> Result<u64, Failure> {
    let metadata = encode_json(&meta.metadata, "service metadata")?;
    let clusters = encode_json(&meta.clusters, "service clusters")?;
    let done = sqlx::query(
        "INSERT INTO ext_service (namespace_id, group_name, service_name, ephemeral, \
         protect_threshold, metadata, selector, clusters, gmt_create, gmt_modified) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&meta.key.namespace)
    .bind(&meta.key.group)
    .bind(&meta.key.name)
    .bind(meta.ephemeral)
    .bind(f64::from(meta.protect_threshold))
    .bind(&metadata)
    .bind(&meta.selector)
    .bind(&clusters)
    .bind(meta.created_ms)
    .bind(meta.modified_ms)
    .execute(&mut *c)
    .await?;
    Ok(done.last_insert_id())
}

#[async_trait]
impl InstanceRepo for MysqlStore {
    async fn list_services(&self) -> RepoResult<Vec<ServiceMeta>> {
        self.read("list services", Route::Primary, |c| {
            Box::pin(async move {
                let rows = sqlx::query(&format!(
                    "SELECT {SERVICE_COLUMNS} FROM ext_service \
                     ORDER BY namespace_id, group_name, service_name"
                ))
                .fetch_all(&mut *c)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push(service_from_row(row)?.1);
                }
                Ok(out)
            })
        })
        .await
    }

    async fn get_service(&self, key: &ServiceKey) -> RepoResult<Option<ServiceMeta>> {
        let key = key.clone();
        self.read("get service", Route::Primary, move |c| {
            Box::pin(async move { Ok(select_service(c, &key, false).await?.map(|(_, m)| m)) })
        })
        .await
    }

    async fn create_service(&self, meta: ServiceMeta) -> RepoResult<()> {
        rules::check_service(&meta)?;
        let key = meta.key.clone();
        let result = self
            .write("create service", move |c| {
                let meta = meta.clone();
                Box::pin(async move { insert_service(c, &meta).await.map(|_| ()) })
            })
            .await;
        match result {
            Err(RepoError::AlreadyExists(_)) => Err(rules::service_exists(&key)),
            other => other,
        }
    }

    async fn update_service(&self, meta: ServiceMeta) -> RepoResult<()> {
        rules::check_service(&meta)?;
        let metadata = encode_json(&meta.metadata, "service metadata")?;
        let clusters = encode_json(&meta.clusters, "service clusters")?;
        self.write("update service", move |c| {
            let (meta, metadata, clusters) = (meta.clone(), metadata.clone(), clusters.clone());
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE ext_service SET ephemeral = ?, protect_threshold = ?, metadata = ?, \
                     selector = ?, clusters = ?, gmt_modified = ? \
                     WHERE namespace_id = ? AND group_name = ? AND service_name = ?",
                )
                .bind(meta.ephemeral)
                .bind(f64::from(meta.protect_threshold))
                .bind(&metadata)
                .bind(&meta.selector)
                .bind(&clusters)
                .bind(meta.modified_ms)
                .bind(&meta.key.namespace)
                .bind(&meta.key.group)
                .bind(&meta.key.name)
                .execute(&mut *c)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(rules::service_not_found(&meta.key).into());
                }
                Ok(())
            })
        })
        .await
    }

    async fn delete_service(&self, key: &ServiceKey) -> RepoResult<()> {
        let key = key.clone();
        self.write("delete service", move |c| {
            let key = key.clone();
            Box::pin(async move {
                let Some((service_id, _)) = select_service(c, &key, true).await? else {
                    return Err(rules::service_not_found(&key).into());
                };
                let remaining =
                    sqlx::query("SELECT 1 FROM ext_instance WHERE service_id = ? LIMIT 1")
                        .bind(service_id)
                        .fetch_optional(&mut *c)
                        .await?;
                if remaining.is_some() {
                    return Err(rules::service_in_use(&key).into());
                }
                sqlx::query("DELETE FROM ext_service WHERE id = ?")
                    .bind(service_id)
                    .execute(&mut *c)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn register_instance(&self, service: &ServiceKey, instance: Instance) -> RepoResult<()> {
        rules::check_instance(&instance)?;
        let metadata = encode_json(&instance.metadata, "instance metadata")?;
        let service = service.clone();
        self.write("register persistent instance", move |c| {
            let (service, instance, metadata) =
                (service.clone(), instance.clone(), metadata.clone());
            Box::pin(async move {
                let service_id = match select_service(c, &service, true).await? {
                    Some((_, meta)) if meta.ephemeral => {
                        return Err(rules::service_is_ephemeral(&service).into());
                    }
                    Some((service_id, _)) => service_id,
                    None => {
                        let now = crate::sql::now_ms(c).await?;
                        let mut meta = ServiceMeta::new(service.clone(), false);
                        meta.created_ms = now;
                        meta.modified_ms = now;
                        match insert_service(c, &meta).await {
                            Ok(service_id) => service_id,
                            Err(Failure::Db(e)) if crate::error::is_duplicate(&e) => {
                                return Err(Failure::Retry);
                            }
                            Err(other) => return Err(other),
                        }
                    }
                };
                sqlx::query(
                    "DELETE FROM ext_instance WHERE service_id = ? AND ip = ? AND port = ? \
                     AND cluster_name = ?",
                )
                .bind(service_id)
                .bind(instance.ip.as_str())
                .bind(instance.port)
                .bind(instance.cluster.as_str())
                .execute(&mut *c)
                .await?;
                sqlx::query(
                    "INSERT INTO ext_instance (service_id, ip, port, cluster_name, weight, \
                     healthy, enabled, ephemeral, metadata, instance_id) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(service_id)
                .bind(instance.ip.as_str())
                .bind(instance.port)
                .bind(instance.cluster.as_str())
                .bind(instance.weight)
                .bind(instance.healthy)
                .bind(instance.enabled)
                .bind(instance.ephemeral)
                .bind(&metadata)
                .bind(instance.instance_id.as_deref())
                .execute(&mut *c)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn deregister_instance(
        &self,
        service: &ServiceKey,
        addr: &InstanceAddr,
    ) -> RepoResult<Option<Instance>> {
        let (service, addr) = (service.clone(), addr.clone());
        self.write("deregister persistent instance", move |c| {
            let (service, addr) = (service.clone(), addr.clone());
            Box::pin(async move {
                let Some((service_id, _)) = select_service(c, &service, true).await? else {
                    return Ok(None);
                };
                let row = sqlx::query(&format!(
                    "SELECT {INSTANCE_COLUMNS} FROM ext_instance i WHERE i.service_id = ? \
                     AND i.ip = ? AND i.port = ? AND i.cluster_name = ? FOR UPDATE"
                ))
                .bind(service_id)
                .bind(&addr.ip)
                .bind(addr.port)
                .bind(&addr.cluster)
                .fetch_optional(&mut *c)
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let instance = instance_from_row(&row)?;
                sqlx::query(
                    "DELETE FROM ext_instance WHERE service_id = ? AND ip = ? AND port = ? \
                     AND cluster_name = ?",
                )
                .bind(service_id)
                .bind(&addr.ip)
                .bind(addr.port)
                .bind(&addr.cluster)
                .execute(&mut *c)
                .await?;
                Ok(Some(instance))
            })
        })
        .await
    }

    async fn list_instances(&self, service: &ServiceKey) -> RepoResult<Vec<Instance>> {
        let service = service.clone();
        self.read("list persistent instances", Route::Primary, move |c| {
            Box::pin(async move {
                let rows = sqlx::query(&format!(
                    "SELECT {INSTANCE_COLUMNS} FROM ext_instance i JOIN ext_service s \
                     ON s.id = i.service_id WHERE s.namespace_id = ? AND s.group_name = ? \
                     AND s.service_name = ? ORDER BY i.ip, i.port, i.cluster_name"
                ))
                .bind(&service.namespace)
                .bind(&service.group)
                .bind(&service.name)
                .fetch_all(&mut *c)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push(instance_from_row(row)?);
                }
                Ok(out)
            })
        })
        .await
    }
}
