//! The canonical model as its JSON Schema says it: the file `schemas/canonical.schema.json`, and
//! the field names and kinds a mapping is checked against. Both come from the types' derived
//! schemas, so a field added to a type is known to the mapping without touching this module.

use std::sync::LazyLock;

use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use super::super::{ErpCancel, ErpInvoice, ErpPayPayment, ErpResult, NewErpPayment, PostOutcome};

/// The documents of the model, by their `$defs` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Doc {
    Invoice,
    Cancel,
    PayPayment,
    Payment,
    Result,
}

impl Doc {
    pub(super) fn name(self) -> &'static str {
        match self {
            Doc::Invoice => "invoice",
            Doc::Cancel => "cancel",
            Doc::PayPayment => "pay_payment",
            Doc::Payment => "payment",
            Doc::Result => "result",
        }
    }
}

/// What a canonical field holds, as far as mapping cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Int,
    Bool,
    /// A decimal string (`"1234.50"`).
    Decimal,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339.
    DateTime,
    Text,
    /// A list of strings (a rejection's reasons).
    Texts,
    /// One of these strings.
    Choice(Vec<String>),
    /// A list of objects (invoice lines, payment applications): mapped by `line_fields`.
    List,
}

impl Kind {
    pub(super) fn describe(&self) -> String {
        match self {
            Kind::Int => "an integer".into(),
            Kind::Bool => "true or false".into(),
            Kind::Decimal => "a decimal".into(),
            Kind::Date => "a date".into(),
            Kind::DateTime => "a timestamp".into(),
            Kind::Text => "a text".into(),
            Kind::Texts => "a list of texts".into(),
            Kind::Choice(values) => format!("one of {}", quoted(values)),
            Kind::List => "a list".into(),
        }
    }
}

pub(super) fn quoted(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Clone, Debug)]
pub(super) struct Field {
    pub name: String,
    pub kind: Kind,
    /// Must be present when the ERP sends the document.
    pub required: bool,
}

/// A document's fields, and its list (name and element fields) if it has one.
#[derive(Clone, Debug)]
pub(super) struct Shape {
    pub fields: Vec<Field>,
    pub list: Option<(String, Vec<Field>)>,
}

impl Shape {
    pub(super) fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub(super) fn names(&self) -> String {
        self.fields
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Documents the connector writes are described as serialized, those the ERP sends as
/// deserialized (what is accepted: optional fields may be left out, decimals may be numbers).
fn generator(serialize: bool) -> SchemaGenerator {
    let settings = SchemaSettings::draft2020_12();
    let settings = if serialize {
        settings.for_serialize()
    } else {
        settings.for_deserialize()
    };
    settings.into_generator()
}

fn add<T: JsonSchema>(generator: &mut SchemaGenerator) {
    generator.subschema_for::<T>();
}

/// The type names schemars gives the documents, and their names in the file.
const RENAMES: &[(&str, &str)] = &[
    ("ErpInvoice", "invoice"),
    ("ErpCancel", "cancel"),
    ("ErpPayPayment", "pay_payment"),
    ("NewErpPayment", "payment"),
    ("PostOutcome", "answer"),
    ("ErpResult", "result"),
];

/// The JSON Schema of the canonical model (`schemas/canonical.schema.json`).
pub fn canonical_schema() -> Value {
    let mut out = generator(true);
    add::<ErpInvoice>(&mut out);
    add::<ErpCancel>(&mut out);
    add::<ErpPayPayment>(&mut out);
    let mut inbound = generator(false);
    add::<NewErpPayment>(&mut inbound);
    add::<PostOutcome>(&mut inbound);
    add::<ErpResult>(&mut inbound);
    let mut defs = Map::new();
    for generated in [out.take_definitions(true), inbound.take_definitions(true)] {
        for (name, schema) in generated {
            let name = RENAMES
                .iter()
                .find(|(from, _)| *from == name)
                .map_or(name, |(_, to)| (*to).to_owned());
            // The two generators share no helper type today; if they ever do with different
            // schemas, the second would silently replace the first: keep the first, which the
            // schema test then shows.
            defs.entry(name).or_insert(schema);
        }
    }
    let mut defs = Value::Object(defs);
    rename_refs(&mut defs);
    // Documents first, in the order above, then their parts by name.
    let mut ordered = Map::new();
    if let Value::Object(mut defs) = defs {
        for (_, to) in RENAMES {
            if let Some(v) = defs.remove(*to) {
                ordered.insert((*to).to_owned(), v);
            }
        }
        let mut rest: Vec<_> = defs.into_iter().collect();
        rest.sort_by(|a, b| a.0.cmp(&b.0));
        ordered.extend(rest);
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "coupa-bridge canonical document model",
        "description": "The documents coupa-bridge exchanges with an ERP before any field mapping \
            (docs/erp-mapping.md). Written by the connector: invoice, cancel, pay_payment. Sent \
            by the ERP: payment, result (an answer in a result file), answer (a posting's \
            outcome). Decimals are strings (\"1234.50\"), dates YYYY-MM-DD, timestamps RFC 3339. \
            Generated from the Rust types by a test: do not edit by hand.",
        "$defs": Value::Object(ordered),
    })
}

fn rename_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "$ref"
                    && let Value::String(r) = v
                    && let Some(name) = r.strip_prefix("#/$defs/")
                    && let Some((_, to)) = RENAMES.iter().find(|(from, _)| *from == name)
                {
                    *r = format!("#/$defs/{to}");
                } else {
                    rename_refs(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rename_refs),
        _ => {}
    }
}

