//! The `skald-sim` command line: `run`, `replay`, `report`.
//!
//! Owns process management: madsim keeps static state between runtimes in one process
//! (madsim issue #174), so every seed runs in a child process (this binary, re-executed
//! with `--seed N --emit-result`), which prints one result line the parent collects.
//! The parent never starts a runtime itself.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use skald_jepsen::history::{Body, Op};
use skald_jepsen::scenario::Scenario;

use crate::outcome::{hash_text, read_trace, run_hash, write_trace, RunOutcome, TraceFile};

const RESULT_PREFIX: &str = "SKALD-SIM-RESULT ";

#[derive(Parser, Debug)]
#[command(
    name = "skald-sim",
    about = "Deterministic simulation of the Skald broker under fault scenarios"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand, Debug)]
enum Commands {
    /// Runs scenarios under seeds and checks every run.
    Run(RunArgs),
    /// Re-runs a trace's seed and scenario and verifies the identical event hash.
    Replay { trace: PathBuf },
    /// Prints a timeline of faults and operations around a trace's first anomaly.
    Report {
        trace: PathBuf,
        /// Virtual milliseconds shown on each side of the anomaly.
        #[arg(long, default_value_t = 300)]
        window_ms: u64,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Scenario files (repeatable).
    #[arg(long = "scenario")]
    scenarios: Vec<PathBuf>,
    /// One seed, run in this process.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// A seed range `A..B` (inclusive), one child process per seed.
    #[arg(long)]
    seeds: Option<String>,
    /// A regression list: lines `SCENARIO-FILE SEED` (# comments), each run as well.
    #[arg(long)]
    regressions: Option<PathBuf>,
    /// Run each seed twice and compare the event-trace hashes.
    #[arg(long)]
    check_determinism: bool,
    /// Where failing runs write their trace.
    #[arg(long, default_value = "target/sim-traces")]
    trace_dir: PathBuf,
    /// Child processes at once.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Child mode: print one machine-readable result line.
    #[arg(long, hide = true)]
    emit_result: bool,
}

/// Entry point; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Commands::Run(args) => run(args),
        Commands::Replay { trace } => replay(&trace),
        Commands::Report { trace, window_ms } => report(&trace, window_ms),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("skald-sim: {e:#}");
            2
        }
    }
}

/// A description of the binary that ran: version, git commit when known.
fn build_id() -> String {
    let commit = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    format!(
        "skald-sim {} (git {commit}, cfg madsim)",
        env!("CARGO_PKG_VERSION")
    )
}

fn load(path: &Path) -> anyhow::Result<(Scenario, String)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let scenario =
        Scenario::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((scenario, text))
}

fn self_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("skald-sim"))
}

fn replay_command(scenario: &Path, seed: u64) -> String {
    format!(
        "RUSTFLAGS=\"--cfg madsim\" CARGO_TARGET_DIR=target/sim cargo run -q -p skald-sim -- run --scenario {} --seed {seed}",
        scenario.display()
    )
}

/// Runs one seed in this process; writes the trace when it fails.
fn run_one(args: &RunArgs, path: &Path, seed: u64) -> anyhow::Result<i32> {
    let (scenario, text) = load(path)?;
    let wall = Instant::now();
    let outcome = crate::runner::run(&scenario, seed);
    let mut trace_path = None;
    if !outcome.ok() {
        std::fs::create_dir_all(&args.trace_dir)?;
        let file = args
            .trace_dir
            .join(format!("{}-seed{seed}.jsonl", scenario.name));
        let out = std::io::BufWriter::new(std::fs::File::create(&file)?);
        write_trace(
            out,
            &outcome,
            &path.display().to_string(),
            &text,
            &scenario.name,
            &build_id(),
        )?;
        trace_path = Some(file);
    }
    if args.emit_result {
        println!(
            "{RESULT_PREFIX}{}",
            serde_json::to_string(&ChildResult {
                outcome: outcome.clone(),
                trace: trace_path.as_ref().map(|p| p.display().to_string()),
            })?
        );
    } else {
        print_outcome(&scenario.name, path, &outcome, trace_path.as_deref());
        println!(
            "{}: {:.1} s simulated in {:.2} s wall, {} operations, {} faults, hash {}",
            scenario.name,
            outcome.virtual_ms as f64 / 1000.0,
            wall.elapsed().as_secs_f64(),
            outcome.operations,
            outcome.faults,
            hash_text(outcome.hash)
        );
    }
    Ok(if outcome.ok() { 0 } else { 1 })
}

