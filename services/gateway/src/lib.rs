//! latchkey gateway (skeleton)
