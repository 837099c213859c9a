//! Tests of `[tenants.<name>]`: merging, environment layers, problems with their tenant's key
//! path and line, the rules across tenants. No test touches the process environment.

use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;

use super::*;

const FILE: &str = "coupa-bridge.toml";

/// Two valid tenants sharing the top level's client id and rate.
const TWO: &str = r#"
[coupa]
client_id = "coupa-bridge"
requests_per_second = 5

[payments.sftp]
port = 2222
incoming_dir = "/Shared/In"

[tenants.acme.coupa]
base_url = "https://acme.coupahost.com"
burst = 4
[tenants.acme.state]
url = "sqlite://acme-state.db"
[tenants.acme.erp]
url = "sqlite://acme-erp.db"
[tenants.acme.server]
listen = "127.0.0.1:8081"
[tenants.acme.payments.sftp]
host = "sftp.acme.example"

[tenants.globex.coupa]
base_url = "https://globex.coupahost.com"
[tenants.globex.state]
url = "sqlite://globex-state.db"
[tenants.globex.erp]
url = "sqlite://globex-erp.db"
[tenants.globex.server]
listen = "127.0.0.1:8082"
"#;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn secret_env() -> Vec<(String, String)> {
    env(&[("COUPA_BRIDGE__COUPA__CLIENT_SECRET", "s3cret")])
}

fn tenants(text: &str, vars: Vec<(String, String)>) -> Vec<Tenant> {
    match Config::load_tenants_str(text, Path::new(FILE), vars) {
        Ok(tenants) => tenants,
        Err(e) => panic!("expected valid tenants, got: {e}"),
    }
}

fn tenant<'a>(all: &'a [Tenant], name: &str) -> &'a LoadedConfig {
    &all.iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tenant {name}"))
        .loaded
}

fn problems(text: &str, vars: Vec<(String, String)>) -> Vec<Problem> {
    match Config::load_tenants_str(text, Path::new(FILE), vars) {
        Ok(_) => panic!("expected an invalid config"),
        Err(ConfigError::Invalid { problems, .. }) => problems,
        Err(e) => panic!("expected ConfigError::Invalid, got: {e}"),
    }
}

fn lines(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

/// 1-based line of the first line of `text` that is `needle` (trimmed).
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.trim() == needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the text"))
        + 1
}

fn file_at(line: usize) -> Option<Origin> {
    Some(Origin::File {
        path: PathBuf::from(FILE),
        line,
    })
}

#[test]
fn each_tenant_is_the_top_level_overridden_key_by_key() {
    let all = tenants(TWO, secret_env());
    let names: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["acme", "globex"], "in the file's order");

    let acme = tenant(&all, "acme");
    let globex = tenant(&all, "globex");
    assert_eq!(acme.config.coupa.base_url, "https://acme.coupahost.com");
    assert_eq!(globex.config.coupa.base_url, "https://globex.coupahost.com");
    // acme overrides burst; both keep the top level's client id and rate.
    assert_eq!(acme.config.coupa.burst, 4);
    assert_eq!(globex.config.coupa.burst, 10);
    for loaded in [acme, globex] {
        assert_eq!(
            loaded.config.coupa.client_id.as_deref(),
            Some("coupa-bridge")
        );
        assert_eq!(loaded.config.coupa.requests_per_second, 5.0);
        assert_eq!(
            loaded
                .config
                .coupa
                .client_secret
                .as_ref()
                .map(|s| s.expose_secret()),
            Some("s3cret")
        );
    }
    assert_eq!(acme.config.state.url, "sqlite://acme-state.db");
    assert_eq!(globex.config.erp.url, "sqlite://globex-erp.db");

    // Provenance: the tenant's line and key path, the top level's file, the default.
    assert_eq!(
        acme.sources["coupa.base_url"],
        Source::TenantFile {
            path: PathBuf::from(FILE),
            line: line_of(TWO, "base_url = \"https://acme.coupahost.com\""),
            key: "tenants.acme.coupa.base_url".into(),
        }
    );
    assert_eq!(
        acme.sources["coupa.requests_per_second"],
        Source::File(PathBuf::from(FILE))
    );
    assert_eq!(globex.sources["coupa.burst"], Source::Default);
    let shown = acme.render();
    let base_line = shown
        .lines()
        .find(|l| l.starts_with("coupa.base_url ="))
        .expect("a base_url line");
    assert!(
        base_line.ends_with(&format!(
            "# from file coupa-bridge.toml:{} (tenants.acme.coupa.base_url)",
            line_of(TWO, "base_url = \"https://acme.coupahost.com\"")
        )),
        "{base_line}"
    );
}

