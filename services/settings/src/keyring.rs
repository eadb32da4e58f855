//! The master keys a running settings service holds. When they come from
//! `LATCHKEY_ENCRYPTION_KEYS_FILE`, the file is re-read every [`REFRESH`] (and at once, at most
//! once a second, when a row names a key id not held yet — another instance may already seal
//! with a key added to the file), so a master-key rotation needs no restart:
//! add the new key first → `latchkey keys rotate-encryption` → drop the old key.
//!
//! A new file is taken only when it is valid: it parses; every key kept has the same value; the
//! active key is still there (make another key active first, drop it later); and every key
//! dropped guards no stored row. Otherwise the previous keys stay and the log says why (never
//! key material).

use crate::config::MasterKeys;
use latchkey_common::config::ENCRYPTION_KEYS;
use sea_orm::DatabaseConnection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How often the keys file is re-read.
pub const REFRESH: Duration = Duration::from_secs(5);
/// Unknown-key-id re-reads happen at most this often.
const FORCED_INTERVAL: Duration = Duration::from_secs(1);

/// The current master keys, replaceable while the service runs.
pub struct KeyRing {
    current: RwLock<Arc<MasterKeys>>,
    file: Option<PathBuf>,
    last_forced: Mutex<Option<Instant>>,
}

/// What a re-read did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// The file holds the keys already in use.
    Unchanged,
    /// New keys are in use; the ids, active first.
    Replaced(Vec<String>),
}

/// Why a re-read file was not taken. Messages name key ids, never key material.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("cannot read {path}: {kind}")]
    Read {
        path: String,
        kind: std::io::ErrorKind,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("cannot check stored rows: {0}")]
    Db(#[from] sea_orm::DbErr),
}

impl KeyRing {
    /// Keys that never change (configured inline, or in tests).
    pub fn fixed(keys: MasterKeys) -> Self {
        Self::new(keys, None)
    }

    /// Keys read from `file`, re-read by [`KeyRing::reload`].
    pub fn new(keys: MasterKeys, file: Option<PathBuf>) -> Self {
        KeyRing {
            current: RwLock::new(Arc::new(keys)),
            file,
            last_forced: Mutex::new(None),
        }
    }

