#![doc = include_str!("../README.md")]

use diesel::{Connection, PgConnection, RunQueryDsl};
use oasis_db::admin;
use oasis_db::cluster::{ClusterOptions, EmbeddedCluster};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

const DB_PREFIX: &str = "oasis_test_";
const TEMPLATE_PREFIX: &str = "oasis_tpl_";

struct Server {
    /// URL of any database on the server (its database part is swapped per use).
    base_url: String,
    /// Where tests and apps connect instead (`TESTDB_POOLER_URL`, e.g. pgbouncer in front of
    /// the server); creating, cloning and dropping databases always goes to `base_url`.
    pooler_url: Option<String>,
    template: String,
}

impl Server {
    /// The URL tests use for database `name`: through the pooler when one is set.
    fn client_url(&self, name: &str) -> String {
        admin::with_database(self.pooler_url.as_deref().unwrap_or(&self.base_url), name)
            .expect("test database url")
    }
}

static SERVER: OnceLock<Server> = OnceLock::new();
static CLUSTER: Mutex<Option<(EmbeddedCluster, PathBuf)>> = Mutex::new(None);
static COUNTER: AtomicU32 = AtomicU32::new(0);

fn server() -> &'static Server {
    SERVER.get_or_init(|| init().unwrap_or_else(|e| panic!("test database setup failed: {e}")))
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The pid embedded in `oasis_test_<pid>_<n>` / `oasis_tpl_<pid>` names.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix(DB_PREFIX)
        .or_else(|| name.strip_prefix(TEMPLATE_PREFIX))?;
    rest.split('_').next()?.parse().ok()
}

fn init() -> Result<Server, Box<dyn std::error::Error>> {
    let pid = std::process::id();
    let base_url = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => start_private_cluster(pid)?,
    };
    let mut admin_conn = admin::maintenance_connection(&base_url)?;
    // Sweep leftovers of crashed runs that used the same server.
    for name in admin::databases_with_prefix(&mut admin_conn, "oasis_t")? {
        if let Some(owner) = owner_pid(&name) {
            if owner != pid && !pid_alive(owner) {
                let _ = admin::drop_database(&mut admin_conn, &name);
            }
        }
    }
    let template = format!("{TEMPLATE_PREFIX}{pid}");
    admin::drop_database(&mut admin_conn, &template)?;
    diesel::sql_query(format!("CREATE DATABASE \"{template}\"")).execute(&mut admin_conn)?;
    {
        let mut conn = PgConnection::establish(&admin::with_database(&base_url, &template)?)?;
        oasis_db::migrations::run_pending(&mut conn).map_err(|e| e.to_string())?;
    } // the template must have no open connection when it is cloned
    let pooler_url = std::env::var("TESTDB_POOLER_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    Ok(Server {
        base_url,
        pooler_url,
        template,
    })
}

fn start_private_cluster(pid: u32) -> Result<String, Box<dyn std::error::Error>> {
    let base = std::env::temp_dir().join("oasis-testdb");
    std::fs::create_dir_all(&base)?;
    // Sweep cluster folders of dead test processes.
    if let Ok(entries) = std::fs::read_dir(&base) {
        for e in entries.flatten() {
            if let Ok(owner) = e.file_name().to_string_lossy().parse::<u32>() {
                if owner != pid && !pid_alive(owner) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    let root = base.join(pid.to_string());
    let cluster = EmbeddedCluster::start(&root, &ClusterOptions { ephemeral: true })?;
    let url = cluster.url("postgres");
    *CLUSTER.lock().unwrap_or_else(|e| e.into_inner()) = Some((cluster, root));
    register_exit_hook();
    Ok(url)
}

extern "C" fn stop_cluster_at_exit() {
    if let Ok(mut guard) = CLUSTER.lock() {
        if let Some((cluster, root)) = guard.take() {
            let _ = cluster.stop();
            let _ = std::fs::remove_dir_all(root);
        }
    }
}

#[allow(unsafe_code)]
fn register_exit_hook() {
    // SAFETY: `atexit` only stores the function pointer; the hook is a plain `extern "C" fn`
    // that does not unwind. The test harness ends with `process::exit`, which runs it.
    unsafe {
        libc::atexit(stop_cluster_at_exit);
    }
}

/// A private, migrated database, dropped when this value is dropped.
pub struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    /// Clones the migrated template into a new database. Blocking (a few milliseconds).
    pub fn new() -> Self {
        let srv = server();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{DB_PREFIX}{}_{n}", std::process::id());
        let mut conn =
            admin::maintenance_connection(&srv.base_url).expect("connect to test server");
        admin::create_from_template(&mut conn, &name, &srv.template)
            .unwrap_or_else(|e| panic!("create test database {name}: {e}"));
        let url = srv.client_url(&name);
        Self { name, url }
    }

    /// An empty database (no migrations applied), for migration tests.
    pub fn empty() -> Self {
        let srv = server();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{DB_PREFIX}{}_{n}", std::process::id());
        let mut conn =
            admin::maintenance_connection(&srv.base_url).expect("connect to test server");
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .unwrap_or_else(|e| panic!("create test database {name}: {e}"));
        let url = srv.client_url(&name);
        Self { name, url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database on the server itself, never through `TESTDB_POOLER_URL` (for what needs a
    /// session, e.g. `LISTEN`).
    pub fn direct_url(&self) -> String {
        admin::with_database(&server().base_url, &self.name).expect("url")
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A direct connection (for assertions on stored rows).
    pub fn conn(&self) -> PgConnection {
        let mut conn = PgConnection::establish(&self.url).expect("connect to test database");
        // Behind a transaction-mode pooler (TESTDB_POOLER_URL) named prepared statements would
        // meet other clients' server connections: plan every statement, as the apps then do.
        if std::env::var("OASIS_DB_STATEMENT_CACHE").as_deref() == Ok("false") {
            conn.set_prepared_statement_cache_size(diesel::connection::CacheSize::Disabled);
        }
        conn
    }

    /// URL of another (not yet existing) database name on the same server.
    pub fn server_url_for(&self, database: &str) -> String {
        admin::with_database(&server().base_url, database).expect("url")
    }
}

impl Default for TestDb {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut conn) = admin::maintenance_connection(&server().base_url) {
            let _ = admin::drop_database(&mut conn, &self.name);
        }
    }
}