#[test]
fn a_nested_section_merges_key_by_key_too() {
    let all = tenants(TWO, secret_env());
    let acme = &tenant(&all, "acme").config.payments.sftp;
    let globex = &tenant(&all, "globex").config.payments.sftp;
    assert_eq!(acme.host.as_deref(), Some("sftp.acme.example"));
    assert_eq!(acme.port, 2222, "the top level's port is kept");
    assert_eq!(acme.incoming_dir, "/Shared/In");
    assert_eq!(globex.host, None);
    assert_eq!(globex.port, 2222);
    assert_eq!(
        tenant(&all, "acme").sources["payments.sftp.host"],
        Source::TenantFile {
            path: PathBuf::from(FILE),
            line: line_of(TWO, "host = \"sftp.acme.example\""),
            key: "tenants.acme.payments.sftp.host".into(),
        }
    );

    // An inline table in a tenant is read the same way.
    let inline = TWO.replace(
        "[tenants.acme.payments.sftp]\nhost = \"sftp.acme.example\"",
        "[tenants.acme.payments]\nsftp = { host = \"inline.example\", port = 2200 }",
    );
    let all = tenants(&inline, secret_env());
    let sftp = &tenant(&all, "acme").config.payments.sftp;
    assert_eq!(sftp.host.as_deref(), Some("inline.example"));
    assert_eq!(sftp.port, 2200);
    assert_eq!(sftp.incoming_dir, "/Shared/In");
}

#[test]
fn a_tenants_variable_beats_a_variable_for_all_which_beats_the_file() {
    let text = TWO.replace("burst = 4", "burst = 4\nrequests_per_second = 3");
    // The file alone: acme's own 3, globex the top level's 5.
    let all = tenants(&text, secret_env());
    assert_eq!(tenant(&all, "acme").config.coupa.requests_per_second, 3.0);
    assert_eq!(tenant(&all, "globex").config.coupa.requests_per_second, 5.0);

    // A variable for all beats both levels of the file.
    let mut vars = secret_env();
    vars.extend(env(&[("COUPA_BRIDGE__COUPA__REQUESTS_PER_SECOND", "7")]));
    let all = tenants(&text, vars.clone());
    for name in ["acme", "globex"] {
        let loaded = tenant(&all, name);
        assert_eq!(loaded.config.coupa.requests_per_second, 7.0, "{name}");
        assert_eq!(
            loaded.sources["coupa.requests_per_second"],
            Source::Env("COUPA_BRIDGE__COUPA__REQUESTS_PER_SECOND".into())
        );
    }

    // The tenant's own variable beats it, for that tenant only.
    vars.extend(env(&[
        (
            "COUPA_BRIDGE__TENANTS__ACME__COUPA__REQUESTS_PER_SECOND",
            "9",
        ),
        (
            "COUPA_BRIDGE__TENANTS__GLOBEX__COUPA__CLIENT_SECRET",
            "globex-only",
        ),
    ]));
    let all = tenants(&text, vars);
    let acme = tenant(&all, "acme");
    let globex = tenant(&all, "globex");
    assert_eq!(acme.config.coupa.requests_per_second, 9.0);
    assert_eq!(
        acme.sources["coupa.requests_per_second"],
        Source::Env("COUPA_BRIDGE__TENANTS__ACME__COUPA__REQUESTS_PER_SECOND".into())
    );
    assert_eq!(globex.config.coupa.requests_per_second, 7.0);
    let secret = |l: &LoadedConfig| {
        l.config
            .coupa
            .client_secret
            .as_ref()
            .map(|s| s.expose_secret().to_owned())
    };
    assert_eq!(secret(acme).as_deref(), Some("s3cret"));
    assert_eq!(secret(globex).as_deref(), Some("globex-only"));
}

