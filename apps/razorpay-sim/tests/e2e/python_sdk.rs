//! The official Python SDK (`razorpay` on PyPI) drives the `razorpay-sim`
//! binary: tests/sdk_check.py. Needs python3 with venv/pip and PyPI access;
//! the venv is kept under the target dir and reused.

use crate::{KEY_ID, KEY_SECRET, WEBHOOK_SECRET};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

struct SimProcess {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    base_url: String,
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary exactly as the pinned command line says and reads its ready line.
fn start_binary() -> SimProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_razorpay-sim"))
        .args([
            "--bind",
            "127.0.0.1:0",
            "--key-id",
            KEY_ID,
            "--key-secret",
            KEY_SECRET,
            "--webhook-secret",
            WEBHOOK_SECRET,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("razorpay-sim binary starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("ready line");
    let base_url = line
        .trim()
        .strip_prefix("razorpay-sim listening on ")
        .unwrap_or_else(|| panic!("unexpected ready line {line:?}"))
        .to_owned();
    assert!(base_url.starts_with("http://127.0.0.1:"), "{base_url}");
    SimProcess {
        child,
        _stdout: stdout,
        base_url,
    }
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn venv_python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

/// A venv with the SDK installed (created once, reused while it imports).
fn sdk_python() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pysdk-venv");
    let py = venv_python(&venv);
    let usable = py.exists()
        && Command::new(&py)
            .args(["-c", "import razorpay"])
            .status()
            .is_ok_and(|s| s.success());
    if !usable {
        let _ = std::fs::remove_dir_all(&venv);
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
        // The SDK imports pkg_resources on some versions: setuptools too. Pinned to the SDK
        // version SPEC.md was checked against; pip retries flaky downloads itself, and a failed
        // install is tried again once before the test gives up.
        let install = || {
            Command::new(&py)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--retries",
                    "8",
                    "--timeout",
                    "60",
                    "razorpay==2.0.1",
                    "setuptools",
                ])
                .status()
                .is_ok_and(|s| s.success())
        };
        assert!(install() || install(), "pip install razorpay failed twice");
    }
    py
}

#[test]
fn official_python_sdk_drives_the_simulator() {
    let py = sdk_python();
    let sim = start_binary();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk_check.py");
    let out = run(Command::new(&py)
        .arg(&script)
        .args([sim.base_url.as_str(), KEY_ID, KEY_SECRET, WEBHOOK_SECRET])
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for step in [
        "OK plan create/fetch",
        "OK subscription create/fetch",
        "OK verify_subscription_payment_signature",
        "OK subscription invoices",
        "OK subscription cancel",
        "OK subscription pause/resume",
        "OK subscription update schedule_change_at",
        "OK subscription update now: prorated charge",
        "OK subscription pending update",
        "OK subscription update refused for UPI and eMandate mandates",
        "OK order create/fetch",
        "OK verify_payment_signature",
        "OK order payments",
        "OK linked account, stakeholder, product configuration",
        "OK transfers, hold release, settlement, reversal",
        "OK BadRequestError",
        "OK verify_webhook_signature",
        "OK route webhooks",
        "OK mandate instruments: one card_id per card, the UPI ID",
    ] {
        assert!(
            stdout.lines().any(|l| l == step),
            "missing {step:?} in:\n{stdout}"
        );
    }
    assert_eq!(stdout.lines().last(), Some("ALL OK"), "{stdout}");
}
