//! Publishing what an archive holds into a namespace, under a conflict policy.

use nacos_core::rules::CONFIG_TYPES;
use nacos_core::validate;
use nacos_core::{
    ConfigKey, ConfigPublish, DEFAULT_CONFIG_TYPE, NamespaceRepo, Operator, RepoError,
};

use super::{
    CODE_NAMESPACE_MISSING, ImportFailure, ImportItem, ImportPolicy, ImportReport, ImportedKey,
};
use crate::services::config::ConfigService;

/// What to import where: the target namespace, the archive's items, the policy, and who.
#[derive(Debug)]
pub struct Import<'a> {
    pub namespace: &'a str,
    pub items: Vec<ImportItem>,
    pub policy: ImportPolicy,
    pub operator: &'a Operator,
}

/// The type to store: the archive's when Nacos knows it, else guessed from the dataId's
/// extension, else `text`.
pub(super) fn import_type(item: &ImportItem) -> String {
    if let Some(named) = item.config_type.as_deref().map(str::trim)
        && !named.is_empty()
    {
        let lower = named.to_ascii_lowercase();
        return if CONFIG_TYPES.contains(&lower.as_str()) {
            lower
        } else {
            DEFAULT_CONFIG_TYPE.to_string()
        };
    }
    let extension = item
        .data_id
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "yml" => "yaml".to_string(),
        "htm" => "html".to_string(),
        ext if CONFIG_TYPES.contains(&ext) => ext.to_string(),
        _ => DEFAULT_CONFIG_TYPE.to_string(),
    }
}

/// Publish the configs of an archive into `namespace` under `policy`.
///
/// As in Nacos, an `ABORT` import keeps what it wrote before the conflict, names the
/// conflicting config in `failData` and the configs it did not reach in `skipData` (those are
/// not counted in `skipCount`).
pub async fn import_items(
    config: &ConfigService,
    namespaces: &dyn NamespaceRepo,
    max_content: usize,
    target: Import<'_>,
) -> Result<ImportReport, RepoError> {
    let Import {
        namespace,
        items,
        policy,
        operator,
    } = target;
    let mut report = ImportReport::default();
    let exists =
        namespace.is_empty() || namespace == "public" || namespaces.get(namespace).await?.is_some();
    if !exists {
        report.failure = Some(ImportFailure::new(
            CODE_NAMESPACE_MISSING,
            format!("namespace '{namespace}' does not exist; create it before importing"),
        ));
        return Ok(report);
    }
    let (unrecognized, configs): (Vec<ImportItem>, Vec<ImportItem>) =
        items.into_iter().partition(|i| i.unrecognized.is_some());
    report.unrecognized = unrecognized
        .into_iter()
        .filter_map(|i| i.unrecognized)
        .collect();

    let mut pending = configs.into_iter();
    while let Some(item) = pending.next() {
        let key = ConfigKey::new(namespace, item.group.as_str(), item.data_id.as_str());
        if let Err(e) = validate::content(&item.content, max_content) {
            tracing::info!(group = %item.group, data_id = %item.data_id, "import: {e}");
            report.fail_data.push(ImportedKey::of(&item));
            continue;
        }
        if config.repo().get(&key).await?.is_some() {
            match policy {
                ImportPolicy::Abort => {
                    report.fail_data.push(ImportedKey::of(&item));
                    report
                        .skip_data
                        .extend(pending.by_ref().map(|rest| ImportedKey::of(&rest)));
                    break;
                }
                ImportPolicy::Skip => {
                    report.skip_count += 1;
                    report.skip_data.push(ImportedKey::of(&item));
                    continue;
                }
                ImportPolicy::Overwrite => {}
            }
        }
        let publish = ConfigPublish {
            key,
            config_type: Some(import_type(&item)),
            app_name: Some(item.app_name.clone().unwrap_or_default()),
            desc: Some(item.desc.clone().unwrap_or_default()),
            // The archive holds content as exported; no data key belongs to it.
            encrypted_data_key: Some(String::new()),
            operator: operator.clone(),
            content: item.content.clone(),
            ..ConfigPublish::default()
        };
        match config.publish(publish).await {
            Ok(_) => report.succ_count += 1,
            Err(
                RepoError::InvalidArgument(why)
                | RepoError::AlreadyExists(why)
                | RepoError::PreconditionFailed(why),
            ) => {
                tracing::info!(group = %item.group, data_id = %item.data_id, "import refused: {why}");
                report.fail_data.push(ImportedKey::of(&item));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}
