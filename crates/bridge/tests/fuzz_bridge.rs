//! Fuzz smoke tests for the connector's own parsers and writers: the cargo-fuzz targets' bodies
//! (`fuzz/bodies/config.rs`, `fuzz/bodies/payment_csv.rs`) run on the committed corpora, on
//! generated configurations (the example with known keys set to values of every type, secrets
//! planted in the file and in `COUPA_BRIDGE__*` variables) and on generated payment rows.
//! FUZZING.md has more.

#[path = "../../../fuzz/bodies/config.rs"]
mod config_body;
#[path = "../../../fuzz/bodies/payment_csv.rs"]
mod payment_csv_body;
#[path = "../../../fuzz/smoke.rs"]
mod smoke;

use chrono::NaiveDate;
use coupa_bridge::erp::ErpPayment;
use coupa_bridge::flows::payment_push::csv_file::{MAX_ROWS, Row};
use proptest::prelude::*;
use proptest::sample::select;
use rust_decimal::Decimal;

#[test]
fn config_corpus_replays() {
    assert!(smoke::replay("config", config_body::run) >= 5);
}

#[test]
fn payment_csv_corpus_replays() {
    assert!(smoke::replay("payment_csv", payment_csv_body::run) >= 3);
}

// ---------------------------------------------------------------------------------------------
// Configuration

fn example() -> toml::Table {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../coupa-bridge.example.toml"
    );
    let text = std::fs::read_to_string(path).expect("the example config");
    text.parse().expect("the example parses")
}

/// A key of the schema, a tenant's key, or one that does not exist.
fn key_path() -> impl Strategy<Value = String> {
    let known: Vec<String> = coupa_bridge::config::key_paths()
        .map(str::to_owned)
        .collect();
    prop_oneof![
        8 => select(known.clone()),
        1 => select(known).prop_map(|k| format!("tenants.acme.{k}")),
        1 => select(vec!["coupa.nope", "nope.key", "payments.sftp", "coupa", "tenants", "tenants.acme"])
            .prop_map(str::to_owned),
    ]
}

fn toml_value() -> impl Strategy<Value = toml::Value> {
    use toml::Value as V;
    let string = select(vec![
        "",
        "x",
        "json",
        "xml",
        "csv",
        "api",
        "sql",
        "runs",
        "starttls",
        "0 * * * *",
        "bogus cron",
        "http://127.0.0.1:8080",
        "https://user:pw@example.com/",
        "sqlite://x.db",
        "postgres://db/x",
        "127.0.0.1:0",
        "ssh-ed25519 AAAA",
        "/Incoming",
        "../relative",
        "ümlaut 💶",
    ])
    .prop_map(|s| V::String(s.to_owned()));
    let integer = select(vec![
        0i64,
        1,
        -1,
        2,
        60,
        65_535,
        65_536,
        86_401,
        i64::MAX,
        i64::MIN,
    ])
    .prop_map(V::Integer);
    let float =
        select(vec![0.0, -1.5, 0.5, 20.0, 1e308, f64::INFINITY, f64::NAN]).prop_map(V::Float);
    let list =
        proptest::collection::vec(select(vec!["a", "approved", "", "core.invoice.read"]), 0..3)
            .prop_map(|items| {
                V::Array(items.into_iter().map(|s| V::String(s.to_owned())).collect())
            });
    prop_oneof![
        4 => string,
        2 => integer,
        1 => float,
        1 => any::<bool>().prop_map(V::Boolean),
        1 => list,
        1 => Just(V::Array(vec![V::Integer(1)])),
        1 => Just(V::Table(toml::Table::new())),
    ]
}

/// Sets `path` (dotted) in `table`, making tables on the way (replacing what is not one).
fn set(table: &mut toml::Table, path: &str, value: toml::Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut node = table;
    for part in parts {
        let entry = node
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(next) = entry else {
            return;
        };
        node = next;
    }
    node.insert(last.to_owned(), value);
}

fn remove(table: &mut toml::Table, path: &str) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut node = table;
    for part in parts {
        let Some(toml::Value::Table(next)) = node.get_mut(part) else {
            return;
        };
        node = next;
    }
    node.remove(last);
}

