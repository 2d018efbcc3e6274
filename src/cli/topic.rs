//! `skald topic create|list|describe|alter|delete`, through the Admin client.
//!
//! Owns: the topic subcommands' arguments and their output, shaped like Kafka's
//! `kafka-topics.sh` so it reads familiarly. Must never: report success for a topic
//! whose result carried an error code; every per-topic error is printed with Kafka's
//! error name and makes the exit status non-zero.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use clap::{Args, Subcommand};

use crate::cli::args::{parse_key_value, ConnectArgs};
use crate::cli::{ExitStatus, Output};
use crate::client::{
    Admin, AlterConfigOp, ConfigEntry, ConfigResource, NewTopic, TopicDescription,
};

/// Kafka's ConfigSource for a config set on the topic itself.
const CONFIG_SOURCE_DYNAMIC_TOPIC: i8 = 1;

#[derive(Args, Debug)]
pub struct TopicArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// How long the broker may take to apply a change before it answers.
    #[arg(long, global = true, default_value_t = 30_000, value_name = "MS")]
    pub timeout_ms: i32,
    #[command(subcommand)]
    pub action: TopicAction,
}

#[derive(Subcommand, Debug)]
pub enum TopicAction {
    /// Create a topic.
    Create {
        name: String,
        /// Partition count; -1: the broker's num.partitions.
        #[arg(long, short = 'p', default_value_t = -1, allow_negative_numbers = true)]
        partitions: i32,
        /// Replication factor; -1: the broker's default.replication.factor.
        #[arg(long, short = 'r', default_value_t = -1, allow_negative_numbers = true)]
        replication_factor: i16,
        /// A topic config, `key=value`; repeatable.
        #[arg(long = "config", short = 'c', value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        /// Ask the broker to check the request without creating anything.
        #[arg(long)]
        validate_only: bool,
    },
    /// List topic names, one a line.
    List {
        /// Include internal topics.
        #[arg(long)]
        internal: bool,
    },
    /// Show partitions (leader, replicas, ISR) and configs; no names: every topic.
    Describe {
        names: Vec<String>,
        /// Show every config with its source, not only those set on the topic.
        #[arg(long)]
        all_configs: bool,
    },
    /// Change configs (IncrementalAlterConfigs) and/or grow the partition count
    /// (CreatePartitions).
    Alter {
        name: String,
        /// Set a config, `key=value`; repeatable.
        #[arg(long = "config", short = 'c', value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        /// Remove a config set on the topic (back to the broker's default); repeatable.
        #[arg(long = "delete-config", value_name = "KEY")]
        delete_configs: Vec<String>,
        /// The new total partition count (Kafka only grows a topic).
        #[arg(long, short = 'p')]
        partitions: Option<i32>,
        /// Ask the broker to check the changes without applying them.
        #[arg(long)]
        validate_only: bool,
    },
    /// Delete topics.
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

pub async fn run(args: TopicArgs, output: &mut Output<'_>) -> anyhow::Result<ExitStatus> {
    let admin = Admin::new(args.connect.connect().await?);
    let timeout_ms = args.timeout_ms;
    match args.action {
        TopicAction::Create {
            name,
            partitions,
            replication_factor,
            configs,
            validate_only,
        } => {
            let mut topic = NewTopic::new(name, partitions, replication_factor);
            topic.configs = configs.into_iter().collect::<BTreeMap<_, _>>();
            let results = admin
                .create_topics(&[topic], timeout_ms, validate_only)
                .await?;
            let verb = if validate_only {
                "Validated creation of"
            } else {
                "Created"
            };
            report(output, results, verb)
        }
        TopicAction::List { internal } => {
            for name in admin.list_topics(internal).await? {
                writeln!(output.out, "{name}")?;
            }
            Ok(ExitStatus::Success)
        }
        TopicAction::Describe { names, all_configs } => {
            describe(&admin, &names, all_configs, output).await
        }
        TopicAction::Alter {
            name,
            configs,
            delete_configs,
            partitions,
            validate_only,
        } => {
            if configs.is_empty() && delete_configs.is_empty() && partitions.is_none() {
                anyhow::bail!("nothing to alter: give --config, --delete-config or --partitions");
            }
            alter(
                &admin,
                AlterRequest {
                    name,
                    configs,
                    delete_configs,
                    partitions,
                    validate_only,
                    timeout_ms,
                },
                output,
            )
            .await
        }
        TopicAction::Delete { names } => {
            let results = admin.delete_topics(&names, timeout_ms).await?;
            report(output, results, "Deleted")
        }
    }
}

/// Prints one line per topic result; any error makes the status a partial failure.
fn report(
    output: &mut Output<'_>,
    results: Vec<(String, Result<(), crate::client::ClientError>)>,
    verb: &str,
) -> anyhow::Result<ExitStatus> {
    let mut status = ExitStatus::Success;
    for (name, result) in results {
        match result {
            Ok(()) => writeln!(output.out, "{verb} topic {name}.")?,
            Err(error) => {
                writeln!(output.err, "error: {error}")?;
                status = ExitStatus::PartialFailure;
            }
        }
    }
    Ok(status)
}

async fn describe(
    admin: &Admin,
    names: &[String],
    all_configs: bool,
    output: &mut Output<'_>,
) -> anyhow::Result<ExitStatus> {
    let topics = if names.is_empty() {
        admin
            .describe_topics(None)
            .await?
            .into_iter()
            .filter(|topic| !topic.is_internal)
            .collect()
    } else {
        admin.describe_topics(Some(names)).await?
    };
    let mut status = ExitStatus::Success;
    for name in names {
        if !topics.iter().any(|topic| &topic.name == name) {
            writeln!(
                output.err,
                "error: describe topic {name}: broker returned no such topic"
            )?;
            status = ExitStatus::PartialFailure;
        }
    }
    for topic in &topics {
        if topic.error_code != 0 {
            let error = crate::client::ClientError::kafka(
                topic.error_code,
                None,
                format!("describe topic {}", topic.name),
            );
            writeln!(output.err, "error: {error}")?;
            status = ExitStatus::PartialFailure;
            continue;
        }
        let configs = match admin
            .describe_configs(&ConfigResource::Topic(topic.name.clone()), None)
            .await
        {
            Ok(configs) => configs,
            Err(error) => {
                writeln!(output.err, "error: {error}")?;
                status = ExitStatus::PartialFailure;
                Vec::new()
            }
        };
        output
            .out
            .write_all(format_description(topic, &configs, all_configs).as_bytes())?;
    }
    Ok(status)
}

/// A topic as `kafka-topics.sh --describe` prints it: a summary line with the configs
/// set on the topic, then a line per partition; with `all_configs`, every config on a
/// line of its own with its source.
pub fn format_description(
    topic: &TopicDescription,
    configs: &[ConfigEntry],
    all_configs: bool,
) -> String {
    let replication_factor = topic.partitions.first().map_or(0, |p| p.replicas.len());
    let shown = |entry: &ConfigEntry| {
        let value = if entry.is_sensitive {
            "(sensitive)"
        } else {
            entry.value.as_deref().unwrap_or("null")
        };
        format!("{}={value}", entry.name)
    };
    let set_on_topic: Vec<String> = configs
        .iter()
        .filter(|entry| entry.source == CONFIG_SOURCE_DYNAMIC_TOPIC)
        .map(shown)
        .collect();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
        topic.name,
        uuid::Uuid::from_bytes(topic.topic_id),
        topic.partitions.len(),
        replication_factor,
        set_on_topic.join(",")
    );
    let ids = |nodes: &[crate::base::NodeId]| {
        nodes
            .iter()
            .map(|node| node.0.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    for partition in &topic.partitions {
        let leader = partition
            .leader
            .map_or_else(|| "none".to_string(), |node| node.0.to_string());
        let _ = write!(
            text,
            "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
            topic.name,
            partition.partition,
            leader,
            ids(&partition.replicas),
            ids(&partition.isr)
        );
        if !partition.offline_replicas.is_empty() {
            let _ = write!(text, "\tOffline: {}", ids(&partition.offline_replicas));
        }
        if partition.error_code != 0 {
            let _ = write!(
                text,
                "\tError: {}",
                crate::client::errors::kafka_error_name(partition.error_code)
            );
        }
        text.push('\n');
    }
    if all_configs {
        for entry in configs {
            let _ = writeln!(
                text,
                "\tConfig: {}\tSource: {}{}",
                shown(entry),
                config_source_name(entry.source),
                if entry.read_only { "\tReadOnly" } else { "" }
            );
        }
    }
    text
}

/// Kafka's names for DescribeConfigs' config sources.
pub fn config_source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

struct AlterRequest {
    name: String,
    configs: Vec<(String, String)>,
    delete_configs: Vec<String>,
    partitions: Option<i32>,
    validate_only: bool,
    timeout_ms: i32,
}

async fn alter(
    admin: &Admin,
    request: AlterRequest,
    output: &mut Output<'_>,
) -> anyhow::Result<ExitStatus> {
    let mut status = ExitStatus::Success;
    let checked = if request.validate_only {
        " (validated only)"
    } else {
        ""
    };
    let name = &request.name;
    let ops: Vec<AlterConfigOp> = request
        .configs
        .into_iter()
        .map(|(key, value)| AlterConfigOp::Set(key, value))
        .chain(
            request
                .delete_configs
                .into_iter()
                .map(AlterConfigOp::Delete),
        )
        .collect();
    if !ops.is_empty() {
        let resource = ConfigResource::Topic(name.clone());
        match admin
            .incremental_alter_configs(&resource, &ops, request.validate_only)
            .await
        {
            Ok(()) => writeln!(output.out, "Altered configs of topic {name}{checked}.")?,
            Err(error) => {
                writeln!(output.err, "error: {error}")?;
                if request.partitions.is_some() {
                    writeln!(output.err, "partition count left unchanged")?;
                }
                return Ok(ExitStatus::PartialFailure);
            }
        }
    }
    if let Some(count) = request.partitions {
        let results = admin
            .create_partitions(
                &[(name.clone(), count)],
                request.timeout_ms,
                request.validate_only,
            )
            .await?;
        for (topic, result) in results {
            match result {
                Ok(()) => writeln!(
                    output.out,
                    "Topic {topic} now has {count} partitions{checked}."
                )?,
                Err(error) => {
                    writeln!(output.err, "error: {error}")?;
                    status = ExitStatus::PartialFailure;
                }
            }
        }
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::NodeId;
    use crate::client::PartitionDescription;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        topic: TopicArgs,
    }

    #[test]
    fn create_parses_configs_and_defaults() {
        let cli = Cli::try_parse_from([
            "x",
            "create",
            "t",
            "-p",
            "3",
            "--config",
            "retention.ms=5",
            "-c",
            "a=b=c",
            "--bootstrap-server",
            "h:1",
        ])
        .unwrap();
        assert_eq!(cli.topic.connect.bootstrap_server, "h:1");
        let TopicAction::Create {
            name,
            partitions,
            replication_factor,
            configs,
            validate_only,
        } = cli.topic.action
        else {
            panic!("not create");
        };
        assert_eq!(name, "t");
        assert_eq!(partitions, 3);
        assert_eq!(replication_factor, -1);
        assert!(!validate_only);
        assert_eq!(
            configs,
            vec![
                ("retention.ms".to_string(), "5".to_string()),
                ("a".to_string(), "b=c".to_string())
            ]
        );
        assert!(Cli::try_parse_from(["x", "create", "t", "--config", "oops"]).is_err());
        assert!(Cli::try_parse_from(["x", "delete"]).is_err());
    }

    #[test]
    fn description_lists_partitions_and_topic_configs() {
        let topic = TopicDescription {
            name: "t".to_string(),
            topic_id: [0; 16],
            is_internal: false,
            error_code: 0,
            partitions: vec![PartitionDescription {
                partition: 0,
                leader: Some(NodeId(1)),
                leader_epoch: 0,
                replicas: vec![NodeId(1), NodeId(2)],
                isr: vec![NodeId(1)],
                offline_replicas: vec![],
                error_code: 0,
            }],
        };
        let configs = vec![
            ConfigEntry {
                name: "retention.ms".to_string(),
                value: Some("1000".to_string()),
                read_only: false,
                source: 1,
                is_sensitive: false,
            },
            ConfigEntry {
                name: "cleanup.policy".to_string(),
                value: Some("delete".to_string()),
                read_only: false,
                source: 5,
                is_sensitive: false,
            },
        ];
        let text = format_description(&topic, &configs, false);
        assert_eq!(
            text,
            "Topic: t\tTopicId: 00000000-0000-0000-0000-000000000000\tPartitionCount: 1\t\
             ReplicationFactor: 2\tConfigs: retention.ms=1000\n\
             \tTopic: t\tPartition: 0\tLeader: 1\tReplicas: 1,2\tIsr: 1\n"
        );
        let all = format_description(&topic, &configs, true);
        assert!(all.contains("\tConfig: cleanup.policy=delete\tSource: DEFAULT_CONFIG\n"));
    }
}
