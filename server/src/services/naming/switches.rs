//! Nacos's naming switches (`SwitchDomain`): the values `GET /operator/switches` shows and
//! `PUT /operator/switches` changes. They are kept on this node only (Nacos replicates them
//! through its CP store; a PUT here changes the node that receives it).
//!
//! Entries that change what this server does: `clientBeatInterval` (the interval a beat answer
//! hands to instances without their own `preserved.heart.beat.interval`), `lightBeatEnabled`
//! (whether v1 clients may leave the `beat` JSON out), and the health-check entries
//! `healthCheckEnabled`, `checkTimes` and the `tcp`/`http`/`mysqlHealthParams` (read-only
//! here, as their defaults). The others are stored and shown so that tools reading them see
//! what they set.

use std::sync::RwLock;
use std::time::Duration;

use nacos_core::validate::ParamError;
use serde_json::{Map, Value, json};

use crate::foundation::settings::NamingSettings;

const CLIENT_BEAT_INTERVAL: &str = "clientBeatInterval";
const LIGHT_BEAT_ENABLED: &str = "lightBeatEnabled";
const HEALTH_CHECK_ENABLED: &str = "healthCheckEnabled";
const CHECK_TIMES: &str = "checkTimes";

/// One type's `*HealthParams`: the interval bounds (ms) and the weight of the old interval
/// when a response time moves it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthParams {
    pub max: u64,
    pub min: u64,
    pub factor: f64,
}

/// Entries a PUT may not change: identity, derived or structured values (Nacos takes the
/// structured ones in formats of their own, which no client uses).
const FIXED_ENTRIES: &[&str] = &[
    "name",
    "checksum",
    "enableAuthentication",
    "adWeightMap",
    "limitedUrlMap",
    "incrementalList",
    "healthCheckWhiteList",
    "httpHealthParams",
    "tcpHealthParams",
    "mysqlHealthParams",
];

#[derive(Debug)]
pub struct Switches {
    domain: RwLock<Map<String, Value>>,
}

impl Switches {
    /// Nacos's defaults, with the values this server was configured with.
    pub fn new(settings: &NamingSettings) -> Self {
        let beat_ms = u64::try_from(settings.beat_interval.as_millis()).unwrap_or(u64::MAX);
        let defaults = json!({
            "name": "00-00---000-NACOS_SWITCH_DOMAIN-000---00-00",
            "adWeightMap": {},
            "defaultPushCacheMillis": settings.push_cache_millis,
            CLIENT_BEAT_INTERVAL: beat_ms,
            "defaultCacheMillis": 3000,
            "distroThreshold": 0.7,
            HEALTH_CHECK_ENABLED: true,
            "autoChangeHealthCheckEnabled": true,
            "distroEnabled": true,
            "enableStandalone": true,
            "pushEnabled": true,
            CHECK_TIMES: 3,
            "httpHealthParams": { "max": 5000, "min": 500, "factor": 0.85 },
            "tcpHealthParams": { "max": 3000, "min": 2000, "factor": 0.65 },
            "mysqlHealthParams": { "max": 5000, "min": 1000, "factor": 0.75 },
            "incrementalList": [],
            "serverStatusSynchronizationPeriodMillis": 2000,
            "serviceStatusSynchronizationPeriodMillis": 5000,
            "disableAddIP": false,
            "sendBeatOnly": false,
            LIGHT_BEAT_ENABLED: true,
            "limitedUrlMap": {},
            "distroServerExpiredMillis": 10000,
            "pushGoVersion": "0.1.0",
            "pushJavaVersion": "0.1.0",
            "pushPythonVersion": "0.4.3",
            "pushCVersion": "1.0.12",
            "pushCSharpVersion": "0.9.0",
            "enableAuthentication": false,
            "defaultInstanceEphemeral": true,
            "healthCheckWhiteList": [],
            "checksum": null,
        });
        let domain = match defaults {
            Value::Object(domain) => domain,
            _ => Map::new(),
        };
        Self {
            domain: RwLock::new(domain),
        }
    }