fn print_outcome(name: &str, path: &Path, outcome: &RunOutcome, trace: Option<&Path>) {
    if outcome.ok() {
        return;
    }
    println!("FAILED {name} seed {}", outcome.seed);
    for failure in outcome.failures.iter().take(8) {
        println!("  - {failure}");
    }
    println!("  replay: {}", replay_command(path, outcome.seed));
    if let Some(trace) = trace {
        println!(
            "  trace:  {} (skald-sim replay / skald-sim report)",
            trace.display()
        );
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ChildResult {
    outcome: RunOutcome,
    trace: Option<String>,
}

/// One child run to do.
#[derive(Clone)]
struct Job {
    scenario: PathBuf,
    seed: u64,
}

struct Running {
    job: Job,
    child: Child,
}

/// What one scenario's seeds added up to.
#[derive(Default)]
struct Totals {
    seeds: u64,
    failed: u64,
    virtual_ms: u64,
    operations: u64,
    faults: u64,
    anomalies: u64,
    anomalies_allowed: u64,
    wall: Duration,
}

fn parse_range(text: &str) -> anyhow::Result<(u64, u64)> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| anyhow::anyhow!("--seeds wants A..B, got {text}"))?;
    let (a, b): (u64, u64) = (a.trim().parse()?, b.trim().parse()?);
    anyhow::ensure!(a <= b, "--seeds {text}: empty range");
    Ok((a, b))
}

fn read_regressions(path: &Path) -> anyhow::Result<Vec<Job>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let mut jobs = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(scenario), Some(seed), None) = (words.next(), words.next(), words.next()) else {
            anyhow::bail!(
                "{}:{}: want `SCENARIO-FILE SEED`",
                path.display(),
                number + 1
            );
        };
        jobs.push(Job {
            scenario: PathBuf::from(scenario),
            seed: seed
                .parse()
                .map_err(|e| anyhow::anyhow!("{}:{}: bad seed: {e}", path.display(), number + 1))?,
        });
    }
    Ok(jobs)
}

fn spawn(job: &Job, args: &RunArgs) -> anyhow::Result<Child> {
    Ok(Command::new(self_exe())
        .arg("run")
        .arg("--scenario")
        .arg(&job.scenario)
        .arg("--seed")
        .arg(job.seed.to_string())
        .arg("--trace-dir")
        .arg(&args.trace_dir)
        .arg("--emit-result")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?)
}

