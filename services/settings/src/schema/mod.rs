//! Declared settings: the operator's schema of what each end user must provide (label, help,
//! whether required, a format, a generator), read from `LATCHKEY_SETTINGS_SCHEMA` /
//! `LATCHKEY_SETTINGS_SCHEMA_FILE` / `latchkey.toml` as JSON. Settings applies it to every write
//! and import, reports what is missing and whether each value is valid, and makes generated
//! values; [`source`] re-reads the file while the service runs.
//!
//! - [`format`]: patterns, lengths and presets, and the rule a value breaks.
//! - [`generate`]: random values for settings left empty.
//! - [`source`]: the schema in use, reloaded from its file.
//! - [`wire`]: the schema as its gRPC message.

pub mod format;
pub mod generate;
pub mod source;
pub mod wire;

#[cfg(test)]
mod tests;

use crate::validate::{limits, name_problem};
use format::{Broken, Format, Pattern, Preset};
use generate::{Encoding, Generate, MAX_GENERATE_BYTES};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use std::collections::{BTreeMap, BTreeSet};

/// Longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 200;
/// Longest help text, in characters.
pub const MAX_HELP_CHARS: usize = 2000;

/// One declared setting: how the form shows it and what its value must be.
#[derive(Debug, Clone)]
pub struct Declared {
    /// What the form calls it (the name when the schema gives none).
    pub label: String,
    pub help: Option<String>,
    /// Where to get the value (an http(s) URL).
    pub link: Option<String>,
    /// Counted as `missing` until set.
    pub required: bool,
    pub format: Format,
    /// Made by settings when the user leaves it empty.
    pub generate: Option<Generate>,
}

/// The operator's schema: the declared settings by name, and whether other names are allowed.
#[derive(Debug, Clone)]
pub struct Schema {
    pub settings: BTreeMap<String, Declared>,
    pub allow_undeclared: bool,
    /// The declared names in the order the operator wrote them: the form's and the API's order.
    pub order: Vec<String>,
}

impl Default for Schema {
    /// No schema: nothing declared, every name allowed (Latchkey before declared settings).
    fn default() -> Self {
        Schema {
            settings: BTreeMap::new(),
            allow_undeclared: true,
            order: Vec::new(),
        }
    }
}

/// Why one value does not fit the schema (never carries the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misfit {
    /// The schema declares no such name and allows no others.
    Undeclared,
    /// The value breaks a rule of the declared format.
    Broken(Broken),
}

impl std::fmt::Display for Misfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Misfit::Undeclared => f.write_str(
                "is not declared in the settings schema, which allows no other names (`allow_undeclared` is false)",
            ),
            Misfit::Broken(broken) => broken.fmt(f),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchema {
    #[serde(default)]
    settings: Declarations,
    #[serde(default = "allowed")]
    allow_undeclared: bool,
}

fn allowed() -> bool {
    true
}

/// The `settings` object's entries in the order they were written (serde_json's maps sort
/// them), so the form asks in the operator's order; a name written twice is kept twice and
/// refused by [`Schema::parse`].
#[derive(Default)]
struct Declarations(Vec<(String, RawDeclared)>);

impl<'de> Deserialize<'de> for Declarations {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(InOrder)
    }
}

struct InOrder;

impl<'de> Visitor<'de> for InOrder {
    type Value = Declarations;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object of declared settings by name")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Declarations, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, RawDeclared>()? {
            entries.push(entry);
        }
        Ok(Declarations(entries))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeclared {
    label: Option<String>,
    help: Option<String>,
    link: Option<String>,
    #[serde(default)]
    required: bool,
    pattern: Option<String>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    preset: Option<String>,
    generate: Option<RawGenerate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGenerate {
    bytes: usize,
    encoding: Option<String>,
}

impl Schema {
    /// Parses and checks a schema's JSON; every problem is one line naming the field at fault.
    pub fn parse(text: &str) -> Result<Schema, Vec<String>> {
        let raw: RawSchema = serde_json::from_str(text).map_err(|e| {
            vec![format!(
                "is not a settings schema: {e} (expected {{\"settings\": {{NAME: {{\"label\": …, \"required\": true, \"preset\": …}}}}, \"allow_undeclared\": true}})"
            )]
        })?;
        let mut problems = Vec::new();
        let entries = raw.settings.0;
        if entries.len() > limits::MAX_SETTINGS {
            problems.push(format!(
                "settings: declares {} names; at most {} are allowed",
                entries.len(),
                limits::MAX_SETTINGS
            ));
        }
        let mut settings = BTreeMap::new();
        let mut order = Vec::with_capacity(entries.len());
        let mut seen = BTreeSet::new();
        for (name, raw) in entries {
            let field = format!("settings.{}", crate::error::shown(&name));
            if !seen.insert(name.clone()) {
                problems.push(format!("{field}: is declared twice; keep one"));
                continue;
            }
            if let Some(problem) = name_problem(&name) {
                problems.push(format!("{field}: the name {problem}"));
            }
            if let Some(declared) = declared(&field, &name, raw, &mut problems) {
                order.push(name.clone());
                settings.insert(name, declared);
            }
        }
        if problems.is_empty() {
            Ok(Schema {
                settings,
                allow_undeclared: raw.allow_undeclared,
                order,
            })
        } else {
            Err(problems)
        }
    }

    /// The declared setting of this name, if any.
    pub fn declared(&self, name: &str) -> Option<&Declared> {
        self.settings.get(name)
    }

    /// The declared settings in the order the operator wrote them.
    pub fn in_order(&self) -> impl Iterator<Item = (&str, &Declared)> {
        self.order
            .iter()
            .filter_map(|name| self.settings.get_key_value(name))
            .map(|(name, d)| (name.as_str(), d))
    }

    /// Whether `value` may be stored under `name`.
    pub fn check(&self, name: &str, value: &str) -> Result<(), Misfit> {
        match self.settings.get(name) {
            Some(declared) => declared.format.check(value).map_err(Misfit::Broken),
            None if self.allow_undeclared => Ok(()),
            None => Err(Misfit::Undeclared),
        }
    }

    /// Whether a name may be stored at all (deleting is always allowed).
    pub fn admits(&self, name: &str) -> bool {
        self.allow_undeclared || self.settings.contains_key(name)
    }

    /// Required names not among `stored` that settings cannot make itself (no `generate`), in
    /// declared order.
    pub fn missing<'a>(&'a self, stored: &BTreeSet<String>) -> Vec<&'a str> {
        self.in_order()
            .filter(|(name, d)| d.required && d.generate.is_none() && !stored.contains(*name))
            .map(|(name, _)| name)
            .collect()
    }

    /// Declared names with a generator that are not among `stored`: made on first read.
    pub fn to_generate<'a>(&'a self, stored: &BTreeSet<String>) -> Vec<(&'a str, Generate)> {
        self.settings
            .iter()
            .filter(|(name, _)| !stored.contains(*name))
            .filter_map(|(name, d)| d.generate.map(|g| (name.as_str(), g)))
            .collect()
    }
}