    /// The whole domain as Nacos serialises it.
    pub fn snapshot(&self) -> Map<String, Value> {
        self.domain
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn get(&self, entry: &str) -> Option<Value> {
        self.domain
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(entry)
            .cloned()
    }

    /// The interval handed to beating instances that do not name their own.
    pub fn client_beat_interval(&self) -> Duration {
        Duration::from_millis(
            self.get(CLIENT_BEAT_INTERVAL)
                .and_then(|v| v.as_u64())
                .unwrap_or(5000),
        )
    }

    pub fn light_beat_enabled(&self) -> bool {
        self.get(LIGHT_BEAT_ENABLED)
            .and_then(|v| v.as_bool())
            .unwrap_or(true)
    }

    /// `healthCheckEnabled`: whether persistent instances are checked at all.
    pub fn health_check_enabled(&self) -> bool {
        self.get(HEALTH_CHECK_ENABLED)
            .and_then(|v| v.as_bool())
            .unwrap_or(true)
    }

    /// `checkTimes`: results in a row that change an instance's health (at least 1).
    pub fn check_times(&self) -> u32 {
        self.get(CHECK_TIMES)
            .and_then(|v| v.as_u64())
            .map_or(3, |n| u32::try_from(n).unwrap_or(u32::MAX).max(1))
    }

    /// The `*HealthParams` of a checker type (`TCP`, `HTTP`, `MYSQL`); TCP's for others.
    pub fn health_params(&self, kind: &str) -> HealthParams {
        let (entry, default) = match kind {
            "HTTP" => ("httpHealthParams", (5000, 500, 0.85)),
            "MYSQL" => ("mysqlHealthParams", (5000, 1000, 0.75)),
            _ => ("tcpHealthParams", (3000, 2000, 0.65)),
        };
        let value = self.get(entry).unwrap_or(Value::Null);
        HealthParams {
            max: value["max"].as_u64().unwrap_or(default.0),
            min: value["min"].as_u64().unwrap_or(default.1),
            factor: value["factor"]
                .as_f64()
                .filter(|f| (0.0..=1.0).contains(f))
                .unwrap_or(default.2),
        }
    }

    /// Set one entry from its text form. The entry must exist and the value must have the
    /// entry's type (whole numbers for counts and milliseconds, `true`/`false` for flags);
    /// anything else is a parameter error naming `entry` or `value`.
    pub fn update(&self, entry: &str, value: &str) -> Result<(), ParamError> {
        let value = value.trim();
        let mut domain = self
            .domain
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(current) = domain.get(entry) else {
            return Err(ParamError::new(
                "entry",
                format!("update entry not found: {entry}"),
            ));
        };
        if FIXED_ENTRIES.contains(&entry) {
            return Err(ParamError::new(
                "entry",
                format!("switch entry '{entry}' cannot be updated"),
            ));
        }
        let bad = |kind: &str| {
            ParamError::new(
                "value",
                format!("invalid value '{value}' for switch {entry}: it takes {kind}"),
            )
        };
        let new = match current {
            Value::Bool(_) => Value::Bool(value.parse::<bool>().map_err(|_| bad("true or false"))?),
            Value::Number(n) if n.is_f64() => {
                let v = value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .ok_or_else(|| bad("a positive number"))?;
                json!(v)
            }
            Value::Number(_) => {
                let v = value
                    .parse::<u64>()
                    .ok()
                    .filter(|v| entry != CLIENT_BEAT_INTERVAL || *v > 0)
                    .ok_or_else(|| bad("a positive whole number"))?;
                json!(v)
            }
            _ => Value::String(value.to_string()),
        };
        domain.insert(entry.to_string(), new);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn switches() -> Switches {
        Switches::new(&NamingSettings {
            check_interval: Duration::from_secs(1),
            beat_interval: Duration::from_secs(5),
            beat_timeout: Duration::from_secs(15),
            delete_timeout: Duration::from_secs(30),
            expire_instance: true,
            push_cache_millis: 10000,
            udp_ack_timeout: Duration::from_secs(1),
        })
    }

    #[test]
    fn typed_updates() {
        let s = switches();
        assert_eq!(s.client_beat_interval(), Duration::from_secs(5));
        s.update("clientBeatInterval", "7000").expect("millis");
        assert_eq!(s.client_beat_interval(), Duration::from_secs(7));
        s.update("lightBeatEnabled", "false").expect("flag");
        assert!(!s.light_beat_enabled());
        s.update("distroThreshold", "0.5").expect("ratio");
        s.update("pushJavaVersion", "1.2.0").expect("text");
        assert_eq!(s.snapshot()["pushJavaVersion"], "1.2.0");

        assert_eq!(s.update("nope", "1").expect_err("unknown").param, "entry");
        assert_eq!(s.update("name", "x").expect_err("fixed").param, "entry");
        assert_eq!(
            s.update("clientBeatInterval", "soon")
                .expect_err("nan")
                .param,
            "value"
        );
        assert_eq!(
            s.update("clientBeatInterval", "0").expect_err("zero").param,
            "value"
        );
        assert_eq!(
            s.update("pushEnabled", "yes").expect_err("flag").param,
            "value"
        );
        assert_eq!(
            s.update("distroThreshold", "-1").expect_err("neg").param,
            "value"
        );
        assert_eq!(s.client_beat_interval(), Duration::from_secs(7));
    }
}
