//! Environment variables of Nacos's official container image (`nacos/nacos-server`), mapped
//! onto the properties they stand for, so a compose file or Kubernetes manifest written for
//! that image starts this server unchanged.
//!
//! Precedence, lowest first: built-in defaults, `application.properties`, the environment,
//! `-D` on the command line (and `-m` / `-p` over `MODE` / `EMBEDDED_STORAGE`). The environment
//! beats the file because in a container the file is baked into the image while the
//! environment is what each deployment sets; the command line stays on top as the most
//! explicit, per-invocation choice.
//!
//! [`overlay`] is a pure function of the `(name, value)` pairs it is given, so tests never
//! depend on the test process's own environment. A variable set to an empty value counts as
//! unset, as an empty property does.

use std::collections::BTreeMap;

use crate::foundation::cli::{Cli, Mode};
use crate::foundation::error::StartError;
use crate::foundation::settings::{Properties, Settings};

/// How a variable's value is checked before it becomes a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Any text without surrounding blanks.
    Text,
    /// Like text, but never shown: not in errors, not in logs.
    Secret,
    /// `true` or `false` (any case).
    Bool,
    /// A TCP port 1..65535.
    Port,
    /// A whole number of at least 1.
    Count,
}

/// A variable that sets one property.
struct Mapping {
    var: &'static str,
    key: &'static str,
    kind: Kind,
}

const fn map(var: &'static str, key: &'static str, kind: Kind) -> Mapping {
    Mapping { var, key, kind }
}

/// Variables that map one to one onto a property. The others (`MODE`, `NACOS_SERVERS`,
/// `PREFER_HOST_MODE`, `SPRING_DATASOURCE_PLATFORM`, `MYSQL_SERVICE_*`, `EMBEDDED_STORAGE`,
/// `JAVA_OPT_EXT`) need more than a copy and are handled in [`overlay`].
const TABLE: &[Mapping] = &[
    map("NACOS_APPLICATION_PORT", "server.port", Kind::Port),
    // Older images and many compose files use this name for the same thing.
    map("NACOS_SERVER_PORT", "server.port", Kind::Port),
    map("NACOS_SERVER_IP", "nacos.inetutils.ip-address", Kind::Text),
    map(
        "SERVER_SERVLET_CONTEXTPATH",
        "server.servlet.contextPath",
        Kind::Text,
    ),
    map("NACOS_AUTH_ENABLE", "nacos.core.auth.enabled", Kind::Bool),
    map(
        "NACOS_AUTH_SYSTEM_TYPE",
        "nacos.core.auth.system.type",
        Kind::Text,
    ),
    map(
        "NACOS_AUTH_TOKEN",
        "nacos.core.auth.plugin.nacos.token.secret.key",
        Kind::Secret,
    ),
    map(
        "NACOS_AUTH_TOKEN_EXPIRE_SECONDS",
        "nacos.core.auth.plugin.nacos.token.expire.seconds",
        Kind::Count,
    ),
    map(
        "NACOS_AUTH_IDENTITY_KEY",
        "nacos.core.auth.server.identity.key",
        Kind::Text,
    ),
    map(
        "NACOS_AUTH_IDENTITY_VALUE",
        "nacos.core.auth.server.identity.value",
        Kind::Secret,
    ),
    map(
        "NACOS_AUTH_CACHE_ENABLE",
        "nacos.core.auth.caching.enabled",
        Kind::Bool,
    ),
    map("MYSQL_DATABASE_NUM", "db.num", Kind::Count),
    map("MYSQL_SERVICE_USER", "db.user.0", Kind::Text),
    map("MYSQL_SERVICE_PASSWORD", "db.password.0", Kind::Secret),
    // The PostgreSQL variant of the image (nacos-postgresql plugin) uses these.
    map("PGSQL_URL", "db.url.0", Kind::Text),
    map("PGSQL_USERNAME", "db.user.0", Kind::Text),
    map("PGSQL_PASSWORD", "db.password.0", Kind::Secret),
];

