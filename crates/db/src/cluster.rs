//! A private PostgreSQL cluster run from the system's server binaries.
//!
//! Used by `oasis serve` when `DATABASE_URL` is unset (data in `$OASIS_DATA_DIR/postgres`) and by
//! the test-database crate (a throwaway cluster per test run). The cluster listens only on a Unix
//! socket inside its own folder, so it never clashes with another server's TCP port. As root
//! (PostgreSQL refuses to run as root) every PostgreSQL command runs as the `postgres` system user
//! (or `nobody`) through `runuser`.
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no PostgreSQL server binaries found (looked in $OASIS_PG_BIN, `pg_config --bindir`, /usr/lib/postgresql/*/bin and PATH): install PostgreSQL (e.g. `apt-get install postgresql`) or set DATABASE_URL")]
    NoBinaries,
    #[error("running as root and no unprivileged user (postgres or nobody) to run PostgreSQL as")]
    NoUser,
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Where the server binaries (`initdb`, `pg_ctl`, `postgres`) live.
pub fn find_bin_dir() -> Result<PathBuf, ClusterError> {
    let has_all = |d: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| d.join(b).is_file())
    };
    // An explicit choice is final (also lets tests simulate a machine without PostgreSQL).
    if let Some(dir) = std::env::var_os("OASIS_PG_BIN").map(PathBuf::from) {
        return if has_all(&dir) {
            Ok(dir)
        } else {
            Err(ClusterError::NoBinaries)
        };
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_all(&dir) {
                return Ok(dir);
            }
        }
    }
    // Newest major version first.
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                Some((v, e.path().join("bin")))
            })
            .filter(|(_, d)| has_all(d))
            .collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.0));
        if let Some((_, d)) = versions.into_iter().next() {
            return Ok(d);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if has_all(&d) {
                return Ok(d);
            }
        }
    }
    Err(ClusterError::NoBinaries)
}

/// Uid and gid of a system user, read from /etc/passwd.
fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        if f.next()? != name {
            return None;
        }
        let _pw = f.next()?;
        let uid = f.next()?.parse().ok()?;
        let gid = f.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

fn is_root() -> bool {
    // The owner of /proc/self is the effective uid of this process.
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Tuning for the cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// Trade durability for speed (tests): fsync, synchronous_commit and full_page_writes off.
    pub ephemeral: bool,
}

/// A running (or reused) private cluster.
#[derive(Debug)]
pub struct EmbeddedCluster {
    root: PathBuf,
    bin: PathBuf,
    run_as: Option<String>,
    started_here: bool,
}

impl EmbeddedCluster {
    /// Creates the cluster in `root` (data in `root/data`, socket in `root`) on first use, starts
    /// it unless it is already running, and returns a handle. Blocking.
    pub fn start(root: &Path, opts: &ClusterOptions) -> Result<Self, ClusterError> {
        let bin = find_bin_dir()?;
        fs::create_dir_all(root)?;
        let root = fs::canonicalize(root)?;
        let run_as = if is_root() {
            let user = ["postgres", "nobody"]
                .into_iter()
                .find(|u| lookup_user(u).is_some())
                .ok_or(ClusterError::NoUser)?;
            let (uid, gid) = lookup_user(user).ok_or(ClusterError::NoUser)?;
            chown_recursive(&root, uid, gid)?;
            let mut parent = root.parent();
            while let Some(dir) = parent {
                allow_traversal(dir)?;
                parent = dir.parent();
            }
            Some(user.to_owned())
        } else {
            None
        };
        let mut cluster = Self {
            root,
            bin,
            run_as,
            started_here: false,
        };
        let data = cluster.data_dir();
        if !data.join("PG_VERSION").is_file() {
            let out = cluster.pg(
                "initdb",
                &[
                    "-D",
                    path_str(&data)?,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-N",
                    "-E",
                    "UTF8",
                    "--no-locale",
                ],
            )?;
            check(out, "initdb")?;
        }
        if !cluster.is_running()? {
            let mut server_opts = format!(
                "-k '{}' -c listen_addresses='' -p 5432 -c max_connections=200",
                cluster.root.display()
            );
            if opts.ephemeral {
                server_opts
                    .push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
            }
            let log = cluster.root.join("postgres.log");
            let out = cluster.pg(
                "pg_ctl",
                &[
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    path_str(&data)?,
                    "-l",
                    path_str(&log)?,
                    "-o",
                    &server_opts,
                    "start",
                ],
            )?;
            check(out, "pg_ctl start")?;
            cluster.started_here = true;
        }
        Ok(cluster)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The folder holding the Unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.root
    }

    /// Whether this handle started the server (and so should stop it).
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    /// A libpq URL for `database` on this cluster, through its socket.
    pub fn url(&self, database: &str) -> String {
        let host: String =
            url::form_urlencoded::byte_serialize(self.root.to_string_lossy().as_bytes()).collect();
        format!("postgresql://postgres@localhost/{database}?host={host}")
    }

    fn is_running(&self) -> Result<bool, ClusterError> {
        let out = self.pg("pg_ctl", &["-D", path_str(&self.data_dir())?, "status"])?;
        Ok(out.status.success())
    }

    /// Stops the server (fast shutdown: disconnects clients, no crash recovery needed next time).
    pub fn stop(&self) -> Result<(), ClusterError> {
        let out = self.pg(
            "pg_ctl",
            &[
                "-w",
                "-D",
                path_str(&self.data_dir())?,
                "-m",
                "fast",
                "stop",
            ],
        )?;
        check(out, "pg_ctl stop")
    }

    fn pg(&self, tool: &str, args: &[&str]) -> Result<Output, ClusterError> {
        let exe = self.bin.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new(runuser());
                c.arg("-u").arg(user).arg("--").arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.args(args)
            .current_dir(&self.root)
            .env("LC_ALL", "C")
            .stdin(std::process::Stdio::null());
        cmd.output().map_err(|e| ClusterError::Command {
            what: format!("running {}", exe.display()),
            detail: e.to_string(),
        })
    }
}

fn runuser() -> &'static str {
    ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("runuser")
}

fn path_str(p: &Path) -> Result<&str, ClusterError> {
    p.to_str().ok_or_else(|| ClusterError::Command {
        what: "path".into(),
        detail: format!("{} is not valid UTF-8", p.display()),
    })
}

fn check(out: Output, what: &str) -> Result<(), ClusterError> {
    if out.status.success() {
        return Ok(());
    }
    let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if detail.is_empty() {
        detail = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    }
    Err(ClusterError::Command {
        what: what.to_owned(),
        detail,
    })
}

/// The unprivileged PostgreSQL user must be able to reach its folder: a folder on the way that
/// others cannot traverse (e.g. one made by `mktemp -d`, mode 0700) gets the search bit for
/// others — traversal only, its listing stays private.
fn allow_traversal(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = fs::metadata(dir)?.permissions();
    if perms.mode() & 0o001 == 0 {
        tracing::warn!(
            dir = %dir.display(),
            "letting the PostgreSQL user traverse this folder (o+x) to reach its data"
        );
        perms.set_mode(perms.mode() | 0o001);
        fs::set_permissions(dir, perms)?;
    }
    Ok(())
}

fn chown_recursive(dir: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_dir() {
            chown_recursive(&entry.path(), uid, gid)?;
        } else if !ft.is_symlink() {
            std::os::unix::fs::chown(entry.path(), Some(uid), Some(gid))?;
        }
    }
    Ok(())
}
