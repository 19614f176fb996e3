//! Creating and dropping databases named in a connection URL.
use diesel::prelude::*;
use diesel::sql_types::Text;
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("DATABASE_URL is not a valid postgres URL: {0}")]
    BadUrl(String),
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(String),
    #[error("database command failed: {0}")]
    Query(String),
}

/// The database name of a URL (its path), e.g. `oasis` in `postgres://u@h/oasis`.
pub fn database_name(url: &str) -> Result<String, AdminError> {
    let u = Url::parse(url).map_err(|e| AdminError::BadUrl(e.to_string()))?;
    if !matches!(u.scheme(), "postgres" | "postgresql") {
        return Err(AdminError::BadUrl(format!(
            "scheme must be postgres:// or postgresql://, got {}://",
            u.scheme()
        )));
    }
    let name = u.path().trim_start_matches('/').to_owned();
    if name.is_empty() {
        return Err(AdminError::BadUrl("it names no database".into()));
    }
    Ok(name)
}

/// The same URL pointing at another database on the same server.
pub fn with_database(url: &str, db: &str) -> Result<String, AdminError> {
    let mut u = Url::parse(url).map_err(|e| AdminError::BadUrl(e.to_string()))?;
    u.set_path(&format!("/{db}"));
    Ok(u.to_string())
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Connects to the server's `postgres` maintenance database.
pub fn maintenance_connection(url: &str) -> Result<PgConnection, AdminError> {
    let admin = with_database(url, "postgres")?;
    PgConnection::establish(&admin).map_err(|e| AdminError::Connect(e.to_string()))
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    exists: bool,
}

/// Creates the URL's database unless it exists. Returns true when it was created.
pub fn ensure_database(url: &str) -> Result<bool, AdminError> {
    let name = database_name(url)?;
    // Fast path: the database already answers.
    if PgConnection::establish(url).is_ok() {
        return Ok(false);
    }
    let mut conn = maintenance_connection(url)?;
    let exists: Exists =
        diesel::sql_query("SELECT EXISTS(SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<Text, _>(&name)
            .get_result(&mut conn)
            .map_err(|e| AdminError::Query(e.to_string()))?;
    if exists.exists {
        return Ok(false);
    }
    match diesel::sql_query(format!("CREATE DATABASE {}", quote_ident(&name))).execute(&mut conn) {
        Ok(_) => Ok(true),
        // Lost a race with another process creating it: fine.
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().contains("already exists") =>
        {
            Ok(false)
        }
        Err(e) => Err(AdminError::Query(e.to_string())),
    }
}

/// `CREATE DATABASE name TEMPLATE template` on the server of `url`.
pub fn create_from_template(
    conn: &mut PgConnection,
    name: &str,
    template: &str,
) -> Result<(), AdminError> {
    diesel::sql_query(format!(
        "CREATE DATABASE {} TEMPLATE {}",
        quote_ident(name),
        quote_ident(template)
    ))
    .execute(conn)
    .map(|_| ())
    .map_err(|e| AdminError::Query(e.to_string()))
}

/// `DROP DATABASE IF EXISTS name WITH (FORCE)`.
pub fn drop_database(conn: &mut PgConnection, name: &str) -> Result<(), AdminError> {
    diesel::sql_query(format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote_ident(name)
    ))
    .execute(conn)
    .map(|_| ())
    .map_err(|e| AdminError::Query(e.to_string()))
}

#[derive(QueryableByName)]
struct DbName {
    #[diesel(sql_type = Text)]
    datname: String,
}

/// Names of databases starting with `prefix`.
pub fn databases_with_prefix(
    conn: &mut PgConnection,
    prefix: &str,
) -> Result<Vec<String>, AdminError> {
    let rows: Vec<DbName> =
        diesel::sql_query("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
            .bind::<Text, _>(prefix)
            .load(conn)
            .map_err(|e| AdminError::Query(e.to_string()))?;
    Ok(rows.into_iter().map(|r| r.datname).collect())
}

/// Stores `statement_timeout` (milliseconds, 0 = none) as the connected role's default in the
/// connected database (`ALTER ROLE … IN DATABASE … SET`), and sets it on this connection too.
/// Every server connection opened afterwards starts with it, which is what keeps the bound behind
/// a transaction-mode pooler (a session `SET` stays on whichever server connection it ran on).
pub fn set_role_statement_timeout(conn: &mut PgConnection, ms: u64) -> Result<(), AdminError> {
    // `ALTER ROLE` takes no parameters: the names come from the server and are quoted there
    // (`%I`), the value is a number.
    diesel::sql_query(format!(
        "DO $$ BEGIN EXECUTE format('ALTER ROLE %I IN DATABASE %I SET statement_timeout = %s', \
         current_user, current_database(), {ms}); END $$"
    ))
    .execute(conn)
    .map_err(|e| AdminError::Query(e.to_string()))?;
    diesel::sql_query(format!("SET statement_timeout = {ms}"))
        .execute(conn)
        .map(|_| ())
        .map_err(|e| AdminError::Query(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_database_keeping_socket_host() {
        let u = "postgresql://postgres@localhost/oasis?host=%2Ftmp%2Fx";
        assert_eq!(database_name(u).unwrap(), "oasis");
        assert_eq!(
            with_database(u, "postgres").unwrap(),
            "postgresql://postgres@localhost/postgres?host=%2Ftmp%2Fx"
        );
        assert!(database_name("mysql://x/y").is_err());
        assert!(database_name("postgres://x").is_err());
    }
}
