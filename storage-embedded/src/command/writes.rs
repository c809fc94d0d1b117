//! The row writes commands share: configs, gray variants, history and its purge, the change
//! index, services and id counters.

use nacos_core::{
    ConfigItem, ConfigKey, ConfigPublish, Gray, GrayConfig, GrayPublish, HistoryEntry, HistoryOp,
    Operator, RepoError, ServiceMeta, rules,
};
use redb::ReadableTable;

use crate::error::storage;
use crate::tables::{
    CHANGE_SEQ, CONFIG_ID, GRAY_ID, HISTORY_NID, WriteTables, config_key, decode, encode, gray_key,
    read_config, read_config_key, read_gray, service_key,
};
pub(super) fn publish_config(
    t: &mut WriteTables<'_>,
    publish: &ConfigPublish,
    now_ms: i64,
) -> Result<ConfigItem, RepoError> {
    let stored = read_config(&t.configs, &publish.key)?;
    nacos_core::check_cas(
        publish.cas_md5.as_deref(),
        stored.as_ref().map(|item| item.md5.as_str()),
        &format!("config {}", publish.key.describe()),
    )?;
    let operator = &publish.operator;
    let (item, history) = match stored {
        None => {
            let id = t.next_id(CONFIG_ID)?;
            let item = rules::published_config(publish, None, id, now_ms);
            let history = history_row(&item, 0, HistoryOp::Insert, operator, now_ms);
            t.config_ids
                .insert(item.id, config_key(&item.key))
                .map_err(storage)?;
            (item, history)
        }
        Some(old) => {
            let item = rules::published_config(publish, Some(&old), old.id, now_ms);
            let history = history_row(&old, old.id, HistoryOp::Update, operator, now_ms);
            (item, history)
        }
    };
    let bytes = encode(&item, "configs")?;
    t.configs
        .insert(config_key(&item.key), bytes.as_slice())
        .map_err(storage)?;
    append_history(t, history)?;
    record_change(t, &item.key, now_ms)?;
    Ok(item)
}

pub(super) fn remove_config(
    t: &mut WriteTables<'_>,
    key: &ConfigKey,
    operator: &Operator,
    now_ms: i64,
) -> Result<Option<ConfigItem>, RepoError> {
    let Some(item) = read_config(&t.configs, key)? else {
        return Ok(None);
    };
    t.configs.remove(config_key(key)).map_err(storage)?;
    t.config_ids.remove(item.id).map_err(storage)?;
    append_history(
        t,
        history_row(&item, item.id, HistoryOp::Delete, operator, now_ms),
    )?;
    record_change(t, key, now_ms)?;
    Ok(Some(item))
}

pub(super) fn publish_gray(
    t: &mut WriteTables<'_>,
    gray: &Gray,
    publish: &GrayPublish,
    now_ms: i64,
) -> Result<GrayConfig, RepoError> {
    let stored = read_gray(&t.grays, &publish.key, gray)?;
    nacos_core::check_cas(
        publish.cas_md5.as_deref(),
        stored.as_ref().map(|variant| variant.md5.as_str()),
        &format!("{gray:?} of config {}", publish.key.describe()),
    )?;
    let id = match &stored {
        Some(old) => old.id,
        None => t.next_id(GRAY_ID)?,
    };
    let variant = rules::published_gray(gray, publish, stored.as_ref(), id, now_ms);
    let bytes = encode(&variant, "grays")?;
    t.grays
        .insert(gray_key(&variant.key, gray), bytes.as_slice())
        .map_err(storage)?;
    record_change(t, &variant.key, now_ms)?;
    Ok(variant)
}

/// A history row describing `source` (the new row for `I`, the previous one for `U`, the
/// deleted one for `D`), written by `operator` at `now_ms`. The nid is set on append.
pub(super) fn history_row(
    source: &ConfigItem,
    config_id: u64,
    op: HistoryOp,
    operator: &Operator,
    now_ms: i64,
) -> HistoryEntry {
    HistoryEntry {
        nid: 0,
        config_id,
        key: source.key.clone(),
        content: source.content.clone(),
        md5: source.md5.clone(),
        app_name: source.app_name.clone(),
        src_user: operator.user.clone(),
        src_ip: operator.ip.clone(),
        op,
        encrypted_data_key: source.encrypted_data_key.clone(),
        created_ms: now_ms,
        modified_ms: now_ms,
    }
}

