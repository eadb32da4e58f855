//! Settings test helpers (TestSettings).
