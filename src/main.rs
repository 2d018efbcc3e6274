//! The `skald` binary. `skald broker` runs a single-node broker+controller: with no flags
//! on 127.0.0.1:9092 with data in ./skald-data; `--config skald.toml`, flags and
//! `--set key=value` (Kafka's key names) for the rest. SIGTERM or Ctrl-C shut it down
//! gracefully: stop accepting, answer in-flight requests, flush, checkpoint, close.
//!
//! `skald topic|produce|consume|perf` are the command-line tools over the Kafka protocol
//! (`skald::cli`, docs/CLI.md); they exit 1 when the broker refused something.

#[cfg(not(madsim))]
mod real {
    use std::sync::Arc;

    use anyhow::Context;
    use clap::{Args, Parser, Subcommand};
    use skald::broker::Node;
    use skald::cli::{ExitStatus, Output, ToolCommand};
    use skald::config::BrokerInputs;
    use skald::io::real::{os_seeded_rng, RealDisk};
    use skald::io::Clock;

    #[derive(Parser, Debug)]
    #[command(name = "skald", version, about = "A Kafka-compatible log broker")]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand, Debug)]
    enum Command {
        /// Run a broker (single node: broker and controller in one process).
        Broker(BrokerArgs),
        #[command(flatten)]
        Tool(ToolCommand),
    }

    #[derive(Args, Debug)]
    struct BrokerArgs {
        /// TOML file of settings by Kafka's names (`"log.retention.ms" = 604800000`).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
        /// Address to listen on (`127.0.0.1:9092` or `PLAINTEXT://127.0.0.1:9092`).
        #[arg(long)]
        listener: Option<String>,
        /// host:port clients are told to connect to.
        #[arg(long)]
        advertised_listener: Option<String>,
        /// Data directory.
        #[arg(long)]
        data_dir: Option<String>,
        /// Node id.
        #[arg(long)]
        node_id: Option<i32>,
        /// error, warn, info, debug or trace.
        #[arg(long)]
        log_level: Option<String>,
        /// A broker setting by its Kafka name, `key=value`; repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    }

    async fn wait_for_signal() -> anyhow::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
        Ok(())
    }

    async fn broker(args: BrokerArgs) -> anyhow::Result<()> {
        let file_text = match &args.config {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            ),
            None => None,
        };
        let mut setup = BrokerInputs {
            file_text,
            listener: args.listener,
            advertised_listener: args.advertised_listener,
            data_dir: args.data_dir,
            node_id: args.node_id,
            log_level: args.log_level,
            sets: args.sets,
        }
        .resolve()?;
        let level: tracing::Level = setup.log_level.parse().context("log level")?;
        // Logs go to stderr, coloured only when it is a terminal (no escape codes in
        // files, pipes or journald).
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
        let disk = Arc::new(
            RealDisk::open(&setup.data_dir)
                .with_context(|| format!("opening data directory {}", setup.data_dir.display()))?,
        );
        // DescribeLogDirs names the data directory by its absolute path, as Kafka.
        if let Ok(path) = std::fs::canonicalize(&setup.data_dir) {
            setup.node.log_dir = path.display().to_string();
        }
        let node = Node::start(setup.node, disk, Clock::system(), os_seeded_rng()).await?;
        tracing::info!(addr = %node.local_addr(), data_dir = %setup.data_dir.display(), "serving; SIGTERM or Ctrl-C to stop");
        wait_for_signal().await?;
        tracing::info!("shutting down");
        node.shutdown().await?;
        Ok(())
    }

    /// Runs a tool command against a cluster; its exit code: 0 on success, 1 when it
    /// failed or some of its work did (the reasons are printed on stderr).
    fn tool(runtime: &tokio::runtime::Runtime, command: ToolCommand) -> i32 {
        use std::io::Write;
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let mut err = std::io::stderr();
        let input = Box::new(std::io::BufReader::new(std::io::stdin()));
        let mut output = Output {
            out: &mut out,
            err: &mut err,
        };
        let result = runtime.block_on(skald::cli::run(command, input, &mut output));
        let flushed = out.flush();
        match (result, flushed) {
            (Ok(ExitStatus::Success), Ok(())) => 0,
            (Ok(ExitStatus::PartialFailure), _) => 1,
            (Ok(ExitStatus::Success), Err(error)) => {
                eprintln!("error: writing output: {error}");
                1
            }
            (Err(error), _) => {
                eprintln!("error: {error:#}");
                1
            }
        }
    }

    pub fn main() -> anyhow::Result<()> {
        let cli = Cli::parse();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the runtime")?;
        match cli.command {
            Command::Broker(args) => runtime.block_on(broker(args)),
            Command::Tool(command) => {
                let code = tool(&runtime, command);
                // Let in-flight requests of dropped clients go before exiting.
                runtime.shutdown_timeout(std::time::Duration::from_millis(100));
                std::process::exit(code)
            }
        }
    }
}

#[cfg(not(madsim))]
fn main() -> anyhow::Result<()> {
    real::main()
}

/// A `--cfg madsim` build is for the simulator, which starts nodes through
/// `skald::broker::Node` itself; the binary has nothing to run there.
#[cfg(madsim)]
fn main() {
    eprintln!("this skald binary was built with --cfg madsim (simulation); build without it to run a broker");
    std::process::exit(2);
}
