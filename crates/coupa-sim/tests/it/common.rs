//! Starting a simulator and talking to it as a client would.

use coupa_doc::{Object, Value};
use coupa_sim::config::{ALL_SCOPES, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use coupa_sim::{SimConfig, SimHandle};
use reqwest::StatusCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fmt {
    Json,
    Xml,
}

pub const BOTH: [Fmt; 2] = [Fmt::Json, Fmt::Xml];

impl Fmt {
    pub fn mime(self) -> &'static str {
        match self {
            Fmt::Json => "application/json",
            Fmt::Xml => "application/xml",
        }
    }
}

pub struct TestSim {
    pub sim: SimHandle,
    pub http: reqwest::Client,
    pub token: String,
}

/// A simulator with no generated invoices or payments (tests insert what they need), and a
/// token with every scope.
pub async fn empty_sim() -> TestSim {
    sim_with(SimConfig {
        invoices: 0,
        pay_payments: 0,
        ..SimConfig::default()
    })
    .await
}

pub async fn sim_with(config: SimConfig) -> TestSim {
    let sim = coupa_sim::spawn(config).await.expect("simulator starts");
    let http = reqwest::Client::new();
    let mut t = TestSim {
        sim,
        http,
        token: String::new(),
    };
    t.token = t.token_for(&ALL_SCOPES.join(" ")).await;
    t
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    /// The body as a document tree (JSON or XML, whichever it is).
    pub fn doc(&self) -> Value {
        let trimmed = self.body.trim_start();
        if trimmed.starts_with('<') {
            coupa_doc::xml::parse(self.body.as_bytes())
                .expect("XML body")
                .1
        } else {
            coupa_doc::json::parse(self.body.as_bytes()).expect("JSON body")
        }
    }

    pub fn object(&self) -> Object {
        match self.doc() {
            Value::Object(o) => o,
            other => panic!("expected an object, got {other:?} from {}", self.body),
        }
    }

    pub fn list(&self) -> Vec<Value> {
        match self.doc() {
            Value::Array(a) => a,
            other => panic!("expected a list, got {other:?} from {}", self.body),
        }
    }

    /// The messages of an error envelope in either format.
    pub fn errors(&self) -> Vec<String> {
        if self.body.trim_start().starts_with('<') {
            let (root, v) = coupa_doc::xml::parse(self.body.as_bytes()).expect("XML");
            assert_eq!(root, "errors", "{}", self.body);
            match v {
                Value::Array(a) => a.iter().map(Value::to_plain_string).collect(),
                Value::Text(t) => vec![t],
                other => panic!("odd errors element {other:?}"),
            }
        } else {
            let v: serde_json::Value = serde_json::from_str(&self.body).expect("JSON");
            v["errors"]
                .as_object()
                .expect("errors object")
                .values()
                .flat_map(|l| l.as_array().cloned().unwrap_or_default())
                .filter_map(|m| m.as_str().map(str::to_owned))
                .collect()
        }
    }
}

impl TestSim {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    pub async fn token_for(&self, scopes: &str) -> String {
        let v: serde_json::Value = self
            .http
            .post(self.url("/oauth2/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", DEFAULT_CLIENT_ID),
                ("client_secret", DEFAULT_CLIENT_SECRET),
                ("scope", scopes),
            ])
            .send()
            .await
            .expect("token request")
            .json()
            .await
            .expect("token JSON");
        v["access_token"].as_str().expect("access_token").to_owned()
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        fmt: Fmt,
        body: Option<String>,
    ) -> Answer {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
            .header("accept", fmt.mime());
        if let Some(body) = body {
            req = req.header("content-type", fmt.mime()).body(body);
        }
        let resp = req.send().await.expect("request");
        Answer {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.text().await.expect("body"),
        }
    }

    pub async fn get(&self, path: &str, fmt: Fmt) -> Answer {
        self.call(reqwest::Method::GET, path, fmt, None).await
    }

    pub async fn put(&self, path: &str, fmt: Fmt, body: &str) -> Answer {
        self.call(reqwest::Method::PUT, path, fmt, Some(body.to_owned()))
            .await
    }

    pub async fn post(&self, path: &str, fmt: Fmt, body: &str) -> Answer {
        self.call(reqwest::Method::POST, path, fmt, Some(body.to_owned()))
            .await
    }

    /// Inserts an invoice row directly (what seeding does), returning its id.
    pub fn add_invoice(
        &self,
        number: &str,
        status: &str,
        supplier: &str,
        supplier_number: &str,
    ) -> i64 {
        let when = chrono::DateTime::parse_from_rfc3339("2026-03-10T00:00:00-07:00").expect("date");
        self.sim.state.db.lock().invoices.insert_with(|_| {
            Object::new()
                .with("created-at", when)
                .with("updated-at", when)
                .with("invoice-number", number)
                .with("invoice-date", when)
                .with("status", status)
                .with("exported", false)
                .with("last-exported-at", Value::Null)
                .with("paid", false)
                .with("payment-date", Value::Null)
                .with("payment-notes", Value::Null)
                .with("invoice-description", Value::Null)
                .with(
                    "supplier",
                    Object::new()
                        .with("id", 7)
                        .with("name", supplier)
                        .with("number", supplier_number),
                )
                .with(
                    "currency",
                    Object::new()
                        .with("id", 1)
                        .with("code", "USD")
                        .with("decimals", 2),
                )
                .with(
                    "invoice-lines",
                    Value::Array(vec![Value::Object(
                        Object::new()
                            .with("id", 1)
                            .with("line-num", 1)
                            .with("total", rust_decimal::Decimal::new(10000, 2)),
                    )]),
                )
                .with("payments", Value::Array(vec![]))
                .with(
                    "custom-fields",
                    Object::new()
                        .with("cf-erp-invoice-number", Value::Null)
                        .with("cf-integration-status", Value::Null),
                )
        })
    }

    pub fn invoice(&self, id: i64) -> Object {
        self.sim
            .state
            .db
            .lock()
            .invoices
            .get(id)
            .cloned()
            .expect("invoice exists")
    }
}
