//! The schema as its gRPC message: what a form needs (labels, help, formats, generators), never
//! a value.

use super::Schema;
use latchkey_proto::settings::v1 as pb;

/// The schema's message, declared settings in the order the operator wrote them.
pub fn schema_message(schema: &Schema) -> pb::GetSettingsSchemaResponse {
    pb::GetSettingsSchemaResponse {
        settings: schema
            .in_order()
            .map(|(name, d)| pb::DeclaredSetting {
                name: name.to_owned(),
                label: d.label.clone(),
                help: d.help.clone().unwrap_or_default(),
                link: d.link.clone().unwrap_or_default(),
                required: d.required,
                pattern: d
                    .format
                    .pattern
                    .as_ref()
                    .map(|p| p.text.clone())
                    .unwrap_or_default(),
                min_length: d.format.min_length.map(|n| n as i64),
                max_length: d.format.max_length.map(|n| n as i64),
                preset: d
                    .format
                    .preset
                    .map(|p| p.name().to_owned())
                    .unwrap_or_default(),
                hint: d.format.hint(),
                generate: d.generate.map(|g| pb::GenerateRule {
                    bytes: g.bytes as i64,
                    encoding: g.encoding.name().to_owned(),
                }),
            })
            .collect(),
        allow_undeclared: schema.allow_undeclared,
    }
}
