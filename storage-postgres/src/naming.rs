//! [`InstanceRepo`] on this server's `naming_service` and `naming_instance` tables (Nacos keeps
//! this data in its own Raft group, so its schema has no tables for it). Maps and cluster
//! settings are JSON text columns.

use std::collections::BTreeMap;

use async_trait::async_trait;
use diesel::pg::Pg;
use diesel::upsert::excluded;
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use nacos_core::{
    ClusterMeta, Instance, InstanceAddr, InstanceRepo, RepoError, ServiceKey, ServiceMeta, rules,
};

use crate::PgStore;
use crate::convert::{db_now, from_json, to_json, updated_row};
use crate::error::Result;
use crate::schema::{naming_instance as ni, naming_service as ns};

#[derive(Queryable, Selectable)]
#[diesel(table_name = ns, check_for_backend(Pg))]
pub(crate) struct ServiceRow {
    namespace_id: String,
    group_name: String,
    service_name: String,
    ephemeral: bool,
    protect_threshold: f32,
    metadata: String,
    selector: String,
    clusters: String,
    gmt_create: i64,
    gmt_modified: i64,
}

impl ServiceRow {
    pub(crate) fn into_meta(self) -> Result<ServiceMeta> {
        let metadata: BTreeMap<String, String> = from_json(&self.metadata, "service metadata")?;
        let clusters: BTreeMap<String, ClusterMeta> =
            from_json(&self.clusters, "service clusters")?;
        Ok(ServiceMeta {
            key: ServiceKey::new(self.namespace_id, self.group_name, self.service_name),
            ephemeral: self.ephemeral,
            protect_threshold: self.protect_threshold,
            metadata,
            selector: self.selector,
            clusters,
            created_ms: self.gmt_create,
            modified_ms: self.gmt_modified,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = ni, check_for_backend(Pg))]
pub(crate) struct InstanceRow {
    ip: String,
    port: i32,
    cluster_name: String,
    weight: f64,
    healthy: bool,
    enabled: bool,
    ephemeral: bool,
    metadata: String,
    instance_id: Option<String>,
}

impl InstanceRow {
    pub(crate) fn into_instance(self) -> Result<Instance> {
        let port = u16::try_from(self.port).map_err(|_| {
            RepoError::Internal(format!("naming_instance holds port {}", self.port).into())
        })?;
        Ok(Instance {
            ip: self.ip.into(),
            port,
            cluster: self.cluster_name.into(),
            weight: self.weight,
            healthy: self.healthy,
            enabled: self.enabled,
            ephemeral: self.ephemeral,
            metadata: from_json(&self.metadata, "instance metadata")?,
            instance_id: self.instance_id,
        })
    }
}

/// The service's row id and whether it is ephemeral, locked for the transaction.
async fn lock_service(
    conn: &mut AsyncPgConnection,
    key: &ServiceKey,
) -> Result<Option<(i64, bool)>> {
    Ok(ns::table
        .filter(ns::namespace_id.eq(&key.namespace))
        .filter(ns::group_name.eq(&key.group))
        .filter(ns::service_name.eq(&key.name))
        .select((ns::id, ns::ephemeral))
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

/// Insert a service row; `None` when a row with its key already exists.
async fn insert_service(conn: &mut AsyncPgConnection, meta: &ServiceMeta) -> Result<Option<i64>> {
    Ok(diesel::insert_into(ns::table)
        .values((
            ns::namespace_id.eq(&meta.key.namespace),
            ns::group_name.eq(&meta.key.group),
            ns::service_name.eq(&meta.key.name),
            ns::ephemeral.eq(meta.ephemeral),
            ns::protect_threshold.eq(meta.protect_threshold),
            ns::metadata.eq(to_json(&meta.metadata, "service metadata")?),
            ns::selector.eq(&meta.selector),
            ns::clusters.eq(to_json(&meta.clusters, "service clusters")?),
            ns::gmt_create.eq(meta.created_ms),
            ns::gmt_modified.eq(meta.modified_ms),
        ))
        .on_conflict_do_nothing()
        .returning(ns::id)
        .get_result(conn)
        .await
        .optional()?)
}

async fn delete_service_tx(conn: &mut AsyncPgConnection, key: &ServiceKey) -> Result<()> {
    let Some((id, _)) = lock_service(conn, key).await? else {
        return Err(rules::service_not_found(key).into());
    };
    let remaining: i64 = ni::table
        .filter(ni::namespace_id.eq(&key.namespace))
        .filter(ni::group_name.eq(&key.group))
        .filter(ni::service_name.eq(&key.name))
        .count()
        .get_result(conn)
        .await?;
    if remaining > 0 {
        return Err(rules::service_in_use(key).into());
    }
    diesel::delete(ns::table.filter(ns::id.eq(id)))
        .execute(conn)
        .await?;
    Ok(())
}

async fn register_tx(
    conn: &mut AsyncPgConnection,
    service: &ServiceKey,
    instance: &Instance,
) -> Result<()> {
    // Lock the service (creating it as persistent when missing), so a concurrent delete of the
    // service waits for this registration, then sees its instance.
    let mut present = false;
    for _ in 0..4 {
        match lock_service(conn, service).await? {
            Some((_, true)) => {
                return Err(rules::service_is_ephemeral(service).into());
            }
            Some((_, false)) => {
                present = true;
                break;
            }
            None => {
                let now = db_now(conn).await?;
                let mut meta = ServiceMeta::new(service.clone(), false);
                meta.created_ms = now;
                meta.modified_ms = now;
                if insert_service(conn, &meta).await?.is_some() {
                    present = true;
                    break;
                }
                // A concurrent create won: go round and lock (and check) that row.
            }
        }
    }
    if !present {
        return Err(RepoError::Unavailable(
            format!(
                "{} kept changing under concurrent writes; retry",
                service.describe()
            )
            .into(),
        )
        .into());
    }
    let metadata = to_json(&instance.metadata, "instance metadata")?;
    diesel::insert_into(ni::table)
        .values((
            ni::namespace_id.eq(&service.namespace),
            ni::group_name.eq(&service.group),
            ni::service_name.eq(&service.name),
            ni::ip.eq(instance.ip.as_str()),
            ni::port.eq(i32::from(instance.port)),
            ni::cluster_name.eq(instance.cluster.as_str()),
            ni::weight.eq(instance.weight),
            ni::healthy.eq(instance.healthy),
            ni::enabled.eq(instance.enabled),
            ni::ephemeral.eq(instance.ephemeral),
            ni::metadata.eq(&metadata),
            ni::instance_id.eq(&instance.instance_id),
        ))
        .on_conflict((
            ni::namespace_id,
            ni::group_name,
            ni::service_name,
            ni::ip,
            ni::port,
            ni::cluster_name,
        ))
        .do_update()
        .set((
            ni::weight.eq(excluded(ni::weight)),
            ni::healthy.eq(excluded(ni::healthy)),
            ni::enabled.eq(excluded(ni::enabled)),
            ni::ephemeral.eq(excluded(ni::ephemeral)),
            ni::metadata.eq(excluded(ni::metadata)),
            ni::instance_id.eq(excluded(ni::instance_id)),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

#[async_trait]
impl InstanceRepo for PgStore {
    async fn list_services(&self) -> Result<Vec<ServiceMeta>, RepoError> {
        self.read(async |conn| {
            let rows: Vec<ServiceRow> =
                ns::table.select(ServiceRow::as_select()).load(conn).await?;
            let mut all = rows
                .into_iter()
                .map(ServiceRow::into_meta)
                .collect::<Result<Vec<_>>>()?;
            // Byte order of keys, whatever the database's collation.
            all.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(all)
        })
        .await
    }

    async fn get_service(&self, key: &ServiceKey) -> Result<Option<ServiceMeta>, RepoError> {
        self.read(async |conn| {
            let row: Option<ServiceRow> = ns::table
                .filter(ns::namespace_id.eq(&key.namespace))
                .filter(ns::group_name.eq(&key.group))
                .filter(ns::service_name.eq(&key.name))
                .select(ServiceRow::as_select())
                .first(conn)
                .await
                .optional()?;
            row.map(ServiceRow::into_meta).transpose()
        })
        .await
    }

    async fn create_service(&self, meta: ServiceMeta) -> Result<(), RepoError> {
        self.run(async |conn| {
            rules::check_service(&meta)?;
            match insert_service(conn, &meta).await? {
                Some(_) => Ok(()),
                None => Err(rules::service_exists(&meta.key).into()),
            }
        })
        .await
    }

    async fn update_service(&self, meta: ServiceMeta) -> Result<(), RepoError> {
        self.run(async |conn| {
            rules::check_service(&meta)?;
            let key = &meta.key;
            let updated = diesel::update(
                ns::table
                    .filter(ns::namespace_id.eq(&key.namespace))
                    .filter(ns::group_name.eq(&key.group))
                    .filter(ns::service_name.eq(&key.name)),
            )
            .set((
                ns::ephemeral.eq(meta.ephemeral),
                ns::protect_threshold.eq(meta.protect_threshold),
                ns::metadata.eq(to_json(&meta.metadata, "service metadata")?),
                ns::selector.eq(&meta.selector),
                ns::clusters.eq(to_json(&meta.clusters, "service clusters")?),
                ns::gmt_modified.eq(meta.modified_ms),
            ))
            .execute(conn)
            .await?;
            updated_row(updated, || rules::service_not_found(key))
        })
        .await
    }

    async fn delete_service(&self, key: &ServiceKey) -> Result<(), RepoError> {
        self.in_tx(async |conn| delete_service_tx(conn, key).await)
            .await
    }

    async fn register_instance(
        &self,
        service: &ServiceKey,
        instance: Instance,
    ) -> Result<(), RepoError> {
        rules::check_instance(&instance)?;
        self.in_tx(async |conn| register_tx(conn, service, &instance).await)
            .await
    }

    async fn deregister_instance(
        &self,
        service: &ServiceKey,
        addr: &InstanceAddr,
    ) -> Result<Option<Instance>, RepoError> {
        self.run(async |conn| {
            let row: Option<InstanceRow> = diesel::delete(
                ni::table
                    .filter(ni::namespace_id.eq(&service.namespace))
                    .filter(ni::group_name.eq(&service.group))
                    .filter(ni::service_name.eq(&service.name))
                    .filter(ni::ip.eq(&addr.ip))
                    .filter(ni::port.eq(i32::from(addr.port)))
                    .filter(ni::cluster_name.eq(&addr.cluster)),
            )
            .returning(InstanceRow::as_returning())
            .get_result(conn)
            .await
            .optional()?;
            row.map(InstanceRow::into_instance).transpose()
        })
        .await
    }

    async fn list_instances(&self, service: &ServiceKey) -> Result<Vec<Instance>, RepoError> {
        self.read(async |conn| {
            let rows: Vec<InstanceRow> = ni::table
                .filter(ni::namespace_id.eq(&service.namespace))
                .filter(ni::group_name.eq(&service.group))
                .filter(ni::service_name.eq(&service.name))
                .select(InstanceRow::as_select())
                .load(conn)
                .await?;
            let mut all = rows
                .into_iter()
                .map(InstanceRow::into_instance)
                .collect::<Result<Vec<_>>>()?;
            rules::sort_instances(&mut all);
            Ok(all)
        })
        .await
    }
}