#[test]
fn secrets_can_come_from_each_tenants_variable_alone() {
    let all = tenants(
        TWO,
        env(&[
            (
                "COUPA_BRIDGE__TENANTS__ACME__COUPA__CLIENT_SECRET",
                "acme-s",
            ),
            (
                "coupa_bridge__tenants__globex__coupa__client_secret",
                "globex-s",
            ),
        ]),
    );
    assert_eq!(all.len(), 2);
    // Without globex's secret, globex is invalid and says so with its own key path.
    let found = lines(&problems(
        TWO,
        env(&[(
            "COUPA_BRIDGE__TENANTS__ACME__COUPA__CLIENT_SECRET",
            "acme-s",
        )]),
    ));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("tenants.globex.coupa.client_secret: required with coupa.client_id"),
        "{}",
        found[0]
    );
}

#[test]
fn an_unknown_key_inside_a_tenant_is_named_with_its_line() {
    let text = TWO.replace("burst = 4", "burts = 4");
    let found = problems(&text, secret_env());
    assert_eq!(found.len(), 1, "{:#?}", lines(&found));
    assert_eq!(found[0].origin, file_at(line_of(&text, "burts = 4")));
    let shown = found[0].to_string();
    assert!(
        shown.contains("unknown field `burts` in [tenants.acme.coupa], expected one of `base_url`"),
        "{shown}"
    );
    assert!(shown.ends_with("(did you mean `burst`?)"), "{shown}");

    // An unknown section, and a value of the wrong type, inside a tenant.
    let text = format!("{TWO}\n[tenants.globex.invoice]\nstatuses = []\n");
    let found = lines(&problems(&text, secret_env()));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with(&format!(
            "coupa-bridge.toml:{}: unknown field `invoice` in [tenants.globex], expected one of `coupa`",
            line_of(&text, "[tenants.globex.invoice]")
        )),
        "{}",
        found[0]
    );
    let text = TWO.replace("burst = 4", "burst = \"four\"");
    let found = lines(&problems(&text, secret_env()));
    assert_eq!(
        found,
        [format!(
            "coupa-bridge.toml:{}: tenants.acme.coupa.burst: expected an integer from 1 to 4294967295, found \"four\"",
            line_of(&text, "burst = \"four\"")
        )]
    );
}

#[test]
fn a_bad_tenant_name_is_an_error_with_its_line() {
    for (name, why) in [
        ("Acme", "a tenant name is 1 to 32 of a-z, 0-9 and _"),
        ("acme-eu", "a tenant name is 1 to 32 of a-z, 0-9 and _"),
        (
            "a_very_long_tenant_name_of_33_chr",
            "a tenant name is 1 to 32",
        ),
        ("acme__eu", "may not contain `__`"),
        ("acme_", "may not contain `__` or end with `_`"),
        (
            "default",
            "names the one tenant of a file without [tenants]",
        ),
    ] {
        let text = TWO.replace("tenants.globex.", &format!("tenants.{name}."));
        let found = problems(&text, secret_env());
        // One problem, at the first line naming the tenant.
        assert_eq!(found.len(), 1, "{name}: {:#?}", lines(&found));
        assert_eq!(
            found[0].origin,
            file_at(line_of(&text, &format!("[tenants.{name}.coupa]"))),
            "{name}"
        );
        assert_eq!(found[0].key.as_deref(), Some(&*format!("tenants.{name}")));
        assert!(found[0].message.contains(why), "{name}: {}", found[0]);
    }
    // 32 characters is fine.
    let name = "a_long_tenant_name_of_32_chars_x";
    assert_eq!(name.len(), 32);
    let text = TWO.replace("tenants.globex.", &format!("tenants.{name}."));
    assert_eq!(tenants(&text, secret_env())[1].name, name);
}

