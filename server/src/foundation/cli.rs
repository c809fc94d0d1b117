//! Command line, shaped like Nacos's `startup.sh` so operator scripts carry over, plus the
//! operator tools ([`Tool`]: backup, restore, migrate) as subcommands. The Nacos-style flags
//! are global: `nacos-server backup --to f -Dnacos.home=/opt/nacos` reads the same store the
//! server would.

use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Standalone,
    Cluster,
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "nacos-server",
    version,
    about = "Nacos-compatible registry and config center"
)]
pub struct Cli {
    /// Run mode, as `startup.sh -m`. Without it the `MODE` environment variable decides, and
    /// without that cluster (Nacos's default).
    #[arg(short = 'm', long = "mode", value_enum, global = true)]
    pub mode: Option<Mode>,

    /// `-p embedded`: replicate embedded storage between cluster nodes.
    #[arg(short = 'p', long = "storage", global = true)]
    pub storage: Option<String>,

    /// `-f config|naming`: function mode (accepted; both modules always run).
    #[arg(short = 'f', long = "function-mode", global = true)]
    pub function_mode: Option<String>,

    /// `-c ip:port,...`: cluster member list (sets `nacos.member.list`).
    #[arg(short = 'c', long = "member-list", global = true)]
    pub member_list: Option<String>,

    /// `-D key=value` overrides a property, like Java's `-Dserver.port=8849`. Repeatable.
    #[arg(
        short = 'D',
        value_name = "KEY=VALUE",
        action = clap::ArgAction::Append,
        global = true
    )]
    pub defines: Vec<String>,

    /// An operator tool instead of the server.
    #[command(subcommand)]
    pub tool: Option<Tool>,
}

/// Whole-store backup, restore and migration between the embedded, MySQL and PostgreSQL
/// backends. Each run ends with a verification (count and MD5 per table on both sides) and
/// exits non-zero when they differ.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Tool {
    /// Write the whole store the properties select (`-D nacos.home=…`,
    /// `conf/application.properties`) to a dump file; with `--server`, take it online from a
    /// running server instead.
    Backup {
        /// The dump file to write (gzip'd JSON lines).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Load a dump file into the store the properties select (an embedded server must be
    /// stopped), or with `--server` into a running server: in an embedded cluster that is
    /// the way in, each batch one Raft entry.
    Restore {
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Restore into a store that already holds data: each record replaces the row with its
        /// id or key, other rows stay.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Copy one store into another, each named by a properties file (embedded, MySQL or
    /// PostgreSQL, any direction).
    Migrate {
        /// Properties of the source (`spring.sql.init.platform`, `db.*`, or `nacos.home`).
        #[arg(long, value_name = "PROPERTIES")]
        from: PathBuf,
        /// Properties of the target.
        #[arg(long, value_name = "PROPERTIES")]
        to: PathBuf,
        /// Migrate into a store that already holds data (records replace rows with their keys).
        #[arg(long)]
        force: bool,
    },
}

/// A running server to talk to instead of opening storage.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Remote {
    /// `http://host:port[/context-path]` of a running server (context path `/nacos` unless
    /// given).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// An admin user of that server.
    #[arg(long, default_value = "nacos")]
    pub username: String,
    /// Its password; the `NACOS_PASSWORD` environment variable when not given.
    #[arg(long)]
    pub password: Option<String>,
}

impl Cli {
    /// Parse `args` (the program name first), for callers without clap in scope (tests).
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Self::try_parse_from(args)
    }

    /// `-m`, else the environment's `MODE`, else cluster.
    pub fn mode_or(&self, env_mode: Option<Mode>) -> Mode {
        self.mode.or(env_mode).unwrap_or(Mode::Cluster)
    }

    /// The `-D` overrides as pairs; a define without `=` means `key=true`, as for the JVM.
    pub fn define_pairs(&self) -> Vec<(String, String)> {
        self.defines
            .iter()
            .map(|d| match d.split_once('=') {
                Some((k, v)) => (k.trim().to_string(), v.to_string()),
                None => (d.trim().to_string(), "true".to_string()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_startup_sh_flags() {
        let cli = Cli::try_parse_from([
            "nacos-server",
            "-m",
            "standalone",
            "-Dserver.port=8849",
            "-D",
            "nacos.home=/tmp/x",
            "-Dflag",
        ])
        .expect("valid command line");
        assert_eq!(
            cli.mode_or(Some(Mode::Cluster)),
            Mode::Standalone,
            "-m wins"
        );
        assert_eq!(
            cli.define_pairs(),
            vec![
                ("server.port".to_string(), "8849".to_string()),
                ("nacos.home".to_string(), "/tmp/x".to_string()),
                ("flag".to_string(), "true".to_string()),
            ]
        );
        let cluster = Cli::try_parse_from(["nacos-server", "-p", "embedded"]).expect("valid");
        assert_eq!(cluster.mode_or(None), Mode::Cluster);
        assert_eq!(cluster.mode_or(Some(Mode::Standalone)), Mode::Standalone);
        assert_eq!(cluster.storage.as_deref(), Some("embedded"));
        assert!(Cli::try_parse_from(["nacos-server", "-m", "bogus"]).is_err());
    }

    #[test]
    fn tools_take_the_nacos_flags_too() {
        let cli = Cli::try_parse_from([
            "nacos-server",
            "backup",
            "--to",
            "/tmp/b.gz",
            "-Dnacos.home=/opt/n",
            "-m",
            "standalone",
        ])
        .expect("valid command line");
        assert_eq!(
            cli.define_pairs(),
            vec![("nacos.home".to_string(), "/opt/n".to_string())]
        );
        assert_eq!(cli.mode, Some(Mode::Standalone));
        match cli.tool {
            Some(Tool::Backup { to, remote }) => {
                assert_eq!(to, PathBuf::from("/tmp/b.gz"));
                assert_eq!(remote.server, None);
                assert_eq!(remote.username, "nacos");
            }
            other => panic!("not a backup: {other:?}"),
        }
        let migrate = Cli::try_parse_from([
            "nacos-server",
            "migrate",
            "--from",
            "a",
            "--to",
            "b",
            "--force",
        ])
        .expect("valid");
        assert!(matches!(
            migrate.tool,
            Some(Tool::Migrate { force: true, .. })
        ));
        assert!(
            Cli::try_parse_from(["nacos-server", "restore"]).is_err(),
            "--from is required"
        );
        assert!(
            Cli::try_parse_from(["nacos-server"])
                .expect("server")
                .tool
                .is_none()
        );
    }
}
