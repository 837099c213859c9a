//! scratch
use coupa_doc::Value;
use coupa_sim::SimConfig;

#[tokio::test]
async fn scratch_explore() {
    let sim = coupa_sim::spawn(SimConfig {
        invoices: 200,
        pay_payments: 0,
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    let db = sim.state.db.lock();
    let mut by_num: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for r in db.invoices.rows() {
        let st = r.get("status").and_then(Value::as_str).unwrap_or("");
        if st != "approved" {
            continue;
        }
        let n = r
            .get("invoice-number")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        by_num.entry(n).or_default().push(format!(
            "{} {:?} {:?} {:?} total={:?} paid={:?} pays={} exported={:?}",
            r.get("id").and_then(Value::as_i64).unwrap_or(0),
            r.pointer(&["supplier", "name"]).and_then(Value::as_str),
            r.pointer(&["supplier", "number"]).and_then(Value::as_str),
            r.pointer(&["currency", "code"]).and_then(Value::as_str),
            r.get("total-with-taxes").and_then(Value::as_decimal),
            r.get("paid"),
            r.get("payments")
                .and_then(Value::as_array)
                .map(|a| a.len())
                .unwrap_or(0),
            r.get("exported")
        ));
    }
    for (n, v) in &by_num {
        println!("{n}: {v:?}");
    }
    let one = db.invoices.rows().find(|r| {
        r.get("payments")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    });
    println!("{one:?}");
}