#[test]
fn tenants_that_are_not_tables_or_none_at_all_are_errors() {
    let found = lines(&problems(
        "[coupa]\nclient_id = \"x\"\n\n[tenants]\n",
        secret_env(),
    ));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("coupa-bridge.toml:4: tenants: configures no tenant"),
        "{}",
        found[0]
    );
    let found = lines(&problems("tenants = 3\n", secret_env()));
    assert!(
        found[0].starts_with("coupa-bridge.toml:1: tenants: expected tables [tenants.<name>]"),
        "{found:#?}"
    );
    let found = lines(&problems(
        &format!("{TWO}\n[tenants]\ninitech = 1\n"),
        secret_env(),
    ));
    assert!(
        found[0].ends_with(
            "tenants.initech: expected a table ([tenants.initech]) with the tenant's sections"
        ),
        "{found:#?}"
    );
}

#[test]
fn a_variable_for_an_unknown_tenant_or_key_is_an_error() {
    let found = problems(
        TWO,
        env(&[
            ("COUPA_BRIDGE__COUPA__CLIENT_SECRET", "s3cret"),
            ("COUPA_BRIDGE__TENANTS__NOSUCH__COUPA__BURST", "3"),
            ("COUPA_BRIDGE__TENANTS__ACME__COUPA__BURTS", "3"),
            ("COUPA_BRIDGE__TENANTS__ACME__COUPA__BURST", "lots"),
            ("COUPA_BRIDGE__TENANTS__ACME", "x"),
        ]),
    );
    let text = lines(&found);
    assert_eq!(text.len(), 4, "{text:#?}");
    assert_eq!(
        found[0].origin,
        Some(Origin::Env("COUPA_BRIDGE__TENANTS__ACME".into()))
    );
    assert!(
        text[0].ends_with("names the tenant [tenants.acme], not a key: add `__<SECTION>__<KEY>`"),
        "{}",
        text[0]
    );
    assert_eq!(
        text[1],
        "COUPA_BRIDGE__TENANTS__ACME__COUPA__BURST: tenants.acme.coupa.burst: expected an integer from 1 to 4294967295, found \"lots\""
    );
    assert!(
        text[2].starts_with(
            "COUPA_BRIDGE__TENANTS__ACME__COUPA__BURTS: unknown key `tenants.acme.coupa.burts`, expected one of"
        ),
        "{}",
        text[2]
    );
    assert_eq!(
        text[3],
        "COUPA_BRIDGE__TENANTS__NOSUCH__COUPA__BURST: unknown tenant `nosuch`: coupa-bridge.toml configures tenants acme, globex"
    );

    // On a file without tenants, a tenant's variable is an error too.
    let single = "[coupa]\nbase_url = \"https://acme.coupahost.com\"\nclient_id = \"x\"\n";
    let found = lines(&problems(
        single,
        env(&[
            ("COUPA_BRIDGE__COUPA__CLIENT_SECRET", "s3cret"),
            ("COUPA_BRIDGE__TENANTS__ACME__COUPA__BURST", "3"),
        ]),
    ));
    assert_eq!(
        found,
        [
            "COUPA_BRIDGE__TENANTS__ACME__COUPA__BURST: names a tenant, but coupa-bridge.toml has no [tenants.<name>] tables"
        ]
    );
}

#[test]
fn two_tenants_on_one_coupa_instance_are_an_error_naming_both() {
    let text = TWO.replace(
        "https://globex.coupahost.com",
        "https://ACME.coupahost.com/",
    );
    let found = problems(&text, secret_env());
    assert_eq!(found.len(), 1, "{:#?}", lines(&found));
    assert_eq!(
        found[0].key.as_deref(),
        Some("tenants.globex.coupa.base_url")
    );
    assert_eq!(
        found[0].origin,
        file_at(line_of(&text, "base_url = \"https://ACME.coupahost.com/\""))
    );
    assert!(
        found[0]
            .message
            .starts_with("tenants acme and globex use the same Coupa instance"),
        "{}",
        found[0]
    );
}

