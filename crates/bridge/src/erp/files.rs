//! The `files` adapter. SKELETON: being written (keep the public signatures).

use std::collections::HashMap;
use std::sync::Arc;

use super::mapping::Mapping;
use super::{
    BoxFuture, CancelOutcome, Erp, ErpError, ErpInvoice, ErpPayPayment, ErpPayment,
    MalformedPayment, PaymentSync, PayBooking, PostOutcome, Received, SqlErp,
};
use crate::config::FilesErpConfig;

/// An ERP reached through an outbox and an inbox folder.
pub struct FileErp {
    #[allow(dead_code)]
    ledger: Arc<SqlErp>,
}

impl FileErp {
    /// Builds the adapter; `Err` names the setting that cannot be used.
    pub async fn connect(
        _settings: &FilesErpConfig,
        _mapping: Arc<Mapping>,
        ledger: Arc<SqlErp>,
    ) -> Result<FileErp, ErpError> {
        Ok(FileErp { ledger })
    }
}

impl Erp for FileErp {
    fn post_invoice<'a>(
        &'a self,
        _invoice: &'a ErpInvoice,
    ) -> BoxFuture<'a, Result<PostOutcome, ErpError>> {
        todo!()
    }

    fn cancel_invoice<'a>(
        &'a self,
        _coupa_invoice_id: i64,
    ) -> BoxFuture<'a, Result<CancelOutcome, ErpError>> {
        todo!()
    }

    fn receive_payments(&self) -> BoxFuture<'_, Result<Received, ErpError>> {
        todo!()
    }

    fn pending_payments(
        &self,
        after_id: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Result<ErpPayment, MalformedPayment>>, ErpError>> {
        self.ledger.pending_payments(after_id, limit)
    }

    fn settle_payments<'a>(
        &'a self,
        outcomes: &'a [(i64, PaymentSync)],
    ) -> BoxFuture<'a, Result<(), ErpError>> {
        self.ledger.settle_payments(outcomes)
    }

    fn book_pay_payment<'a>(
        &'a self,
        _payment: &'a ErpPayPayment,
    ) -> BoxFuture<'a, Result<PayBooking, ErpError>> {
        todo!()
    }

    fn pay_problems<'a>(
        &'a self,
        _coupa_payment_ids: &'a [i64],
    ) -> BoxFuture<'a, Result<HashMap<i64, Vec<String>>, ErpError>> {
        todo!()
    }
}
