//! Dependency direction: domain crates never depend (even transitively) on the web, database or
//! HTTP-client layers, nor on each other.
use std::process::Command;

const DOMAINS: [&str; 6] = [
    "oasis-identity",
    "oasis-catalog",
    "oasis-billing",
    "oasis-social",
    "oasis-commissions",
    "oasis-notify",
];
const FORBIDDEN: [&str; 8] = [
    "actix-web",
    "actix-http",
    "diesel",
    "r2d2",
    "reqwest",
    "lettre",
    "hyper",
    "pq-sys",
];

#[test]
fn domain_crates_stay_pure() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    for domain in DOMAINS {
        let out = Command::new(&cargo)
            .current_dir(root)
            .args([
                "tree",
                "--offline",
                "-e",
                "normal",
                "--prefix",
                "none",
                "-p",
                domain,
            ])
            .output()
            .expect("cargo tree runs");
        assert!(
            out.status.success(),
            "cargo tree -p {domain}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tree = String::from_utf8_lossy(&out.stdout);
        for line in tree.lines().skip(1) {
            let name = line.split_whitespace().next().unwrap_or_default();
            assert!(
                !FORBIDDEN.contains(&name),
                "{domain} depends on {name}: domain crates must stay free of web/db/http layers"
            );
            assert!(
                !DOMAINS.contains(&name),
                "{domain} depends on the domain crate {name}: workflows spanning domains live in the app"
            );
        }
    }
}
