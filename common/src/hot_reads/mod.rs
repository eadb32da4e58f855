//! The hottest reads (a token's user in auth, a user's masked list in settings) on connections of
//! their own, outside sqlx's pool. sqlx pings every connection it takes back, unconditionally:
//! one more round trip to PostgreSQL (or hand-off to SQLite's worker thread) per query, which
//! `scripts/bench` measured at about 15 % of a `GET /api/settings` or `/api/auth/me`. The ping
//! guards against a connection abandoned mid-query (a cancelled request); here a connection goes
//! back only when its query ran to completion and is closed otherwise (sqlx would also drain what
//! an abandoned query left on the wire; the tests check the next read gets only its own rows).
//! Pooling is deadpool's; this module adds the connection kinds, the "ran to completion" mark and
//! the mapping of failures to [`DbErr`], so [`crate::db::is_outage`] tells outages as before.
//! Only single-key reads go through here; everything else keeps sea-orm's pool. On PostgreSQL,
//! [`CoalescedRead`] answers concurrent reads of one query for different keys with one query.

use crate::db::{ACQUIRE_TIMEOUT, DbKind, PING_IF_IDLE_FOR, sqlite_pragmas};
use deadpool::managed::{Manager, Metrics, Pool, PoolError, RecycleError, RecycleResult};
use sea_orm::sqlx::postgres::{PgConnectOptions, PgRow};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteRow};
use sea_orm::sqlx::{self, ConnectOptions, Connection, FromRow, PgConnection, SqliteConnection};
use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};
use std::str::FromStr;
use std::sync::Arc;

mod coalesced;
pub use coalesced::CoalescedRead;

/// An open connection to either kind of database.
enum Open {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// A pooled connection and whether its last query ran to completion (only then is it reused).
struct Pooled {
    open: Open,
    settled: bool,
}

/// How connections are opened: the URL's options, parsed once.
enum Connector {
    Postgres(PgConnectOptions),
    Sqlite(SqliteConnectOptions),
}

impl Manager for Connector {
    type Type = Pooled;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<Pooled, sqlx::Error> {
        let open = match self {
            Connector::Postgres(options) => Open::Postgres(options.connect().await?),
            Connector::Sqlite(options) => Open::Sqlite(options.connect().await?),
        };
        Ok(Pooled {
            open,
            settled: true,
        })
    }

    async fn recycle(&self, pooled: &mut Pooled, metrics: &Metrics) -> RecycleResult<sqlx::Error> {
        if !pooled.settled {
            return Err(RecycleError::message("abandoned mid-query"));
        }
        if metrics.last_used() >= PING_IF_IDLE_FOR {
            match &mut pooled.open {
                Open::Postgres(connection) => connection.ping().await?,
                Open::Sqlite(connection) => connection.ping().await?,
            }
        }
        Ok(())
    }
}

/// A small pool of connections for single-key reads on the hot path.
pub struct HotReads {
    pool: Pool<Connector>,
    kind: DbKind,
}

/// Connections per process. PostgreSQL: twice the cores (a read waits on the network about as
/// long as it runs), at least 2, at most 16. SQLite: one per core — a read there never waits, and
/// each connection is a thread of its own that more of would only contend for the same cores.
fn pool_size(kind: DbKind) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    match kind {
        DbKind::Postgres => (cores * 2).clamp(2, 16),
        DbKind::Sqlite => cores.clamp(1, 8),
    }
}

impl HotReads {
    /// A lazily filled pool for `url`; `None` for an in-memory SQLite database, which another
    /// connection would not see (callers then read through sea-orm).
    pub fn for_url(url: &str) -> Result<Option<HotReads>, DbErr> {
        let Some(kind) = DbKind::of(url) else {
            return Err(DbErr::Custom("not a database URL".into()));
        };
        let connector = match kind {
            DbKind::Postgres => Connector::Postgres(parse(url)?),
            DbKind::Sqlite if url.contains(":memory:") || url.contains("mode=memory") => {
                return Ok(None);
            }
            DbKind::Sqlite => Connector::Sqlite(sqlite_pragmas(parse(url)?)),
        };
        let pool = Pool::builder(connector)
            .max_size(pool_size(kind))
            .wait_timeout(Some(ACQUIRE_TIMEOUT))
            .create_timeout(Some(ACQUIRE_TIMEOUT))
            .recycle_timeout(Some(ACQUIRE_TIMEOUT))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        Ok(Some(HotReads { pool, kind }))
    }

    /// Every row of `sql` with `key` bound to its one parameter (`$1`, which both databases
    /// read), as `T`. A connection goes back to the pool only when the query completed.
    pub async fn fetch_all<T>(&self, sql: &'static str, key: &str) -> Result<Vec<T>, DbErr>
    where
        T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
    {
        let mut pooled = self.pool.get().await.map_err(pool_error)?;
        pooled.settled = false;
        let rows = match &mut pooled.open {
            Open::Postgres(connection) => sqlx::query_as(sql).bind(key).fetch_all(connection).await,
            Open::Sqlite(connection) => sqlx::query_as(sql).bind(key).fetch_all(connection).await,
        }
        .map_err(query_error)?;
        pooled.settled = true;
        Ok(rows)
    }
}

fn parse<T: FromStr<Err = sqlx::Error>>(url: &str) -> Result<T, DbErr> {
    T::from_str(url).map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))))
}

