//! Services and what subscribers see: selection, service settings (create, update,
//! delete), listings, UDP subscriptions and counters.

use super::*;

impl NamingService {
    /// What a subscriber sees: enabled hosts of the selected clusters, `healthyOnly`, protect
    /// threshold (see [`service_info::select`]). An unknown service gives no hosts.
    pub fn select(&self, key: &ServiceKey, selection: Selection<'_>) -> ServiceInfo {
        let shard = self.registry.read(key);
        self.select_in(shard.get(key), key, selection)
    }

    fn select_in(
        &self,
        state: Option<&ServiceState>,
        key: &ServiceKey,
        selection: Selection<'_>,
    ) -> ServiceInfo {
        let (hosts, reached) = match state {
            Some(state) => service_info::select(state.hosts(), state.meta.as_deref(), selection),
            None => (Vec::new(), false),
        };
        ServiceInfo {
            key: key.clone(),
            grouped_name: key.grouped_name(),
            clusters: selection.clusters.to_string(),
            cache_millis: self.settings.push_cache_millis,
            last_ref_time: now_millis(),
            hosts,
            reach_protection_threshold: reached,
        }
    }

    /// [`Self::select`] serialised for `style`: the hot path of `instance/list`. The JSON of a
    /// selection is kept until the service changes; only `lastRefTime` is filled in per call.
    pub fn select_json(
        &self,
        key: &ServiceKey,
        selection: Selection<'_>,
        style: WireStyle,
    ) -> Vec<u8> {
        let shard = self.registry.read(key);
        let state = shard.get(key);
        if let Some(state) = state {
            let render_key = RenderKey {
                clusters: selection.clusters.to_string(),
                healthy_only: selection.healthy_only,
                style,
            };
            if let Some(rendered) = state.rendered(&render_key) {
                return rendered.body(now_millis());
            }
            let info = self.select_in(Some(state), key, selection);
            if let Some(rendered) = Rendered::new(&info, style) {
                let body = rendered.body(info.last_ref_time);
                state.keep_rendered(render_key, Arc::new(rendered));
                return body;
            }
        }
        let info = self.select_in(state, key, selection);
        serde_json::to_vec(&info.wire(style)).unwrap_or_default()
    }

    // -----------------------------------------------------------------------------------------
    // Services

    /// Create a service with stored settings (`POST /v1/ns/service` passes `ephemeral: false`).
    /// Errors: `Invalid` when the service exists (with or without settings).
    pub async fn create_service(&self, meta: ServiceMeta) -> NamingResult<()> {
        let key = meta.key.clone();
        let exists = || {
            NamingError::Invalid(format!(
                "specified service {} already exists!",
                key.grouped_name()
            ))
        };
        let _guard = self.persist.lock().await;
        if self.registry.read(&key).contains_key(&key) {
            return Err(exists());
        }
        self.reserve(&key, meta.ephemeral)?;
        if let Err(e) = self.repo.create_service(meta.clone()).await {
            self.drop_reservation(&key);
            return Err(match e {
                RepoError::AlreadyExists(_) => exists(),
                other => other.into(),
            });
        }
        {
            let mut shard = self.registry.write(&key);
            let state = shard
                .entry(key.clone())
                .or_insert_with(|| ServiceState::new(&meta.key, meta.ephemeral));
            state.meta = Some(Arc::new(meta));
        }
        self.notify(&key);
        Ok(())
    }

    /// Replace protect threshold, metadata and selector of an existing service, storing
    /// settings for a service that had none.
    pub async fn update_service(
        &self,
        key: &ServiceKey,
        update: ServiceUpdate,
    ) -> NamingResult<()> {
        self.edit_service(key, |meta| {
            meta.protect_threshold = update.protect_threshold;
            meta.metadata = update.metadata;
            meta.selector = update.selector;
        })
        .await
    }

    /// Replace one cluster's settings (health checker, check port, metadata) of an existing
    /// service, storing settings for a service that had none. Errors: `Invalid` when the
    /// service does not exist.
    pub async fn update_cluster(
        &self,
        key: &ServiceKey,
        name: &str,
        cluster: ClusterMeta,
    ) -> NamingResult<()> {
        self.edit_service(key, |meta| {
            meta.clusters.insert(name.to_string(), cluster);
        })
        .await
    }

    /// Apply `edit` to the stored settings of an existing service (fresh ones when it had
    /// none), store them (an update, or an insert when no row exists yet), then install them
    /// and tell subscribers. Errors: `Invalid` when the service does not exist.
    async fn edit_service(
        &self,
        key: &ServiceKey,
        edit: impl FnOnce(&mut ServiceMeta),
    ) -> NamingResult<()> {
        let _guard = self.persist.lock().await;
        let (current, ephemeral) = match self.registry.read(key).get(key) {
            Some(s) => (s.meta.clone(), s.ephemeral),
            None => return Err(service_not_found(key)),
        };
        let mut meta = current
            .as_deref()
            .cloned()
            .unwrap_or_else(|| ServiceMeta::new(key.clone(), ephemeral));
        edit(&mut meta);
        meta.modified_ms = now_millis();
        let stored = if current.is_some() {
            self.repo.update_service(meta.clone()).await
        } else {
            Err(RepoError::NotFound(String::new()))
        };
        match stored {
            Ok(()) => {}
            Err(RepoError::NotFound(_)) => self.repo.create_service(meta.clone()).await?,
            Err(e) => return Err(e.into()),
        }
        if let Some(state) = self.registry.write(key).get_mut(key) {
            state.meta = Some(Arc::new(meta));
        }
        self.notify(key);
        Ok(())
    }

