# Oasis developer commands (https://github.com/casey/just). Plain cargo works too; see README.

# Run the API on 127.0.0.1:8000 with embedded defaults (PostgreSQL + Razorpay simulator).
run:
    cargo run --release -p oasis-server

# The whole test suite (real PostgreSQL: $DATABASE_URL or a throwaway cluster).
test:
    cargo test --workspace

# Lints exactly as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

fmt:
    cargo fmt --all

# Create the database if missing and apply pending migrations.
migrate:
    cargo run --release -p oasis-server -- migrate

# Benchmarks (throughput/latency targets live here, never in tests): hot reads, login and webhook
# intake against pgbench in one run; writes docs/benchmarks.md (needs wrk: apt-get install -y wrk).
bench *ARGS:
    cargo build --release -p oasis-server --bin oasis
    cargo bench -p oasis-server --bench login --no-run
    python3 apps/oasis-server/benches/bench.py {{ARGS}}

# Idle live-stream memory: RSS of `oasis serve` with 10,000 idle notification streams
# (goal <= 64 MB extra). Needs PostgreSQL on 127.0.0.1:5432 (or --db URL).
bench-sse *ARGS:
    cargo build --release -p oasis-server --bin oasis
    python3 apps/oasis-server/benches/sse_idle.py {{ARGS}}

# The Razorpay simulator on its own.
sim port="9000":
    cargo run --release -p razorpay-sim -- --bind 127.0.0.1:{{port}} --key-id rzp_test_oasis --key-secret oasis_secret --webhook-secret oasis_webhook

# The schema fuzzer (schemathesis, installed into a venv under the target dir) against the real
# app as anonymous, fan, member and creator: SECS per role (CI runs 30), a fresh seed each time.
fuzz secs="600" examples="200":
    OASIS_FUZZ_SECS={{secs}} OASIS_FUZZ_EXAMPLES={{examples}} OASIS_FUZZ_SEED=$(date +%s) cargo test -p oasis-tests --test api security::fuzz -- --nocapture

# What CI runs.
ci:
    bash .ci/run

# Regenerate crates/db/src/schema.rs from migrations/ (needs diesel_cli and a PostgreSQL server).
schema:
    scripts/print-schema.sh

# The webhook storm (docs/reliability.md): two `oasis` processes, duplicates, cuts, a SIGKILL,
# reconciliation, then the final state compared with the simulator's. CI runs a small one.
storm events="10000":
    cargo test --release -p oasis-server --test storm -- --events {{events}}
