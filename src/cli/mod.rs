//! L5 — command-line tools over the Kafka protocol: `skald topic`, `skald produce`,
//! `skald consume` and `skald perf`. They use only the project's own client
//! (`crate::client`), so they work against any Kafka-compatible broker, not just skald.
//!
//! Owns: argument definitions (clap), turning them into client calls, and what is
//! printed. Every command writes to the `Output` it is given (stdout and stderr in the
//! binary, buffers in tests) and returns an error or an `ExitStatus`; the binary turns
//! those into the process exit code. Must never: loop without a bound in count or time,
//! hide a broker error (Kafka's error name is always printed), or print a success line
//! for a failed operation.
//!
//! - `args`: options shared by all commands, and the small parsers (`k=v`, acks, codecs).
//! - `topic`: `skald topic create|list|describe|alter|delete`.
//! - `produce`: `skald produce`, records from stdin lines or generated.
//! - `consume`: `skald consume`, start position, count, formats.
//! - `perf`: `skald perf produce|consume`, the load generator.
//! - `rate`: the throughput cap and the HDR latency report used by `perf`.

pub mod args;
pub mod consume;
pub mod perf;
pub mod produce;
pub mod rate;
pub mod topic;

use std::io::Write;

use clap::Subcommand;

/// Where a command prints: `out` for results, `err` for progress and errors.
pub struct Output<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
}

/// How a command that ran to its end finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    /// It ran, but some of the work failed (records not acknowledged, a topic of
    /// several not created); the details are already printed.
    PartialFailure,
}

/// The command-line tools, as subcommands of the `skald` binary.
#[derive(Subcommand, Debug)]
pub enum ToolCommand {
    /// Create, list, describe, alter and delete topics.
    Topic(topic::TopicArgs),
    /// Produce records from stdin lines or generated ones.
    Produce(produce::ProduceArgs),
    /// Consume records and print them.
    Consume(consume::ConsumeArgs),
    /// Load generators: `perf produce`, `perf consume`.
    Perf(perf::PerfArgs),
}

/// Runs one tool command. Produce reads its lines from `input`.
pub async fn run(
    command: ToolCommand,
    input: Box<dyn std::io::BufRead + Send>,
    output: &mut Output<'_>,
) -> anyhow::Result<ExitStatus> {
    match command {
        ToolCommand::Topic(args) => topic::run(args, output).await,
        ToolCommand::Produce(args) => produce::run(args, input, output).await,
        ToolCommand::Consume(args) => consume::run(args, output).await,
        ToolCommand::Perf(args) => perf::run(args, output).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: ToolCommand,
    }

    #[test]
    fn argument_definitions_are_consistent() {
        // clap's own check: no clashing short flags or names, valid defaults.
        Cli::command().debug_assert();
    }

    #[test]
    fn bootstrap_server_goes_anywhere_on_the_line() {
        let cli = Cli::try_parse_from(["skald", "topic", "list", "-b", "h:1"]).unwrap();
        let ToolCommand::Topic(args) = cli.command else {
            panic!("not topic");
        };
        assert_eq!(args.connect.servers(), vec!["h:1".to_string()]);
        let cli = Cli::try_parse_from([
            "skald",
            "perf",
            "consume",
            "-t",
            "t",
            "--num-records",
            "5",
            "--bootstrap-server",
            "h:2",
        ])
        .unwrap();
        let ToolCommand::Perf(args) = cli.command else {
            panic!("not perf");
        };
        assert_eq!(args.connect.servers(), vec!["h:2".to_string()]);
    }
}