pub(super) fn append_history(
    t: &mut WriteTables<'_>,
    mut entry: HistoryEntry,
) -> Result<(), RepoError> {
    entry.nid = t.next_id(HISTORY_NID)?;
    let bytes = encode(&entry, "history")?;
    t.history
        .insert(entry.nid, bytes.as_slice())
        .map_err(storage)?;
    let (ns, group, data_id) = config_key(&entry.key);
    t.history_by_key
        .insert((ns, group, data_id, entry.nid), ())
        .map_err(storage)?;
    t.history_by_config
        .insert((entry.config_id, entry.nid), ())
        .map_err(storage)?;
    Ok(())
}

/// Delete up to `limit` history rows older than `before_ms`, lowest nid first. Nids are handed
/// out in write order and stamped with the writer's clock, so the walk stops at the first row
/// that is not old enough: a batch reads at most `limit + 1` rows, never the whole table.
pub(super) fn purge_history(
    t: &mut WriteTables<'_>,
    before_ms: i64,
    limit: u32,
) -> Result<u64, RepoError> {
    let mut doomed = Vec::new();
    for row in t.history.iter().map_err(storage)? {
        if doomed.len() >= limit as usize {
            break;
        }
        let (_, value) = row.map_err(storage)?;
        let entry: HistoryEntry = decode(value.value(), "history")?;
        if entry.modified_ms >= before_ms {
            break;
        }
        doomed.push(entry);
    }
    for entry in &doomed {
        t.history.remove(entry.nid).map_err(storage)?;
        let (ns, group, data_id) = config_key(&entry.key);
        t.history_by_key
            .remove((ns, group, data_id, entry.nid))
            .map_err(storage)?;
        t.history_by_config
            .remove((entry.config_id, entry.nid))
            .map_err(storage)?;
    }
    Ok(doomed.len() as u64)
}

/// Move the key's entry in the change log to `(now_ms, next seq)`.
pub(super) fn record_change(
    t: &mut WriteTables<'_>,
    key: &ConfigKey,
    now_ms: i64,
) -> Result<(), RepoError> {
    let seq = t.next_id(CHANGE_SEQ)?;
    let previous = t
        .change_by_key
        .get(config_key(key))
        .map_err(storage)?
        .map(|g| g.value());
    if let Some(previous) = previous {
        t.changes.remove(previous).map_err(storage)?;
    }
    t.changes
        .insert((now_ms, seq), config_key(key))
        .map_err(storage)?;
    t.change_by_key
        .insert(config_key(key), (now_ms, seq))
        .map_err(storage)?;
    Ok(())
}

pub(super) fn write_service(t: &mut WriteTables<'_>, meta: &ServiceMeta) -> Result<(), RepoError> {
    let bytes = encode(meta, "services")?;
    t.services
        .insert(service_key(&meta.key), bytes.as_slice())
        .map_err(storage)?;
    Ok(())
}

/// Raise a counter to at least `value`, so ids handed out later stay above imported ones.
pub(super) fn raise_counter(
    t: &mut WriteTables<'_>,
    counter: &str,
    value: u64,
) -> Result<(), RepoError> {
    let current = t
        .counters
        .get(counter)
        .map_err(storage)?
        .map_or(0, |g| g.value());
    if value > current {
        t.counters.insert(counter, value).map_err(storage)?;
    }
    Ok(())
}

/// Replace whatever holds `item`'s id or key with `item`.
pub(super) fn put_config(t: &mut WriteTables<'_>, item: &ConfigItem) -> Result<(), RepoError> {
    if let Some(old_key) = read_config_key(&t.config_ids, item.id)? {
        t.configs.remove(config_key(&old_key)).map_err(storage)?;
    }
    if let Some(old) = read_config(&t.configs, &item.key)? {
        t.config_ids.remove(old.id).map_err(storage)?;
    }
    let bytes = encode(item, "configs")?;
    t.configs
        .insert(config_key(&item.key), bytes.as_slice())
        .map_err(storage)?;
    t.config_ids
        .insert(item.id, config_key(&item.key))
        .map_err(storage)?;
    raise_counter(t, CONFIG_ID, item.id)
}
