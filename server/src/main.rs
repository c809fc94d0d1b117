//! `nacos-server`: parse the command line, load settings, open storage, serve until a signal.

use std::process::ExitCode;

use clap::Parser;
use nacos_server::cli::{Cli, Tool};
use nacos_server::edges::tools::{self, ConsoleProgress};
use nacos_server::foundation::env::{self, EnvOverlay};
use nacos_server::{App, Listeners, StartError};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nacos-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(tool) = cli.tool.clone() {
        return runtime.block_on(run_tool(&tool, &cli));
    }
    match runtime.block_on(serve(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("nacos-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NACOS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The container image's variables from this process's environment. A known variable whose
/// value is not Unicode is refused by name rather than skipped.
fn read_environment() -> Result<EnvOverlay, StartError> {
    let mut vars = Vec::new();
    for name in env::known_variables() {
        match std::env::var(name) {
            Ok(value) => vars.push((name, value)),
            Err(std::env::VarError::NotPresent) => {}
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(StartError::Unsupported(format!(
                    "bad environment variable {name}: its value is not valid UTF-8"
                )));
            }
        }
    }
    env::overlay(vars).map_err(|e| StartError::Unsupported(e.to_string()))
}

/// `backup`, `restore`, `migrate`: the report on stdout; non-zero when the run failed or its
/// verification found differences.
async fn run_tool(tool: &Tool, cli: &Cli) -> ExitCode {
    let progress = ConsoleProgress::new();
    let settings = || {
        let env = read_environment()?;
        env.settings(cli)
    };
    match tools::run(tool, settings, &progress).await {
        Ok(report) => {
            println!("{report}");
            if report.verified() {
                ExitCode::SUCCESS
            } else {
                eprintln!("nacos-server: verification failed: the two sides differ");
                ExitCode::from(2)
            }
        }
        Err(e) => {
            eprintln!("nacos-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: Cli) -> Result<(), StartError> {
    let env = read_environment()?;
    if !env.applied.is_empty() {
        tracing::info!("environment variables applied: {}", env.summary());
    }
    if !env.ignored.is_empty() {
        tracing::info!(
            "environment variables of the Java image that mean nothing here, ignored: {}",
            env.ignored.join(", ")
        );
    }
    for warning in &env.warnings {
        tracing::warn!("{warning}");
    }
    let settings = env.settings(&cli)?;
    // `server.address` (Spring's key) binds every port to one address, so several nodes can
    // share a machine on 127.0.0.x with the same ports.
    let host = settings
        .properties
        .get("server.address")
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .unwrap_or("0.0.0.0")
        .to_string();
    let listeners = Listeners::bind(&host, &settings).await?;
    let http_addr = format!("{host}:{}", settings.port);
    let grpc_addr = format!("{host}:{}", settings.grpc_port().unwrap_or_default());
    let app = App::open(settings).await.map_err(|e| env.blame(e, &cli))?;
    let peers = app.cluster.as_ref().map(|c| {
        let mut line = format!(
            "self {}, members {}",
            c.self_address(),
            c.members.all().len()
        );
        line.push_str(&format!(
            ", cluster port {}",
            app.settings.cluster_port().unwrap_or_default()
        ));
        if app.raft.is_some() {
            line.push_str(&format!(
                ", raft port {}",
                app.settings.raft_port().unwrap_or_default()
            ));
        }
        line
    });
    tracing::info!(
        mode = if app.settings.is_standalone() { "standalone" } else { "cluster" },
        cluster = peers.as_deref().unwrap_or("-"),
        storage = if app.settings.platform.is_empty() { "embedded" } else { app.settings.platform.as_str() },
        http = %http_addr,
        grpc = %grpc_addr,
        context_path = %app.settings.context_path,
        home = %app.settings.home.display(),
        "nacos-server started"
    );
    nacos_server::run(listeners, app, shutdown_signal())
        .await
        .map_err(|e| StartError::Storage(format!("server error: {e}")))?;
    tracing::info!("nacos-server stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
