//! Integrations (one per orchestration, seed 001) and their contacts.

use coupa_doc::{Object, Value};
use reqwest::Method;

use super::Client;
use crate::domain::IntegrationId;
use crate::error::Error;
use crate::paging::Pager;
use crate::query::Query;
use crate::transport::Request;
use crate::wire::{Integration, IntegrationContact};

const PATH: &str = "/api/integrations";
const CONTACTS: &str = "/api/integration_contacts";

/// An Integration to create. Coupa requires every field but `integration_type`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewIntegration {
    pub name: String,
    pub code: String,
    /// The document it moves, e.g. `InvoiceHeader`, `Payment`, `CoupaPay::Payment`.
    pub business_object: String,
    /// `from_coupa` or `to_coupa`.
    pub direction: String,
    pub end_system: String,
    /// `erp`, `internal`, ...
    pub end_system_type: String,
    /// `api`, `flat_file`, ...
    pub integration_type: Option<String>,
}

impl NewIntegration {
    fn to_value(&self) -> Value {
        let mut o = Object::new()
            .with("name", self.name.as_str())
            .with("code", self.code.as_str())
            .with("business-object", self.business_object.as_str())
            .with("direction", self.direction.as_str())
            .with("end-system", self.end_system.as_str())
            .with("end-system-type", self.end_system_type.as_str());
        if let Some(t) = &self.integration_type {
            o.insert("integration-type", t.as_str());
        }
        Value::Object(o)
    }
}

pub struct Integrations<'a>(pub(super) &'a Client);

impl Integrations<'_> {
    pub fn list(&self, query: Query) -> Pager<Integration> {
        self.0.pager(PATH, query)
    }

    /// The Integration with this code, if it exists.
    pub async fn find_by_code(&self, code: &str) -> Result<Option<Integration>, Error> {
        let page = self
            .list(Query::new().eq("code", code).limit(1))
            .next_page()
            .await?;
        match page.into_iter().flatten().next() {
            Some(Ok(i)) => Ok(Some(i)),
            Some(Err(e)) => Err(Error::new(
                "GET",
                PATH,
                crate::error::ErrorKind::Decode(e.error),
            )),
            None => Ok(None),
        }
    }

    /// Makes sure the Integration `new.code` exists, creating it when missing (seed 001: one
    /// per orchestration); `true` when this call created it. A code found or created once is
    /// remembered by this client and its handles, so later passes cost no call. A create whose
    /// answer was lost, or that another process beat, is settled by looking again.
    pub async fn ensure(&self, new: &NewIntegration) -> Result<bool, Error> {
        let known = |code: &str| {
            self.0
                .known_integrations
                .lock()
                .map(|k| k.contains(code))
                .unwrap_or(false)
        };
        let remember = |code: &str| {
            if let Ok(mut k) = self.0.known_integrations.lock() {
                k.insert(code.to_owned());
            }
        };
        if known(&new.code) {
            return Ok(false);
        }
        if self.find_by_code(&new.code).await?.is_some() {
            remember(&new.code);
            return Ok(false);
        }
        let created = match self.create(new).await {
            Ok(_) => true,
            Err(e) => match self.find_by_code(&new.code).await? {
                Some(_) => false,
                None => return Err(e),
            },
        };
        remember(&new.code);
        Ok(created)
    }

    /// Creates an Integration. Not repeated blindly: a lost answer leaves the outcome unknown
    /// and the caller looks it up by code.
    pub async fn create(&self, new: &NewIntegration) -> Result<Integration, Error> {
        self.0
            .fetch(Request::new(Method::POST, PATH).body("integration", new.to_value()))
            .await
    }

    /// The contacts who receive this Integration's alerts.
    pub async fn contacts(&self, id: IntegrationId) -> Result<Vec<IntegrationContact>, Error> {
        let items = self
            .0
            .pager::<IntegrationContact>(CONTACTS, Query::new().eq(["integration", "id"], id))
            .collect_all()
            .await?;
        items
            .into_iter()
            .map(|i| {
                i.map_err(|e| Error::new("GET", CONTACTS, crate::error::ErrorKind::Decode(e.error)))
            })
            .collect()
    }
}
