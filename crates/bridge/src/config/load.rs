//! Reading the configuration: the TOML file, then `COUPA_BRIDGE__...` overrides, then the
//! typed tree, then validation. Every problem found on the way is collected with where it came
//! from (file and line, or environment variable), so one run of `config check` lists them all.
//!
//! The file is parsed into toml's spanned document tree, overrides are grafted onto that tree
//! with spans past the end of the file (so a span tells a file line from a variable), and the
//! typed [`Config`] is deserialized from the result. Values that fail the schema are dropped
//! (and reported) before deserializing, so one bad value does not hide the others.
//!
//! A file with `[tenants.<name>]` tables (see `tenants.rs`) is read the same way: the top-level
//! sections and each tenant's sections are checked against the schema with their lines, then
//! each tenant's tree is the top level overridden key by key by the tenant's sections, then by
//! the `COUPA_BRIDGE__<SECTION>__<KEY>` variables, then by the tenant's own
//! `COUPA_BRIDGE__TENANTS__<NAME>__<SECTION>__<KEY>` variables.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::schema::{self, Kind};
use super::tenants::{self, DEFAULT_TENANT, Tenant};
use super::{Config, ENV_PREFIX, validate};

/// A validated configuration with where each value came from.
#[derive(Clone, Debug)]
pub struct LoadedConfig {
    pub config: Config,
    /// Every key path of the schema (`coupa.base_url`, `payments.sftp.host`, ...), set or not.
    pub sources: BTreeMap<String, Source>,
    /// Things that work but deserve a look (a deprecated API key, a rate above Coupa's limit).
    pub warnings: Vec<String>,
}

/// Where an effective value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Not set: the built-in default (or unset, for an optional key).
    Default,
    /// The config file's top level.
    File(PathBuf),
    /// A tenant's section of the config file: the line, and the key as written there
    /// (`tenants.acme.coupa.base_url`).
    TenantFile {
        path: PathBuf,
        line: usize,
        key: String,
    },
    /// This environment variable.
    Env(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::TenantFile { path, line, key } => {
                write!(f, "file {}:{line} ({key})", path.display())
            }
            Source::Env(var) => write!(f, "env {var}"),
        }
    }
}

/// Where a problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A line (1-based) of the config file.
    File { path: PathBuf, line: usize },
    /// An environment variable.
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Env(var) => f.write_str(var),
        }
    }
}

/// One thing wrong with the configuration. Messages never contain a secret's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// `None` when the value is missing or is a default.
    pub origin: Option<Origin>,
    /// The key path the problem is about, when there is one (an unknown key has none).
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(origin) = &self.origin {
            write!(f, "{origin}: ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no config file at {path}, and {ENV_PREFIX}COUPA__BASE_URL is not set. Create one from \
         the example (`cp coupa-bridge.example.toml {path}`, then edit it and set the secret \
         in {ENV_PREFIX}COUPA__CLIENT_SECRET), pass --config FILE, or configure through \
         {ENV_PREFIX}<SECTION>__<KEY> variables alone",
        path = .path.display()
    )]
    NotFound { path: PathBuf },
    #[error("cannot read the config file {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: TOML syntax error: {message}", .path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}", invalid_message(.path, .problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
    /// No tenant chosen on a file that configures several, or one it does not configure.
    #[error("{}: {message}", .path.display())]
    Tenant { path: PathBuf, message: String },
}

fn invalid_message(path: &Path, problems: &[Problem]) -> String {
    let mut out = format!(
        "invalid configuration ({}, {} problem{}):",
        path.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for problem in problems {
        out.push_str("\n  ");
        out.push_str(&problem.to_string());
    }
    out
}

/// This process's `COUPA_BRIDGE__...` variables, for [`Config::load`]. Variables whose name
/// is not Unicode are skipped; a value that is not Unicode is read lossily.
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            has_prefix(&name).then(|| (name, value.to_string_lossy().into_owned()))
        })
        .collect()
}