    /// The file the keys come from, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The keys in use now.
    pub fn current(&self) -> Arc<MasterKeys> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The keys in use, first re-reading the file when `id` is not among them (at most once a
    /// second; only a file that adds keys is taken this way, which needs no database check).
    pub fn current_with(&self, id: &str) -> Arc<MasterKeys> {
        let keys = self.current();
        if keys.get(id).is_some() || self.file.is_none() || !self.may_force() {
            return keys;
        }
        match self.read_file().map(|text| MasterKeys::parse(&text)) {
            Ok(Ok(candidate)) if adds_only(&keys, &candidate) && candidate.get(id).is_some() => {
                self.install(candidate)
            }
            _ => keys,
        }
    }

    /// Re-reads the file and takes it when valid (see the module docs).
    pub async fn reload(&self, db: &DatabaseConnection) -> Result<Reloaded, ReloadError> {
        let Some(path) = self.file.clone() else {
            return Ok(Reloaded::Unchanged);
        };
        let text = tokio::task::spawn_blocking(move || read(&path))
            .await
            .map_err(|e| ReloadError::Invalid(format!("reading the keys file: {e}")))??;
        let candidate = MasterKeys::parse(&text).map_err(|errors| {
            ReloadError::Invalid(format!(
                "{}_FILE: {}",
                ENCRYPTION_KEYS.env(),
                errors.join("; ")
            ))
        })?;
        let keys = self.current();
        if same(&keys, &candidate) {
            return Ok(Reloaded::Unchanged);
        }
        check_transition(&keys, &candidate)?;
        if keys.ids().any(|id| candidate.get(id).is_none()) {
            crate::rotation::check_keys_configured(db, &candidate)
                .await
                .map_err(|e| match e {
                    crate::rotation::KeyCheckError::Db(db) => ReloadError::Db(db),
                    other => ReloadError::Invalid(other.to_string()),
                })?;
        }
        let ids = candidate.ids().map(str::to_owned).collect();
        self.install(candidate);
        Ok(Reloaded::Replaced(ids))
    }

    fn install(&self, keys: MasterKeys) -> Arc<MasterKeys> {
        let keys = Arc::new(keys);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = keys.clone();
        tracing::info!(
            active_key = %keys.active().id,
            active_key_fingerprint = %keys.active().key.fingerprint(),
            keys = %keys.ids().collect::<Vec<_>>().join(","),
            "settings master keys reloaded"
        );
        keys
    }

    fn read_file(&self) -> Result<String, ReloadError> {
        read(self.file.as_deref().expect("a keys file"))
    }

    fn may_force(&self) -> bool {
        let mut last = self.last_forced.lock().unwrap_or_else(|e| e.into_inner());
        let due = last.is_none_or(|at| at.elapsed() >= FORCED_INTERVAL);
        if due {
            *last = Some(Instant::now());
        }
        due
    }
}

fn read(path: &Path) -> Result<String, ReloadError> {
    std::fs::read_to_string(path)
        .map(|text| text.trim_end_matches(['\n', '\r']).to_owned())
        .map_err(|e| ReloadError::Read {
            path: path.display().to_string(),
            kind: e.kind(),
        })
}

/// Same ids in the same order with the same values.
fn same(a: &MasterKeys, b: &MasterKeys) -> bool {
    a.ids().eq(b.ids()) && a.ids().all(|id| same_value(a, b, id))
}

fn same_value(a: &MasterKeys, b: &MasterKeys, id: &str) -> bool {
    match (a.get(id), b.get(id)) {
        (Some(x), Some(y)) => x.key.fingerprint() == y.key.fingerprint(),
        _ => false,
    }
}

/// `candidate` keeps every current key unchanged (it may add keys and make one of them active).
fn adds_only(current: &MasterKeys, candidate: &MasterKeys) -> bool {
    current.ids().all(|id| same_value(current, candidate, id))
}

/// Kept keys keep their value; the active key is not dropped in the same step.
fn check_transition(current: &MasterKeys, candidate: &MasterKeys) -> Result<(), ReloadError> {
    for id in current.ids() {
        if candidate.get(id).is_some() && !same_value(current, candidate, id) {
            return Err(ReloadError::Invalid(format!(
                "key {id} has a different value than the one in use; a key id always names the same key (give a new key a new id)"
            )));
        }
    }
    let active = &current.active().id;
    if candidate.get(active).is_none() {
        return Err(ReloadError::Invalid(format!(
            "key {active} is active and would be dropped; put the new key first and keep {active} until `latchkey keys rotate-encryption` has run and `latchkey keys status` shows it removable"
        )));
    }
    Ok(())
}

/// Re-reads the keys file every [`REFRESH`] until `shutdown` fires; a rejected file is logged
/// once per change and the previous keys stay.
pub async fn watch(
    ring: Arc<KeyRing>,
    db: DatabaseConnection,
    shutdown: latchkey_common::shutdown::Shutdown,
) {
    if ring.file().is_none() {
        return;
    }
    let mut ticker = tokio::time::interval(REFRESH);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_problem = String::new();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait() => return,
        }
        match ring.reload(&db).await {
            Ok(_) => last_problem.clear(),
            Err(error) => {
                let problem = error.to_string();
                if problem != last_problem {
                    tracing::warn!(%error, "master keys file not taken; keeping the keys in use");
                    last_problem = problem;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_common::seal::SealKey;

    fn key() -> String {
        SealKey::generate().to_base64().to_string()
    }

    async fn empty_db() -> DatabaseConnection {
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        crate::store::migrate(&db).await.unwrap();
        db
    }

    fn ring_on(text: &str) -> (tempfile::TempDir, PathBuf, KeyRing) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, format!("{text}\n")).unwrap();
        let ring = KeyRing::new(MasterKeys::parse(text).unwrap(), Some(path.clone()));
        (dir, path, ring)
    }

    #[tokio::test]
    async fn a_rotation_in_three_file_edits_is_taken_without_restart() {
        let db = empty_db().await;
        let (k1, k2) = (format!("k1:{}", key()), format!("k2:{}", key()));
        let (_dir, path, ring) = ring_on(&k1);
        assert_eq!(ring.reload(&db).await.unwrap(), Reloaded::Unchanged);
        std::fs::write(&path, format!("{k2},{k1}")).unwrap();
        assert_eq!(
            ring.reload(&db).await.unwrap(),
            Reloaded::Replaced(vec!["k2".into(), "k1".into()])
        );
        assert_eq!(ring.current().active().id, "k2");
        std::fs::write(&path, &k2).unwrap();
        assert_eq!(
            ring.reload(&db).await.unwrap(),
            Reloaded::Replaced(vec!["k2".into()])
        );
    }

    #[tokio::test]
    async fn a_bad_file_keeps_the_keys_in_use() {
        let db = empty_db().await;
        let (k1, k2) = (format!("k1:{}", key()), format!("k2:{}", key()));
        let (_dir, path, ring) = ring_on(&k1);
        for (text, expected) in [
            ("k1:short".to_owned(), "k1"),
            (k2.clone(), "active and would be dropped"),
            (format!("k1:{}", key()), "different value"),
        ] {
            std::fs::write(&path, &text).unwrap();
            let error = ring.reload(&db).await.unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains(&text[3..]), "no key material: {error}");
            assert_eq!(ring.current().ids().collect::<Vec<_>>(), ["k1"]);
        }
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            ring.reload(&db).await,
            Err(ReloadError::Read { .. })
        ));
        assert_eq!(ring.current().active().id, "k1");
    }

    #[tokio::test]
    async fn a_key_still_guarding_rows_is_not_dropped() {
        use crate::service::{Caller, Change, SettingsCore};
        let db = empty_db().await;
        let (k1, k2) = (format!("k1:{}", key()), format!("k2:{}", key()));
        let (_dir, path, ring) = ring_on(&k1);
        let ring = Arc::new(ring);
        let core = SettingsCore::with_keyring(
            db.clone(),
            ring.clone(),
            Arc::new(latchkey_common::clock::SystemClock),
        );
        let change = Change {
            name: "A".into(),
            value: Some(zeroize::Zeroizing::new("value".into())),
        };
        core.patch(&Caller::User("u".into()), vec![change])
            .await
            .unwrap();
        std::fs::write(&path, format!("{k2},{k1}")).unwrap();
        ring.reload(&db).await.unwrap();
        std::fs::write(&path, &k2).unwrap();
        let error = ring.reload(&db).await.unwrap_err().to_string();
        assert!(
            error.contains("master key k1 is not configured but guards 1"),
            "{error}"
        );
        assert_eq!(ring.current().ids().collect::<Vec<_>>(), ["k2", "k1"]);
    }

    #[tokio::test]
    async fn an_unknown_key_id_rereads_a_file_that_only_adds_keys() {
        let (k1, k2) = (format!("k1:{}", key()), format!("k2:{}", key()));
        let (_dir, path, ring) = ring_on(&k1);
        std::fs::write(&path, format!("{k2},{k1}")).unwrap();
        let keys = ring.current_with("k2");
        assert!(keys.get("k2").is_some());
        assert_eq!(
            keys.active().id,
            "k2",
            "another instance already seals with k2"
        );
        assert!(ring.current_with("k9").get("k9").is_none());
    }
}
