//! Coupa's query language as a typed builder: `attribute[op]=value` filters (AND-ed), nested
//! attributes (`supplier[name]`), `fields=[...]`, `order_by`/`dir`, `limit`/`offset`,
//! `return_object` and named API filters. Rendering is the only place that knows the syntax,
//! so a typo in an operator cannot reach the wire.

use chrono::{DateTime, FixedOffset, Utc};
use rust_decimal::Decimal;

/// A comparison, as Coupa's `[op]` suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    NotEq,
    Contains,
    StartsWith,
    EndsWith,
    Gt,
    Lt,
    GtOrEq,
    LtOrEq,
    In,
    NotIn,
    Blank,
}

impl Op {
    fn suffix(self) -> Option<&'static str> {
        Some(match self {
            Op::Eq => return None,
            Op::NotEq => "not_eq",
            Op::Contains => "contains",
            Op::StartsWith => "starts_with",
            Op::EndsWith => "ends_with",
            Op::Gt => "gt",
            Op::Lt => "lt",
            Op::GtOrEq => "gt_or_eq",
            Op::LtOrEq => "lt_or_eq",
            Op::In => "in",
            Op::NotIn => "not_in",
            Op::Blank => "blank",
        })
    }
}

/// A value in a query string, rendered as Coupa reads it.
pub trait QueryValue {
    fn render(&self) -> String;
}

impl QueryValue for str {
    fn render(&self) -> String {
        self.to_owned()
    }
}
impl QueryValue for String {
    fn render(&self) -> String {
        self.clone()
    }
}
impl QueryValue for bool {
    fn render(&self) -> String {
        self.to_string()
    }
}
impl QueryValue for i64 {
    fn render(&self) -> String {
        self.to_string()
    }
}
impl QueryValue for Decimal {
    fn render(&self) -> String {
        self.to_string()
    }
}
impl QueryValue for DateTime<FixedOffset> {
    fn render(&self) -> String {
        coupa_doc::json::format_datetime(self)
    }
}
impl QueryValue for DateTime<Utc> {
    fn render(&self) -> String {
        coupa_doc::json::format_datetime(&self.fixed_offset())
    }
}
impl<T: QueryValue + ?Sized> QueryValue for &T {
    fn render(&self) -> String {
        (**self).render()
    }
}

macro_rules! display_query_value {
    ($($t:ty),*) => {$(
        impl QueryValue for $t {
            fn render(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
display_query_value!(
    crate::InvoiceId,
    crate::PayPaymentId,
    crate::IntegrationId,
    crate::IntegrationRunId,
    crate::InvoiceNumber,
    crate::InvoiceStatus,
    crate::PayPaymentStatus,
    crate::SupplierId
);

/// The attribute a filter applies to: one name, or a path through associations
/// (`["supplier", "name"]` renders `supplier[name]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr(Vec<String>);

impl From<&str> for Attr {
    fn from(s: &str) -> Self {
        Attr(vec![s.to_owned()])
    }
}

impl<const N: usize> From<[&str; N]> for Attr {
    fn from(path: [&str; N]) -> Self {
        Attr(path.iter().map(|s| (*s).to_owned()).collect())
    }
}

impl Attr {
    fn render(&self, op: Op) -> String {
        let mut out = String::new();
        for (i, seg) in self.0.iter().enumerate() {
            if i == 0 {
                out.push_str(seg);
            } else {
                out.push('[');
                out.push_str(seg);
                out.push(']');
            }
        }
        if let Some(s) = op.suffix() {
            out.push('[');
            out.push_str(s);
            out.push(']');
        }
        out
    }
}

/// Sort direction for `order_by`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Asc,
    Desc,
}

/// How much of each object to return (`return_object`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnObject {
    /// Ids only. Valid on queries and writes.
    Limited,
    /// Attributes plus ids and natural keys of one-deep associations. Valid on queries and writes.
    Shallow,
    /// No body. Valid on writes only.
    None,
}

impl ReturnObject {
    fn as_str(self) -> &'static str {
        match self {
            ReturnObject::Limited => "limited",
            ReturnObject::Shallow => "shallow",
            ReturnObject::None => "none",
        }
    }
}

/// The `fields` parameter: which attributes, and which attributes of associations, to return.
/// `Fields::new(["id", "status"]).nest("supplier", Fields::new(["id", "name"])).all("custom-fields")`
/// renders `["id","status",{"supplier":["id","name"]},{"custom-fields":{}}]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields(Vec<FieldItem>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum FieldItem {
    Name(String),
    Nested(String, Fields),
    All(String),
}

impl Fields {
    pub fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Fields(
            names
                .into_iter()
                .map(|n| FieldItem::Name(n.into()))
                .collect(),
        )
    }

    /// Adds an association with its own field list.
    pub fn nest(mut self, assoc: impl Into<String>, fields: Fields) -> Self {
        self.0.push(FieldItem::Nested(assoc.into(), fields));
        self
    }

    /// Adds an association with all its attributes (`{"custom-fields":{}}`).
    pub fn all(mut self, assoc: impl Into<String>) -> Self {
        self.0.push(FieldItem::All(assoc.into()));
        self
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.0
                .iter()
                .map(|item| match item {
                    FieldItem::Name(n) => serde_json::Value::String(n.clone()),
                    FieldItem::Nested(a, f) => {
                        let mut m = serde_json::Map::new();
                        m.insert(a.clone(), f.to_json());
                        serde_json::Value::Object(m)
                    }
                    FieldItem::All(a) => {
                        let mut m = serde_json::Map::new();
                        m.insert(a.clone(), serde_json::Value::Object(serde_json::Map::new()));
                        serde_json::Value::Object(m)
                    }
                })
                .collect(),
        )
    }

    /// The JSON text Coupa expects as the parameter's value.
    pub fn render(&self) -> String {
        self.to_json().to_string()
    }
}

