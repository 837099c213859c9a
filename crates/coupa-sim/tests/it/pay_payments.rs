//! Coupa Pay payments: the three ways to mark exported, and the documented filters.

use coupa_doc::{Object, Value};
use reqwest::StatusCode;

use crate::common::{BOTH, Fmt, TestSim, empty_sim};

fn add_payment(t: &TestSim, kind: &str, bank: &str) -> i64 {
    t.sim.state.db.lock().pay_payments.insert_with(|_| {
        Object::new()
            .with("status", "completed_successfully")
            .with("exported", false)
            .with("last-exported-at", Value::Null)
            .with(
                "pay-to-account",
                Object::new().with("id", 9).with("type", kind),
            )
            .with(
                "pay-from-account",
                Object::new().with("id", 8).with(
                    "payment-partner",
                    Object::new().with("id", 3).with("issuing-bank", bank),
                ),
            )
    })
}

fn exported(t: &TestSim, id: i64) -> Option<bool> {
    t.sim
        .state
        .db
        .lock()
        .pay_payments
        .get(id)
        .and_then(|r| r.get("exported"))
        .and_then(Value::as_bool)
}

#[tokio::test]
async fn three_ways_to_mark_exported_in_both_formats() {
    let t = empty_sim().await;
    for fmt in BOTH {
        let by_query = add_payment(&t, "CoupaPay::SupplierPaymentAccount", "WEX");
        let a = t
            .put(
                &format!("/api/coupa_pay/payments/{by_query}?exported=true"),
                fmt,
                "",
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(exported(&t, by_query), Some(true));

        let by_body = add_payment(&t, "CoupaPay::SupplierPaymentAccount", "WEX");
        let body = match fmt {
            Fmt::Json => r#"{"exported": true}"#,
            Fmt::Xml => "<coupa-pay-payment><exported>true</exported></coupa-pay-payment>",
        };
        let a = t
            .put(&format!("/api/coupa_pay/payments/{by_body}"), fmt, body)
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(exported(&t, by_body), Some(true));
        assert!(
            a.object()
                .get("last-exported-at")
                .is_some_and(|v| !v.is_null())
        );

        let by_action = add_payment(&t, "CoupaPay::SupplierPaymentAccount", "WEX");
        let a = t
            .put(
                &format!("/api/coupa_pay/payments/{by_action}/export"),
                fmt,
                "",
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(exported(&t, by_action), Some(true));

        let other = add_payment(&t, "CoupaPay::SupplierPaymentAccount", "WEX");
        let a = t
            .put(
                &format!("/api/coupa_pay/payments/{other}"),
                fmt,
                if fmt == Fmt::Json {
                    r#"{"status":"draft"}"#
                } else {
                    "<coupa-pay-payment><status>draft</status></coupa-pay-payment>"
                },
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert_eq!(exported(&t, other), Some(false));
    }
}

#[tokio::test]
async fn supplier_and_bank_filters() {
    let t = empty_sim().await;
    add_payment(&t, "CoupaPay::SupplierPaymentAccount", "WEX");
    add_payment(&t, "CoupaPay::EmployeePaymentAccount", "WEX");
    add_payment(&t, "CoupaPay::SupplierPaymentAccount", "Citibank");
    for fmt in BOTH {
        let a = t
            .get("/api/coupa_pay/payments?exported=false&pay_to_account[type]=CoupaPay::SupplierPaymentAccount", fmt)
            .await;
        assert_eq!(a.list().len(), 2);
        let b = t
            .get("/api/coupa_pay/payments?payment-partner[issuing-bank]=WEX&status[in]=completed_successfully,completed_with_errors", fmt)
            .await;
        assert_eq!(b.list().len(), 2);
    }
}