fn has_prefix(var: &str) -> bool {
    var.get(..ENV_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(ENV_PREFIX))
}

impl Config {
    /// Reads `path` (TOML), applies the `COUPA_BRIDGE__<SECTION>__<KEY>` variables among `env`
    /// (pass [`process_env()`]; tests pass their own), and validates the result.
    ///
    /// Variable names are case-insensitive and `__` separates levels
    /// (`COUPA_BRIDGE__PAYMENTS__SFTP__HOST`); values are read for the key's type (lists as
    /// `a,b` or a TOML array `["a", "b"]`). A variable for a key that does not exist is an
    /// error. A missing file is an error unless `COUPA_BRIDGE__COUPA__BASE_URL` is set.
    ///
    /// Relative SQLite paths in `state.url` and `erp.url`, and a relative
    /// `payments.sftp.private_key_path`, are taken relative to the directory of `path` (so a
    /// service started from anywhere finds the same files); the loaded config holds them
    /// resolved.
    ///
    /// The same as [`Config::load_tenant`] with no tenant: a file with `[tenants.<name>]`
    /// tables is an error naming them.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<LoadedConfig, ConfigError> {
        Config::load_tenant(path, env, None)
    }

    /// [`Config::load`] on TOML text already in hand; `path` names it in messages and anchors
    /// relative paths.
    pub fn load_str(
        text: &str,
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<LoadedConfig, ConfigError> {
        Config::load_tenant_str(text, path, env, None)
    }
}

/// Which tenants a load validates and returns.
#[derive(Clone, Copy, Debug)]
pub(super) enum Want<'w> {
    /// Every tenant; a file without `[tenants]` has one, [`DEFAULT_TENANT`].
    All,
    /// One tenant (`None`: the file must have no `[tenants]`). The other tenants' values are
    /// still read (their keys checked, the rules across tenants applied), not validated.
    One(Option<&'w str>),
}

/// Reads the file at `path` and loads the tenants `want` asks for.
pub(super) fn load_path(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
    want: Want<'_>,
) -> Result<Vec<Tenant>, ConfigError> {
    let overrides = overrides(env);
    let text = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !overrides.iter().any(|o| o.path == "coupa.base_url") {
                return Err(ConfigError::NotFound {
                    path: path.to_owned(),
                });
            }
            None
        }
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    load_set(text.as_deref(), path, &overrides, want)
}

/// [`load_path`] on TOML text already in hand.
pub(super) fn load_text(
    text: &str,
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
    want: Want<'_>,
) -> Result<Vec<Tenant>, ConfigError> {
    load_set(Some(text), path, &overrides(env), want)
}

/// One `COUPA_BRIDGE__...` variable, read for its key's type.
struct Override {
    var: String,
    /// `section.key` (or `tenants.name.section.key`), lowercased.
    path: String,
    /// The tenant of a `COUPA_BRIDGE__TENANTS__<NAME>__...` variable.
    tenant: Option<String>,
    /// The schema's key path: `path` without `tenants.name.`.
    key: String,
    value: Result<Typed, String>,
}

/// An override's value, checked; numbers are kept as canonical TOML text.
enum Typed {
    Str(String),
    Bool(bool),
    Number(String),
    List(Vec<String>),
}

fn overrides(env: impl IntoIterator<Item = (String, String)>) -> Vec<Override> {
    let mut out: Vec<Override> = env
        .into_iter()
        .filter(|(var, _)| has_prefix(var))
        .map(|(var, raw)| {
            let path = var[ENV_PREFIX.len()..]
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
                .join(".");
            let (tenant, key) = match path.strip_prefix("tenants") {
                Some("") => (Some(String::new()), String::new()),
                Some(rest) if rest.starts_with('.') => {
                    let rest = &rest[1..];
                    let (name, key) = rest.split_once('.').unwrap_or((rest, ""));
                    (Some(name.to_owned()), key.to_owned())
                }
                _ => (None, path.clone()),
            };
            let value = match schema::find(&key) {
                Some(schema_key) => typed(schema_key.kind, &raw),
                None => Err(String::new()),
            };
            Override {
                var,
                path,
                tenant,
                key,
                value,
            }
        })
        .collect();
    out.sort_by(|a, b| a.var.cmp(&b.var));
    out
}