/// A query: filters plus listing options. Renders to ordered `(name, value)` pairs; the
/// transport percent-encodes them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    filters: Vec<(String, String)>,
    fields: Option<Fields>,
    order_by: Option<(String, Dir)>,
    limit: Option<u32>,
    offset: Option<u64>,
    return_object: Option<ReturnObject>,
    named_filter: Option<String>,
}

impl Query {
    pub fn new() -> Self {
        Query::default()
    }

    /// Adds `attr[op]=value`.
    pub fn filter(mut self, attr: impl Into<Attr>, op: Op, value: impl QueryValue) -> Self {
        self.filters.push((attr.into().render(op), value.render()));
        self
    }

    pub fn eq(self, attr: impl Into<Attr>, value: impl QueryValue) -> Self {
        self.filter(attr, Op::Eq, value)
    }

    pub fn gt(self, attr: impl Into<Attr>, value: impl QueryValue) -> Self {
        self.filter(attr, Op::Gt, value)
    }

    /// `attr[in]=a,b,c`. Coupa splits on commas, so values must not contain one.
    pub fn is_in<I, V>(self, attr: impl Into<Attr>, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: QueryValue,
    {
        let list = values
            .into_iter()
            .map(|v| v.render())
            .collect::<Vec<_>>()
            .join(",");
        self.filter(attr, Op::In, list)
    }

    pub fn fields(mut self, fields: Fields) -> Self {
        self.fields = Some(fields);
        self
    }

    pub fn order_by(mut self, attr: impl Into<String>, dir: Dir) -> Self {
        self.order_by = Some((attr.into(), dir));
        self
    }

    /// Page size; Coupa returns at most 50 whatever is asked.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    pub fn offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    pub fn return_object(mut self, r: ReturnObject) -> Self {
        self.return_object = Some(r);
        self
    }

    /// A named API Response Filter (Setup > Integrations > API Filters).
    pub fn named_filter(mut self, name: impl Into<String>) -> Self {
        self.named_filter = Some(name.into());
        self
    }

    /// The configured page size (None = Coupa's default, 50).
    pub fn page_size(&self) -> Option<u32> {
        self.limit
    }

    /// Drops every filter with this rendered name (e.g. `id[gt]`).
    pub(crate) fn without_filter(mut self, rendered_name: &str) -> Self {
        self.filters.retain(|(k, _)| k != rendered_name);
        self
    }

    pub(crate) fn without_paging(mut self) -> Self {
        self.offset = None;
        self.order_by = None;
        self
    }

