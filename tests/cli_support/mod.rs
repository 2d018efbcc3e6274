//! Shared by the `cli_*` tests: a skald node started in-process on 127.0.0.1:0 with a
//! real disk in a scratch directory, and a runner for the CLI's command functions that
//! captures what they print.

use std::sync::Arc;

use clap::Parser;
use skald::base::Rng;
use skald::broker::{Node, NodeConfig, NodeHandle};
use skald::cli::{ExitStatus, Output, ToolCommand};
use skald::io::real::{RealDisk, ScratchDir};
use skald::io::{Clock, Disk};

pub async fn start_node(dir: &ScratchDir) -> NodeHandle {
    let disk: Arc<dyn Disk> = Arc::new(RealDisk::open(dir.path()).unwrap());
    let config = NodeConfig::new(1, "127.0.0.1:0".parse().unwrap());
    Node::start(config, disk, Clock::system(), Rng::with_seed(1))
        .await
        .unwrap()
}

#[derive(Parser, Debug)]
#[command(name = "skald")]
struct Cli {
    #[command(subcommand)]
    command: ToolCommand,
}

/// What one command run returned and printed.
#[derive(Debug)]
pub struct Run {
    /// `Err` holds the error's text, as the binary would print it.
    pub status: Result<ExitStatus, String>,
    pub out: String,
    pub err: String,
}

impl Run {
    /// Asserts the command succeeded and returns its stdout.
    pub fn ok(self) -> String {
        assert_eq!(self.status, Ok(ExitStatus::Success), "{self:?}");
        self.out
    }
}

/// Runs `skald <command line> --bootstrap-server <node>` with `stdin` as its input; the
/// command line is split at whitespace.
pub async fn run(node: &NodeHandle, command_line: &str, stdin: &[u8]) -> Run {
    let server = node.local_addr().to_string();
    let mut argv = vec!["skald"];
    argv.extend(command_line.split_whitespace());
    argv.extend_from_slice(&["--bootstrap-server", &server]);
    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|error| panic!("{argv:?}: {error}"));
    let input = Box::new(std::io::Cursor::new(stdin.to_vec()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = {
        let mut output = Output {
            out: &mut out,
            err: &mut err,
        };
        skald::cli::run(cli.command, input, &mut output)
            .await
            .map_err(|error| format!("{error:#}"))
    };
    Run {
        status,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

/// A node in a fresh scratch directory with topic `topic` of `partitions` created
/// through the CLI. Keep the directory alive as long as the node.
pub async fn node_with_topic(
    label: &str,
    topic: &str,
    partitions: u32,
) -> (ScratchDir, NodeHandle) {
    let dir = ScratchDir::new(label);
    let node = start_node(&dir).await;
    let created = run(&node, &format!("topic create {topic} -p {partitions}"), b"")
        .await
        .ok();
    assert_eq!(created, format!("Created topic {topic}.\n"));
    (dir, node)
}