fn typed(kind: Kind, raw: &str) -> Result<Typed, String> {
    // Values often arrive with a stray newline (secret files, `echo`); none is meaningful.
    let value = raw.trim();
    let shown = || format!("\"{}\"", value.escape_debug());
    match kind {
        Kind::Str | Kind::Secret => Ok(Typed::Str(value.to_owned())),
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Typed::Bool(true)),
            "false" | "0" => Ok(Typed::Bool(false)),
            _ => Err(format!("expected true or false, found {}", shown())),
        },
        Kind::Int { min, max } => match value.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Typed::Number(n.to_string())),
            _ => Err(format!(
                "expected an integer from {min} to {max}, found {}",
                shown()
            )),
        },
        Kind::Positive => match value.parse::<f64>() {
            // `{:?}` writes `20.0`, `2.5`, `1e-7`: all valid TOML floats.
            Ok(n) if n.is_finite() && n > 0.0 => Ok(Typed::Number(format!("{n:?}"))),
            _ => Err(format!("expected a number above 0, found {}", shown())),
        },
        Kind::List if value.starts_with('[') => {
            let parsed = DeValue::parse(value)
                .map_err(|e| format!("not a TOML array of strings: {}", e.message()))?;
            match parsed.get_ref() {
                DeValue::Array(items) => {
                    items
                        .iter()
                        .map(|item| match item.get_ref() {
                            DeValue::String(s) => Ok(s.to_string()),
                            _ => Err("expected a list of strings, found a list with a non-string"
                                .to_owned()),
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map(Typed::List)
                }
                _ => Err("expected a list of strings".to_owned()),
            }
        }
        Kind::List => Ok(Typed::List(
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        )),
        Kind::OneOf(allowed) if allowed.contains(&value) => Ok(Typed::Str(value.to_owned())),
        Kind::OneOf(allowed) => Err(format!(
            "expected {}, found {}",
            schema::one_of(allowed),
            shown()
        )),
    }
}

fn to_devalue<'a>(typed: &'a Typed, span: &Range<usize>) -> Option<DeValue<'a>> {
    Some(match typed {
        Typed::Str(s) => DeValue::String(Cow::Borrowed(s)),
        Typed::Bool(b) => DeValue::Boolean(*b),
        Typed::Number(n) => DeValue::parse(n).ok()?.into_inner(),
        Typed::List(items) => DeValue::Array(
            items
                .iter()
                .map(|s| Spanned::new(span.clone(), DeValue::String(Cow::Borrowed(s))))
                .collect::<DeArray<'_>>(),
        ),
    })
}

struct Loader<'t> {
    path: &'t Path,
    text: &'t str,
    problems: Vec<Problem>,
    /// Variable names, by override index (see [`Loader::env_span`]).
    vars: Vec<String>,
}

/// What one level of the file (the top level, or one tenant's sections) and its variables set.
#[derive(Default)]
struct Layer {
    /// Line of each key set in the file, by schema key path.
    lines: BTreeMap<String, usize>,
    /// Keys whose value was rejected (in the file or a variable): validation stays quiet about
    /// them.
    bad: BTreeSet<String>,
}

/// One `[tenants.<name>]` table, checked.
struct Section<'i> {
    name: String,
    table: DeTable<'i>,
    layer: Layer,
}

/// A tenant's effective tree, deserialized.
struct Built {
    name: String,
    /// `None` when the tree did not deserialize (reported).
    config: Option<Config>,
    sources: BTreeMap<String, Source>,
    /// Keys whose value came from the tenant's own sections or variables.
    own: BTreeSet<String>,
    bad: BTreeSet<String>,
}

