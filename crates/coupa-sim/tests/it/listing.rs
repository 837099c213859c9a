//! Lists as Coupa writes them, the query language over HTTP, and its errors.

use coupa_doc::Value;
use reqwest::StatusCode;

use crate::common::{BOTH, Fmt, empty_sim};

#[tokio::test]
async fn lists_have_coupas_roots_and_empty_xml_lists_are_404() {
    let t = empty_sim().await;
    let roots = [
        ("/api/invoices", "invoice-headers"),
        ("/api/integrations", "integrations"),
        ("/api/integration_contacts", "integration-contacts"),
        ("/api/integration_runs", "integration-runs"),
        (
            "/api/integration_history_records",
            "integration-history-records",
        ),
        ("/api/integration_errors", "integration-errors"),
        ("/api/coupa_pay/payments", "coupa-pay-payments"),
        ("/api/data_file_sources", "data-file-sources"),
    ];
    for (path, _) in roots {
        let json = t.get(&format!("{path}?id=0"), Fmt::Json).await;
        assert_eq!(json.status, StatusCode::OK, "{path}");
        assert_eq!(json.body.trim(), "[]", "{path}");
        let xml = t.get(&format!("{path}?id=0"), Fmt::Xml).await;
        assert_eq!(xml.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            xml.errors(),
            ["No results match your search criteria."],
            "{path}"
        );
    }
    t.add_invoice("INV-1", "approved", "Acme", "S1");
    let xml = t.get("/api/invoices", Fmt::Xml).await;
    assert!(
        xml.body.contains("<invoice-headers type=\"array\">"),
        "{}",
        xml.body
    );
    assert!(xml.body.contains("<invoice-header>"));
    assert!(xml.body.contains("<id type=\"integer\">"));
    assert!(
        xml.body
            .contains("<exported type=\"boolean\">false</exported>")
    );
    assert!(xml.body.contains("<payment-date nil=\"true\" />"));
}

#[tokio::test]
async fn filters_paging_and_fields_over_http() {
    let t = empty_sim().await;
    let mut ids = Vec::new();
    for i in 0..60 {
        let status = if i % 3 == 0 { "voided" } else { "approved" };
        let supplier = if i % 2 == 0 { "Acme Corp" } else { "Globex" };
        ids.push(t.add_invoice(
            &format!("INV-{i:03}"),
            status,
            supplier,
            &format!("S{}", i % 2),
        ));
    }
    for fmt in BOTH {
        // Default and maximum page: 50.
        assert_eq!(t.get("/api/invoices", fmt).await.list().len(), 50);
        assert_eq!(t.get("/api/invoices?limit=500", fmt).await.list().len(), 50);
        assert_eq!(
            t.get("/api/invoices?limit=7&offset=55", fmt)
                .await
                .list()
                .len(),
            5
        );
        // Operators, dashes and underscores, nested attributes.
        let a = t
            .get(
                "/api/invoices?status[in]=voided&supplier[name]=acme%20corp&limit=50",
                fmt,
            )
            .await;
        assert_eq!(a.list().len(), 10, "{fmt:?}");
        let b = t
            .get(
                "/api/invoices?invoice_number[starts_with]=INV-05&supplier%5Bnumber%5D=S1",
                fmt,
            )
            .await;
        assert_eq!(b.list().len(), 5);
        // Paging by id, descending.
        let page = t
            .get(
                &format!(
                    "/api/invoices?id[gt]={}&order_by=id&dir=desc&limit=3",
                    ids[50]
                ),
                fmt,
            )
            .await
            .list();
        let got: Vec<i64> = page
            .iter()
            .filter_map(|r| r.pointer(&["id"]).and_then(Value::as_i64))
            .collect();
        assert_eq!(got, vec![ids[59], ids[58], ids[57]]);
        // fields with a nested association.
        let f = t
            .get(
                r#"/api/invoices?limit=1&fields=["id",{"supplier":["name"]}]"#,
                fmt,
            )
            .await
            .list();
        let o = f[0].as_object().expect("object");
        assert_eq!(o.keys().collect::<Vec<_>>(), ["id", "supplier"]);
        assert_eq!(
            o.get("supplier")
                .and_then(Value::as_object)
                .map(|s| s.keys().collect::<Vec<_>>()),
            Some(vec!["name"])
        );
        // return_object=limited and the named filter.
        let l = t
            .get("/api/invoices?limit=2&return_object=limited", fmt)
            .await
            .list();
        assert_eq!(
            l[0].as_object().map(|o| o.keys().collect::<Vec<_>>()),
            Some(vec!["id"])
        );
        let nf = t
            .get("/api/invoices?limit=1&filter=default_invoices_filter", fmt)
            .await
            .list();
        assert!(
            nf[0]
                .as_object()
                .is_some_and(|o| o.contains_key("invoice-number") && !o.contains_key("created-at"))
        );
    }
}

#[tokio::test]
async fn invalid_queries_are_400_naming_the_parameter() {
    let t = empty_sim().await;
    t.add_invoice("INV-1", "approved", "Acme", "S1");
    for fmt in BOTH {
        for (query, param) in [
            ("id[gt]=abc", "id[gt]"),
            ("dir=sideways", "dir"),
            ("limit=-1", "limit"),
            ("fields=[oops", "fields"),
            ("return_object=none", "return_object"),
            ("filter=no_such_filter", "filter"),
            ("updated_at[contains]=2020", "updated_at[contains]"),
            ("no_such_field=1", "no_such_field"),
        ] {
            let a = t.get(&format!("/api/invoices?{query}"), fmt).await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{query}: {}", a.body);
            let errors = a.errors();
            assert!(
                errors.iter().any(|e| e.contains(param)),
                "{query}: {errors:?}"
            );
        }
    }
}