static SCHEMA: LazyLock<Value> = LazyLock::new(canonical_schema);

/// The fields of a document, from its schema.
pub(super) fn shape(doc: Doc) -> Shape {
    let defs = SCHEMA.get("$defs").cloned().unwrap_or(Value::Null);
    let schema = defs.get(doc.name()).cloned().unwrap_or(Value::Null);
    let mut fields = Vec::new();
    collect(&defs, &schema, &mut fields, true);
    let mut list = None;
    for f in &fields {
        if f.kind == Kind::List {
            let items = property(&defs, &schema, &f.name)
                .and_then(|p| resolve(&defs, &p).get("items").cloned())
                .unwrap_or(Value::Null);
            let mut line = Vec::new();
            collect(&defs, &items, &mut line, true);
            list = Some((f.name.clone(), line));
        }
    }
    Shape { fields, list }
}

fn resolve<'a>(defs: &'a Value, schema: &'a Value) -> &'a Value {
    match schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        Some(name) => defs.get(name).unwrap_or(schema),
        None => schema,
    }
}

fn property(defs: &Value, schema: &Value, name: &str) -> Option<Value> {
    resolve(defs, schema)
        .get("properties")
        .and_then(|p| p.get(name))
        .cloned()
}

/// The properties of `schema` (and of every `oneOf`/`anyOf` variant and `allOf` part: a
/// flattened enum), merged by name. A field is required when the schema, or every variant,
/// requires it.
fn collect(defs: &Value, schema: &Value, out: &mut Vec<Field>, required_here: bool) {
    let schema = resolve(defs, schema);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            let kind = kind(defs, prop);
            let req = required_here && required.contains(&name.as_str());
            match out.iter_mut().find(|f| &f.name == name) {
                Some(f) => {
                    f.required |= req;
                    if let (Kind::Choice(have), Kind::Choice(more)) = (&mut f.kind, kind) {
                        for v in more {
                            if !have.contains(&v) {
                                have.push(v);
                            }
                        }
                    }
                }
                None => out.push(Field {
                    name: name.clone(),
                    kind,
                    required: req,
                }),
            }
        }
    }
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        for part in parts {
            collect(defs, part, out, required_here);
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(variants) = schema.get(key).and_then(Value::as_array) {
            let mut per_variant = Vec::new();
            for v in variants {
                let mut fields = Vec::new();
                collect(defs, v, &mut fields, true);
                per_variant.push(fields);
            }
            for fields in &per_variant {
                for f in fields {
                    let everywhere = per_variant
                        .iter()
                        .all(|other| other.iter().any(|o| o.name == f.name && o.required));
                    let mut f = f.clone();
                    f.required = required_here && everywhere;
                    match out.iter_mut().find(|o| o.name == f.name) {
                        Some(o) => {
                            if let (Kind::Choice(have), Kind::Choice(more)) = (&mut o.kind, f.kind)
                            {
                                for v in more {
                                    if !have.contains(&v) {
                                        have.push(v);
                                    }
                                }
                            }
                        }
                        None => out.push(f),
                    }
                }
            }
        }
    }
}

fn kind(defs: &Value, schema: &Value) -> Kind {
    let schema = resolve(defs, schema);
    let text = |v: &Value| v.as_str().map(str::to_owned);
    if let Some(c) = schema.get("const").and_then(text) {
        return Kind::Choice(vec![c]);
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return Kind::Choice(values.iter().filter_map(text).collect());
    }
    if let Some(variants) = schema.get("oneOf").and_then(Value::as_array) {
        let mut values = Vec::new();
        for v in variants {
            if let Kind::Choice(more) = kind(defs, v) {
                values.extend(more);
            }
        }
        if !values.is_empty() {
            return Kind::Choice(values);
        }
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let has = |t: &str| types.contains(&t);
    if has("array") {
        let items = schema.get("items").map(|i| resolve(defs, i));
        return match items {
            Some(i) if i.get("properties").is_none() && kind(defs, i) == Kind::Text => Kind::Texts,
            _ => Kind::List,
        };
    }
    if has("integer") {
        return Kind::Int;
    }
    if has("boolean") {
        return Kind::Bool;
    }
    if has("string") {
        // rust_decimal's schema: a string of digits with an optional fraction.
        if schema.get("pattern").and_then(Value::as_str).is_some() {
            return Kind::Decimal;
        }
        return match schema.get("format").and_then(Value::as_str) {
            Some("date") => Kind::Date,
            Some("date-time") => Kind::DateTime,
            _ => Kind::Text,
        };
    }
    Kind::Text
}

/// Shapes of every document, computed once.
pub(super) static SHAPES: LazyLock<[(Doc, Shape); 5]> = LazyLock::new(|| {
    [
        (Doc::Invoice, shape(Doc::Invoice)),
        (Doc::Cancel, shape(Doc::Cancel)),
        (Doc::PayPayment, shape(Doc::PayPayment)),
        (Doc::Payment, shape(Doc::Payment)),
        (Doc::Result, shape(Doc::Result)),
    ]
});

pub(super) fn shape_of(doc: Doc) -> &'static Shape {
    SHAPES
        .iter()
        .find(|(d, _)| *d == doc)
        .map(|(_, s)| s)
        .unwrap_or(&SHAPES[0].1)
}