    /// The parameters in a stable order: filters as added, then the listing options.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut out = self.filters.clone();
        if let Some(f) = &self.fields {
            out.push(("fields".into(), f.render()));
        }
        if let Some(name) = &self.named_filter {
            out.push(("filter".into(), name.clone()));
        }
        if let Some((attr, dir)) = &self.order_by {
            out.push(("order_by".into(), attr.clone()));
            out.push((
                "dir".into(),
                match dir {
                    Dir::Asc => "asc",
                    Dir::Desc => "desc",
                }
                .into(),
            ));
        }
        if let Some(l) = self.limit {
            out.push(("limit".into(), l.to_string()));
        }
        if let Some(o) = self.offset {
            out.push(("offset".into(), o.to_string()));
        }
        if let Some(r) = self.return_object {
            out.push(("return_object".into(), r.as_str().into()));
        }
        out
    }

    /// The percent-encoded query string, without the leading `?`. Brackets in names stay
    /// readable, as Coupa's own examples write them.
    pub fn render(&self) -> String {
        render_pairs(&self.pairs())
    }
}

/// Characters escaped in query names and values: everything but unreserved characters and the
/// brackets of `attr[op]`.
const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'[')
    .remove(b']');

pub(crate) fn render_pairs(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.extend(percent_encoding::utf8_percent_encode(k, QUERY));
        out.push('=');
        out.extend(percent_encoding::utf8_percent_encode(v, QUERY));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn every_operator_renders_its_suffix() {
        let q = Query::new()
            .filter("status", Op::Eq, "approved")
            .filter("status", Op::NotEq, "draft")
            .filter("invoice-number", Op::Contains, "INV")
            .filter("invoice-number", Op::StartsWith, "IN")
            .filter("invoice-number", Op::EndsWith, "9")
            .filter("id", Op::Gt, 5_i64)
            .filter("id", Op::Lt, 9_i64)
            .filter("id", Op::GtOrEq, 5_i64)
            .filter("id", Op::LtOrEq, 9_i64)
            .filter("status", Op::In, "a,b")
            .filter("status", Op::NotIn, "c")
            .filter("po-number", Op::Blank, true);
        let names: Vec<String> = q.pairs().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            [
                "status",
                "status[not_eq]",
                "invoice-number[contains]",
                "invoice-number[starts_with]",
                "invoice-number[ends_with]",
                "id[gt]",
                "id[lt]",
                "id[gt_or_eq]",
                "id[lt_or_eq]",
                "status[in]",
                "status[not_in]",
                "po-number[blank]"
            ]
        );
    }

    #[test]
    fn nested_attributes_fields_order_and_options_render_as_coupa_writes_them() {
        let q = Query::new()
            .eq("exported", false)
            .is_in("status", ["approved", "voided"])
            .filter(["supplier", "name"], Op::Gt, "Fish")
            .eq(["order-lines", "account", "code"], "a-c")
            .fields(
                Fields::new(["id", "invoice-number"])
                    .nest("supplier", Fields::new(["id", "name"]))
                    .all("custom-fields"),
            )
            .named_filter("default_invoices_filter")
            .order_by("id", Dir::Asc)
            .limit(50)
            .offset(100)
            .return_object(ReturnObject::Limited);
        let pairs = q.pairs();
        assert_eq!(pairs[0], ("exported".into(), "false".into()));
        assert_eq!(pairs[1], ("status[in]".into(), "approved,voided".into()));
        assert_eq!(pairs[2], ("supplier[name][gt]".into(), "Fish".into()));
        assert_eq!(
            pairs[3],
            ("order-lines[account][code]".into(), "a-c".into())
        );
        assert_eq!(
            pairs[4],
            (
                "fields".into(),
                r#"["id","invoice-number",{"supplier":["id","name"]},{"custom-fields":{}}]"#.into()
            )
        );
        assert_eq!(
            q.render(),
            "exported=false&status[in]=approved%2Cvoided&supplier[name][gt]=Fish&\
             order-lines[account][code]=a-c&fields=[%22id%22%2C%22invoice-number%22%2C%7B%22supplier%22%3A[%22id%22%2C%22name%22]%7D%2C%7B%22custom-fields%22%3A%7B%7D%7D]&\
             filter=default_invoices_filter&order_by=id&dir=asc&limit=50&offset=100&return_object=limited"
        );
    }

    #[test]
    fn datetimes_keep_their_offset_and_escape_colon_and_plus() {
        let t = FixedOffset::east_opt(2 * 3600)
            .expect("valid offset")
            .with_ymd_and_hms(2026, 3, 1, 17, 44, 14)
            .single()
            .expect("valid time");
        let q = Query::new().filter("updated-at", Op::GtOrEq, t);
        assert_eq!(
            q.render(),
            "updated-at[gt_or_eq]=2026-03-01T17%3A44%3A14%2B02%3A00"
        );
    }
}
