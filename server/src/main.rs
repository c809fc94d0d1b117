//! `nacos-server`: parse the command line, load settings, open storage, serve until a signal.

use std::process::ExitCode;

use clap::Parser;
use nacos_server::cli::Cli;
use nacos_server::{App, Listeners, Settings, StartError};

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

async fn serve(cli: Cli) -> Result<(), StartError> {
    let mut defines = cli.define_pairs();
    if let Some(list) = &cli.member_list {
        defines.push(("nacos.member.list".to_string(), list.clone()));
    }
    let settings = Settings::load(cli.mode, cli.storage.as_deref(), &defines)?;
    if let Some(storage) = cli.storage.as_deref().filter(|s| *s != "embedded") {
        return Err(StartError::Unsupported(format!(
            "unknown -p value '{storage}': only 'embedded' is accepted"
        )));
    }
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
    let app = App::open(settings).await?;
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
