//! Integrations, contacts, runs, history records and integration errors: seed 001's three
//! monitoring options, call by call.

use coupa_doc::Value;
use reqwest::StatusCode;

use crate::common::{BOTH, Fmt, TestSim, empty_sim};

fn integration_body(fmt: Fmt, code: &str) -> String {
    match fmt {
        Fmt::Json => format!(
            r#"{{"name":"{code} name","code":"{code}","business-object":"InvoiceHeader","direction":"from_coupa","end-system":"SAP","end-system-type":"erp","integration-type":"api"}}"#
        ),
        Fmt::Xml => format!(
            "<integration><name>{code} name</name><code>{code}</code><business-object>InvoiceHeader</business-object><direction>from_coupa</direction><end-system>SAP</end-system><end-system-type>erp</end-system-type></integration>"
        ),
    }
}

async fn setup(t: &TestSim, fmt: Fmt, code: &str) -> i64 {
    let a = t
        .post("/api/integrations", fmt, &integration_body(fmt, code))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let id = a.object().get("id").and_then(Value::as_i64).expect("id");
    let contact = match fmt {
        Fmt::Json => format!(
            r#"{{"contact-alert-type":"Functional","contactable-type":"User","contactable-id":5,"integration":{{"code":"{code}"}}}}"#
        ),
        Fmt::Xml => format!(
            "<integration-contact><contact-alert-type>Functional</contact-alert-type><contactable-type>User</contactable-type><contactable-id>5</contactable-id><integration><code>{code}</code></integration></integration-contact>"
        ),
    };
    let a = t.post("/api/integration_contacts", fmt, &contact).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    id
}

#[tokio::test]
async fn integrations_validate_required_fields_and_unique_codes() {
    let t = empty_sim().await;
    for fmt in BOTH {
        let code = format!("ERP-{fmt:?}");
        setup(&t, fmt, &code).await;
        let again = t
            .post("/api/integrations", fmt, &integration_body(fmt, &code))
            .await;
        assert_eq!(again.status, StatusCode::BAD_REQUEST);
        let errors = again.errors();
        assert!(
            errors.contains(&"Code has already been taken".to_owned()),
            "{errors:?}"
        );
        let empty = t
            .post(
                "/api/integrations",
                fmt,
                if fmt == Fmt::Json {
                    "{}"
                } else {
                    "<integration></integration>"
                },
            )
            .await;
        assert_eq!(empty.status, StatusCode::BAD_REQUEST);
        assert!(
            empty.errors().iter().any(|e| e == "Name can't be blank"),
            "{:?}",
            empty.errors()
        );
        let bad_dir = integration_body(fmt, "X-DIR").replace("from_coupa", "sideways");
        let a = t.post("/api/integrations", fmt, &bad_dir).await;
        assert!(
            a.errors().iter().any(|e| e.contains("sideways")),
            "{:?}",
            a.errors()
        );
    }
}

#[tokio::test]
async fn an_integration_run_goes_through_its_life() {
    let t = empty_sim().await;
    for fmt in BOTH {
        let code = format!("RUN-{fmt:?}");
        setup(&t, fmt, &code).await;
        let body = match fmt {
            Fmt::Json => format!(r#"{{"integration":{{"code":"{code}"}}}}"#),
            Fmt::Xml => format!(
                "<integration-run><integration><code>{code}</code></integration></integration-run>"
            ),
        };
        let a = t.post("/api/integration_runs", fmt, &body).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        let run = a.object();
        assert_eq!(run.get("status").and_then(Value::as_str), Some("pending"));
        let id = run.get("id").and_then(Value::as_i64).expect("id");
        let total = match fmt {
            Fmt::Json => r#"{"total_records": 12}"#.to_owned(),
            Fmt::Xml => "<integration-run><total-records type=\"integer\">12</total-records></integration-run>".to_owned(),
        };
        let a = t
            .put(&format!("/api/integration_runs/{id}/run"), fmt, &total)
            .await;
        let o = a.object();
        assert_eq!(
            o.get("status").and_then(Value::as_str),
            Some("running"),
            "{}",
            a.body
        );
        assert_eq!(o.get("total-records").and_then(Value::as_i64), Some(12));
        for (action, status) in [
            ("pause", "paused"),
            ("pending", "pending"),
            ("run", "running"),
            ("success", "successful"),
            ("finish", "successful"),
        ] {
            let a = t
                .put(&format!("/api/integration_runs/{id}/{action}"), fmt, "")
                .await;
            assert_eq!(
                a.object().get("status").and_then(Value::as_str),
                Some(status),
                "{action}: {}",
                a.body
            );
        }
        let a = t
            .put(&format!("/api/integration_runs/{id}/run"), fmt, "")
            .await;
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "an ended run cannot run again"
        );
        let a = t.post("/api/integration_runs", fmt, &body).await;
        let failed = a.object().get("id").and_then(Value::as_i64).expect("id");
        let a = t
            .put(&format!("/api/integration_runs/{failed}/fail"), fmt, "")
            .await;
        assert_eq!(
            a.object().get("status").and_then(Value::as_str),
            Some("failed")
        );
        assert!(a.object().get("end-time").is_some_and(|v| !v.is_null()));
    }
}

