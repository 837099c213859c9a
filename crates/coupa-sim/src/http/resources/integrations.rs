//! `/api/integrations` and `/api/integration_contacts` (coupa-api.md section 7): create, index,
//! show, update, with the fields Swagger marks required and the uniqueness of names and codes.

use std::sync::Arc;

use axum::Router;
use coupa_doc::{Object, Value};

use super::{
    create_route, integration_ref, list_route, merge_fields, one_of, put_route, required_text,
    show_route,
};
use crate::SimState;
use crate::store::{Db, Resource};

const DIRECTIONS: &[&str] = &["to_coupa", "from_coupa"];
const END_SYSTEM_TYPES: &[&str] = &[
    "internal",
    "payroll",
    "erp",
    "hr",
    "third_party_partner",
    "third_party_vendor",
    "other",
];
const INTEGRATION_TYPES: &[&str] = &[
    "flat_file",
    "api",
    "corporate_credit_card_file",
    "json",
    "xml",
    "original_format",
];
pub(crate) const CONTACT_ALERT_TYPES: &[&str] = &["Technical", "Functional", "Both"];
const CONTACTABLE_TYPES: &[&str] = &[
    "User",
    "UserGroup",
    "ApprovalGroup",
    "Supplier",
    "SupplierUser",
];

pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route(
            "/api/integrations",
            list_route(Resource::Integrations)
                .merge(create_route(Resource::Integrations, build_integration)),
        )
        .route(
            "/api/integrations/{id}",
            show_route(Resource::Integrations)
                .merge(put_route(Resource::Integrations, update_integration)),
        )
        .route(
            "/api/integration_contacts",
            list_route(Resource::IntegrationContacts)
                .merge(create_route(Resource::IntegrationContacts, build_contact)),
        )
        .route(
            "/api/integration_contacts/{id}",
            show_route(Resource::IntegrationContacts)
                .merge(put_route(Resource::IntegrationContacts, update_contact)),
        )
}

/// Validates an integration: required fields, enums, and unique name and code.
fn check_integration(db: &Db, body: &Object, own_id: Option<i64>) -> Vec<String> {
    let mut errors = Vec::new();
    let name = required_text(body, "name", "Name", &mut errors);
    let code = required_text(body, "code", "Code", &mut errors);
    required_text(body, "business-object", "Business object", &mut errors);
    required_text(body, "end-system", "End system", &mut errors);
    one_of(body, "direction", DIRECTIONS, "Direction", &mut errors);
    one_of(
        body,
        "end-system-type",
        END_SYSTEM_TYPES,
        "End system type",
        &mut errors,
    );
    if body.get("integration-type").is_some_and(|v| !v.is_null()) {
        one_of(
            body,
            "integration-type",
            INTEGRATION_TYPES,
            "Integration type",
            &mut errors,
        );
    }
    for (key, value, label) in [("name", &name, "Name"), ("code", &code, "Code")] {
        let taken = !value.is_empty()
            && db.integrations.rows().any(|row| {
                row.get("id").and_then(Value::as_i64) != own_id
                    && row
                        .get(key)
                        .and_then(Value::as_str)
                        .is_some_and(|v| v.eq_ignore_ascii_case(value))
            });
        if taken {
            errors.push(format!("{label} has already been taken"));
        }
    }
    errors
}

fn build_integration(db: &mut Db, body: Object) -> Result<Object, Vec<String>> {
    let errors = check_integration(db, &body, None);
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut row = Object::new()
        .with("name", Value::Null)
        .with("code", Value::Null)
        .with("description", Value::Null)
        .with("business-object", Value::Null)
        .with("direction", Value::Null)
        .with("end-system", Value::Null)
        .with("end-system-type", Value::Null)
        .with("integration-type", Value::Null)
        .with("standard", false)
        .with("active", true);
    merge_fields(&mut row, &body, &["standard"]);
    Ok(row)
}

fn update_integration(db: &mut Db, id: i64, body: &Object) -> Result<(), Vec<String>> {
    let Some(current) = db.integrations.get(id) else {
        return Err(vec![format!("integration {id} vanished")]);
    };
    let mut merged = current.clone();
    merge_fields(&mut merged, body, &["standard"]);
    let errors = check_integration(db, &merged, Some(id));
    if !errors.is_empty() {
        return Err(errors);
    }
    if let Some(row) = db.integrations.get_mut(id) {
        *row = merged;
    }
    Ok(())
}

/// The two enums of a contact, in their allowed spelling.
fn contact_types(body: &Object, errors: &mut Vec<String>) -> (&'static str, &'static str) {
    let alert = one_of(
        body,
        "contact-alert-type",
        CONTACT_ALERT_TYPES,
        "Contact alert type",
        errors,
    );
    let kind = one_of(
        body,
        "contactable-type",
        CONTACTABLE_TYPES,
        "Contactable type",
        errors,
    );
    (alert, kind)
}

fn build_contact(db: &mut Db, body: Object) -> Result<Object, Vec<String>> {
    let mut errors = Vec::new();
    let (alert, kind) = contact_types(&body, &mut errors);
    let contactable = body.get("contactable-id").and_then(Value::as_i64);
    if contactable.is_none() {
        errors.push("Contactable can't be blank".to_owned());
    }
    let integration = match integration_ref(db, &body) {
        Ok(Some(i)) => Some(i),
        Ok(None) => {
            errors.push("Integration can't be blank".to_owned());
            None
        }
        Err(e) => {
            errors.push(e);
            None
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Object::new()
        .with("contact-alert-type", alert)
        .with("contactable-type", kind)
        .with("contactable-id", contactable)
        .with("integration", integration))
}

fn update_contact(db: &mut Db, id: i64, body: &Object) -> Result<(), Vec<String>> {
    let integration = integration_ref(db, body).map_err(|e| vec![e])?;
    let Some(row) = db.integration_contacts.get_mut(id) else {
        return Err(vec![format!("contact {id} vanished")]);
    };
    let mut merged = row.clone();
    merge_fields(&mut merged, body, &["integration"]);
    let mut errors = Vec::new();
    let (alert, kind) = contact_types(&merged, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    merged.insert("contact-alert-type", alert);
    merged.insert("contactable-type", kind);
    if let Some(i) = integration {
        merged.insert("integration", i);
    }
    *row = merged;
    Ok(())
}
