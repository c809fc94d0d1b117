//! Instances: registration (ephemeral, owned by a client; persistent, through the
//! repository), deregistration, updates, metadata, health, and the queries by owner.

use super::*;

enum Modified {
    Done,
    NoService,
    NoInstance,
}

impl NamingService {
    /// Register an instance. Ephemeral instances belong to `owner` and replace what `owner`
    /// published in this service before; persistent ones (`instance.ephemeral == false`) are
    /// stored through the repository (their owner is always `ip:port#false`).
    pub async fn register_instance(
        &self,
        key: &ServiceKey,
        instance: Instance,
        owner: &ClientId,
    ) -> NamingResult<()> {
        check_instance(&instance)?;
        if instance.ephemeral {
            self.put_ephemeral(key, vec![instance], owner)
        } else {
            self.register_persistent(key, instance).await
        }
    }

    /// Replace everything `owner` publishes in a service with `instances` (all treated as
    /// ephemeral; an empty list deregisters). gRPC `BatchInstanceRequest`.
    pub fn batch_register(
        &self,
        key: &ServiceKey,
        instances: Vec<Instance>,
        owner: &ClientId,
    ) -> NamingResult<()> {
        let mut instances = instances;
        for instance in &mut instances {
            instance.ephemeral = true;
            check_instance(instance)?;
        }
        self.put_ephemeral(key, instances, owner)
    }

    pub(super) fn put_ephemeral(
        &self,
        key: &ServiceKey,
        instances: Vec<Instance>,
        owner: &ClientId,
    ) -> NamingResult<()> {
        let hosts: Vec<Arc<Host>> = instances
            .into_iter()
            .map(|i| Arc::new(Host::new(i, &self.defaults)))
            .collect();
        let now = Instant::now();
        let changed = {
            let mut shard = self.registry.write(key);
            if hosts.is_empty() && !shard.contains_key(key) {
                return Ok(());
            }
            let state = shard
                .entry(key.clone())
                .or_insert_with(|| ServiceState::new(key, true));
            if !state.ephemeral {
                return Err(kind_mismatch(key, false));
            }
            let addrs: HashSet<InstanceAddr> = hosts.iter().map(|h| h.instance.addr()).collect();
            // The owner's instances that the new list drops; only when it has others here
            // than the ones it lists is the service scanned for them.
            let listed_and_owned = addrs
                .iter()
                .filter(|addr| state.get(addr).is_some_and(|e| &e.owner == owner))
                .count();
            let mut changed = false;
            if state.owned_by(owner) > listed_and_owned {
                let before = state.len();
                state.retain(|e| &e.owner != owner || addrs.contains(&e.host.instance.addr()));
                changed = state.len() != before;
            }
            for host in hosts {
                let addr = host.instance.addr();
                let unchanged = state
                    .get(&addr)
                    .is_some_and(|e| &e.owner == owner && *e.host == *host);
                if unchanged {
                    state.set_beat(&addr, now);
                } else {
                    let entry = Entry {
                        host,
                        owner: owner.clone(),
                        last_beat: now.into(),
                    };
                    state.insert(addr, entry);
                    changed = true;
                }
            }
            state.touch_empty(now);
            if addrs.is_empty() {
                self.registry.index_remove(owner, key, Some(state));
            } else {
                self.registry.index_add(owner, &state.key);
            }
            changed
        };
        if changed {
            self.notify(key);
        }
        Ok(())
    }

    /// Make sure the service exists in memory with the given kind before a repository write,
    /// so a concurrent registration of the other kind is refused. Returns whether it was new.
    pub(super) fn reserve(&self, key: &ServiceKey, ephemeral: bool) -> NamingResult<bool> {
        let mut shard = self.registry.write(key);
        match shard.get(key) {
            Some(s) if s.ephemeral != ephemeral => Err(kind_mismatch(key, s.ephemeral)),
            Some(_) => Ok(false),
            None => {
                shard.insert(key.clone(), ServiceState::new(key, ephemeral));
                Ok(true)
            }
        }
    }

    /// Undo [`Self::reserve`] after a failed repository write.
    pub(super) fn drop_reservation(&self, key: &ServiceKey) {
        let mut shard = self.registry.write(key);
        if shard
            .get(key)
            .is_some_and(|s| s.is_empty() && s.meta.is_none())
        {
            shard.remove(key);
        }
    }

