//! Gateway test helpers (TestGateway).
