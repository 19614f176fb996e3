#!/usr/bin/env bash
# Regenerates crates/db/src/schema.rs from migrations/ with `diesel print-schema`.
#
# Needs the Diesel CLI (`cargo install diesel_cli --no-default-features --features postgres-bundled`)
# and a PostgreSQL server: SCHEMA_DATABASE_URL names a scratch database on it, which is dropped and
# recreated (default: postgres://postgres@127.0.0.1:5432/oasis_print_schema).
# `foundation::schema::schema_rs_matches_migrations` fails when the checked-in file is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
url="${SCHEMA_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/oasis_print_schema}"
diesel database reset --database-url "$url" --migration-dir migrations >/dev/null
diesel print-schema --database-url "$url" --config-file diesel.toml > crates/db/src/schema.rs.new
mv crates/db/src/schema.rs.new crates/db/src/schema.rs
echo "wrote crates/db/src/schema.rs"