/// A failed query, as sea-orm reports one (so [`crate::db::is_outage`] reads it the same way).
fn query_error(error: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(error)))
}

/// No connection in time, or none could be opened: an outage.
fn pool_error(error: PoolError<sqlx::Error>) -> DbErr {
    match error {
        PoolError::Backend(error) => DbErr::Conn(RuntimeErr::SqlxError(Arc::new(error))),
        PoolError::Timeout(_) => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        other => DbErr::Conn(RuntimeErr::Internal(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::is_outage;

    #[tokio::test]
    async fn in_memory_sqlite_has_no_hot_reads() {
        assert!(HotReads::for_url("sqlite::memory:").unwrap().is_none());
    }

    /// A SQLite file holding `t (k, v)` with `rows`, and hot reads on it (the directory lives as
    /// long as the first element).
    pub(super) async fn file_database(rows: &str) -> (tempfile::TempDir, HotReads) {
        use sea_orm::ConnectionTrait;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("hot.db").display());
        let db = crate::db::connect(&url).await.unwrap();
        db.execute_unprepared(&format!(
            "CREATE TABLE t (k TEXT, v BIGINT); INSERT INTO t VALUES {rows};"
        ))
        .await
        .unwrap();
        (dir, HotReads::for_url(&url).unwrap().unwrap())
    }

    #[tokio::test]
    async fn reads_a_file_database_and_reuses_only_settled_connections() {
        let (_dir, hot) = file_database("('a', 1), ('a', 2), ('b', 3)").await;
        let rows: Vec<(i64,)> = hot
            .fetch_all("SELECT v FROM t WHERE k = $1 ORDER BY v", "a")
            .await
            .unwrap();
        assert_eq!(rows, vec![(1,), (2,)]);
        assert_eq!(hot.pool.status().size, 1);
        // A query that fails closes its connection rather than returning it.
        let error = hot
            .fetch_all::<(i64,)>("SELECT v FROM missing WHERE k = $1", "a")
            .await
            .unwrap_err();
        assert!(!is_outage(&error), "{error}");
        let again: Vec<(i64,)> = hot
            .fetch_all("SELECT v FROM t WHERE k = $1", "b")
            .await
            .unwrap();
        assert_eq!(again, vec![(3,)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_abandoned_mid_query_leaves_nothing_behind_for_the_next() {
        let (_dir, hot) = file_database("('a', 1), ('b', 2)").await;
        for round in 0..50 {
            // Dropped at its first await: the query may be half-way on the connection.
            let abandoned = hot.fetch_all::<(i64,)>("SELECT v FROM t WHERE k = $1", "a");
            let _ = tokio::time::timeout(std::time::Duration::ZERO, abandoned).await;
            let rows: Vec<(i64,)> = hot
                .fetch_all("SELECT v FROM t WHERE k = $1", "b")
                .await
                .unwrap();
            assert_eq!(rows, vec![(2,)], "round {round}");
        }
    }

    /// The storage tests' PostgreSQL and hot reads on it; `None` (skip) when it is not there,
    /// unless CI=true, where it must be.
    pub(super) async fn postgres() -> Option<(String, HotReads)> {
        let url = std::env::var("LATCHKEY_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let hot = HotReads::for_url(&url).unwrap().unwrap();
        let probe = hot
            .fetch_all::<(i64,)>("SELECT 1::bigint WHERE $1 = ''", "")
            .await;
        if let Err(error) = probe {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but PostgreSQL at {url} is unreachable: {error}"
            );
            eprintln!("skipping: PostgreSQL at {url} unreachable ({error})");
            return None;
        }
        Some((url, hot))
    }

    /// On PostgreSQL a query dropped half-way leaves its rows on the wire; the connection must
    /// not serve the next read. The server of the storage tests (CI=true: it must be there).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_rows_left_on_the_wire_never_reach_the_next_read() {
        let Some((_, hot)) = postgres().await else {
            return;
        };
        for round in 0..50 {
            let many = hot.fetch_all::<(i64,)>(
                "SELECT generate_series(1, 20000)::bigint WHERE $1 = 'many'",
                "many",
            );
            let _ = tokio::time::timeout(std::time::Duration::from_micros(200), many).await;
            let rows: Vec<(i64,)> = hot
                .fetch_all("SELECT 7::bigint WHERE $1 = 'one'", "one")
                .await
                .unwrap();
            assert_eq!(rows, vec![(7,)], "round {round}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_postgres_is_an_outage() {
        let hot = HotReads::for_url("postgres://postgres@127.0.0.1:1/none")
            .unwrap()
            .unwrap();
        let error = hot
            .fetch_all::<(i64,)>("SELECT 1 WHERE $1 = ''", "")
            .await
            .unwrap_err();
        assert!(is_outage(&error), "{error}");
    }
}
