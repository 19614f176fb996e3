//! Schemathesis (PyPI) against `/api/openapi.json` of the real app, as anonymous, a fan, a
//! member and a creator, every phase (examples, coverage, fuzzing and the stateful phase, whose
//! links schemathesis infers from the document's schemas and path parameters and from
//! `Location` headers): no server error, and every answer conforms to the document (its status
//! is documented, its content type and body match the documented ones).
//!
//! Bounded by `OASIS_FUZZ_SECS` per role (default 30 s; `just fuzz` runs 600 s per role with more
//! examples). Needs python3 with venv/pip and PyPI: schemathesis is installed into a venv under
//! the target dir once and reused (as the Razorpay SDK test in apps/razorpay-sim does).
use super::world;
use oasis_tests::spawn_app_with;
use std::path::{Path, PathBuf};
use std::process::Command;

const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// What the document promises and the fuzzer checks.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,response_headers_conformance";

fn venv_bin() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("schemathesis-venv");
    let st = venv.join("bin").join("st");
    let usable = st.exists()
        && Command::new(&st)
            .arg("--version")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("4.32.5"));
    if !usable {
        let _ = std::fs::remove_dir_all(&venv);
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "python3 -m venv failed");
        let pip = venv.join("bin").join("pip");
        let install = || {
            Command::new(&pip)
                .args([
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--retries",
                    "8",
                    "--timeout",
                    "60",
                    SCHEMATHESIS,
                ])
                .status()
                .is_ok_and(|s| s.success())
        };
        assert!(
            install() || install(),
            "pip install {SCHEMATHESIS} failed twice"
        );
    }
    st
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_schema_mismatch() {
    let st = tokio::task::spawn_blocking(venv_bin).await.expect("venv");
    let secs = env_u64("OASIS_FUZZ_SECS", 30);
    let examples = env_u64("OASIS_FUZZ_EXAMPLES", 20);
    // A generous throttle: the fuzzer's wrong passwords and new accounts must not turn every
    // later answer into a 429 (which is documented, but would hide the routes behind it).
    let app = spawn_app_with(|s| {
        s.login_max_failures = 100_000;
        s.registrations_per_hour = 100_000;
    })
    .await;
    let w = world::build(&app, "fz", &app.url("/_razorpay")).await;
    let report = tempfile::tempdir().expect("report dir");
    let mut failed = vec![];
    for (role, token) in [
        ("anonymous", None),
        ("fan", Some(w.fan.token.clone())),
        ("member", Some(w.member.token.clone())),
        ("creator", Some(w.owner.token.clone())),
    ] {
        let mut cmd = Command::new(&st);
        cmd.arg("run")
            .arg(app.url("/api/openapi.json"))
            .args(["--checks", CHECKS])
            .args(["--max-time", &secs.to_string()])
            .args(["--max-examples", &examples.to_string()])
            // One worker: CPython 3.11's parser is not thread-safe under hypothesis' lambda
            // introspection ("AST constructor recursion depth mismatch", an error of the tool).
            .args(["--workers", "1"])
            .args(["--request-timeout", "30"])
            .args(["--suppress-health-check", "all"])
            .args(["--seed", &env_u64("OASIS_FUZZ_SEED", 17).to_string()])
            // Ending the session being fuzzed with would only make the rest 401s.
            .args(["--exclude-path", "/authenticate/rest-auth/logout/"])
            .args(["--report", "junit"])
            .arg("--report-junit-path")
            .arg(report.path().join(format!("{role}.xml")))
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .env("NO_COLOR", "1")
            .current_dir(report.path());
        if let Some(t) = &token {
            cmd.args(["--header", &format!("Authorization: Token {t}")]);
        }
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .expect("join")
            .expect("schemathesis runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let summary: Vec<&str> = stdout
            .lines()
            .filter(|l| l.contains("passed") || l.contains("failed") || l.contains("error"))
            .collect();
        println!("schemathesis as {role}: {}", summary.last().unwrap_or(&"?"));
        // "N generated, …": a run that tested next to nothing proves nothing.
        let generated = stdout
            .lines()
            .rev()
            .find_map(|l| {
                let (n, _) = l.trim().split_once(" generated")?;
                n.trim().parse::<u64>().ok()
            })
            .unwrap_or(0);
        if generated < 200 {
            failed.push(format!(
                "=== as {role}: only {generated} test cases generated:\n{stdout}"
            ));
        }
        if !out.status.success() {
            failed.push(format!(
                "=== as {role} (exit {}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