#[test]
fn two_tenants_on_one_state_store_or_erp_database_are_errors() {
    // The same SQLite file written two ways.
    let text = TWO.replace("sqlite://globex-state.db", "sqlite:acme-state.db?mode=rwc");
    let found = problems(&text, secret_env());
    assert_eq!(lines(&found).len(), 1, "{:#?}", lines(&found));
    assert_eq!(found[0].key.as_deref(), Some("tenants.globex.state.url"));
    assert!(
        found[0]
            .message
            .starts_with("tenants acme and globex use the same state store"),
        "{}",
        found[0]
    );

    // The same PostgreSQL database as two users: no password in the message.
    let text = TWO
        .replace(
            "sqlite://acme-erp.db",
            "postgres://acme:pw-acme-1@DB.example:5432/erp",
        )
        .replace(
            "sqlite://globex-erp.db",
            "postgres://globex:pw-globex-2@db.example:5432/erp?sslmode=require",
        );
    let found = problems(&text, secret_env());
    assert_eq!(found.len(), 1, "{:#?}", lines(&found));
    assert_eq!(found[0].key.as_deref(), Some("tenants.globex.erp.url"));
    assert!(
        found[0]
            .message
            .starts_with("tenants acme and globex use the same ERP database"),
        "{}",
        found[0]
    );
    let all = ConfigError::Invalid {
        path: FILE.into(),
        problems: found,
    }
    .to_string();
    assert!(
        !all.contains("pw-acme-1") && !all.contains("pw-globex-2"),
        "{all}"
    );

    // Different databases on one server are fine.
    let text = text.replace("5432/erp?sslmode", "5432/erp_globex?sslmode");
    assert_eq!(tenants(&text, secret_env()).len(), 2);

    // Left to their defaults, both tenants would share one store and one ERP.
    let text = TWO
        .replace(
            "[tenants.globex.state]\nurl = \"sqlite://globex-state.db\"\n",
            "",
        )
        .replace(
            "[tenants.acme.state]\nurl = \"sqlite://acme-state.db\"\n",
            "",
        )
        .replace(
            "[tenants.globex.erp]\nurl = \"sqlite://globex-erp.db\"\n",
            "",
        )
        .replace("[tenants.acme.erp]\nurl = \"sqlite://acme-erp.db\"\n", "");
    let found = problems(&text, secret_env());
    let keys: Vec<Option<&str>> = found.iter().map(|p| p.key.as_deref()).collect();
    assert_eq!(
        keys,
        [
            Some("tenants.globex.state.url"),
            Some("tenants.globex.erp.url")
        ]
    );
    assert_eq!(found[0].origin, None, "a default has no line");
}

#[test]
fn two_tenants_on_one_listen_address_are_an_error_unless_the_port_is_0() {
    let text = TWO.replace("127.0.0.1:8082", "127.0.0.1:8081");
    let found = problems(&text, secret_env());
    assert_eq!(found.len(), 1, "{:#?}", lines(&found));
    assert_eq!(
        found[0].key.as_deref(),
        Some("tenants.globex.server.listen")
    );
    assert!(
        found[0]
            .message
            .starts_with("tenants acme and globex both listen on 127.0.0.1:8081"),
        "{}",
        found[0]
    );

    // The unspecified address overlaps every address on the port.
    let text = TWO.replace("127.0.0.1:8082", "0.0.0.0:8081").replace(
        "[tenants.globex.server]",
        "[tenants.globex.server]\ntoken = \"t\"",
    );
    let found = problems(&text, secret_env());
    assert_eq!(found.len(), 1, "{:#?}", lines(&found));
    assert_eq!(
        found[0].key.as_deref(),
        Some("tenants.globex.server.listen")
    );

    // Port 0: each tenant gets its own port from the system.
    let text = TWO
        .replace("127.0.0.1:8081", "127.0.0.1:0")
        .replace("127.0.0.1:8082", "127.0.0.1:0");
    assert_eq!(tenants(&text, secret_env()).len(), 2);
}

