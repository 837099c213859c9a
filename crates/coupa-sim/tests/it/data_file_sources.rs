//! CSV loads as the API shows them, and `return_object` on writes.

use coupa_doc::Value;
use reqwest::StatusCode;

use crate::common::{BOTH, empty_sim};

#[tokio::test]
async fn a_load_and_its_row_errors_are_served_in_both_formats() {
    let t = empty_sim().await;
    t.add_invoice("INV-100", "approved", "Acme", "S1");
    let csv = "\"Supplier Name\",\"Invoice Number\",\"Check Amount Paid\",\"Check # / Note\",\"Check Payment Date\"\n\
               \"Acme\",\"INV-100\",\"25.00\",\"CHK-1\",\"2026-11-01T00:00:00+00:00\"\n\
               \"Acme\",\"INV-404\",\"10.00\",\"CHK-2\",\"2026-11-01T00:00:00+00:00\"\n";
    let id = coupa_sim::csv_loader::load(
        &t.sim.state,
        "payments_20261101_000000Z_.csv",
        csv.as_bytes(),
    );
    for fmt in BOTH {
        let list = t
            .get("/api/data_file_sources?source-for=Payment", fmt)
            .await
            .list();
        assert_eq!(list.len(), 1, "{fmt:?}");
        let one = t
            .get(&format!("/api/data_file_sources/{id}"), fmt)
            .await
            .object();
        assert_eq!(one.get("status").and_then(Value::as_str), Some("done"));
        let errors = one
            .get("upload-errors")
            .and_then(Value::as_array)
            .expect("upload-errors");
        assert_eq!(errors.len(), 1, "{fmt:?}: {errors:?}");
        assert_eq!(errors[0].pointer(&["row"]).and_then(Value::as_i64), Some(3));
        assert!(
            errors[0]
                .pointer(&["field-errors"])
                .is_some_and(|e| format!("{e:?}").contains("INV-404")),
            "{errors:?}"
        );
    }
}

#[tokio::test]
async fn return_object_shapes_write_answers() {
    let t = empty_sim().await;
    let id = t.add_invoice("INV-RO", "approved", "Acme", "S1");
    for fmt in BOTH {
        let none = t
            .put(
                &format!("/api/invoices/{id}?exported=true&return_object=none"),
                fmt,
                "",
            )
            .await;
        assert_eq!(none.status, StatusCode::OK);
        assert!(none.body.is_empty(), "{}", none.body);
        let limited = t
            .put(
                &format!("/api/invoices/{id}?exported=true&return_object=limited"),
                fmt,
                "",
            )
            .await;
        assert_eq!(limited.object().keys().collect::<Vec<_>>(), ["id"]);
        let shallow = t
            .get(&format!("/api/invoices/{id}?return_object=shallow"), fmt)
            .await
            .object();
        let supplier = shallow
            .get("supplier")
            .and_then(Value::as_object)
            .expect("supplier");
        assert!(supplier.contains_key("id") && supplier.contains_key("name"));
        let none_on_get = t
            .get(&format!("/api/invoices/{id}?return_object=none"), fmt)
            .await;
        assert_eq!(none_on_get.status, StatusCode::BAD_REQUEST);
    }
}