/// Variables the Java image reads that mean nothing to this server: JVM sizing and debugging,
/// Tomcat's access log, the time zone of the image, network interface selection, and the
/// function mode (both modules always run here). Accepted so existing manifests start, and
/// named once in the start-up log.
const IGNORED: &[&str] = &[
    "JVM_XMS",
    "JVM_XMX",
    "JVM_XMN",
    "JVM_MS",
    "JVM_MMS",
    "NACOS_DEBUG",
    "TOMCAT_ACCESSLOG_ENABLED",
    "TIME_ZONE",
    "FUNCTION_MODE",
    "USE_ONLY_SITE_INTERFACES",
    "PREFERRED_NETWORKS",
    "IGNORED_INTERFACES",
    "NACOS_SECURITY_IGNORE_URLS",
];

/// Every variable [`overlay`] reads, so callers can pick just these out of the environment.
pub fn known_variables() -> impl Iterator<Item = &'static str> {
    TABLE
        .iter()
        .map(|m| m.var)
        .chain(IGNORED.iter().copied())
        .chain([
            "MODE",
            "EMBEDDED_STORAGE",
            "NACOS_SERVERS",
            "MEMBER_LIST",
            "PREFER_HOST_MODE",
            "SPRING_DATASOURCE_PLATFORM",
            "MYSQL_SERVICE_HOST",
            "MYSQL_SERVICE_PORT",
            "MYSQL_SERVICE_DB_NAME",
            "MYSQL_SERVICE_DB_PARAM",
            "NACOS_AUTH_USER_AGENT_AUTH_WHITE_ENABLE",
            "JAVA_OPT_EXT",
        ])
}

/// The image's default JDBC parameters when `MYSQL_SERVICE_DB_PARAM` is not set.
const DEFAULT_MYSQL_PARAMS: &str =
    "characterEncoding=utf8&connectTimeout=1000&socketTimeout=3000&autoReconnect=true&useSSL=false";

/// A variable whose value cannot be used; the message names the variable, and shows the value
/// only when it is not a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad environment variable {var}: {message}")]
pub struct EnvError {
    pub var: &'static str,
    pub message: String,
}

fn bad(var: &'static str, message: impl Into<String>) -> EnvError {
    EnvError {
        var,
        message: message.into(),
    }
}

/// What the environment contributes to the settings.
#[derive(Debug, Default)]
pub struct EnvOverlay {
    /// Properties from the environment, laid over `application.properties`.
    pub properties: Properties,
    /// `MODE`, used when the command line has no `-m`.
    pub mode: Option<Mode>,
    /// `EMBEDDED_STORAGE=embedded`, as `-p embedded`.
    pub embedded_storage: bool,
    /// `(variable, property)` of everything applied: for the start-up log and to name the
    /// variable behind a property a later check refuses. Never values.
    pub applied: Vec<(String, String)>,
    /// Set variables of the Java image that have no meaning here.
    pub ignored: Vec<&'static str>,
    /// Things the operator should know (a setting this server does not support).
    pub warnings: Vec<String>,
}

impl EnvOverlay {
    /// The variable that set `key`, if the environment set it.
    pub fn variable_of(&self, key: &str) -> Option<&str> {
        self.applied
            .iter()
            .find(|(_, k)| k == key)
            .map(|(v, _)| v.as_str())
    }

    /// The settings for `cli` with this environment laid under it: `-m` over `MODE`, `-p`
    /// over `EMBEDDED_STORAGE`, `-D` / `-c` over the properties set here.
    pub fn settings(&self, cli: &Cli) -> Result<Settings, StartError> {
        let defines = Self::defines(cli);
        let storage = cli
            .storage
            .clone()
            .or_else(|| self.embedded_storage.then(|| "embedded".to_string()));
        if let Some(storage) = storage.as_deref().filter(|s| *s != "embedded") {
            return Err(StartError::Unsupported(format!(
                "unknown -p value '{storage}': only 'embedded' is accepted"
            )));
        }
        Settings::load(
            cli.mode_or(self.mode),
            storage.as_deref(),
            &self.properties,
            &defines,
        )
        .map_err(|e| self.blame(e.into(), cli))
    }