fn parse<'i>(text: Option<&'i str>, path: &Path) -> Result<Spanned<DeTable<'i>>, ConfigError> {
    match text {
        Some(text) => DeTable::parse(text).map_err(|e| {
            let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
            ConfigError::Syntax {
                path: path.to_owned(),
                line,
                column,
                message: e.message().trim().replace('\n', "; "),
            }
        }),
        None => Ok(Spanned::new(0..0, DeTable::new())),
    }
}

fn load_set(
    text: Option<&str>,
    path: &Path,
    overrides: &[Override],
    want: Want<'_>,
) -> Result<Vec<Tenant>, ConfigError> {
    let mut root = parse(text, path)?;
    let mut loader = Loader {
        path,
        text: text.unwrap_or(""),
        problems: Vec::new(),
        vars: overrides.iter().map(|o| o.var.clone()).collect(),
    };
    let sections = loader.take_tenants(root.get_mut());
    let multi = sections.is_some();
    let mut sections = sections.unwrap_or_default();
    let names: Vec<String> = sections.iter().map(|s| s.name.clone()).collect();
    let chosen = match want {
        Want::All => None,
        Want::One(choice) => tenants::choose(path, multi, &names, choice)?,
    };
    let selected = |name: &str| chosen.as_deref().is_none_or(|c| c == name);

    let mut top = Layer::default();
    loader.check_table(root.get_mut(), "", "", &mut top);
    for section in &mut sections {
        let shown = format!("tenants.{}.", section.name);
        loader.check_table(&mut section.table, "", &shown, &mut section.layer);
    }
    loader.problems.sort_by_key(|p| match &p.origin {
        Some(Origin::File { line, .. }) => *line,
        _ => 0,
    });
    let usable = loader.check_overrides(overrides, multi, &mut top, &mut sections);

    // Each tenant's tree: the top level, its sections, the variables for all, its variables.
    let units: Vec<Option<&Section<'_>>> = if multi {
        sections.iter().map(Some).collect()
    } else {
        vec![None]
    };
    let mut built: Vec<Built> = Vec::new();
    for section in units {
        let name = section.map_or(DEFAULT_TENANT, |s| s.name.as_str());
        let mut tree = root.get_ref().clone();
        let mut sources: BTreeMap<String, Source> = BTreeMap::new();
        let mut own = BTreeSet::new();
        let mut bad = top.bad.clone();
        for key in top.lines.keys() {
            if !top.bad.contains(key) {
                sources.insert(key.clone(), Source::File(path.to_owned()));
            }
        }
        if let Some(section) = section {
            merge(&mut tree, section.table.clone());
            for (key, line) in &section.layer.lines {
                if !section.layer.bad.contains(key) {
                    let shown = format!("tenants.{name}.{key}");
                    sources.insert(
                        key.clone(),
                        Source::TenantFile {
                            path: path.to_owned(),
                            line: *line,
                            key: shown,
                        },
                    );
                    own.insert(key.clone());
                }
            }
            bad.extend(section.layer.bad.iter().cloned());
        }
        let globals = overrides
            .iter()
            .enumerate()
            .filter(|(_, o)| o.tenant.is_none());
        let locals = overrides
            .iter()
            .enumerate()
            .filter(|(_, o)| section.is_some() && o.tenant.as_deref() == Some(name));
        for (index, o) in globals.chain(locals) {
            if !usable[index] {
                continue;
            }
            let span = loader.env_span(index);
            let Ok(typed) = &o.value else { continue };
            let Some(value) = to_devalue(typed, &span) else {
                continue;
            };
            insert(&mut tree, &o.key, value, &span);
            sources.insert(o.key.clone(), Source::Env(o.var.clone()));
            if o.tenant.is_some() {
                own.insert(o.key.clone());
            } else {
                own.remove(&o.key);
            }
        }
        let tree = Spanned::new(root.span(), tree);
        let config = match Config::deserialize(toml::de::Deserializer::from(tree)) {
            Ok(mut config) => {
                resolve_relative_paths(&mut config, path);
                Some(config)
            }
            Err(e) => {
                // The schema check above should have caught everything; this is the backstop.
                let origin = e.span().and_then(|s| loader.origin_at(s.start));
                loader.problems.push(Problem {
                    origin,
                    key: multi.then(|| format!("tenants.{name}")),
                    message: e.message().to_owned(),
                });
                None
            }
        };
        for key in schema::key_paths() {
            if !sources.contains_key(key) {
                sources.insert(key.to_owned(), Source::Default);
            }
        }
        built.push(Built {
            name: name.to_owned(),
            config,
            sources,
            own,
            bad,
        });
    }

    // Validation, for the tenants asked for. In a file with tenants, a problem with a value from
    // the top level (or a variable for all) is reported once, naming the tenants it breaks
    // unless it breaks them all; the others carry the tenant's key path.
    let mut shared: Vec<(Problem, Vec<String>)> = Vec::new();
    let mut own_problems: Vec<Problem> = Vec::new();
    let mut warnings: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut validated = 0;
    for unit in &built {
        let Some(config) = &unit.config else { continue };
        if !selected(&unit.name) {
            continue;
        }
        validated += 1;
        let (issues, unit_warnings) = validate::check(config);
        warnings.insert(unit.name.clone(), unit_warnings);
        for (key, message) in issues {
            if unit.bad.contains(key) {
                continue;
            }
            let origin = origin_of(key, &unit.sources, &top, path);
            let from_top = matches!(
                unit.sources.get(key),
                Some(Source::File(_) | Source::Env(_))
            ) && !unit.own.contains(key);
            if multi && from_top {
                let problem = Problem {
                    origin,
                    key: Some(key.to_owned()),
                    message,
                };
                match shared.iter_mut().find(|(p, _)| *p == problem) {
                    Some((_, names)) => names.push(unit.name.clone()),
                    None => shared.push((problem, vec![unit.name.clone()])),
                }
            } else {
                own_problems.push(Problem {
                    origin,
                    key: Some(if multi {
                        format!("tenants.{}.{key}", unit.name)
                    } else {
                        key.to_owned()
                    }),
                    message,
                });
            }
        }
    }
    for (mut problem, names) in shared {
        if names.len() < validated {
            problem.message = format!("{} ({})", problem.message, tenants::naming(&names));
        }
        loader.problems.push(problem);
    }
    loader.problems.append(&mut own_problems);

    if multi {
        let configs: Vec<(&str, &Config)> = built
            .iter()
            .filter_map(|b| b.config.as_ref().map(|c| (b.name.as_str(), c)))
            .collect();
        for (later, key, message) in tenants::conflicts(&configs) {
            let name = configs[later].0;
            let Some(unit) = built.iter().find(|b| b.name == name) else {
                continue;
            };
            loader.problems.push(Problem {
                origin: origin_of(key, &unit.sources, &top, path),
                key: Some(format!("tenants.{name}.{key}")),
                message,
            });
        }
    }

    if !loader.problems.is_empty() {
        return Err(ConfigError::Invalid {
            path: path.to_owned(),
            problems: loader.problems,
        });
    }
    Ok(built
        .into_iter()
        .filter(|b| selected(&b.name))
        .filter_map(|b| {
            let config = b.config?;
            Some(Tenant {
                loaded: LoadedConfig {
                    config,
                    sources: b.sources,
                    warnings: warnings.remove(&b.name).unwrap_or_default(),
                },
                name: b.name,
            })
        })
        .collect())
}

