//! Reading the configuration: the TOML file, then `COUPA_BRIDGE__...` overrides, then the
//! typed tree, then validation. Every problem found on the way is collected with where it came
//! from (file and line, or environment variable), so one run of `config check` lists them all.
//!
//! The file is parsed into toml's spanned document tree, overrides are grafted onto that tree
//! with spans past the end of the file (so a span tells a file line from a variable), and the
//! typed [`Config`] is deserialized from the result. Values that fail the schema are dropped
//! (and reported) before deserializing, so one bad value does not hide the others.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::schema::{self, Kind};
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
    /// The config file.
    File(PathBuf),
    /// This environment variable.
    Env(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "file {}", path.display()),
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
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<LoadedConfig, ConfigError> {
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
        load_from(text.as_deref(), path, &overrides)
    }

    /// [`Config::load`] on TOML text already in hand; `path` names it in messages and anchors
    /// relative paths.
    pub fn load_str(
        text: &str,
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<LoadedConfig, ConfigError> {
        load_from(Some(text), path, &overrides(env))
    }
}

/// One `COUPA_BRIDGE__...` variable, read for its key's type.
struct Override {
    var: String,
    /// `section.key`, lowercased.
    path: String,
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
            let value = match schema::find(&path) {
                Some(key) => typed(key.kind, &raw),
                None => Err(String::new()),
            };
            Override { var, path, value }
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
    /// Line of each key set in the file.
    lines: BTreeMap<String, usize>,
    /// Keys whose value was rejected: validation stays quiet about them.
    bad: BTreeSet<String>,
    /// Variable names, by override index (see [`Loader::env_span`]).
    vars: Vec<String>,
}

fn load_from(
    text: Option<&str>,
    path: &Path,
    overrides: &[Override],
) -> Result<LoadedConfig, ConfigError> {
    let mut root: Spanned<DeTable<'_>> = match text {
        Some(text) => DeTable::parse(text).map_err(|e| {
            let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
            ConfigError::Syntax {
                path: path.to_owned(),
                line,
                column,
                message: e.message().trim().replace('\n', "; "),
            }
        })?,
        None => Spanned::new(0..0, DeTable::new()),
    };
    let mut loader = Loader {
        path,
        text: text.unwrap_or(""),
        problems: Vec::new(),
        lines: BTreeMap::new(),
        bad: BTreeSet::new(),
        vars: overrides.iter().map(|o| o.var.clone()).collect(),
    };
    loader.check_table(root.get_mut(), "");
    loader.problems.sort_by_key(|p| match &p.origin {
        Some(Origin::File { line, .. }) => *line,
        _ => 0,
    });

    let mut sources: BTreeMap<String, Source> = BTreeMap::new();
    for key in loader.lines.keys() {
        if !loader.bad.contains(key) {
            sources.insert(key.clone(), Source::File(path.to_owned()));
        }
    }
    loader.apply_overrides(root.get_mut(), overrides, &mut sources);

    let config = match Config::deserialize(toml::de::Deserializer::from(root)) {
        Ok(config) => config,
        Err(e) => {
            // The schema check above should have caught everything; this is the backstop.
            let origin = e.span().and_then(|s| loader.origin_at(s.start));
            loader.problems.push(Problem {
                origin,
                key: None,
                message: e.message().to_owned(),
            });
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                problems: loader.problems,
            });
        }
    };
    let mut config = config;
    resolve_relative_paths(&mut config, path);

    for path in schema::key_paths() {
        sources.entry(path.to_owned()).or_insert(Source::Default);
    }
    let (issues, warnings) = validate::check(&config);
    for (key, message) in issues {
        if loader.bad.contains(key) {
            continue;
        }
        let origin = match sources.get(key) {
            Some(Source::Env(var)) => Some(Origin::Env(var.clone())),
            Some(Source::File(_)) => loader.lines.get(key).map(|line| Origin::File {
                path: path.to_owned(),
                line: *line,
            }),
            _ => None,
        };
        loader.problems.push(Problem {
            origin,
            key: Some(key.to_owned()),
            message,
        });
    }
    if !loader.problems.is_empty() {
        return Err(ConfigError::Invalid {
            path: path.to_owned(),
            problems: loader.problems,
        });
    }
    Ok(LoadedConfig {
        config,
        sources,
        warnings,
    })
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

    /// Checks the file's keys against the schema, recording each key's line and dropping (after
    /// reporting) unknown keys and ill-typed values.
    fn check_table(&mut self, table: &mut DeTable<'_>, prefix: &str) {
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
                    self.check_table(inner, &path);
                    continue;
                }
                self.problems.push(Problem {
                    origin,
                    key: Some(path.clone()),
                    message: format!("expected a table ([{path}])"),
                });
            } else if let Some(key) = schema::find(&path) {
                let line = line_col(self.text, offset).0;
                self.lines.insert(path.clone(), line);
                match schema::check(key.kind, value.get_ref()) {
                    Ok(()) => continue,
                    Err(message) => {
                        self.problems.push(Problem {
                            origin,
                            key: Some(path.clone()),
                            message,
                        });
                        self.bad.insert(path);
                    }
                }
            } else {
                self.problems.push(Problem {
                    origin,
                    key: None,
                    message: format!(
                        "unknown field `{name}`, {}",
                        schema::expected_one_of(prefix, &name)
                    ),
                });
            }
            table.remove(name.as_str());
        }
    }

    fn apply_overrides<'a>(
        &mut self,
        root: &mut DeTable<'a>,
        overrides: &'a [Override],
        sources: &mut BTreeMap<String, Source>,
    ) {
        for (index, o) in overrides.iter().enumerate() {
            let origin = Some(Origin::Env(o.var.clone()));
            let span = self.env_span(index);
            let problem = match &o.value {
                Ok(typed) => {
                    if let Some(Source::Env(other)) = sources.get(&o.path) {
                        Some((
                            Some(o.path.clone()),
                            format!("sets the same key as {other}; keep one"),
                        ))
                    } else if let Some(value) = to_devalue(typed, &span) {
                        insert(root, &o.path, value, &span);
                        sources.insert(o.path.clone(), Source::Env(o.var.clone()));
                        None
                    } else {
                        Some((Some(o.path.clone()), "cannot be read".to_owned()))
                    }
                }
                Err(message) if schema::find(&o.path).is_some() => {
                    self.bad.insert(o.path.clone());
                    Some((Some(o.path.clone()), message.clone()))
                }
                Err(_) => Some((None, unknown_env_key(&o.path))),
            };
            if let Some((key, message)) = problem {
                self.problems.push(Problem {
                    origin,
                    key,
                    message,
                });
            }
        }
    }
}

fn unknown_env_key(path: &str) -> String {
    if schema::is_section(path) {
        return format!(
            "names the section [{path}], not a key: add `__<KEY>`, one of {}",
            schema::children(path).join(", ")
        );
    }
    let (prefix, name) = path.rsplit_once('.').unwrap_or(("", path));
    if prefix.is_empty() || schema::is_section(prefix) {
        format!(
            "unknown key `{path}`, {}",
            schema::expected_one_of(prefix, name)
        )
    } else {
        format!(
            "unknown key `{path}`: there is no section [{prefix}] (sections: {})",
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
    if let Some(key) = &mut config.payments.sftp.private_key_path
        && key.is_relative()
    {
        *key = dir.join(&*key);
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
