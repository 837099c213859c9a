//! The effective configuration as text, for `coupa-bridge config check`.

use super::load::{LoadedConfig, Source};
use super::schema;

/// Assignments longer than this do not push every comment further right.
const MAX_ALIGN: usize = 56;

impl LoadedConfig {
    /// One line per key, `section.key = value   # from <source>`, grouped by section. The lines
    /// are TOML (dotted keys). Secrets read `"[redacted]"`, passwords inside URLs too; an
    /// optional key that is not set is a comment line.
    pub fn render(&self) -> String {
        let tree = match toml::Value::try_from(&self.config) {
            Ok(tree) => tree,
            Err(e) => return format!("# cannot render the configuration: {e}\n"),
        };
        let mut rows: Vec<(Option<&str>, String, String)> = Vec::new();
        for path in schema::key_paths() {
            let section = path.rsplit_once('.').map(|(section, _)| section);
            let value = path
                .split('.')
                .try_fold(&tree, |node, segment| node.get(segment));
            let row = match value {
                Some(toml::Value::String(s)) if s.contains("://") => {
                    let shown = toml::Value::String(super::redact_userinfo(s));
                    (format!("{path} = {shown}"), self.comment(path))
                }
                Some(value) => (format!("{path} = {value}"), self.comment(path)),
                None => (format!("# {path}"), "(not set)".to_owned()),
            };
            rows.push((section, row.0, row.1));
        }
        let width = rows
            .iter()
            .map(|(_, line, _)| line.chars().count())
            .filter(|len| *len <= MAX_ALIGN)
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        let mut last_section = None;
        for (section, line, comment) in rows {
            if last_section.is_some() && last_section != Some(section) {
                out.push('\n');
            }
            last_section = Some(section);
            out.push_str(&format!("{line:<width$}   {comment}\n"));
        }
        out
    }

    fn comment(&self, path: &str) -> String {
        format!(
            "# from {}",
            self.sources.get(path).unwrap_or(&Source::Default)
        )
    }
}
