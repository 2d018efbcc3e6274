//! The `skald broker` process as an operator runs it: its logs go to stderr, without
//! colour escape codes when stderr is not a terminal (a pipe here), and nothing to stdout.
#![cfg(not(madsim))]

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use skald::io::real::ScratchDir;

#[test]
fn logs_go_to_stderr_without_colour_when_piped() {
    let dir = ScratchDir::new("broker-binary-logs");
    let mut child = Command::new(env!("CARGO_BIN_EXE_skald"))
        .args(["broker", "--listener", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().take(1000) {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let serving = line.contains("serving");
                lines.push(line);
                if serving {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(
        lines.iter().any(|l| l.contains("serving")),
        "no start-up line on stderr: {lines:?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains('\u{1b}')),
        "escape codes in piped logs: {lines:?}"
    );
    assert_eq!(stdout, "");
}