#[test]
fn a_tenant_missing_a_required_value_names_the_tenants_key() {
    let text = TWO.replace("base_url = \"https://globex.coupahost.com\"\n", "");
    let found = lines(&problems(&text, secret_env()));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("tenants.globex.coupa.base_url: required"),
        "{}",
        found[0]
    );
}

#[test]
fn a_bad_top_level_value_is_reported_once_naming_the_tenants_it_breaks() {
    // A bad schedule breaks every tenant: one problem, at its line, no tenant named.
    let text = format!("{TWO}\n[schedule]\ninvoices = \"every hour\"\n");
    let found = lines(&problems(&text, secret_env()));
    assert_eq!(found.len(), 1, "{found:#?}");
    let at = line_of(&text, "invoices = \"every hour\"");
    assert!(
        found[0].starts_with(&format!("coupa-bridge.toml:{at}: schedule.invoices: ")),
        "{}",
        found[0]
    );
    assert!(!found[0].contains("tenant"), "{}", found[0]);

    // A top-level API key next to globex's OAuth client: globex is named (acme, on the API
    // key alone, is valid).
    let text = TWO
        .replace(
            "[coupa]\nclient_id = \"coupa-bridge\"",
            "[coupa]\napi_key = \"k-top\"",
        )
        .replace(
            "[tenants.globex.coupa]\n",
            "[tenants.globex.coupa]\nclient_id = \"globex-client\"\n",
        );
    let found = lines(&problems(
        &text,
        env(&[("COUPA_BRIDGE__TENANTS__GLOBEX__COUPA__CLIENT_SECRET", "g")]),
    ));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with(&format!(
            "coupa-bridge.toml:{}: coupa.api_key: set either coupa.api_key or",
            line_of(&text, "api_key = \"k-top\"")
        )),
        "{}",
        found[0]
    );
    assert!(found[0].ends_with("(tenant globex)"), "{}", found[0]);
    assert!(!found[0].contains("k-top"), "{}", found[0]);
}

#[test]
fn load_tenant_without_a_name_on_a_file_with_tenants_names_them() {
    let err = Config::load_tenant_str(TWO, Path::new(FILE), secret_env(), None)
        .expect_err("tenants need a choice");
    assert!(matches!(err, ConfigError::Tenant { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "coupa-bridge.toml: this file configures tenants acme, globex: choose one with --tenant"
    );
    // Config::load is load_tenant(None).
    let err = Config::load_str(TWO, Path::new(FILE), secret_env()).expect_err("same");
    assert!(
        err.to_string().contains("choose one with --tenant"),
        "{err}"
    );

    let err = Config::load_tenant_str(TWO, Path::new(FILE), secret_env(), Some("nosuch"))
        .expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "coupa-bridge.toml: no tenant `nosuch`: this file configures tenants acme, globex"
    );

    // One tenant is validated alone: globex's missing secret does not stop acme.
    let vars = env(&[(
        "COUPA_BRIDGE__TENANTS__ACME__COUPA__CLIENT_SECRET",
        "acme-s",
    )]);
    let acme = Config::load_tenant_str(TWO, Path::new(FILE), vars.clone(), Some("acme"))
        .unwrap_or_else(|e| panic!("acme is valid: {e}"));
    assert_eq!(acme.config.coupa.base_url, "https://acme.coupahost.com");
    let err = Config::load_tenant_str(TWO, Path::new(FILE), vars, Some("globex"))
        .expect_err("globex has no secret");
    assert!(
        err.to_string()
            .contains("tenants.globex.coupa.client_secret: required"),
        "{err}"
    );
    // The rules across tenants hold whichever tenant is chosen.
    let text = TWO.replace("sqlite://globex-erp.db", "sqlite://acme-erp.db");
    let err = Config::load_tenant_str(&text, Path::new(FILE), secret_env(), Some("acme"))
        .expect_err("shared ERP");
    assert!(err.to_string().contains("tenants.globex.erp.url"), "{err}");
}

#[test]
fn a_file_without_tenants_is_one_tenant_named_default() {
    let text = "[coupa]\nbase_url = \"https://acme.coupahost.com\"\nclient_id = \"x\"\n";
    let all = tenants(text, secret_env());
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].name, DEFAULT_TENANT);
    let single = Config::load_str(text, Path::new(FILE), secret_env()).expect("valid");
    assert_eq!(all[0].loaded.sources, single.sources);
    assert_eq!(all[0].loaded.render(), single.render());
    let chosen = Config::load_tenant_str(text, Path::new(FILE), secret_env(), Some(DEFAULT_TENANT))
        .expect("the default tenant");
    assert_eq!(chosen.render(), single.render());
    let err = Config::load_tenant_str(text, Path::new(FILE), secret_env(), Some("acme"))
        .expect_err("no tenants here");
    assert!(
        err.to_string()
            .contains("no tenant `acme`: this file configures no tenants"),
        "{err}"
    );
}

