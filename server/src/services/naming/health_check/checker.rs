//! A cluster's `healthChecker`: Nacos's `AbstractHealthChecker` JSON (`{"type":"TCP"}`,
//! `{"type":"HTTP","path":…,"headers":…,"expectedResponseCode":…}`,
//! `{"type":"MYSQL","user":…,"pwd":…,"cmd":…}`, `{"type":"NONE"}`), checked when written and
//! read back from what is stored.

use nacos_core::ClusterMeta;
use nacos_core::validate::ParamError;
use serde_json::{Map, Value, json};

/// The parameter that carries the checker JSON on every edge.
pub const PARAM: &str = "healthChecker";

/// Nacos's `Http.headers` separator between `name:value` pairs.
const HEADER_SEPARATOR: char = '|';

/// The port Nacos's `ClusterMetadata` checks when it is not told to use the instance's.
pub const DEFAULT_CHECK_PORT: u16 = 80;

/// What to run against each instance of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthChecker {
    Tcp,
    Http {
        path: String,
        /// Parsed from Nacos's `name:value|name:value`; malformed pairs are skipped, as Nacos does.
        headers: Vec<(String, String)>,
        expected_code: u16,
    },
    Mysql {
        user: Option<String>,
        pwd: Option<String>,
        cmd: Option<String>,
    },
    None,
}

impl HealthChecker {
    /// Nacos's type name.
    pub fn kind(&self) -> &'static str {
        match self {
            HealthChecker::Tcp => "TCP",
            HealthChecker::Http { .. } => "HTTP",
            HealthChecker::Mysql { .. } => "MYSQL",
            HealthChecker::None => "NONE",
        }
    }

    /// The checker of a cluster as stored. No settings, or nothing stored: Nacos's default
    /// TCP. Stored text that is not a JSON object but a bare type name is that type with its
    /// defaults; an unknown type checks nothing (Jackson's `defaultImpl` is `None`); text that
    /// is neither falls back to TCP, the default of a cluster without a checker.
    pub fn of_cluster(cluster: Option<&ClusterMeta>) -> Self {
        let Some(raw) = cluster
            .map(|c| c.health_checker.trim())
            .filter(|s| !s.is_empty())
        else {
            return HealthChecker::Tcp;
        };
        match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(map)) => Self::from_object(&map).unwrap_or(HealthChecker::None),
            _ => match raw {
                "HTTP" | "MYSQL" | "NONE" | "TCP" => {
                    Self::from_object(&Map::from_iter([("type".to_string(), json!(raw))]))
                        .unwrap_or(HealthChecker::Tcp)
                }
                _ => HealthChecker::Tcp,
            },
        }
    }

    /// Parse a checker written by a client; every error names [`PARAM`].
    pub fn parse_param(raw: &str) -> Result<(Self, Value), ParamError> {
        let map = match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(ParamError::new(
                    PARAM,
                    "healthChecker must be a JSON object with a \"type\"",
                ));
            }
        };
        let checker = Self::from_object(&map)?;
        if matches!(checker, HealthChecker::Mysql { .. }) && !cfg!(feature = "mysql") {
            return Err(ParamError::new(
                PARAM,
                "the MYSQL health checker needs a server built with the `mysql` feature",
            ));
        }
        Ok((checker, Value::Object(map)))
    }

    fn from_object(map: &Map<String, Value>) -> Result<Self, ParamError> {
        let text = |field: &str| -> Result<Option<String>, ParamError> {
            match map.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ParamError::new(
                    PARAM,
                    format!("healthChecker field '{field}' must be a string"),
                )),
            }
        };
        match map.get("type").and_then(Value::as_str).unwrap_or("") {
            "TCP" => Ok(HealthChecker::Tcp),
            "NONE" => Ok(HealthChecker::None),
            "HTTP" => {
                let expected_code = match map.get("expectedResponseCode") {
                    None | Some(Value::Null) => 200,
                    Some(v) => v
                        .as_u64()
                        .and_then(|c| u16::try_from(c).ok())
                        .filter(|c| (100..=599).contains(c))
                        .ok_or_else(|| {
                            ParamError::new(
                                PARAM,
                                "healthChecker expectedResponseCode must be an HTTP status (100-599)",
                            )
                        })?,
                };
                let path = text("path")?.unwrap_or_default();
                if path.chars().any(|c| c.is_control() || c == ' ') {
                    return Err(ParamError::new(
                        PARAM,
                        "healthChecker path must not contain spaces or control characters",
                    ));
                }
                let headers = parse_headers(&text("headers")?.unwrap_or_default())?;
                Ok(HealthChecker::Http {
                    path,
                    headers,
                    expected_code,
                })
            }
            "MYSQL" => Ok(HealthChecker::Mysql {
                user: text("user")?,
                pwd: text("pwd")?,
                cmd: text("cmd")?,
            }),
            other => Err(ParamError::new(
                PARAM,
                format!("unknown healthChecker type '{other}': TCP, HTTP, MYSQL or NONE"),
            )),
        }
    }
}

