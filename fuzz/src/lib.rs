//! What the fuzz targets share: [`budget`], the per-input time budget every target is held to.

pub mod budget;