/// Collects a finished child: its result line, or a failure made from its exit.
fn collect(running: Running) -> anyhow::Result<(RunOutcome, Option<String>)> {
    let output = running.child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if let Some(line) = stdout.lines().find_map(|l| l.strip_prefix(RESULT_PREFIX)) {
        let result: ChildResult = serde_json::from_str(line)?;
        return Ok((result.outcome, result.trace));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    Ok((
        RunOutcome {
            seed: running.job.seed,
            failures: vec![format!(
                "child exited with {} without a result: {}",
                output.status,
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )],
            ..RunOutcome::default()
        },
        None,
    ))
}

fn run(args: RunArgs) -> anyhow::Result<i32> {
    if let Some(seed) = args.seed {
        anyhow::ensure!(
            args.scenarios.len() == 1,
            "--seed runs exactly one --scenario"
        );
        return run_one(&args, &args.scenarios[0].clone(), seed);
    }
    let mut jobs = Vec::new();
    if let Some(range) = &args.seeds {
        let (first, last) = parse_range(range)?;
        for scenario in &args.scenarios {
            load(scenario)?;
            for seed in first..=last {
                jobs.push(Job {
                    scenario: scenario.clone(),
                    seed,
                });
            }
        }
    }
    if let Some(path) = &args.regressions {
        for job in read_regressions(path)? {
            load(&job.scenario)?;
            jobs.push(job);
        }
    }
    anyhow::ensure!(
        !jobs.is_empty(),
        "nothing to run: give --seed, --seeds or --regressions"
    );
    let copies = if args.check_determinism { 2 } else { 1 };
    let total = jobs.len();
    let started = Instant::now();
    let mut pending: std::collections::VecDeque<(usize, Job)> = jobs
        .iter()
        .enumerate()
        .flat_map(|(i, job)| (0..copies).map(move |_| (i, job.clone())))
        .collect();
    let mut running: Vec<(usize, Running, Instant)> = Vec::new();
    let mut results: BTreeMap<usize, Vec<(RunOutcome, Option<String>, Duration)>> = BTreeMap::new();
    let mut totals: BTreeMap<String, Totals> = BTreeMap::new();
    let mut failed_runs: Vec<String> = Vec::new();
    let mut done = 0usize;
    let jobs_at_once = args.jobs.max(1);
    while !pending.is_empty() || !running.is_empty() {
        while running.len() < jobs_at_once {
            let Some((i, job)) = pending.pop_front() else {
                break;
            };
            let child = spawn(&job, &args)?;
            running.push((i, Running { job, child }, Instant::now()));
        }
        let mut finished = None;
        for (slot, (_, run, _)) in running.iter_mut().enumerate() {
            if run.child.try_wait()?.is_some() {
                finished = Some(slot);
                break;
            }
        }
        let Some(slot) = finished else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        let (i, run, began) = running.swap_remove(slot);
        let wall = began.elapsed();
        let job = run.job.clone();
        let (outcome, trace) = collect(run)?;
        let entry = results.entry(i).or_default();
        entry.push((outcome, trace, wall));
        if entry.len() < copies {
            continue;
        }
        done += 1;
        let runs = results.remove(&i).unwrap_or_default();
        let name = job
            .scenario
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (first, trace, _) = &runs[0];
        let mut outcome = first.clone();
        if copies == 2 && runs[1].0.hash != runs[0].0.hash {
            outcome.failures.push(format!(
                "not deterministic: hash {} then {}",
                hash_text(runs[0].0.hash),
                hash_text(runs[1].0.hash)
            ));
        }
        let entry = totals.entry(name.clone()).or_default();
        entry.seeds += 1;
        entry.virtual_ms += outcome.virtual_ms;
        entry.operations += outcome.operations;
        entry.faults += outcome.faults;
        entry.anomalies += outcome.anomalies;
        entry.anomalies_allowed += outcome.anomalies_allowed;
        entry.wall += runs.iter().map(|r| r.2).sum::<Duration>();
        if !outcome.ok() {
            entry.failed += 1;
            eprintln!();
            print_outcome(
                &name,
                &job.scenario,
                &outcome,
                trace.as_deref().map(Path::new),
            );
            failed_runs.push(format!("{} {}", job.scenario.display(), job.seed));
        }
        eprint!(
            "\r[{done}/{total}] {name} seed {} {} ({} failed, {:.0} s)   ",
            job.seed,
            if outcome.ok() { "ok" } else { "FAILED" },
            failed_runs.len(),
            started.elapsed().as_secs_f64()
        );
        let _ = std::io::stderr().flush();
    }
    eprintln!();
    print_summary(&totals, started.elapsed(), copies);
    if failed_runs.is_empty() {
        Ok(0)
    } else {
        println!("failed runs (add them to sim/regression-seeds.txt):");
        for line in &failed_runs {
            println!("  {line}");
        }
        Ok(1)
    }
}

fn print_summary(totals: &BTreeMap<String, Totals>, elapsed: Duration, copies: usize) {
    println!(
        "{:<34} {:>6} {:>6} {:>10} {:>9} {:>7} {:>10} {:>8}",
        "scenario", "seeds", "failed", "sim s", "ops", "faults", "anomalies", "wall s"
    );
    let mut all = Totals::default();
    for (name, t) in totals {
        println!(
            "{:<34} {:>6} {:>6} {:>10.1} {:>9} {:>7} {:>5}/{:<4} {:>8.1}",
            name,
            t.seeds,
            t.failed,
            t.virtual_ms as f64 / 1000.0,
            t.operations,
            t.faults,
            t.anomalies,
            t.anomalies_allowed,
            t.wall.as_secs_f64()
        );
        all.seeds += t.seeds;
        all.failed += t.failed;
        all.virtual_ms += t.virtual_ms;
        all.operations += t.operations;
        all.faults += t.faults;
        all.anomalies += t.anomalies;
        all.anomalies_allowed += t.anomalies_allowed;
    }
    let wall = elapsed.as_secs_f64().max(1e-9);
    println!(
        "{:<34} {:>6} {:>6} {:>10.1} {:>9} {:>7} {:>5}/{:<4} {:>8.1}",
        "total",
        all.seeds,
        all.failed,
        all.virtual_ms as f64 / 1000.0,
        all.operations,
        all.faults,
        all.anomalies,
        all.anomalies_allowed,
        wall
    );
    println!(
        "(anomalies: not allowed/allowed or tolerated) speed: {:.1} simulated s per wall s, {:.1} seeds per minute{}",
        all.virtual_ms as f64 / 1000.0 * copies as f64 / wall,
        all.seeds as f64 * 60.0 / wall,
        if copies == 2 {
            " (each seed run twice for the determinism check)"
        } else {
            ""
        }
    );
}

fn open_trace(path: &Path) -> anyhow::Result<TraceFile> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    read_trace(BufReader::new(file))
}