/// Where the value of `key` came from, as a problem's origin.
fn origin_of(
    key: &str,
    sources: &BTreeMap<String, Source>,
    top: &Layer,
    path: &Path,
) -> Option<Origin> {
    match sources.get(key) {
        Some(Source::Env(var)) => Some(Origin::Env(var.clone())),
        Some(Source::File(_)) => top.lines.get(key).map(|line| Origin::File {
            path: path.to_owned(),
            line: *line,
        }),
        Some(Source::TenantFile { path, line, .. }) => Some(Origin::File {
            path: path.clone(),
            line: *line,
        }),
        _ => None,
    }
}

/// `over` laid on `base` key by key: tables merge, values replace.
fn merge<'i>(base: &mut DeTable<'i>, over: DeTable<'i>) {
    for (key, value) in over {
        let span = value.span();
        let name: &str = key.get_ref();
        match (base.get_mut(name), value.into_inner()) {
            (Some(existing), DeValue::Table(inner)) if existing.get_ref().is_table() => {
                if let DeValue::Table(base_inner) = existing.get_mut() {
                    merge(base_inner, inner);
                }
            }
            (_, value) => {
                base.insert(key, Spanned::new(span, value));
            }
        }
    }
}

impl<'t> Loader<'t> {
    fn file_origin(&self, offset: usize) -> Origin {
        Origin::File {
            path: self.path.to_owned(),
            line: line_col(self.text, offset).0,
        }
    }

