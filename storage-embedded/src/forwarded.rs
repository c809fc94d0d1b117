//! Writes a follower forwards to the Raft leader, admitted only in the shape the public API
//! produces.

use nacos_core::validate::{self, ParamError};
use nacos_core::{ConfigKey, RepoError, ServiceKey, now_millis};

use crate::command::Command;

impl Command {
    /// A command a follower forwarded to this leader, admitted only in the shape the public API
    /// produces: keys pass the API's own rules, users carry BCrypt hashes and non-blank names,
    /// and time stamps are this node's (a forwarder cannot date a write). Forwarders are
    /// cluster members already (the Raft port admits no one else); this keeps one member that
    /// misbehaves from writing what no API request could.
    pub fn vetted_for_forwarding(mut self) -> Result<Command, RepoError> {
        let now = now_millis();
        let refused = |e: ParamError| {
            RepoError::InvalidArgument(format!("forwarded write refused: {}", e.message))
        };
        let config_key = |k: &ConfigKey| {
            validate::data_id(&k.data_id)?;
            validate::group(&k.group)?;
            validate::tenant("tenant", &k.namespace)
        };
        let service_key = |k: &ServiceKey| {
            validate::namespace_id("namespaceId", &k.namespace)?;
            validate::group_name(&k.group)?;
            validate::service_name(&k.name)
        };
        let named = |what: &'static str, v: &str| {
            if v.trim().is_empty() {
                Err(ParamError::new(what, format!("{what} is blank")))
            } else {
                Ok(())
            }
        };
        let bcrypt = |hash: &str| {
            if ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
                Ok(())
            } else {
                Err(ParamError::new("password", "not a BCrypt hash"))
            }
        };
        match &mut self {
            Command::PublishConfig { publish, now_ms } => {
                config_key(&publish.key).map_err(refused)?;
                *now_ms = now;
            }
            Command::RemoveConfig { key, now_ms, .. } | Command::RemoveGray { key, now_ms, .. } => {
                config_key(key).map_err(refused)?;
                *now_ms = now;
            }
            Command::RemoveConfigsByIds { now_ms, .. } => *now_ms = now,
            Command::PublishGray {
                publish, now_ms, ..
            } => {
                config_key(&publish.key).map_err(refused)?;
                *now_ms = now;
            }
            Command::CreateNamespace { namespace } => {
                validate::namespace_id("namespaceId", &namespace.id).map_err(refused)?;
                namespace.created_ms = now;
                namespace.modified_ms = now;
            }
            Command::UpdateNamespace { id, now_ms, .. } => {
                validate::namespace_id("namespaceId", id).map_err(refused)?;
                *now_ms = now;
            }
            Command::DeleteNamespace { id } => {
                validate::namespace_id("namespaceId", id).map_err(refused)?
            }
            Command::CreateService { meta } | Command::UpdateService { meta } => {
                service_key(&meta.key).map_err(refused)?
            }
            Command::DeleteService { key } => service_key(key).map_err(refused)?,
            Command::RegisterInstance {
                service,
                instance,
                now_ms,
            } => {
                service_key(service).map_err(refused)?;
                validate::ip(&instance.ip).map_err(refused)?;
                validate::cluster_name("clusterName", &instance.cluster).map_err(refused)?;
                *now_ms = now;
            }
            Command::DeregisterInstance { service, ip, .. } => {
                service_key(service).map_err(refused)?;
                validate::ip(ip).map_err(refused)?;
            }
            Command::CreateUser { user } => {
                named("username", &user.username).map_err(refused)?;
                bcrypt(&user.password_hash).map_err(refused)?;
            }
            Command::UpdatePassword {
                username,
                password_hash,
            } => {
                named("username", username).map_err(refused)?;
                bcrypt(password_hash).map_err(refused)?;
            }
            Command::DeleteUser { username } => named("username", username).map_err(refused)?,
            Command::AddRole { binding } => {
                named("role", &binding.role).map_err(refused)?;
                named("username", &binding.username).map_err(refused)?;
            }
            Command::RemoveRole { role, .. } => named("role", role).map_err(refused)?,
            // Retention is the leader's own job; a purge reaches it forwarded only when
            // leadership moved mid-run, and never reaches rows younger than this clock.
            Command::PurgeHistory { before_ms, .. } if *before_ms > now => {
                return Err(RepoError::InvalidArgument(format!(
                    "forwarded write refused: a history purge cutoff {before_ms} is in the \
                     future (now {now})"
                )));
            }
            Command::PurgeHistory { .. } => {}
            Command::AddPermission { permission } | Command::RemovePermission { permission } => {
                named("role", &permission.role).map_err(refused)?;
                named("resource", &permission.resource).map_err(refused)?;
                named("action", &permission.action).map_err(refused)?;
            }
            // Restores are admin-only on every node; the records are a dump's, not a
            // request's, and keep their own ids and times.
            Command::Import { now_ms, .. } => *now_ms = now,
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nacos_core::{ConfigPublish, Permission, User};

    #[test]
    fn forwarded_commands_are_vetted_and_restamped() {
        let publish = ConfigPublish {
            key: ConfigKey::new("", "G", "ok.yaml"),
            content: "x".into(),
            ..ConfigPublish::default()
        };
        let forged = Command::PublishConfig {
            publish: publish.clone(),
            now_ms: 1,
        };
        match forged.vetted_for_forwarding().expect("a valid key") {
            Command::PublishConfig { now_ms, .. } => {
                assert!(now_ms > 1_600_000_000_000, "re-stamped by the leader")
            }
            other => panic!("unexpected {other:?}"),
        }
        let mut bad = publish;
        bad.key = ConfigKey::new("", "G", "bad key with spaces");
        let refused = Command::publish_config(bad).vetted_for_forwarding();
        assert!(
            matches!(refused, Err(RepoError::InvalidArgument(ref m)) if m.contains("forwarded")),
            "{refused:?}"
        );
        let plain_password = Command::CreateUser {
            user: User {
                username: "mallory".into(),
                password_hash: "hunter2".into(),
                enabled: true,
            },
        };
        assert!(plain_password.vetted_for_forwarding().is_err());
        let blank_role = Command::AddPermission {
            permission: Permission {
                role: " ".into(),
                resource: "dev:*:*".into(),
                action: "rw".into(),
            },
        };
        assert!(blank_role.vetted_for_forwarding().is_err());
    }

    #[test]
    fn a_forwarded_purge_never_reaches_past_the_leaders_clock() {
        let past = Command::PurgeHistory {
            before_ms: now_millis() - 86_400_000,
            limit: 10,
        };
        assert_eq!(past.clone().vetted_for_forwarding(), Ok(past));
        let future = Command::PurgeHistory {
            before_ms: now_millis() + 86_400_000,
            limit: 10,
        };
        assert!(matches!(
            future.vetted_for_forwarding(),
            Err(RepoError::InvalidArgument(m)) if m.contains("future")
        ));
    }
}
