//! Element and key names.
//!
//! Coupa writes keys with dashes (`invoice-number`) and documents that "any dashes should be
//! converted to underscores" in queries; real clients send both, sometimes in mixed case. One
//! canonical spelling, lower case with dashes, makes every comparison a plain string compare.

use std::borrow::Cow;

/// Lower case, underscores turned into dashes. Borrows when the key is already canonical,
/// which is the common case for documents Coupa itself wrote.
pub fn canonical(key: &str) -> Cow<'_, str> {
    if key.bytes().all(|b| b != b'_' && !b.is_ascii_uppercase()) {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(
            key.chars()
                .map(|c| {
                    if c == '_' {
                        '-'
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect(),
        )
    }
}

/// The element name Coupa uses for one item of a list element: `invoice-lines` ->
/// `invoice-line`, `addresses` -> `address`, `taxes` -> `tax`, `categories` -> `category`.
/// A few lists are not plain plurals; they are listed first.
pub fn singular(plural: &str) -> Cow<'_, str> {
    match plural {
        "invoice-headers" | "invoices" => return Cow::Borrowed("invoice-header"),
        "coupa-pay-payments" => return Cow::Borrowed("coupa-pay-payment"),
        "data-file-sources" => return Cow::Borrowed("data-file-source"),
        _ => {}
    }
    if let Some(stem) = plural.strip_suffix("ies") {
        return Cow::Owned(format!("{stem}y"));
    }
    for suffix in ["sses", "xes", "ches", "shes"] {
        if plural.ends_with(suffix) {
            return Cow::Borrowed(&plural[..plural.len() - 2]);
        }
    }
    match plural.strip_suffix('s') {
        Some(stem) if !stem.is_empty() && !stem.ends_with('s') => Cow::Borrowed(stem),
        _ => Cow::Borrowed(plural),
    }
}

/// Whether `parent` names a list of `child` elements (`payments` / `payment`).
pub fn is_plural_of(parent: &str, child: &str) -> bool {
    parent != child && singular(parent) == child
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_turns_underscores_into_dashes_and_lowers_case() {
        assert_eq!(canonical("amount_paid"), "amount-paid");
        assert_eq!(canonical("Payment_Date"), "payment-date");
        assert!(matches!(canonical("invoice-number"), Cow::Borrowed(_)));
    }

    #[test]
    fn singular_knows_coupa_list_names() {
        for (p, s) in [
            ("invoice-lines", "invoice-line"),
            ("payments", "payment"),
            ("payment-details", "payment-detail"),
            ("addresses", "address"),
            ("tax-registrations", "tax-registration"),
            ("invoice-headers", "invoice-header"),
            ("integration-history-records", "integration-history-record"),
            ("categories", "category"),
            ("taxes", "tax"),
            ("responses", "response"),
            ("upload-errors", "upload-error"),
            ("field-errors", "field-error"),
        ] {
            assert_eq!(singular(p), s, "{p}");
        }
        assert!(is_plural_of("payments", "payment"));
        assert!(!is_plural_of("custom-fields", "sap-error"));
    }
}