fn replay(path: &Path) -> anyhow::Result<i32> {
    let trace = open_trace(path)?;
    let scenario = Scenario::parse(&trace.scenario_text)?;
    anyhow::ensure!(
        run_hash(&trace.events, &trace.ops) == u64::from_str_radix(&trace.hash, 16)?,
        "the trace file does not match its own hash (edited or truncated?)"
    );
    println!(
        "replaying {} seed {} (recorded by {})",
        scenario.name, trace.seed, trace.build
    );
    let outcome = crate::runner::run(&scenario, trace.seed);
    for failure in &outcome.failures {
        println!("  - {failure}");
    }
    if hash_text(outcome.hash) == trace.hash {
        println!("identical event hash {}: the run replays", trace.hash);
        Ok(0)
    } else {
        println!(
            "DIFFERENT event hash: trace {} vs replay {}",
            trace.hash,
            hash_text(outcome.hash)
        );
        let events = &outcome.events;
        if let Some(i) =
            (0..trace.events.len().min(events.len())).find(|i| trace.events[*i] != events[*i])
        {
            println!(
                "  first different event #{i}: trace {:?} vs replay {:?}",
                trace.events[i], events[i]
            );
        }
        Ok(1)
    }
}

fn describe_op(op: &Op) -> String {
    let who = op
        .process
        .map_or("nemesis".to_string(), |p| format!("p{p}"));
    let what = match &op.body {
        Body::Send { key, value, offset } => match offset {
            Some(offset) => format!("send k{key} v{value} -> offset {offset}"),
            None => format!("send k{key} v{value}"),
        },
        Body::Poll { records } => {
            let parts: Vec<String> = records
                .iter()
                .map(|(key, list)| {
                    let first = list.first().map_or(-1, |r| r.0);
                    let last = list.last().map_or(-1, |r| r.0);
                    format!("k{key}:{}@{first}..{last}", list.len())
                })
                .collect();
            format!("poll {}", parts.join(" "))
        }
        Body::Read {
            key,
            from_offset,
            values,
            high_watermark,
        } => format!(
            "read k{key} from {from_offset}: {} values, hw {high_watermark:?}",
            values.len()
        ),
        other => serde_json::to_string(other).unwrap_or_default(),
    };
    format!(
        "{:>4} {:<7} {:<6} {what}",
        op.index,
        who,
        format!("{:?}", op.op_type).to_lowercase()
    )
}

fn report(path: &Path, window_ms: u64) -> anyhow::Result<i32> {
    let trace = open_trace(path)?;
    let scenario = Scenario::parse(&trace.scenario_text)?;
    println!(
        "{} seed {} ({}), {} events, {} history lines",
        scenario.name,
        trace.seed,
        trace.build,
        trace.events.len(),
        trace.ops.len()
    );
    for failure in &trace.failures {
        println!("failure: {failure}");
    }
    // The moment to centre on: the first not-allowed anomaly's latest operation (where
    // it shows), or else the first failure event. Faults and node starts are listed
    // whenever they happened; operations only inside the window or when cited.
    let by_index: BTreeMap<u64, &Op> = trace.ops.iter().map(|op| (op.index, op)).collect();
    let anomaly = trace.anomalies.iter().find(|a| !a.allowed);
    let centre_ms = match anomaly {
        Some(anomaly) => {
            println!("first anomaly: {} — {}", anomaly.kind, anomaly.explanation);
            anomaly
                .ops
                .iter()
                .filter_map(|i| by_index.get(i))
                .map(|op| (op.time_ns / 1_000_000) as u64)
                .max()
                .unwrap_or(0)
        }
        None => trace
            .events
            .iter()
            .find(|e| e.what.starts_with("FAILURE"))
            .map_or(0, |e| e.time_ms),
    };
    let cited: std::collections::BTreeSet<u64> = anomaly
        .map(|a| a.ops.iter().copied().collect())
        .unwrap_or_default();
    let low = centre_ms.saturating_sub(window_ms);
    let high = centre_ms + window_ms;
    println!("timeline {low}..{high} ms (>> marks the anomaly's operations):");
    let mut lines: Vec<(u64, u8, String)> = Vec::new();
    for event in &trace.events {
        let always = matches!(event.node.as_str(), "nemesis" | "check" | "sim")
            || event.what.starts_with("starting");
        if always || (low..=high).contains(&event.time_ms) {
            lines.push((
                event.time_ms,
                0,
                format!("   {:<8} {}", event.node, event.what),
            ));
        }
    }
    for op in &trace.ops {
        let ms = (op.time_ns / 1_000_000) as u64;
        if (low..=high).contains(&ms) || cited.contains(&op.index) {
            let mark = if cited.contains(&op.index) {
                ">>"
            } else {
                "  "
            };
            lines.push((ms, 1, format!("{mark} {}", describe_op(op))));
        }
    }
    lines.sort();
    for (ms, _, text) in lines {
        println!("{ms:>8} ms {text}");
    }
    Ok(0)
}