    async fn register_persistent(&self, key: &ServiceKey, instance: Instance) -> NamingResult<()> {
        let _guard = self.persist.lock().await;
        let created = self.reserve(key, false)?;
        if let Err(e) = self.repo.register_instance(key, instance.clone()).await {
            if created {
                self.drop_reservation(key);
            }
            return Err(match e {
                RepoError::PreconditionFailed(_) => kind_mismatch(key, true),
                other => other.into(),
            });
        }
        let now = Instant::now();
        let (addr, entry) = self.persistent_entry(instance, now);
        {
            let mut shard = self.registry.write(key);
            let state = shard
                .entry(key.clone())
                .or_insert_with(|| ServiceState::new(key, false));
            // The repository created the service row if it was missing.
            if state.meta.is_none() {
                state.meta = Some(Arc::new(ServiceMeta::new(key.clone(), false)));
            }
            state.insert(addr, entry);
            state.touch_empty(now);
        }
        self.notify(key);
        Ok(())
    }

    /// Deregister. Ephemeral: remove what `owner` publishes in the service (the instance body is
    /// not matched, as Nacos 2.x). Persistent: remove `(ip, port, cluster)` from the repository.
    /// Unknown services, clients and instances are ignored.
    pub async fn deregister_instance(
        &self,
        key: &ServiceKey,
        instance: &Instance,
        owner: &ClientId,
    ) -> NamingResult<()> {
        if instance.ephemeral {
            let changed = {
                let mut shard = self.registry.write(key);
                let Some(state) = shard.get_mut(key) else {
                    return Ok(());
                };
                if !state.ephemeral {
                    return Ok(());
                }
                let before = state.len();
                state.remove_owner(owner);
                state.touch_empty(Instant::now());
                self.registry.index_remove(owner, key, Some(state));
                state.len() != before
            };
            if changed {
                self.notify(key);
            }
            return Ok(());
        }
        let _guard = self.persist.lock().await;
        let ephemeral_service = self.registry.read(key).get(key).map(|s| s.ephemeral);
        if ephemeral_service != Some(false) {
            return Ok(());
        }
        self.repo.deregister_instance(key, &instance.addr()).await?;
        let addr = InstanceAddr {
            ip: instance.ip.to_string(),
            port: instance.port,
            cluster: instance.cluster.to_string(),
        };
        let changed = {
            let mut shard = self.registry.write(key);
            match shard.get_mut(key) {
                Some(state) => {
                    let removed = state.remove(&addr).is_some();
                    state.touch_empty(Instant::now());
                    removed
                }
                None => false,
            }
        };
        if changed {
            self.notify(key);
        }
        Ok(())
    }

    /// Apply `change` to the instance at `addr`. `kind` restricts the service kind (`None`: any).
    /// Persistent instances are written through the repository first.
    async fn modify_instance(
        &self,
        key: &ServiceKey,
        addr: &InstanceAddr,
        kind: Option<bool>,
        change: impl FnOnce(&Instance) -> Instance,
    ) -> NamingResult<Modified> {
        let service_ephemeral = match self.registry.read(key).get(key) {
            Some(s) if kind.is_none_or(|k| k == s.ephemeral) => s.ephemeral,
            _ => return Ok(Modified::NoService),
        };
        if service_ephemeral {
            let changed = {
                let mut shard = self.registry.write(key);
                let Some(state) = shard.get_mut(key) else {
                    return Ok(Modified::NoService);
                };
                let Some(entry) = state.get(addr) else {
                    return Ok(Modified::NoInstance);
                };
                let updated = change(&entry.host.instance);
                check_instance(&updated)?;
                let host = Host::new(updated, &self.defaults);
                if host == *entry.host {
                    false
                } else {
                    state.replace_host(addr, Arc::new(host));
                    true
                }
            };
            if changed {
                self.notify(key);
            }
            return Ok(Modified::Done);
        }
        let _guard = self.persist.lock().await;
        let current = self
            .registry
            .read(key)
            .get(key)
            .and_then(|s| s.get(addr))
            .map(|e| Arc::clone(&e.host));
        let Some(current) = current else {
            return Ok(Modified::NoInstance);
        };
        let updated = change(&current.instance);
        check_instance(&updated)?;
        let host = Host::new(updated.clone(), &self.defaults);
        if host == *current {
            return Ok(Modified::Done);
        }
        self.repo.register_instance(key, updated).await?;
        {
            let mut shard = self.registry.write(key);
            if let Some(state) = shard.get_mut(key) {
                state.replace_host(addr, Arc::new(host));
            }
        }
        self.notify(key);
        Ok(Modified::Done)
    }