/// One declared setting from its raw form, pushing a problem per mistake.
fn declared(
    field: &str,
    name: &str,
    raw: RawDeclared,
    problems: &mut Vec<String>,
) -> Option<Declared> {
    let before = problems.len();
    let label = raw.label.clone().unwrap_or_else(|| name.to_owned());
    if label.trim().is_empty() || label.chars().count() > MAX_LABEL_CHARS {
        problems.push(format!(
            "{field}.label: must be 1 to {MAX_LABEL_CHARS} characters"
        ));
    }
    if raw
        .help
        .as_ref()
        .is_some_and(|h| h.chars().count() > MAX_HELP_CHARS)
    {
        problems.push(format!(
            "{field}.help: must be at most {MAX_HELP_CHARS} characters"
        ));
    }
    if raw.link.as_ref().is_some_and(|l| !Preset::Url.accepts(l)) {
        problems.push(format!("{field}.link: must be an http:// or https:// URL"));
    }
    let format = format_of(field, &raw, problems);
    let generate = raw
        .generate
        .as_ref()
        .and_then(|g| generator(field, g, &format, problems));
    (problems.len() == before).then(|| Declared {
        label,
        help: raw.help,
        link: raw.link,
        required: raw.required,
        format,
        generate,
    })
}

fn format_of(field: &str, raw: &RawDeclared, problems: &mut Vec<String>) -> Format {
    let pattern = raw
        .pattern
        .as_deref()
        .and_then(|text| match Pattern::compile(text) {
            Ok(pattern) => Some(pattern),
            Err(why) => {
                problems.push(format!("{field}.pattern: {why}"));
                None
            }
        });
    let preset = raw
        .preset
        .as_deref()
        .and_then(|name| match Preset::from_name(name) {
            Some(preset) => Some(preset),
            None => {
                let known: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
                problems.push(format!(
                    "{field}.preset: {:?} is not a preset; use one of {}",
                    crate::error::shown(name),
                    known.join(", ")
                ));
                None
            }
        });
    if let (Some(min), Some(max)) = (raw.min_length, raw.max_length)
        && min > max
    {
        problems.push(format!(
            "{field}: min_length {min} is greater than max_length {max}"
        ));
    }
    if raw.max_length == Some(0) {
        problems.push(format!("{field}.max_length: must be at least 1"));
    }
    Format {
        pattern,
        min_length: raw.min_length,
        max_length: raw.max_length,
        preset,
    }
}

fn generator(
    field: &str,
    raw: &RawGenerate,
    format: &Format,
    problems: &mut Vec<String>,
) -> Option<Generate> {
    let encoding = match raw.encoding.as_deref() {
        None => Encoding::Base64,
        Some(name) => match Encoding::from_name(name) {
            Some(encoding) => encoding,
            None => {
                problems.push(format!(
                    "{field}.generate.encoding: {:?} is not an encoding; use base64 or hex",
                    crate::error::shown(name)
                ));
                return None;
            }
        },
    };
    if !(1..=MAX_GENERATE_BYTES).contains(&raw.bytes) {
        problems.push(format!(
            "{field}.generate.bytes: must be 1 to {MAX_GENERATE_BYTES}"
        ));
        return None;
    }
    let generate = Generate {
        bytes: raw.bytes,
        encoding,
    };
    if format.preset.is_some() {
        problems.push(format!(
            "{field}.generate: a generated value cannot meet a preset; drop one of them"
        ));
        return None;
    }
    let sample = generate.make()?;
    if let Err(broken) = format.check(&sample) {
        problems.push(format!(
            "{field}.generate: a generated {} value ({} characters) {broken}",
            encoding.name(),
            generate.length()
        ));
        return None;
    }
    Some(generate)
}