/// A variable name for `path`, in the case and form an operator might write it.
fn var_name(path: &str, lower: bool) -> String {
    let name = format!(
        "COUPA_BRIDGE__{}",
        path.replace('.', "__").to_ascii_uppercase()
    );
    if lower {
        name.to_ascii_lowercase()
    } else {
        name
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Set(String, toml::Value),
    Remove(String),
    Env(String, bool, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (key_path(), toml_value()).prop_map(|(k, v)| Edit::Set(k, v)),
        1 => key_path().prop_map(Edit::Remove),
        2 => (key_path(), any::<bool>(), prop_oneof![
            select(vec!["", " 7 ", "true", "0", "1.5", "-3", "x,y", "[\"a\", 1]", "[\"a\"]", "[", "json\n"])
                .prop_map(str::to_owned),
            "[ -~]{0,16}",
        ])
            .prop_map(|(k, lower, v)| Edit::Env(k, lower, v)),
    ]
}

/// Where each secret key's planted value goes: 0 nowhere, 1 the file, 2 a variable. The
/// credentials are the API key or the client secret, never both (that alone is refused).
fn secret_places() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(0..3u8, config_body::SECRET_KEYS.len()),
        proptest::bool::weighted(0.2),
        1..3u8,
    )
        .prop_map(|(mut places, api_key, credential)| {
            for (place, key) in places.iter_mut().zip(config_body::SECRET_KEYS) {
                match *key {
                    "coupa.api_key" => *place = if api_key { credential } else { 0 },
                    "coupa.client_secret" => *place = if api_key { 0 } else { credential },
                    _ => {}
                }
            }
            places
        })
}

fn config_input() -> impl Strategy<Value = (String, Vec<(String, String)>, Vec<String>)> {
    (
        proptest::bool::weighted(0.85),
        proptest::collection::vec(edit(), 0..4),
        secret_places(),
        "[a-z0-9]{6}",
    )
        .prop_map(|(from_example, edits, places, salt)| {
            let mut table = if from_example {
                example()
            } else {
                toml::Table::new()
            };
            let mut env = Vec::new();
            for e in edits {
                match e {
                    Edit::Set(k, v) => set(&mut table, &k, v),
                    Edit::Remove(k) => remove(&mut table, &k),
                    Edit::Env(k, lower, v) => env.push((var_name(&k, lower), v)),
                }
            }
            let mut secrets = Vec::new();
            for (i, (key, place)) in config_body::SECRET_KEYS.iter().zip(places).enumerate() {
                let secret = format!("{}{salt}{i}", config_body::MARKER);
                match place {
                    1 => set(&mut table, key, toml::Value::String(secret.clone())),
                    2 => env.push((var_name(key, i % 2 == 0), secret.clone())),
                    _ => continue,
                }
                if *key == "coupa.api_key" {
                    remove(&mut table, "coupa.client_id");
                }
                secrets.push(secret);
            }
            let text = toml::to_string(&table).unwrap_or_default();
            (text, env, secrets)
        })
}

proptest! {
    #![proptest_config(smoke::proptest_config(400))]

    #[test]
    fn generated_configs_load_or_fail_without_showing_secrets(
        (text, env, secrets) in config_input()
    ) {
        config_body::check(&text, &env, &secrets);
    }
}

/// The generated configurations reach both the loaded and the refused path (a loaded one is
/// where rendering and `Debug` are checked for secrets).
#[test]
fn generated_configs_both_load_and_fail() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let n = 200;
    let loaded = (0..n)
        .filter(|_| {
            let (text, env, _) = config_input()
                .new_tree(&mut runner)
                .expect("a generated config")
                .current();
            coupa_bridge::config::Config::load_str(&text, config_body::path(), env).is_ok()
        })
        .count();
    eprintln!("{loaded} of {n} generated configurations load");
    assert!(
        loaded * 10 >= n && loaded * 10 <= n * 9,
        "{loaded} of {n} load"
    );
}

#[test]
fn the_example_with_planted_secrets_loads_and_hides_them() {
    let mut table = example();
    let mut secrets = Vec::new();
    // Every secret but the API key, which excludes the client secret.
    for (i, key) in config_body::SECRET_KEYS.iter().enumerate() {
        if *key == "coupa.api_key" {
            continue;
        }
        let secret = format!("{}example{i}", config_body::MARKER);
        set(&mut table, key, toml::Value::String(secret.clone()));
        secrets.push(secret);
    }
    let text = toml::to_string(&table).expect("renders");
    let loaded = coupa_bridge::config::Config::load_str(&text, config_body::path(), Vec::new());
    assert!(loaded.is_ok(), "{:?}", loaded.err().map(|e| e.to_string()));
    config_body::check(&text, &[], &secrets);
}