#[tokio::test]
async fn history_records_errors_alerts_and_resolution() {
    let t = empty_sim().await;
    let code = "ERP-INVOICES";
    setup(&t, Fmt::Json, code).await;
    let run = t
        .post(
            "/api/integration_runs",
            Fmt::Json,
            &format!(r#"{{"integration":{{"code":"{code}"}}}}"#),
        )
        .await
        .object()
        .get("id")
        .and_then(Value::as_i64)
        .expect("run id");
    // Option 2: history record created by PUT (the guide's verb), alert by POST.
    let record = format!(
        r#"{{"document-type":"InvoiceHeader","document-id":1001,"document-status":"approved","contact-alert-type":"Functional","status":"Success","integration":{{"code":"{code}"}},"integration-run":{{"id":{run}}},"responses":[{{"response-code":"Success-1234","response-message":"went well"}}]}}"#
    );
    let a = t
        .put(
            r#"/api/integration_history_records?fields=["id","document-id","status"]"#,
            Fmt::Json,
            &record,
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(
        a.object().keys().collect::<Vec<_>>(),
        ["id", "document-id", "status"]
    );
    let failure = record
        .replace("\"Success\"", "\"Error\"")
        .replace("went well", "Period is closed");
    let a = t
        .post(
            "/api/integration_history_records/create_alert",
            Fmt::Json,
            &failure,
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let alert_record = a.object().get("id").and_then(Value::as_i64).expect("id");
    let alerts = t.sim.state.db.lock().alerts.clone();
    assert_eq!(alerts.len(), 1);
    assert!(
        alerts[0]
            .get("message")
            .and_then(Value::as_str)
            .is_some_and(|m| m.contains("Period is closed"))
    );
    assert_eq!(
        alerts[0]
            .get("recipients")
            .and_then(Value::as_array)
            .map(<[Value]>::len),
        Some(1)
    );
    // Batched lookup of unresolved records, then resolve: answered as a one-element list.
    for fmt in BOTH {
        let open = t
            .get("/api/integration_history_records?resolved=false&document-type=InvoiceHeader&document-id[in]=1001,1002", fmt)
            .await
            .list();
        assert_eq!(open.len(), if fmt == Fmt::Json { 2 } else { 1 }, "{fmt:?}");
        let target = open[0]
            .pointer(&["id"])
            .and_then(Value::as_i64)
            .expect("id");
        let a = t
            .put(
                &format!("/api/integration_history_records/{target}/resolve"),
                fmt,
                "",
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let list = a.list();
        assert_eq!(list.len(), 1);
        assert_eq!(
            list[0].pointer(&["resolved"]).and_then(Value::as_bool),
            Some(true)
        );
    }
    let a = t
        .put(
            &format!("/api/integration_history_records/{alert_record}/unresolve"),
            Fmt::Json,
            "",
        )
        .await;
    assert_eq!(
        a.list()[0].pointer(&["resolved"]).and_then(Value::as_bool),
        Some(false)
    );

    // Option 3: an integration error by the guide's flat integration-run-id makes the run end
    // "errored" until it is resolved.
    let error = format!(
        r#"{{"document-type":"InvoiceHeader","document-id":1003,"contact-alert-type":"Functional","status":"Error","integration-run-id":"{run}","responses":[{{"response-code":"Failure-CC","response-message":"Cost center closed"}}]}}"#
    );
    for fmt in BOTH {
        let body = match fmt {
            Fmt::Json => error.clone(),
            Fmt::Xml => format!(
                "<integration-error><document-type>InvoiceHeader</document-type><document-id>1003</document-id><contact-alert-type>Functional</contact-alert-type><integration-run-id>{run}</integration-run-id><responses type=\"array\"><response><response-code>Failure-CC</response-code><response-message>Cost center closed</response-message></response></responses></integration-error>"
            ),
        };
        let a = t
            .post("/api/integration_errors/create_alert", fmt, &body)
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        let o = a.object();
        assert_eq!(
            o.pointer(&["integration", "code"]).and_then(Value::as_str),
            Some(code),
            "integration taken from the run"
        );
        assert_eq!(
            o.pointer(&["responses"])
                .and_then(Value::as_array)
                .map(<[Value]>::len),
            Some(1)
        );
    }
    let missing_run = t
        .post(
            "/api/integration_errors",
            Fmt::Json,
            r#"{"contact-alert-type":"Functional"}"#,
        )
        .await;
    assert_eq!(missing_run.status, StatusCode::BAD_REQUEST);
    assert!(
        missing_run
            .errors()
            .iter()
            .any(|e| e.contains("Integration run")),
        "{:?}",
        missing_run.errors()
    );
    let a = t
        .put(
            &format!("/api/integration_runs/{run}/success"),
            Fmt::Json,
            "",
        )
        .await;
    assert_eq!(
        a.object().get("status").and_then(Value::as_str),
        Some("errored")
    );
    assert!(
        a.object()
            .get("records-processed")
            .and_then(Value::as_i64)
            .is_some_and(|n| n >= 4)
    );
}
