//! The schema a running settings service applies. When it comes from
//! `LATCHKEY_SETTINGS_SCHEMA_FILE`, the file is re-read every [`REFRESH`] when its modification
//! time or size changed, so a schema change needs no restart. A file that no longer parses is
//! not taken: the previous schema stays and the log says why (one line per problem).

use super::Schema;
use latchkey_common::shutdown::Shutdown;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

/// How often the schema file is looked at.
pub const REFRESH: Duration = Duration::from_secs(2);

/// The schema in use, replaceable while the service runs.
pub struct SchemaSource {
    current: RwLock<Arc<Schema>>,
    file: Option<PathBuf>,
    seen: Mutex<Option<(SystemTime, u64)>>,
}

/// What a look at the file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// No file, or it has not changed.
    Unchanged,
    /// The new schema is in use.
    Replaced,
    /// The file changed but was refused; the problems, one per line.
    Refused(Vec<String>),
}

impl SchemaSource {
    /// A schema that never changes (inline in the environment or `latchkey.toml`, or none).
    pub fn fixed(schema: Schema) -> Self {
        Self::new(schema, None)
    }

    /// A schema read from `file`, re-read by [`SchemaSource::reload`].
    pub fn new(schema: Schema, file: Option<PathBuf>) -> Self {
        let seen = file.as_deref().and_then(stamp);
        SchemaSource {
            current: RwLock::new(Arc::new(schema)),
            file,
            seen: Mutex::new(seen),
        }
    }

    /// The schema in use now.
    pub fn current(&self) -> Arc<Schema> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads the file when it changed since the last look, and takes it when it parses.
    pub fn reload(&self) -> Reload {
        let Some(path) = self.file.as_deref() else {
            return Reload::Unchanged;
        };
        let now = stamp(path);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == now {
                return Reload::Unchanged;
            }
            *seen = now;
        }
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => {
                return Reload::Refused(vec![format!(
                    "cannot read {}: {}",
                    path.display(),
                    error.kind()
                )]);
            }
        };
        match Schema::parse(&text) {
            Ok(schema) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(schema);
                Reload::Replaced
            }
            Err(problems) => Reload::Refused(problems),
        }
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Re-reads the schema file every [`REFRESH`] until `shutdown`, logging what changed.
pub async fn watch(source: Arc<SchemaSource>, shutdown: Shutdown) {
    if source.file.is_none() {
        return;
    }
    let mut ticker = tokio::time::interval(REFRESH);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait() => return,
        }
        let looked = source.clone();
        match tokio::task::spawn_blocking(move || looked.reload()).await {
            Ok(Reload::Unchanged) | Err(_) => {}
            Ok(Reload::Replaced) => {
                let schema = source.current();
                tracing::info!(
                    declared = schema.settings.len(),
                    allow_undeclared = schema.allow_undeclared,
                    "settings schema reloaded"
                );
            }
            Ok(Reload::Refused(problems)) => {
                for problem in problems {
                    tracing::warn!(%problem, "settings schema file refused; the previous schema stays");
                }
            }
        }
    }
}
