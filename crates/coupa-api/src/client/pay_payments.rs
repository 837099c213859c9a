//! Coupa Pay payments: list, read, mark exported.

use reqwest::Method;

use super::Client;
use crate::domain::PayPaymentId;
use crate::error::Error;
use crate::paging::Pager;
use crate::query::{Fields, Query};
use crate::transport::Request;
use crate::wire::PayPayment;

const PATH: &str = "/api/coupa_pay/payments";

pub struct PayPayments<'a>(pub(super) &'a Client);

impl PayPayments<'_> {
    /// Every payment matching `query`, paged by id.
    pub fn list(&self, query: Query) -> Pager<PayPayment> {
        self.0.pager(PATH, query)
    }

    pub async fn get(&self, id: PayPaymentId, fields: Option<Fields>) -> Result<PayPayment, Error> {
        let q = fields.map(|f| Query::new().fields(f)).unwrap_or_default();
        self.0
            .fetch(Request::new(Method::GET, format!("{PATH}/{id}")).query(q.pairs()))
            .await
    }

    /// `PUT /api/coupa_pay/payments/{id}?exported=true`, the form Compass documents. Returns
    /// the flag Coupa reports afterwards.
    pub async fn mark_exported(&self, id: PayPaymentId) -> Result<bool, Error> {
        let q = Query::new()
            .eq("exported", true)
            .fields(Fields::new(["id", "exported"]));
        let p: PayPayment = self
            .0
            .fetch(Request::new(Method::PUT, format!("{PATH}/{id}")).query(q.pairs()))
            .await?;
        Ok(p.exported.unwrap_or(false))
    }
}