    /// `PUT /v1/ns/instance`: replace weight, enabled and metadata of an existing instance. The
    /// service must exist with the instance's kind.
    pub async fn update_instance(&self, key: &ServiceKey, instance: Instance) -> NamingResult<()> {
        check_instance(&instance)?;
        let addr = InstanceAddr {
            ip: instance.ip.to_string(),
            port: instance.port,
            cluster: instance.cluster.to_string(),
        };
        let outcome = self
            .modify_instance(key, &addr, Some(instance.ephemeral), |current| {
                let mut next = current.clone();
                next.weight = instance.weight;
                next.enabled = instance.enabled;
                next.metadata = instance.metadata.clone();
                next
            })
            .await?;
        match outcome {
            Modified::Done => Ok(()),
            Modified::NoService => Err(service_not_found(key)),
            Modified::NoInstance => Err(NamingError::Invalid(format!(
                "instance not exist: {}:{} in cluster {} of service {}",
                addr.ip,
                addr.port,
                addr.cluster,
                key.grouped_name()
            ))),
        }
    }

    /// `PATCH /v1/ns/instance`: change only the given fields; metadata is merged.
    pub async fn patch_instance(
        &self,
        key: &ServiceKey,
        ip: &str,
        port: u16,
        cluster: &str,
        patch: InstancePatch,
    ) -> NamingResult<()> {
        let addr = InstanceAddr {
            ip: ip.to_string(),
            port,
            cluster: cluster.to_string(),
        };
        let outcome = self
            .modify_instance(key, &addr, None, |current| {
                let mut next = current.clone();
                if let Some(metadata) = &patch.metadata {
                    next.metadata
                        .extend(metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                if let Some(w) = patch.weight {
                    next.weight = w;
                }
                if let Some(h) = patch.healthy {
                    next.healthy = h;
                }
                if let Some(e) = patch.enabled {
                    next.enabled = e;
                }
                next
            })
            .await?;
        match outcome {
            Modified::Done => Ok(()),
            Modified::NoService | Modified::NoInstance => Err(no_matched_ip()),
        }
    }

    /// `PUT`/`DELETE /v1/ns/instance/metadata/batch`: merge `metadata` into (or, with
    /// `remove`, drop its keys from) the instances of the given kind. `targets` are
    /// `(ip, port, cluster)`; empty means every instance of that kind. Persistent instances go
    /// through the repository; each change notifies subscribers. Returns Nacos's datum keys
    /// `ip:port:unknown:cluster:ephemeral|persist` of the instances found.
    pub async fn batch_metadata(
        &self,
        key: &ServiceKey,
        ephemeral: bool,
        targets: &[(String, u16, String)],
        metadata: &BTreeMap<String, String>,
        remove: bool,
    ) -> NamingResult<Vec<String>> {
        let addrs: Vec<InstanceAddr> = {
            let shard = self.registry.read(key);
            match shard.get(key).filter(|s| s.ephemeral == ephemeral) {
                Some(state) => {
                    let mut addrs: Vec<InstanceAddr> = state
                        .values()
                        .map(|e| e.host.instance.addr())
                        .filter(|a| {
                            targets.is_empty()
                                || targets.iter().any(|(ip, port, c)| {
                                    &a.ip == ip && a.port == *port && &a.cluster == c
                                })
                        })
                        .collect();
                    addrs.sort_by(|a, b| {
                        (&a.ip, a.port, &a.cluster).cmp(&(&b.ip, b.port, &b.cluster))
                    });
                    addrs
                }
                None => Vec::new(),
            }
        };
        let kind = if ephemeral { "ephemeral" } else { "persist" };
        let mut updated = Vec::new();
        for addr in addrs {
            let outcome = self
                .modify_instance(key, &addr, Some(ephemeral), |current| {
                    let mut next = current.clone();
                    if remove {
                        for k in metadata.keys() {
                            next.metadata.remove(k);
                        }
                    } else {
                        next.metadata
                            .extend(metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                    next
                })
                .await?;
            if matches!(outcome, Modified::Done) {
                updated.push(format!(
                    "{}:{}:unknown:{}:{kind}",
                    addr.ip, addr.port, addr.cluster
                ));
            }
        }
        Ok(updated)
    }

    /// `PUT /v1/ns/health`: set the health of a persistent instance by hand. As in Nacos, only
    /// a cluster whose stored settings name the `NONE` checker takes it (elsewhere the health
    /// checks own it: 400 "health check is still working"); an unknown instance is ignored.
    pub async fn set_persistent_health(
        &self,
        key: &ServiceKey,
        ip: &str,
        port: u16,
        cluster: &str,
        healthy: bool,
    ) -> NamingResult<()> {
        let unchecked = self
            .registry
            .read(key)
            .get(key)
            .and_then(|s| {
                s.meta
                    .as_ref()
                    .and_then(|m| m.clusters.get(cluster).cloned())
            })
            .is_some_and(|c| {
                health_check::HealthChecker::of_cluster(Some(&c))
                    == health_check::HealthChecker::None
            });
        if !unchecked {
            return Err(NamingError::Invalid(format!(
                "health check is still working, service: {}, cluster: {cluster}",
                key.grouped_name()
            )));
        }
        let addr = InstanceAddr {
            ip: ip.to_string(),
            port,
            cluster: cluster.to_string(),
        };
        self.write_health(key, &addr, healthy).await
    }

    /// Store and publish a persistent instance's health: the one path of manual updates and
    /// health checks. A missing instance is ignored.
    pub(super) async fn write_health(
        &self,
        key: &ServiceKey,
        addr: &InstanceAddr,
        healthy: bool,
    ) -> NamingResult<()> {
        self.modify_instance(key, addr, Some(false), |current| {
            let mut next = current.clone();
            next.healthy = healthy;
            next
        })
        .await
        .map(|_| ())
    }

    /// Every persistent instance with its cluster's settings, for the health checks.
    pub(super) fn persistent_targets(&self) -> Vec<health_check::Target> {
        let mut out = Vec::new();
        self.registry.for_each_shard(|shard| {
            for (key, state) in shard.iter().filter(|(_, s)| !s.ephemeral) {
                for entry in state.values().filter(|e| e.owner.is_persistent_ip_port()) {
                    let instance = &entry.host.instance;
                    out.push(health_check::Target {
                        key: key.clone(),
                        addr: instance.addr(),
                        healthy: instance.healthy,
                        meta: state.meta.clone(),
                    });
                }
            }
        });
        out
    }

    /// One instance by `(ip, port, cluster)`, disabled or not.
    pub fn get_instance(
        &self,
        key: &ServiceKey,
        ip: &str,
        port: u16,
        cluster: &str,
    ) -> NamingResult<Arc<Host>> {
        let shard = self.registry.read(key);
        let Some(state) = shard.get(key).filter(|s| !s.is_empty()) else {
            return Err(NamingError::NotFound(format!(
                "no ips found for cluster {cluster} in service {}",
                key.grouped_name()
            )));
        };
        let addr = InstanceAddr {
            ip: ip.to_string(),
            port,
            cluster: cluster.to_string(),
        };
        state
            .get(&addr)
            .map(|e| Arc::clone(&e.host))
            .ok_or_else(no_matched_ip)
    }

    /// Every host of a service (no filter), for consoles and client views.
    pub fn all_hosts(&self, key: &ServiceKey) -> Vec<Arc<Host>> {
        self.registry
            .read(key)
            .get(key)
            .map(|s| s.hosts().cloned().collect())
            .unwrap_or_default()
    }

    /// Every published instance with its client, or only those of `owner`. Walks every
    /// service: for operator views, not for hot paths.
    pub fn publications(&self, owner: Option<&ClientId>) -> Vec<Publication> {
        let mut out = Vec::new();
        self.registry.for_each_shard(|shard| {
            for (key, state) in shard {
                out.extend(publications_of(key, state, owner));
            }
        });
        out.sort_by(|a, b| (&a.key, &a.owner).cmp(&(&b.key, &b.owner)));
        out
    }

    /// The instances of one service with their clients.
    pub fn publications_in(&self, key: &ServiceKey) -> Vec<Publication> {
        self.registry
            .read(key)
            .get(key)
            .map(|state| publications_of(key, state, None).collect())
            .unwrap_or_default()
    }

    /// Every v1 UDP subscription (client `ip:udpPort#true` in Nacos's terms).
    pub fn udp_subscriptions(&self) -> Vec<UdpSubscription> {
        self.push.subscriptions()
    }

    /// Remove a client and everything it owns (a closed gRPC connection). Subscribers of each
    /// affected service are notified.
    pub fn remove_client(&self, owner: &ClientId) {
        for key in self.registry.take_client(owner) {
            let changed = {
                let mut shard = self.registry.write(&key);
                match shard.get_mut(&key) {
                    Some(state) => {
                        let before = state.len();
                        state.remove_owner(owner);
                        state.touch_empty(Instant::now());
                        state.len() != before
                    }
                    None => false,
                }
            };
            if changed {
                self.notify(&key);
            }
        }
    }
}