/// `name:value|name:value` as Nacos's `Http.getCustomHeaders` reads it: pairs that do not
/// split into exactly two parts are skipped. A name or value that could not be sent as an
/// HTTP header (control characters) is refused instead of being sent broken.
fn parse_headers(raw: &str) -> Result<Vec<(String, String)>, ParamError> {
    let mut out = Vec::new();
    for pair in raw.split(HEADER_SEPARATOR) {
        let parts: Vec<&str> = pair.split(':').collect();
        let [name, value] = parts[..] else { continue };
        let (name, value) = (name.trim(), value.trim());
        let token = |c: char| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c);
        if name.is_empty() || !name.chars().all(token) || value.chars().any(char::is_control) {
            return Err(ParamError::new(
                PARAM,
                format!("healthChecker header '{pair}' is not a valid HTTP header"),
            ));
        }
        out.push((name.to_string(), value.to_string()));
    }
    Ok(out)
}

/// `GET /v1/ns/health/checkers`: each type with its default fields, as Nacos lists them.
pub fn defaults() -> Value {
    json!({
        "TCP": {"type": "TCP"},
        "HTTP": {"type": "HTTP", "path": "", "headers": "", "expectedResponseCode": 200},
        "MYSQL": {"type": "MYSQL", "user": null, "pwd": null, "cmd": null},
        "NONE": {"type": "NONE"},
    })
}

/// The port a check connects to: the instance's when the cluster says so (or names no port of
/// its own), else the cluster's `checkPort`, as the console shows it.
pub fn check_port(cluster: Option<&ClusterMeta>, instance_port: u16) -> u16 {
    match cluster {
        None => instance_port,
        Some(c) if c.use_instance_port || c.check_port == 0 => instance_port,
        Some(c) => c.check_port,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(raw: &str) -> HealthChecker {
        HealthChecker::of_cluster(Some(&ClusterMeta {
            health_checker: raw.to_string(),
            ..ClusterMeta::default()
        }))
    }

    #[test]
    fn stored_forms_and_defaults() {
        assert_eq!(HealthChecker::of_cluster(None), HealthChecker::Tcp);
        assert_eq!(stored(""), HealthChecker::Tcp);
        assert_eq!(stored("not json"), HealthChecker::Tcp);
        assert_eq!(stored("NONE"), HealthChecker::None);
        assert_eq!(stored(r#"{"type":"POSTGRESQL"}"#), HealthChecker::None);
        assert_eq!(
            stored(r#"{"type":"HTTP","path":"/ok","headers":"A:1|bad|B : 2"}"#),
            HealthChecker::Http {
                path: "/ok".into(),
                headers: vec![("A".into(), "1".into()), ("B".into(), "2".into())],
                expected_code: 200,
            }
        );
    }

    #[test]
    fn written_checkers_are_validated() {
        for bad in [
            "[]",
            "{}",
            r#"{"type":"tcp"}"#,
            r#"{"type":"HTTP","expectedResponseCode":"x"}"#,
            r#"{"type":"HTTP","expectedResponseCode":99}"#,
            r#"{"type":"HTTP","path":"/a b"}"#,
            r#"{"type":"HTTP","headers":"X Y:1"}"#,
            r#"{"type":"MYSQL","user":1}"#,
        ] {
            let e = HealthChecker::parse_param(bad).expect_err(bad);
            assert_eq!(e.param, PARAM, "{bad}");
        }
        let (checker, _) =
            HealthChecker::parse_param(r#"{"type":"MYSQL","user":"u","pwd":"p"}"#).expect("ok");
        assert_eq!(checker.kind(), "MYSQL");
    }

    #[test]
    fn check_port_rules() {
        let mut c = ClusterMeta {
            check_port: 9000,
            use_instance_port: false,
            ..ClusterMeta::default()
        };
        assert_eq!(check_port(Some(&c), 1), 9000);
        c.use_instance_port = true;
        assert_eq!(check_port(Some(&c), 1), 1);
        assert_eq!(check_port(None, 1), 1);
    }
}