    /// `-D` pairs and `-c` (as `nacos.member.list`).
    fn defines(cli: &Cli) -> Vec<(String, String)> {
        let mut defines = cli.define_pairs();
        if let Some(list) = &cli.member_list {
            defines.push(("nacos.member.list".to_string(), list.clone()));
        }
        defines
    }

    /// Name the environment variable behind a start error about a property it set (unless
    /// the command line set that property too, and so won): the operator wrote the variable,
    /// not the key.
    pub fn blame(&self, error: StartError, cli: &Cli) -> StartError {
        let defines = Self::defines(cli);
        let message = error.to_string();
        let culprit = self
            .applied
            .iter()
            .filter(|(_, key)| !key.is_empty() && !defines.iter().any(|(k, _)| k == key))
            .find(|(_, key)| message.contains(key.as_str()));
        match culprit {
            Some((var, _)) => {
                StartError::Unsupported(format!("{message} (set by environment variable {var})"))
            }
            None => error,
        }
    }

    /// The start-up log line: which variables set which properties (no values).
    pub fn summary(&self) -> String {
        self.applied
            .iter()
            .map(|(var, key)| {
                if key.is_empty() {
                    var.clone()
                } else {
                    format!("{var}->{key}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn set(
        &mut self,
        var: &'static str,
        key: &str,
        value: String,
        secret: bool,
    ) -> Result<(), EnvError> {
        // Two variables for one property must agree (NACOS_APPLICATION_PORT and
        // NACOS_SERVER_PORT, the MySQL and PostgreSQL user): silently picking one would hide a
        // manifest mistake.
        if let Some(other) = self.variable_of(key).map(str::to_string)
            && self.properties.get(key) != Some(value.trim())
        {
            let shown = if secret {
                String::new()
            } else {
                format!(" ('{value}')")
            };
            return Err(bad(
                var,
                format!("it sets {key}{shown} and so does {other} with another value; set one"),
            ));
        }
        self.properties.set(key, value);
        self.applied.push((var.to_string(), key.to_string()));
        Ok(())
    }
}

/// Map the container image's variables among `vars` onto properties. Unknown variables are
/// left alone; a known one with a value this server cannot use is an error naming it.
pub fn overlay<I, K, V>(vars: I) -> Result<EnvOverlay, EnvError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let known: Vec<&'static str> = known_variables().collect();
    let mut env: BTreeMap<&'static str, String> = BTreeMap::new();
    for (name, value) in vars {
        let value = value.as_ref().trim();
        if value.is_empty() {
            continue;
        }
        if let Some(var) = known.iter().find(|k| **k == name.as_ref()) {
            env.insert(var, value.to_string());
        }
    }
    let mut out = EnvOverlay::default();

    for m in TABLE {
        if let Some(value) = env.get(m.var) {
            let value = check(m.var, value, m.kind)?;
            out.set(m.var, m.key, value, m.kind == Kind::Secret)?;
        }
    }

    if let Some(mode) = env.get("MODE") {
        out.mode = Some(match mode.to_ascii_lowercase().as_str() {
            "standalone" => Mode::Standalone,
            "cluster" => Mode::Cluster,
            _ => {
                return Err(bad(
                    "MODE",
                    format!("'{mode}' (expected standalone or cluster)"),
                ));
            }
        });
        out.applied.push(("MODE".into(), String::new()));
    }
    if let Some(storage) = env.get("EMBEDDED_STORAGE") {
        if !storage.eq_ignore_ascii_case("embedded") {
            return Err(bad(
                "EMBEDDED_STORAGE",
                format!("'{storage}' (expected embedded, or unset)"),
            ));
        }
        out.embedded_storage = true;
        out.applied.push(("EMBEDDED_STORAGE".into(), String::new()));
    }

    members(&env, &mut out)?;
    host_mode(&env, &mut out)?;
    datasource(&env, &mut out)?;
    java_opts(&env, &mut out)?;

    if let Some(v) = env.get("NACOS_AUTH_USER_AGENT_AUTH_WHITE_ENABLE") {
        let on = check("NACOS_AUTH_USER_AGENT_AUTH_WHITE_ENABLE", v, Kind::Bool)? == "true";
        if on {
            out.warnings.push(
                "NACOS_AUTH_USER_AGENT_AUTH_WHITE_ENABLE=true is not supported (a User-Agent \
                 proves nothing): cluster nodes recognise each other by NACOS_AUTH_IDENTITY_KEY \
                 / NACOS_AUTH_IDENTITY_VALUE"
                    .to_string(),
            );
        } else {
            out.ignored.push("NACOS_AUTH_USER_AGENT_AUTH_WHITE_ENABLE");
        }
    }
    out.ignored
        .extend(IGNORED.iter().filter(|v| env.contains_key(*v)).copied());
    Ok(out)
}

fn check(var: &'static str, value: &str, kind: Kind) -> Result<String, EnvError> {
    let shown = || {
        if kind == Kind::Secret {
            String::new()
        } else {
            format!("'{value}' ")
        }
    };
    match kind {
        Kind::Text | Kind::Secret => Ok(value.to_string()),
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            v @ ("true" | "false") => Ok(v.to_string()),
            _ => Err(bad(var, format!("{}(expected true or false)", shown()))),
        },
        Kind::Port => match value.parse::<u16>() {
            Ok(p) if p > 0 => Ok(p.to_string()),
            _ => Err(bad(var, format!("{}(expected a port 1..65535)", shown()))),
        },
        Kind::Count => match value.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n.to_string()),
            _ => Err(bad(
                var,
                format!("{}(expected a whole number of at least 1)", shown()),
            )),
        },
    }
}

