//! Building and running the server: database (embedded or `DATABASE_URL`), migrations, routes,
//! background workers, graceful shutdown.
use crate::auth::DynAuthenticator;
use crate::config::Settings;
use crate::context::AppContext;
pub use crate::database::{prepare_database, Database, StartupError};
use crate::db::Db;
use crate::error::{self, ApiError};
use crate::jobs::{JobQueue, JobRegistry};
use crate::{openapi, routes, telemetry};
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{Compress, ErrorHandlers, NormalizePath, TrailingSlash};
use actix_web::{web, App, HttpServer};
use oasis_db::cluster::EmbeddedCluster;
use std::net::TcpListener;
use std::sync::Arc;
use tokio::sync::watch;

pub struct Application {
    port: u16,
    server: Server,
    stop_tx: watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    cluster: Option<EmbeddedCluster>,
    streams: crate::stream::StreamHub,
    reads: Arc<crate::read_cache::ReadCache>,
    listener: Option<std::thread::JoinHandle<()>>,
}

impl Application {
    /// Prepares the database and binds the listener (port 0 picks a free port).
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(&settings.bind).map_err(|source| StartupError::Bind {
            addr: settings.bind.clone(),
            source,
        })?;
        Self::build_on(settings, listener).await
    }

    /// Like [`Application::build`], on a listener bound by the caller (tests bind port 0 first
    /// so that `OASIS_PUBLIC_URL` can name the port).
    pub async fn build_on(
        mut settings: Settings,
        listener: TcpListener,
    ) -> Result<Self, StartupError> {
        settings.resolve_secret_key()?;
        let s = settings.clone();
        let database = tokio::task::spawn_blocking(move || prepare_database(&s))
            .await
            .map_err(|e| StartupError::Other(e.to_string()))??;
        let pool = oasis_db::build_pool(&database.url, &settings.pool_options())
            .map_err(|e| StartupError::Database(e.to_string()))?;
        let port = listener
            .local_addr()
            .map_err(|e| StartupError::Other(e.to_string()))?
            .port();
        let payments = crate::payments::Payments::from_settings(&settings, Some(port))
            .map_err(|e| StartupError::Other(e.to_string()))?;
        let streams = crate::stream::StreamHub::new(settings.sse);
        let listen_url = settings
            .listen_database_url
            .clone()
            .unwrap_or_else(|| database.url.clone());
        let reads = Arc::new(crate::read_cache::ReadCache::new(&settings.read_cache));
        let listener_thread = streams.start_listener(listen_url, reads.versions());
        let db = match reads.versions() {
            Some(v) => Db::with_touches(pool, v),
            None => Db::new(pool),
        };
        let ctx = AppContext {
            streams: streams.clone(),
            reads: reads.clone(),
            payments,
            settings: Arc::new(settings),
            db,
            jobs: JobQueue::default(),
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut workers = Vec::new();
        if ctx.settings.background_jobs {
            let mut registry = JobRegistry::default();
            crate::workflows::register_all(&mut registry, &ctx);
            workers.push(tokio::spawn(crate::jobs::run(
                ctx.db.clone(),
                registry,
                ctx.jobs.clone(),
                stop_rx,
                crate::jobs::RunnerSettings::from_settings(&ctx.settings),
            )));
        }
        let server = run(listener, ctx)?;
        Ok(Self {
            port,
            server,
            stop_tx,
            workers,
            cluster: database.cluster,
            streams,
            reads,
            listener: Some(listener_thread),
        })
    }

    /// This process's live notification streams ([`crate::stream::StreamHub::shutdown`] ends
    /// them, e.g. before a graceful stop through the handle).
    pub fn streams(&self) -> crate::stream::StreamHub {
        self.streams.clone()
    }

    /// This process's read cache (tests wait on it for writes made outside the server).
    pub fn read_cache(&self) -> Arc<crate::read_cache::ReadCache> {
        self.reads.clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM (or the handle stops it): stops accepting, lets in-flight
    /// requests finish, stops background workers, then stops the embedded cluster.
    pub async fn run_until_stopped(mut self) -> std::io::Result<()> {
        // Live streams never finish by themselves: end them as soon as a stop signal arrives,
        // so that the graceful stop does not wait its whole timeout for them.
        let streams = self.streams.clone();
        let on_signal = tokio::spawn(async move {
            shutdown_signal().await;
            streams.shutdown();
        });
        let result = self.server.await;
        on_signal.abort();
        self.streams.shutdown();
        if let Some(t) = self.listener.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        let _ = self.stop_tx.send(true);
        for w in self.workers {
            let _ = w.await;
        }
        if let Some(cluster) = self.cluster {
            if cluster.started_here() {
                tracing::info!("stopping the embedded PostgreSQL cluster");
                let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
            }
        }
        result
    }
}

/// SIGINT or SIGTERM (what actix-web's own handler stops on).
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn run(listener: TcpListener, ctx: AppContext) -> Result<Server, StartupError> {
    let authenticator: DynAuthenticator = routes::identity::authenticator(&ctx);
    let authenticator = web::Data::new(authenticator);
    let db = web::Data::new(ctx.db.clone());
    let inbox = web::Data::new(
        crate::workflows::inbox::WebhookInbox::start(
            ctx.db.clone(),
            ctx.jobs.clone(),
            crate::workflows::billing::JOB_WEBHOOK,
            ctx.settings.webhook_batch_max,
            ctx.settings.webhook_writers,
        )
        .map_err(|e| StartupError::Other(format!("cannot start the webhook writers: {e}")))?,
    );
    let json_limit = ctx.settings.json_limit;
    let workers = ctx.settings.workers;
    let blocking = match ctx.settings.blocking_threads {
        0 => ctx.settings.db_pool_size as usize,
        n => n,
    };
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(NormalizePath::new(TrailingSlash::Trim))
            .wrap(Compress::default())
            .wrap(actix_web::middleware::from_fn(
                crate::auth::authenticate_presented,
            ))
            .wrap(ErrorHandlers::new().default_handler(error::json_error_bodies))
            .wrap_fn(telemetry::request_span)
            .app_data(error::json_config(json_limit))
            .app_data(error::path_config())
            .app_data(error::query_config())
            .app_data(authenticator.clone())
            .app_data(db.clone())
            .app_data(inbox.clone())
            .app_data(web::Data::new(ctx.clone()))
            .configure(|cfg| routes::config(cfg, &ctx))
            .configure(openapi::config)
            .default_service(web::to(error::not_found))
    })
    .shutdown_timeout(30)
    .worker_max_blocking_threads(blocking);
    if workers > 0 {
        server = server.workers(workers);
    }
    let server = server
        .listen(listener)
        .map_err(|e| StartupError::Other(e.to_string()))?
        .run();
    Ok(server)
}

/// Not found helper for handlers that look rows up.
pub fn not_found<T>() -> Result<T, ApiError> {
    Err(ApiError::not_found())
}
