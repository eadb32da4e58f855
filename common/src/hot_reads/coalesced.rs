//! One keyed hot read (a user's masked list, a token's user) whose concurrent calls share a query
//! on PostgreSQL. Under load each request's read was a round trip of its own — a message each way
//! and a wake-up of the PostgreSQL backend, per request. Here the keys that arrive while every
//! hot-read connection is busy wait together, and the next free connection answers all of them
//! with one `= ANY($1)` query (at most [`MAX_KEYS`]). A lone read goes out at once, as before.
//!
//! Nothing is cached: every waiter's rows are read after its request arrived, so a write is still
//! what the next read through any replica answers. Each waiter gets exactly the rows of its own
//! key. A batch's query is bounded by [`QUERY_TIMEOUT`] (a hung database must not hold a
//! connection forever: the callers who would have dropped it are not the ones running it), and a
//! failure reaches every waiter as the same kind of [`DbErr`], so outages still answer 503.
//! SQLite reads one key at a time: there is no network to save and its driver has no arrays.

use super::{Connector, HotReads, Open, pool_error, query_error};
use crate::db::{DbKind, is_outage};
use deadpool::managed::{Object, Pool};
use sea_orm::sqlx::postgres::PgRow;
use sea_orm::sqlx::sqlite::SqliteRow;
use sea_orm::sqlx::{self, FromRow};
use sea_orm::{DbErr, RuntimeErr};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most keys one query asks for.
pub const MAX_KEYS: usize = 64;
/// Longest a batch's query may run before its connection is closed and its waiters told.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads of one query, coalesced per free connection (see the module doc).
pub struct CoalescedRead<T> {
    hot: HotReads,
    /// The query for one key, `$1` (SQLite, and the shape of every row).
    one: &'static str,
    /// The same query for many, `= ANY($1)` on a text array (PostgreSQL).
    many: &'static str,
    /// The key a row belongs to.
    key_of: fn(&T) -> &str,
    queue: OnceLock<mpsc::UnboundedSender<Wanted<T>>>,
}

/// One waiting read.
struct Wanted<T> {
    key: String,
    reply: oneshot::Sender<Result<Vec<T>, DbErr>>,
}

impl<T> CoalescedRead<T>
where
    T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Clone + Send + Unpin + 'static,
{
    /// Reads `one` (`$1`) and `many` (`= ANY($1)`), both returning rows that `key_of` maps back
    /// to their key, through `hot`'s connections.
    pub fn new(
        hot: HotReads,
        one: &'static str,
        many: &'static str,
        key_of: fn(&T) -> &str,
    ) -> Self {
        CoalescedRead {
            hot,
            one,
            many,
            key_of,
            queue: OnceLock::new(),
        }
    }

    /// Every row for `key`, read after this call began.
    pub async fn fetch(&self, key: &str) -> Result<Vec<T>, DbErr> {
        if self.hot.kind != DbKind::Postgres {
            return self.hot.fetch_all(self.one, key).await;
        }
        let (reply, answer) = oneshot::channel();
        let wanted = Wanted {
            key: key.to_owned(),
            reply,
        };
        self.queue().send(wanted).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// The queue to the dispatching task, started on first use (so building one needs no
    /// runtime); the task ends when this read is dropped.
    fn queue(&self) -> &mpsc::UnboundedSender<Wanted<T>> {
        self.queue.get_or_init(|| {
            let (queue, waiting) = mpsc::unbounded_channel();
            let pool = self.hot.pool.clone();
            tokio::spawn(dispatch(pool, waiting, self.many, self.key_of));
            queue
        })
    }
}

/// Waits for a read, then for a free connection, and hands that connection every read queued
/// meanwhile (at most [`MAX_KEYS`]). Without a connection in time, those reads are told.
async fn dispatch<T>(
    pool: Pool<Connector>,
    mut waiting: mpsc::UnboundedReceiver<Wanted<T>>,
    many: &'static str,
    key_of: fn(&T) -> &str,
) where
    T: for<'r> FromRow<'r, PgRow> + Clone + Send + Unpin + 'static,
{
    while let Some(first) = waiting.recv().await {
        if first.reply.is_closed() {
            continue;
        }
        let connection = pool.get().await;
        let mut batch = vec![first];
        while batch.len() < MAX_KEYS
            && let Ok(next) = waiting.try_recv()
        {
            batch.push(next);
        }
        match connection {
            Ok(connection) => {
                tokio::spawn(answer(connection, batch, many, key_of));
            }
            // Only the reads that waited for this connection fail; later ones try the next.
            Err(error) => tell_all(batch, pool_error(error)),
        }
    }
}

/// Runs one query for every key in `batch` and gives each waiter its rows.
async fn answer<T>(
    mut connection: Object<Connector>,
    batch: Vec<Wanted<T>>,
    many: &'static str,
    key_of: fn(&T) -> &str,
) where
    T: for<'r> FromRow<'r, PgRow> + Clone + Send + Unpin + 'static,
{
    let batch: Vec<Wanted<T>> = batch.into_iter().filter(|w| !w.reply.is_closed()).collect();
    let mut keys: Vec<&str> = batch.iter().map(|w| w.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return;
    }
    connection.settled = false;
    let Open::Postgres(postgres) = &mut connection.open else {
        return tell_all(
            batch,
            DbErr::Custom("coalesced reads need PostgreSQL".into()),
        );
    };
    let query = sqlx::query_as::<_, T>(many).bind(&keys).fetch_all(postgres);
    let rows = match tokio::time::timeout(QUERY_TIMEOUT, query).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(error)) => return tell_all(batch, query_error(error)),
        Err(_) => return tell_all(batch, query_error(sqlx::Error::PoolTimedOut)),
    };
    connection.settled = true;
    drop(connection);
    let mut by_key: HashMap<&str, Vec<T>> = HashMap::with_capacity(keys.len());
    for row in &rows {
        by_key.entry(key_of(row)).or_default().push(row.clone());
    }
    for wanted in batch {
        let rows = by_key.get(wanted.key.as_str()).cloned().unwrap_or_default();
        let _ = wanted.reply.send(Ok(rows));
    }
}