/// `NACOS_SERVERS` (the image writes it to `cluster.conf`, one member per blank-separated
/// word) or `MEMBER_LIST` (comma separated): both become `nacos.member.list`. A
/// `conf/cluster.conf` that lists members still wins over it, as in Nacos.
fn members(env: &BTreeMap<&'static str, String>, out: &mut EnvOverlay) -> Result<(), EnvError> {
    let normalise = |raw: &str| {
        raw.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|m| !m.is_empty())
            .collect::<Vec<_>>()
            .join(",")
    };
    match (env.get("NACOS_SERVERS"), env.get("MEMBER_LIST")) {
        (Some(_), Some(_)) => Err(bad(
            "NACOS_SERVERS",
            "MEMBER_LIST is set too; list the members in one of them",
        )),
        (Some(list), None) => out.set("NACOS_SERVERS", "nacos.member.list", normalise(list), false),
        (None, Some(list)) => out.set("MEMBER_LIST", "nacos.member.list", normalise(list), false),
        (None, None) => Ok(()),
    }
}

/// `PREFER_HOST_MODE=hostname`: this node names itself by its host name (the member-list
/// entry that starts with it) rather than by its IP.
fn host_mode(env: &BTreeMap<&'static str, String>, out: &mut EnvOverlay) -> Result<(), EnvError> {
    let Some(mode) = env.get("PREFER_HOST_MODE") else {
        return Ok(());
    };
    let prefer = match mode.to_ascii_lowercase().as_str() {
        "hostname" => "true",
        "ip" => "false",
        _ => {
            return Err(bad(
                "PREFER_HOST_MODE",
                format!("'{mode}' (expected hostname or ip)"),
            ));
        }
    };
    out.set(
        "PREFER_HOST_MODE",
        "nacos.inetutils.prefer-hostname-over-ip",
        prefer.to_string(),
        false,
    )
}

