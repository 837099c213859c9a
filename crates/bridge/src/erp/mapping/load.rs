//! Reading and checking a mapping file. Every problem is collected (not just the first), each
//! on the line of the key it is about, from `toml`'s spans.

use chrono::NaiveDate;
use chrono::format::{Item, StrftimeItems};
use serde_json::Value;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::canon::{self, Doc, Kind, Shape};
use super::read::{conform, identity};
use super::render::format_date;
use super::{
    Answer, DecimalFormat, FieldMap, Format, InSection, Mapping, MappingError, MappingErrors,
    OutSection, Source, Transform,
};

const SECTIONS: &str = "[invoice], [cancel], [pay_payment], [payment], [result] or [answer]";

/// A table's entries in the order of the file (the parsed table is sorted by name): CSV
/// columns and JSON/XML fields are written in the order they are mapped.
fn ordered<'t, 'i>(table: &'t DeTable<'i>) -> Vec<(&'t Key<'i>, &'t Spanned<DeValue<'i>>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

struct Check<'a> {
    text: &'a str,
    file: &'a str,
    errors: Vec<MappingError>,
}

/// Which way a section maps: outbound keys are the ERP's fields, inbound keys canonical ones.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    Out,
    In,
}

type Key<'i> = Spanned<std::borrow::Cow<'i, str>>;

pub(super) fn parse(text: &str, file: &str) -> Result<Mapping, MappingErrors> {
    let mut check = Check {
        text,
        file,
        errors: Vec::new(),
    };
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in syntax {
            let line = check.line(e.span().map_or(0, |s| s.start));
            check.error(
                line,
                format!("TOML syntax: {}", e.message().trim().replace('\n', "; ")),
            );
        }
        return Err(MappingErrors(check.errors));
    }
    let mut mapping = Mapping {
        file: file.to_owned(),
        ..Mapping::default()
    };
    for (key, value) in ordered(root.get_ref()) {
        let line = check.key_line(key);
        let name = key.get_ref().as_ref();
        let Some(table) = value.get_ref().as_table() else {
            check.error(
                line,
                format!("'{name}' must be a section ([{name}]); the sections are {SECTIONS}"),
            );
            continue;
        };
        match name {
            "invoice" => mapping.invoice = check.out_section(Doc::Invoice, table, line),
            "cancel" => mapping.cancel = check.out_section(Doc::Cancel, table, line),
            "pay_payment" => mapping.pay_payment = check.out_section(Doc::PayPayment, table, line),
            "payment" => mapping.payment = check.in_section(Doc::Payment, table, line),
            "result" => mapping.result = check.in_section(Doc::Result, table, line),
            "answer" => mapping.answer = check.answer(table),
            other => check.error(
                line,
                format!("unknown section [{other}]: the sections are {SECTIONS}"),
            ),
        }
    }
    if check.errors.is_empty() {
        Ok(mapping)
    } else {
        check.errors.sort_by_key(|e| e.line);
        Err(MappingErrors(check.errors))
    }
}

