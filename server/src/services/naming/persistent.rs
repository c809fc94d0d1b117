//! Persistent instances and service settings: how stored rows are held in memory, and
//! reloading them when another node (or a replicated snapshot) changed the store.

use super::*;

impl NamingService {
    /// A stored instance as held in memory: owned by `ip:port#false`, as Nacos names it.
    pub(super) fn persistent_entry(
        &self,
        instance: Instance,
        now: Instant,
    ) -> (InstanceAddr, Entry) {
        let owner = ClientId::ip_port(&instance.ip, instance.port, false);
        let host = Arc::new(Host::new(instance, &self.defaults));
        (
            host.instance.addr(),
            Entry {
                host,
                owner,
                last_beat: now.into(),
            },
        )
    }

    /// Re-read one service's stored settings and persistent instances: another node changed
    /// them in the replicated store. Ephemeral instances are left alone.
    pub async fn reload_persistent(&self, key: &ServiceKey) {
        let _guard = self.persist.lock().await;
        let loaded = match self.repo.get_service(key).await {
            Ok(None) => None,
            Ok(Some(meta)) => match self.repo.list_instances(key).await {
                Ok(instances) => Some((meta, instances)),
                Err(e) => {
                    tracing::warn!(service = %key.grouped_name(), "cannot reload persistent instances: {e}");
                    return;
                }
            },
            Err(e) => {
                tracing::warn!(service = %key.grouped_name(), "cannot reload a service: {e}");
                return;
            }
        };
        let now = Instant::now();
        {
            let mut shard = self.registry.write(key);
            match loaded {
                None => {
                    let gone = shard.get_mut(key).is_some_and(|state| {
                        state.retain(|e| !e.owner.is_persistent_ip_port());
                        state.meta = None;
                        state.touch_empty(now);
                        state.is_empty()
                    });
                    if gone {
                        shard.remove(key);
                    }
                }
                Some((meta, instances)) => {
                    let state = shard
                        .entry(key.clone())
                        .or_insert_with(|| ServiceState::new(&meta.key, meta.ephemeral));
                    state.ephemeral = meta.ephemeral;
                    state.retain(|e| !e.owner.is_persistent_ip_port());
                    for instance in instances {
                        let (addr, entry) = self.persistent_entry(instance, now);
                        state.insert(addr, entry);
                    }
                    state.meta = Some(Arc::new(meta));
                    state.touch_empty(now);
                }
            }
        }
        self.notify(key);
    }

    /// [`Self::reload_persistent`] for every stored service and every service held with
    /// stored settings (a replicated snapshot replaced the store).
    pub async fn reload_all_persistent(&self) -> RepoResult<()> {
        let mut keys: HashSet<ServiceKey> = self
            .repo
            .list_services()
            .await?
            .into_iter()
            .map(|m| m.key)
            .collect();
        self.registry.for_each_shard(|shard| {
            keys.extend(
                shard
                    .iter()
                    .filter(|(_, s)| s.meta.is_some())
                    .map(|(k, _)| k.clone()),
            );
        });
        for key in keys {
            self.reload_persistent(&key).await;
        }
        Ok(())
    }
}