/// `SPRING_DATASOURCE_PLATFORM` and the MySQL address variables, which the image assembles
/// into `db.url.0`.
fn datasource(env: &BTreeMap<&'static str, String>, out: &mut EnvOverlay) -> Result<(), EnvError> {
    let platform = match env.get("SPRING_DATASOURCE_PLATFORM") {
        None => None,
        Some(p) => {
            let p = p.to_ascii_lowercase();
            if p != "mysql" && p != "postgresql" {
                return Err(bad(
                    "SPRING_DATASOURCE_PLATFORM",
                    format!("'{p}' (expected mysql, postgresql, or unset for embedded storage)"),
                ));
            }
            out.set(
                "SPRING_DATASOURCE_PLATFORM",
                "spring.sql.init.platform",
                p.clone(),
                false,
            )?;
            Some(p)
        }
    };
    let Some(host) = env.get("MYSQL_SERVICE_HOST") else {
        for var in [
            "MYSQL_SERVICE_PORT",
            "MYSQL_SERVICE_DB_NAME",
            "MYSQL_SERVICE_DB_PARAM",
        ] {
            if env.contains_key(var) {
                return Err(bad(var, "it needs MYSQL_SERVICE_HOST, which is not set"));
            }
        }
        return Ok(());
    };
    if platform.as_deref() == Some("postgresql") {
        return Err(bad(
            "MYSQL_SERVICE_HOST",
            "SPRING_DATASOURCE_PLATFORM is postgresql; give PGSQL_URL instead",
        ));
    }
    if host.contains(|c: char| c.is_whitespace() || c == '/' || c == '?') {
        return Err(bad(
            "MYSQL_SERVICE_HOST",
            format!("'{host}' (expected a host name or IP address)"),
        ));
    }
    let port = match env.get("MYSQL_SERVICE_PORT") {
        Some(p) => check("MYSQL_SERVICE_PORT", p, Kind::Port)?,
        None => "3306".to_string(),
    };
    let db = env.get("MYSQL_SERVICE_DB_NAME").ok_or_else(|| {
        bad(
            "MYSQL_SERVICE_DB_NAME",
            "not set, but MYSQL_SERVICE_HOST is: name the database",
        )
    })?;
    let params = env
        .get("MYSQL_SERVICE_DB_PARAM")
        .map_or(DEFAULT_MYSQL_PARAMS, String::as_str);
    // An IPv6 literal needs brackets in a URL.
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    out.set(
        "MYSQL_SERVICE_HOST",
        "db.url.0",
        format!("jdbc:mysql://{host}:{port}/{db}?{params}"),
        false,
    )
}

