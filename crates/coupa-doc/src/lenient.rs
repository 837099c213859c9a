//! The permissive scalar parsing Coupa applies to values it receives.
//!
//! Coupa's own examples send dates as `9/12/2019`, `2009-06-23`, `2019-08-13T00:00:00Z` and
//! `"2019-10-22 00:00:00 -0900"` (quotes included), amounts as `"510"` or `199.98`, and booleans
//! as `"false"`; its CSV loader also takes `Yes/No`, `Y/N`, `T/F`. Values without a time zone are
//! read as UTC, as the query documentation says of dates without one.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use std::str::FromStr;

/// Strips one pair of surrounding double quotes and whitespace (`"2019-10-22 ..."`).
fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .map(str::trim)
        .unwrap_or(s)
}

/// `true/false`, `yes/no`, `y/n`, `t/f`, `1/0`, in any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    match unquote(s).to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "t" | "1" => Some(true),
        "false" | "no" | "n" | "f" | "0" => Some(false),
        _ => None,
    }
}

/// A decimal written plainly (`510`, `-5.00`, `+1.5`) or in scientific notation. Thousands
/// separators and decimal commas are refused: `1,000` is ambiguous and money must not be guessed.
pub fn parse_decimal(s: &str) -> Option<Decimal> {
    let s = unquote(s);
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() || s.contains(',') {
        return None;
    }
    Decimal::from_str(s)
        .ok()
        .or_else(|| Decimal::from_scientific(s).ok())
}

/// The date and datetime forms seen in Coupa's documentation and clients.
pub fn parse_datetime(s: &str) -> Option<DateTime<FixedOffset>> {
    let s = unquote(s);
    if s.is_empty() {
        return None;
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d);
    }
    const WITH_ZONE: &[&str] = &[
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f %z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%z",
        "%d.%m.%Y %H:%M:%S %z",
    ];
    for f in WITH_ZONE {
        if let Ok(d) = DateTime::parse_from_str(s, f) {
            return Some(d);
        }
    }
    const NAIVE: &[&str] = &[
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%m/%d/%Y %H:%M:%S",
    ];
    for f in NAIVE {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Some(utc(d));
        }
    }
    parse_date(s).and_then(|d| d.and_hms_opt(0, 0, 0)).map(utc)
}

/// A date without time: ISO `2009-06-23`, US `9/12/2019` (month first, as Coupa's US-English
/// examples are), or `12.09.2019` (day first).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = unquote(s);
    ["%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%Y%m%d"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
}

fn utc(d: NaiveDateTime) -> DateTime<FixedOffset> {
    Utc.from_utc_datetime(&d).fixed_offset()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_date_form_in_coupas_payment_examples_parses() {
        let cases = [
            ("9/12/2019", "2019-09-12T00:00:00+00:00"),
            ("2019-08-13T00:00:00Z", "2019-08-13T00:00:00+00:00"),
            ("2009-06-23", "2009-06-23T00:00:00+00:00"),
            ("2009-06-23T00:00:00-08:00", "2009-06-23T00:00:00-08:00"),
            ("\"2019-10-22 00:00:00 -0900\"", "2019-10-22T00:00:00-09:00"),
            ("2010-09-25T02:22:11Z", "2010-09-25T02:22:11+00:00"),
            ("12.09.2019", "2019-09-12T00:00:00+00:00"),
        ];
        for (input, want) in cases {
            let got = parse_datetime(input).unwrap_or_else(|| panic!("{input} did not parse"));
            assert_eq!(got.to_rfc3339(), want, "{input}");
        }
        assert_eq!(parse_datetime("not a date"), None);
        assert_eq!(parse_datetime("13/45/2019"), None);
    }

    #[test]
    fn decimals_are_exact_and_refuse_commas() {
        assert_eq!(parse_decimal("199.98"), Decimal::from_str("199.98").ok());
        assert_eq!(parse_decimal("\"510\""), Some(Decimal::from(510)));
        assert_eq!(parse_decimal("-5.00"), Decimal::from_str("-5.00").ok());
        assert_eq!(parse_decimal("989,00"), None);
        assert_eq!(parse_decimal("abc"), None);
        assert_eq!(parse_decimal(""), None);
    }

    #[test]
    fn booleans_take_the_csv_spellings() {
        for t in ["true", "Yes", "Y", "t", "1", "\"true\""] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "No", "n", "F", "0"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool("maybe"), None);
    }
}