    /// Overrides get spans past the end of the file: override `i` sits at `len + 1 + i`.
    fn env_span(&self, index: usize) -> Range<usize> {
        let at = self.text.len() + 1 + index;
        at..at + 1
    }

    fn origin_at(&self, offset: usize) -> Option<Origin> {
        match offset.checked_sub(self.text.len() + 1) {
            Some(index) => self.vars.get(index).cloned().map(Origin::Env),
            None => Some(self.file_origin(offset)),
        }
    }

    /// Takes `[tenants]` out of the file's tree: `None` when there is none, else its tables in
    /// the file's order (a bad name or a value that is not a table is reported and left out).
    fn take_tenants<'i>(&mut self, root: &mut DeTable<'i>) -> Option<Vec<Section<'i>>> {
        let (key, value) = root.remove_entry("tenants")?;
        let at = key.span().start;
        let mut sections = Vec::new();
        let mut declared = 0;
        match value.into_inner() {
            DeValue::Table(table) => {
                let mut entries: Vec<_> = table.into_iter().collect();
                entries.sort_by_key(|(name, _)| name.span().start);
                for (name, value) in entries {
                    declared += 1;
                    let offset = name.span().start;
                    let name = name.get_ref().to_string();
                    if let Err(message) = tenants::check_name(&name) {
                        self.problems.push(Problem {
                            origin: Some(self.file_origin(offset)),
                            key: Some(format!("tenants.{}", name.escape_debug())),
                            message,
                        });
                        continue;
                    }
                    match value.into_inner() {
                        DeValue::Table(table) => sections.push(Section {
                            name,
                            table,
                            layer: Layer::default(),
                        }),
                        _ => self.problems.push(Problem {
                            origin: Some(self.file_origin(offset)),
                            key: Some(format!("tenants.{name}")),
                            message: format!(
                                "expected a table ([tenants.{name}]) with the tenant's sections"
                            ),
                        }),
                    }
                }
            }
            _ => {
                declared = 1;
                self.problems.push(Problem {
                    origin: Some(self.file_origin(at)),
                    key: Some("tenants".to_owned()),
                    message: "expected tables [tenants.<name>], one per Coupa instance".into(),
                });
            }
        }
        if declared == 0 {
            self.problems.push(Problem {
                origin: Some(self.file_origin(at)),
                key: Some("tenants".to_owned()),
                message: "configures no tenant: add [tenants.<name>] tables (e.g. \
                          [tenants.acme.coupa]), or remove [tenants]"
                    .into(),
            });
        }
        Some(sections)
    }

    /// Checks the file's keys against the schema, recording each key's line and dropping (after
    /// reporting) unknown keys and ill-typed values. `prefix` is the schema path of `table`;
    /// `shown` goes before key paths in messages (`tenants.acme.` inside a tenant).
    fn check_table(
        &mut self,
        table: &mut DeTable<'_>,
        prefix: &str,
        shown: &str,
        layer: &mut Layer,
    ) {
        let names: Vec<(String, usize)> = table
            .iter()
            .map(|(k, _)| (k.get_ref().to_string(), k.span().start))
            .collect();
        for (name, offset) in names {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            let origin = Some(self.file_origin(offset));
            let Some(value) = table.get_mut(name.as_str()) else {
                continue;
            };
            if schema::is_section(&path) {
                if let DeValue::Table(inner) = value.get_mut() {
                    self.check_table(inner, &path, shown, layer);
                    continue;
                }
                self.problems.push(Problem {
                    origin,
                    key: Some(format!("{shown}{path}")),
                    message: format!("expected a table ([{shown}{path}])"),
                });
            } else if let Some(key) = schema::find(&path) {
                let line = line_col(self.text, offset).0;
                layer.lines.insert(path.clone(), line);
                match schema::check(key.kind, value.get_ref()) {
                    Ok(()) => continue,
                    Err(message) => {
                        self.problems.push(Problem {
                            origin,
                            key: Some(format!("{shown}{path}")),
                            message,
                        });
                        layer.bad.insert(path);
                    }
                }
            } else {
                let section = format!("{shown}{prefix}");
                let within = if shown.is_empty() {
                    String::new()
                } else {
                    format!(" in [{}]", section.trim_end_matches('.'))
                };
                self.problems.push(Problem {
                    origin,
                    key: None,
                    message: format!(
                        "unknown field `{name}`{within}, {}",
                        schema::expected_one_of(prefix, &name)
                    ),
                });
            }
            table.remove(name.as_str());
        }
    }

    /// Reports the variables that cannot apply (unknown key or tenant, wrong type, a key set
    /// twice); the others are usable, by index.
    fn check_overrides(
        &mut self,
        overrides: &[Override],
        multi: bool,
        top: &mut Layer,
        sections: &mut [Section<'_>],
    ) -> Vec<bool> {
        let names: Vec<String> = sections.iter().map(|s| s.name.clone()).collect();
        let mut usable = vec![false; overrides.len()];
        let mut set: BTreeMap<&str, &str> = BTreeMap::new();
        for (index, o) in overrides.iter().enumerate() {
            let (shown, layer) = match o.tenant.as_deref() {
                None => (String::new(), Some(&mut *top)),
                Some(name) => (
                    format!("tenants.{name}."),
                    sections
                        .iter_mut()
                        .find(|s| s.name == name)
                        .map(|s| &mut s.layer),
                ),
            };
            let problem = match (o.tenant.as_deref(), layer) {
                (Some(_), _) if !multi => Some((
                    None,
                    format!(
                        "names a tenant, but {} has no [tenants.<name>] tables",
                        self.path.display()
                    ),
                )),
                (Some(""), _) => Some((
                    None,
                    "names [tenants], not a key: use \
                     COUPA_BRIDGE__TENANTS__<NAME>__<SECTION>__<KEY>"
                        .to_owned(),
                )),
                (Some(name), None) => Some((
                    None,
                    format!(
                        "unknown tenant `{}`: {} configures {}",
                        name.escape_debug(),
                        self.path.display(),
                        tenants::naming(&names)
                    ),
                )),
                (Some(name), Some(_)) if o.key.is_empty() => Some((
                    None,
                    format!(
                        "names the tenant [tenants.{name}], not a key: add `__<SECTION>__<KEY>`"
                    ),
                )),
                (_, Some(layer)) => match &o.value {
                    Ok(_) => match set.get(o.path.as_str()) {
                        Some(other) => Some((
                            Some(format!("{shown}{}", o.key)),
                            format!("sets the same key as {other}; keep one"),
                        )),
                        None => {
                            set.insert(&o.path, &o.var);
                            usable[index] = true;
                            None
                        }
                    },
                    Err(message) if schema::find(&o.key).is_some() => {
                        layer.bad.insert(o.key.clone());
                        Some((Some(format!("{shown}{}", o.key)), message.clone()))
                    }
                    Err(_) => Some((None, unknown_env_key(&shown, &o.key))),
                },
                (None, None) => None,
            };
            if let Some((key, message)) = problem {
                self.problems.push(Problem {
                    origin: Some(Origin::Env(o.var.clone())),
                    key,
                    message,
                });
            }
        }
        usable
    }
}