/// `JAVA_OPT_EXT`: its `-Dkey=value` words are properties (at the environment's precedence);
/// the JVM options around them are ignored.
fn java_opts(env: &BTreeMap<&'static str, String>, out: &mut EnvOverlay) -> Result<(), EnvError> {
    let Some(opts) = env.get("JAVA_OPT_EXT") else {
        return Ok(());
    };
    let mut other = false;
    for word in opts.split_whitespace() {
        match word.strip_prefix("-D") {
            Some(define) => {
                let (key, value) = define.split_once('=').unwrap_or((define, "true"));
                if key.is_empty() {
                    return Err(bad("JAVA_OPT_EXT", "a -D without a property name"));
                }
                let secret = crate::foundation::settings::is_secret_key(key);
                out.set("JAVA_OPT_EXT", key, value.to_string(), secret)?;
            }
            None => other = true,
        }
    }
    if other {
        out.ignored.push("JAVA_OPT_EXT (JVM options)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<EnvOverlay, EnvError> {
        overlay(pairs.iter().copied())
    }

    #[test]
    fn the_image_variables_become_properties() {
        let out = env(&[
            ("MODE", "cluster"),
            (
                "NACOS_SERVERS",
                "nacos-0.nacos-headless:8848  nacos-1.nacos-headless:8848,nacos-2.nacos-headless",
            ),
            ("NACOS_APPLICATION_PORT", "8849"),
            ("NACOS_SERVER_IP", "10.0.0.7"),
            ("PREFER_HOST_MODE", "hostname"),
            ("SERVER_SERVLET_CONTEXTPATH", "/registry"),
            ("NACOS_AUTH_ENABLE", "TRUE"),
            ("NACOS_AUTH_TOKEN", "c2VjcmV0"),
            ("NACOS_AUTH_TOKEN_EXPIRE_SECONDS", "600"),
            ("NACOS_AUTH_IDENTITY_KEY", "node"),
            ("NACOS_AUTH_IDENTITY_VALUE", "s3cr3t"),
            ("NACOS_AUTH_CACHE_ENABLE", "false"),
            ("EMBEDDED_STORAGE", "embedded"),
            ("PATH", "/usr/bin"),
        ])
        .expect("valid");
        let p = &out.properties;
        assert_eq!(out.mode, Some(Mode::Cluster));
        assert!(out.embedded_storage);
        assert_eq!(
            p.get("nacos.member.list"),
            Some("nacos-0.nacos-headless:8848,nacos-1.nacos-headless:8848,nacos-2.nacos-headless")
        );
        assert_eq!(p.get("server.port"), Some("8849"));
        assert_eq!(p.get("nacos.inetutils.ip-address"), Some("10.0.0.7"));
        assert_eq!(
            p.get("nacos.inetutils.prefer-hostname-over-ip"),
            Some("true")
        );
        assert_eq!(p.get("server.servlet.contextPath"), Some("/registry"));
        assert_eq!(p.get("nacos.core.auth.enabled"), Some("true"));
        assert_eq!(
            p.get("nacos.core.auth.plugin.nacos.token.secret.key"),
            Some("c2VjcmV0")
        );
        assert_eq!(
            p.get("nacos.core.auth.plugin.nacos.token.expire.seconds"),
            Some("600")
        );
        assert_eq!(
            p.get("nacos.core.auth.server.identity.value"),
            Some("s3cr3t")
        );
        assert_eq!(
            out.variable_of("server.port"),
            Some("NACOS_APPLICATION_PORT")
        );
        assert!(p.get("PATH").is_none(), "unknown variables are left alone");
        // The log line names variables and keys, never values.
        let summary = out.summary();
        assert!(
            summary.contains("NACOS_AUTH_TOKEN->nacos.core.auth.plugin.nacos.token.secret.key")
        );
        assert!(
            !summary.contains("c2VjcmV0") && !summary.contains("s3cr3t"),
            "{summary}"
        );
        assert!(
            !format!("{out:?}").contains("s3cr3t"),
            "Debug redacts secrets"
        );
    }

    #[test]
    fn mysql_variables_assemble_the_jdbc_url() {
        let out = env(&[
            ("SPRING_DATASOURCE_PLATFORM", "MySQL"),
            ("MYSQL_SERVICE_HOST", "mysql.db.svc"),
            ("MYSQL_SERVICE_DB_NAME", "nacos_config"),
            ("MYSQL_SERVICE_USER", "nacos"),
            ("MYSQL_SERVICE_PASSWORD", "pw"),
            ("MYSQL_DATABASE_NUM", "1"),
        ])
        .expect("valid");
        let p = &out.properties;
        assert_eq!(p.get("spring.sql.init.platform"), Some("mysql"));
        assert_eq!(
            p.get("db.url.0"),
            Some(
                "jdbc:mysql://mysql.db.svc:3306/nacos_config?characterEncoding=utf8&connectTimeout=1000&socketTimeout=3000&autoReconnect=true&useSSL=false"
            )
        );
        assert_eq!(p.get("db.user.0"), Some("nacos"));
        assert_eq!(p.get("db.password.0"), Some("pw"));
        assert_eq!(p.get("db.num"), Some("1"));

        let out = env(&[
            ("MYSQL_SERVICE_HOST", "fd00::5"),
            ("MYSQL_SERVICE_PORT", "3307"),
            ("MYSQL_SERVICE_DB_NAME", "n"),
            ("MYSQL_SERVICE_DB_PARAM", "useSSL=true"),
        ])
        .expect("valid");
        assert_eq!(
            out.properties.get("db.url.0"),
            Some("jdbc:mysql://[fd00::5]:3307/n?useSSL=true")
        );
    }

    #[test]
    fn bad_values_name_the_variable_and_hide_secrets() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("MODE", "single")], "MODE"),
            (
                &[("NACOS_APPLICATION_PORT", "88480")],
                "NACOS_APPLICATION_PORT",
            ),
            (&[("NACOS_SERVER_PORT", "http")], "NACOS_SERVER_PORT"),
            (&[("NACOS_AUTH_ENABLE", "yes")], "NACOS_AUTH_ENABLE"),
            (&[("PREFER_HOST_MODE", "dns")], "PREFER_HOST_MODE"),
            (&[("EMBEDDED_STORAGE", "raft")], "EMBEDDED_STORAGE"),
            (
                &[("SPRING_DATASOURCE_PLATFORM", "derby")],
                "SPRING_DATASOURCE_PLATFORM",
            ),
            (&[("MYSQL_SERVICE_HOST", "db")], "MYSQL_SERVICE_DB_NAME"),
            (
                &[("MYSQL_SERVICE_DB_NAME", "nacos")],
                "MYSQL_SERVICE_DB_NAME",
            ),
            (&[("MYSQL_DATABASE_NUM", "0")], "MYSQL_DATABASE_NUM"),
            (
                &[("NACOS_AUTH_TOKEN_EXPIRE_SECONDS", "-1")],
                "NACOS_AUTH_TOKEN_EXPIRE_SECONDS",
            ),
            (
                &[("NACOS_SERVERS", "a:8848"), ("MEMBER_LIST", "b:8848")],
                "NACOS_SERVERS",
            ),
            (
                &[
                    ("SPRING_DATASOURCE_PLATFORM", "postgresql"),
                    ("MYSQL_SERVICE_HOST", "db"),
                    ("MYSQL_SERVICE_DB_NAME", "n"),
                ],
                "MYSQL_SERVICE_HOST",
            ),
        ];
        for (vars, named) in cases {
            let err = env(vars).expect_err("refused");
            assert_eq!(err.var, *named, "{vars:?}: {err}");
            assert!(err.to_string().contains(named), "{err}");
        }
        // Two variables disagreeing on one property: both named, a secret value never shown.
        let err = env(&[
            ("NACOS_APPLICATION_PORT", "8848"),
            ("NACOS_SERVER_PORT", "8849"),
        ])
        .expect_err("conflict");
        assert!(err.to_string().contains("NACOS_APPLICATION_PORT"), "{err}");
        let err = env(&[
            ("MYSQL_SERVICE_PASSWORD", "first-secret"),
            ("PGSQL_PASSWORD", "second-secret"),
        ])
        .expect_err("conflict");
        assert!(!err.to_string().contains("secret"), "{err}");
        // Agreeing aliases are fine.
        env(&[
            ("NACOS_APPLICATION_PORT", "8848"),
            ("NACOS_SERVER_PORT", "8848"),
        ])
        .expect("same value");
    }

    #[test]
    fn empty_means_unset_and_jvm_variables_are_ignored() {
        let out = env(&[
            ("SPRING_DATASOURCE_PLATFORM", ""),
            ("NACOS_AUTH_ENABLE", "  "),
            ("JVM_XMS", "1g"),
            ("JVM_XMX", "1g"),
            ("TOMCAT_ACCESSLOG_ENABLED", "false"),
            ("NACOS_DEBUG", "n"),
            (
                "JAVA_OPT_EXT",
                "-Xss512k -Dnacos.naming.expireInstance=false -Dflag",
            ),
        ])
        .expect("valid");
        assert!(out.properties.get("spring.sql.init.platform").is_none());
        assert!(out.properties.get("nacos.core.auth.enabled").is_none());
        assert_eq!(
            out.properties.get("nacos.naming.expireInstance"),
            Some("false")
        );
        assert_eq!(out.properties.get("flag"), Some("true"));
        for var in [
            "JVM_XMS",
            "JVM_XMX",
            "TOMCAT_ACCESSLOG_ENABLED",
            "NACOS_DEBUG",
        ] {
            assert!(out.ignored.contains(&var), "{var} in {:?}", out.ignored);
        }
        assert!(out.ignored.iter().any(|v| v.starts_with("JAVA_OPT_EXT")));
        assert_eq!(out.mode, None);
        assert!(!out.embedded_storage);
        let none = env(&[]).expect("nothing set");
        assert!(none.applied.is_empty() && none.ignored.is_empty());
    }
}