// ---------------------------------------------------------------------------------------------
// Payment CSV

/// Characters that matter to CSV and to trimming, and multi-byte ones.
fn chars(line_breaks: bool) -> impl Strategy<Value = char> {
    let mut pool = vec![
        'a', 'Z', '0', '9', ' ', ',', '"', '\'', ';', '\t', '-', '/', '#', '=', '+', '@', 'é', 'ß',
        'İ', '💶', '\u{a0}', '\u{feff}', '\u{2028}', '\u{0}',
    ];
    if line_breaks {
        pool.extend(['\n', '\r']);
    }
    select(pool)
}

fn text(max: usize, line_breaks: bool) -> impl Strategy<Value = String> {
    proptest::collection::vec(chars(line_breaks), 0..=max).prop_map(String::from_iter)
}

fn non_blank(max: usize) -> impl Strategy<Value = String> {
    text(max, false)
        .prop_map(|s| {
            if s.trim().is_empty() {
                format!("N{s}")
            } else {
                s
            }
        })
        .prop_map(move |s| s.chars().take(max).collect())
}

fn payment_row() -> impl Strategy<Value = Row> {
    (
        non_blank(payment_csv_body::MAX_INVOICE_NUMBER),
        proptest::option::of(non_blank(payment_csv_body::MAX_SUPPLIER_NAME)),
        proptest::option::of(non_blank(40)),
        (1..=i64::MAX, 0..=payment_csv_body::MAX_SCALE),
        (1000..=9999i32, 1..=365u32),
        proptest::option::of(text(payment_csv_body::MAX_NOTE, true)),
        text(40, true),
        any::<bool>(),
        proptest::option::of(text(payment_csv_body::MAX_NOTE, true)),
    )
        .prop_map(
            |(
                invoice_number,
                supplier_name,
                supplier_number,
                (m, scale),
                (y, d),
                check,
                reference,
                add,
                paid_note,
            )| {
                let supplier_number = match (&supplier_name, supplier_number) {
                    (None, None) => Some("S-1".to_owned()),
                    (_, n) => n,
                };
                Row {
                    payment: ErpPayment {
                        id: 1,
                        payment_ref: reference,
                        invoice_number,
                        supplier_name,
                        supplier_number,
                        amount: Decimal::new(m, scale),
                        currency: "EUR".to_owned(),
                        payment_date: NaiveDate::from_yo_opt(y, d).unwrap_or(NaiveDate::MIN),
                        check_number: check,
                        paid_in_full: paid_note.is_some(),
                    },
                    invoice_id: 0,
                    add: add || paid_note.is_none(),
                    paid_note,
                }
            },
        )
}

proptest! {
    #![proptest_config(smoke::proptest_config(300))]

    #[test]
    fn generated_payment_rows_survive_the_file_round_trip(
        rows in proptest::collection::vec(payment_row(), 0..8)
    ) {
        payment_csv_body::check(&rows);
    }
}

#[test]
fn more_rows_than_one_file_takes_come_back_from_two_files() {
    let rows: Vec<Row> = (0..=MAX_ROWS)
        .map(|i| Row {
            payment: ErpPayment {
                id: i as i64 + 1,
                payment_ref: format!("PAY-{i}"),
                invoice_number: format!("INV-{i}"),
                supplier_name: Some("Acme, \"Inc.\"".to_owned()),
                supplier_number: None,
                amount: Decimal::new(i as i64 + 1, 2),
                currency: "USD".to_owned(),
                payment_date: NaiveDate::from_ymd_opt(2025, 1, 15).expect("a date"),
                check_number: None,
                paid_in_full: i % 2 == 0,
            },
            invoice_id: 0,
            add: true,
            paid_note: (i % 2 == 0).then(|| format!("final {i}")),
        })
        .collect();
    assert_eq!(
        coupa_bridge::flows::payment_push::csv_file::files(rows.clone()).len(),
        2
    );
    payment_csv_body::check(&rows);
}
