//! Database connection for SQLite (embedded default) and PostgreSQL, with URLs redacted in every
//! message so credentials never reach a log. A PostgreSQL pool gives up on a connection after
//! [`ACQUIRE_TIMEOUT`], well under the shortest route budget, so a database outage answers
//! `503 UPSTREAM_UNAVAILABLE` rather than running a request out of time; [`is_outage`] tells an
//! outage from any other database error.

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use std::time::Duration;

/// How long a PostgreSQL query waits for a pooled connection, a new connection included (sqlx
/// retries a refused connection until then). Well under the shortest route budget (2 s), so an
/// outage is answered as one, in time.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);
/// SQLite is a local file that cannot be "down": waiting for one of its few connections is
/// contention, worth waiting for up to the route's budget.
const SQLITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A pooled connection idle this long is pinged before use (a proxy, firewall or restarted
/// server may have dropped it); busier connections are used without the extra round trip.
pub const PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);

/// The kind of database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

impl DbKind {
    /// Reads the kind from a URL's scheme.
    pub fn of(url: &str) -> Option<DbKind> {
        if url.starts_with("sqlite:") {
            Some(DbKind::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(DbKind::Postgres)
        } else {
            None
        }
    }

    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            DbKind::Sqlite => "sqlite",
            DbKind::Postgres => "postgres",
        }
    }
}

/// Why the database could not be used; display text carries no credentials.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database url `{0}` is neither sqlite:// nor postgres://")]
    UnknownScheme(String),
    #[error("cannot create the directory for {0}: {1}")]
    Directory(String, std::io::ErrorKind),
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
}

/// The URL with any password replaced by `***`, for logs and messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparseable url>".to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

/// Connects (creating the SQLite file's directory when needed) and checks the connection.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbError> {
    let kind = DbKind::of(url).ok_or_else(|| DbError::UnknownScheme(redact_url(url)))?;
    if kind == DbKind::Sqlite {
        ensure_sqlite_dir(url)?;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    let acquire = match kind {
        DbKind::Sqlite => SQLITE_ACQUIRE_TIMEOUT,
        DbKind::Postgres => ACQUIRE_TIMEOUT,
    };
    options
        .max_connections(if kind == DbKind::Sqlite { 4 } else { 16 })
        .min_connections(1)
        .connect_timeout(acquire)
        .acquire_timeout(acquire)
        .sqlx_logging(false)
        // sqlx pings a pooled connection on every acquire by default: one more round trip to
        // PostgreSQL (or hand-off to SQLite's worker thread) per query. Only a connection idle
        // long enough to have been dropped by a proxy or a restarted server is pinged.
        .test_before_acquire_if_idle_for(PING_IF_IDLE_FOR)
        .map_sqlx_sqlite_opts(sqlite_pragmas);
    Database::connect(options)
        .await
        .map_err(|e| connect_error(url, &e))
}

/// The pragmas every pooled SQLite connection opens with (set per connection, not once on
/// whichever connection ran a statement first): WAL, so reads never wait for a writer;
/// `synchronous=NORMAL`, which in WAL mode syncs at checkpoints rather than on every commit
/// (a commit survives a crash of the process; a power loss may undo the last few); a busy
/// timeout; foreign keys on.
pub(crate) fn sqlite_pragmas(
    options: sea_orm::sqlx::sqlite::SqliteConnectOptions,
) -> sea_orm::sqlx::sqlite::SqliteConnectOptions {
    use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
    options
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true)
}

fn connect_error(url: &str, error: &DbErr) -> DbError {
    let reason = error.to_string().replace(url, &redact_url(url));
    DbError::Connect {
        url: redact_url(url),
        reason,
    }
}

fn ensure_sqlite_dir(url: &str) -> Result<(), DbError> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    match std::path::Path::new(path).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|e| DbError::Directory(path.to_owned(), e.kind()))
        }
        _ => Ok(()),
    }
}

/// True when a database error means "the database is not reachable right now" (no connection,
/// a connection cut or timed out, the server shutting down or refusing connections), which
/// callers answer with UPSTREAM_UNAVAILABLE rather than an internal error.
pub fn is_outage(error: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    let runtime = match error {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => return true,
        DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        other => return mentions_connection(&other.to_string()),
    };
    match runtime {
        RuntimeErr::SqlxError(sqlx) => sqlx_outage(sqlx),
        other => mentions_connection(&other.to_string()),
    }
}

fn sqlx_outage(error: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error as E;
    match error {
        E::Io(_)
        | E::Tls(_)
        | E::Protocol(_)
        | E::PoolTimedOut
        | E::PoolClosed
        | E::WorkerCrashed => true,
        E::Database(db) => db.code().is_some_and(|code| unavailable_sqlstate(&code)),
        other => mentions_connection(&other.to_string()),
    }
}

/// PostgreSQL states meaning "not now": connection exceptions (class 08), too many connections,
/// and the server shutting down, crashed or starting (57P01–57P03).
fn unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "53300" | "57P01" | "57P02" | "57P03")
}

fn mentions_connection(text: &str) -> bool {
    text.to_ascii_lowercase().contains("connection")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_passwords() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(
            redact_url("sqlite://.latchkey/l.db?mode=rwc"),
            "sqlite://.latchkey/l.db?mode=rwc"
        );
    }

    #[test]
    fn outages_are_told_from_other_database_errors() {
        use sea_orm::RuntimeErr;
        use sea_orm::sqlx::Error as E;
        use std::sync::Arc;
        let query = |e: E| DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)));
        let eof = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "early eof");
        assert!(is_outage(&query(E::Io(eof))));
        assert!(is_outage(&query(E::PoolTimedOut)));
        assert!(is_outage(&DbErr::ConnectionAcquire(
            sea_orm::error::ConnAcquireErr::Timeout
        )));
        assert!(!is_outage(&query(E::RowNotFound)));
        assert!(!is_outage(&DbErr::RecordNotFound("x".into())));
        assert!(unavailable_sqlstate("57P01") && unavailable_sqlstate("08006"));
        assert!(!unavailable_sqlstate("23505"));
    }

    #[tokio::test]
    async fn sqlite_connects_and_creates_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/l.db?mode=rwc", dir.path().display());
        connect(&url).await.unwrap();
        assert!(dir.path().join("nested/l.db").exists());
    }
}