#[test]
fn relative_sqlite_paths_of_each_tenant_are_taken_from_the_config_files_folder() {
    let all = match Config::load_tenants_str(
        TWO,
        Path::new("/etc/bridge/coupa-bridge.toml"),
        secret_env(),
    ) {
        Ok(all) => all,
        Err(e) => panic!("valid: {e}"),
    };
    assert_eq!(
        tenant(&all, "acme").config.state.url,
        "sqlite:///etc/bridge/acme-state.db"
    );
    assert_eq!(
        tenant(&all, "globex").config.erp.url,
        "sqlite:///etc/bridge/globex-erp.db"
    );
}

#[test]
fn a_secret_from_a_tenants_variable_is_in_no_error() {
    const SECRET: &str = "tenant-secret-9f2";
    // Problems of every kind around the secret: its tenant invalid, a second variable for the
    // same key, a variable for an unknown tenant, an API key next to OAuth.
    let text = TWO.replace(
        "base_url = \"https://acme.coupahost.com\"",
        "base_url = \"acme\"",
    );
    let vars = env(&[
        ("COUPA_BRIDGE__TENANTS__ACME__COUPA__CLIENT_SECRET", SECRET),
        ("coupa_bridge__tenants__acme__coupa__client_secret", SECRET),
        (
            "COUPA_BRIDGE__TENANTS__INITECH__COUPA__CLIENT_SECRET",
            SECRET,
        ),
        ("COUPA_BRIDGE__TENANTS__GLOBEX__COUPA__API_KEY", SECRET),
        ("COUPA_BRIDGE__TENANTS__GLOBEX__COUPA__CLIENT_SECRET", ""),
        (
            "COUPA_BRIDGE__TENANTS__GLOBEX__COUPA__BASIC_AUTH",
            "yes please",
        ),
    ]);
    let err = Config::load_tenants_str(&text, Path::new(FILE), vars.clone()).expect_err("invalid");
    let shown = format!("{err}\n{err:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    let ConfigError::Invalid { problems, .. } = &err else {
        panic!("expected Invalid: {err}")
    };
    // Each of the mistakes is there.
    let text_lines = lines(problems);
    for expected in [
        "sets the same key as",
        "unknown tenant `initech`",
        "tenants.globex.coupa.basic_auth: expected true or false, found",
        "tenants.acme.coupa.base_url: ",
        "tenants.globex.coupa.api_key: set either coupa.api_key or",
        "tenants.globex.coupa.client_secret: must not be empty",
    ] {
        assert!(
            text_lines.iter().any(|l| l.contains(expected)),
            "{expected:?} missing from {text_lines:#?}"
        );
    }
    for tenant in [Some("acme"), Some("globex"), None, Some("initech")] {
        let err = Config::load_tenant_str(&text, Path::new(FILE), vars.clone(), tenant)
            .expect_err("invalid");
        let shown = format!("{err}\n{err:?}");
        assert!(!shown.contains(SECRET), "{tenant:?}: {shown}");
    }
}