/// Why a variable names no key; `shown` goes before paths (`tenants.acme.` for a tenant's).
fn unknown_env_key(shown: &str, path: &str) -> String {
    if schema::is_section(path) {
        return format!(
            "names the section [{shown}{path}], not a key: add `__<KEY>`, one of {}",
            schema::children(path).join(", ")
        );
    }
    let (prefix, name) = path.rsplit_once('.').unwrap_or(("", path));
    if prefix.is_empty() || schema::is_section(prefix) {
        format!(
            "unknown key `{shown}{path}`, {}",
            schema::expected_one_of(prefix, name)
        )
    } else {
        format!(
            "unknown key `{shown}{path}`: there is no section [{shown}{prefix}] (sections: {})",
            schema::children("").join(", ")
        )
    }
}

fn insert<'a>(root: &mut DeTable<'a>, path: &str, value: DeValue<'a>, span: &Range<usize>) {
    let mut table = root;
    let mut segments = path.split('.').peekable();
    while let Some(segment) = segments.next() {
        let key = Spanned::new(span.clone(), Cow::Owned(segment.to_owned()));
        if segments.peek().is_none() {
            table.insert(key, Spanned::new(span.clone(), value));
            return;
        }
        let entry = table
            .entry(key)
            .or_insert_with(|| Spanned::new(span.clone(), DeValue::Table(DeTable::new())));
        match entry.get_mut() {
            DeValue::Table(inner) => table = inner,
            // Only after a reported file problem (which removed the value); nothing to graft on.
            _ => return,
        }
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut at = offset.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit_once('\n')
        .map_or(before, |(_, last)| last)
        .chars()
        .count()
        + 1;
    (line, column)
}

