//! Command line, shaped like Nacos's `startup.sh` so operator scripts carry over.

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
    #[arg(short = 'm', long = "mode", value_enum)]
    pub mode: Option<Mode>,

    /// `-p embedded`: replicate embedded storage between cluster nodes.
    #[arg(short = 'p', long = "storage")]
    pub storage: Option<String>,

    /// `-f config|naming`: function mode (accepted; both modules always run).
    #[arg(short = 'f', long = "function-mode")]
    pub function_mode: Option<String>,

    /// `-c ip:port,...`: cluster member list (sets `nacos.member.list`).
    #[arg(short = 'c', long = "member-list")]
    pub member_list: Option<String>,

    /// `-D key=value` overrides a property, like Java's `-Dserver.port=8849`. Repeatable.
    #[arg(short = 'D', value_name = "KEY=VALUE", action = clap::ArgAction::Append)]
    pub defines: Vec<String>,
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
}
