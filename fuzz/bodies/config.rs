//! Fuzz body `config`: the configuration loader, `coupa_bridge::config::Config::load_str`, with
//! `COUPA_BRIDGE__*` overrides. Shared as is by `fuzz/fuzz_targets/config.rs` and
//! `crates/bridge/tests/fuzz_bridge.rs` (through `#[path]`).

use std::path::Path;

use coupa_bridge::config::Config;

/// The keys whose values are secrets (`Kind::Secret` in `config/schema.rs`).
pub const SECRET_KEYS: &[&str] = &[
    "coupa.client_secret",
    "coupa.api_key",
    "payments.sftp.password",
    "notify.email.password",
    "notify.webhook.secret",
    "server.token",
];

/// Secret values that start with this are looked for in everything the loader says.
pub const MARKER: &str = "sEcReT-";

const PREFIX: &str = "COUPA_BRIDGE__";

/// Where the text is said to come from. Nothing is read from it.
pub fn path() -> &'static Path {
    Path::new("/nonexistent/coupa-bridge-fuzz/coupa-bridge.toml")
}

/// Fuzzer bytes as a config file and variables: the TOML text up to the first NUL, then one
/// `NAME=VALUE` variable per NUL-separated piece (`COUPA_BRIDGE__` is put in front of a name
/// that lacks it, so most pieces are overrides).
pub fn split(data: &[u8]) -> (String, Vec<(String, String)>) {
    let data = String::from_utf8_lossy(data);
    let mut pieces = data.split('\0');
    let text = pieces.next().unwrap_or_default().to_owned();
    let env = pieces
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            let name = if name
                .get(..PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(PREFIX))
            {
                name.to_owned()
            } else {
                format!("{PREFIX}{name}")
            };
            (name, value.to_owned())
        })
        .collect();
    (text, env)
}

/// The secret values planted in `env`: a variable for a secret key (of the top level or of a
/// tenant) whose value starts with [`MARKER`] and appears nowhere else in the input.
pub fn planted_in_env(text: &str, env: &[(String, String)]) -> Vec<String> {
    env.iter()
        .enumerate()
        .filter_map(|(i, (name, value))| {
            let key = name
                .get(PREFIX.len()..)?
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
                .join(".");
            let value = value.trim();
            let secret = SECRET_KEYS
                .iter()
                .any(|k| key == *k || key.ends_with(&format!(".{k}")));
            let alone = !text.contains(value)
                && env
                    .iter()
                    .enumerate()
                    .all(|(j, (n, v))| !n.contains(value) && (i == j || !v.contains(value)));
            (secret && value.starts_with(MARKER) && value.len() >= MARKER.len() + 4 && alone)
                .then(|| value.to_owned())
        })
        .collect()
}

/// Loads `text` with `env`: the loader answers a configuration or an error, never a panic; a
/// loaded configuration renders; and none of `secrets` appears in the error (shown or
/// debugged), the rendering, the warnings or the configuration's `Debug`.
pub fn check(text: &str, env: &[(String, String)], secrets: &[String]) {
    let outputs = match Config::load_str(text, path(), env.to_vec()) {
        Ok(loaded) => vec![
            loaded.render(),
            loaded.warnings.join("\n"),
            format!("{:?}", loaded.config),
        ],
        Err(e) => vec![e.to_string(), format!("{e:?}")],
    };
    for secret in secrets {
        for out in &outputs {
            assert!(
                !out.contains(secret.as_str()),
                "secret {secret:?} shown:\n{out}"
            );
        }
    }
}

/// Any bytes: [`split`], then [`check`] with the secrets planted in the variables.
pub fn run(data: &[u8]) {
    let (text, env) = split(data);
    let secrets = planted_in_env(&text, &env);
    check(&text, &env, &secrets);
}
