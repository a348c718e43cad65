//! `russet`: parse flags and hand over. No logic lives here.

use clap::Parser;
use russet_mdm::cli::{Cli, Command};
use russet_mdm::config;
use russet_mdm::server::logging::{self, LogFile};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(path) = config::config_path_from_args(&args)
        && let Err(e) = config::load_config_file(&path)
    {
        eprintln!("russet: {e:#}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    if matches!(cli.command, Command::Serve(_)) {
        russet_mdm::server::allocator::limit_arenas();
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Command::Serve(args) = &cli.command
        && let Some(threads) = args.worker_threads
    {
        builder.worker_threads(usize::from(threads));
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("russet: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => {
                logging::init(args.log_format, LogFile::from_args(&args).as_ref())?;
                serve(&args).await
            }
            Command::Devices(cmd) => russet_mdm::cli::devices::run(cmd).await,
            Command::Group(cmd) => russet_mdm::cli::group::run(cmd).await,
            Command::GoldenImage(cmd) => russet_mdm::cli::golden_image::run(cmd).await,
            Command::ParallelsActivation(cmd) => {
                russet_mdm::cli::parallels_activation::run(cmd).await
            }
            Command::OsUpdate(cmd) => russet_mdm::cli::os_update::run(cmd).await,
            Command::Ddm(cmd) => russet_mdm::cli::ddm::run(cmd).await,
            Command::Command(cmd) => russet_mdm::cli::command::run(cmd).await,
            Command::Lock(cmd) => russet_mdm::cli::lockwipe::lock(cmd).await,
            Command::Wipe(cmd) => russet_mdm::cli::lockwipe::wipe(cmd).await,
            Command::Pin(cmd) => russet_mdm::cli::lockwipe::pin(cmd).await,
            Command::Audit(cmd) => russet_mdm::cli::lockwipe::audit(cmd).await,
            Command::Push(cmd) => russet_mdm::cli::apns::push(cmd).await,
            Command::Apns(cmd) => russet_mdm::cli::apns::apns(cmd).await,
            Command::Vendor(cmd) => russet_mdm::cli::apns::vendor(cmd),
            Command::Enroll(cmd) => russet_mdm::cli::enroll::run(cmd).await,
            Command::Doctor(args) => russet_mdm::cli::doctor::run(&args).await,
            Command::Dep(cmd) => russet_mdm::cli::dep::run(cmd).await,
            Command::DepSim(args) => russet_mdm::cli::dep::dep_sim(args).await,
            Command::Profile(cmd) => russet_mdm::cli::profile::run(cmd).await,
            Command::Inventory(cmd) => russet_mdm::cli::inventory::run(cmd).await,
            Command::Admin(cmd) => russet_mdm::cli::admin::run(cmd).await,
            Command::Filevault(cmd) => russet_mdm::cli::filevault::run(cmd).await,
            Command::RecoveryLock(cmd) => russet_mdm::cli::recovery_lock::run(cmd).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("russet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: &config::ServeArgs) -> anyhow::Result<()> {
    let running = russet_mdm::server::start(args).await?;
    if let Some(token) = &running.new_admin_token {
        // Printed once, on the terminal only (never to the log): it is a secret.
        eprintln!(
            "\nFirst start: the admin API token is\n\n    {token}\n\nIt is also in {}/{} (mode 0600). \
             The CLI finds it there; elsewhere set RUSSET_TOKEN.\n",
            args.data_dir.display(),
            config::ADMIN_TOKEN_FILE
        );
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