fn resolve_relative_paths(config: &mut Config, path: &Path) {
    let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && *d != Path::new("."))
    else {
        return;
    };
    config.state.url = resolve_sqlite_url(&config.state.url, dir);
    config.erp.url = resolve_sqlite_url(&config.erp.url, dir);
    for key in [
        &mut config.payments.sftp.private_key_path,
        &mut config.erp.files.sftp.private_key_path,
        &mut config.erp.mapping,
    ]
    .into_iter()
    .flatten()
    {
        if key.is_relative() {
            *key = dir.join(&*key);
        }
    }
    // Local folders of the files adapter (on an SFTP server they are absolute already).
    if config.erp.files.sftp.host.is_none() {
        let f = &mut config.erp.files;
        for folder in [&mut f.outbox, &mut f.inbox, &mut f.payments_inbox]
            .into_iter()
            .flatten()
        {
            if Path::new(folder.as_str()).is_relative() {
                *folder = dir.join(folder.as_str()).to_string_lossy().into_owned();
            }
        }
    }
}

/// `sqlite://x.db` -> `sqlite://DIR/x.db`; absolute paths, `:memory:` and other schemes are
/// left alone.
pub(super) fn resolve_sqlite_url(url: &str, dir: &Path) -> String {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("sqlite://") {
        ("sqlite://", rest)
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        ("sqlite:", rest)
    } else {
        return url.to_owned();
    };
    if rest.is_empty() || rest.starts_with(':') || Path::new(rest).is_absolute() {
        return url.to_owned();
    }
    format!("{scheme}{}", dir.join(rest).display())
}