    /// Delete a service. Errors: `Invalid` when it does not exist or still has instances.
    pub async fn delete_service(&self, key: &ServiceKey) -> NamingResult<()> {
        let not_empty = || {
            NamingError::Invalid(format!(
                "Service {} is not empty, can't be delete. Please unregister instance first",
                key.grouped_name()
            ))
        };
        let _guard = self.persist.lock().await;
        let stored = match self.registry.read(key).get(key) {
            None => {
                return Err(NamingError::Invalid(format!(
                    "service {} not found!",
                    key.grouped_name()
                )));
            }
            Some(s) if !s.is_empty() => return Err(not_empty()),
            Some(s) => s.meta.is_some(),
        };
        if stored {
            match self.repo.delete_service(key).await {
                Ok(()) | Err(RepoError::NotFound(_)) => {}
                Err(RepoError::PreconditionFailed(_)) => return Err(not_empty()),
                Err(e) => return Err(e.into()),
            }
        }
        {
            let mut shard = self.registry.write(key);
            let empty = shard.get(key).map(|s| s.is_empty());
            match empty {
                Some(true) => {
                    shard.remove(key);
                }
                // An ephemeral registration slipped in: keep the service, without settings.
                Some(false) => {
                    if let Some(state) = shard.get_mut(key) {
                        state.meta = None;
                    }
                }
                None => {}
            }
        }
        self.notify(key);
        Ok(())
    }

    /// A service's settings and clusters. Errors: `Invalid` when it does not exist.
    pub fn service_detail(&self, key: &ServiceKey) -> NamingResult<ServiceDetail> {
        let shard = self.registry.read(key);
        let Some(state) = shard.get(key) else {
            return Err(service_not_found(key));
        };
        let meta = state
            .meta
            .as_deref()
            .cloned()
            .unwrap_or_else(|| ServiceMeta::new(key.clone(), state.ephemeral));
        let mut clusters: BTreeSet<String> = state
            .values()
            .map(|e| e.host.instance.cluster.to_string())
            .collect();
        clusters.extend(meta.clusters.keys().cloned());
        Ok(ServiceDetail {
            ephemeral: state.ephemeral,
            clusters: clusters.into_iter().collect(),
            instance_count: state.len(),
            meta,
        })
    }

    pub fn service_exists(&self, key: &ServiceKey) -> bool {
        self.registry.read(key).contains_key(key)
    }

    /// Every service key of every namespace, sorted.
    pub fn all_services(&self) -> Vec<ServiceKey> {
        let mut out = Vec::new();
        self.registry
            .for_each_shard(|shard| out.extend(shard.keys().cloned()));
        out.sort();
        out
    }

    /// Services of a namespace (of one group when given), sorted.
    pub fn list_services(&self, namespace: &str, group: Option<&str>) -> Vec<ServiceKey> {
        let mut out = Vec::new();
        self.registry.for_each_shard(|shard| {
            out.extend(
                shard
                    .keys()
                    .filter(|k| k.namespace == namespace && group.is_none_or(|g| k.group == g))
                    .cloned(),
            );
        });
        out.sort();
        out
    }

    // -----------------------------------------------------------------------------------------
    // UDP push and counters

    /// Subscribe a v1 client's UDP receiver to a service (called by `instance/list` with
    /// `udpPort > 0` and a push-capable user agent; see [`push_capable`]).
    pub fn subscribe_udp(&self, key: &ServiceKey, addr: SocketAddr, clusters: &str) {
        self.push.subscribe(key, addr, clusters);
    }

    /// Push counters; `reset` zeroes them after reading.
    pub fn push_counters(&self, reset: bool) -> PushCounters {
        self.push.counters(reset)
    }

    pub fn metrics(&self) -> NamingMetrics {
        let mut m = NamingMetrics::default();
        let mut owners: HashSet<ClientId> = HashSet::new();
        self.registry.for_each_shard(|shard| {
            m.service_count += shard.len();
            for state in shard.values() {
                m.instance_count += state.len();
                m.responsible_instance_count += state
                    .values()
                    .filter(|e| !self.remote.contains(&e.owner))
                    .count();
                owners.extend(state.values().map(|e| e.owner.clone()));
            }
        });
        for owner in &owners {
            if owner.is_ephemeral_ip_port() {
                m.ephemeral_ip_port_client_count += 1;
            } else if owner.is_persistent_ip_port() {
                m.persistent_ip_port_client_count += 1;
            } else {
                m.connection_based_client_count += 1;
            }
        }
        m.client_count = owners.len();
        m.responsible_client_count = owners.iter().filter(|o| !self.remote.contains(o)).count();
        m.subscribe_count = self.push.subscriber_count();
        m
    }
}