impl Check<'_> {
    fn error(&mut self, line: usize, message: String) {
        self.errors.push(MappingError {
            file: self.file.to_owned(),
            line,
            message,
        });
    }

    /// 1-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        let at = offset.min(self.text.len());
        self.text.as_bytes()[..at]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn key_line(&self, key: &Key<'_>) -> usize {
        self.line(key.span().start)
    }

    /// A string setting, or an error saying so.
    fn string(&mut self, key: &Key<'_>, value: &DeValue<'_>, what: &str) -> Option<String> {
        match value.as_str() {
            Some(s) if !s.trim().is_empty() => Some(s.to_owned()),
            _ => {
                let line = self.key_line(key);
                self.error(line, format!("{} must be {what}", key.get_ref()));
                None
            }
        }
    }

    fn format(&mut self, table: &DeTable<'_>, section: &str) -> Format {
        let Some((key, value)) = table.get_key_value("format") else {
            return Format::Json;
        };
        match value.get_ref().as_str() {
            Some("json") => Format::Json,
            Some("csv") => Format::Csv,
            Some("xml") => Format::Xml,
            other => {
                let line = self.key_line(key);
                self.error(
                    line,
                    format!(
                        "unknown format {} in [{section}]: expected \"json\", \"csv\" or \"xml\"",
                        other.map_or_else(
                            || value.get_ref().type_str().to_owned(),
                            |s| format!("\"{s}\"")
                        )
                    ),
                );
                Format::Json
            }
        }
    }

    fn delimiter(&mut self, key: &Key<'_>, value: &DeValue<'_>) -> Option<u8> {
        let s = self.string(key, value, "one character, such as \";\"")?;
        match s.as_bytes() {
            [b] if b.is_ascii() && !matches!(b, b'"' | b'\n' | b'\r') => Some(*b),
            _ => {
                let line = self.key_line(key);
                self.error(
                    line,
                    format!(
                        "delimiter \"{s}\" must be one ASCII character other than a quote or a \
                         line break, such as \";\" or \",\""
                    ),
                );
                None
            }
        }
    }

    fn out_section(&mut self, doc: Doc, table: &DeTable<'_>, line: usize) -> Option<OutSection> {
        let name = doc.name();
        let shape = canon::shape_of(doc);
        let format = self.format(table, name);
        let mut section = OutSection {
            format,
            root: name.to_owned(),
            // The canonical list's own name (`lines`, `applications`).
            lines: shape
                .list
                .as_ref()
                .map_or_else(|| "lines".to_owned(), |(n, _)| n.clone()),
            line_element: "line".to_owned(),
            delimiter: b',',
            fields: Vec::new(),
            line_fields: Vec::new(),
        };
        let mut fields = None;
        let mut line_fields = None;
        let list_name = shape.list.as_ref().map(|(n, _)| n.as_str());
        let no_list = |key: &str| {
            format!(
                "{key} is for a document with a list ([invoice] lines, [pay_payment] \
                 applications); [{name}] has none"
            )
        };
        for (key, value) in ordered(table) {
            let key_line = self.key_line(key);
            let value = value.get_ref();
            match key.get_ref().as_ref() {
                "format" => {}
                "root" => {
                    if format != Format::Xml {
                        self.error(
                            key_line,
                            "root is the XML root element: it is for format = \"xml\"".into(),
                        );
                    } else if let Some(s) = self.string(key, value, "an XML element name") {
                        self.xml_name(key_line, "root", &s);
                        section.root = s;
                    }
                }
                "lines" => {
                    if list_name.is_none() {
                        self.error(key_line, no_list("lines"));
                    } else if format == Format::Csv {
                        self.error(
                            key_line,
                            "lines is for json and xml: csv writes one row per line, with the \
                             line_fields as columns"
                                .into(),
                        );
                    } else if let Some(s) = self.string(key, value, "a field or element name") {
                        section.lines = s;
                    }
                }
                "line_element" => {
                    if list_name.is_none() {
                        self.error(key_line, no_list("line_element"));
                    } else if format != Format::Xml {
                        self.error(key_line, "line_element is for format = \"xml\"".into());
                    } else if let Some(s) = self.string(key, value, "an XML element name") {
                        self.xml_name(key_line, "line_element", &s);
                        section.line_element = s;
                    }
                }
                "delimiter" => {
                    if format != Format::Csv {
                        self.error(key_line, "delimiter is for format = \"csv\"".into());
                    } else if let Some(d) = self.delimiter(key, value) {
                        section.delimiter = d;
                    }
                }
                "fields" => match value.as_table() {
                    Some(t) => fields = Some(t),
                    None => {
                        self.error(key_line, format!("fields must be a table: [{name}.fields]"))
                    }
                },
                "line_fields" => match value.as_table() {
                    Some(_) if list_name.is_none() => self.error(key_line, no_list("line_fields")),
                    Some(t) => line_fields = Some(t),
                    None => self.error(
                        key_line,
                        format!("line_fields must be a table: [{name}.line_fields]"),
                    ),
                },
                other => self.error(
                    key_line,
                    format!(
                        "unknown key '{other}' in [{name}]: expected format, fields{}",
                        match (list_name.is_some(), format) {
                            (true, Format::Xml) => ", line_fields, root, lines, line_element",
                            (true, Format::Json) => ", line_fields, lines",
                            (true, Format::Csv) => ", line_fields, delimiter",
                            (false, Format::Xml) => ", root",
                            (false, Format::Json) => "",
                            (false, Format::Csv) => ", delimiter",
                        }
                    ),
                ),
            }
        }
        let header: Vec<canon::Field> = shape
            .fields
            .iter()
            .filter(|f| f.kind != Kind::List)
            .cloned()
            .collect();
        let header_shape = Shape {
            fields: header,
            list: None,
        };
        section.fields = match fields {
            Some(t) => self.fields(
                t,
                Way::Out,
                &header_shape,
                &format!("[{name}.fields]"),
                list_name,
            ),
            None => identity(shape, line),
        };
        if let Some((_, line_shape)) = &shape.list {
            let line_shape = Shape {
                fields: line_shape.clone(),
                list: None,
            };
            section.line_fields = match line_fields {
                Some(t) => self.fields(
                    t,
                    Way::Out,
                    &line_shape,
                    &format!("[{name}.line_fields]"),
                    None,
                ),
                // In one CSV row the line's fields sit beside the header's (both have a
                // `total`): their columns are `lines.total`, ...
                None if format == Format::Csv => identity(&line_shape, line)
                    .into_iter()
                    .map(|mut f| {
                        f.name = format!("{}.{}", section.lines, f.name);
                        f
                    })
                    .collect(),
                None => identity(&line_shape, line),
            };
        }
        self.names(&section, line);
        Some(section)
    }

    /// The names written: valid for the format, no column twice, no name both a value and a
    /// group (`A` and `A.B`).
    fn names(&mut self, section: &OutSection, section_line: usize) {
        let mut seen: Vec<(&str, usize)> = Vec::new();
        let lines_written = !section.line_fields.is_empty();
        for f in &section.fields {
            if section.format == Format::Xml {
                for segment in f.name.split('.') {
                    self.xml_name(f.line, &f.name, segment);
                }
            } else if section.format == Format::Json && f.name.split('.').any(str::is_empty) {
                self.error(
                    f.line,
                    format!("'{}' has an empty part between its dots", f.name),
                );
            }
            seen.push((&f.name, f.line));
        }
        if section.format == Format::Csv {
            for f in &section.line_fields {
                seen.push((&f.name, f.line));
            }
        } else {
            if lines_written {
                seen.push((&section.lines, section_line));
                if section.format == Format::Xml {
                    for segment in section.lines.split('.') {
                        self.xml_name(section_line, "lines", segment);
                    }
                }
            }
            let mut line_seen: Vec<(&str, usize)> = Vec::new();
            for f in &section.line_fields {
                if section.format == Format::Xml {
                    for segment in f.name.split('.') {
                        self.xml_name(f.line, &f.name, segment);
                    }
                }
                line_seen.push((&f.name, f.line));
            }
            self.clashes(&line_seen);
        }
        self.clashes(&seen);
    }

    fn clashes(&mut self, names: &[(&str, usize)]) {
        for (i, (a, line)) in names.iter().enumerate() {
            for (b, _) in &names[..i] {
                if a == b {
                    self.error(*line, format!("'{a}' is written twice"));
                } else if a.starts_with(&format!("{b}.")) || b.starts_with(&format!("{a}.")) {
                    self.error(
                        *line,
                        format!("'{a}' and '{b}' clash: a name cannot be both a value and a group"),
                    );
                }
            }
        }
    }

    fn xml_name(&mut self, line: usize, what: &str, name: &str) {
        let mut chars = name.chars();
        let ok = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
            && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-'))
            && !name.to_ascii_lowercase().starts_with("xml");
        if !ok {
            self.error(
                line,
                format!(
                    "'{name}' (in {what}) is not an XML element name: a letter or '_', then \
                     letters, digits, '-' or '_' (dots separate nested elements)"
                ),
            );
        }
    }

    fn in_section(&mut self, doc: Doc, table: &DeTable<'_>, line: usize) -> Option<InSection> {
        let name = doc.name();
        let shape = canon::shape_of(doc);
        let format = self.format(table, name);
        let mut section = InSection {
            format,
            items: None,
            next_cursor: None,
            delimiter: b',',
            fields: Vec::new(),
        };
        let mut fields = None;
        for (key, value) in ordered(table) {
            let key_line = self.key_line(key);
            let value = value.get_ref();
            match key.get_ref().as_ref() {
                "format" => {}
                "items" => {
                    if format == Format::Csv {
                        self.error(
                            key_line,
                            "items is for json and xml: in csv every row is a record".into(),
                        );
                    } else if let Some(s) =
                        self.string(key, value, "a dotted path, such as \"data.items\"")
                    {
                        section.items = Some(s);
                    }
                }
                "next_cursor" if doc == Doc::Payment => {
                    if format != Format::Json {
                        self.error(
                            key_line,
                            "next_cursor is for the JSON payments endpoint (format = \"json\")"
                                .into(),
                        );
                    } else if let Some(s) =
                        self.string(key, value, "a dotted path, such as \"meta.next\"")
                    {
                        section.next_cursor = Some(s);
                    }
                }
                "delimiter" => {
                    if format != Format::Csv {
                        self.error(key_line, "delimiter is for format = \"csv\"".into());
                    } else if let Some(d) = self.delimiter(key, value) {
                        section.delimiter = d;
                    }
                }
                "fields" => match value.as_table() {
                    Some(t) => fields = Some((key, t)),
                    None => {
                        self.error(key_line, format!("fields must be a table: [{name}.fields]"))
                    }
                },
                other => self.error(
                    key_line,
                    format!(
                        "unknown key '{other}' in [{name}]: expected format, fields{}",
                        match (doc, format) {
                            (_, Format::Csv) => ", delimiter",
                            (Doc::Payment, Format::Json) => ", items, next_cursor",
                            _ => ", items",
                        }
                    ),
                ),
            }
        }
        section.fields = match fields {
            Some((key, t)) => {
                let parsed = self.fields(t, Way::In, shape, &format!("[{name}.fields]"), None);
                let fields_line = self.key_line(key);
                let missing: Vec<&str> = shape
                    .fields
                    .iter()
                    .filter(|f| f.required && !parsed.iter().any(|p| p.name == f.name))
                    .map(|f| f.name.as_str())
                    .collect();
                if !missing.is_empty() {
                    self.error(
                        fields_line,
                        format!(
                            "[{name}.fields] lacks {}: every {name} needs {} (map each from \
                             the ERP's field, or give a const)",
                            missing.join(", "),
                            shape
                                .fields
                                .iter()
                                .filter(|f| f.required)
                                .map(|f| f.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
                parsed
            }
            None => identity(shape, line),
        };
        Some(section)
    }

    fn answer(&mut self, table: &DeTable<'_>) -> Answer {
        let mut answer = Answer::default();
        for (key, value) in ordered(table) {
            let line = self.key_line(key);
            match key.get_ref().as_ref() {
                "document_number" => {
                    answer.document_number = self.path(
                        key,
                        value.get_ref(),
                        "a dotted path, such as \"data.docNo\"",
                    );
                }
                "reasons" => {
                    answer.reasons = self.path(
                        key,
                        value.get_ref(),
                        "a dotted path, such as \"errors[].message\"",
                    );
                }
                other => self.error(
                    line,
                    format!("unknown key '{other}' in [answer]: expected document_number, reasons"),
                ),
            }
        }
        answer
    }

    fn path(&mut self, key: &Key<'_>, value: &DeValue<'_>, what: &str) -> Option<String> {
        let s = self.string(key, value, what)?;
        if s.split('.').any(|p| p.is_empty() || p == "[]") {
            let line = self.key_line(key);
            self.error(line, format!("'{s}' has an empty part: it must be {what}"));
            return None;
        }
        Some(s)
    }

    /// A `fields` or `line_fields` table. Outbound (`Way::Out`) the keys are ERP names and
    /// `from` a canonical field of `shape`; inbound the keys are canonical.
    fn fields(
        &mut self,
        table: &DeTable<'_>,
        way: Way,
        shape: &Shape,
        what: &str,
        list: Option<&str>,
    ) -> Vec<FieldMap> {
        let mut out = Vec::new();
        for (key, value) in ordered(table) {
            let line = self.key_line(key);
            let name = key.get_ref().as_ref().to_owned();
            if name.trim().is_empty() {
                self.error(line, format!("an empty name in {what}"));
                continue;
            }
            let canonical_name = match way {
                Way::In => Some(name.clone()),
                Way::Out => None,
            };
            let Some(spec) = self.spec(&name, value, line) else {
                continue;
            };
            let canonical = match (&canonical_name, &spec.source) {
                (Some(c), _) => Some(c.clone()),
                (None, Source::From(path)) => Some(path.clone()),
                (None, Source::Const(_)) => None,
            };
            let kind = match &canonical {
                None => None,
                Some(c) => match shape.field(c) {
                    Some(f) => Some(f.kind.clone()),
                    None => {
                        let hint = match list {
                            Some(list) if c == list => format!(
                                "{list} is a list: map its fields in {}",
                                what.replace(".fields", ".line_fields")
                            ),
                            _ if way == Way::In => format!(
                                "unknown canonical field '{c}' in {what} (the keys are canonical \
                                 fields, `from` names the ERP's): expected one of {}",
                                shape.names()
                            ),
                            _ => format!(
                                "unknown canonical field '{c}' for {name} in {what}: expected \
                                 one of {}{}",
                                shape.names(),
                                list.map(|l| format!(
                                    " ({l} is mapped in {})",
                                    what.replace(".fields", ".line_fields")
                                ))
                                .unwrap_or_default()
                            ),
                        };
                        self.error(spec.from_line.unwrap_or(line), hint);
                        continue;
                    }
                },
            };
            if let Some(kind) = &kind {
                self.kind_fits(&name, kind, &spec, way, line);
            }
            out.push(FieldMap {
                name,
                line,
                source: spec.source,
                transform: spec.transform,
                default: spec.default,
                explicit: true,
            });
        }
        out
    }

    /// A spec's transform suits the canonical field it reads or writes; inbound, its values
    /// (const, map, default) are values that field can hold.
    fn kind_fits(&mut self, name: &str, kind: &Kind, spec: &Spec, way: Way, line: usize) {
        match &spec.transform {
            Transform::Date(pattern) => {
                let date_only = match kind {
                    Kind::Date => true,
                    Kind::DateTime if way == Way::Out => false,
                    other => {
                        self.error(
                            spec.transform_line,
                            format!(
                                "{name}: date is for a date field; this one is {}",
                                other.describe()
                            ),
                        );
                        return;
                    }
                };
                let sample = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap_or_default();
                let written = if date_only {
                    format_date(&sample.to_string(), pattern)
                } else {
                    format_date("2026-12-31T23:59:58Z", pattern)
                };
                match written {
                    None => self.error(
                        spec.transform_line,
                        format!(
                            "{name}: the pattern \"{pattern}\" asks for a time, but the field \
                             is a date: use date items only, such as \"%d.%m.%Y\""
                        ),
                    ),
                    Some(text) if way == Way::In => {
                        if NaiveDate::parse_from_str(&text, pattern).ok() != Some(sample) {
                            self.error(
                                spec.transform_line,
                                format!(
                                    "{name}: the pattern \"{pattern}\" cannot read a whole date: \
                                     it needs the year, the month and the day, such as \
                                     \"%d.%m.%Y\""
                                ),
                            );
                        }
                    }
                    Some(_) => {}
                }
            }
            Transform::Decimal(_) if *kind != Kind::Decimal => self.error(
                spec.transform_line,
                format!(
                    "{name}: decimal is for a decimal field; this one is {}",
                    kind.describe()
                ),
            ),
            _ => {}
        }
        if way == Way::Out {
            return;
        }
        let mut check = |value: &Value, what: &str, line: usize| {
            if let Err(why) = conform(kind, value.clone()) {
                self.error(line, format!("{name}: the {what} {why}"));
            }
        };
        if let Source::Const(v) = &spec.source {
            check(v, "const", line);
        }
        if let Some(v) = &spec.default {
            check(v, "default", spec.default_line.unwrap_or(line));
        }
        if let Transform::Map(map) = &spec.transform {
            for (k, v) in map {
                check(v, &format!("map's value for '{k}'"), spec.transform_line);
            }
        }
    }

    fn spec(&mut self, name: &str, value: &Spanned<DeValue<'_>>, line: usize) -> Option<Spec> {
        let mut spec = Spec {
            source: Source::From(String::new()),
            transform: Transform::None,
            default: None,
            from_line: None,
            transform_line: line,
            default_line: None,
        };
        match value.get_ref() {
            DeValue::String(s) if !s.trim().is_empty() => {
                spec.source = Source::From(s.to_string());
                Some(spec)
            }
            DeValue::Table(t) => {
                let mut from = None;
                let mut constant = None;
                let mut transforms = Vec::new();
                let mut ok = true;
                for (key, v) in ordered(t) {
                    let key_line = self.key_line(key);
                    match key.get_ref().as_ref() {
                        "from" => match v.get_ref().as_str() {
                            Some(s) if !s.trim().is_empty() => {
                                from = Some(s.to_owned());
                                spec.from_line = Some(key_line);
                            }
                            _ => {
                                ok = false;
                                self.error(
                                    key_line,
                                    format!("{name}: from must be a field name in quotes"),
                                );
                            }
                        },
                        "const" => match self.scalar(name, "const", v.get_ref(), key_line) {
                            Some(c) => constant = Some(c),
                            None => ok = false,
                        },
                        "default" => match self.scalar(name, "default", v.get_ref(), key_line) {
                            Some(d) => {
                                spec.default = Some(d);
                                spec.default_line = Some(key_line);
                            }
                            None => ok = false,
                        },
                        "date" => {
                            spec.transform_line = key_line;
                            transforms.push("date");
                            match self.pattern(name, v.get_ref(), key_line) {
                                Some(p) => spec.transform = Transform::Date(p),
                                None => ok = false,
                            }
                        }
                        "decimal" => {
                            spec.transform_line = key_line;
                            transforms.push("decimal");
                            match self.decimal(name, v.get_ref(), key_line) {
                                Some(d) => spec.transform = Transform::Decimal(d),
                                None => ok = false,
                            }
                        }
                        "map" => {
                            spec.transform_line = key_line;
                            transforms.push("map");
                            match self.map(name, v.get_ref(), key_line) {
                                Some(m) => spec.transform = Transform::Map(m),
                                None => ok = false,
                            }
                        }
                        other => {
                            ok = false;
                            self.error(
                                key_line,
                                format!(
                                    "{name}: unknown key '{other}': a field takes from or \
                                     const, and date, decimal, map, default"
                                ),
                            );
                        }
                    }
                }
                match (from, constant) {
                    (Some(_), Some(_)) => {
                        self.error(line, format!("{name}: give from or const, not both"));
                        return None;
                    }
                    (None, None) if ok => {
                        self.error(
                            line,
                            format!(
                                "{name}: give from = \"<field>\" (where the value is read) or \
                                 const = <value>"
                            ),
                        );
                        return None;
                    }
                    (None, None) => return None,
                    (Some(f), None) => spec.source = Source::From(f),
                    (None, Some(c)) => {
                        if !transforms.is_empty() || spec.default.is_some() {
                            self.error(
                                line,
                                format!(
                                    "{name}: a const is written as it is: drop {}",
                                    transforms
                                        .iter()
                                        .copied()
                                        .chain(spec.default.as_ref().map(|_| "default"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            );
                            return None;
                        }
                        spec.source = Source::Const(c);
                    }
                }
                if transforms.len() > 1 {
                    self.error(
                        line,
                        format!(
                            "{name}: {} cannot be combined: give one of date, decimal, map",
                            transforms.join(" and ")
                        ),
                    );
                    return None;
                }
                ok.then_some(spec)
            }
            _ => {
                self.error(
                    line,
                    format!(
                        "{name}: expected a field name in quotes, or a table such as {{ from = \
                         \"...\" }} or {{ const = \"...\" }}"
                    ),
                );
                None
            }
        }
    }

    /// A string, an integer or a boolean; floats are refused (not exact).
    fn scalar(&mut self, name: &str, what: &str, v: &DeValue<'_>, line: usize) -> Option<Value> {
        match v {
            DeValue::String(s) => Some(Value::String(s.to_string())),
            DeValue::Boolean(b) => Some(Value::Bool(*b)),
            DeValue::Integer(i) => {
                match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
                    Ok(n) => Some(Value::from(n)),
                    Err(_) => {
                        self.error(
                            line,
                            format!("{name}: the {what} {i} is not a 64-bit integer"),
                        );
                        None
                    }
                }
            }
            DeValue::Float(f) => {
                self.error(
                    line,
                    format!("{name}: the {what} {f} is a float, which is not exact: write it as a string (\"{f}\")"),
                );
                None
            }
            other => {
                self.error(
                    line,
                    format!(
                        "{name}: the {what} must be a string, an integer or a boolean, not {}",
                        other.type_str()
                    ),
                );
                None
            }
        }
    }

    fn pattern(&mut self, name: &str, v: &DeValue<'_>, line: usize) -> Option<String> {
        let Some(p) = v.as_str().filter(|p| !p.is_empty()) else {
            self.error(
                line,
                format!("{name}: date must be a chrono pattern in quotes, such as \"%d.%m.%Y\""),
            );
            return None;
        };
        if StrftimeItems::new(p).any(|i| matches!(i, Item::Error)) {
            self.error(
                line,
                format!("{name}: \"{p}\" is not a valid date pattern (chrono strftime: %d day, %m month, %Y year, %% a percent sign)"),
            );
            return None;
        }
        Some(p.to_owned())
    }

    fn decimal(&mut self, name: &str, v: &DeValue<'_>, line: usize) -> Option<DecimalFormat> {
        let Some(t) = v.as_table() else {
            self.error(
                line,
                format!("{name}: decimal must be a table, such as {{ places = 2, point = \",\" }}"),
            );
            return None;
        };
        let mut f = DecimalFormat {
            places: None,
            point: '.',
            grouping: None,
        };
        let mut ok = true;
        let char_of = |check: &mut Self, key: &Key<'_>, v: &DeValue<'_>| -> Option<char> {
            let key_line = check.key_line(key);
            let mut chars = v.as_str().unwrap_or_default().chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if !c.is_ascii_digit() && c != '-' && c != '+' => Some(c),
                _ => {
                    check.error(
                        key_line,
                        format!(
                            "{name}: decimal {} must be one character (not a digit or a sign), \
                             such as \",\" or \".\"",
                            key.get_ref()
                        ),
                    );
                    None
                }
            }
        };
        let mut point_line = line;
        for (key, value) in ordered(t) {
            let key_line = self.key_line(key);
            match key.get_ref().as_ref() {
                "places" => match value
                    .get_ref()
                    .as_integer()
                    .and_then(|i| i.as_str().parse::<u32>().ok())
                {
                    Some(p) if p <= 28 => f.places = Some(p),
                    _ => {
                        ok = false;
                        self.error(
                            key_line,
                            format!("{name}: decimal places must be an integer from 0 to 28"),
                        );
                    }
                },
                "point" => {
                    point_line = key_line;
                    match char_of(self, key, value.get_ref()) {
                        Some(c) => f.point = c,
                        None => ok = false,
                    }
                }
                "grouping" => {
                    point_line = point_line.max(key_line);
                    match char_of(self, key, value.get_ref()) {
                        Some(c) => f.grouping = Some(c),
                        None => ok = false,
                    }
                }
                other => {
                    ok = false;
                    self.error(
                        key_line,
                        format!("{name}: unknown key '{other}' in decimal: expected places, point, grouping"),
                    );
                }
            }
        }
        if ok && f.grouping == Some(f.point) {
            self.error(
                point_line,
                format!(
                    "{name}: decimal point and grouping are both '{}': they must differ (German: \
                     point = \",\", grouping = \".\")",
                    f.point
                ),
            );
            return None;
        }
        ok.then_some(f)
    }

    fn map(&mut self, name: &str, v: &DeValue<'_>, line: usize) -> Option<Vec<(String, Value)>> {
        let Some(t) = v.as_table() else {
            self.error(
                line,
                format!("{name}: map must be a table, such as {{ EUR = \"978\" }}"),
            );
            return None;
        };
        if t.is_empty() {
            self.error(
                line,
                format!("{name}: map is empty: give the values to map, such as {{ EUR = \"978\" }}, or drop it"),
            );
            return None;
        }
        let mut out = Vec::new();
        for (key, value) in ordered(t) {
            let key_line = self.key_line(key);
            let v = self.scalar(
                name,
                &format!("map's value for '{}'", key.get_ref()),
                value.get_ref(),
                key_line,
            )?;
            out.push((key.get_ref().to_string(), v));
        }
        Some(out)
    }
}

/// A parsed field spec, with the lines of its parts for later checks.
struct Spec {
    source: Source,
    transform: Transform,
    default: Option<Value>,
    from_line: Option<usize>,
    transform_line: usize,
    default_line: Option<usize>,
}