/// Gives every waiter `error`: the first the error itself, the others one `is_outage` reads the
/// same way.
fn tell_all<T>(batch: Vec<Wanted<T>>, error: DbErr) {
    let outage = is_outage(&error);
    let text = error.to_string();
    let mut first = Some(error);
    for wanted in batch {
        let error = first.take().unwrap_or_else(|| match outage {
            true => DbErr::Conn(RuntimeErr::Internal(text.clone())),
            false => DbErr::Custom(text.clone()),
        });
        let _ = wanted.reply.send(Err(error));
    }
}

/// The dispatching task is gone (only while the process stops).
fn stopped() -> DbErr {
    DbErr::Conn(RuntimeErr::Internal(
        "the hot-read dispatcher stopped".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot_reads::tests::{file_database, postgres};
    use sea_orm::ConnectionTrait;
    use std::sync::Arc;

    type Row = (String, i64);

    /// `one` and `many` over `table (k, v)`.
    fn read_of(hot: HotReads, table: &str) -> CoalescedRead<Row> {
        let one = format!("SELECT k, v FROM {table} WHERE k = $1");
        let many = format!("SELECT k, v FROM {table} WHERE k = ANY($1)");
        CoalescedRead::new(hot, one.leak(), many.leak(), |row| &row.0)
    }

    async fn sorted(read: &CoalescedRead<Row>, key: &str) -> Vec<i64> {
        let mut values: Vec<i64> = read
            .fetch(key)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.1)
            .collect();
        values.sort_unstable();
        values
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_reads_each_get_their_own_rows_and_the_latest_write() {
        let Some((url, hot)) = postgres().await else {
            return;
        };
        let db = crate::db::connect(&url).await.unwrap();
        let table = format!("coalesced_{}", uuid::Uuid::new_v4().simple());
        let rows: Vec<String> = (0..20)
            .flat_map(|k| (0..3).map(move |j| format!("('k{k}', {})", k * 10 + j)))
            .collect();
        db.execute_unprepared(&format!(
            "CREATE TABLE {table} (k TEXT, v BIGINT); INSERT INTO {table} VALUES {};",
            rows.join(", ")
        ))
        .await
        .unwrap();
        let read = Arc::new(read_of(hot, &table));

        let mut calls = tokio::task::JoinSet::new();
        for i in 0..400 {
            let read = read.clone();
            calls.spawn(async move {
                let k = i % 21; // k20 has no rows
                let want: Vec<i64> = match k {
                    20 => vec![],
                    k => (0..3).map(|j| k * 10 + j).collect(),
                };
                assert_eq!(sorted(&read, &format!("k{k}")).await, want, "k{k}");
            });
        }
        while let Some(done) = calls.join_next().await {
            done.unwrap();
        }

        // A read abandoned at once leaves the others their answers.
        for _ in 0..20 {
            let _ = tokio::time::timeout(Duration::ZERO, read.fetch("k1")).await;
            assert_eq!(sorted(&read, "k2").await, vec![20, 21, 22]);
        }

        // A write is what the next read answers.
        db.execute_unprepared(&format!("INSERT INTO {table} VALUES ('k3', 99)"))
            .await
            .unwrap();
        assert_eq!(sorted(&read, "k3").await, vec![30, 31, 32, 99]);
        db.execute_unprepared(&format!("DROP TABLE {table}"))
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_postgres_reaches_every_waiter_as_an_outage() {
        let hot = HotReads::for_url("postgres://postgres@127.0.0.1:1/none")
            .unwrap()
            .unwrap();
        let read = Arc::new(read_of(hot, "t"));
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..10 {
            let read = read.clone();
            calls.spawn(async move { read.fetch(&format!("k{i}")).await });
        }
        while let Some(done) = calls.join_next().await {
            let error = done.unwrap().unwrap_err();
            assert!(is_outage(&error), "{error}");
        }
    }

    #[tokio::test]
    async fn sqlite_reads_one_key_at_a_time() {
        let (_dir, hot) = file_database("('a', 1), ('a', 2), ('b', 3)").await;
        let read = read_of(hot, "t");
        assert_eq!(sorted(&read, "a").await, vec![1, 2]);
        assert_eq!(sorted(&read, "b").await, vec![3]);
        assert!(read.queue.get().is_none(), "no dispatcher on SQLite");
    }
}
