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

/// Route modules take `web` from `oasis_server::web`, whose `Json` answers DRF's field errors:
/// a route importing `actix_web::web` would bypass that for its JSON bodies.
#[test]
fn routes_take_json_bodies_through_the_one_extractor() {
    fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                rust_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let root = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../apps/oasis-server/src/routes"
    ));
    let mut files = Vec::new();
    rust_files(root, &mut files);
    assert!(files.len() > 10, "{}", root.display());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let flat: String = text.split_whitespace().collect();
        let bypass = flat.contains("actix_web::web")
            || flat.split("useactix_web::{").skip(1).any(|rest| {
                rest.split('}')
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .any(|i| i == "web")
            });
        assert!(
            !bypass,
            "{} imports actix_web::web: use crate::web (its Json gives DRF field errors)",
            f.display()
        );
    }
}
